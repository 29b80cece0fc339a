//! `Head`: the dueling distributional (C51) head of Rainbow (Wang et al. 2016; Bellemare et
//! al. 2017; Hessel et al. 2018, eq. for `p_theta`).
//!
//! From torso features `(batch, features)`:
//!
//! ```text
//! value      v = V2(relu(V1(h)))          (batch, 1, atoms)
//! advantage  a = A2(relu(A1(h)))          (batch, actions, atoms)
//!              [+ E C, with the S-embedding: crate::SEmbeddingConfig]
//! logits       = v + a - mean_a(a)        (batch, actions, atoms)
//! log p        = log_softmax(logits, atoms)
//! ```
//!
//! All four layers are [`NoisyLinear`] (noisy unless the network is built without noise), with
//! `hidden` units in `V1` and `A1`. Without dueling there is only the advantage stream and the
//! logits are `a`.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use rainbow::Head;
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let head = Head::new(8, 16, 5, 11, true, Some(0.5), DType::F32, &Device::Cpu, &mut rng)?;
//! let h = Tensor::zeros((3, 8), DType::F32, &Device::Cpu)?;
//! assert_eq!(head.forward(&h)?.dims(), &[3, 5, 11]); // (batch, actions, atoms)
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{DType, Device, Result, Tensor, Var, D};
use rand::Rng;

use crate::noisy_linear::{BuiltLinear, NoisyLinear};
use crate::s_embedding::{BuiltSEmbedding, SEmbedding, SEmbeddingConfig};

/// The dueling C51 head; see the module docs.
#[derive(Debug)]
pub struct Head {
    actions: usize,
    atoms: usize,
    /// `(V1, V2)`; `None` without dueling.
    value: Option<(NoisyLinear, NoisyLinear)>,
    /// `(A1, A2)`.
    advantage: (NoisyLinear, NoisyLinear),
    /// The advantage stream's extra term, when configured.
    s_embedding: Option<SEmbedding>,
}

/// The head's layers at fixed parameters and noise, built once per update.
pub(crate) struct HeadLayers {
    actions: usize,
    atoms: usize,
    value: Option<(BuiltLinear, BuiltLinear)>,
    advantage: (BuiltLinear, BuiltLinear),
    s_embedding: Option<BuiltSEmbedding>,
}

impl Head {
    /// A head over `features` inputs with `hidden` units per stream; `sigma0 = None` builds
    /// plain linear layers.
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: Rng + ?Sized>(
        features: usize,
        hidden: usize,
        actions: usize,
        atoms: usize,
        dueling: bool,
        sigma0: Option<f64>,
        dtype: DType,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        let mut layer = |i, o| NoisyLinear::new(i, o, sigma0, dtype, device, &mut *rng);
        let value = if dueling { Some((layer(features, hidden)?, layer(hidden, atoms)?)) } else { None };
        let advantage = (layer(features, hidden)?, layer(hidden, actions * atoms)?);
        Ok(Self { actions, atoms, value, advantage, s_embedding: None })
    }

    /// The same head with the S-embedding's term in its advantage stream. Its parameters are
    /// drawn after the head's own, so the streams are those of [`Head::new`] with the same RNG.
    pub fn with_s_embedding<R: Rng + ?Sized>(
        mut self,
        config: &SEmbeddingConfig,
        rng: &mut R,
    ) -> Result<Self> {
        let a1 = &self.advantage.0;
        let (_, weight) = a1.named_vars().swap_remove(0); // the head's dtype and device
        let shape = (a1.out_dim(), self.actions, self.atoms);
        self.s_embedding = Some(SEmbedding::new(config, shape, weight.dtype(), weight.device(), rng)?);
        Ok(self)
    }

    pub(crate) fn s_embedding(&self) -> Option<&SEmbedding> {
        self.s_embedding.as_ref()
    }

    pub(crate) fn s_embedding_mut(&mut self) -> Option<&mut SEmbedding> {
        self.s_embedding.as_mut()
    }

