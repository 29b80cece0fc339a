//! `Learner`: Rainbow's update (Hessel et al. 2018) and its [`LearnerConfig`].
//!
//! One update ([`Learner::learn`]), in the order of the algorithm:
//!
//! 1. sample: a prioritised batch `B` ([`Learner::update`]), and new noise for the online
//!    and the target network;
//! 2. online and target passes: the target network on `s'`, the online network on `s'`
//!    (double-Q) and on `s` (log-probs `(batch, actions, atoms)`);
//! 3. double-Q: `a* = argmax_a sum_z z p_online(s', a)` `(batch,)`, and the bootstrap
//!    distribution `p_target(s', a*)` `(batch, atoms)`;
//! 4. projection of `G + D z` onto the support, with each sample's return `G` and discount
//!    `D` ([`Support::project`]);
//! 5. loss: the taken action's row `(batch, atoms)`, the cross-entropy per sample `(batch,)`,
//!    and `mean_i w_i CE_i` with the importance weights `w`;
//! 6. regulariser: a penalty on the expected Q-values `(batch, actions)` of the same pass;
//! 7. backward;
//! 8. clip: the global gradient norm, and the factor that brings it to at most 10;
//! 9. the regulariser's `before_step` (a meta step, at the parameters the gradient was
//!    taken at), then the Adam step (lr, eps) with the clipping factor;
//! 10. priorities `CE_i` back to the replay (which adds its `eps` and exponent);
//! 11. target sync: the target network copies the online one every
//!     `target_update_period` updates.
//!
//! A NaN or infinite loss or gradient norm stops the update before the optimiser step with
//! [`Error::NonFiniteLoss`]: parameters, moments and priorities stay as they were.
//!
//! The learner owns the replay (a regulariser's meta step samples a second batch from it),
//! the online and target networks, Adam, and seeded RNG streams for noise and sampling, so
//! a run is a function of its seed. Beside this file: `meta_access.rs` (what the learner
//! lends a regulariser, [`MetaAccess`]), `lookahead.rs` (the learner's own SGD lookahead
//! for a meta step) and `profile.rs` ([`UpdateTimings`], [`StageClock`]).
//!
//! ```
//! use candle_core::{DType, Device};
//! use rainbow::{Learner, LearnerConfig, NetworkConfig, NStepConfig, PrioritizedReplay, ReplayConfig, Transition};
//! use rl_env::{Obs, ObsSpec};
//!
//! let spec = ObsSpec::Vector { len: 2 };
//! let replay = PrioritizedReplay::new(&ReplayConfig { capacity: 100, ..ReplayConfig::default() }, &NStepConfig::default(), &spec, 1)?;
//! let config = LearnerConfig { batch_size: 4, ..LearnerConfig::rainbow() };
//! let mut learner = Learner::new(&config, &NetworkConfig::mlp(16), replay, 3, DType::F32, &Device::Cpu, 0)?;
//! learner.replay_mut().start_episode(0, Obs::Vector(&[0.0, 0.0]))?;
//! for t in 0..5 {
//!     let step = Transition::primitive(1, 1.0, 0.99, t == 4, false);
//!     learner.replay_mut().add(0, &step, Obs::Vector(&[t as f32, 1.0]))?;
//! }
//! let stats = learner.update(0, &mut ())?;
//! assert!(stats.loss.is_finite() && stats.update == 1);
//! # Ok::<(), rainbow::Error>(())
//! ```

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::device_batch::DeviceBatch;
use crate::distributional::{cross_entropy, Support};
use crate::error::{Error, Result};
use crate::network::{NetLayers, NetworkConfig, RainbowNet};
use crate::optimizer::{global_grad_norm, Adam};
use crate::regularizer::{Regularizer, UpdateGradient};
use crate::replay::batch::Batch;
use crate::replay::prioritized::PrioritizedReplay;

mod lookahead;
mod meta_access;
mod profile;

use lookahead::{Taps, UpdateGradients};
use meta_access::InProgress;
pub use profile::{StageClock, UpdateTimings};

/// The learner's knobs and the agent's update schedule. `rainbow()` (= `Default`) is full
/// Rainbow as Dopamine runs it; `der()` is data-efficient Rainbow (shared/reference table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnerConfig {
    /// Transitions per update. Default 32.
    pub batch_size: usize,
    /// Adam learning rate. Default 6.25e-5 (Rainbow), 1e-4 (DER).
    pub lr: f64,
    /// Adam epsilon. Default 1.5e-4 (both).
    pub adam_eps: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off. Default 10.
    pub max_grad_norm: f64,
    /// Lowest atom of the C51 support. Default -10.
    pub v_min: f64,
    /// Highest atom of the C51 support. Default 10.
    pub v_max: f64,
    /// Double-Q: the online network picks the bootstrap action, the target network values it
    /// (van Hasselt et al. 2016). Off: the target network does both. Default on.
    pub double_q: bool,
    /// Agent steps (decisions, summed over env copies) before the first update. Default
    /// 20_000 (Rainbow), 1_600 (DER).
    pub learning_starts: u64,
    /// Agent steps per update. Default 4 (Rainbow), 1 (DER).
    pub update_period: u64,
    /// Updates between target-network syncs. Default 2_000: Rainbow's 8_000 agent steps at
    /// one update per 4 steps, and DER's 2_000 updates.
    pub target_update_period: u64,
}

impl Default for LearnerConfig {
    fn default() -> Self {
        Self::rainbow()
    }
}

impl LearnerConfig {
    /// Full Rainbow (Hessel et al. 2018 / Dopamine): Adam 6.25e-5, eps 1.5e-4, support
    /// [-10, 10], 20k agent steps of warm-up, an update every 4 agent steps, target sync every
    /// 8000 agent steps.
    pub fn rainbow() -> Self {
        Self {
            batch_size: 32,
            lr: 6.25e-5,
            adam_eps: 1.5e-4,
            max_grad_norm: 10.0,
            v_min: -10.0,
            v_max: 10.0,
            double_q: true,
            learning_starts: 20_000,
            update_period: 4,
            target_update_period: 2_000,
        }
    }

