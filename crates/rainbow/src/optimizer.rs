//! `Adam`: Kingma & Ba's optimiser, step for step candle's `AdamW` with `weight_decay = 0`,
//! with its state in the open.
//!
//! ```text
//! m <- beta1 m + (1 - beta1) g          v <- beta2 v + (1 - beta2) g^2
//! theta <- theta - lr * m_hat / (sqrt(v_hat) + eps),   m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)
//! ```
//!
//! Why not `candle_nn::AdamW` itself: its moments and step count are private, and a
//! checkpoint must save them (or a resumed run diverges from an uninterrupted one), and
//! MASP's Adam lookahead needs the preconditioner `1 / (sqrt(v_hat) + eps)`. The update is
//! written in the same order of operations as candle's, and a test checks that both give
//! bit-identical parameters.
//!
//! Speed: on the CPU, with f32 contiguous tensors, the step is three fused in-place passes
//! (`cpu_kernels::AdamMoment` for `m` and `v`, then `cpu_kernels::AdamTheta`), which give
//! the bits of the candle-ops step (tested); every other device or dtype (CUDA, f64) takes
//! the candle-ops path. [`global_grad_norm`] is one reduction pass per gradient
//! (`cpu_kernels::sum_squares`), and the clipping factor is applied inside Adam's passes
//! ([`Adam::step_scaled`]) rather than by rescaling every gradient first.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use rainbow::Adam;
//! let x = Var::new(&[1.0f32, -2.0], &Device::Cpu)?;
//! let mut adam = Adam::new(vec![x.clone()], 0.1, 1e-8)?;
//! let grad = Tensor::new(&[0.5f32, -0.5], &Device::Cpu)?;
//! adam.step(&[grad])?;
//! // The first Adam step moves each coordinate by about lr against its gradient's sign.
//! let v = x.to_vec1::<f32>()?;
//! assert!((v[0] - 0.9).abs() < 1e-5 && (v[1] + 1.9).abs() < 1e-5);
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{DType, Result, Tensor, Var};
use cpu_kernels::{AdamMoment, AdamTheta};