    pub fn actions(&self) -> usize {
        self.actions
    }

    pub fn atoms(&self) -> usize {
        self.atoms
    }

    /// The noisy layers, value stream first.
    pub fn layers_mut(&mut self) -> impl Iterator<Item = &mut NoisyLinear> {
        let value = self.value.as_mut().into_iter().flat_map(|(a, b)| [a, b]);
        value.chain([&mut self.advantage.0, &mut self.advantage.1])
    }

    /// The noisy layers, value stream first.
    pub fn layers(&self) -> impl Iterator<Item = &NoisyLinear> {
        let value = self.value.as_ref().into_iter().flat_map(|(a, b)| [a, b]);
        value.chain([&self.advantage.0, &self.advantage.1])
    }

    /// The trainable parameters in a fixed order, with names such as `value1.weight_mu`; the
    /// S-embedding's last (`s_embedding.features`, ...).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let names: &[&str] = if self.value.is_some() {
            &["value1", "value2", "advantage1", "advantage2"]
        } else {
            &["advantage1", "advantage2"]
        };
        let layers = names
            .iter()
            .zip(self.layers())
            .flat_map(|(layer, l)| l.named_vars().into_iter().map(move |(n, v)| (format!("{layer}.{n}"), v)));
        let embedding = self.s_embedding.iter().flat_map(|e| e.named_vars());
        layers.chain(embedding.map(|(n, v)| (format!("s_embedding.{n}"), v))).collect()
    }

    /// The layers at the current parameters and noise: `w = mu + sigma * eps` is formed here,
    /// once, however many forward passes use them.
    pub(crate) fn build(&self) -> Result<HeadLayers> {
        let value = match &self.value {
            Some((v1, v2)) => Some((v1.build()?, v2.build()?)),
            None => None,
        };
        Ok(HeadLayers {
            actions: self.actions,
            atoms: self.atoms,
            value,
            advantage: (self.advantage.0.build()?, self.advantage.1.build()?),
            s_embedding: self.s_embedding.as_ref().map(SEmbedding::build).transpose()?,
        })
    }

    /// `(batch, features)` to log-probabilities `(batch, actions, atoms)`.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        self.build()?.forward(features)
    }
}

impl HeadLayers {
    /// The same layers with their tensors detached from the autograd graph.
    pub(crate) fn detach(&self) -> Self {
        Self {
            actions: self.actions,
            atoms: self.atoms,
            value: self.value.as_ref().map(|(a, b)| (a.detach(), b.detach())),
            advantage: (self.advantage.0.detach(), self.advantage.1.detach()),
            s_embedding: self.s_embedding.as_ref().map(BuiltSEmbedding::detach),
        }
    }

    /// Whether the head has the S-embedding's term, which [`HeadLayers::forward_with`]'s
    /// `apply` does not see.
    pub(crate) fn has_s_embedding(&self) -> bool {
        self.s_embedding.is_some()
    }

    pub(crate) fn forward(&self, h: &Tensor) -> Result<Tensor> {
        self.forward_with(h, |_, layer, x| layer.forward(x))
    }

