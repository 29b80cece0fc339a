//! `Agent`: the Rainbow agent as a runner sees it: act on a batch of observations, observe
//! transitions, update when due, switch to evaluation; and its [`AgentConfig`].
//!
//! Per env copy `e` (any number of copies, stepped together or not):
//!
//! ```text
//! start_episode(e, first_obs)
//! loop: actions = act(obs of all copies)          one forward pass, (copies, ...) -> (copies,)
//!       observe(e, Transition { action, reward, discount, terminated, truncated }, next_obs, frames)
//!       update()                                  the updates that are due, if any
//!       after a terminated or truncated transition: start_episode(e, reset_obs)
//! ```
//!
//! Evaluation: `set_eval(true)` and the same loop (nothing is stored), or `act_eval(obs, rng)`,
//! which acts as evaluation mode does on a batch of any size and leaves the agent in
//! training exactly as it was (`act_eval_noisy`: the same with training's noisy policy).
//!
//! Counters: agent steps (one per observed transition, primitive or macro, summed over
//! copies), frames (what the env reports each transition cost: budgets are counted in
//! frames, MASP design section 2), episodes and updates. The schedule is Dopamine's: no
//! update before `learning_starts` agent steps, then one every `update_period` agent steps.
//!
//! ```
//! use rainbow::{Agent, AgentConfig, Transition};
//! use rl_env::{Corridor, CorridorConfig, Env, Obs};
//! let mut env = Corridor::new(CorridorConfig { length: 4, ..Default::default() });
//! let mut agent = Agent::new(AgentConfig::toy(), &env.spec().observation, 4, 1)?;
//! let vector = |obs: Obs<'_>| match obs { Obs::Vector(v) => v.to_vec(), Obs::Pixels(_) => unreachable!() };
//! let mut obs = vector(env.reset(Some(0)));
//! agent.start_episode(0, Obs::Vector(&obs))?;
//! for _ in 0..20 {
//!     let action = agent.act(Obs::Vector(&obs))?[0];
//!     let step = env.step(action);
//!     let t = Transition::primitive(action, step.reward, 0.99, step.terminated, step.truncated);
//!     agent.observe(0, &t, step.obs, step.info.frames)?;
//!     obs = vector(step.obs);
//!     if t.done() {
//!         obs = vector(env.reset(None));
//!         agent.start_episode(0, Obs::Vector(&obs))?;
//!     }
//!     agent.update()?;
//! }
//! assert_eq!(agent.counters().agent_steps, 20);
//! # Ok::<(), rainbow::Error>(())
//! ```

use candle_core::{DType, Tensor};
use rand::Rng;
use rl_env::{Env, Obs, ObsSpec, VecEnv};
use serde::{Deserialize, Serialize};

use crate::config::{NStepConfig, ReplayConfig};
use crate::device::parse_device;
use crate::device_batch::obs_tensor;
use crate::error::{Error, Result};
use crate::exploration::{ExplorationConfig, ExplorationKind, Explorer};
use crate::learner::{rng_stream, Learner, LearnerConfig, UpdateStats};
use crate::network::NetworkConfig;
use crate::regularizer::{NoRegularizer, Regularizer};
use crate::replay::prioritized::PrioritizedReplay;
use crate::transition::Transition;

/// RNG stream of the explorer under the agent's seed (the learner uses 0..=2).
const STREAM_EXPLORE: u64 = 3;

/// Everything that defines an agent. `rainbow()` (= `Default`) is full Rainbow on Atari,
/// `der()` data-efficient Rainbow; both as in shared/reference/README.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// `"cpu"` or `"cuda:N"`. Default `"cpu"`.
    pub device: String,
    /// The seed of every random draw of the agent (initialisation, noise, sampling,
    /// exploration). Default 0.
    pub seed: u64,
    pub network: NetworkConfig,
    pub learner: LearnerConfig,
    pub replay: ReplayConfig,
    pub n_step: NStepConfig,
    pub exploration: ExplorationConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self::rainbow()
    }
}

impl AgentConfig {
    /// Full Rainbow (Hessel et al. 2018, Dopamine's schedule).
    pub fn rainbow() -> Self {
        Self {
            device: "cpu".into(),
            seed: 0,
            network: NetworkConfig::rainbow(),
            learner: LearnerConfig::rainbow(),
            replay: ReplayConfig::rainbow(),
            n_step: NStepConfig::rainbow(),
            exploration: ExplorationConfig::default(),
        }
    }

