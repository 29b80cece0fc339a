//! `Head`: the dueling distributional (C51) head of Rainbow (Wang et al. 2016; Bellemare et
//! al. 2017; Hessel et al. 2018, eq. for `p_theta`).
//!
//! From torso features `(batch, features)`:
//!
//! ```text
//! value      v = V2(relu(V1(h)))          (batch, 1, atoms)
//! advantage  a = A2(relu(A1(h)))          (batch, actions, atoms)
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

/// The dueling C51 head; see the module docs.
#[derive(Debug)]
pub struct Head {
    actions: usize,
    atoms: usize,
    /// `(V1, V2)`; `None` without dueling.
    value: Option<(NoisyLinear, NoisyLinear)>,
    /// `(A1, A2)`.
    advantage: (NoisyLinear, NoisyLinear),
}

/// The head's layers at fixed parameters and noise, built once per update.
pub(crate) struct HeadLayers {
    actions: usize,
    atoms: usize,
    value: Option<(BuiltLinear, BuiltLinear)>,
    advantage: (BuiltLinear, BuiltLinear),
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
        Ok(Self { actions, atoms, value, advantage })
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

    /// The trainable parameters in a fixed order, with names such as `value1.weight_mu`.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let names: &[&str] = if self.value.is_some() {
            &["value1", "value2", "advantage1", "advantage2"]
        } else {
            &["advantage1", "advantage2"]
        };
        names
            .iter()
            .zip(self.layers())
            .flat_map(|(layer, l)| l.named_vars().into_iter().map(move |(n, v)| (format!("{layer}.{n}"), v)))
            .collect()
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
        }
    }

    pub(crate) fn forward(&self, h: &Tensor) -> Result<Tensor> {
        self.forward_with(h, |_, layer, x| layer.forward(x))
    }

    /// [`HeadLayers::forward`] with `apply(i, layer, x)` in place of each `layer.forward(x)`,
    /// `i` the layer's index in [`Head::layers`]' order (value 1 and 2, then advantage 1 and
    /// 2): MASP's lookahead moves the weights along a gradient, or records each layer's
    /// input and output gradient, through the one copy of the head's structure.
    pub(crate) fn forward_with(
        &self,
        h: &Tensor,
        apply: impl Fn(usize, &BuiltLinear, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let batch = h.dim(0)?;
        let stream = |first: usize, (l1, l2): &(BuiltLinear, BuiltLinear)| {
            apply(first + 1, l2, &apply(first, l1, h)?.relu()?)
        };
        let advantage_first = if self.value.is_some() { 2 } else { 0 };
        // (batch, actions * atoms) -> (batch, actions, atoms)
        let a = stream(advantage_first, &self.advantage)?.reshape((batch, self.actions, self.atoms))?;
        let logits = match &self.value {
            Some(value) => {
                let v = stream(0, value)?.reshape((batch, 1, self.atoms))?;
                // The dueling combine, per atom: v + a - mean over actions of a.
                let a_mean = a.mean_keepdim(1)?; // (batch, 1, atoms)
                a.broadcast_sub(&a_mean)?.broadcast_add(&v)?
            }
            None => a,
        };
        candle_nn::ops::log_softmax(&logits, D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn dueling_combine_equals_a_naive_computation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (features, hidden, actions, atoms) = (4, 6, 3, 5);
        let mut head =
            Head::new(features, hidden, actions, atoms, true, Some(0.5), DType::F64, &Device::Cpu, &mut rng)
                .unwrap();
        for l in head.layers_mut() {
            l.resample_noise(&mut rng).unwrap();
        }
        let h: Vec<f64> = (0..2 * features).map(|i| (i as f64 * 0.37).sin()).collect();
        let ht = Tensor::from_vec(h.clone(), (2, features), &Device::Cpu).unwrap();
        let logp = head.forward(&ht).unwrap().to_vec3::<f64>().unwrap();

        // Naive f64: each layer as explicit sums over its effective weights.
        let eff: Vec<(Vec<Vec<f64>>, Vec<f64>)> = head
            .layers()
            .map(|l| {
                let lin = l.linear().unwrap();
                (lin.weight().to_vec2().unwrap(), lin.bias().unwrap().to_vec1().unwrap())
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
        for s in 0..2 {
            let x = &h[s * features..(s + 1) * features];
            let v = dense(&eff[1], &dense(&eff[0], x, true), false);
            let a = dense(&eff[3], &dense(&eff[2], x, true), false);
            for k in 0..actions {
                let logits: Vec<f64> = (0..atoms)
                    .map(|z| {
                        let mean = (0..actions).map(|j| a[j * atoms + z]).sum::<f64>() / actions as f64;
                        v[z] + a[k * atoms + z] - mean
                    })
                    .collect();
                let lse = logits.iter().map(|l| l.exp()).sum::<f64>().ln();
                for z in 0..atoms {
                    assert!((logp[s][k][z] - (logits[z] - lse)).abs() < 1e-12, "s {s} a {k} z {z}");
                }
            }
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