    /// [`HeadLayers::forward`] with `apply(i, layer, x)` in place of each `layer.forward(x)`,
    /// `i` the layer's index in [`Head::layers`]' order (value 1 and 2, then advantage 1 and
    /// 2): MASP's lookahead moves the weights along a gradient, or records each layer's
    /// input and output gradient, through the one copy of the head's structure. The
    /// S-embedding's term is not one of those layers: it is added as built.
    pub(crate) fn forward_with(
        &self,
        h: &Tensor,
        apply: impl Fn(usize, &BuiltLinear, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let batch = h.dim(0)?;
        let hidden = |i: usize, l1: &BuiltLinear| apply(i, l1, h)?.relu();
        let advantage_first = if self.value.is_some() { 2 } else { 0 };
        let (a1, a2) = &self.advantage;
        let h_a = hidden(advantage_first, a1)?;
        // (batch, actions * atoms) -> (batch, actions, atoms)
        let a = apply(advantage_first + 1, a2, &h_a)?.reshape((batch, self.actions, self.atoms))?;
        let a = match &self.s_embedding {
            Some(embedding) => (a + embedding.term(&h_a)?)?,
            None => a,
        };
        let v = match &self.value {
            Some((v1, v2)) => Some(apply(1, v2, &hidden(0, v1)?)?.reshape((batch, 1, self.atoms))?),
            None => None,
        };
        // The fused kernels in f32 on the CPU (the same numbers to rounding), candle's ops
        // elsewhere. The dueling combine, per atom: v + a - mean over actions of a.
        let fused = a.device().is_cpu() && a.dtype() == DType::F32;
        match (v, fused) {
            (Some(v), true) => cpu_kernels::DuelingLogSoftmax::apply(&a, &v),
            (None, true) => cpu_kernels::LogSoftmax::apply(&a),
            (Some(v), false) => {
                let a_mean = a.mean_keepdim(1)?; // (batch, 1, atoms)
                candle_nn::ops::log_softmax(&a.broadcast_sub(&a_mean)?.broadcast_add(&v)?, D::Minus1)
            }
            (None, false) => candle_nn::ops::log_softmax(&a, D::Minus1),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const FEATURES: usize = 4;
    const BATCH: usize = 2;

    /// A dueling f64 head with a noise sample drawn, and, with `dims`, the S-embedding (its
    /// `R` large enough to matter) over a row-stochastic context that is not the identity.
    fn head(dims: Option<usize>) -> Head {
        head_in(dims, DType::F64)
    }

    /// [`head`] in `dtype`.
    fn head_in(dims: Option<usize>, dtype: DType) -> Head {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (hidden, actions, atoms) = (6, 3, 5);
        let mut head =
            Head::new(FEATURES, hidden, actions, atoms, true, Some(0.5), dtype, &Device::Cpu, &mut rng)
                .unwrap();
        if let Some(dims) = dims {
            let config = SEmbeddingConfig { dims, init_scale: 0.5 };
            head = head.with_s_embedding(&config, &mut rng).unwrap();
            let raw: Vec<f64> = (0..actions * actions).map(|i| 1.0 + (i as f64 * 1.3).cos()).collect();
            let raw = Tensor::from_vec(raw, (actions, actions), &Device::Cpu).unwrap();
            let p = raw.broadcast_div(&raw.sum_keepdim(1).unwrap()).unwrap().to_dtype(dtype).unwrap();
            head.s_embedding_mut().unwrap().set_context(&p).unwrap();
        }
        let mut noise = ChaCha8Rng::seed_from_u64(4);
        for l in head.layers_mut() {
            l.resample_noise(&mut noise).unwrap();
        }
        head
    }

    fn inputs() -> (Vec<f64>, Tensor) {
        let h: Vec<f64> = (0..BATCH * FEATURES).map(|i| (i as f64 * 0.37).sin()).collect();
        let t = Tensor::from_vec(h.clone(), (BATCH, FEATURES), &Device::Cpu).unwrap();
        (h, t)
    }

    fn var(head: &Head, name: &str) -> Var {
        head.named_vars().into_iter().find(|(n, _)| n == name).unwrap().1
    }

    fn matrix(t: &Tensor) -> Vec<Vec<f64>> {
        t.to_dtype(DType::F64).unwrap().to_vec2().unwrap()
    }

    fn vector(t: &Tensor) -> Vec<f64> {
        t.to_dtype(DType::F64).unwrap().to_vec1().unwrap()
    }

    /// The head's log-probabilities in naive f64: each layer as explicit sums over its
    /// effective weights, and the S-embedding's `E C` as its sums over `P`, `R` and `L_c`.
    fn naive(head: &Head, h: &[f64]) -> Vec<Vec<Vec<f64>>> {
        let (actions, atoms) = (head.actions(), head.atoms());
        let eff: Vec<(Vec<Vec<f64>>, Vec<f64>)> = head
            .layers()
            .map(|l| {
                let lin = l.linear().unwrap();
                (matrix(lin.weight()), vector(lin.bias().unwrap()))
            })
            .collect();
        let dense = |(w, b): &(Vec<Vec<f64>>, Vec<f64>), x: &[f64], relu: bool| -> Vec<f64> {
            w.iter()
                .zip(b)
                .map(|(row, bi)| {
                    let y = bi + row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
                    if relu {
                        y.max(0.0)
                    } else {
                        y
                    }
                })
                .collect()
        };
        // E C per (action, atom), from the advantage stream's hidden units.
        let term = |h_a: &[f64]| -> Vec<f64> {
            let Some(embedding) = head.s_embedding() else { return vec![0.0; actions * atoms] };
            let (p, r) = (matrix(embedding.context()), matrix(var(head, "s_embedding.features").as_tensor()));
            let w = matrix(var(head, "s_embedding.coefficients.weight_mu").as_tensor());
            let b = vector(var(head, "s_embedding.coefficients.bias_mu").as_tensor());
            let c = dense(&(w, b), h_a, false); // index z * dims + j
            let dims = r[0].len();
            let e = |a: usize, j: usize| (0..actions).map(|b| p[a][b] * r[b][j]).sum::<f64>();
            (0..actions * atoms)
                .map(|i| (0..dims).map(|j| e(i / atoms, j) * c[(i % atoms) * dims + j]).sum())
                .collect()
        };
        (0..BATCH)
            .map(|s| {
                let x = &h[s * FEATURES..(s + 1) * FEATURES];
                let v = dense(&eff[1], &dense(&eff[0], x, true), false);
                let h_a = dense(&eff[2], x, true);
                let a: Vec<f64> =
                    dense(&eff[3], &h_a, false).iter().zip(term(&h_a)).map(|(a, t)| a + t).collect();
                (0..actions)
                    .map(|k| {
                        let logits: Vec<f64> = (0..atoms)
                            .map(|z| {
                                let mean =
                                    (0..actions).map(|j| a[j * atoms + z]).sum::<f64>() / actions as f64;
                                v[z] + a[k * atoms + z] - mean
                            })
                            .collect();
                        let lse = logits.iter().map(|l| l.exp()).sum::<f64>().ln();
                        logits.iter().map(|l| l - lse).collect()
                    })
                    .collect()
            })
            .collect()
    }

    fn assert_close(got: &[Vec<Vec<f64>>], want: &[Vec<Vec<f64>>]) {
        assert_within(got, want, 1e-12);
    }

    fn assert_within(got: &[Vec<Vec<f64>>], want: &[Vec<Vec<f64>>], tolerance: f64) {
        for (s, (g, w)) in got.iter().zip(want).enumerate() {
            for (k, (g, w)) in g.iter().zip(w).enumerate() {
                for (z, (g, w)) in g.iter().zip(w).enumerate() {
                    assert!((g - w).abs() < tolerance, "s {s} a {k} z {z}: {g} vs {w}");
                }
            }
        }
    }

    /// In f32 on the CPU the head takes the fused kernels (`cpu_kernels::DuelingLogSoftmax`):
    /// the same log-probabilities as the naive f64 sums over its own parameters, to f32
    /// rounding, with and without the S-embedding's term.
    #[test]
    fn the_f32_fused_path_equals_a_naive_computation() {
        let (h, ht) = inputs();
        for dims in [None, Some(2)] {
            let head = head_in(dims, DType::F32);
            let ht = ht.to_dtype(DType::F32).unwrap();
            let got = head.forward(&ht).unwrap().to_dtype(DType::F64).unwrap().to_vec3().unwrap();
            assert_within(&got, &naive(&head, &h), 1e-5);
        }
    }

    #[test]
    fn dueling_combine_equals_a_naive_computation() {
        let (h, ht) = inputs();
        let head = head(None);
        assert_close(&head.forward(&ht).unwrap().to_vec3().unwrap(), &naive(&head, &h));
    }

    #[test]
    fn s_embedding_term_equals_a_naive_computation() {
        let (h, ht) = inputs();
        let head = head(Some(2));
        let logp = head.forward(&ht).unwrap();
        assert_eq!(logp.dims(), &[BATCH, 3, 5]);
        assert_close(&logp.to_vec3().unwrap(), &naive(&head, &h));
        let names: Vec<String> = head.named_vars().into_iter().map(|(n, _)| n).collect();
        let last = [
            "s_embedding.features",
            "s_embedding.coefficients.weight_mu",
            "s_embedding.coefficients.bias_mu",
        ];
        assert_eq!(names[names.len() - 3..], last);
        assert_eq!(var(&head, "s_embedding.features").dims(), &[3, 2]); // (actions, dims)
        assert_eq!(var(&head, "s_embedding.coefficients.weight_mu").dims(), &[5 * 2, 6]);
        // (atoms * dims, hidden)
    }

    /// With `R = 0` the term is exactly zero: the head is the head without it, bit for bit
    /// (its streams are drawn first from the same RNG).
    #[test]
    fn s_embedding_with_zero_features_is_the_plain_head() {
        let (_, ht) = inputs();
        let with = head(Some(2));
        let features = var(&with, "s_embedding.features");
        features.set(&features.zeros_like().unwrap()).unwrap();
        let plain = head(None);
        let logp = |h: &Head| h.forward(&ht).unwrap().to_vec3::<f64>().unwrap();
        assert_eq!(logp(&with), logp(&plain));
    }

    /// Backpropagation through `R` and `L_c` against central differences of the same loss,
    /// in f64.
    #[test]
    fn s_embedding_gradients_equal_finite_differences() {
        let (_, ht) = inputs();
        let head = head(Some(2));
        let weights = head.forward(&ht).unwrap().ones_like().unwrap().cumsum(2).unwrap().sin().unwrap();
        let loss = || {
            (head.forward(&ht).unwrap() * &weights).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
        };
        let store = (head.forward(&ht).unwrap() * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        for name in
            ["s_embedding.features", "s_embedding.coefficients.weight_mu", "s_embedding.coefficients.bias_mu"]
        {
            let v = var(&head, name);
            let grad: Vec<f64> = store.get(&v).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let theta: Vec<f64> = v.flatten_all().unwrap().to_vec1().unwrap();
            let step = 1e-6;
            for (i, g) in grad.iter().enumerate() {
                let at = |d: f64| {
                    let mut moved = theta.clone();
                    moved[i] += d;
                    v.set(&Tensor::from_vec(moved, v.shape(), &Device::Cpu).unwrap()).unwrap();
                    loss()
                };
                let numeric = (at(step) - at(-step)) / (2.0 * step);
                v.set(&Tensor::from_vec(theta.clone(), v.shape(), &Device::Cpu).unwrap()).unwrap();
                assert!((numeric - g).abs() <= 1e-6 * (1.0 + g.abs()), "{name}[{i}]: {g} vs {numeric}");
            }
            assert!(grad.iter().any(|g| g.abs() > 1e-3), "{name} gets a gradient");
        }
    }

    #[test]
    fn without_dueling_the_logits_are_the_advantage_stream() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let head = Head::new(4, 6, 3, 5, false, None, DType::F32, &Device::Cpu, &mut rng).unwrap();
        assert_eq!(head.named_vars().len(), 4);
        let h = Tensor::ones((2, 4), DType::F32, &Device::Cpu).unwrap();
        let p = head.forward(&h).unwrap().exp().unwrap().sum(2).unwrap().to_vec2::<f32>().unwrap();
        assert!(p.iter().flatten().all(|s| (s - 1.0).abs() < 1e-5), "probabilities sum to one");
    }
}