    /// Data-efficient Rainbow (van Hasselt et al. 2019) for Atari 100k.
    pub fn der() -> Self {
        Self {
            network: NetworkConfig::der(),
            learner: LearnerConfig::der(),
            replay: ReplayConfig::der(),
            n_step: NStepConfig::der(),
            ..Self::rainbow()
        }
    }

    /// A small Rainbow for toy vector environments (tests, examples): an MLP of 64 units,
    /// DER's schedule scaled down (100 steps of warm-up, an update per step, target sync
    /// every 100 updates, lr 1e-3) and a 10k replay with `beta` reaching 1 after 10k steps.
    pub fn toy() -> Self {
        Self {
            network: NetworkConfig { sigma0: 0.5, ..NetworkConfig::mlp(64) },
            learner: LearnerConfig {
                lr: 1e-3,
                learning_starts: 100,
                update_period: 1,
                target_update_period: 100,
                ..LearnerConfig::der()
            },
            replay: ReplayConfig { capacity: 10_000, beta_steps: 10_000, ..ReplayConfig::rainbow() },
            n_step: NStepConfig { n: 3, gamma: 0.99 },
            ..Self::rainbow()
        }
    }

    /// Checks every part; the error names the first bad field and the fix.
    pub fn validate(&self) -> Result<()> {
        crate::device::DeviceSpec::parse(&self.device)?;
        self.network.validate()?;
        self.learner.validate()?;
        self.replay.validate()?;
        self.n_step.validate()?;
        self.exploration.validate()?;
        if self.exploration.kind == ExplorationKind::Noisy && !self.network.noisy {
            return Err(Error::config(
                "ExplorationConfig",
                "kind",
                self.exploration.kind,
                "noisy exploration needs NetworkConfig.noisy = true; with plain layers use \
                 epsilon_greedy or ez_greedy",
            ));
        }
        Ok(())
    }
}

/// What the agent has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Transitions observed (decisions, primitive or macro), all env copies together.
    pub agent_steps: u64,
    /// Environment frames those transitions took.
    pub frames: u64,
    /// Episodes ended (terminated or truncated).
    pub episodes: u64,
    /// Updates the schedule has run (including any skipped on an empty replay).
    pub updates: u64,
}

/// The Rainbow agent; see the module docs.
pub struct Agent {
    config: AgentConfig,
    obs_spec: ObsSpec,
    num_actions: usize,
    num_envs: usize,
    pub(crate) learner: Learner,
    pub(crate) explorer: Explorer,
    regularizer: Box<dyn Regularizer>,
    pub(crate) counters: Counters,
    eval: bool,
    actions: Vec<usize>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("config", &self.config)
            .field("obs_spec", &self.obs_spec)
            .field("num_actions", &self.num_actions)
            .field("num_envs", &self.num_envs)
            .field("counters", &self.counters)
            .field("eval", &self.eval)
            .finish_non_exhaustive()
    }
}

