//! `x (batch, in) . w^T` for a factorised noisy layer's weight `w = mu_w + sigma_w * eps_w`
//! `(out, in)`, `eps_w[i, j] = f_out[i] f_in[j]` (Fortunato et al. 2018, section 3.2), as
//! one CPU custom op over `(x, mu_w, sigma_w)` whose backward writes each gradient once:
//!
//! ```text
//! dx      (batch, in) = dy . w
//! d mu_w  (out, in)   = dy^T . x        (one product, no transposed copy)
//! d sigma (out, in)   = d mu_w * eps_w  (one pass from the factors)
//! ```
//!
//! `w` is formed once per built layer, in one pass from the factors (`eps_w` is never
//! materialised). candle's ops (`mu + sigma * eps_w`, then `x . w.t()`) instead give the
//! weight, its transpose and `eps_w` a node each in the backward pass, each a zero tensor
//! plus an add over the whole weight (27M entries for the advantage layer at 1042 actions),
//! and the transposed one strided.

use std::sync::Arc;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::matmul::{matmul_into, Mat};
use crate::slices::{contiguous, f32_data, with_contiguous, CHUNK};

/// The factorised noise of one sample on the CPU: `eps_w[i, j] = f_out[i] * f_in[j]`.
#[derive(Debug)]
struct Factors {
    f_in: Vec<f32>,
    f_out: Vec<f32>,
}

/// Rows per rayon task: about [`CHUNK`] elements.
fn rows_per_task(in_dim: usize) -> usize {
    CHUNK / in_dim.max(1) + 1
}

impl Factors {
    /// `out[i, j] = op(a[i, j], b[i, j], f_out[i] * f_in[j])` over row-major `(out, in)` slices.
    fn rows(&self, dst: &mut [f32], a: &[f32], b: &[f32], op: impl Fn(f32, f32, f32) -> f32 + Sync) {
        let n = self.f_in.len();
        let chunk = rows_per_task(n) * n;
        dst.par_chunks_mut(chunk).zip(a.par_chunks(chunk)).zip(b.par_chunks(chunk)).enumerate().for_each(
            |(k, ((d, a), b))| {
                let first_row = k * rows_per_task(n);
                for (r, ((d, a), b)) in d.chunks_mut(n).zip(a.chunks(n)).zip(b.chunks(n)).enumerate() {
                    let fo = self.f_out[first_row + r];
                    for (((d, &a), &b), &fi) in d.iter_mut().zip(a).zip(b).zip(&self.f_in) {
                        *d = op(a, b, fo * fi);
                    }
                }
            },
        );
    }
}

/// The op over `(x, mu_w, sigma_w)`; see the module docs. Cheap to clone (the weight is
/// shared).
#[derive(Clone, Debug)]
pub struct NoisyMatmul(Arc<NoisyMatmulData>);

#[derive(Debug)]
struct NoisyMatmulData {
    /// `w`, `(out, in)`, row-major.
    w: Vec<f32>,
    factors: Factors,
    in_dim: usize,
}

impl NoisyMatmul {
    /// The op for `mu_w` and `sigma_w`, contiguous f32 CPU tensors of shape `(out, in)`, and
    /// the noise factors `f(eps_in)` `(in,)` and `f(eps_out)` `(out,)`. Forms `w` with the
    /// roundings of candle's ops: `eps = f_out * f_in`, then `sigma * eps`, then `mu +`
    /// that (no FMA contraction in Rust).
    pub fn new(mu_w: &Tensor, sigma_w: &Tensor, f_in: &[f64], f_out: &[f64]) -> Result<Self> {
        let (out_dim, in_dim) = mu_w.dims2()?;
        if sigma_w.dims() != mu_w.dims() || f_in.len() != in_dim || f_out.len() != out_dim {
            bail!(
                "noisy-matmul: mu {:?}, sigma {:?}, factors of lengths ({}, {})",
                mu_w.dims(),
                sigma_w.dims(),
                f_in.len(),
                f_out.len()
            );
        }
        let factors = Factors {
            f_in: f_in.iter().map(|&x| x as f32).collect(),
            f_out: f_out.iter().map(|&x| x as f32).collect(),
        };
        let mut w = vec![0f32; out_dim * in_dim];
        with_contiguous::<f32, _>(mu_w, |mu| {
            with_contiguous::<f32, _>(sigma_w, |sigma| {
                factors.rows(&mut w, mu, sigma, |m, s, eps| m + s * eps)
            })
        })
        .flatten()
        .ok_or_else(|| {
            candle_core::Error::Msg("noisy-matmul: expected contiguous f32 CPU parameters".into())
        })?;
        Ok(Self(Arc::new(NoisyMatmulData { w, factors, in_dim })))
    }

