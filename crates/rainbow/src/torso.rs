//! `Torso`: the feature extractor under the heads: the Nature CNN for pixel stacks (Mnih et
//! al. 2015) or an MLP for vector observations.
//!
//! * Nature CNN: `u8 (batch, C, H, W)`, scaled to `[0, 1]` on the device, then conv 32 8x8
//!   stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1, each with ReLU, flattened: for
//!   4x84x84 stacks `(batch, 64 * 7 * 7 = 3136)`.
//! * MLP: `f32 (batch, len)` through `hidden` fully connected ReLU layers: `(batch,
//!   hidden.last())` (or `(batch, len)` for no hidden layer).
//!
//! Weights and biases start from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, PyTorch's default
//! for `Conv2d` and `Linear` (and so the reference benchmark's), drawn from the caller's
//! seeded RNG.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use rainbow::{Torso, TorsoConfig};
//! use rand::SeedableRng;
//! use rl_env::ObsSpec;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let spec = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
//! let torso = Torso::new(&TorsoConfig::NatureCnn, &spec, DType::F32, &Device::Cpu, &mut rng)?;
//! assert_eq!(torso.out_dim(), 3136);
//! let obs = Tensor::zeros((2, 4, 84, 84), DType::U8, &Device::Cpu)?;
//! assert_eq!(torso.forward(&obs)?.dims(), &[2, 3136]);
//! # Ok::<(), rainbow::Error>(())
//! ```

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Conv2d, Conv2dConfig, Linear, Module};
use cpu_kernels::{conv2d_relu, ConvInput};
use rand::Rng;
use rl_env::ObsSpec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::noisy_linear::uniform_var;

/// Which torso to build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TorsoConfig {
    /// The Nature DQN CNN (Mnih et al. 2015), for `u8` pixel stacks of at least 36x36.
    NatureCnn,
    /// Fully connected ReLU layers of these widths, for vector observations.
    Mlp { hidden: Vec<usize> },
}

/// `(out_channels, kernel, stride)` of the Nature CNN's convolutions.
const NATURE_CONVS: [(usize, usize, usize); 3] = [(32, 8, 4), (64, 4, 2), (64, 3, 1)];

#[derive(Debug)]
enum Layers {
    /// `(weight (out, in, k, k), bias (out,), stride)` per convolution.
    Cnn(Vec<(Var, Var, usize)>),
    /// `(weight (out, in), bias (out,))` per layer.
    Mlp(Vec<(Var, Var)>),
}

/// The torso; see the module docs.
#[derive(Debug)]
pub struct Torso {
    spec: ObsSpec,
    layers: Layers,
    out_dim: usize,
    dtype: DType,
}

/// A torso's layers at fixed parameter values, built once per update and reused for each
/// forward pass of that update.
pub(crate) struct TorsoLayers {
    dtype: DType,
    convs: Vec<Conv2d>,
    linears: Vec<Linear>,
}

impl Torso {
    /// A torso for observations of `spec`; the Nature CNN needs pixels, the MLP vectors.
    pub fn new<R: Rng + ?Sized>(
        config: &TorsoConfig,
        spec: &ObsSpec,
        dtype: DType,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        let mismatch = |expected: &str| Error::ShapeMismatch {
            what: format!("torso {config:?}"),
            expected: expected.into(),
            found: format!("{spec:?}"),
        };
        let (layers, out_dim) = match (config, spec) {
            (TorsoConfig::NatureCnn, &ObsSpec::Pixels { channels, height, width }) => {
                let (mut c, mut h, mut w) = (channels, height, width);
                let mut convs = Vec::new();
                for (out, k, stride) in NATURE_CONVS {
                    if h < k || w < k {
                        return Err(mismatch("pixel stacks of at least 36x36 for the Nature CNN"));
                    }
                    let bound = 1.0 / ((c * k * k) as f64).sqrt();
                    let weight = uniform_var(&[out, c, k, k], bound, dtype, device, rng)?;
                    let bias = uniform_var(&[out], bound, dtype, device, rng)?;
                    convs.push((weight, bias, stride));
                    (c, h, w) = (out, (h - k) / stride + 1, (w - k) / stride + 1);
                }
                (Layers::Cnn(convs), c * h * w)
            }
            (TorsoConfig::Mlp { hidden }, &ObsSpec::Vector { len }) => {
                let mut linears = Vec::new();
                let mut in_dim = len;
                for &out in hidden {
                    let bound = 1.0 / (in_dim as f64).sqrt();
                    linears.push((
                        uniform_var(&[out, in_dim], bound, dtype, device, rng)?,
                        uniform_var(&[out], bound, dtype, device, rng)?,
                    ));
                    in_dim = out;
                }
                (Layers::Mlp(linears), in_dim)
            }
            (TorsoConfig::NatureCnn, _) => return Err(mismatch("u8 pixel observations for the Nature CNN")),
            (TorsoConfig::Mlp { .. }, _) => return Err(mismatch("vector observations for an MLP torso")),
        };
        Ok(Self { spec: spec.clone(), layers, out_dim, dtype })
    }

