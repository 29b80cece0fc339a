//! The executor: [`MacroEnv`] wraps any [`Env`] and steps one pool action as a semi-MDP
//! transition, running a macro's primitives open-loop (MASP section 2).
//!
//! What a transition reports, and when a macro stops early, is documented on [`MacroEnv`].
//!
//! ```
//! use macro_actions::{ActionPool, ExecutorConfig, Macro, MacroEnv};
//! use rl_env::{Corridor, CorridorConfig, Env};
//! let env = Corridor::new(CorridorConfig { length: 5, ..Default::default() });
//! let pool = ActionPool::for_env(env.spec(), vec![Macro::new(vec![Corridor::RIGHT; 3])])?;
//! let mut menv = MacroEnv::new(env, pool, ExecutorConfig { gamma: 0.5, ..Default::default() })?;
//! menv.reset(Some(0));
//! let first = menv.step_macro(4).outcome; // RIGHT+RIGHT+RIGHT: cells 1, 2, 3
//! assert_eq!((first.steps, first.discount, first.reward, first.terminated), (3, 0.125, 0.0, false));
//! let second = menv.step_macro(4).outcome; // reaches the goal, cell 4, after one step
//! assert_eq!((second.steps, second.info.frames, second.discount, second.reward), (1, 1, 0.0, 1.0));
//! assert!(second.terminated);
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::sync::Arc;

use rl_env::{check_action, Env, EnvSpec, Obs, ObsSpec, RgbImage, Step, StepInfo};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pool::ActionPool;

/// The knobs of the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// The per-primitive discount `gamma`, in `[0, 1]`. Default 0.99 (Rainbow's).
    pub gamma: f64,
    /// End a macro at a life loss and report the transition as terminal. Default false,
    /// as Machado et al. (2018) recommend; set it for the Nature DQN protocol.
    pub life_loss_terminal: bool,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self { gamma: 0.99, life_loss_terminal: false }
    }
}

impl ExecutorConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::config(
                "ExecutorConfig",
                "gamma",
                self.gamma,
                "use a discount in [0, 1], e.g. 0.99",
            ));
        }
        Ok(())
    }
}

/// One pool action as a semi-MDP transition, without the observation (so it can be kept).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MacroOutcome {
    /// The pool action executed.
    pub action: usize,
    /// `sum_{i<L} gamma^i r_i` over the learner rewards of the steps taken.
    pub reward: f32,
    /// The bootstrap discount: `gamma^L`, or 0 when `terminated`.
    pub discount: f32,
    /// `L`, primitive steps taken: `len(macro)` unless the macro stopped early.
    pub steps: usize,
    /// No bootstrapping past this transition: the episode terminated, or a life was lost
    /// under `life_loss_terminal`.
    pub terminated: bool,
    /// The episode was cut off from outside; bootstrap from the observation with
    /// `discount`. Never set together with `terminated`.
    pub truncated: bool,
    /// The wrapped env reported `terminated` or `truncated` itself. False only when a life
    /// loss ended the transition while the wrapped env plays on (see [`MacroEnv`]).
    pub inner_done: bool,
    /// Summed over the steps taken: `raw_reward` (the game score change) and `frames`;
    /// `life_lost` if any step lost a life; `lives` and `episode_score` after the last step.
    pub info: StepInfo,
}

impl MacroOutcome {
    /// The transition ended the episode (as the learner sees it); reset before stepping.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// What [`MacroEnv::step_macro`] returns: the outcome and the last observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacroStep<'a> {
    /// The observation after the last primitive taken (at truncation: the state to
    /// bootstrap from).
    pub obs: Obs<'a>,
    pub outcome: MacroOutcome,
}

impl MacroStep<'_> {
    pub fn done(&self) -> bool {
        self.outcome.done()
    }
}

/// The last observation, owned; [`MacroEnv`] says why it is copied.
#[derive(Clone, Debug)]
enum ObsBuffer {
    Pixels(Vec<u8>),
    Vector(Vec<f32>),
}

