//! `Corridor`: a long sparse-reward chain in which a random primitive policy almost never
//! reaches the goal but an open-loop macro such as `RIGHT x 8` covers ground fast.
//!
//! The rules are on [`Corridor`].
//!
//! ```
//! use rl_env::{Corridor, CorridorConfig, Env};
//! let mut env = Corridor::try_new(CorridorConfig { length: 5, ..Default::default() })?;
//! env.reset(Some(0));
//! let mut ret = 0.0;
//! for _ in 0..4 {
//!     let step = env.step(Corridor::RIGHT);
//!     ret += step.reward;
//!     if step.done() { break; }
//! }
//! assert_eq!(ret, 1.0);
//! # Ok::<(), rl_env::Error>(())
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::{check_action, Env, Step, StepInfo};
use crate::error::{Error, Result};
use crate::rgb::{self, RgbImage};
use crate::spec::{EnvSpec, Obs, ObsSpec};

/// The knobs of a [`Corridor`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct CorridorConfig {
    /// Number of cells, at least 2; the goal is the last one. Default 50.
    pub length: usize,
    /// Steps (= frames) after which the episode is truncated; at least `length - 1`, or the
    /// goal could never be reached. Default 200 (`4 * length`).
    pub max_steps: usize,
    /// Probability, in `[0, 1]`, that the chosen action is replaced by a uniformly random one
    /// (drawn from the seeded generator). Default 0: deterministic dynamics.
    pub slip_prob: f32,
    /// Reward on every step that does not reach the goal; e.g. `-0.01` to favour short
    /// paths. Default 0, so the task stays purely sparse.
    pub step_penalty: f32,
}

impl Default for CorridorConfig {
    fn default() -> Self {
        Self { length: 50, max_steps: 200, slip_prob: 0.0, step_penalty: 0.0 }
    }
}

impl CorridorConfig {
    /// Checks every field; the error names the first bad one and what would be valid.
    pub fn validate(&self) -> Result<()> {
        const NAME: &str = "CorridorConfig";
        if self.length < 2 {
            return Err(Error::config(NAME, "length", self.length, "use at least 2 cells (start and goal)"));
        }
        if self.max_steps < self.length - 1 {
            return Err(Error::config(
                NAME,
                "max_steps",
                self.max_steps,
                format!("use at least length - 1 = {}, or the goal is unreachable", self.length - 1),
            ));
        }
        if !(0.0..=1.0).contains(&self.slip_prob) {
            return Err(Error::config(NAME, "slip_prob", self.slip_prob, "use a probability in [0, 1]"));
        }
        if !self.step_penalty.is_finite() {
            return Err(Error::config(
                NAME,
                "step_penalty",
                self.step_penalty,
                "use a finite number, e.g. 0.0",
            ));
        }
        Ok(())
    }
}

/// A long sparse-reward chain in which macro-actions matter.
///
/// Cells `0..length`; the agent starts in cell 0 and the goal is cell `length - 1`. Actions:
///
/// | id | name    | effect                                   |
/// |----|---------|------------------------------------------|
/// | 0  | `LEFT`  | one cell left (stays put in cell 0)      |
/// | 1  | `RIGHT` | one cell right                           |
/// | 2  | `NOOP`  | nothing                                  |
/// | 3  | `BACK`  | jump back to cell 0                      |
///
/// `NOOP` and `BACK` are distractors: a uniform random policy drifts nowhere and is sent home
/// every fourth step on average, so with the defaults it essentially never sees the reward,
/// while `RIGHT` repeated `length - 1` times always does (without slip).
///
/// Reward: exactly `1.0` on the step that enters the goal (which terminates the episode),
/// `step_penalty` on every other step. The episode is truncated (not terminated) after
/// `max_steps` steps.
///
/// Observation: `ObsSpec::Vector { len: length }`, a one-hot of the agent's cell.
#[derive(Clone, Debug)]
pub struct Corridor {
    config: CorridorConfig,
    spec: EnvSpec,
    rng: ChaCha8Rng,
    position: usize,
    steps: usize,
    episode_score: f64,
    done: bool,
    /// One-hot of `position`, kept up to date in O(1) per step and lent out by `step`.
    obs: Vec<f32>,
}