    /// `x (batch, in) . w^T`, `(batch, out)`, with gradients for `x`, `mu` and `sigma` (the
    /// tensors the op was built from).
    pub fn apply(&self, x: &Tensor, mu: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op3(mu, sigma, self.clone())
    }

    /// The same product over `x` alone, for a detached layer.
    pub fn frozen(&self) -> FrozenNoisyMatmul {
        FrozenNoisyMatmul(self.0.clone())
    }
}

impl CustomOp3 for NoisyMatmul {
    fn name(&self) -> &'static str {
        "noisy-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
        _s3: &CpuStorage,
        _l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.forward(s1, l1, self.name())
    }

    fn bwd(
        &self,
        x: &Tensor,
        mu: &Tensor,
        sigma: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = &*self.0;
        let (_, in_dim) = x.dims2()?;
        let out_dim = d.factors.f_out.len();
        let (xs, dy) = (f32_data(x)?, f32_data(grad)?);
        let dx = d.input_grad(x, &dy)?;
        let mut dw = vec![0f32; out_dim * in_dim];
        matmul_into(&mut dw, Mat::rows(&dy, out_dim).t(), Mat::rows(&xs, in_dim));
        let mut dsigma = vec![0f32; dw.len()];
        d.factors.rows(&mut dsigma, &dw, &dw, |g, _, eps| g * eps);
        Ok((
            Some(dx),
            Some(Tensor::from_vec(dw, mu.shape(), mu.device())?),
            Some(Tensor::from_vec(dsigma, sigma.shape(), sigma.device())?),
        ))
    }
}

impl NoisyMatmulData {
    /// `x (batch, in) . w^T` on the CPU; `op` names the op in errors.
    fn forward(&self, s: &CpuStorage, l: &Layout, op: &str) -> Result<(CpuStorage, Shape)> {
        let out_dim = self.factors.f_out.len();
        let (batch, in_dim) = match l.dims() {
            &[batch, in_dim] if in_dim == self.in_dim => (batch, in_dim),
            dims => candle_core::bail!("{op}: input of shape {dims:?}, expected (batch, {})", self.in_dim),
        };
        let x = contiguous::<f32>(s, l, op)?;
        let mut y = vec![0f32; batch * out_dim];
        matmul_into(&mut y, Mat::rows(x, in_dim), Mat::rows(&self.w, in_dim).t());
        Ok((CpuStorage::F32(y), Shape::from((batch, out_dim))))
    }

    /// `dx (batch, in) = dy . w` for the output gradient `dy`, row-major `(batch, out)`.
    fn input_grad(&self, x: &Tensor, dy: &[f32]) -> Result<Tensor> {
        let mut dx = vec![0f32; x.elem_count()];
        matmul_into(&mut dx, Mat::rows(dy, self.factors.f_out.len()), Mat::rows(&self.w, self.in_dim));
        Tensor::from_vec(dx, x.shape(), x.device())
    }
}