    /// Features per observation.
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    pub fn obs_spec(&self) -> &ObsSpec {
        &self.spec
    }

    /// The trainable parameters in a fixed order, with their names (`conv0.weight`, ...).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let (prefix, pairs): (&str, Vec<(&Var, &Var)>) = match &self.layers {
            Layers::Cnn(c) => ("conv", c.iter().map(|(w, b, _)| (w, b)).collect()),
            Layers::Mlp(l) => ("fc", l.iter().map(|(w, b)| (w, b)).collect()),
        };
        pairs
            .into_iter()
            .enumerate()
            .flat_map(|(i, (w, b))| {
                [(format!("{prefix}{i}.weight"), w.clone()), (format!("{prefix}{i}.bias"), b.clone())]
            })
            .collect()
    }

    /// The layers at the current parameters (tensors shared with the variables, so they
    /// follow later updates).
    pub(crate) fn build(&self) -> TorsoLayers {
        let params: Vec<Tensor> = self.named_vars().iter().map(|(_, v)| v.as_tensor().clone()).collect();
        self.build_from(&params)
    }

    /// The layers with `params` in place of the variables, one tensor per
    /// [`Torso::named_vars`] entry, in that order and shape (MASP's lookahead evaluates the
    /// torso at moved parameters without writing the variables).
    pub(crate) fn build_from(&self, params: &[Tensor]) -> TorsoLayers {
        let mut out = TorsoLayers { dtype: self.dtype, convs: Vec::new(), linears: Vec::new() };
        let mut pairs = params.chunks_exact(2).map(|wb| (wb[0].clone(), wb[1].clone()));
        match &self.layers {
            Layers::Cnn(convs) => {
                for ((_, _, stride), (w, b)) in convs.iter().zip(&mut pairs) {
                    let config = Conv2dConfig { stride: *stride, ..Conv2dConfig::default() };
                    out.convs.push(Conv2d::new(w, Some(b), config));
                }
            }
            Layers::Mlp(_) => out.linears.extend(pairs.map(|(w, b)| Linear::new(w, Some(b)))),
        }
        out
    }

    /// Checks that `obs` is a batch of this torso's observations: `u8 (batch, C, H, W)` or
    /// `(batch, len)` floats.
    pub(crate) fn check_obs(&self, obs: &Tensor, what: &str) -> Result<()> {
        let ok = match self.spec {
            ObsSpec::Pixels { channels, height, width } => {
                obs.dtype() == DType::U8 && obs.rank() == 4 && obs.dims()[1..] == [channels, height, width]
            }
            ObsSpec::Vector { len } => obs.dtype().is_float() && obs.rank() == 2 && obs.dims()[1] == len,
        };
        if !ok {
            return Err(Error::ShapeMismatch {
                what: what.into(),
                expected: match self.spec {
                    ObsSpec::Pixels { channels, height, width } => {
                        format!("u8 (batch, {channels}, {height}, {width})")
                    }
                    ObsSpec::Vector { len } => format!("float (batch, {len})"),
                },
                found: format!("{:?} {:?}", obs.dtype(), obs.dims()),
            });
        }
        Ok(())
    }

    /// `(batch, ...)` observations to `(batch, out_dim)` features.
    pub fn forward(&self, obs: &Tensor) -> Result<Tensor> {
        self.check_obs(obs, "Torso::forward")?;
        Ok(self.build().forward(obs)?)
    }
}

impl TorsoLayers {
    /// The same layers with their tensors detached from the autograd graph.
    pub(crate) fn detach(&self) -> Self {
        let convs = self
            .convs
            .iter()
            .map(|c| Conv2d::new(c.weight().detach(), c.bias().map(Tensor::detach), *c.config()))
            .collect();
        let linears = self
            .linears
            .iter()
            .map(|l| Linear::new(l.weight().detach(), l.bias().map(Tensor::detach)))
            .collect();
        Self { dtype: self.dtype, convs, linears }
    }

    pub(crate) fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        // Pixels (only ever the CNN's input) travel as u8, 4x less to copy, and are scaled by
        // the first convolution.
        let pixels = obs.dtype() == DType::U8;
        let mut x = if pixels { obs.clone() } else { obs.to_dtype(self.dtype)? };
        for (i, conv) in self.convs.iter().enumerate() {
            // The first convolution's input is the observation: nobody needs its gradient.
            let input = match (i, pixels) {
                (0, true) => ConvInput::Pixels,
                (0, false) => ConvInput::Data,
                _ => ConvInput::Features,
            };
            x = conv2d_relu(&x, conv, input)?;
        }
        if !self.convs.is_empty() {
            x = x.flatten_from(1)?; // (batch, C, H, W) -> (batch, C * H * W)
        }
        for linear in &self.linears {
            x = linear.forward(&x)?.relu()?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn nature_cnn_shapes_and_mismatches() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let spec = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
        let torso = Torso::new(&TorsoConfig::NatureCnn, &spec, DType::F32, &Device::Cpu, &mut rng).unwrap();
        assert_eq!(torso.out_dim(), 64 * 7 * 7);
        let shapes: Vec<Vec<usize>> = torso.named_vars().iter().map(|(_, v)| v.dims().to_vec()).collect();
        assert_eq!(
            shapes,
            [vec![32, 4, 8, 8], vec![32], vec![64, 32, 4, 4], vec![64], vec![64, 64, 3, 3], vec![64]]
        );
        let bad = Tensor::zeros((2, 4, 84, 84), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(torso.forward(&bad), Err(Error::ShapeMismatch { .. })));
        let small = ObsSpec::Pixels { channels: 4, height: 20, width: 84 };
        assert!(Torso::new(&TorsoConfig::NatureCnn, &small, DType::F32, &Device::Cpu, &mut rng).is_err());
        let vector = ObsSpec::Vector { len: 3 };
        assert!(Torso::new(&TorsoConfig::NatureCnn, &vector, DType::F32, &Device::Cpu, &mut rng).is_err());
    }

