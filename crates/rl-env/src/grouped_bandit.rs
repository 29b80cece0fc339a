//! `GroupedBandit`: a contextual bandit whose actions fall into hidden groups of identical
//! effect, so that an agent which learns which actions behave alike can pool their samples.
//! It is the task MASP's similarity `S` is meant for: the right `S` ties each group together.
//!
//! The rules are on [`GroupedBandit`].
//!
//! ```
//! use rl_env::{Env, GroupedBandit, GroupedBanditConfig};
//! let mut env = GroupedBandit::try_new(GroupedBanditConfig { noise: 0.0, ..Default::default() })?;
//! env.reset(Some(0));
//! // Any action of the context's best group earns the best mean, 1.0.
//! let best = env.groups().iter().position(|&g| g == env.best_group(env.context())).unwrap();
//! assert_eq!(env.step(best).reward, 1.0);
//! # Ok::<(), rl_env::Error>(())
//! ```

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::env::{check_action, Env, Step, StepInfo};
use crate::error::{Error, Result};
use crate::rgb::{self, RgbImage};
use crate::spec::{EnvSpec, Obs, ObsSpec};

/// The knobs of a [`GroupedBandit`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct GroupedBanditConfig {
    /// Number of actions `A`, at least 1. Default 16.
    pub actions: usize,
    /// Number of hidden groups `G`, in `1..=actions`; the actions are dealt to them as evenly
    /// as possible. Default 4.
    pub groups: usize,
    /// Number of contexts `C`, at least 1. Default 8.
    pub contexts: usize,
    /// Standard deviation of the Gaussian noise added to every reward, at least 0. Default
    /// 1.0: twice the gap between the best group and the next, so that telling them apart
    /// takes tens of samples per action and pooling a group's samples pays.
    pub noise: f32,
    /// Steps per episode, at least 1; each step shows a fresh context. Default 1: a pure
    /// contextual bandit, in which an action's value is exactly its mean reward.
    pub episode_length: usize,
    /// Seed of the hidden structure (which action is in which group, and each context's
    /// ranking of the groups), apart from the episodes' seed so that every run of a sweep
    /// faces the same task. Default 0.
    pub structure_seed: u64,
}

impl Default for GroupedBanditConfig {
    fn default() -> Self {
        Self { actions: 16, groups: 4, contexts: 8, noise: 1.0, episode_length: 1, structure_seed: 0 }
    }
}

impl GroupedBanditConfig {
    /// Checks every field; the error names the first bad one and what would be valid.
    pub fn validate(&self) -> Result<()> {
        const NAME: &str = "GroupedBanditConfig";
        if self.actions == 0 {
            return Err(Error::config(NAME, "actions", self.actions, "use at least 1 action"));
        }
        if !(1..=self.actions).contains(&self.groups) {
            return Err(Error::config(
                NAME,
                "groups",
                self.groups,
                format!("use between 1 and actions = {}, so that no group is empty", self.actions),
            ));
        }
        if self.contexts == 0 {
            return Err(Error::config(NAME, "contexts", self.contexts, "use at least 1 context"));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(Error::config(
                NAME,
                "noise",
                self.noise,
                "use a finite standard deviation >= 0, e.g. 1.0",
            ));
        }
        if self.episode_length == 0 {
            return Err(Error::config(NAME, "episode_length", self.episode_length, "use at least 1 step"));
        }
        Ok(())
    }
}

