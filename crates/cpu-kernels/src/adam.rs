//! Adam's step on the CPU as three fused in-place passes over each variable: `m`, then `v`,
//! then `theta` from the new moments. Each pass does exactly the f32 operations of candle's
//! `AdamW` (`affine`s and `add`s, in the same order), so the two give bit-identical
//! results, and reads and writes each tensor once, with no allocation.

use candle_core::{bail, CpuStorage, InplaceOp2, InplaceOp3, Layout, Result};

use crate::slices::{contiguous, contiguous_mut, zip1, zip2};

/// An Adam moment in place, over `(m, g)`: `m <- (m * beta + 0) + ((g * s) * (1 - beta) + 0)`,
/// or with `(g * s)^2` for the second moment (`s` the gradient-norm clipping factor, 1
/// without clipping: `x * 1.0` is exact).
pub struct AdamMoment {
    pub beta: f32,
    pub one_minus_beta: f32,
    pub g_scale: f32,
    /// The second moment: square the scaled gradient.
    pub square: bool,
}

impl InplaceOp2 for AdamMoment {
    fn name(&self) -> &'static str {
        "adam-moment"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (m, g) = (contiguous_mut::<f32>(s1, l1, self.name())?, contiguous::<f32>(s2, l2, self.name())?);
        if m.len() != g.len() {
            bail!("adam-moment: {} moments for {} gradients", m.len(), g.len());
        }
        let Self { beta, one_minus_beta: c, g_scale, .. } = *self;
        if self.square {
            zip1(m, g, |v, g| {
                let g = g * g_scale;
                (v * beta + 0.0) + ((g * g) * c + 0.0)
            });
        } else {
            zip1(m, g, |m, g| (m * beta + 0.0) + ((g * g_scale) * c + 0.0));
        }
        Ok(())
    }
}

/// The parameter update in place from the new moments, over `(theta, m, v)`:
/// `theta <- theta - ((m * sm + 0) / ((sqrt(v * sv + 0) * 1 + eps)) * lr + 0)`, with `sm`
/// and `sv` the bias corrections `1 / (1 - beta^t)`.
pub struct AdamTheta {
    pub scale_m: f32,
    pub scale_v: f32,
    pub eps: f32,
    pub lr: f32,
}

impl InplaceOp3 for AdamTheta {
    fn name(&self) -> &'static str {
        "adam-theta"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let theta = contiguous_mut::<f32>(s1, l1, self.name())?;
        let (m, v) = (contiguous::<f32>(s2, l2, self.name())?, contiguous::<f32>(s3, l3, self.name())?);
        if theta.len() != m.len() || theta.len() != v.len() {
            bail!("adam-theta: {} parameters, {} and {} moments", theta.len(), m.len(), v.len());
        }
        let Self { scale_m, scale_v, eps, lr } = *self;
        zip2(theta, m, v, |t, m, v| {
            let m_hat = m * scale_m + 0.0;
            let v_hat = v * scale_v + 0.0;
            let adjusted = m_hat / (v_hat.sqrt() * 1.0 + eps);
            t - (adjusted * lr + 0.0)
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;
    use crate::slices::CHUNK;
    use crate::testing::{bits, values};

    /// Both passes against candle_nn::AdamW's ops, bit for bit, on a tensor of several
    /// chunks and a tail, with and without a clipping factor.
    #[test]
    fn bit_identical_to_candle_ops() {
        let dev = Device::Cpu;
        let n = 2 * CHUNK + 9;
        let tensor = |seed, scale| Tensor::from_vec(values(n, seed, scale), n, &dev).unwrap();
        let (beta1, beta2, lr, eps, t) = (0.9f64, 0.999f64, 1e-3f64, 1.5e-4f64, 3);
        let (scale_m, scale_v) = (1.0 / (1.0 - beta1.powi(t)), 1.0 / (1.0 - beta2.powi(t)));
        for g_scale in [1.0f32, 0.37] {
            let (theta, m, v) = (tensor(1, 1.0), tensor(2, 0.1), tensor(3, 0.01).abs().unwrap());
            let g = tensor(4, 2.0);
            // candle_nn::AdamW::step's ops (weight decay 0), on the scaled gradient.
            let gs = (&g * g_scale as f64).unwrap();
            let next_m = ((&m * beta1).unwrap() + (&gs * (1.0 - beta1)).unwrap()).unwrap();
            let next_v = ((&v * beta2).unwrap() + (gs.sqr().unwrap() * (1.0 - beta2)).unwrap()).unwrap();
            let adjusted = ((&next_m * scale_m).unwrap()
                / ((&next_v * scale_v).unwrap().sqrt().unwrap() + eps).unwrap())
            .unwrap();
            let next_theta = (&theta - (adjusted * lr).unwrap()).unwrap();

            let (ours_theta, ours_m, ours_v) = (
                Var::from_tensor(&theta).unwrap(),
                Var::from_tensor(&m).unwrap(),
                Var::from_tensor(&v).unwrap(),
            );
            let moment = |beta: f64, square| AdamMoment {
                beta: beta as f32,
                one_minus_beta: (1.0 - beta) as f32,
                g_scale,
                square,
            };
            ours_m.inplace_op2(&g, &moment(beta1, false)).unwrap();
            ours_v.inplace_op2(&g, &moment(beta2, true)).unwrap();
            let step = AdamTheta {
                scale_m: scale_m as f32,
                scale_v: scale_v as f32,
                eps: eps as f32,
                lr: lr as f32,
            };
            ours_theta.inplace_op3(ours_m.as_tensor(), ours_v.as_tensor(), &step).unwrap();
            assert_eq!(bits(ours_m.as_tensor()), bits(&next_m), "m, scale {g_scale}");
            assert_eq!(bits(ours_v.as_tensor()), bits(&next_v), "v, scale {g_scale}");
            assert_eq!(bits(ours_theta.as_tensor()), bits(&next_theta), "theta, scale {g_scale}");
        }
    }
}
