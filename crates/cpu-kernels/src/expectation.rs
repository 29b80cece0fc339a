//! `sum_j z_j exp(x_j)` over the last axis: the expected value of a C51 distribution given
//! by its log-probabilities `x` (the Q-values of `rainbow::Support::expected_q`).
//!
//! In candle's ops this is `exp`, a broadcast product with `z` and a sum, and its backward
//! as many passes again, each over a `(batch, actions, atoms)` tensor (1.7M entries at 1042
//! actions): together about 35 ms of the MASP penalty's 45 ms a update there
//! (docs/benchmarks.md). Here the forward is one pass that writes `(batch, actions)` and
//! the backward one pass, `dx_j = g z_j exp(x_j)`. Each output entry sums its atoms in
//! order, so it equals candle's (which sums in SIMD lanes) to rounding.

use std::sync::Arc;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::slices::{contiguous, rows_per_task};

/// The op, for one support `z`; f32 on the CPU (callers keep candle's ops elsewhere).
#[derive(Clone, Debug)]
pub struct ExpectedValue(Arc<[f32]>);

impl ExpectedValue {
    /// The support's atom values `z`, at least one.
    pub fn new(z: &[f32]) -> Self {
        assert!(!z.is_empty(), "ExpectedValue needs at least one atom");
        Self(z.into())
    }

    /// `(.., atoms)` log-probabilities -> `(..)` expected values, differentiable in `x`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }

    /// Rows of `x` (each `atoms` long) per rayon task: about [`crate::slices::CHUNK`] entries.
    fn rows_per_task(&self) -> usize {
        rows_per_task(self.0.len())
    }

    fn check<'a>(&self, s: &'a CpuStorage, l: &Layout, op: &str) -> Result<(&'a [f32], Shape)> {
        let x = contiguous::<f32>(s, l, op)?;
        let dims = l.shape().dims();
        match dims.split_last() {
            Some((&atoms, rows)) if atoms == self.0.len() => Ok((x, Shape::from(rows))),
            _ => bail!("{op}: expected (.., {}) log-probabilities, got {:?}", self.0.len(), dims),
        }
    }
}

impl CustomOp1 for ExpectedValue {
    fn name(&self) -> &'static str {
        "expected-value"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, shape) = self.check(s, l, self.name())?;
        let (z, rows) = (&*self.0, self.rows_per_task());
        let mut q = vec![0f32; shape.elem_count()];
        q.par_chunks_mut(rows).zip(x.par_chunks(rows * z.len())).for_each(|(q, x)| {
            for (q, x) in q.iter_mut().zip(x.chunks_exact(z.len())) {
                *q = x.iter().zip(z).fold(0.0, |acc, (&x, &z)| acc + x.exp() * z);
            }
        });
        Ok((CpuStorage::F32(q), shape))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &ExpectedValueGrad(self.clone()))?))
    }
}

/// [`ExpectedValue`]'s backward: `(x (.., atoms), g (..))` -> `g z_j exp(x_j)` `(.., atoms)`.
struct ExpectedValueGrad(ExpectedValue);

impl CustomOp2 for ExpectedValueGrad {
    fn name(&self) -> &'static str {
        "expected-value-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, rows_shape) = self.0.check(s1, l1, self.name())?;
        let g = contiguous::<f32>(s2, l2, self.name())?;
        if l2.shape() != &rows_shape {
            bail!("{}: gradient {:?} for values {:?}", self.name(), l2.shape(), rows_shape);
        }
        let (z, rows) = (&*self.0 .0, self.0.rows_per_task());
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(rows * z.len()).zip(x.par_chunks(rows * z.len())).zip(g.par_chunks(rows)).for_each(
            |((dx, x), g)| {
                for ((dx, x), &g) in dx.chunks_exact_mut(z.len()).zip(x.chunks_exact(z.len())).zip(g) {
                    for ((dx, &x), &z) in dx.iter_mut().zip(x).zip(z) {
                        *dx = g * z * x.exp();
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

    /// Against candle's `exp`, broadcast product and sum: values, and the gradient of a
    /// weighted sum of them, for a `(batch, actions, atoms)` input larger than a task's
    /// chunk and a small rank-2 one.
    #[test]
    fn matches_candle_ops_values_and_gradient() {
        let dev = Device::Cpu;
        for dims in [vec![32, 1042, 51], vec![3, 5]] {
            let atoms = *dims.last().unwrap();
            let n: usize = dims.iter().product();
            let z: Vec<f32> = (0..atoms).map(|i| -10.0 + 20.0 * i as f32 / (atoms - 1) as f32).collect();
            let zt = Tensor::new(z.as_slice(), &dev).unwrap();
            let logits = Tensor::from_vec(values(n, 1, 3.0), dims.as_slice(), &dev).unwrap();
            let x = Var::from_tensor(&candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap()).unwrap();
            let weights = Tensor::from_vec(values(n / atoms, 2, 1.0), &dims[..dims.len() - 1], &dev).unwrap();

            let ours = ExpectedValue::new(&z).apply(x.as_tensor()).unwrap();
            let theirs = x.as_tensor().exp().unwrap().broadcast_mul(&zt).unwrap().sum(D::Minus1).unwrap();
            assert!(rel(&ours, &theirs) < 1e-6, "values: {}", rel(&ours, &theirs));

            let (a, b) = (&weighted_grad(&ours, &weights, &x), &weighted_grad(&theirs, &weights, &x));
            assert!(rel(a, b) < 1e-6, "gradient: {}", rel(a, b));
        }
    }

    #[test]
    fn refuses_another_number_of_atoms() {
        let x = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = ExpectedValue::new(&[0.0, 1.0, 2.0]).apply(&x).unwrap_err();
        assert!(err.to_string().contains("expected (.., 3) log-probabilities"), "{err}");
    }
}
