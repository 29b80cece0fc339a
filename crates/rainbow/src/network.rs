//! `RainbowNet`: torso plus dueling C51 head, mapping observations to per-action return
//! distributions; and its [`NetworkConfig`].
//!
//! `forward`: observations `(batch, ...)` -> log-probabilities `(batch, actions, atoms)`.
//! The expected Q-values `(batch, actions)` are `sum_z z p_z` over the learner's support
//! ([`crate::Support::expected_q`]); the network itself knows only the number of atoms.
//!
//! Parameters are candle [`Var`]s in a fixed order ([`RainbowNet::named_vars`]): what the
//! optimiser, checkpoints and a regulariser's meta step iterate over. They are initialised
//! from the caller's seeded RNG (candle's own CPU initialisers cannot be seeded).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use rainbow::{NetworkConfig, RainbowNet, TorsoConfig};
//! use rand::SeedableRng;
//! use rl_env::ObsSpec;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let config = NetworkConfig { torso: TorsoConfig::Mlp { hidden: vec![32] }, hidden: 32, ..NetworkConfig::rainbow() };
//! let mut net = RainbowNet::new(&config, &ObsSpec::Vector { len: 6 }, 4, DType::F32, &Device::Cpu, &mut rng)?;
//! net.resample_noise(&mut rng)?;
//! let obs = Tensor::zeros((2, 6), DType::F32, &Device::Cpu)?;
//! assert_eq!(net.forward(&obs)?.dims(), &[2, 4, 51]); // (batch, actions, atoms)
//! # Ok::<(), rainbow::Error>(())
//! ```

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rl_env::ObsSpec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::head::{Head, HeadLayers};
use crate::noisy_linear::BuiltLinear;
use crate::s_embedding::SEmbeddingConfig;
use crate::torso::{Torso, TorsoConfig, TorsoLayers};

/// The network's shape. `rainbow()` (= `Default`) is the Atari network of Hessel et al.
/// 2018; `der()` is data-efficient Rainbow's (van Hasselt et al. 2019).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The feature extractor. Default: the Nature CNN.
    pub torso: TorsoConfig,
    /// Units in the first layer of each head stream. Default 512 (Rainbow), 256 (DER).
    pub hidden: usize,
    /// C51 atoms per action. Default 51.
    pub atoms: usize,
    /// Noisy head layers (Fortunato et al. 2018); off gives plain linear layers, for
    /// epsilon-greedy ablations. Default on.
    pub noisy: bool,
    /// Initial noise scale `sigma0` (`sigma = sigma0 / sqrt(fan_in)`). Default 0.5 (Hessel
    /// et al. and Fortunato et al.; Dopamine uses 0.1), 0.1 for DER.
    pub sigma0: f64,
    /// Dueling value and advantage streams (Wang et al. 2016). Default on.
    pub dueling: bool,
    /// Per-action features from an action-similarity context in the advantage stream
    /// ([`SEmbeddingConfig`]; the project's reading of MASP's context embedding, which needs
    /// MASP to hand the context over). Default off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_embedding: Option<SEmbeddingConfig>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self::rainbow()
    }
}

impl NetworkConfig {
    /// Full Rainbow on Atari: Nature CNN, 512 hidden units, 51 atoms, noisy (sigma0 0.5),
    /// dueling.
    pub fn rainbow() -> Self {
        Self {
            torso: TorsoConfig::NatureCnn,
            hidden: 512,
            atoms: 51,
            noisy: true,
            sigma0: 0.5,
            dueling: true,
            s_embedding: None,
        }
    }

    /// Data-efficient Rainbow: 256 hidden units and sigma0 0.1 (shared/reference table).
    /// Deviation: the torso stays the Nature CNN, as in Dopamine's Atari 100k Rainbow.
    pub fn der() -> Self {
        Self { hidden: 256, sigma0: 0.1, ..Self::rainbow() }
    }

    /// A small MLP network for vector observations (toy environments, Atari RAM).
    pub fn mlp(hidden: usize) -> Self {
        Self { torso: TorsoConfig::Mlp { hidden: vec![hidden] }, hidden, ..Self::rainbow() }
    }