/// Row `i` of a batch of observations of `len` elements each.
fn obs_row(obs: Obs<'_>, i: usize, len: usize) -> Obs<'_> {
    match obs {
        Obs::Pixels(p) => Obs::Pixels(&p[i * len..(i + 1) * len]),
        Obs::Vector(v) => Obs::Vector(&v[i * len..(i + 1) * len]),
    }
}

impl Agent {
    /// An agent for observations of `obs`, `num_actions` actions (primitives plus macros)
    /// and `num_envs` env copies.
    pub fn new(config: AgentConfig, obs: &ObsSpec, num_actions: usize, num_envs: usize) -> Result<Self> {
        config.validate()?;
        let device = parse_device(&config.device)?;
        let replay = PrioritizedReplay::new(&config.replay, &config.n_step, obs, num_envs)?;
        let learner = Learner::new(
            &config.learner,
            &config.network,
            replay,
            num_actions,
            DType::F32,
            &device,
            config.seed,
        )?;
        let explorer = Explorer::new(
            &config.exploration,
            num_actions,
            num_envs,
            rng_stream(config.seed, STREAM_EXPLORE),
        )?;
        Ok(Self {
            obs_spec: obs.clone(),
            num_actions,
            num_envs,
            learner,
            explorer,
            regularizer: Box::new(NoRegularizer),
            counters: Counters::default(),
            eval: false,
            actions: vec![0; num_envs],
            config,
        })
    }

    /// Replaces the regulariser (default [`NoRegularizer`]).
    pub fn set_regularizer(&mut self, regularizer: Box<dyn Regularizer>) {
        self.regularizer = regularizer;
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    pub fn obs_spec(&self) -> &ObsSpec {
        &self.obs_spec
    }

    pub fn num_actions(&self) -> usize {
        self.num_actions
    }

    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    pub fn learner_mut(&mut self) -> &mut Learner {
        &mut self.learner
    }

    pub fn explorer(&self) -> &Explorer {
        &self.explorer
    }

    /// Evaluation mode: noise off, `eval_epsilon`-greedy, and `observe` stores nothing.
    pub fn set_eval(&mut self, eval: bool) {
        self.eval = eval;
        self.learner.online_mut().set_noise_enabled(!eval);
    }

    pub fn is_eval(&self) -> bool {
        self.eval
    }

    /// One action per observation of `obs`, a batch `(n, ...)` of observations in env-copy
    /// order (`VecEnv::obs()`); `n` is the number of env copies in training, any number in
    /// evaluation.
    pub fn act(&mut self, obs: Obs<'_>) -> Result<&[usize]> {
        let tensor = self.obs_batch(obs, (!self.eval).then_some(self.num_envs), "Agent::act")?;
        if !self.eval && self.config.network.noisy {
            // A fresh noise sample per decision, as Dopamine's Rainbow acts.
            self.learner.resample_online_noise()?;
        }
        let greedy = self.learner.greedy_actions(&tensor)?;
        self.actions.resize(greedy.len(), 0);
        self.explorer.choose(&greedy, self.counters.agent_steps, self.eval, &mut self.actions);
        Ok(&self.actions)
    }

    /// Evaluation actions for a batch `(n, ...)` of observations, any `n` (an evaluation's
    /// own env copies): the online network with its noise off, `eval_epsilon`-greedy with
    /// the draws from `rng`. Nothing of training changes (the mode, the noise sample, the
    /// RNG streams, the counters, the replay), so an evaluation can run mid-training.
    pub fn act_eval(&mut self, obs: Obs<'_>, rng: &mut impl Rng) -> Result<Vec<usize>> {
        let tensor = self.obs_batch(obs, None, "Agent::act_eval")?;
        self.learner.online_mut().set_noise_enabled(false);
        let greedy = self.learner.greedy_actions(&tensor);
        self.learner.online_mut().set_noise_enabled(!self.eval);
        Ok(self.explorer.choose_eval(&greedy?, rng))
    }

    /// Evaluation actions by the policy training acts with: a fresh noise sample per call,
    /// greedy in it, and training's epsilon at the agent's current step (noisy nets keep
    /// `epsilon_end`), every draw from `rng` (training's noise and exploration streams are
    /// not touched). It measures the training policy's own score on a checkpoint, for
    /// comparing the evaluation (noise off) with the training returns. Like
    /// [`Agent::act_eval`], it leaves training as it was: the online network's noise sample
    /// and its on/off switch are put back after the pass, whatever its outcome. An error for
    /// a network without noisy layers (its evaluation is the greedy one).
    pub fn act_eval_noisy(&mut self, obs: Obs<'_>, rng: &mut impl Rng) -> Result<Vec<usize>> {
        if !self.config.network.noisy {
            return Err(Error::NoNoise);
        }
        let tensor = self.obs_batch(obs, None, "Agent::act_eval_noisy")?;
        let online = self.learner.online_mut();
        let kept = online.noise_factors();
        online.set_noise_enabled(true);
        let greedy = online.resample_noise(rng).and_then(|()| self.learner.greedy_actions(&tensor));
        let online = self.learner.online_mut();
        let restored = online.set_noise_factors(&kept);
        online.set_noise_enabled(!self.eval);
        restored?;
        let epsilon = self.config.exploration.train_epsilon(self.counters.agent_steps);
        Ok(self.explorer.choose_with(&greedy?, epsilon, rng))
    }

    /// `obs` as a `(n, ...)` tensor on the learner's device, checked against the agent's
    /// observations: `n` must be `copies` if given, else any number from 1.
    fn obs_batch(&self, obs: Obs<'_>, copies: Option<usize>, what: &str) -> Result<Tensor> {
        let len = self.obs_spec.len();
        let n = obs.len() / len.max(1);
        let kind_ok = matches!(
            (&self.obs_spec, obs),
            (ObsSpec::Pixels { .. }, Obs::Pixels(_)) | (ObsSpec::Vector { .. }, Obs::Vector(_))
        );
        if !kind_ok || obs.len() != n * len || n == 0 || copies.is_some_and(|c| n != c) {
            return Err(Error::ObsMismatch {
                what: what.into(),
                expected: format!(
                    "{} observations of {:?}",
                    copies.map_or("1 or more".to_string(), |c| c.to_string()),
                    self.obs_spec
                ),
                found: format!("{} elements", obs.len()),
            });
        }
        let shape: Vec<usize> = std::iter::once(n)
            .chain(match self.obs_spec {
                ObsSpec::Pixels { channels, height, width } => vec![channels, height, width],
                ObsSpec::Vector { len } => vec![len],
            })
            .collect();
        obs_tensor(obs, &shape, self.learner.dtype(), self.learner.device())
    }

    /// Starts an episode of env copy `env` with its first observation.
    pub fn start_episode(&mut self, env: usize, obs: Obs<'_>) -> Result<()> {
        if self.eval {
            return Ok(());
        }
        self.learner.replay_mut().start_episode(env, obs)
    }

    /// Ends env copy `env`'s episode in progress where it stands, as a truncation
    /// ([`crate::PrioritizedReplay::truncate_episode`]), and stops its ez-greedy repeat: for
    /// a run resumed from a checkpoint, whose envs restart. Does nothing between episodes.
    pub fn truncate_episode(&mut self, env: usize) -> Result<()> {
        self.learner.replay_mut().truncate_episode(env)?;
        self.explorer.end_episode(env);
        Ok(())
    }

    /// Records that env copy `env` took `transition` and reached `next_obs` (at a
    /// truncation, the state to bootstrap from) in `frames` frames. Ignored in evaluation.
    pub fn observe(
        &mut self,
        env: usize,
        transition: &Transition,
        next_obs: Obs<'_>,
        frames: u32,
    ) -> Result<()> {
        if self.eval {
            return Ok(());
        }
        self.learner.replay_mut().add(env, transition, next_obs)?;
        self.counters.agent_steps += 1;
        self.counters.frames += u64::from(frames);
        if transition.done() {
            self.counters.episodes += 1;
            self.explorer.end_episode(env);
        }
        Ok(())
    }

    /// Starts every copy's episode from a `VecEnv`'s reset observations.
    pub fn start_vec_env<E: Env>(&mut self, venv: &VecEnv<E>) -> Result<()> {
        let len = self.obs_spec.len();
        for env in 0..venv.len() {
            self.start_episode(env, obs_row(venv.obs(), env, len))?;
        }
        Ok(())
    }

    /// Observes one `VecEnv::step(actions)` of primitive actions (discount `n_step.gamma`,
    /// 0 when terminated), including the autoreset: a finished copy's `final_obs` ends its
    /// episode and its new first observation starts the next.
    pub fn observe_vec_env<E: Env>(&mut self, venv: &VecEnv<E>, actions: &[usize]) -> Result<()> {
        let len = self.obs_spec.len();
        let gamma = self.config.n_step.gamma;
        for (env, r) in venv.results().iter().enumerate() {
            let t = Transition::primitive(actions[env], r.reward, gamma, r.terminated, r.truncated);
            if t.done() {
                self.observe(env, &t, venv.final_obs(env), r.info.frames)?;
                self.start_episode(env, obs_row(venv.obs(), env, len))?;
            } else {
                self.observe(env, &t, obs_row(venv.obs(), env, len), r.info.frames)?;
            }
        }
        Ok(())
    }

    /// Updates that the schedule has due now: agent steps `s >= learning_starts` with
    /// `s % update_period == 0`, less those run.
    fn due(&self) -> u64 {
        let c = &self.config.learner;
        let first = c.learning_starts.max(1);
        let s = self.counters.agent_steps;
        if s < first {
            return 0;
        }
        (s / c.update_period - (first - 1) / c.update_period).saturating_sub(self.counters.updates)
    }

    /// Runs the updates that are due (none in evaluation, or before `learning_starts`);
    /// returns the last one's stats. An update due while the replay has no sampleable
    /// transition yet (n-step returns still open) is skipped.
    pub fn update(&mut self) -> Result<Option<UpdateStats>> {
        if self.eval {
            return Ok(None);
        }
        let mut last = None;
        for _ in 0..self.due() {
            self.counters.updates += 1;
            if self.learner.replay().is_empty() {
                continue;
            }
            last = Some(self.learner.update(self.counters.agent_steps, &mut *self.regularizer)?);
        }
        Ok(last)
    }

    /// One learner update now, with the regulariser, outside the schedule and uncounted:
    /// what a benchmark times to compare the update alone with the loop around it.
    pub fn update_now(&mut self) -> Result<UpdateStats> {
        self.learner.update(self.counters.agent_steps, &mut *self.regularizer)
    }
}

#[cfg(test)]
mod tests {
    use rl_env::{Corridor, CorridorConfig};

    use super::*;

    #[test]
    fn schedule_waits_for_learning_starts_then_runs_every_period() {
        let mut config = AgentConfig::toy();
        config.learner.learning_starts = 10;
        config.learner.update_period = 4;
        config.learner.batch_size = 4;
        let mut env = Corridor::new(CorridorConfig { length: 6, max_steps: 8, ..Default::default() });
        let mut agent = Agent::new(config, &env.spec().observation, 4, 1).unwrap();
        agent.start_episode(0, env.reset(Some(0))).unwrap();
        let mut ran = Vec::new();
        for step in 1..=30u64 {
            let step_obs = env.step(Corridor::NOOP);
            let t = Transition::primitive(
                Corridor::NOOP,
                step_obs.reward,
                0.99,
                step_obs.terminated,
                step_obs.truncated,
            );
            let done = t.done();
            agent.observe(0, &t, step_obs.obs, 1).unwrap();
            if done {
                agent.start_episode(0, env.reset(None)).unwrap();
            }
            if agent.update().unwrap().is_some() {
                ran.push(step);
            }
        }
        // Steps >= 10 divisible by 4.
        assert_eq!(ran, [12, 16, 20, 24, 28]);
        assert_eq!(agent.counters(), Counters { agent_steps: 30, frames: 30, episodes: 3, updates: 5 });
    }

    #[test]
    fn act_checks_the_batch_and_eval_allows_any_count() {
        let spec = ObsSpec::Vector { len: 3 };
        let mut agent = Agent::new(AgentConfig::toy(), &spec, 2, 2).unwrap();
        assert_eq!(agent.act(Obs::Vector(&[0.0; 6])).unwrap().len(), 2);
        assert!(matches!(agent.act(Obs::Vector(&[0.0; 3])), Err(Error::ObsMismatch { .. })));
        assert!(matches!(agent.act(Obs::Pixels(&[0; 6])), Err(Error::ObsMismatch { .. })));
        agent.set_eval(true);
        assert_eq!(agent.act(Obs::Vector(&[0.0; 9])).unwrap().len(), 3);
        // Evaluation is deterministic: noise off, and eval epsilon 0 here.
        agent.config.exploration.eval_epsilon = 0.0;
        agent.explorer =
            Explorer::new(&agent.config.exploration, 2, 2, rng_stream(0, STREAM_EXPLORE)).unwrap();
        let a = agent.act(Obs::Vector(&[0.1, 0.2, 0.3])).unwrap().to_vec();
        for _ in 0..5 {
            assert_eq!(agent.act(Obs::Vector(&[0.1, 0.2, 0.3])).unwrap(), a.as_slice());
        }
    }

    #[test]
    fn act_eval_takes_any_batch_and_leaves_training_as_it_was() {
        use rand::SeedableRng;
        let mut config = AgentConfig::toy();
        config.exploration.eval_epsilon = 0.0;
        let mut agent = Agent::new(config, &ObsSpec::Vector { len: 3 }, 2, 1).unwrap();
        let one = [0.1, 0.2, 0.3];
        agent.act(Obs::Vector(&one)).unwrap(); // a noise sample to keep
        let q = |agent: &Agent| {
            let t = Tensor::from_slice(&one, (1, 3), agent.learner().device()).unwrap();
            agent.learner().q_values_of(&t).unwrap().to_vec2::<f32>().unwrap()
        };
        let (q_before, explore_rng) = (q(&agent), agent.explorer().rng().clone());

        let batch: Vec<f32> = (0..12).map(|i| i as f32 / 12.0).collect();
        let eval_rng = || rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let actions = agent.act_eval(Obs::Vector(&batch), &mut eval_rng()).unwrap();
        assert_eq!(actions.len(), 4, "one action per observation, whatever num_envs is");
        assert_eq!(actions, agent.act_eval(Obs::Vector(&batch), &mut eval_rng()).unwrap());
        assert!(!agent.is_eval());
        assert_eq!(q(&agent), q_before, "the noise is on again, with the same sample");
        assert_eq!(agent.explorer().rng(), &explore_rng, "training's exploration draws are untouched");
        // At eval epsilon 0 these are evaluation mode's greedy actions.
        agent.set_eval(true);
        assert_eq!(agent.act(Obs::Vector(&batch)).unwrap(), actions.as_slice());
        assert!(matches!(
            agent.act_eval(Obs::Vector(&[0.0; 4]), &mut eval_rng()),
            Err(Error::ObsMismatch { .. })
        ));
    }

    /// The noisy policy: a fresh noise sample per call from the caller's generator (so the
    /// same generator state gives the same actions, another one other actions), training's
    /// noise sample and streams untouched; refused without noisy layers.
    #[test]
    fn act_eval_noisy_draws_its_own_noise_and_leaves_training_as_it_was() {
        use rand::SeedableRng;
        let mut agent = Agent::new(AgentConfig::toy(), &ObsSpec::Vector { len: 3 }, 8, 1).unwrap();
        agent.act(Obs::Vector(&[0.1, 0.2, 0.3])).unwrap(); // a noise sample to keep
        let noise = agent.learner().online().noise_factors();
        let explore_rng = agent.explorer().rng().clone();
        let batch: Vec<f32> = (0..96).map(|i| (i as f32 / 13.0).sin()).collect();
        let rng = |seed| rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let actions = agent.act_eval_noisy(Obs::Vector(&batch), &mut rng(7)).unwrap();
        assert_eq!(actions.len(), 32);
        assert_eq!(actions, agent.act_eval_noisy(Obs::Vector(&batch), &mut rng(7)).unwrap());
        let others: Vec<Vec<usize>> =
            (8..12).map(|seed| agent.act_eval_noisy(Obs::Vector(&batch), &mut rng(seed)).unwrap()).collect();
        assert!(others.iter().any(|a| *a != actions), "a fresh noise sample per generator state");
        assert_eq!(agent.learner().online().noise_factors(), noise, "training's noise sample is back");
        assert_eq!(agent.explorer().rng(), &explore_rng);
        let noise_on = |agent: &Agent| agent.learner().online().head().layers().any(|l| l.noise_enabled());
        assert!(noise_on(&agent), "training's noise is on again");
        agent.set_eval(true);
        agent.act_eval_noisy(Obs::Vector(&batch), &mut rng(7)).unwrap();
        assert!(!noise_on(&agent), "evaluation's is off again");

        let mut config = AgentConfig::toy();
        config.network.noisy = false;
        config.exploration.kind = ExplorationKind::EpsilonGreedy;
        let mut plain = Agent::new(config, &ObsSpec::Vector { len: 3 }, 8, 1).unwrap();
        let err = plain.act_eval_noisy(Obs::Vector(&[0.0; 3]), &mut rng(0)).unwrap_err().to_string();
        assert!(err.contains("noisy layers"), "{err}");
    }

    #[test]
    fn config_validation_and_presets() {
        AgentConfig::rainbow().validate().unwrap();
        AgentConfig::der().validate().unwrap();
        AgentConfig::toy().validate().unwrap();
        let mut c = AgentConfig::rainbow();
        c.network.noisy = false;
        let err = c.validate().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "kind", .. }), "{err}");
        c.exploration.kind = ExplorationKind::EpsilonGreedy;
        c.validate().unwrap();
        c.device = "tpu".into();
        assert!(matches!(c.validate(), Err(Error::InvalidDevice { .. })));
        let parsed: AgentConfig =
            toml::from_str("seed = 3\n[learner]\nlr = 1e-3\n[network]\nhidden = 128").unwrap();
        assert_eq!((parsed.seed, parsed.learner.lr, parsed.network.hidden), (3, 1e-3, 128));
        assert!(toml::from_str::<AgentConfig>("[learner]\nlearningrate = 1").is_err());
        let json = serde_json::to_string(&AgentConfig::der()).unwrap();
        assert_eq!(serde_json::from_str::<AgentConfig>(&json).unwrap(), AgentConfig::der());
    }
}
