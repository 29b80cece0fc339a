//! Exploration: noisy nets (Rainbow's default), epsilon-greedy with a linear schedule, and
//! temporally-extended epsilon-greedy ("ez-greedy", Dabney et al. 2021) as a baseline.
//!
//! * `noisy`: act greedily with respect to the noisy online network (the noise itself
//!   explores; Fortunato et al. 2018), with probability `epsilon_end` a uniformly random
//!   action instead, throughout training. Dopamine's full Rainbow, whose schedule the
//!   presets follow, does this (it passes `identity_epsilon` for noisy agents, so they act
//!   with `epsilon_train` = 0.01): at initialisation the noisy net's greedy action barely
//!   depends on the noise, and an agent can repeat one action for whole games. Set
//!   `epsilon_end = 0` for pure noisy nets.
//! * `epsilon_greedy`: with probability `epsilon(step)` a uniformly random action, where
//!   `epsilon` falls linearly from `epsilon_start` to `epsilon_end` over
//!   `epsilon_decay_steps` agent steps.
//! * `ez_greedy`: when an env copy is not repeating, with probability `epsilon(step)` it
//!   draws a random action and a duration `n ~ zeta(mu)` (`P(n) ~ n^-mu`, `mu = 2` in the
//!   paper), capped at `ez_max_duration`, and repeats that action for `n` decisions (each
//!   env copy has its own repeat; an episode's end cancels it). Otherwise greedy.
//!
//! Evaluation (all kinds): the online network's noise is off and `eval_epsilon`-greedy.
//! All draws come from one seeded RNG.
//!
//! ```
//! use rainbow::{ExplorationConfig, ExplorationKind, Explorer};
//! use rand::SeedableRng;
//! let config = ExplorationConfig { kind: ExplorationKind::EpsilonGreedy, epsilon_decay_steps: 100, ..ExplorationConfig::default() };
//! let mut explorer = Explorer::new(&config, 4, 2, rand_chacha::ChaCha8Rng::seed_from_u64(0))?;
//! assert_eq!(explorer.epsilon(0, false), 1.0);
//! assert!((explorer.epsilon(50, false) - 0.505).abs() < 1e-12);
//! let mut actions = [0; 2];
//! explorer.choose(&[3, 3], 1_000, false, &mut actions);
//! # Ok::<(), rainbow::Error>(())
//! ```

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zeta};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which exploration strategy trains the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExplorationKind {
    /// Greedy w.r.t. the noisy network (needs `NetworkConfig.noisy`).
    Noisy,
    EpsilonGreedy,
    /// Temporally-extended epsilon-greedy (Dabney et al. 2021).
    EzGreedy,
}

/// The knobs of exploration; `Default` is noisy nets with Dopamine's evaluation epsilon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplorationConfig {
    /// Default `noisy`.
    pub kind: ExplorationKind,
    /// Epsilon at agent step 0 (epsilon-greedy and ez-greedy). Default 1.
    pub epsilon_start: f64,
    /// Epsilon after the decay, and throughout training with noisy nets. Default 0.01
    /// (Dopamine's `epsilon_train`).
    pub epsilon_end: f64,
    /// Agent steps over which epsilon falls linearly. Default 250_000 (Dopamine's
    /// `epsilon_decay_period`).
    pub epsilon_decay_steps: u64,
    /// Epsilon in evaluation mode, every kind. Default 0.001 (Dopamine's `epsilon_eval`).
    pub eval_epsilon: f64,
    /// ez-greedy: the zeta exponent `mu` of the duration distribution, > 1. Default 2
    /// (Dabney et al.).
    pub ez_mu: f64,
    /// ez-greedy: the longest repeat, in decisions. Default 100 (a cap of ours: zeta(2) has
    /// a heavy tail, and one draw should not take over an env copy for a whole episode).
    pub ez_max_duration: u64,
}