    /// Checks every field; the error names the first bad field and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: &dyn std::fmt::Debug, fix: &str| {
            Err(Error::config("NetworkConfig", field, value, fix))
        };
        if self.hidden == 0 {
            return bad("hidden", &self.hidden, "use at least 1 unit, e.g. 512 (Rainbow) or 256 (DER)");
        }
        if self.atoms < 2 {
            return bad("atoms", &self.atoms, "use at least 2 atoms, e.g. 51 (C51)");
        }
        if !(self.sigma0.is_finite() && self.sigma0 >= 0.0) {
            return bad("sigma0", &self.sigma0, "use a noise scale >= 0, e.g. 0.5 (Rainbow) or 0.1 (DER)");
        }
        if let TorsoConfig::Mlp { hidden } = &self.torso {
            if hidden.contains(&0) {
                return bad("torso.hidden", hidden, "give every MLP layer at least 1 unit, e.g. [64]");
            }
        }
        if let Some(e) = &self.s_embedding {
            if e.dims == 0 {
                return bad("s_embedding.dims", &e.dims, "use at least 1 feature per action, e.g. 8");
            }
            if !(e.init_scale.is_finite() && e.init_scale >= 0.0) {
                return bad("s_embedding.init_scale", &e.init_scale, "use a bound >= 0, e.g. 0.01");
            }
        }
        Ok(())
    }
}

/// The Rainbow network; see the module docs.
#[derive(Debug)]
pub struct RainbowNet {
    config: NetworkConfig,
    torso: Torso,
    head: Head,
}

/// The whole network at fixed parameters and noise: built once per update, used for every
/// forward pass of that update.
pub(crate) struct NetLayers {
    torso: TorsoLayers,
    head: HeadLayers,
}

impl NetLayers {
    /// `(batch, ...)` observations -> log-probabilities `(batch, actions, atoms)`.
    pub(crate) fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        self.head.forward(&self.torso.forward(obs)?)
    }

    /// [`NetLayers::forward`] through [`HeadLayers::forward_with`].
    pub(crate) fn forward_with(
        &self,
        obs: &Tensor,
        apply: impl Fn(usize, &BuiltLinear, &Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.head.forward_with(&self.torso.forward(obs)?, apply)
    }

    /// The same layers detached from the autograd graph (for the no-gradient passes).
    pub(crate) fn detach(&self) -> Self {
        Self { torso: self.torso.detach(), head: self.head.detach() }
    }

    pub(crate) fn head(&self) -> &HeadLayers {
        &self.head
    }
}