impl Corridor {
    pub const LEFT: usize = 0;
    pub const RIGHT: usize = 1;
    pub const NOOP: usize = 2;
    pub const BACK: usize = 3;
    pub const ACTION_NAMES: [&'static str; 4] = ["LEFT", "RIGHT", "NOOP", "BACK"];
    /// The reward for entering the goal cell.
    pub const GOAL_REWARD: f32 = 1.0;

    /// Builds the environment, already reset with seed 0. Fails if the config is invalid.
    pub fn try_new(config: CorridorConfig) -> Result<Self> {
        config.validate()?;
        let spec = EnvSpec {
            observation: ObsSpec::Vector { len: config.length },
            action_names: Self::ACTION_NAMES.iter().map(|s| s.to_string()).collect(),
        };
        let mut env = Self {
            obs: vec![0.0; config.length],
            config,
            spec,
            rng: ChaCha8Rng::seed_from_u64(0),
            position: 0,
            steps: 0,
            episode_score: 0.0,
            done: false,
        };
        env.reset(Some(0));
        Ok(env)
    }

    /// Like [`Corridor::try_new`], for configs known to be valid; panics with the
    /// validation message otherwise.
    pub fn new(config: CorridorConfig) -> Self {
        Self::try_new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn config(&self) -> &CorridorConfig {
        &self.config
    }

    /// The agent's cell, `0..length`.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Steps taken since the last reset.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The cell one `action` leads to from `cell`, without slip.
    fn next_cell(cell: usize, action: usize) -> usize {
        match action {
            Self::LEFT => cell.saturating_sub(1),
            Self::RIGHT => cell + 1,
            Self::NOOP => cell,
            // BACK: `check_action` and the slip draw admit nothing else.
            _ => 0,
        }
    }

    /// Where `actions` lead from `start` without slip: the cell after the last of them, or
    /// the goal if they reach it on the way (entering it ends the episode, and a macro with
    /// it). Two action sequences that end in the same cell from every start have the same
    /// effect here, whatever their lengths; analysis compares macros by this.
    pub fn walk(&self, start: usize, actions: &[usize]) -> usize {
        let goal = self.config.length - 1;
        let mut cell = start.min(goal);
        for &action in actions {
            if cell == goal {
                break;
            }
            cell = Self::next_cell(cell, action);
        }
        cell
    }

    fn move_to(&mut self, cell: usize) {
        self.obs[self.position] = 0.0;
        self.obs[cell] = 1.0;
        self.position = cell;
    }
}

impl Env for Corridor {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.move_to(0);
        self.steps = 0;
        self.episode_score = 0.0;
        self.done = false;
        Obs::Vector(&self.obs)
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        check_action(action, &self.spec);
        assert!(!self.done, "Corridor::step called after the episode ended; call reset first");
        // Only consult the generator when slipping is on, so the deterministic default pays
        // nothing for it.
        let action = if self.config.slip_prob > 0.0 && self.rng.random::<f32>() < self.config.slip_prob {
            self.rng.random_range(0..Self::ACTION_NAMES.len())
        } else {
            action
        };
        let next = Self::next_cell(self.position, action);
        self.move_to(next);
        self.steps += 1;
        let terminated = next == self.config.length - 1;
        let truncated = !terminated && self.steps >= self.config.max_steps;
        let reward = if terminated { Self::GOAL_REWARD } else { self.config.step_penalty };
        self.episode_score += f64::from(reward);
        self.done = terminated || truncated;
        Step {
            obs: Obs::Vector(&self.obs),
            reward,
            terminated,
            truncated,
            info: StepInfo::single_frame(reward, self.episode_score, self.done),
        }
    }

    /// A row of `length` cells: the agent, the goal at the end, floor between.
    fn render_rgb(&self) -> Option<RgbImage> {
        let goal = self.config.length - 1;
        Some(RgbImage::from_cells(self.config.length, 1, rgb::CELL_PIXELS, |x, _| match x {
            _ if x == self.position => rgb::AGENT,
            _ if x == goal => rgb::GOAL,
            _ => rgb::FLOOR,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(length: usize, max_steps: usize) -> Corridor {
        Corridor::new(CorridorConfig { length, max_steps, ..Default::default() })
    }

    fn one_hot(len: usize, i: usize) -> Vec<f32> {
        let mut v = vec![0.0; len];
        v[i] = 1.0;
        v
    }

    #[test]
    fn default_config_is_documented_values() {
        let c = CorridorConfig::default();
        assert_eq!((c.length, c.max_steps, c.slip_prob, c.step_penalty), (50, 200, 0.0, 0.0));
        let env = Corridor::new(c);
        assert_eq!(env.spec().num_actions(), 4);
        assert_eq!(env.spec().action_names, ["LEFT", "RIGHT", "NOOP", "BACK"]);
        assert_eq!(env.spec().observation, ObsSpec::Vector { len: 50 });
    }

    #[test]
    fn all_right_reaches_goal_in_length_minus_one_steps_with_return_one() {
        let mut env = Corridor::new(CorridorConfig::default());
        assert_eq!(env.reset(Some(3)), Obs::Vector(&one_hot(50, 0)));
        for t in 1..49 {
            let s = env.step(Corridor::RIGHT);
            assert_eq!((s.reward, s.terminated, s.truncated), (0.0, false, false), "step {t}");
            assert_eq!(s.obs, Obs::Vector(&one_hot(50, t)));
        }
        let s = env.step(Corridor::RIGHT);
        assert_eq!((s.reward, s.terminated, s.truncated), (1.0, true, false));
        assert_eq!(s.obs, Obs::Vector(&one_hot(50, 49)));
        assert_eq!(
            s.info,
            StepInfo {
                raw_reward: 1.0,
                lives: 0,
                life_lost: false,
                frames: 1,
                episode_score: 1.0,
                game_over: true
            }
        );
        assert_eq!(env.steps(), 49);
    }

    #[test]
    fn left_noop_back_move_as_documented() {
        let mut env = small(10, 100);
        env.step(Corridor::LEFT);
        assert_eq!(env.position(), 0, "LEFT in cell 0 stays");
        env.step(Corridor::RIGHT);
        env.step(Corridor::RIGHT);
        env.step(Corridor::NOOP);
        assert_eq!(env.position(), 2);
        env.step(Corridor::LEFT);
        assert_eq!(env.position(), 1);
        env.step(Corridor::RIGHT);
        env.step(Corridor::RIGHT);
        let s = env.step(Corridor::BACK);
        assert_eq!(s.obs, Obs::Vector(&one_hot(10, 0)));
        assert_eq!(env.position(), 0);
    }

    #[test]
    fn truncates_at_max_steps_without_terminating() {
        let mut env = small(5, 6);
        for _ in 0..5 {
            assert!(!env.step(Corridor::NOOP).done());
        }
        let s = env.step(Corridor::NOOP);
        assert!(s.truncated && !s.terminated);
        assert_eq!(s.reward, 0.0);
    }

    #[test]
    fn reaching_goal_on_the_last_allowed_step_is_terminal_not_truncated() {
        let mut env = small(5, 4);
        for _ in 0..3 {
            env.step(Corridor::RIGHT);
        }
        let s = env.step(Corridor::RIGHT);
        assert!(s.terminated && !s.truncated);
    }

    #[test]
    fn step_penalty_accumulates_into_episode_score() {
        let mut env = Corridor::new(CorridorConfig { length: 4, step_penalty: -0.5, ..Default::default() });
        env.step(Corridor::NOOP);
        env.step(Corridor::RIGHT);
        env.step(Corridor::RIGHT);
        let s = env.step(Corridor::RIGHT);
        assert_eq!(s.reward, 1.0);
        assert_eq!(s.info.episode_score, -1.5 + 1.0);
    }

    #[test]
    fn slip_is_seeded_and_changes_actions() {
        let config = CorridorConfig { length: 50, slip_prob: 0.5, ..Default::default() };
        let run = |seed| {
            let mut env = Corridor::new(config.clone());
            env.reset(Some(seed));
            (0..40)
                .map(|_| {
                    env.step(Corridor::RIGHT);
                    env.position()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
        // With half the actions replaced, 40 RIGHTs cannot all have gone right.
        assert!(*run(11).last().unwrap() < 40);
    }

    #[test]
    fn slip_prob_one_ignores_the_chosen_action() {
        let mut env = Corridor::new(CorridorConfig { slip_prob: 1.0, ..Default::default() });
        env.reset(Some(5));
        let positions: Vec<_> = (0..50)
            .map(|_| {
                env.step(Corridor::RIGHT);
                env.position()
            })
            .collect();
        assert!(positions.windows(2).any(|w| w[1] <= w[0]), "some slipped step must not move right");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let bad = |c: CorridorConfig| match Corridor::try_new(c).unwrap_err() {
            Error::InvalidConfig { field, .. } => field,
            e => panic!("unexpected {e}"),
        };
        assert_eq!(bad(CorridorConfig { length: 1, ..Default::default() }), "length");
        assert_eq!(bad(CorridorConfig { max_steps: 48, ..Default::default() }), "max_steps");
        assert_eq!(bad(CorridorConfig { slip_prob: 1.5, ..Default::default() }), "slip_prob");
        assert_eq!(bad(CorridorConfig { slip_prob: f32::NAN, ..Default::default() }), "slip_prob");
        assert_eq!(bad(CorridorConfig { step_penalty: f32::INFINITY, ..Default::default() }), "step_penalty");
        assert!(Corridor::try_new(CorridorConfig { max_steps: 49, ..Default::default() }).is_ok());
    }

    #[test]
    fn the_picture_follows_the_agent() {
        let mut env = small(4, 10);
        let cell_colour = |env: &Corridor, cell: usize| {
            env.render_rgb().unwrap().pixel(cell * rgb::CELL_PIXELS + 1, rgb::CELL_PIXELS / 2)
        };
        env.reset(Some(0));
        assert_eq!([0, 1, 3].map(|c| cell_colour(&env, c)), [rgb::AGENT, rgb::FLOOR, rgb::GOAL]);
        env.step(Corridor::RIGHT);
        assert_eq!([0, 1].map(|c| cell_colour(&env, c)), [rgb::FLOOR, rgb::AGENT]);
        let image = env.render_rgb().unwrap();
        assert_eq!((image.width, image.height), (4 * rgb::CELL_PIXELS, rgb::CELL_PIXELS));
    }

    #[test]
    fn a_walk_ends_where_stepping_would() {
        use Corridor as C;
        let mut env = small(6, 100);
        let sequences: [&[usize]; 5] = [
            &[C::RIGHT, C::RIGHT, C::LEFT],
            &[C::LEFT; 3],
            &[C::RIGHT, C::BACK, C::RIGHT],
            &[C::RIGHT; 9],
            &[],
        ];
        for start in 0..5 {
            for actions in sequences {
                env.reset(Some(0));
                for _ in 0..start {
                    env.step(C::RIGHT);
                }
                for &a in actions {
                    if env.step(a).terminated {
                        break;
                    }
                }
                assert_eq!(env.walk(start, actions), env.position(), "{actions:?} from {start}");
            }
        }
        assert_eq!(env.walk(1, &[C::LEFT, C::LEFT, C::RIGHT]), 1, "the wall holds at cell 0");
        assert_eq!(env.walk(4, &[C::RIGHT, C::BACK]), 5, "the goal ends the walk");
    }

    #[test]
    #[should_panic(expected = "call reset first")]
    fn stepping_after_done_panics() {
        let mut env = small(2, 10);
        assert!(env.step(Corridor::RIGHT).terminated);
        env.step(Corridor::RIGHT);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn out_of_range_action_panics() {
        small(3, 10).step(4);
    }
}
