//! `NoisyLinear`: a linear layer with factorised Gaussian parameter noise (Fortunato et al.
//! 2018, "Noisy Networks for Exploration", section 3.2).
//!
//! `y = x w^T + b` with `w = mu_w + sigma_w * eps_w` and `b = mu_b + sigma_b * eps_b`, where
//! the noise is factorised: `eps_w[i, j] = f(eps_out[i]) f(eps_in[j])`, `eps_b = f(eps_out)`,
//! `f(x) = sign(x) sqrt(|x|)`, `eps_in ~ N(0, I_in)`, `eps_out ~ N(0, I_out)`. Only
//! `in + out` normal draws per sample. Initialisation as in the paper: `mu ~ U(-1/sqrt(in),
//! 1/sqrt(in))`, `sigma = sigma0 / sqrt(in)`.
//!
//! Shapes: input `(batch, in)`, weight `(out, in)`, output `(batch, out)`.
//!
//! The noise is drawn on the host from the caller's seeded RNG (candle's CPU generator
//! cannot be seeded), only when [`NoisyLinear::resample_noise`] is called; a forward pass
//! costs one `mu + sigma * eps` over the weight on top of a plain linear layer. On the CPU
//! in f32 the layer is built as one custom op whose backward writes each gradient once
//! (`cpu_kernels::NoisyMatmul`, `eps_w` never materialised); elsewhere `eps_w` is built
//! once per sample on the device and the layer is candle's ops ([`NoisyLinear::linear`]). With the noise switched off (evaluation) the layer is
//! `x mu_w^T + mu_b`. A layer built without noise (`sigma0 = None`) has no sigma
//! parameters at all: that is the plain linear layer of the epsilon-greedy ablation.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use rainbow::NoisyLinear;
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let mut layer = NoisyLinear::new(3, 2, Some(0.5), DType::F32, &Device::Cpu, &mut rng)?;
//! layer.resample_noise(&mut rng)?;
//! let x = Tensor::ones((4, 3), DType::F32, &Device::Cpu)?;
//! assert_eq!(layer.forward(&x)?.dims(), &[4, 2]);
//! # Ok::<(), candle_core::Error>(())
//! ```

use std::sync::OnceLock;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::Module;
use cpu_kernels::{FrozenNoisyMatmul, NoisyMatmul};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The learnable noise scale and the current noise sample of a noisy layer.
#[derive(Debug)]
struct Noise {
    weight_sigma: Var,
    bias_sigma: Var,
    /// `f(eps_in)`, `(in,)`, kept on the host for checkpoints.
    f_in: Vec<f64>,
    /// `f(eps_out)`, `(out,)`; also `eps_b`.
    f_out: Vec<f64>,
    /// `f_in` as a `(1, in)` row and `f_out` as an `(out, 1)` column, on the device.
    f_in_row: Tensor,
    f_out_col: Tensor,
    /// `outer(f_out, f_in)`, `(out, in)`, on the device; built on first use after each new
    /// sample (the fused CPU path never needs it, and at 1042 actions it is 27M entries).
    eps_w: OnceLock<Tensor>,
    /// `f_out`, `(out,)`, on the device.
    eps_b: Tensor,
}

/// A linear layer with factorised Gaussian noise; see the module docs.
#[derive(Debug)]
pub struct NoisyLinear {
    in_dim: usize,
    out_dim: usize,
    weight_mu: Var,
    bias_mu: Var,
    noise: Option<Noise>,
    /// False in evaluation mode: the forward pass uses `mu` only.
    noise_on: bool,
}

/// `f(x) = sign(x) sqrt(|x|)`, the noise transform of factorised noisy nets.
fn f(x: f64) -> f64 {
    x.signum() * x.abs().sqrt()
}