    #[test]
    fn pixels_are_scaled_to_unit_range() {
        // A 1x1-kernel check is not possible with the fixed CNN, so compare against the same
        // layers fed the scaled floats directly.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let spec = ObsSpec::Pixels { channels: 1, height: 36, width: 36 };
        let torso = Torso::new(&TorsoConfig::NatureCnn, &spec, DType::F32, &Device::Cpu, &mut rng).unwrap();
        let bytes: Vec<u8> = (0..36 * 36).map(|i| (i * 7 % 256) as u8).collect();
        let u8s = Tensor::from_vec(bytes.clone(), (1, 1, 36, 36), &Device::Cpu).unwrap();
        let floats: Vec<f32> = bytes.iter().map(|&b| b as f32 / 255.0).collect();
        let f32s = Tensor::from_vec(floats, (1, 1, 36, 36), &Device::Cpu).unwrap();
        let a = torso.forward(&u8s).unwrap().to_vec2::<f32>().unwrap();
        let b = torso.build().detach().forward(&f32s).unwrap().to_vec2::<f32>().unwrap();
        for (x, y) in a[0].iter().zip(&b[0]) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    /// max |a - b| / max |b|.
    fn max_rel_normwise(a: &Tensor, b: &Tensor) -> f32 {
        let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        diff / scale
    }

    #[test]
    fn torso_matches_candle_conv_values_and_gradients() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let spec = ObsSpec::Pixels { channels: 4, height: 44, width: 44 };
        let torso = Torso::new(&TorsoConfig::NatureCnn, &spec, DType::F32, &Device::Cpu, &mut rng).unwrap();
        let bytes: Vec<u8> = (0..3 * 4 * 44 * 44).map(|_| rng.random::<u8>()).collect();
        let obs = Tensor::from_vec(bytes, (3, 4, 44, 44), &Device::Cpu).unwrap();
        let layers = torso.build();
        // The straightforward version: candle's Conv2d on every layer.
        let candle_forward = |obs: &Tensor| -> Tensor {
            let mut x = (obs.to_dtype(DType::F32).unwrap() * (1.0 / 255.0)).unwrap();
            for conv in &layers.convs {
                x = conv.forward(&x).unwrap().relu().unwrap();
            }
            x.flatten_from(1).unwrap()
        };
        let (fast, slow) = (layers.forward(&obs).unwrap(), candle_forward(&obs));
        // Relative to the largest entry: the products sum in another order than candle's.
        assert!(max_rel_normwise(&fast, &slow) <= 1e-5, "forward: {}", max_rel_normwise(&fast, &slow));
        // A loss that weighs every feature differently, so every gradient entry matters.
        let w = Tensor::rand(-1f32, 1., fast.dims(), &Device::Cpu).unwrap();
        let (gf, gs) = (
            (fast * &w).unwrap().sum_all().unwrap().backward().unwrap(),
            (slow * &w).unwrap().sum_all().unwrap().backward().unwrap(),
        );
        for (name, var) in torso.named_vars() {
            let (a, b) = (gf.get(&var).unwrap(), gs.get(&var).unwrap());
            let err = max_rel_normwise(a, b);
            assert!(err <= 1e-5, "{name}: {err}");
        }
    }

    #[test]
    fn mlp_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let spec = ObsSpec::Vector { len: 5 };
        let config = TorsoConfig::Mlp { hidden: vec![16, 8] };
        let torso = Torso::new(&config, &spec, DType::F32, &Device::Cpu, &mut rng).unwrap();
        assert_eq!(torso.out_dim(), 8);
        let x = Tensor::zeros((3, 5), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(torso.forward(&x).unwrap().dims(), &[3, 8]);
        let none =
            Torso::new(&TorsoConfig::Mlp { hidden: vec![] }, &spec, DType::F32, &Device::Cpu, &mut rng);
        assert_eq!(none.unwrap().out_dim(), 5);
        let toml: TorsoConfig = toml::from_str("kind = \"mlp\"\nhidden = [64]").unwrap();
        assert_eq!(toml, TorsoConfig::Mlp { hidden: vec![64] });
    }
}