/// A contextual bandit with `A` actions in `G` hidden groups of identical effect.
///
/// Each step shows one of `C` contexts, drawn uniformly and independently of everything
/// before; the reward is the mean of the (context, group of the action) pair plus Gaussian
/// noise of standard deviation `noise`. Two actions of the same group are therefore
/// interchangeable in every context, and nothing in the observation says which they are.
///
/// The hidden structure, drawn from `structure_seed`:
/// * groups: action `a` is dealt group `a mod G`, then the labels are shuffled, so every group
///   holds `floor(A/G)` or `ceil(A/G)` actions and none is empty;
/// * means: each context ranks the groups by a random permutation. The best group's mean is
///   [`GroupedBandit::BEST_MEAN`] (1); the others are spaced evenly from 0 up to below
///   `BEST_MEAN - GAP` (the `k`-th worst has `(1 - GAP) * k / (G - 1)`), so the best group
///   beats every other by at least [`GroupedBandit::GAP`] (0.5) and any two groups differ by
///   at least `0.5 / (G - 1)` in every context. With `G = 4`: 1, 1/3, 1/6 and 0.
///
/// An optimal policy therefore earns 1 per step; a uniformly random one, with `G` dividing
/// `A`, earns `1/G + (G - 2) / (4G)` (0.375 with `G = 4`).
///
/// The episode terminates after `episode_length` steps: a finite-horizon task, whose last
/// step has nothing after it to bootstrap from.
///
/// Actions are named `a0 .. a{A-1}`, names that say nothing of the groups; [`Self::groups`]
/// gives them for analysis. Observation: `ObsSpec::Vector { len: C }`, a one-hot of the
/// context.
#[derive(Clone, Debug)]
pub struct GroupedBandit {
    config: GroupedBanditConfig,
    spec: EnvSpec,
    /// The group of each action.
    groups: Vec<usize>,
    /// Mean reward of each (context, group), at `context * G + group`.
    means: Vec<f32>,
    rng: ChaCha8Rng,
    context: usize,
    /// The action of the last step, for the picture; `None` right after a reset.
    last_action: Option<usize>,
    steps: usize,
    episode_score: f64,
    done: bool,
    /// One-hot of `context`, kept up to date in O(1) per step and lent out by `step`.
    obs: Vec<f32>,
}

impl GroupedBandit {
    /// Mean reward of each context's best group.
    pub const BEST_MEAN: f32 = 1.0;
    /// The least by which the best group's mean beats any other group's in the same context.
    pub const GAP: f32 = 0.5;

    /// Draws the hidden structure and builds the environment, already reset with seed 0.
    /// Fails if the config is invalid.
    pub fn try_new(config: GroupedBanditConfig) -> Result<Self> {
        config.validate()?;
        let mut structure = ChaCha8Rng::seed_from_u64(config.structure_seed);
        let groups = deal_groups(config.actions, config.groups, &mut structure);
        let means = rank_groups(config.contexts, config.groups, &mut structure);
        let spec = EnvSpec {
            observation: ObsSpec::Vector { len: config.contexts },
            action_names: (0..config.actions).map(|a| format!("a{a}")).collect(),
        };
        let mut env = Self {
            obs: vec![0.0; config.contexts],
            config,
            spec,
            groups,
            means,
            rng: ChaCha8Rng::seed_from_u64(0),
            context: 0,
            last_action: None,
            steps: 0,
            episode_score: 0.0,
            done: false,
        };
        env.reset(Some(0));
        Ok(env)
    }