impl Default for ExplorationConfig {
    fn default() -> Self {
        Self {
            kind: ExplorationKind::Noisy,
            epsilon_start: 1.0,
            epsilon_end: 0.01,
            epsilon_decay_steps: 250_000,
            eval_epsilon: 0.001,
            ez_mu: 2.0,
            ez_max_duration: 100,
        }
    }
}

impl ExplorationConfig {
    /// The training epsilon at agent step `step`: with noisy nets `epsilon_end` throughout
    /// (Dopamine's `identity_epsilon`), else the linear decay.
    pub fn train_epsilon(&self, step: u64) -> f64 {
        if self.kind == ExplorationKind::Noisy {
            return self.epsilon_end;
        }
        if step >= self.epsilon_decay_steps {
            return self.epsilon_end;
        }
        let progress = step as f64 / self.epsilon_decay_steps as f64;
        self.epsilon_start + (self.epsilon_end - self.epsilon_start) * progress
    }

    /// Checks every field; the error names the first bad field and the fix.
    pub fn validate(&self) -> Result<()> {
        let prob = |field, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(Error::config("ExplorationConfig", field, value, "use a probability in [0, 1]"))
            }
        };
        prob("epsilon_start", self.epsilon_start)?;
        prob("epsilon_end", self.epsilon_end)?;
        prob("eval_epsilon", self.eval_epsilon)?;
        if !(self.ez_mu.is_finite() && self.ez_mu > 1.0) {
            return Err(Error::config(
                "ExplorationConfig",
                "ez_mu",
                self.ez_mu,
                "use a zeta exponent > 1, e.g. 2 (Dabney et al.)",
            ));
        }
        if self.ez_max_duration == 0 {
            return Err(Error::config(
                "ExplorationConfig",
                "ez_max_duration",
                self.ez_max_duration,
                "use at least 1 decision, e.g. 100",
            ));
        }
        Ok(())
    }
}

/// A repeat in progress for one env copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    pub action: usize,
    /// Decisions left after the current one.
    pub remaining: u64,
}

/// Exploration state: the RNG and, for ez-greedy, each env copy's repeat.
#[derive(Clone, Debug)]
pub struct Explorer {
    config: ExplorationConfig,
    num_actions: usize,
    rng: ChaCha8Rng,
    repeats: Vec<Repeat>,
    zeta: Zeta<f64>,
}

impl Explorer {
    pub fn new(
        config: &ExplorationConfig,
        num_actions: usize,
        num_envs: usize,
        rng: ChaCha8Rng,
    ) -> Result<Self> {
        config.validate()?;
        let zeta = Zeta::new(config.ez_mu)
            .map_err(|e| Error::config("ExplorationConfig", "ez_mu", config.ez_mu, e.to_string()))?;
        Ok(Self {
            config: config.clone(),
            num_actions,
            rng,
            repeats: vec![Repeat::default(); num_envs],
            zeta,
        })
    }

    pub fn config(&self) -> &ExplorationConfig {
        &self.config
    }

    /// The epsilon at agent step `step` (training) or in evaluation.
    pub fn epsilon(&self, step: u64, eval: bool) -> f64 {
        if eval {
            self.config.eval_epsilon
        } else {
            self.config.train_epsilon(step)
        }
    }

    /// Writes into `out` the action of each env copy given its `greedy` action at agent step
    /// `step`. In training with ez-greedy, `greedy.len()` must be the number of env copies.
    pub fn choose(&mut self, greedy: &[usize], step: u64, eval: bool, out: &mut [usize]) {
        let epsilon = self.epsilon(step, eval);
        let extended = !eval && self.config.kind == ExplorationKind::EzGreedy;
        for (env, (&g, a)) in greedy.iter().zip(out.iter_mut()).enumerate() {
            if extended && self.repeats[env].remaining > 0 {
                self.repeats[env].remaining -= 1;
                *a = self.repeats[env].action;
                continue;
            }
            *a = match random_action(&mut self.rng, epsilon, self.num_actions) {
                Some(action) => {
                    if extended {
                        // zeta samples are integers >= 1 held in a float.
                        let n =
                            (self.zeta.sample(&mut self.rng) as u64).clamp(1, self.config.ez_max_duration);
                        self.repeats[env] = Repeat { action, remaining: n - 1 };
                    }
                    action
                }
                None => g,
            };
        }
    }

