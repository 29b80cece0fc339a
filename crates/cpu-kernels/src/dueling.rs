//! The dueling head's combine and its log-softmax in one op: `a (batch, actions, atoms)` and
//! `v (batch, 1, atoms)` to `log_softmax(v + a - mean_actions a)` over the atoms.
//!
//! In candle's ops the combine is a mean, a broadcast subtraction and a broadcast addition
//! over the `(batch, actions, atoms)` tensor, and their backward as many again plus the
//! gradient store's accumulations: at a small action set their cost is mostly each op's
//! own overhead, at a large one their passes. Here the forward is one pass per batch row
//! (the mean over actions, then each action's logits and their log-softmax, as
//! [`crate::LogSoftmax`]), and the backward [`crate::LogSoftmax`]'s pass plus `dv = sum over
//! actions of dlogits` and `da = dlogits - dv / actions`.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::log_softmax::{log_softmax_row, LogSoftmaxGrad};
use crate::slices::{contiguous, rows_per_task};

/// The op; f32 on the CPU (callers keep candle's ops elsewhere).
#[derive(Clone, Copy, Debug)]
pub struct DuelingLogSoftmax;

impl DuelingLogSoftmax {
    /// `a (batch, actions, atoms)`, `v (batch, 1, atoms)` -> the log-probabilities
    /// `(batch, actions, atoms)`, differentiable in both.
    pub fn apply(a: &Tensor, v: &Tensor) -> Result<Tensor> {
        a.contiguous()?.apply_op2(&v.contiguous()?, DuelingLogSoftmax)
    }
}

impl CustomOp2 for DuelingLogSoftmax {
    fn name(&self) -> &'static str {
        "dueling-log-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = contiguous::<f32>(s1, l1, self.name())?;
        let v = contiguous::<f32>(s2, l2, self.name())?;
        let (actions, atoms) = match l1.shape().dims() {
            &[b, n, k] if n > 0 && k > 0 && l2.shape().dims() == [b, 1, k] => (n, k),
            _ => bail!(
                "{}: expected a (batch, actions, atoms) and v (batch, 1, atoms), got {:?} and {:?}",
                self.name(),
                l1.shape().dims(),
                l2.shape().dims()
            ),
        };
        // Whole batch rows per rayon task, about CHUNK entries, with one scratch each.
        let (row, rows) = (actions * atoms, rows_per_task(actions * atoms));
        let mut y = vec![0f32; a.len()];
        y.par_chunks_mut(rows * row).zip(a.par_chunks(rows * row)).zip(v.par_chunks(rows * atoms)).for_each(
            |((y, a), v)| {
                let (mut mean, mut logits) = (vec![0f32; atoms], vec![0f32; atoms]);
                for ((y, a), v) in y.chunks_exact_mut(row).zip(a.chunks_exact(row)).zip(v.chunks_exact(atoms))
                {
                    mean.fill(0.0);
                    for action in a.chunks_exact(atoms) {
                        mean.iter_mut().zip(action).for_each(|(m, &x)| *m += x);
                    }
                    mean.iter_mut().for_each(|m| *m /= actions as f32);
                    for (y, a) in y.chunks_exact_mut(atoms).zip(a.chunks_exact(atoms)) {
                        for (((l, &a), &m), &v) in logits.iter_mut().zip(a).zip(&mean).zip(v) {
                            *l = (a - m) + v;
                        }
                        log_softmax_row(&logits, y);
                    }
                }
            },
        );
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        _v: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dlogits = y.apply_op2_no_bwd(&grad.contiguous()?, &LogSoftmaxGrad)?;
        let dv = dlogits.sum_keepdim(1)?;
        let da = dlogits.broadcast_sub(&(&dv / a.dim(1)? as f64)?)?;
        Ok((Some(da), Some(dv)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var, D};

    use super::*;
    use crate::testing::{rel, values, weighted_grad};

    /// Against candle's mean, broadcast subtraction and addition and `log_softmax`: values,
    /// and the gradients in `a` and `v` of a weighted sum, at 1042 and 18 actions and a
    /// small case.
    #[test]
    fn matches_candle_values_and_gradients() {
        let dev = Device::Cpu;
        for (batch, actions, atoms) in [(32, 1042, 51), (32, 18, 51), (2, 3, 5)] {
            let n = batch * actions * atoms;
            let a = Var::from_vec(values(n, 1, 3.0), (batch, actions, atoms), &dev).unwrap();
            let v = Var::from_vec(values(batch * atoms, 2, 3.0), (batch, 1, atoms), &dev).unwrap();
            let weights = Tensor::from_vec(values(n, 3, 1.0), (batch, actions, atoms), &dev).unwrap();

            let ours = DuelingLogSoftmax::apply(a.as_tensor(), v.as_tensor()).unwrap();
            let mean = a.as_tensor().mean_keepdim(1).unwrap();
            let logits = a.as_tensor().broadcast_sub(&mean).unwrap().broadcast_add(v.as_tensor()).unwrap();
            let theirs = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
            let case = format!("({batch}, {actions}, {atoms})");
            assert!(rel(&ours, &theirs) < 1e-6, "{case} values: {}", rel(&ours, &theirs));
            for x in [&a, &v] {
                let (g, h) = (weighted_grad(&ours, &weights, x), weighted_grad(&theirs, &weights, x));
                assert!(rel(&g, &h) < 1e-5, "{case} gradient: {}", rel(&g, &h));
            }
        }
    }

    #[test]
    fn refuses_mismatched_shapes() {
        let a = Tensor::zeros((2, 4, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let v = Tensor::zeros((2, 1, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = DuelingLogSoftmax::apply(&a, &v).unwrap_err();
        assert!(err.to_string().contains("expected a (batch, actions, atoms)"), "{err}");
    }
}