impl ObsBuffer {
    fn zeros(spec: &ObsSpec) -> Self {
        match spec {
            ObsSpec::Pixels { .. } => ObsBuffer::Pixels(vec![0; spec.len()]),
            ObsSpec::Vector { .. } => ObsBuffer::Vector(vec![0.0; spec.len()]),
        }
    }

    fn copy_from(&mut self, obs: Obs<'_>) {
        match (self, obs) {
            (ObsBuffer::Pixels(b), Obs::Pixels(o)) => b.copy_from_slice(o),
            (ObsBuffer::Vector(b), Obs::Vector(o)) => b.copy_from_slice(o),
            _ => panic!(
                "the wrapped environment returned an observation of another kind than its spec declares"
            ),
        }
    }

    fn as_obs(&self) -> Obs<'_> {
        match self {
            ObsBuffer::Pixels(b) => Obs::Pixels(b),
            ObsBuffer::Vector(b) => Obs::Vector(b),
        }
    }
}

/// An [`Env`] whose actions are an [`ActionPool`]'s: primitives pass through, macros run
/// open-loop, and each step is one semi-MDP transition.
///
/// A transition of `L <= len(macro)` primitive steps with learner rewards `r_i` gives
///
/// * `reward = sum_{i<L} gamma^i r_i` (the rewards the wrapped env reports, after any
///   clipping it does), and `info.raw_reward`, the undiscounted game score change;
/// * `steps = L`, and `info.frames`, the frames the `L` steps consumed;
/// * `discount = gamma^L`, or 0 when `terminated`.
///
/// A learner's target is `reward + discount * V(obs)`; n-step returns chain transitions by
/// multiplying their discounts. The macro stops early when:
///
/// * the episode terminates: `terminated`, `discount = 0`;
/// * the episode is truncated (a time limit): `truncated`, `discount = gamma^L`, and `obs` is
///   the cut-off state, so the learner bootstraps from it as from any other;
/// * a life is lost and [`ExecutorConfig::life_loss_terminal`] is set: `terminated`,
///   `discount = 0`. If the wrapped env itself ends its episode at a life loss, that is an
///   ordinary termination. If it plays on, `inner_done` is false, and the next
///   `reset(None)` continues the game from the current state instead of restarting it
///   (gymnasium's `EpisodicLifeEnv` rule), so an autoresetting vector env plays the next
///   life. `reset(Some(seed))` always restarts.
///
/// `MacroEnv` is itself an [`Env`] whose actions are the pool's. Its `Step` carries
/// `reward` (discounted), `terminated`, `truncated` and an aggregated [`StepInfo`] (summed
/// `raw_reward` and `frames`, `life_lost` if any step lost a life, the last `lives` and
/// `episode_score`). `Step` has no field for the discount and `L`, so they come through a
/// side channel: [`MacroEnv::last`] returns the whole [`MacroOutcome`], and
/// [`MacroEnv::step_macro`] returns it with the observation. A learner must use that
/// discount, not `gamma`, for macro transitions.
///
/// Stepping allocates nothing. It does copy the final observation into a buffer owned by
/// the executor: `Env::step` lends its observation only until the next call, and the
/// borrow checker cannot see that the loop stops at the step whose observation it returns.
#[derive(Clone, Debug)]
pub struct MacroEnv<E> {
    env: E,
    pool: Arc<ActionPool>,
    config: ExecutorConfig,
    spec: EnvSpec,
    obs: ObsBuffer,
    last: MacroOutcome,
    /// The last transition ended the episode; `step` refuses until `reset`.
    needs_reset: bool,
    /// The last transition ended at a life loss the wrapped env plays on through, so
    /// `reset(None)` continues instead of restarting.
    continue_on_reset: bool,
}

impl<E: Env> MacroEnv<E> {
    /// Wraps `env`. Fails if the config is invalid or the pool's primitives are not the
    /// env's actions (same names, same order). Share one `Arc` pool between copies.
    pub fn new(env: E, pool: impl Into<Arc<ActionPool>>, config: ExecutorConfig) -> Result<Self> {
        config.validate()?;
        let pool = pool.into();
        if pool.primitive_names() != env.spec().action_names.as_slice() {
            return Err(Error::PrimitiveMismatch {
                pool: pool.primitive_names().to_vec(),
                env: env.spec().action_names.clone(),
            });
        }
        let spec =
            EnvSpec { observation: env.spec().observation.clone(), action_names: pool.names().to_vec() };
        Ok(Self {
            obs: ObsBuffer::zeros(&spec.observation),
            env,
            pool,
            config,
            spec,
            last: MacroOutcome::default(),
            needs_reset: false,
            continue_on_reset: false,
        })
    }