    /// The evaluation actions for `greedy` (any number of copies): `eval_epsilon`-greedy with
    /// the draws from `rng`, so that an evaluation leaves training's RNG where it was.
    pub fn choose_eval(&self, greedy: &[usize], rng: &mut impl Rng) -> Vec<usize> {
        self.choose_with(greedy, self.config.eval_epsilon, rng)
    }

    /// `epsilon`-greedy actions for `greedy` with the draws from `rng` (training's RNG is
    /// not touched).
    pub fn choose_with(&self, greedy: &[usize], epsilon: f64, rng: &mut impl Rng) -> Vec<usize> {
        greedy.iter().map(|&g| random_action(rng, epsilon, self.num_actions).unwrap_or(g)).collect()
    }

    /// Env copy `env`'s episode ended: its repeat stops.
    pub fn end_episode(&mut self, env: usize) {
        self.repeats[env] = Repeat::default();
    }

    pub fn rng(&self) -> &ChaCha8Rng {
        &self.rng
    }

    pub fn repeats(&self) -> &[Repeat] {
        &self.repeats
    }

    /// Restores the RNG and repeats of a checkpoint.
    pub(crate) fn restore(&mut self, rng: ChaCha8Rng, repeats: Vec<Repeat>) -> Result<()> {
        if repeats.len() != self.repeats.len() {
            return Err(Error::LengthMismatch {
                what: "Explorer repeats",
                expected: self.repeats.len(),
                found: repeats.len(),
            });
        }
        self.rng = rng;
        self.repeats = repeats;
        Ok(())
    }
}