/// [`NoisyMatmul`]'s product over `x` alone, sharing its weights: the layer of a detached
/// network whose input may still need a gradient (MASP's lookahead runs the update's
/// layers on looked-ahead features). Its backward is `dx = dy . w` only: the weight
/// gradients, two products and 27M entries each for the advantage layer at 1042 actions,
/// would go nowhere.
#[derive(Clone, Debug)]
pub struct FrozenNoisyMatmul(Arc<NoisyMatmulData>);

impl CustomOp1 for FrozenNoisyMatmul {
    fn name(&self) -> &'static str {
        "frozen-noisy-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.0.forward(s, l, self.name())
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(self.0.input_grad(x, &f32_data(grad)?)?))
    }
}

impl FrozenNoisyMatmul {
    /// `x (batch, in) . w^T`, `(batch, out)`, with a gradient for `x` alone.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::testing::{rel, values};

    /// The op against the same layer in candle's ops (`x . (mu + sigma * outer(f_out,
    /// f_in))^T`): values and the gradients of the input and both parameters; the frozen
    /// op's values and input gradient too.
    #[test]
    fn matches_candle_ops_values_and_gradients() {
        let dev = Device::Cpu;
        for (batch, n_in, n_out) in [(5, 3, 2), (5, 700, 130), (1, 64, 33)] {
            let var = |seed, shape: (usize, usize), scale| {
                Var::from_tensor(
                    &Tensor::from_vec(values(shape.0 * shape.1, seed, scale), shape, &dev).unwrap(),
                )
                .unwrap()
            };
            let (mu, sigma, x) =
                (var(1, (n_out, n_in), 0.5), var(2, (n_out, n_in), 0.1), var(3, (batch, n_in), 1.0));
            let f = |v: Vec<f32>| v.iter().map(|&x| (x.signum() * x.abs().sqrt()) as f64).collect::<Vec<_>>();
            let (f_in, f_out) = (f(values(n_in, 4, 2.0)), f(values(n_out, 5, 2.0)));
            let eps = Tensor::from_vec(f_out.iter().map(|&x| x as f32).collect(), (n_out, 1), &dev)
                .unwrap()
                .broadcast_mul(
                    &Tensor::from_vec(f_in.iter().map(|&x| x as f32).collect(), (1, n_in), &dev).unwrap(),
                )
                .unwrap();
            let w = (mu.as_tensor() + sigma.as_tensor().mul(&eps).unwrap()).unwrap();
            let reference = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
            let op = NoisyMatmul::new(mu.as_tensor(), sigma.as_tensor(), &f_in, &f_out).unwrap();
            let ours = op.apply(x.as_tensor(), mu.as_tensor(), sigma.as_tensor()).unwrap();
            assert!(rel(&ours, &reference) <= 1e-5, "forward {n_in}x{n_out}");
            let frozen = op.frozen().apply(x.as_tensor()).unwrap();
            assert_eq!(frozen.to_vec2::<f32>().unwrap(), ours.to_vec2::<f32>().unwrap());
            let w_out = Tensor::from_vec(values(batch * n_out, 6, 1.0), (batch, n_out), &dev).unwrap();
            let loss = |y: &Tensor| (y * &w_out).unwrap().sum_all().unwrap().backward().unwrap();
            let (go, gr, gf) = (loss(&ours), loss(&reference), loss(&frozen));
            for (name, v) in [("mu", &mu), ("sigma", &sigma), ("input", &x)] {
                let (a, b) = (go.get(v).unwrap(), gr.get(v).unwrap());
                assert!(rel(a, b) <= 1e-5, "{name} {n_in}x{n_out}: {}", rel(a, b));
            }
            assert!(gf.get(&mu).is_none() && gf.get(&sigma).is_none(), "frozen: no weight gradients");
            assert_eq!(
                gf.get(&x).unwrap().to_vec2::<f32>().unwrap(),
                go.get(&x).unwrap().to_vec2::<f32>().unwrap()
            );
        }
    }
}
