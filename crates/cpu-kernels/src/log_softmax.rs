//! `log_softmax` over the last axis: a C51 head's log-probabilities from its logits.
//!
//! candle's `log_softmax` is a max, a broadcast subtraction, `exp`, a sum, `log` and a
//! second subtraction, and its backward as many passes again plus the gradient store's
//! accumulations, each over a `(batch, actions, atoms)` tensor: with a large action set the
//! head's largest cost after its products (docs/benchmarks.md). Here the forward is one pass
//! per row, `y = (x - max) - ln sum exp(x - max)` in candle's order, and the backward one,
//! `dx = g - exp(y) sum g`.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::slices::{contiguous, rows_per_task};

/// The op; f32 on the CPU (callers keep candle's ops elsewhere).
#[derive(Clone, Copy, Debug)]
pub struct LogSoftmax;

impl LogSoftmax {
    /// `(.., n)` logits -> `(.., n)` log-probabilities over the last axis, differentiable.
    pub fn apply(x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(LogSoftmax)
    }
}

/// `y = (x - max) - ln sum exp(x - max)` over one row, in candle's order.
pub(crate) fn log_softmax_row(x: &[f32], y: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = x.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
    for (y, &x) in y.iter_mut().zip(x) {
        *y = (x - max) - log_sum;
    }
}

/// The last axis' length of `l` (at least one entry) and the rows per rayon task.
fn rows(l: &Layout, op: &str) -> Result<(usize, usize)> {
    match l.shape().dims().last() {
        Some(&n) if n > 0 => Ok((n, rows_per_task(n))),
        _ => bail!("{op}: expected a non-empty last axis, got {:?}", l.shape().dims()),
    }
}

impl CustomOp1 for LogSoftmax {
    fn name(&self) -> &'static str {
        "log-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous::<f32>(s, l, self.name())?;
        let (n, rows) = rows(l, self.name())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(rows * n).zip(x.par_chunks(rows * n)).for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                log_softmax_row(x, y);
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&grad.contiguous()?, &LogSoftmaxGrad)?))
    }
}

/// [`LogSoftmax`]'s backward: `(y, g)`, both `(.., n)` -> `g - exp(y) sum g` per row.
pub(crate) struct LogSoftmaxGrad;

impl CustomOp2 for LogSoftmaxGrad {
    fn name(&self) -> &'static str {
        "log-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = contiguous::<f32>(s1, l1, self.name())?;
        let g = contiguous::<f32>(s2, l2, self.name())?;
        if l1.shape() != l2.shape() {
            bail!("{}: gradient {:?} for values {:?}", self.name(), l2.shape(), l1.shape());
        }
        let (n, rows) = rows(l1, self.name())?;
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(rows * n).zip(y.par_chunks(rows * n)).zip(g.par_chunks(rows * n)).for_each(
            |((dx, y), g)| {
                for ((dx, y), g) in dx.chunks_exact_mut(n).zip(y.chunks_exact(n)).zip(g.chunks_exact(n)) {
                    let total: f32 = g.iter().sum();
                    for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                        *dx = g - y.exp() * total;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var, D};

    use super::*;
    use crate::testing::{rel, values, weighted_grad};

    /// Against candle's `log_softmax`: values, and the gradient of a weighted sum of them, for
    /// a `(batch, actions, atoms)` input larger than a task's chunk, a small rank-2 one, and
    /// logits far from zero (`exp(100)` overflows f32: the max must be subtracted first).
    #[test]
    fn matches_candle_values_and_gradient() {
        let dev = Device::Cpu;
        for (dims, offset) in [(vec![32, 1042, 51], 0.0), (vec![3, 5], 0.0), (vec![4, 7], 100.0)] {
            let n: usize = dims.iter().product();
            let logits =
                (Tensor::from_vec(values(n, 1, 3.0), dims.as_slice(), &dev).unwrap() + offset).unwrap();
            let x = Var::from_tensor(&logits).unwrap();
            let weights = Tensor::from_vec(values(n, 2, 1.0), dims.as_slice(), &dev).unwrap();

            let ours = LogSoftmax::apply(x.as_tensor()).unwrap();
            let theirs = candle_nn::ops::log_softmax(x.as_tensor(), D::Minus1).unwrap();
            assert!(rel(&ours, &theirs) < 1e-6, "{dims:?} values: {}", rel(&ours, &theirs));

            let (a, b) = (&weighted_grad(&ours, &weights, &x), &weighted_grad(&theirs, &weights, &x));
            assert!(rel(a, b) < 1e-5, "{dims:?} gradient: {}", rel(a, b));
        }
    }

    #[test]
    fn refuses_an_empty_last_axis() {
        let x = Tensor::zeros((2, 0), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = LogSoftmax::apply(&x).unwrap_err();
        assert!(err.to_string().contains("non-empty last axis"), "{err}");
    }
}