    /// Runs pool action `action` from the current state; see [`MacroEnv`] for what
    /// comes back. Panics if `action` is not in the pool or the episode has ended without
    /// a `reset`, as `Env::step` does.
    pub fn step_macro(&mut self, action: usize) -> MacroStep<'_> {
        check_action(action, &self.spec);
        assert!(!self.needs_reset, "MacroEnv::step called after the episode ended; call reset first");
        let gamma = self.config.gamma;
        // Sums in f64 so that a long macro's discounted reward matches a direct computation
        // to f32 precision.
        let (mut reward, mut raw_reward, mut power) = (0.0f64, 0.0f64, 1.0f64);
        let mut out = MacroOutcome { action, ..Default::default() };
        let actions = self.pool.actions(action);
        for (i, &a) in actions.iter().enumerate() {
            let step = self.env.step(a);
            reward += power * f64::from(step.reward);
            power *= gamma;
            raw_reward += f64::from(step.info.raw_reward);
            out.info.frames += step.info.frames;
            out.info.life_lost |= step.info.life_lost;
            let life_ends = self.config.life_loss_terminal && step.info.life_lost;
            if step.done() || life_ends || i + 1 == actions.len() {
                self.obs.copy_from(step.obs);
                out.steps = i + 1;
                out.terminated = step.terminated || life_ends;
                out.truncated = step.truncated && !out.terminated;
                out.inner_done = step.done();
                out.info.lives = step.info.lives;
                out.info.episode_score = step.info.episode_score;
                out.info.game_over = step.info.game_over;
                break;
            }
        }
        out.reward = reward as f32;
        out.info.raw_reward = raw_reward as f32;
        out.discount = if out.terminated { 0.0 } else { power as f32 };
        self.needs_reset = out.done();
        self.continue_on_reset = out.done() && !out.inner_done;
        self.last = out;
        MacroStep { obs: self.obs.as_obs(), outcome: out }
    }

    /// The outcome of the most recent step; a `reset` leaves it in place, so it is still
    /// there after a vector env's same-step autoreset.
    pub fn last(&self) -> &MacroOutcome {
        &self.last
    }

    pub fn pool(&self) -> &Arc<ActionPool> {
        &self.pool
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    pub fn inner(&self) -> &E {
        &self.env
    }

    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    pub fn into_inner(self) -> E {
        self.env
    }
}