impl NoisyLinear {
    /// A layer `in_dim -> out_dim`; `sigma0 = None` builds it without noise. The noise starts
    /// at zero until the first [`NoisyLinear::resample_noise`].
    pub fn new<R: Rng + ?Sized>(
        in_dim: usize,
        out_dim: usize,
        sigma0: Option<f64>,
        dtype: DType,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        let bound = 1.0 / (in_dim as f64).sqrt();
        let weight_mu = uniform_var(&[out_dim, in_dim], bound, dtype, device, rng)?;
        let bias_mu = uniform_var(&[out_dim], bound, dtype, device, rng)?;
        let noise = match sigma0 {
            None => None,
            Some(sigma0) => {
                let sigma = sigma0 / (in_dim as f64).sqrt();
                Some(Noise {
                    weight_sigma: Var::from_tensor(
                        &Tensor::full(sigma, (out_dim, in_dim), device)?.to_dtype(dtype)?,
                    )?,
                    bias_sigma: Var::from_tensor(&Tensor::full(sigma, out_dim, device)?.to_dtype(dtype)?)?,
                    f_in: vec![0.0; in_dim],
                    f_out: vec![0.0; out_dim],
                    f_in_row: Tensor::zeros((1, in_dim), dtype, device)?,
                    f_out_col: Tensor::zeros((out_dim, 1), dtype, device)?,
                    eps_w: OnceLock::new(),
                    eps_b: Tensor::zeros(out_dim, dtype, device)?,
                })
            }
        };
        Ok(Self { in_dim, out_dim, weight_mu, bias_mu, noise, noise_on: true })
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Whether the layer was built with noise.
    pub fn is_noisy(&self) -> bool {
        self.noise.is_some()
    }

    /// Draws a new noise sample: `in + out` standard normals from `rng`.
    pub fn resample_noise<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Result<()> {
        let Some(noise) = &mut self.noise else { return Ok(()) };
        for x in noise.f_in.iter_mut().chain(noise.f_out.iter_mut()) {
            *x = f(StandardNormal.sample(rng));
        }
        Self::upload(noise, self.in_dim, self.out_dim)
    }

    /// Uploads the host factors; `eps_w` is rebuilt from them on first use.
    fn upload(noise: &mut Noise, in_dim: usize, out_dim: usize) -> Result<()> {
        let (dtype, device) = (noise.weight_sigma.dtype(), noise.weight_sigma.device().clone());
        let f_in = Tensor::from_slice(&noise.f_in, (1, in_dim), &device)?.to_dtype(dtype)?;
        let f_out = Tensor::from_slice(&noise.f_out, (out_dim, 1), &device)?.to_dtype(dtype)?;
        noise.eps_b = f_out.reshape(out_dim)?;
        (noise.f_in_row, noise.f_out_col) = (f_in, f_out);
        noise.eps_w = OnceLock::new();
        Ok(())
    }

    /// `eps_w` of the current sample, built now if not yet.
    fn eps_w(noise: &Noise) -> Result<&Tensor> {
        if let Some(eps_w) = noise.eps_w.get() {
            return Ok(eps_w);
        }
        // (out, 1) * (1, in) -> (out, in): the factorised (rank-one) weight noise.
        let eps_w = noise.f_out_col.broadcast_mul(&noise.f_in_row)?;
        Ok(noise.eps_w.get_or_init(|| eps_w))
    }

    /// The current noise factors `(f(eps_in), f(eps_out))`, empty for a layer without noise.
    pub fn noise_factors(&self) -> (&[f64], &[f64]) {
        match &self.noise {
            Some(n) => (&n.f_in, &n.f_out),
            None => (&[], &[]),
        }
    }

    /// Restores a noise sample saved with [`NoisyLinear::noise_factors`].
    pub fn set_noise_factors(&mut self, f_in: &[f64], f_out: &[f64]) -> Result<()> {
        let Some(noise) = &mut self.noise else { return Ok(()) };
        if f_in.len() != self.in_dim || f_out.len() != self.out_dim {
            candle_core::bail!(
                "noise factors of lengths ({}, {}) for a {} -> {} layer",
                f_in.len(),
                f_out.len(),
                self.in_dim,
                self.out_dim
            );
        }
        noise.f_in.copy_from_slice(f_in);
        noise.f_out.copy_from_slice(f_out);
        Self::upload(noise, self.in_dim, self.out_dim)
    }

    /// `eps_w`, `(out, in)`, and `eps_b`, `(out,)`, of the current sample (for tests and
    /// diagnostics); `None` for a layer without noise (or if building `eps_w` fails on the
    /// device).
    pub fn noise(&self) -> Option<(&Tensor, &Tensor)> {
        let n = self.noise.as_ref()?;
        Some((Self::eps_w(n).ok()?, &n.eps_b))
    }

    /// `(f_in^2 (1, in), f_out^2 (1, out))` of the current sample while the noise is on,
    /// `None` while the layer is `mu` alone. A step `c` along a gradient whose `mu_w` part
    /// is `D` (and `sigma_w` part therefore `D * eps_w`) moves the effective weight by
    /// `c D * (1 + eps_w^2)`, and `eps_w^2 = f_out^2 f_in^2^T` (see `lookahead.rs`).
    pub(crate) fn noise_squares(&self) -> Result<Option<(Tensor, Tensor)>> {
        match &self.noise {
            Some(n) if self.noise_on => {
                Ok(Some((n.f_in_row.sqr()?, n.f_out_col.sqr()?.reshape((1, self.out_dim))?)))
            }
            _ => Ok(None),
        }
    }

    /// Switches the noise on (training) or off (evaluation: `w = mu`).
    pub fn set_noise_enabled(&mut self, on: bool) {
        self.noise_on = on;
    }

    pub fn noise_enabled(&self) -> bool {
        self.noise_on && self.noise.is_some()
    }

    /// The trainable parameters in a fixed order: `weight_mu, bias_mu[, weight_sigma,
    /// bias_sigma]`, with their names.
    pub fn named_vars(&self) -> Vec<(&'static str, Var)> {
        let mut out = vec![("weight_mu", self.weight_mu.clone()), ("bias_mu", self.bias_mu.clone())];
        if let Some(n) = &self.noise {
            out.push(("weight_sigma", n.weight_sigma.clone()));
            out.push(("bias_sigma", n.bias_sigma.clone()));
        }
        out
    }

    /// The layer at the current parameters and noise, as a plain candle [`candle_nn::Linear`]
    /// built with candle's ops: `w = mu_w + sigma_w * eps_w`, `b = mu_b + sigma_b * eps_b`.
    /// The reference for the fused version the network builds (`NoisyLinear::build`).
    pub fn linear(&self) -> Result<candle_nn::Linear> {
        let (mu_w, mu_b) = (self.weight_mu.as_tensor(), self.bias_mu.as_tensor());
        match &self.noise {
            Some(n) if self.noise_on => {
                let w = (mu_w + n.weight_sigma.as_tensor().mul(Self::eps_w(n)?)?)?;
                let b = (mu_b + n.bias_sigma.as_tensor().mul(&n.eps_b)?)?;
                Ok(candle_nn::Linear::new(w, Some(b)))
            }
            _ => Ok(candle_nn::Linear::new(mu_w.clone(), Some(mu_b.clone()))),
        }
    }

    /// The layer at the current parameters and noise, for any number of forward passes:
    /// the weights are formed here, once. On the CPU in f32 with the noise on, a
    /// [`NoisyMatmul`]; elsewhere [`NoisyLinear::linear`].
    pub(crate) fn build(&self) -> Result<BuiltLinear> {
        let (mu_w, mu_b) = (self.weight_mu.as_tensor(), self.bias_mu.as_tensor());
        let fused =
            [mu_w, mu_b].iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous());
        match &self.noise {
            Some(n) if self.noise_on && fused => {
                let sigma_w = n.weight_sigma.as_tensor();
                let op = NoisyMatmul::new(mu_w, sigma_w, &n.f_in, &n.f_out)?;
                let bias = (mu_b + n.bias_sigma.as_tensor().mul(&n.eps_b)?)?;
                Ok(BuiltLinear::Fused { op, mu: mu_w.clone(), sigma: sigma_w.clone(), bias })
            }
            _ => Ok(BuiltLinear::Candle(self.linear()?)),
        }
    }