impl RainbowNet {
    /// A network for observations of `obs` and `actions` actions.
    pub fn new<R: Rng + ?Sized>(
        config: &NetworkConfig,
        obs: &ObsSpec,
        actions: usize,
        dtype: DType,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        if actions == 0 {
            return Err(Error::config("RainbowNet", "actions", actions, "use at least one action"));
        }
        let torso = Torso::new(&config.torso, obs, dtype, device, rng)?;
        let sigma0 = config.noisy.then_some(config.sigma0);
        let mut head = Head::new(
            torso.out_dim(),
            config.hidden,
            actions,
            config.atoms,
            config.dueling,
            sigma0,
            dtype,
            device,
            rng,
        )?;
        if let Some(embedding) = &config.s_embedding {
            head = head.with_s_embedding(embedding, rng)?;
        }
        Ok(Self { config: config.clone(), torso, head })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    pub fn actions(&self) -> usize {
        self.head.actions()
    }

    pub fn atoms(&self) -> usize {
        self.head.atoms()
    }

    pub fn obs_spec(&self) -> &ObsSpec {
        self.torso.obs_spec()
    }

    pub fn torso(&self) -> &Torso {
        &self.torso
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The trainable parameters in a fixed order (torso, then value stream, then advantage
    /// stream), named `torso.conv0.weight`, ..., `head.advantage2.bias_sigma`.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let torso = self.torso.named_vars().into_iter().map(|(n, v)| (format!("torso.{n}"), v));
        let head = self.head.named_vars().into_iter().map(|(n, v)| (format!("head.{n}"), v));
        torso.chain(head).collect()
    }

    /// [`RainbowNet::named_vars`] without the names.
    pub fn vars(&self) -> Vec<Var> {
        self.named_vars().into_iter().map(|(_, v)| v).collect()
    }

    /// Number of trainable scalars.
    pub fn num_parameters(&self) -> usize {
        self.vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Draws new noise for every noisy layer.
    pub fn resample_noise<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Result<()> {
        for layer in self.head.layers_mut() {
            layer.resample_noise(rng)?;
        }
        Ok(())
    }

    /// Noise on (training) or off (evaluation: the mean weights).
    pub fn set_noise_enabled(&mut self, on: bool) {
        for layer in self.head.layers_mut() {
            layer.set_noise_enabled(on);
        }
    }

    /// The current noise sample, per noisy layer: `(f(eps_in), f(eps_out))`.
    pub fn noise_factors(&self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.head.layers().map(|l| (l.noise_factors().0.to_vec(), l.noise_factors().1.to_vec())).collect()
    }

    /// Restores a noise sample from [`RainbowNet::noise_factors`].
    pub fn set_noise_factors(&mut self, factors: &[(Vec<f64>, Vec<f64>)]) -> Result<()> {
        let layers = self.head.layers().count();
        if factors.len() != layers {
            return Err(Error::ShapeMismatch {
                what: "RainbowNet::set_noise_factors".into(),
                expected: format!("{layers} layers"),
                found: format!("{}", factors.len()),
            });
        }
        for (layer, (f_in, f_out)) in self.head.layers_mut().zip(factors) {
            layer.set_noise_factors(f_in, f_out)?;
        }
        Ok(())
    }

    /// The action-similarity context `P (actions, actions)` of the S-embedding (the identity
    /// until one is handed over); `None` without it.
    pub fn action_context(&self) -> Option<&Tensor> {
        self.head.s_embedding().map(|e| e.context())
    }

    /// Hands the S-embedding a new context `P (actions, actions)`, a constant input (converted
    /// to the network's dtype and device). An error for a network without the S-embedding.
    pub fn set_action_context(&mut self, context: &Tensor) -> Result<()> {
        let actions = self.actions();
        let Some(embedding) = self.head.s_embedding_mut() else {
            return Err(Error::config(
                "NetworkConfig",
                "s_embedding",
                "None",
                "an action context needs the S-embedding: set [agent.network] s_embedding = { dims = 8 }",
            ));
        };
        if context.dims() != [actions, actions] {
            return Err(Error::ShapeMismatch {
                what: "RainbowNet::set_action_context".into(),
                expected: format!("[{actions}, {actions}]"),
                found: format!("{:?}", context.dims()),
            });
        }
        Ok(embedding.set_context(context)?)
    }

    /// Copies every parameter (and the noise sample) of `other`, a network of the same
    /// shape, in place: the target-network sync. The S-embedding's context is an input that
    /// its owner hands to both networks, and is not copied.
    pub fn copy_from(&mut self, other: &RainbowNet) -> Result<()> {
        for ((name, dst), (_, src)) in self.named_vars().iter().zip(other.named_vars()) {
            if dst.shape() != src.shape() {
                return Err(Error::ShapeMismatch {
                    what: format!("RainbowNet::copy_from {name}"),
                    expected: format!("{:?}", dst.dims()),
                    found: format!("{:?}", src.dims()),
                });
            }
            dst.set(src.as_tensor())?;
        }
        Ok(())
    }

    /// The layers at the current parameters and noise.
    pub(crate) fn build(&self) -> Result<NetLayers> {
        Ok(NetLayers { torso: self.torso.build(), head: self.head.build()? })
    }

    /// Checks that `obs` is a batch of this network's observations.
    pub(crate) fn check_obs(&self, obs: &Tensor, what: &str) -> Result<()> {
        self.torso.check_obs(obs, what)
    }

    /// Observations `(batch, ...)` (`u8` pixels or float vectors) -> log-probabilities
    /// `(batch, actions, atoms)`, at the current parameters and noise.
    pub fn forward(&self, obs: &Tensor) -> Result<Tensor> {
        self.check_obs(obs, "RainbowNet::forward")?;
        Ok(self.build()?.forward(obs)?)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn atari_network_shapes_and_parameter_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let spec = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
        let mut net =
            RainbowNet::new(&NetworkConfig::rainbow(), &spec, 18, DType::F32, &Device::Cpu, &mut rng)
                .unwrap();
        net.resample_noise(&mut rng).unwrap();
        let obs = Tensor::zeros((2, 4, 84, 84), DType::U8, &Device::Cpu).unwrap();
        let logp = net.forward(&obs).unwrap();
        assert_eq!(logp.dims(), &[2, 18, 51]);
        let sums = logp.exp().unwrap().sum(2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
        // Torso 1_686_656 (as torch's Nature CNN: 8_224 + 32_832 + 36_928 + ... ); head: each
        // noisy layer has 2 * (in * out + out) parameters.
        let torso = (32 * 4 * 64 + 32) + (64 * 32 * 16 + 64) + (64 * 64 * 9 + 64);
        let noisy = |i: usize, o: usize| 2 * (i * o + o);
        let head = noisy(3136, 512) + noisy(512, 51) + noisy(3136, 512) + noisy(512, 18 * 51);
        assert_eq!(net.num_parameters(), torso + head);
        let names: Vec<String> = net.named_vars().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], "torso.conv0.weight");
        assert_eq!(names.last().unwrap(), "head.advantage2.bias_sigma");
    }

    /// The evaluation policy is the trained one: with the noise off, the network is exactly
    /// the noisy network at a zero noise sample, through torso and head, on the fused f32
    /// CPU path (to its summation order) and on candle's own ops in f64 (bit for bit).
    #[test]
    fn evaluation_mode_is_training_mode_at_zero_noise() {
        let pixels = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
        let vector = ObsSpec::Vector { len: 5 };
        let cases = [
            (NetworkConfig::der(), &pixels, DType::F32, 2e-5),
            (NetworkConfig::der(), &pixels, DType::F64, 0.0),
            (NetworkConfig::mlp(16), &vector, DType::F32, 2e-5),
        ];
        for (config, spec, dtype, tolerance) in cases {
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            let mut net = RainbowNet::new(&config, spec, 6, dtype, &Device::Cpu, &mut rng).unwrap();
            let obs = match *spec {
                ObsSpec::Pixels { channels, height, width } => {
                    let bytes: Vec<u8> = (0..3 * spec.len()).map(|i| (i * 37 % 251) as u8).collect();
                    Tensor::from_vec(bytes, (3, channels, height, width), &Device::Cpu).unwrap()
                }
                ObsSpec::Vector { len } => {
                    let x: Vec<f32> = (0..3 * len).map(|i| (i as f32 * 0.7).sin()).collect();
                    Tensor::from_vec(x, (3, len), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
                }
            };
            // A noise sample first, so that zeroing it is what makes the difference.
            net.resample_noise(&mut rng).unwrap();
            let noisy = net.forward(&obs).unwrap();
            let zeros: Vec<(Vec<f64>, Vec<f64>)> =
                net.noise_factors().iter().map(|(i, o)| (vec![0.0; i.len()], vec![0.0; o.len()])).collect();
            net.set_noise_factors(&zeros).unwrap();
            let training = net.forward(&obs).unwrap();
            net.set_noise_enabled(false);
            let evaluation = net.forward(&obs).unwrap();
            let gap = |a: &Tensor, b: &Tensor| {
                (a - b)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            assert!(gap(&noisy, &evaluation) > 1e-4, "{dtype:?}: the noise sample mattered");
            let d = gap(&training, &evaluation);
            assert!(d <= tolerance, "{dtype:?} {spec:?}: evaluation differs from zero noise by {d}");
        }
    }

    #[test]
    fn copy_from_makes_an_identical_network() {
        let config = NetworkConfig::mlp(8);
        let spec = ObsSpec::Vector { len: 3 };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let online = RainbowNet::new(&config, &spec, 2, DType::F32, &Device::Cpu, &mut rng).unwrap();
        let mut target = RainbowNet::new(&config, &spec, 2, DType::F32, &Device::Cpu, &mut rng).unwrap();
        let obs = Tensor::ones((1, 3), DType::F32, &Device::Cpu).unwrap();
        let diff = |a: &RainbowNet, b: &RainbowNet| {
            let d = (a.forward(&obs).unwrap() - b.forward(&obs).unwrap()).unwrap();
            d.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
        };
        assert!(diff(&online, &target) > 0.0);
        target.copy_from(&online).unwrap();
        assert_eq!(diff(&online, &target), 0.0);
    }

    /// The context is an input of the S-embedding's networks only, of shape `(actions,
    /// actions)`, starting at the identity.
    #[test]
    fn the_action_context_is_checked_and_taken() {
        let spec = ObsSpec::Vector { len: 3 };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut plain =
            RainbowNet::new(&NetworkConfig::mlp(8), &spec, 4, DType::F32, &Device::Cpu, &mut rng).unwrap();
        let p = Tensor::full(0.25f64, (4, 4), &Device::Cpu).unwrap();
        assert!(plain.action_context().is_none());
        assert!(matches!(
            plain.set_action_context(&p),
            Err(Error::InvalidConfig { field: "s_embedding", .. })
        ));
        let config =
            NetworkConfig { s_embedding: Some(SEmbeddingConfig::default()), ..NetworkConfig::mlp(8) };
        let mut net = RainbowNet::new(&config, &spec, 4, DType::F32, &Device::Cpu, &mut rng).unwrap();
        let eye = Tensor::eye(4, DType::F32, &Device::Cpu).unwrap();
        let context = |net: &RainbowNet| net.action_context().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(context(&net), eye.to_vec2::<f32>().unwrap());
        let bad = Tensor::full(0.5f64, (4, 2), &Device::Cpu).unwrap();
        assert!(matches!(net.set_action_context(&bad), Err(Error::ShapeMismatch { .. })));
        net.set_action_context(&p).unwrap();
        assert_eq!(context(&net), vec![vec![0.25f32; 4]; 4]);
        let obs = Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(net.forward(&obs).unwrap().dims(), &[2, 4, 51]);
    }

    #[test]
    fn validation_names_the_field() {
        let d = NetworkConfig::rainbow;
        let field = |c: NetworkConfig| match c.validate().unwrap_err() {
            Error::InvalidConfig { field, .. } => field,
            e => panic!("{e}"),
        };
        assert_eq!(field(NetworkConfig { hidden: 0, ..d() }), "hidden");
        assert_eq!(field(NetworkConfig { atoms: 1, ..d() }), "atoms");
        assert_eq!(field(NetworkConfig { sigma0: -0.1, ..d() }), "sigma0");
        assert_eq!(
            field(NetworkConfig { torso: TorsoConfig::Mlp { hidden: vec![0] }, ..d() }),
            "torso.hidden"
        );
        let embedding = |dims, init_scale| Some(SEmbeddingConfig { dims, init_scale });
        assert_eq!(field(NetworkConfig { s_embedding: embedding(0, 0.01), ..d() }), "s_embedding.dims");
        assert_eq!(field(NetworkConfig { s_embedding: embedding(8, -1.0), ..d() }), "s_embedding.init_scale");
        NetworkConfig::der().validate().unwrap();
        let toml: NetworkConfig = toml::from_str("s_embedding = { dims = 4 }").unwrap();
        assert_eq!(toml.s_embedding, embedding(4, 0.01));
        let round: NetworkConfig = toml::from_str(&toml::to_string(&toml).unwrap()).unwrap();
        assert_eq!(round, toml);
        assert!(!toml::to_string(&d()).unwrap().contains("s_embedding"), "off: not written");
        let toml: NetworkConfig = toml::from_str("hidden = 256\n[torso]\nkind = \"nature_cnn\"").unwrap();
        assert_eq!(toml, NetworkConfig { hidden: 256, ..d() });
        assert!(toml::from_str::<NetworkConfig>("hiden = 3").unwrap_err().to_string().contains("hiden"));
    }
}
