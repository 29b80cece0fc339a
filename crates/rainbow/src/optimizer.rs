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

use candle_core::{Result, Tensor, Var};

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
}

impl Adam {
    /// Adam with `beta1 = 0.9`, `beta2 = 0.999` (the defaults of Kingma & Ba, PyTorch and
    /// Dopamine's Rainbow) and the given learning rate and `eps`.
    pub fn new(vars: Vec<Var>, lr: f64, eps: f64) -> Result<Self> {
        let zeros = |v: &Var| Var::zeros(v.shape(), v.dtype(), v.device());
        let m = vars.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        Ok(Self { vars, m, v, step: 0, lr, beta1: 0.9, beta2: 0.999, eps })
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
        if grads.len() != self.vars.len() {
            candle_core::bail!("{} gradients for {} variables", grads.len(), self.vars.len());
        }
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