    /// `(batch, in) -> (batch, out)` at the current parameters and noise.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.build()?.forward(x)
    }
}

/// A [`NoisyLinear`] at fixed parameters and noise ([`NoisyLinear::build`]).
#[derive(Clone)]
pub(crate) enum BuiltLinear {
    /// `x w^T + b` in candle's ops.
    Candle(candle_nn::Linear),
    /// `x w^T` as one [`NoisyMatmul`] over `(x, mu_w, sigma_w)`, then `+ b`.
    Fused { op: NoisyMatmul, mu: Tensor, sigma: Tensor, bias: Tensor },
    /// The same product over `x` alone ([`FrozenNoisyMatmul`]), then `+ b`: a detached
    /// layer, through which gradients still reach `x`.
    Frozen { op: FrozenNoisyMatmul, bias: Tensor },
}

impl BuiltLinear {
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Candle(linear) => linear.forward(x),
            Self::Fused { op, mu, sigma, bias } => op.apply(x, mu, sigma)?.broadcast_add(bias),
            Self::Frozen { op, bias } => op.apply(x)?.broadcast_add(bias),
        }
    }

    /// The same layer with its parameters detached from the autograd graph; an input that
    /// needs a gradient still gets one (on the CPU fast path without the weight gradients
    /// that [`NoisyMatmul`]'s backward would also compute).
    pub(crate) fn detach(&self) -> Self {
        match self {
            Self::Candle(l) => {
                Self::Candle(candle_nn::Linear::new(l.weight().detach(), l.bias().map(Tensor::detach)))
            }
            Self::Fused { op, bias, .. } => Self::Frozen { op: op.frozen(), bias: bias.detach() },
            Self::Frozen { .. } => self.clone(),
        }
    }
}

