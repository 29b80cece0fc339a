//! The `Env` trait: gymnasium's reset/step contract, with borrowed observations so that
//! stepping never allocates.
//!
//! ```
//! use rl_env::{Env, Corridor, CorridorConfig};
//! let mut env = Corridor::new(CorridorConfig::default());
//! let _obs = env.reset(Some(7));
//! let step = env.step(1);
//! assert!(step.reward >= 0.0);
//! ```

use crate::rgb::RgbImage;
use crate::spec::{EnvSpec, Obs};

/// Bookkeeping that comes with every step, beyond what a learner trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepInfo {
    /// The reward before any clipping or scaling: the change in game score.
    pub raw_reward: f32,
    /// Lives left, for games that have them (0 otherwise).
    pub lives: i32,
    /// True when this step cost a life (whether or not the protocol treats that as terminal).
    pub life_lost: bool,
    /// Emulator (or environment) frames this step consumed; budgets are counted in these.
    pub frames: u32,
    /// Sum of raw rewards since the last full reset: the game score of the episode so far.
    pub episode_score: f64,
    /// This step ended the whole game (game over, or the episode cap), so the next reset
    /// starts a new one and `episode_score` is the game's final score. Where a lost life
    /// ends an episode but not the game this stays false; without lives it is `done()`.
    pub game_over: bool,
}

impl StepInfo {
    /// The info of an environment without lives in which one step is one frame, as the toy
    /// environments are: the raw reward is the reward, and the game ends with the episode.
    pub fn single_frame(reward: f32, episode_score: f64, done: bool) -> Self {
        StepInfo { raw_reward: reward, lives: 0, life_lost: false, frames: 1, episode_score, game_over: done }
    }
}

/// The result of one `step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step<'a> {
    pub obs: Obs<'a>,
    /// The reward the learner sees (after the protocol's clipping, if any).
    pub reward: f32,
    /// The episode ended by the MDP's own rules: do not bootstrap past it.
    pub terminated: bool,
    /// The episode was cut off from outside (time limit): the state still has a value.
    pub truncated: bool,
    pub info: StepInfo,
}

impl Step<'_> {
    /// The episode is over for either reason; call `reset` before stepping again.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A discrete-action environment in the gymnasium style.
///
/// Contract:
/// * `reset(Some(seed))` reseeds every random choice the environment makes, so the same seed
///   and the same actions give the same observations and rewards; `reset(None)` continues
///   from the current random state.
/// * `step` must not be called after a step that returned `done()` without a `reset` between.
/// * An action outside `0..spec().num_actions()` is a programming error and panics.
/// * `render_rgb` is `None` always or never: an environment with a colour screen shows it
///   after every `reset` and `step`. Wrappers forward it.
pub trait Env: Send {
    fn spec(&self) -> &EnvSpec;
    fn reset(&mut self, seed: Option<u64>) -> Obs<'_>;
    fn step(&mut self, action: usize) -> Step<'_>;

    /// The current state as a person would see it, for videos; `None` (the default) for an
    /// environment that has no picture of itself.
    fn render_rgb(&self) -> Option<RgbImage> {
        None
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn spec(&self) -> &EnvSpec {
        (**self).spec()
    }
    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        (**self).reset(seed)
    }
    fn step(&mut self, action: usize) -> Step<'_> {
        (**self).step(action)
    }
    fn render_rgb(&self) -> Option<RgbImage> {
        (**self).render_rgb()
    }
}

/// Panics with a message naming the bad action: the check every `Env::step` starts with.
pub fn check_action(action: usize, spec: &EnvSpec) {
    assert!(
        action < spec.num_actions(),
        "action {action} is out of range: this environment has {} actions (0..{})",
        spec.num_actions(),
        spec.num_actions()
    );
}