    /// Like [`GroupedBandit::try_new`], for configs known to be valid; panics with the
    /// validation message otherwise.
    pub fn new(config: GroupedBanditConfig) -> Self {
        Self::try_new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn config(&self) -> &GroupedBanditConfig {
        &self.config
    }

    /// The hidden group of each action, in `0..G`: what a learned similarity should find.
    pub fn groups(&self) -> &[usize] {
        &self.groups
    }

    /// The context the next step is played in, `0..C`.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The expected reward of `action` in `context`.
    pub fn mean_reward(&self, context: usize, action: usize) -> f32 {
        self.means[context * self.config.groups + self.groups[action]]
    }

    /// The group whose actions earn [`Self::BEST_MEAN`] in `context`.
    pub fn best_group(&self, context: usize) -> usize {
        let row = &self.means[context * self.config.groups..][..self.config.groups];
        row.iter().position(|&m| m == Self::BEST_MEAN).expect("every context ranks one group best")
    }

    /// Steps taken since the last reset.
    pub fn steps(&self) -> usize {
        self.steps
    }

    fn show_context(&mut self, context: usize) {
        self.obs[self.context] = 0.0;
        self.obs[context] = 1.0;
        self.context = context;
    }

    fn draw_context(&mut self) {
        let context = self.rng.random_range(0..self.config.contexts);
        self.show_context(context);
    }
}

/// Action `a` gets group `a mod groups` under a shuffled labelling: every group non-empty and
/// the sizes within one of each other, yet which actions share a group is random.
fn deal_groups(actions: usize, groups: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut dealt: Vec<usize> = (0..actions).map(|a| a % groups).collect();
    dealt.shuffle(rng);
    dealt
}

/// Each context's group means, `(contexts, groups)` row-major: a random ranking of the groups,
/// the best at [`GroupedBandit::BEST_MEAN`] and the rest evenly below `BEST_MEAN - GAP`.
fn rank_groups(contexts: usize, groups: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let ladder: Vec<f32> = (0..groups)
        .map(|rank| match rank {
            0 => GroupedBandit::BEST_MEAN,
            // `groups >= 2` here; the worst (rank G-1) gets 0.
            _ => {
                (GroupedBandit::BEST_MEAN - GroupedBandit::GAP) * (groups - 1 - rank) as f32
                    / (groups - 1) as f32
            }
        })
        .collect();
    let mut means = vec![0.0; contexts * groups];
    let mut order: Vec<usize> = (0..groups).collect();
    for row in means.chunks_exact_mut(groups) {
        order.shuffle(rng);
        for (rank, &group) in order.iter().enumerate() {
            row[group] = ladder[rank];
        }
    }
    means
}

impl Env for GroupedBandit {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.draw_context();
        self.last_action = None;
        self.steps = 0;
        self.episode_score = 0.0;
        self.done = false;
        Obs::Vector(&self.obs)
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        check_action(action, &self.spec);
        assert!(!self.done, "GroupedBandit::step called after the episode ended; call reset first");
        let mean = self.mean_reward(self.context, action);
        // Only consult the generator when there is noise, so noiseless tests see exact means.
        let reward = if self.config.noise > 0.0 {
            mean + self.config.noise * self.rng.sample::<f32, _>(StandardNormal)
        } else {
            mean
        };
        self.last_action = Some(action);
        self.steps += 1;
        self.episode_score += f64::from(reward);
        self.done = self.steps >= self.config.episode_length;
        // The next context is drawn even on the last step: the observation after a terminal
        // step is never acted on, and drawing always keeps the generator's sequence simple.
        self.draw_context();
        Step {
            obs: Obs::Vector(&self.obs),
            reward,
            terminated: self.done,
            truncated: false,
            info: StepInfo::single_frame(reward, self.episode_score, self.done),
        }
    }