    /// Data-efficient Rainbow (van Hasselt et al. 2019): Adam 1e-4, 1600 agent steps of
    /// warm-up, an update every agent step, target sync every 2000 updates.
    pub fn der() -> Self {
        Self { lr: 1e-4, learning_starts: 1_600, update_period: 1, ..Self::rainbow() }
    }

    /// Checks every field; the error names the first bad field and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: &dyn std::fmt::Debug, fix: &str| {
            Err(Error::config("LearnerConfig", field, value, fix))
        };
        if self.batch_size == 0 {
            return bad("batch_size", &self.batch_size, "use at least 1 transition per update, e.g. 32");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", &self.lr, "use a positive learning rate, e.g. 6.25e-5 (Rainbow) or 1e-4 (DER)");
        }
        if !(self.adam_eps.is_finite() && self.adam_eps > 0.0) {
            return bad("adam_eps", &self.adam_eps, "use a small positive number, e.g. 1.5e-4");
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return bad(
                "max_grad_norm",
                &self.max_grad_norm,
                "use a norm > 0 (e.g. 10), or 0 to turn clipping off",
            );
        }
        if !self.v_min.is_finite() {
            return bad("v_min", &self.v_min, "use a finite lowest return, e.g. -10");
        }
        if !(self.v_max.is_finite() && self.v_max > self.v_min) {
            return bad(
                "v_max",
                &self.v_max,
                "use a finite v_max greater than v_min, e.g. v_min = -10, v_max = 10",
            );
        }
        if self.update_period == 0 {
            return bad("update_period", &self.update_period, "use at least 1 agent step per update, e.g. 4");
        }
        if self.target_update_period == 0 {
            return bad(
                "target_update_period",
                &self.target_update_period,
                "use at least 1 update, e.g. 2000",
            );
        }
        Ok(())
    }
}

/// What one update did.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateStats {
    /// The update's number, from 1.
    pub update: u64,
    /// The minimised TD loss `mean_i w_i CE_i` (without the penalty).
    pub loss: f32,
    /// The regulariser's penalty, if it returned one.
    pub penalty: Option<f32>,
    /// `mean_i CE_i`: the mean of the new priorities (before the replay's `eps` and
    /// exponent).
    pub mean_priority: f32,
    /// The global gradient norm before clipping.
    pub grad_norm: f32,
    /// Whether clipping scaled the gradient down.
    pub clipped: bool,
    /// `mean_i max_a Q_online(s'_i, a)`: the value the bootstrap action choice sees.
    pub next_q_mean: f32,
    /// Whether the target network was synced after this update.
    pub target_synced: bool,
}

/// An online forward pass, `obs -> log-probabilities (batch, actions, atoms)`, for the
/// bootstrap action choice: the update's detached layers, or the lookahead's.
type OnlinePass<'a> = dyn Fn(&Tensor) -> candle_core::Result<Tensor> + Sync + 'a;

/// RNG stream ids under the learner's seed.
const STREAM_INIT: u64 = 0;
const STREAM_NOISE: u64 = 1;
const STREAM_SAMPLE: u64 = 2;

/// A seeded ChaCha stream: one seed, independent streams per purpose.
pub(crate) fn rng_stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The Rainbow learner; see the module docs.
pub struct Learner {
    config: LearnerConfig,
    online: RainbowNet,
    target: RainbowNet,
    support: Support,
    adam: Adam,
    replay: PrioritizedReplay,
    device: Device,
    dtype: DType,
    pub(crate) noise_rng: ChaCha8Rng,
    pub(crate) sample_rng: ChaCha8Rng,
    /// Host buffers the replay samples into: one for updates, one for `sample_batch`.
    batch: Batch,
    meta_batch: Batch,
    last_batch: Option<DeviceBatch>,
    /// What the update in progress lends its regulariser's `before_step`.
    in_progress: Option<InProgress>,
    /// `CE_i` of the last update, `(batch,)`.
    last_losses: Vec<f32>,
    pub(crate) updates: u64,
    /// The step the last `update` was given (for `beta` in `sample_batch`).
    pub(crate) step: u64,
    profile: bool,
    timings: UpdateTimings,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("config", &self.config)
            .field("network", self.online.config())
            .field("actions", &self.online.actions())
            .field("device", &self.device)
            .field("updates", &self.updates)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

/// `log_probs (batch, actions, atoms)` at `actions (batch,)` -> `(batch, atoms)`.
fn select_action(log_probs: &Tensor, actions: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, _, atoms) = log_probs.dims3()?;
    let index = actions.reshape((batch, 1, 1))?.broadcast_as((batch, 1, atoms))?.contiguous()?;
    log_probs.gather(&index, 1)?.squeeze(1)
}