/// With probability `epsilon` a uniformly random action of `0..num_actions`, else `None`
/// (no draw at all when `epsilon` is 0).
fn random_action(rng: &mut impl Rng, epsilon: f64, num_actions: usize) -> Option<usize> {
    (epsilon > 0.0 && rng.random::<f64>() < epsilon).then(|| rng.random_range(0..num_actions))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn explorer(kind: ExplorationKind, envs: usize) -> Explorer {
        let config = ExplorationConfig { kind, epsilon_decay_steps: 100, ..ExplorationConfig::default() };
        Explorer::new(&config, 5, envs, ChaCha8Rng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn epsilon_schedules() {
        let e = explorer(ExplorationKind::EpsilonGreedy, 1);
        assert_eq!([0, 50, 100, 10_000].map(|s| e.epsilon(s, false)), [1.0, 0.505, 0.01, 0.01]);
        assert_eq!(e.epsilon(0, true), 0.001);
        let n = explorer(ExplorationKind::Noisy, 1);
        assert_eq!([0, 50, 10_000].map(|s| n.epsilon(s, false)), [0.01; 3]);
        assert_eq!(n.epsilon(0, true), 0.001);
    }

    #[test]
    fn a_noisy_agent_acts_randomly_at_the_configured_rate_in_training() {
        // A uniformly random action is the greedy one a fifth of the time: 20% of 0.2.
        let config = ExplorationConfig { epsilon_end: 0.2, ..ExplorationConfig::default() };
        let mut e = Explorer::new(&config, 5, 1, ChaCha8Rng::seed_from_u64(3)).unwrap();
        let mut out = [0];
        let draws = 50_000;
        let other = (0..draws)
            .filter(|&t| {
                e.choose(&[2], t, false, &mut out);
                out[0] != 2
            })
            .count() as f64;
        assert!((other / draws as f64 - 0.16).abs() < 0.006, "{other}");
        // Evaluation uses eval_epsilon alone.
        let greedy = (0..draws)
            .filter(|_| {
                e.choose(&[2], 0, true, &mut out);
                out[0] == 2
            })
            .count() as f64;
        assert!(greedy / draws as f64 > 0.997, "{greedy}");
    }

    #[test]
    fn epsilon_greedy_frequencies() {
        // At epsilon 1 every action is uniform; at the end of the decay, greedy 99% of the
        // time plus a fifth of the random 1%.
        let mut e = explorer(ExplorationKind::EpsilonGreedy, 1);
        let mut out = [0];
        let mut counts = [0usize; 5];
        for _ in 0..20_000 {
            e.choose(&[2], 0, false, &mut out);
            counts[out[0]] += 1;
        }
        assert!(counts.iter().all(|&c| (c as f64 - 4000.0).abs() < 300.0), "{counts:?}");
        let greedy = (0..20_000)
            .filter(|_| {
                e.choose(&[2], 1_000, false, &mut out);
                out[0] == 2
            })
            .count();
        assert!((greedy as f64 / 20_000.0 - 0.992).abs() < 0.003, "{greedy}");
    }

    #[test]
    fn ez_greedy_repeats_for_zeta_durations_per_env() {
        // At epsilon 1, each env copy's trajectory is a sequence of runs; with repeated random
        // actions possibly merging runs, count the starts of repeats via the explorer state.
        let mut e = explorer(ExplorationKind::EzGreedy, 2);
        let mut out = [0; 2];
        let mut durations = Vec::new();
        let mut current = [0u64; 2];
        for _ in 0..40_000 {
            e.choose(&[0, 0], 0, false, &mut out);
            for (env, run) in current.iter_mut().enumerate() {
                *run += 1;
                if e.repeats()[env].remaining == 0 {
                    durations.push(*run);
                    *run = 0;
                }
            }
        }
        // zeta(2): P(n = 1) = 1 / zeta(2) = 6 / pi^2 = 0.608, P(n = 2) = 0.152; capped at 100.
        let total = durations.len() as f64;
        let p1 = durations.iter().filter(|&&d| d == 1).count() as f64 / total;
        let p2 = durations.iter().filter(|&&d| d == 2).count() as f64 / total;
        assert!((p1 - 0.608).abs() < 0.02 && (p2 - 0.152).abs() < 0.015, "{p1} {p2}");
        assert!(durations.iter().all(|&d| d <= 100));
        // An episode end cancels the repeat.
        e.repeats[0] = Repeat { action: 4, remaining: 5 };
        e.end_episode(0);
        assert_eq!(e.repeats()[0], Repeat::default());
    }

    #[test]
    fn evaluation_is_eval_epsilon_greedy_and_repeats_with_the_callers_seed() {
        let config = ExplorationConfig { eval_epsilon: 0.5, ..ExplorationConfig::default() };
        let e = Explorer::new(&config, 5, 1, ChaCha8Rng::seed_from_u64(1)).unwrap();
        let actions = e.choose_eval(&[2; 20_000], &mut ChaCha8Rng::seed_from_u64(2));
        // Greedy half the time, plus a fifth of the random half.
        let greedy = actions.iter().filter(|&&a| a == 2).count() as f64 / 20_000.0;
        assert!((greedy - 0.6).abs() < 0.015, "{greedy}");
        assert_eq!(actions, e.choose_eval(&[2; 20_000], &mut ChaCha8Rng::seed_from_u64(2)));
    }

    #[test]
    fn validation_names_the_field() {
        let d = ExplorationConfig::default;
        let field = |c: ExplorationConfig| match c.validate().unwrap_err() {
            Error::InvalidConfig { field, .. } => field,
            e => panic!("{e}"),
        };
        assert_eq!(field(ExplorationConfig { epsilon_start: 1.5, ..d() }), "epsilon_start");
        assert_eq!(field(ExplorationConfig { eval_epsilon: -0.1, ..d() }), "eval_epsilon");
        assert_eq!(field(ExplorationConfig { ez_mu: 1.0, ..d() }), "ez_mu");
        assert_eq!(field(ExplorationConfig { ez_max_duration: 0, ..d() }), "ez_max_duration");
        let c: ExplorationConfig = toml::from_str("kind = \"ez_greedy\"").unwrap();
        assert_eq!(c.kind, ExplorationKind::EzGreedy);
    }
}