impl<E: Env> Env for MacroEnv<E> {
    /// The wrapped env's observations; one action per pool entry, named by identity.
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        self.needs_reset = false;
        if std::mem::take(&mut self.continue_on_reset) && seed.is_none() {
            return self.obs.as_obs();
        }
        self.env.reset(seed)
    }

    /// [`MacroEnv::step_macro`] as a `Step`: `reward` is the discounted reward; the
    /// discount and `L` are in [`MacroEnv::last`].
    fn step(&mut self, action: usize) -> Step<'_> {
        let MacroStep { obs, outcome } = self.step_macro(action);
        Step {
            obs,
            reward: outcome.reward,
            terminated: outcome.terminated,
            truncated: outcome.truncated,
            info: outcome.info,
        }
    }

    /// The wrapped env's picture: after a macro, its last primitive's.
    fn render_rgb(&self) -> Option<RgbImage> {
        self.env.render_rgb()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macro_action::Macro;
    use rl_env::{Corridor, CorridorConfig, TimeLimit};

    #[test]
    fn config_defaults_are_documented_and_files_are_strict() {
        let c = ExecutorConfig::default();
        assert_eq!((c.gamma, c.life_loss_terminal), (0.99, false));
        assert_eq!(toml::from_str::<ExecutorConfig>("life_loss_terminal = true").unwrap().gamma, 0.99);
        assert!(toml::from_str::<ExecutorConfig>("gama = 0.9").is_err(), "a misspelt knob is an error");
    }

    fn corridor_env(
        length: usize,
        max_steps: usize,
        macros: Vec<Vec<usize>>,
        gamma: f64,
    ) -> MacroEnv<Corridor> {
        let env = Corridor::new(CorridorConfig { length, max_steps, ..Default::default() });
        let pool = ActionPool::for_env(env.spec(), macros.into_iter().map(Macro::new).collect()).unwrap();
        MacroEnv::new(env, pool, ExecutorConfig { gamma, ..Default::default() }).unwrap()
    }

    #[test]
    fn primitives_pass_through_with_discount_gamma() {
        let mut env = corridor_env(5, 20, vec![], 0.9);
        assert_eq!(env.spec().num_actions(), 4);
        env.reset(Some(0));
        let s = env.step_macro(Corridor::RIGHT);
        assert_eq!(s.obs, Obs::Vector(&[0.0, 1.0, 0.0, 0.0, 0.0]));
        assert_eq!((s.outcome.steps, s.outcome.discount, s.outcome.info.frames), (1, 0.9, 1));
    }

    #[test]
    fn truncation_keeps_the_discount_and_the_cut_off_obs() {
        let env = TimeLimit::new(Corridor::new(CorridorConfig { length: 10, ..Default::default() }), 4);
        let pool = ActionPool::for_env(env.spec(), vec![Macro::new(vec![1; 3])]).unwrap();
        let mut env = MacroEnv::new(env, pool, ExecutorConfig { gamma: 0.5, ..Default::default() }).unwrap();
        env.reset(Some(0));
        env.step_macro(4);
        let s = env.step_macro(4);
        assert_eq!((s.outcome.steps, s.outcome.truncated, s.outcome.terminated), (1, true, false));
        assert_eq!(s.outcome.discount, 0.5);
        assert!(s.outcome.inner_done);
        assert_eq!(s.obs, Obs::Vector(&[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]));
    }

    #[test]
    fn env_step_reports_the_discounted_reward_and_summed_info() {
        let env = TimeLimit::new(Corridor::new(CorridorConfig { length: 4, ..Default::default() }), 50);
        let pool = ActionPool::for_env(env.spec(), vec![Macro::new(vec![1, 1, 1, 1])]).unwrap();
        let mut env = MacroEnv::new(env, pool, ExecutorConfig { gamma: 0.5, ..Default::default() }).unwrap();
        env.reset(Some(0));
        let s = env.step(4);
        assert!(s.terminated && !s.truncated);
        assert_eq!(s.reward, 0.25, "goal reward 1 on the third step: 0.5^2");
        assert_eq!((s.info.raw_reward, s.info.frames, s.info.episode_score), (1.0, 3, 1.0));
        assert_eq!(env.last().discount, 0.0);
        assert_eq!(env.last().steps, 3);
    }

    #[test]
    fn mismatched_pools_and_bad_gamma_are_refused() {
        let env = Corridor::new(CorridorConfig::default());
        let pool = ActionPool::primitives_only(vec!["LEFT".into(), "RIGHT".into()]).unwrap();
        assert!(matches!(
            MacroEnv::new(env.clone(), pool, ExecutorConfig::default()),
            Err(Error::PrimitiveMismatch { .. })
        ));
        let pool = ActionPool::for_env(env.spec(), vec![]).unwrap();
        for gamma in [-0.1, 1.01, f64::NAN] {
            let config = ExecutorConfig { gamma, ..Default::default() };
            assert!(matches!(
                MacroEnv::new(env.clone(), pool.clone(), config),
                Err(Error::InvalidConfig { field: "gamma", .. })
            ));
        }
    }

    #[test]
    #[should_panic(expected = "call reset first")]
    fn stepping_after_the_end_panics() {
        let mut env = corridor_env(3, 10, vec![vec![1, 1]], 0.9);
        env.step_macro(4);
        env.step_macro(4);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn actions_outside_the_pool_panic() {
        corridor_env(3, 10, vec![vec![1, 1]], 0.9).step_macro(5);
    }
}