impl Learner {
    /// A learner for `actions` actions over `replay`'s observations, with parameters in
    /// `dtype` on `device`; every random draw comes from `seed`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &LearnerConfig,
        network: &NetworkConfig,
        replay: PrioritizedReplay,
        actions: usize,
        dtype: DType,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        network.validate()?;
        let spec = replay.obs_spec().clone();
        let mut init = rng_stream(seed, STREAM_INIT);
        let online = RainbowNet::new(network, &spec, actions, dtype, device, &mut init)?;
        let mut target = RainbowNet::new(network, &spec, actions, dtype, device, &mut init)?;
        target.copy_from(&online)?;
        let support = Support::new(network.atoms, config.v_min, config.v_max, dtype, device)?;
        let adam = Adam::new(online.vars(), config.lr, config.adam_eps)?;
        let mut learner = Self {
            config: config.clone(),
            batch: Batch::new(config.batch_size, &spec),
            meta_batch: Batch::new(config.batch_size, &spec),
            online,
            target,
            support,
            adam,
            replay,
            device: device.clone(),
            dtype,
            noise_rng: rng_stream(seed, STREAM_NOISE),
            sample_rng: rng_stream(seed, STREAM_SAMPLE),
            last_batch: None,
            in_progress: None,
            last_losses: Vec::new(),
            updates: 0,
            step: 0,
            profile: false,
            timings: UpdateTimings::default(),
        };
        // Acting before the first update needs a noise sample.
        learner.online.resample_noise(&mut learner.noise_rng)?;
        learner.target.resample_noise(&mut learner.noise_rng)?;
        Ok(learner)
    }

    pub fn config(&self) -> &LearnerConfig {
        &self.config
    }

    pub fn online(&self) -> &RainbowNet {
        &self.online
    }

    /// The online network, e.g. to switch its noise off for evaluation.
    pub fn online_mut(&mut self) -> &mut RainbowNet {
        &mut self.online
    }

    pub fn target(&self) -> &RainbowNet {
        &self.target
    }

    pub(crate) fn target_mut(&mut self) -> &mut RainbowNet {
        &mut self.target
    }

    pub fn support(&self) -> &Support {
        &self.support
    }

    pub fn adam(&self) -> &Adam {
        &self.adam
    }

    pub(crate) fn adam_mut(&mut self) -> &mut Adam {
        &mut self.adam
    }

    pub fn replay(&self) -> &PrioritizedReplay {
        &self.replay
    }

    pub fn replay_mut(&mut self) -> &mut PrioritizedReplay {
        &mut self.replay
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Updates done so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// `CE_i` per sample of the last update: the priorities it reported.
    pub fn last_losses(&self) -> &[f32] {
        &self.last_losses
    }

    /// Turns per-stage timing on or off (on costs a device synchronisation per stage).
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on;
    }

    /// The stage timings of the last update (zero unless profiling is on).
    pub fn timings(&self) -> &UpdateTimings {
        &self.timings
    }

    /// Draws new noise for the online network (the agent does so before acting).
    pub fn resample_online_noise(&mut self) -> Result<()> {
        self.online.resample_noise(&mut self.noise_rng)
    }

    /// Hands the online and target networks' S-embedding a new action context
    /// ([`RainbowNet::set_action_context`]); acting uses the online network's.
    pub fn set_action_context(&mut self, context: &Tensor) -> Result<()> {
        self.online.set_action_context(context)?;
        self.target.set_action_context(context)
    }

    /// Copies the online network into the target network.
    pub fn sync_target(&mut self) -> Result<()> {
        self.target.copy_from(&self.online)
    }

    /// Greedy actions of the online network (current noise) for observations `(n, ...)`.
    pub fn greedy_actions(&self, obs: &Tensor) -> Result<Vec<usize>> {
        self.online.check_obs(obs, "Learner::greedy_actions")?;
        let q = self.support.expected_q(&self.online.build()?.detach().forward(obs)?)?;
        Ok(q.argmax(1)?.to_vec1::<u32>()?.into_iter().map(|a| a as usize).collect())
    }

    /// The online expected Q-values `(n, actions)` for observations `(n, ...)`.
    pub fn q_values_of(&self, obs: &Tensor) -> Result<Tensor> {
        self.online.check_obs(obs, "Learner::q_values_of")?;
        Ok(self.support.expected_q(&self.online.build()?.detach().forward(obs)?)?)
    }

    /// Samples a batch at agent step `step` (for `beta`), learns from it, and sends the new
    /// priorities back to the replay.
    pub fn update(&mut self, step: u64, regularizer: &mut dyn Regularizer) -> Result<UpdateStats> {
        self.step = step;
        let mut clock = StageClock::start(&self.device, self.profile)?;
        let mut sample = std::time::Duration::ZERO;
        self.replay.sample(&mut self.sample_rng, step, &mut self.batch)?;
        let batch = DeviceBatch::from_batch(&self.batch, self.dtype, &self.device)?;
        clock.lap(&mut sample)?;
        let stats = self.learn(&batch, regularizer)?;
        self.timings.sample = sample;
        self.replay.update_priorities(batch.indices(), &self.last_losses)?;
        Ok(stats)
    }

    /// The target distribution `Phi T Z` `(batch, atoms)` and `max_a Q_online(s', a)`
    /// `(batch,)`, without gradients.
    fn target_distribution(
        &self,
        online: &OnlinePass,
        target: &NetLayers,
        batch: &DeviceBatch,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let bootstrap = self.bootstrap_probs(online, target, batch)?;
        Ok((self.support.project(batch.returns(), batch.discounts(), &bootstrap.probs)?, bootstrap.next_q))
    }

    /// The bootstrap of `batch`'s next states: the target network's pass and, with
    /// double-Q, the online one that chooses `a*`. Both networks' layers must be detached.
    fn bootstrap_probs(
        &self,
        online: &OnlinePass,
        target: &NetLayers,
        batch: &DeviceBatch,
    ) -> candle_core::Result<Bootstrap> {
        let next = batch.next_obs();
        let online_forward = || self.config.double_q.then(|| online(next)).transpose();
        let (target_logp, online_logp) = side_by_side(&self.device, || target.forward(next), online_forward);
        self.bootstrap_from(target_logp?, online_logp?)
    }

    /// [`Bootstrap`] from the target network's log-probabilities on the next states and,
    /// with double-Q, the online network's (`None` without).
    fn bootstrap_from(
        &self,
        target_logp: Tensor,
        online_logp: Option<Tensor>,
    ) -> candle_core::Result<Bootstrap> {
        let chooser = self.support.expected_q(online_logp.as_ref().unwrap_or(&target_logp))?; // (batch, actions)
        let next_q = chooser.max(1)?;
        let a_star = chooser.argmax(1)?; // (batch,) u32
        let probs = select_action(&target_logp, &a_star)?.exp()?;
        Ok(Bootstrap { probs, next_q, target_logp })
    }

    /// Per-sample cross-entropy `(batch,)` and the importance-weighted mean.
    fn weighted_loss(
        &self,
        log_probs: &Tensor,
        target: &Tensor,
        batch: &DeviceBatch,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let per_sample = cross_entropy(target, &select_action(log_probs, batch.actions())?)?;
        let loss = per_sample.mul(batch.weights())?.mean_all()?;
        Ok((per_sample, loss))
    }

    /// One gradient step on `batch`, steps 1 to 9 and 11 of the module docs (priorities are
    /// not touched; see [`Learner::last_losses`]).
    pub fn learn(&mut self, batch: &DeviceBatch, regularizer: &mut dyn Regularizer) -> Result<UpdateStats> {
        self.online.check_obs(batch.obs(), "DeviceBatch obs")?;
        let device = self.device.clone();
        let (mut clock, mut t) = (StageClock::start(&device, self.profile)?, UpdateTimings::default());

        // Noise, and the effective weights of this update (built once, used by every pass).
        self.online.resample_noise(&mut self.noise_rng)?;
        self.target.resample_noise(&mut self.noise_rng)?;
        let online = self.online.build()?;
        let target = self.target.build()?.detach();
        clock.lap(&mut t.noise)?;

        // Online and target passes, double-Q, projection. With taps, each head layer's input
        // and output gradient are kept for the regulariser's lookahead.
        let taps = regularizer.wants_lookahead_jvp().then(|| Taps::new(self.online.head().layers().count()));
        let (bootstrap, log_probs) =
            self.passes(&online, &target, batch, taps.as_ref(), &mut clock, &mut t)?;
        let target_m = self.support.project(batch.returns(), batch.discounts(), &bootstrap.probs)?;
        clock.lap(&mut t.projection)?;

        // Loss, and the regulariser's penalty on the expected Q of the same pass.
        let (per_sample, loss) = self.weighted_loss(&log_probs, &target_m, batch)?;
        let q = regularizer.uses_penalty().then(|| self.support.expected_q(&log_probs)).transpose()?; // (batch, actions)
        let penalty = match &q {
            Some(q) => regularizer.penalty(q)?,
            None => None,
        };
        let total = match &penalty {
            Some(p) => (&loss + p)?,
            None => loss.clone(),
        };
        clock.lap(&mut t.loss)?;

        // Backward: one gradient per Adam variable (zero where the loss does not reach).
        let store = total.backward()?;
        let head_grads = taps.map(|taps| taps.gradients(&store)).transpose()?;
        let grads =
            self.adam.vars().iter().map(|v| store.get(v).map_or_else(|| v.zeros_like(), |g| Ok(g.clone())));
        let grads = grads.collect::<candle_core::Result<Vec<_>>>()?;
        clock.lap(&mut t.backward)?;

        // Clip: torch's clip_grad_norm_, scale by max_norm / (norm + 1e-6) when that is < 1;
        // computed on the device, and applied inside Adam's passes (`Adam::step_scaled`).
        let grad_norm = global_grad_norm(&grads)?;
        let clip = match self.config.max_grad_norm > 0.0 {
            true => {
                Some((grad_norm.affine(1.0, 1e-6)?.recip()? * self.config.max_grad_norm)?.clamp(0.0, 1.0)?)
            }
            false => None,
        };
        clock.lap(&mut t.clip)?;
        let update = self.updates + 1;
        let host =
            HostStats::read(&per_sample, &loss, &grad_norm, &bootstrap.next_q, penalty.as_ref(), update)?;
        clock.lap(&mut t.readback)?;

        // The regulariser's step, at the parameters the gradient was taken at.
        self.last_batch = Some(batch.clone());
        let gradient = UpdateGradient {
            update,
            grads: &grads,
            q: q.as_ref(),
            td_loss: host.loss,
            penalty: host.penalty,
        };
        let torso_vars = self.online.torso().named_vars().len();
        let gradients = head_grads
            .map(|head| -> candle_core::Result<UpdateGradients> {
                Ok(UpdateGradients {
                    layers: online.head().detach(),
                    torso: grads[..torso_vars].to_vec(),
                    head,
                    target_next: bootstrap.target_logp.detach(),
                    q: match &q {
                        Some(q) => q.detach(),
                        None => self.support.expected_q(&log_probs)?.detach(),
                    },
                })
            })
            .transpose()?;
        self.in_progress = Some(InProgress { target, target_m: target_m.detach(), gradients });
        let stepped = regularizer.before_step(self, &gradient);
        self.in_progress = None;
        stepped?;
        clock.lap(&mut t.regularizer)?;

        // Adam's step.
        self.adam.step_scaled(&grads, clip.as_ref())?;
        clock.lap(&mut t.adam)?;

        // Priorities, kept for `update`; the target sync when due.
        self.updates = update;
        self.last_losses.clear();
        self.last_losses.extend_from_slice(&host.losses);
        let target_synced = update % self.config.target_update_period == 0;
        if target_synced {
            self.sync_target()?;
        }
        self.timings = t;
        Ok(UpdateStats {
            update,
            loss: host.loss,
            penalty: host.penalty,
            mean_priority: host.losses.iter().sum::<f32>() / batch.len() as f32,
            grad_norm: host.grad_norm,
            clipped: self.config.max_grad_norm > 0.0
                && host.grad_norm as f64 + 1e-6 > self.config.max_grad_norm,
            next_q_mean: host.next_q_mean,
            target_synced,
        })
    }

    /// The update's network passes: the bootstrap distribution `p_target(s', a*)` `(batch,
    /// atoms)` with `max_a Q_online(s', a)` `(batch,)`, and the online log-probabilities on
    /// `s` `(batch, actions, atoms)`, recorded into `taps` if given. They are independent:
    /// on the CPU all three network passes run side by side, each filling the others'
    /// single-threaded stretches (their time is then all `forward_next`, and
    /// `forward_online` is zero).
    fn passes(
        &self,
        online: &NetLayers,
        target: &NetLayers,
        batch: &DeviceBatch,
        taps: Option<&Taps>,
        clock: &mut StageClock,
        t: &mut UpdateTimings,
    ) -> candle_core::Result<(Bootstrap, Tensor)> {
        let detached = online.detach();
        let next = |obs: &Tensor| detached.forward(obs);
        let bootstrap = || self.bootstrap_probs(&next, target, batch);
        let forward = || match taps {
            Some(taps) => {
                online.forward_with(batch.obs(), |i, layer, x| taps.record(i, x, layer.forward(x)?))
            }
            None => online.forward(batch.obs()),
        };
        if self.device.is_cpu() {
            let (b, f) = rayon::join(bootstrap, forward);
            clock.lap(&mut t.forward_next)?;
            Ok((b?, f?))
        } else {
            let b = bootstrap()?;
            clock.lap(&mut t.forward_next)?;
            let f = forward()?;
            clock.lap(&mut t.forward_online)?;
            Ok((b, f))
        }
    }
}