/// Adam over a fixed list of variables; see the module docs.
#[derive(Debug)]
pub struct Adam {
    vars: Vec<Var>,
    /// First moments `m`, one per variable, same shapes.
    m: Vec<Var>,
    /// Second moments `v`.
    v: Vec<Var>,
    /// `t`, the steps taken.
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Take the fused CPU path when the tensors allow it (on by default; off only to compare
    /// the two paths).
    fused: bool,
}

impl Adam {
    /// Adam with `beta1 = 0.9`, `beta2 = 0.999` (the defaults of Kingma & Ba, PyTorch and
    /// Dopamine's Rainbow) and the given learning rate and `eps`.
    pub fn new(vars: Vec<Var>, lr: f64, eps: f64) -> Result<Self> {
        let zeros = |v: &Var| Var::zeros(v.shape(), v.dtype(), v.device());
        let m = vars.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        Ok(Self { vars, m, v, step: 0, lr, beta1: 0.9, beta2: 0.999, eps, fused: true })
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// `(m, v)`, aligned with [`Adam::vars`].
    pub fn moments(&self) -> (&[Var], &[Var]) {
        (&self.m, &self.v)
    }

    /// `t`, the number of steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Restores the state of a checkpoint: moments (aligned with the variables) and `t`.
    pub fn set_state(&mut self, m: &[Tensor], v: &[Tensor], step: u64) -> Result<()> {
        if m.len() != self.vars.len() || v.len() != self.vars.len() {
            candle_core::bail!(
                "Adam state for {} / {} variables, expected {}",
                m.len(),
                v.len(),
                self.vars.len()
            );
        }
        for (dst, src) in self.m.iter().zip(m).chain(self.v.iter().zip(v)) {
            dst.set(src)?;
        }
        self.step = step;
        Ok(())
    }

    /// One step with `grads[i]` the gradient of `vars()[i]`.
    pub fn step(&mut self, grads: &[Tensor]) -> Result<()> {
        self.step_scaled(grads, None)
    }

    /// One step with the gradients `grads[i] * scale`, `scale` a scalar tensor of the
    /// gradients' dtype and device (gradient-norm clipping's factor): the same as scaling
    /// every gradient first and then calling [`Adam::step`], bit for bit, without the extra
    /// pass over the gradients.
    pub fn step_scaled(&mut self, grads: &[Tensor], scale: Option<&Tensor>) -> Result<()> {
        if grads.len() != self.vars.len() {
            candle_core::bail!("{} gradients for {} variables", grads.len(), self.vars.len());
        }
        if self.fused && self.fused_path_applies(grads, scale) {
            return self.step_fused(grads, scale);
        }
        match scale {
            Some(s) => {
                let scaled = grads.iter().map(|g| g.broadcast_mul(s)).collect::<Result<Vec<_>>>()?;
                self.step_ops(&scaled)
            }
            None => self.step_ops(grads),
        }
    }

    /// Turns the fused CPU path on or off (on by default); off, every step takes the
    /// candle-ops path. For tests and benchmarks that compare the two.
    pub fn set_fused(&mut self, on: bool) {
        self.fused = on;
    }

    /// Whether every tensor of the step is an f32 tensor on the CPU (the variables and moments
    /// are contiguous by construction and checked again by the kernels).
    fn fused_path_applies(&self, grads: &[Tensor], scale: Option<&Tensor>) -> bool {
        let cpu_f32 = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
        self.vars.iter().all(|v| cpu_f32(v.as_tensor()) && v.is_contiguous())
            && grads.iter().all(cpu_f32)
            && scale.is_none_or(|s| cpu_f32(s) && s.elem_count() == 1)
    }

    fn step_fused(&mut self, grads: &[Tensor], scale: Option<&Tensor>) -> Result<()> {
        self.step += 1;
        let (lr, beta1, beta2) = (self.lr, self.beta1, self.beta2);
        let scale_m = 1f64 / (1f64 - beta1.powi(self.step as i32));
        let scale_v = 1f64 / (1f64 - beta2.powi(self.step as i32));
        // x * 1.0 is exact, so no scale and a scale of one give the same bits.
        let g_scale = match scale {
            Some(s) => s.flatten_all()?.to_vec1::<f32>()?[0],
            None => 1.0,
        };
        // The constants as candle's affine casts them: f64 -> f32.
        let m_op =
            AdamMoment { beta: beta1 as f32, one_minus_beta: (1.0 - beta1) as f32, g_scale, square: false };
        let v_op =
            AdamMoment { beta: beta2 as f32, one_minus_beta: (1.0 - beta2) as f32, g_scale, square: true };
        let theta_op = AdamTheta {
            scale_m: scale_m as f32,
            scale_v: scale_v as f32,
            eps: self.eps as f32,
            lr: lr as f32,
        };
        for (((theta, m), v), g) in self.vars.iter().zip(&self.m).zip(&self.v).zip(grads) {
            // Backward's gradients of transposed weights are strided views: one copy then.
            let g = g.contiguous()?;
            m.inplace_op2(&g, &m_op)?;
            v.inplace_op2(&g, &v_op)?;
            theta.inplace_op3(m.as_tensor(), v.as_tensor(), &theta_op)?;
        }
        Ok(())
    }

    /// The step in candle ops, as in `candle_nn::AdamW` (any device, any float dtype).
    fn step_ops(&mut self, grads: &[Tensor]) -> Result<()> {
        self.step += 1;
        let (lr, beta1, beta2) = (self.lr, self.beta1, self.beta2);
        let scale_m = 1f64 / (1f64 - beta1.powi(self.step as i32));
        let scale_v = 1f64 / (1f64 - beta2.powi(self.step as i32));
        for (((theta, m), v), g) in self.vars.iter().zip(&self.m).zip(&self.v).zip(grads) {
            // candle_nn::AdamW::step, without the `theta * (1 - lr * weight_decay)` factor
            // (an exact multiplication by 1 when weight_decay = 0).
            let next_m = ((m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
            let next_v = ((v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let adjusted_grad = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
            let next_theta = (theta.as_tensor() - (adjusted_grad * lr)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
            theta.set(&next_theta)?;
        }
        Ok(())
    }

    /// `1 / (sqrt(v_hat) + eps)` per variable, the diagonal preconditioner of the last step;
    /// `None` before the first step (`v_hat` is undefined at `t = 0`).
    pub fn preconditioner(&self) -> Option<Vec<Tensor>> {
        if self.step == 0 {
            return None;
        }
        let scale_v = 1f64 / (1f64 - self.beta2.powi(self.step as i32));
        self.v
            .iter()
            .map(|v| ((v.as_tensor() * scale_v)?.sqrt()? + self.eps)?.recip())
            .collect::<Result<Vec<_>>>()
            .ok()
    }
}

/// The global L2 norm of `grads` (as one vector), a scalar tensor on their device, of their
/// dtype. On the CPU in f32: one multi-threaded pass per gradient, summing squares in f64
/// in fixed chunks (deterministic for any thread count); elsewhere candle ops.
pub fn global_grad_norm(grads: &[Tensor]) -> Result<Tensor> {
    let cpu_f32 = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if !grads.is_empty() && grads.iter().all(cpu_f32) {
        let mut total = 0f64;
        for g in grads {
            total += cpu_kernels::sum_squares(&g.contiguous()?)?;
        }
        return Tensor::new(total.sqrt() as f32, grads[0].device());
    }
    let norm_sq = grads.iter().map(|g| g.sqr()?.sum_all()).collect::<Result<Vec<_>>>()?;
    Tensor::stack(&norm_sq, 0)?.sum_all()?.sqrt()
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};

    use super::*;

    #[test]
    fn bit_identical_to_candle_adamw_without_weight_decay() {
        let dev = Device::Cpu;
        let init = Tensor::new(&[[0.3f32, -1.2, 2.0], [0.01, 5.0, -0.7]], &dev).unwrap();
        let ours = Var::from_tensor(&init).unwrap();
        let theirs = Var::from_tensor(&init).unwrap();
        let mut adam = Adam::new(vec![ours.clone()], 6.25e-5, 1.5e-4).unwrap();
        let params = ParamsAdamW { lr: 6.25e-5, eps: 1.5e-4, weight_decay: 0.0, ..ParamsAdamW::default() };
        let mut candle = AdamW::new(vec![theirs.clone()], params).unwrap();
        for k in 0..20 {
            // A loss whose gradient changes every step: sum(x^3) * (k + 1).
            let loss = (theirs.as_tensor().powf(3.0).unwrap().sum_all().unwrap() * (k + 1) as f64).unwrap();
            candle.backward_step(&loss).unwrap();
            let loss = (ours.as_tensor().powf(3.0).unwrap().sum_all().unwrap() * (k + 1) as f64).unwrap();
            let grads = loss.backward().unwrap();
            adam.step(&[grads.get(&ours).unwrap().clone()]).unwrap();
            assert_eq!(ours.to_vec2::<f32>().unwrap(), theirs.to_vec2::<f32>().unwrap(), "step {k}");
        }
        assert_eq!(adam.step_count(), 20);
    }

    /// Deterministic pseudo-random values in about [-scale, scale].
    fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = (i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)).wrapping_mul(2246822519);
                ((h >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn fused_step_is_bit_identical_to_the_candle_ops_step() {
        let dev = Device::Cpu;
        // Shapes with several rayon chunks, a tail, and a tiny one; gradients of the first
        // are a transposed (strided) view, as backward gives for linear weights.
        let shapes: [(usize, usize); 3] = [(300, 457), (3, 5), (70_001, 1)];
        let make_vars = || {
            shapes
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    Var::from_tensor(&Tensor::from_vec(values(s.0 * s.1, i as u32, 1.0), s, &dev)?)
                })
                .collect::<Result<Vec<_>>>()
        };
        let (fused_vars, ops_vars) = (make_vars().unwrap(), make_vars().unwrap());
        let mut fused = Adam::new(fused_vars.clone(), 1e-3, 1.5e-4).unwrap();
        let mut ops = Adam::new(ops_vars.clone(), 1e-3, 1.5e-4).unwrap();
        ops.set_fused(false);
        for k in 0..6u32 {
            let grads = shapes
                .iter()
                .enumerate()
                .map(|(i, &(r, c))| {
                    let g = values(r * c, 100 + 7 * k + i as u32, 10f32.powi(i as i32 - 1));
                    if i == 0 {
                        Tensor::from_vec(g, (c, r), &dev)?.t()
                    } else {
                        Tensor::from_vec(g, (r, c), &dev)
                    }
                })
                .collect::<Result<Vec<_>>>()
                .unwrap();
            assert!(!grads[0].is_contiguous());
            // Steps with and without a clipping factor.
            let scale = (k % 2 == 1).then(|| Tensor::new(0.37f32, &dev).unwrap());
            fused.step_scaled(&grads, scale.as_ref()).unwrap();
            ops.step_scaled(&grads, scale.as_ref()).unwrap();
            let flat = |v: &Var| v.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let bits = |v: &Var| flat(v).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for i in 0..shapes.len() {
                assert_eq!(bits(&fused_vars[i]), bits(&ops_vars[i]), "theta {i}, step {k}");
                assert_eq!(bits(&fused.moments().0[i]), bits(&ops.moments().0[i]), "m {i}, step {k}");
                assert_eq!(bits(&fused.moments().1[i]), bits(&ops.moments().1[i]), "v {i}, step {k}");
            }
        }
    }

    #[test]
    fn f64_takes_the_candle_ops_path_and_matches_f32_fused() {
        let dev = Device::Cpu;
        let init = values(1000, 3, 1.0);
        let x32 = Var::from_vec(init.clone(), 1000, &dev).unwrap();
        let x64 = Var::from_tensor(&x32.to_dtype(DType::F64).unwrap()).unwrap();
        let mut a32 = Adam::new(vec![x32.clone()], 1e-2, 1e-8).unwrap();
        let mut a64 = Adam::new(vec![x64.clone()], 1e-2, 1e-8).unwrap();
        for k in 0..5 {
            let g = Tensor::from_vec(values(1000, 50 + k, 2.0), 1000, &dev).unwrap();
            a32.step(std::slice::from_ref(&g)).unwrap();
            a64.step(&[g.to_dtype(DType::F64).unwrap()]).unwrap();
        }
        let (y32, y64) = (x32.to_vec1::<f32>().unwrap(), x64.to_vec1::<f64>().unwrap());
        for (a, b) in y32.iter().zip(&y64) {
            assert!((*a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn fused_global_norm_matches_candle_ops() {
        let dev = Device::Cpu;
        let grads = [
            Tensor::from_vec(values(513 * 300, 1, 3.0), (513, 300), &dev).unwrap().t().unwrap(),
            Tensor::from_vec(values(7, 2, 0.01), 7, &dev).unwrap(),
            Tensor::from_vec(values(100_003, 3, 1e-3), 100_003, &dev).unwrap(),
        ];
        let fused = global_grad_norm(&grads).unwrap();
        assert_eq!((fused.dtype(), fused.dims().len()), (DType::F32, 0));
        let fused = fused.to_scalar::<f32>().unwrap() as f64;
        // The candle ops path in f64 (the dtype that does not take the fused path).
        let g64 = grads.iter().map(|g| g.to_dtype(DType::F64).unwrap()).collect::<Vec<_>>();
        let reference = global_grad_norm(&g64).unwrap().to_scalar::<f64>().unwrap();
        assert!((fused - reference).abs() <= 1e-6 * reference, "{fused} vs {reference}");
        // And the same again: deterministic.
        assert_eq!(global_grad_norm(&grads).unwrap().to_scalar::<f32>().unwrap() as f64, fused);
    }

    #[test]
    fn preconditioner_is_one_over_sqrt_v_hat_plus_eps() {
        let x = Var::zeros(2, DType::F64, &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![x], 0.1, 1e-3).unwrap();
        assert!(adam.preconditioner().is_none());
        adam.step(&[Tensor::new(&[2.0f64, -0.5], &Device::Cpu).unwrap()]).unwrap();
        // After one step v_hat = g^2 exactly.
        let p = adam.preconditioner().unwrap()[0].to_vec1::<f64>().unwrap();
        assert!((p[0] - 1.0 / (2.0 + 1e-3)).abs() < 1e-12 && (p[1] - 1.0 / (0.5 + 1e-3)).abs() < 1e-12);
    }
}