    /// Two rows of cells: the contexts, the current one lit, and below them the actions, the
    /// last one taken lit. The groups are not drawn: the picture shows what the agent sees.
    fn render_rgb(&self) -> Option<RgbImage> {
        let (contexts, actions) = (self.config.contexts, self.config.actions);
        Some(RgbImage::from_cells(contexts.max(actions), 2, rgb::CELL_PIXELS, |x, y| {
            let (len, lit) =
                if y == 0 { (contexts, Some(self.context)) } else { (actions, self.last_action) };
            match x {
                _ if x >= len => rgb::WALL,
                _ if Some(x) == lit => {
                    if y == 0 {
                        rgb::GOAL
                    } else {
                        rgb::AGENT
                    }
                }
                _ => rgb::FLOOR,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noiseless(actions: usize, groups: usize, contexts: usize) -> GroupedBandit {
        GroupedBandit::new(GroupedBanditConfig {
            actions,
            groups,
            contexts,
            noise: 0.0,
            ..Default::default()
        })
    }

    fn one_hot(len: usize, i: usize) -> Vec<f32> {
        let mut v = vec![0.0; len];
        v[i] = 1.0;
        v
    }

    fn vector(obs: Obs<'_>) -> Vec<f32> {
        match obs {
            Obs::Vector(v) => v.to_vec(),
            Obs::Pixels(_) => panic!("vector obs"),
        }
    }

    #[test]
    fn default_config_is_documented_values() {
        let c = GroupedBanditConfig::default();
        assert_eq!(
            (c.actions, c.groups, c.contexts, c.noise, c.episode_length, c.structure_seed),
            (16, 4, 8, 1.0, 1, 0)
        );
        let env = GroupedBandit::new(c);
        assert_eq!(env.spec().num_actions(), 16);
        assert_eq!(env.spec().observation, ObsSpec::Vector { len: 8 });
        let names: Vec<String> = (0..16).map(|a| format!("a{a}")).collect();
        assert_eq!(env.spec().action_names, names, "names must not leak the groups");
    }

    #[test]
    fn groups_partition_the_actions_evenly_and_none_is_empty() {
        for (actions, groups) in [(16, 4), (10, 3), (5, 5), (7, 1), (1, 1)] {
            let env = noiseless(actions, groups, 2);
            assert_eq!(env.groups().len(), actions);
            let mut sizes = vec![0usize; groups];
            for &g in env.groups() {
                sizes[g] += 1;
            }
            // Dealt round-robin: sizes floor(A/G) or ceil(A/G), which is at least 1.
            let (floor, ceil) = (actions / groups, actions.div_ceil(groups));
            assert!(sizes.iter().all(|&s| s == floor || s == ceil), "{actions}/{groups}: {sizes:?}");
            assert!(sizes.iter().all(|&s| s >= 1));
        }
    }

    #[test]
    fn each_context_ranks_the_groups_on_the_documented_ladder() {
        let env = noiseless(16, 4, 8);
        for c in 0..8 {
            let mut row: Vec<f32> = env.means[c * 4..][..4].to_vec();
            row.sort_by(f32::total_cmp);
            // (1 - GAP) * k / (G - 1) for k = 0, 1, 2, then the best: 0, 1/6, 1/3, 1.
            assert_eq!(row, [0.0, 0.5 / 3.0, 1.0 / 3.0, 1.0], "context {c}");
            assert_eq!(env.means[c * 4 + env.best_group(c)], 1.0);
        }
        // A single group is always the best one.
        assert_eq!(noiseless(3, 1, 2).means, [1.0, 1.0]);
    }

    #[test]
    fn the_structure_follows_its_own_seed_not_the_episodes() {
        let with_seed = |structure_seed| {
            let mut env = GroupedBandit::new(GroupedBanditConfig { structure_seed, ..Default::default() });
            env.reset(Some(99));
            (env.groups().to_vec(), env.means.clone())
        };
        assert_eq!(with_seed(3), with_seed(3));
        assert_ne!(with_seed(3).0, with_seed(4).0);
        assert_ne!(with_seed(3).1, with_seed(4).1);
        let mut env = GroupedBandit::new(GroupedBanditConfig::default());
        let before = (env.groups().to_vec(), env.means.clone());
        env.reset(Some(12345));
        assert_eq!((env.groups().to_vec(), env.means.clone()), before);
    }

    #[test]
    fn noiseless_rewards_are_the_means_and_the_context_is_shown() {
        let mut env = noiseless(6, 3, 5);
        for t in 0..200 {
            let (context, action) = (env.context(), t % 6);
            let expected = env.mean_reward(context, action);
            let s = env.step(action);
            assert_eq!((s.reward, s.terminated, s.truncated), (expected, true, false), "step {t}");
            assert_eq!(s.info, StepInfo::single_frame(expected, f64::from(expected), true));
            assert_eq!(vector(env.reset(None)), one_hot(5, env.context()));
        }
    }

    #[test]
    fn episodes_last_episode_length_steps_and_sum_their_rewards() {
        let config = GroupedBanditConfig { noise: 0.0, episode_length: 3, ..Default::default() };
        let mut env = GroupedBandit::new(config);
        let mut score = 0.0;
        for t in 1..=3 {
            let expected = env.mean_reward(env.context(), 0);
            let s = env.step(0);
            score += f64::from(expected);
            assert_eq!((s.terminated, s.info.episode_score, s.info.game_over), (t == 3, score, t == 3));
        }
        assert_eq!(env.steps(), 3);
    }

    #[test]
    fn contexts_are_drawn_uniformly() {
        let mut env = noiseless(2, 1, 4);
        let mut counts = [0usize; 4];
        let draws = 40_000;
        for _ in 0..draws {
            counts[env.context()] += 1;
            env.step(0);
            env.reset(None);
        }
        // Binomial sd sqrt(n p (1-p)) ~ 87 around 10_000: 6 sd of slack.
        assert!(counts.iter().all(|&c| c.abs_diff(10_000) < 520), "{counts:?}");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let bad = |c: GroupedBanditConfig| match GroupedBandit::try_new(c).unwrap_err() {
            Error::InvalidConfig { field, .. } => field,
            e => panic!("unexpected {e}"),
        };
        let d = GroupedBanditConfig::default;
        assert_eq!(bad(GroupedBanditConfig { actions: 0, ..d() }), "actions");
        assert_eq!(bad(GroupedBanditConfig { groups: 0, ..d() }), "groups");
        assert_eq!(bad(GroupedBanditConfig { groups: 17, ..d() }), "groups");
        assert_eq!(bad(GroupedBanditConfig { contexts: 0, ..d() }), "contexts");
        assert_eq!(bad(GroupedBanditConfig { noise: -0.1, ..d() }), "noise");
        assert_eq!(bad(GroupedBanditConfig { noise: f32::NAN, ..d() }), "noise");
        assert_eq!(bad(GroupedBanditConfig { episode_length: 0, ..d() }), "episode_length");
        assert!(GroupedBandit::try_new(GroupedBanditConfig { groups: 16, ..d() }).is_ok());
        let message =
            GroupedBandit::try_new(GroupedBanditConfig { groups: 17, ..d() }).unwrap_err().to_string();
        assert!(message.contains("between 1 and actions = 16"), "{message}");
    }

    #[test]
    fn the_picture_lights_the_context_and_the_last_action() {
        let mut env = noiseless(3, 1, 2);
        let cell = |env: &GroupedBandit, x: usize, y: usize| {
            env.render_rgb().unwrap().pixel(x * rgb::CELL_PIXELS + 1, y * rgb::CELL_PIXELS + 1)
        };
        env.reset(Some(0));
        let context = env.context();
        assert_eq!(cell(&env, context, 0), rgb::GOAL);
        assert_eq!(cell(&env, 1 - context, 0), rgb::FLOOR);
        assert_eq!(cell(&env, 2, 0), rgb::WALL, "3 actions but 2 contexts: padding");
        assert!((0..3).all(|a| cell(&env, a, 1) == rgb::FLOOR), "no action yet");
        env.step(2);
        assert_eq!([0, 1, 2].map(|a| cell(&env, a, 1)), [rgb::FLOOR, rgb::FLOOR, rgb::AGENT]);
        let image = env.render_rgb().unwrap();
        assert_eq!((image.width, image.height), (3 * rgb::CELL_PIXELS, 2 * rgb::CELL_PIXELS));
    }

    #[test]
    #[should_panic(expected = "call reset first")]
    fn stepping_after_done_panics() {
        let mut env = noiseless(2, 1, 1);
        env.step(0);
        env.step(0);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn out_of_range_action_panics() {
        noiseless(2, 1, 1).step(2);
    }
}