/// A variable of `shape` drawn from `U(-bound, bound)` with the caller's RNG.
pub(crate) fn uniform_var<R: Rng + ?Sized>(
    shape: &[usize],
    bound: f64,
    dtype: DType,
    device: &Device,
    rng: &mut R,
) -> Result<Var> {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn layer(n_in: usize, n_out: usize) -> (NoisyLinear, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let l = NoisyLinear::new(n_in, n_out, Some(0.5), DType::F64, &Device::Cpu, &mut rng).unwrap();
        (l, rng)
    }

    #[test]
    fn weight_noise_is_the_outer_product_of_the_factors() {
        let (mut l, mut rng) = layer(5, 3);
        l.resample_noise(&mut rng).unwrap();
        let (eps_w, eps_b) = l.noise().unwrap();
        let eps_w = eps_w.to_vec2::<f64>().unwrap();
        let eps_b = eps_b.to_vec1::<f64>().unwrap();
        let (f_in, f_out) = l.noise_factors();
        assert_eq!(eps_b, f_out, "eps_b = f(eps_out)");
        for i in 0..3 {
            for j in 0..5 {
                assert_eq!(eps_w[i][j], f_out[i] * f_in[j]);
            }
        }
        // Rank one: every 2x2 minor vanishes (the structure itself, not just our formula).
        for (i, k) in [(0, 1), (0, 2), (1, 2)] {
            for (j, m) in [(0, 1), (2, 4), (1, 3)] {
                let minor = eps_w[i][j] * eps_w[k][m] - eps_w[i][m] * eps_w[k][j];
                assert!(minor.abs() < 1e-12, "minor ({i},{k})x({j},{m}) = {minor}");
            }
        }
    }

    #[test]
    fn noise_has_the_factorised_moments() {
        // For x ~ N(0, 1): E f(x) = 0, E f(x)^2 = E|x| = sqrt(2 / pi). So eps_b has mean 0 and
        // variance sqrt(2/pi) = 0.7979, and eps_w = f(a) f(b) (independent) has mean 0,
        // variance (sqrt(2/pi))^2 = 2/pi = 0.6366, and E eps_w^4 = (E x^2)^2 = 1.
        let (mut l, mut rng) = layer(16, 16);
        let (mut sum_b, mut sq_b, mut sum_w, mut sq_w, mut q_w) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let draws = 4000;
        for _ in 0..draws {
            l.resample_noise(&mut rng).unwrap();
            let (eps_w, eps_b) = l.noise().unwrap();
            for x in eps_b.to_vec1::<f64>().unwrap() {
                sum_b += x;
                sq_b += x * x;
            }
            // Entries of one draw share factors, so they are correlated; the estimates stay
            // unbiased, and the tolerances below allow for the larger spread.
            for x in eps_w.flatten_all().unwrap().to_vec1::<f64>().unwrap() {
                sum_w += x;
                sq_w += x * x;
                q_w += x * x * x * x;
            }
        }
        let nb = (draws * 16) as f64;
        let nw = (draws * 256) as f64;
        let two_over_pi = 2.0 / std::f64::consts::PI;
        // Tolerances: about 5 standard errors of each estimate at these sample sizes.
        assert!((sum_b / nb).abs() < 0.04, "mean eps_b {}", sum_b / nb);
        assert!((sq_b / nb - two_over_pi.sqrt()).abs() < 0.03, "var eps_b {}", sq_b / nb);
        assert!((sum_w / nw).abs() < 0.03, "mean eps_w {}", sum_w / nw);
        assert!((sq_w / nw - two_over_pi).abs() < 0.03, "var eps_w {}", sq_w / nw);
        assert!((q_w / nw - 1.0).abs() < 0.1, "4th moment eps_w {}", q_w / nw);
    }

    #[test]
    fn forward_is_mu_plus_sigma_eps_and_mu_alone_with_noise_off() {
        let (mut l, mut rng) = layer(4, 2);
        l.resample_noise(&mut rng).unwrap();
        let x = Tensor::new(&[[1.0f64, -2.0, 0.5, 3.0]], &Device::Cpu).unwrap();
        let vars = l.named_vars();
        let get = |name: &str| vars.iter().find(|(n, _)| *n == name).unwrap().1.as_tensor().clone();
        let (f_in, f_out) = (l.noise_factors().0.to_vec(), l.noise_factors().1.to_vec());
        let (mu_w, mu_b) =
            (get("weight_mu").to_vec2::<f64>().unwrap(), get("bias_mu").to_vec1::<f64>().unwrap());
        let (s_w, s_b) =
            (get("weight_sigma").to_vec2::<f64>().unwrap(), get("bias_sigma").to_vec1::<f64>().unwrap());
        assert!((s_b[0] - 0.25).abs() < 1e-12, "sigma = sigma0 / sqrt(in) = 0.5 / 2");
        let x0 = [1.0, -2.0, 0.5, 3.0];
        let naive = |noise: bool| -> Vec<f64> {
            (0..2)
                .map(|i| {
                    let e = if noise { 1.0 } else { 0.0 };
                    let mut y = mu_b[i] + e * s_b[i] * f_out[i];
                    for j in 0..4 {
                        y += x0[j] * (mu_w[i][j] + e * s_w[i][j] * f_out[i] * f_in[j]);
                    }
                    y
                })
                .collect()
        };
        let y = l.forward(&x).unwrap().to_vec2::<f64>().unwrap();
        for (a, b) in y[0].iter().zip(naive(true)) {
            assert!((a - b).abs() < 1e-12);
        }
        l.set_noise_enabled(false);
        let y = l.forward(&x).unwrap().to_vec2::<f64>().unwrap();
        for (a, b) in y[0].iter().zip(naive(false)) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    /// The fused layer (f32 on the CPU) against the same layer in candle's ops: values and
    /// the gradients of the input and of all four parameters, for the detached (no
    /// gradient) version too.
    #[test]
    fn fused_noisy_layer_matches_candle_ops_values_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        // Largest |a - b| relative to the largest |b|: the products sum in another order.
        let rel = |a: &Tensor, b: &Tensor| {
            let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() / scale
        };
        for (batch, n_in, n_out) in [(5, 3, 2), (5, 700, 130), (1, 64, 33)] {
            let mut l = NoisyLinear::new(n_in, n_out, Some(0.5), DType::F32, &Device::Cpu, &mut rng).unwrap();
            l.resample_noise(&mut rng).unwrap();
            let built = l.build().unwrap();
            assert!(matches!(built, BuiltLinear::Fused { .. }), "f32 on the CPU takes the fused op");
            let x = Var::randn(0f32, 1.0, (batch, n_in), &Device::Cpu).unwrap();
            let w_out = Tensor::randn(0f32, 1.0, (batch, n_out), &Device::Cpu).unwrap();
            let reference = l.linear().unwrap().forward(x.as_tensor()).unwrap();
            let fused = built.forward(x.as_tensor()).unwrap();
            assert!(rel(&fused, &reference) <= 1e-5, "forward {n_in}x{n_out}");
            let detached = built.detach().forward(x.as_tensor()).unwrap();
            assert_eq!(detached.to_vec2::<f32>().unwrap(), fused.to_vec2::<f32>().unwrap());
            let loss = |y: &Tensor| (y * &w_out).unwrap().sum_all().unwrap().backward().unwrap();
            let (gf, gr) = (loss(&fused), loss(&reference));
            for (name, v) in l.named_vars().iter().chain([&("input", x.clone())]) {
                let (a, b) = (gf.get(v).unwrap(), gr.get(v).unwrap());
                assert!(rel(a, b) <= 1e-5, "{name} {n_in}x{n_out}: {}", rel(a, b));
            }
            assert!(loss(&detached).get(&l.named_vars()[0].1).is_none(), "detached: no gradient");
        }
    }

    #[test]
    fn seeded_and_restorable() {
        let (mut a, mut ra) = layer(6, 4);
        let (mut b, mut rb) = layer(6, 4);
        a.resample_noise(&mut ra).unwrap();
        b.resample_noise(&mut rb).unwrap();
        assert_eq!(a.noise_factors(), b.noise_factors());
        let (f_in, f_out) = (a.noise_factors().0.to_vec(), a.noise_factors().1.to_vec());
        b.resample_noise(&mut rb).unwrap();
        assert_ne!(a.noise_factors().0, b.noise_factors().0);
        b.set_noise_factors(&f_in, &f_out).unwrap();
        let diff = (a.noise().unwrap().0 - b.noise().unwrap().0).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f64>().unwrap(), 0.0);
        let plain = NoisyLinear::new(6, 4, None, DType::F32, &Device::Cpu, &mut ra).unwrap();
        assert_eq!(plain.named_vars().len(), 2);
        assert!(!plain.is_noisy() && !plain.noise_enabled());
    }
}