/// The bootstrap of a batch's next states.
struct Bootstrap {
    /// `p_target(s', a*)` `(batch, atoms)`, `a*` the double-Q choice.
    probs: Tensor,
    /// `max_a Q(s', a)` of the network that chose, `(batch,)`.
    next_q: Tensor,
    /// The target network's log-probabilities on `s'`, `(batch, actions, atoms)`.
    target_logp: Tensor,
}

/// `a` and `b`, side by side on the CPU (each fills the other's single-threaded
/// stretches), one after the other elsewhere.
fn side_by_side<A: Send, B: Send>(
    device: &Device,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if device.is_cpu() {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// What the update copies to the host, in one transfer: the per-sample losses and the
/// scalars.
struct HostStats {
    losses: Vec<f32>,
    loss: f32,
    grad_norm: f32,
    next_q_mean: f32,
    penalty: Option<f32>,
}

impl HostStats {
    /// Reads the update's statistics back; a NaN or infinite loss or gradient norm is
    /// [`Error::NonFiniteLoss`] for `update`.
    fn read(
        per_sample: &Tensor,
        loss: &Tensor,
        grad_norm: &Tensor,
        next_q: &Tensor,
        penalty: Option<&Tensor>,
        update: u64,
    ) -> Result<Self> {
        let mut scalars =
            vec![per_sample.clone(), loss.reshape(1)?, grad_norm.reshape(1)?, next_q.mean_all()?.reshape(1)?];
        if let Some(p) = penalty {
            scalars.push(p.reshape(1)?);
        }
        let mut host = Tensor::cat(&scalars, 0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let rest = host.split_off(per_sample.elem_count());
        let stats = Self {
            losses: host,
            loss: rest[0],
            grad_norm: rest[1],
            next_q_mean: rest[2],
            penalty: rest.get(3).copied(),
        };
        if !(stats.loss.is_finite()
            && stats.grad_norm.is_finite()
            && stats.penalty.is_none_or(f32::is_finite))
        {
            return Err(Error::NonFiniteLoss {
                update,
                loss: stats.loss + stats.penalty.unwrap_or(0.0),
                grad_norm: stats.grad_norm,
            });
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rl_env::{Obs, ObsSpec};

    use super::*;
    use crate::config::{NStepConfig, ReplayConfig};
    use crate::distributional::tests::brute_force_projection;
    use crate::regularizer::{MetaAccess, NoRegularizer};
    use crate::transition::Transition;

    const SPEC: ObsSpec = ObsSpec::Vector { len: 3 };
    const ACTIONS: usize = 2;
    const ATOMS: usize = 5;

    fn tiny_network() -> NetworkConfig {
        NetworkConfig {
            torso: crate::TorsoConfig::Mlp { hidden: vec![4] },
            hidden: 3,
            atoms: ATOMS,
            ..NetworkConfig::rainbow()
        }
    }

    fn tiny_learner(config: LearnerConfig, dtype: DType) -> Learner {
        let replay = PrioritizedReplay::new(
            &ReplayConfig { capacity: 64, ..ReplayConfig::default() },
            &NStepConfig { n: 2, gamma: 0.9 },
            &SPEC,
            1,
        )
        .unwrap();
        let config = LearnerConfig { batch_size: 4, v_min: -2.0, v_max: 2.0, ..config };
        Learner::new(&config, &tiny_network(), replay, ACTIONS, dtype, &Device::Cpu, 11).unwrap()
    }

    /// Two short episodes with varied rewards, so the replay has terminal and bootstrapped
    /// samples.
    fn fill(learner: &mut Learner) {
        let r = learner.replay_mut();
        for e in 0..2 {
            r.start_episode(0, Obs::Vector(&[e as f32, 0.0, 1.0])).unwrap();
            for t in 1..=5 {
                let step = Transition::primitive(
                    t % 2,
                    0.3 * t as f32 - 0.5,
                    0.9,
                    t == 5 && e == 0,
                    t == 5 && e == 1,
                );
                r.add(0, &step, Obs::Vector(&[e as f32, t as f32 * 0.2, -(t as f32) * 0.1])).unwrap();
            }
        }
    }

    fn batch(dtype: DType) -> DeviceBatch {
        let dev = Device::Cpu;
        let obs =
            Tensor::new(&[[0.5f64, -1.0, 2.0], [0.0, 0.3, -0.2], [1.5, 1.0, 0.1], [-0.4, 0.2, 0.9]], &dev)
                .unwrap();
        let next =
            Tensor::new(&[[0.1f64, 0.2, 0.3], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0], [2.0, 0.5, -1.0]], &dev)
                .unwrap();
        let f = |x: &[f64]| Tensor::from_slice(x, 4, &dev).unwrap().to_dtype(dtype).unwrap();
        DeviceBatch::from_tensors(
            obs.to_dtype(dtype).unwrap(),
            next.to_dtype(dtype).unwrap(),
            Tensor::new(&[1u32, 0, 1, 1], &dev).unwrap(),
            // Returns beyond the support (3.5) and a terminal (discount 0) included.
            f(&[0.7, -0.3, 3.5, 1.1]),
            f(&[0.81, 0.9, 0.0, 0.729]),
            f(&[1.0, 0.5, 0.25, 0.8]),
        )
        .unwrap()
    }

    /// A network's parameters and noise, read out to f64.
    struct Snapshot {
        params: HashMap<String, (Vec<usize>, Vec<f64>)>,
        noise: Vec<(Vec<f64>, Vec<f64>)>,
    }

    fn snapshot(net: &RainbowNet) -> Snapshot {
        let params = net
            .named_vars()
            .into_iter()
            .map(|(n, v)| {
                let values = v.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                (n, (v.dims().to_vec(), values))
            })
            .collect();
        Snapshot { params, noise: net.noise_factors() }
    }

    /// Hand-written f64 forward pass of the tiny network: log-probs `[action][atom]`.
    fn naive_log_probs(s: &Snapshot, x: &[f64]) -> Vec<Vec<f64>> {
        let dense = |w: &[f64], b: &[f64], x: &[f64]| -> Vec<f64> {
            (0..b.len())
                .map(|i| b[i] + (0..x.len()).map(|j| w[i * x.len() + j] * x[j]).sum::<f64>())
                .collect()
        };
        let relu = |v: Vec<f64>| v.into_iter().map(|y| y.max(0.0)).collect::<Vec<_>>();
        let p = |n: &str| &s.params[n].1;
        let h = relu(dense(p("torso.fc0.weight"), p("torso.fc0.bias"), x));
        let noisy = |layer: &str, k: usize, x: &[f64]| {
            let (f_in, f_out) = &s.noise[k];
            let (mu_w, sig_w) =
                (p(&format!("head.{layer}.weight_mu")), p(&format!("head.{layer}.weight_sigma")));
            let (mu_b, sig_b) = (p(&format!("head.{layer}.bias_mu")), p(&format!("head.{layer}.bias_sigma")));
            let n_in = f_in.len();
            let w: Vec<f64> =
                (0..mu_w.len()).map(|e| mu_w[e] + sig_w[e] * f_out[e / n_in] * f_in[e % n_in]).collect();
            let b: Vec<f64> = (0..mu_b.len()).map(|i| mu_b[i] + sig_b[i] * f_out[i]).collect();
            dense(&w, &b, x)
        };
        let v = noisy("value2", 1, &relu(noisy("value1", 0, &h)));
        let a = noisy("advantage2", 3, &relu(noisy("advantage1", 2, &h)));
        (0..ACTIONS)
            .map(|k| {
                let logits: Vec<f64> = (0..ATOMS)
                    .map(|z| {
                        v[z] + a[k * ATOMS + z]
                            - (0..ACTIONS).map(|j| a[j * ATOMS + z]).sum::<f64>() / ACTIONS as f64
                    })
                    .collect();
                let lse = logits.iter().map(|l| l.exp()).sum::<f64>().ln();
                logits.iter().map(|l| l - lse).collect()
            })
            .collect()
    }

    /// Rainbow's loss from first principles, in f64: double-Q choice by the online net's
    /// expected values, the target net's distribution at that action, the brute-force C51
    /// projection, cross-entropy, importance weights. Returns (loss, per-sample CE).
    fn naive_td_loss(online: &Snapshot, target: &Snapshot, batch: &DeviceBatch) -> (f64, Vec<f64>) {
        let rows = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
        let vec = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
        let (obs, next) = (rows(batch.obs()), rows(batch.next_obs()));
        let actions = batch.actions().to_vec1::<u32>().unwrap();
        let (returns, discounts, weights) =
            (vec(batch.returns()), vec(batch.discounts()), vec(batch.weights()));
        let z: Vec<f64> = (0..ATOMS).map(|i| -2.0 + i as f64).collect();
        let q = |logp: &[Vec<f64>]| -> Vec<f64> {
            logp.iter().map(|row| row.iter().zip(&z).map(|(l, z)| l.exp() * z).sum()).collect()
        };
        let mut per_sample = Vec::new();
        for i in 0..obs.len() {
            let q_next = q(&naive_log_probs(online, &next[i]));
            let a_star = if q_next[1] > q_next[0] { 1 } else { 0 };
            let p_next: Vec<f64> =
                naive_log_probs(target, &next[i])[a_star].iter().map(|l| l.exp()).collect();
            let m = brute_force_projection(-2.0, 2.0, ATOMS, returns[i], discounts[i], &p_next);
            let logp = &naive_log_probs(online, &obs[i])[actions[i] as usize];
            per_sample.push(-m.iter().zip(logp).map(|(m, l)| m * l).sum::<f64>());
        }
        let loss = per_sample.iter().zip(&weights).map(|(l, w)| l * w).sum::<f64>() / obs.len() as f64;
        (loss, per_sample)
    }

    #[test]
    fn td_loss_equals_a_hand_written_f64_reference() {
        let mut learner = tiny_learner(LearnerConfig::rainbow(), DType::F64);
        let batch = batch(DType::F64);
        // Through MetaAccess: the current parameters and noise.
        let (reference, _) = naive_td_loss(&snapshot(learner.online()), &snapshot(learner.target()), &batch);
        let loss = learner.td_loss(&batch).unwrap().to_scalar::<f64>().unwrap();
        assert!((loss - reference).abs() < 1e-12 * reference.abs().max(1.0), "{loss} vs {reference}");

        // Through `learn`: the loss it reports is at the parameters before its step and the
        // noise it drew (still in place afterwards).
        let before_online = snapshot(learner.online());
        let before_target = snapshot(learner.target());
        let stats = learner.learn(&batch, &mut ()).unwrap();
        let with_noise = |s: Snapshot, net: &RainbowNet| Snapshot { noise: net.noise_factors(), ..s };
        let online = with_noise(before_online, learner.online());
        let target = with_noise(before_target, learner.target());
        let (reference, per_sample) = naive_td_loss(&online, &target, &batch);
        assert!(
            (stats.loss as f64 - reference).abs() < 1e-6 * reference.abs().max(1.0),
            "{} vs {reference}",
            stats.loss
        );
        for (a, b) in learner.last_losses().iter().zip(&per_sample) {
            assert!((*a as f64 - b).abs() < 1e-6 * b.abs().max(1.0));
        }
        assert!(stats.loss > 0.0 && stats.grad_norm > 0.0 && stats.update == 1);
    }

    #[test]
    fn f32_learner_matches_the_f64_reference_closely() {
        let learner = tiny_learner(LearnerConfig::rainbow(), DType::F32);
        let batch = batch(DType::F32);
        let (reference, _) = naive_td_loss(&snapshot(learner.online()), &snapshot(learner.target()), &batch);
        let loss = learner.td_loss(&batch).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!((loss - reference).abs() < 1e-5 * reference.abs().max(1.0), "{loss} vs {reference}");
    }

    #[test]
    fn grad_norm_is_the_global_norm_and_clipping_bounds_the_step_input() {
        let mut learner =
            tiny_learner(LearnerConfig { max_grad_norm: 1e-3, ..LearnerConfig::rainbow() }, DType::F64);
        let batch = batch(DType::F64);
        let stats = learner.learn(&batch, &mut ()).unwrap();
        // Recompute at the same noise, with the parameters before the step restored from
        // Adam's first moment: m_1 = (1 - beta1) * clipped g, so ||m_1|| / 0.1 is the norm of
        // the gradient Adam received.
        let (m, _) = learner.adam().moments();
        let m_norm: f64 = m
            .iter()
            .map(|t| t.sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap())
            .sum::<f64>()
            .sqrt();
        assert!(stats.clipped && stats.grad_norm > 1e-3);
        // torch's clip_grad_norm_: g * max_norm / (||g|| + 1e-6).
        let g = stats.grad_norm as f64;
        let expected = 1e-3 * g / (g + 1e-6);
        assert!(
            (m_norm / 0.1 - expected).abs() < 1e-6 * expected,
            "clipped norm {} vs {expected}",
            m_norm / 0.1
        );
    }

    #[test]
    fn non_finite_loss_is_an_error_and_leaves_everything_untouched() {
        let mut learner = tiny_learner(LearnerConfig::rainbow(), DType::F32);
        let good = batch(DType::F32);
        // An observation that overflowed upstream: the forward pass turns it into a NaN loss.
        let nan = Tensor::new(&[[f32::NAN, 0.0, 0.0]], &Device::Cpu).unwrap();
        let obs = Tensor::cat(&[&nan, &good.obs().narrow(0, 1, 3).unwrap()], 0).unwrap();
        let bad = DeviceBatch::from_tensors(
            obs,
            good.next_obs().clone(),
            good.actions().clone(),
            good.returns().clone(),
            good.discounts().clone(),
            good.weights().clone(),
        )
        .unwrap();
        let before = snapshot(learner.online());
        let err = learner.learn(&bad, &mut ()).unwrap_err();
        assert!(matches!(err, Error::NonFiniteLoss { update: 1, .. }), "{err}");
        assert_eq!(snapshot(learner.online()).params, before.params);
        assert_eq!((learner.updates(), learner.adam().step_count()), (0, 0));
    }

    #[test]
    fn target_syncs_every_period() {
        let mut learner =
            tiny_learner(LearnerConfig { target_update_period: 2, ..LearnerConfig::rainbow() }, DType::F32);
        let batch = batch(DType::F32);
        let same = |l: &Learner| snapshot(l.online()).params == snapshot(l.target()).params;
        assert!(same(&learner), "the target starts as a copy");
        assert!(!learner.learn(&batch, &mut ()).unwrap().target_synced);
        assert!(!same(&learner));
        assert!(learner.learn(&batch, &mut ()).unwrap().target_synced);
        assert!(same(&learner));
    }

    /// Records what the hook saw, adds `eta * mean(Q^2)`, and exercises every MetaAccess
    /// method in `before_step`.
    struct Probe {
        eta: f64,
        q_shape: Vec<usize>,
        checked: u64,
    }

    impl Regularizer for Probe {
        fn penalty(&mut self, q: &Tensor) -> candle_core::Result<Option<Tensor>> {
            self.q_shape = q.dims().to_vec();
            Ok(Some((q.sqr()?.mean_all()? * self.eta)?))
        }

        fn before_step(
            &mut self,
            access: &mut dyn MetaAccess,
            gradient: &UpdateGradient,
        ) -> candle_core::Result<()> {
            let vars = access.vars();
            let b = access.last_batch().clone();
            let exact = |a: &Tensor, b: &Tensor| {
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                    == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            };
            // The update's gradient is that of L_TD + penalty at the current parameters
            // and noise: recomputing it through `access` gives the same numbers.
            let (loss_b, q_b) = access.td_loss_and_q_values(&b)?;
            assert!(exact(&q_b, gradient.q.expect("the probe has a penalty")));
            assert_eq!(loss_b.to_vec0::<f32>()?, gradient.td_loss);
            let again = (&loss_b + (q_b.sqr()?.mean_all()? * self.eta)?)?.backward()?;
            assert_eq!(gradient.grads.len(), vars.len());
            for (v, g) in vars.iter().zip(gradient.grads) {
                let (want, got) = (again.get(v).unwrap().flatten_all()?, g.flatten_all()?);
                let err = (&want - &got)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let scale = want.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(err <= 1e-6 * scale.max(1.0), "gradient differs by {err} (scale {scale})");
            }
            let fresh = access.sample_batch()?;
            assert_eq!((b.len(), fresh.len()), (4, 4));
            let loss = access.td_loss(&fresh)?;
            assert_eq!(loss.rank(), 0);
            // Differentiable w.r.t. every online variable.
            let grads = loss.backward()?;
            assert!(vars.iter().all(|v| grads.get(v).is_some()));
            // Q at theta + eps g and theta - eps g differ, and restoring theta restores Q.
            let q0 = access.q_values(&b)?;
            assert_eq!(q0.dims(), &[4, ACTIONS]);
            // One forward pass for both gives the same numbers as two.
            assert!(exact(&loss_b, &access.td_loss(&b)?) && exact(&q_b, &q0));
            let saved: Vec<Tensor> =
                vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?;
            for (v, s) in vars.iter().zip(&saved) {
                v.set(&(s + (grads.get(v).unwrap() * 1e-2)?)?)?;
            }
            let q1 = access.q_values(&b)?;
            for (v, s) in vars.iter().zip(&saved) {
                v.set(s)?;
            }
            let q2 = access.q_values(&b)?;
            let diff = |a: &Tensor, b: &Tensor| {
                (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
            };
            assert!(diff(&q0, &q1) > 0.0 && diff(&q0, &q2) == 0.0);
            // Adam has statistics only after its first step, i.e. from the second update on.
            match access.adam_preconditioner() {
                Some(pre) => assert!(gradient.update > 1 && pre.len() == vars.len()),
                None => assert_eq!(gradient.update, 1),
            }
            self.checked = gradient.update;
            Ok(())
        }
    }

    #[test]
    fn regularizer_gets_q_of_the_batch_and_a_working_meta_access() {
        let mut plain = tiny_learner(LearnerConfig::rainbow(), DType::F32);
        let mut penalised = tiny_learner(LearnerConfig::rainbow(), DType::F32);
        fill(&mut plain);
        fill(&mut penalised);
        let mut probe = Probe { eta: 10.0, q_shape: vec![], checked: 0 };
        let a = plain.update(0, &mut NoRegularizer).unwrap();
        let b = penalised.update(0, &mut probe).unwrap();
        assert_eq!((probe.q_shape.as_slice(), probe.checked), (&[4, ACTIONS][..], 1));
        assert_eq!(a.loss, b.loss, "same seed, same batch, same TD loss");
        assert!(a.penalty.is_none() && b.penalty.unwrap() > 0.0);
        assert_ne!(
            snapshot(plain.online()).params,
            snapshot(penalised.online()).params,
            "the penalty moved the step"
        );
        penalised.update(1, &mut probe).unwrap();
        assert_eq!(probe.checked, 2);
    }

    #[test]
    fn update_sends_the_losses_back_as_priorities() {
        let mut learner = tiny_learner(LearnerConfig::rainbow(), DType::F32);
        fill(&mut learner);
        learner.update(0, &mut ()).unwrap();
        let indices = learner.batch.indices().to_vec();
        let eps = learner.replay().config().eps;
        let total: f64 =
            learner.replay().sampleable().map(|i| learner.replay().probability(i).unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // With alpha = 0.5, P(i) is proportional to sqrt(CE_i + eps) for the updated slots.
        let p = |k: usize| learner.replay().probability(indices[k]).unwrap();
        let ce = learner.last_losses();
        let (i, j) = (0, (1..4).find(|&j| indices[j] != indices[0]).unwrap());
        let expected = ((ce[i] as f64 + eps) / (ce[j] as f64 + eps)).sqrt();
        assert!((p(i) / p(j) - expected).abs() < 1e-4 * expected, "{} vs {expected}", p(i) / p(j));
    }

    #[test]
    fn validation_names_the_field() {
        let d = LearnerConfig::rainbow;
        let field = |c: LearnerConfig| match c.validate().unwrap_err() {
            Error::InvalidConfig { field, fix, .. } => {
                assert!(!fix.is_empty());
                field
            }
            e => panic!("{e}"),
        };
        assert_eq!(field(LearnerConfig { batch_size: 0, ..d() }), "batch_size");
        assert_eq!(field(LearnerConfig { lr: 0.0, ..d() }), "lr");
        assert_eq!(field(LearnerConfig { lr: -1e-4, ..d() }), "lr");
        assert_eq!(field(LearnerConfig { adam_eps: 0.0, ..d() }), "adam_eps");
        assert_eq!(field(LearnerConfig { max_grad_norm: f64::NAN, ..d() }), "max_grad_norm");
        assert_eq!(field(LearnerConfig { v_min: 10.0, v_max: 10.0, ..d() }), "v_max");
        assert_eq!(field(LearnerConfig { v_min: f64::NEG_INFINITY, ..d() }), "v_min");
        assert_eq!(field(LearnerConfig { update_period: 0, ..d() }), "update_period");
        assert_eq!(field(LearnerConfig { target_update_period: 0, ..d() }), "target_update_period");
        let err = LearnerConfig { v_min: 5.0, v_max: -5.0, ..d() }.validate().unwrap_err().to_string();
        assert_eq!(err, "invalid LearnerConfig.v_max = -5.0: use a finite v_max greater than v_min, e.g. v_min = -10, v_max = 10");
        LearnerConfig::der().validate().unwrap();
        assert_eq!((LearnerConfig::der().lr, LearnerConfig::der().update_period), (1e-4, 1));
        let toml: LearnerConfig = toml::from_str("lr = 1e-3").unwrap();
        assert_eq!(toml, LearnerConfig { lr: 1e-3, ..d() });
        assert!(toml::from_str::<LearnerConfig>("learning_rate = 1e-3").is_err());
    }
}
