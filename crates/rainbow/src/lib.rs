//! Rainbow-DQN (Hessel et al. 2018) on candle (CPU, optional CUDA), for action sets of
//! primitives plus macro-actions, with a hook for regularisers such as MASP.
//!
//! In the order of the algorithm:
//!
//! * Network ([`RainbowNet`], [`NetworkConfig`]): a [`Torso`] (the Nature CNN on `u8`
//!   `(batch, 4, 84, 84)` stacks scaled on the device, or an MLP on vectors) and a dueling
//!   C51 [`Head`] of factorised-noise [`NoisyLinear`] layers, optionally with per-action
//!   features from an action-similarity context ([`SEmbeddingConfig`]); log-probabilities
//!   `(batch, actions, atoms)`.
//! * Distributional RL ([`Support`]): expected Q `(batch, actions)`, the C51 projection of
//!   `G + D z` with per-sample discounts `D`, the cross-entropy ([`cross_entropy`]).
//! * [`PrioritizedReplay`]: prioritised replay (priority exponent `alpha`, importance
//!   sampling `beta` annealed to 1, new transitions at the largest priority, stratified
//!   sampling) with every 84x84 frame stored once; a 1M-transition Atari buffer takes
//!   6.6 GiB. It fills a reusable [`Batch`]: observations `u8` `(B, C, H, W)` or `f32`
//!   `(B, len)`, actions, n-step returns, bootstrap discounts, next observations,
//!   importance weights and indices; [`DeviceBatch`] is the same on the device.
//! * n-step returns over each transition's own discount ([`n_step_return`]): a primitive
//!   step carries `(r, gamma)`, a macro-action of `L` steps `(sum gamma^i r_i, gamma^L)`,
//!   a terminal one discount 0 ([`Transition`]).
//! * [`SumTree`] and [`MinTree`]: the segment trees under the replay.
//! * [`Learner`] ([`LearnerConfig`]): double-Q, projection, importance-weighted
//!   cross-entropy, priorities from the loss, gradient-norm clipping, [`Adam`], target sync;
//!   per-update [`UpdateStats`] and optional per-stage [`UpdateTimings`].
//! * [`Regularizer`] and [`MetaAccess`]: a penalty on the batch's Q-values, and what a
//!   one-step meta-gradient needs; [`NoRegularizer`] by default. Rainbow knows nothing of
//!   MASP. [`MetaAccess::lookahead_jvp`] ([`LookaheadJvp`]) does such a meta-gradient's
//!   network work without writing the parameters, with each linear layer's gradient kept
//!   as its batch factors.
//! * Exploration ([`Explorer`], [`ExplorationConfig`]): noisy nets, epsilon-greedy,
//!   ez-greedy.
//! * [`Agent`] ([`AgentConfig`]): act, observe, update when due, evaluation mode,
//!   [`Counters`] of agent steps and frames; checkpoints with [`Agent::save`] and
//!   [`Agent::load`] (safetensors + JSON, replay optional, atomic writes).
//! * Devices: `"cpu" | "cuda:N"` ([`parse_device`]); CUDA needs the `cuda` feature
//!   (`cargo xtask build-cuda`).
//! * Presets: `rainbow()` (= `Default`, full Rainbow as in Dopamine) and `der()`
//!   (data-efficient Rainbow) on every config, per shared/reference/README.md.
//! * [`bench`](mod@bench): the learner benchmark's set-up (Atari learner, fixed random batch), shared
//!   with the MASP benchmark in the masp crate.
//!
//! Every random choice takes a seeded RNG from the caller; everything fallible returns
//! [`Error`].
//!
//! ```
//! use rainbow::{Batch, NStepConfig, PrioritizedReplay, ReplayConfig, Transition};
//! use rand::SeedableRng;
//! use rl_env::{Obs, ObsSpec};
//!
//! // Two env copies with 4x8x8 pixel stacks.
//! let spec = ObsSpec::Pixels { channels: 4, height: 8, width: 8 };
//! let config = ReplayConfig { capacity: 10_000, ..ReplayConfig::default() };
//! let n_step = NStepConfig::default(); // n = 3, gamma = 0.99
//! let mut replay = PrioritizedReplay::new(&config, &n_step, &spec, 2)?;
//!
//! let mut stack = vec![0u8; spec.len()];
//! for env in 0..2 {
//!     replay.start_episode(env, Obs::Pixels(&stack))?;
//! }
//! for t in 1..=10u8 {
//!     stack.copy_within(64.., 0); // the env pushes one new 8x8 frame
//!     stack[192..].fill(t);
//!     for env in 0..2 {
//!         let step = Transition::primitive(1, 0.5, n_step.gamma, false, false);
//!         replay.add(env, &step, Obs::Pixels(&stack))?;
//!     }
//! }
//! let mut batch = Batch::new(32, &spec);
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! replay.sample(&mut rng, 0, &mut batch)?;
//! assert_eq!(batch.obs_shape(), [32, 4, 8, 8]);
//! assert!(batch.discounts().iter().all(|&d| (d - 0.99f32.powi(3)).abs() < 1e-6));
//! replay.update_priorities(batch.indices(), &vec![1.0; 32])?;
//! # Ok::<(), rainbow::Error>(())
//! ```

#![forbid(unsafe_code)]

mod agent;
pub mod bench;
mod checkpoint;
mod config;
mod device;
mod device_batch;
mod distributional;
mod error;
mod exploration;
mod head;
mod learner;
mod network;
mod noisy_linear;
mod nstep;
mod optimizer;
mod regularizer;
mod replay;
mod s_embedding;
mod torso;
mod transition;

pub use agent::{Agent, AgentConfig, Counters};
pub use checkpoint::CHECKPOINT_FORMAT_VERSION;
pub use config::{NStepConfig, ReplayConfig, WeightNormalisation};
pub use device::{configure_cpu_threads, parse_device, DeviceSpec, KEEP_DENORMALS_ENV};
pub use device_batch::DeviceBatch;
pub use distributional::{cross_entropy, Support};
pub use error::{Error, Result};
pub use exploration::{ExplorationConfig, ExplorationKind, Explorer, Repeat};
pub use head::Head;
pub use learner::{Learner, LearnerConfig, StageClock, UpdateStats, UpdateTimings};
pub use network::{NetworkConfig, RainbowNet};
pub use noisy_linear::NoisyLinear;
pub use nstep::{n_step_return, NStepReturn};
pub use optimizer::Adam;
pub use regularizer::{
    Difference, LookaheadJvp, LookaheadRequest, LookaheadTimings, MetaAccess, NoRegularizer, Regularizer,
    UpdateGradient,
};
pub use replay::batch::Batch;
pub use replay::prioritized::PrioritizedReplay;
pub use replay::sum_tree::{MinTree, SumTree};
pub use s_embedding::SEmbeddingConfig;
pub use torso::{Torso, TorsoConfig};
pub use transition::Transition;
