//! Generic wrappers that change one aspect of any [`Env`]: [`TimeLimit`] cuts episodes off
//! after a number of steps, [`ClipReward`] clips the learner's reward to `[-1, 1]`.
//!
//! Both keep the inner observation buffer (nothing is copied) and the inner spec.
//!
//! ```
//! use rl_env::{ClipReward, Corridor, CorridorConfig, Env, TimeLimit};
//! let mut env = ClipReward::new(TimeLimit::new(Corridor::new(CorridorConfig::default()), 3));
//! env.reset(Some(0));
//! env.step(Corridor::RIGHT);
//! env.step(Corridor::RIGHT);
//! let last = env.step(Corridor::RIGHT);
//! assert!(last.truncated && !last.terminated);
//! ```

use crate::env::{Env, Step};
use crate::rgb::RgbImage;
use crate::spec::{EnvSpec, Obs};

/// Truncates an episode after `max_steps` calls to `step` since the last reset.
///
/// A step on which the inner env terminates stays terminated, not truncated, even on the
/// last allowed step: termination is the MDP's own verdict and must not be bootstrapped
/// through. The inner env's own truncations pass through.
#[derive(Clone, Debug)]
pub struct TimeLimit<E> {
    inner: E,
    max_steps: usize,
    elapsed: usize,
}

impl<E: Env> TimeLimit<E> {
    /// Panics if `max_steps` is 0, which would end every episode before it began.
    pub fn new(inner: E, max_steps: usize) -> Self {
        assert!(max_steps > 0, "TimeLimit::new: max_steps must be at least 1");
        Self { inner, max_steps, elapsed: 0 }
    }

    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    /// Steps taken since the last reset.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }

    pub fn inner(&self) -> &E {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn spec(&self) -> &EnvSpec {
        self.inner.spec()
    }

    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        self.elapsed = 0;
        self.inner.reset(seed)
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        // The inner env may not notice a step past our limit, since its own episode goes on.
        assert!(
            self.elapsed < self.max_steps,
            "TimeLimit::step called after the time limit; call reset first"
        );
        self.elapsed += 1;
        let limit_reached = self.elapsed >= self.max_steps;
        let mut step = self.inner.step(action);
        step.truncated |= limit_reached && !step.terminated;
        step
    }

    fn render_rgb(&self) -> Option<RgbImage> {
        self.inner.render_rgb()
    }
}

/// Clips the reward the learner sees to `[-1, 1]`, as the DQN family does on Atari; the
/// unclipped reward stays in `info.raw_reward` and `info.episode_score`.
#[derive(Clone, Debug)]
pub struct ClipReward<E> {
    inner: E,
}

impl<E: Env> ClipReward<E> {
    pub fn new(inner: E) -> Self {
        Self { inner }
    }

    pub fn inner(&self) -> &E {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E: Env> Env for ClipReward<E> {
    fn spec(&self) -> &EnvSpec {
        self.inner.spec()
    }

    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        self.inner.reset(seed)
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        let mut step = self.inner.step(action);
        step.reward = step.reward.clamp(-1.0, 1.0);
        step
    }

    fn render_rgb(&self) -> Option<RgbImage> {
        self.inner.render_rgb()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{check_action, StepInfo};
    use crate::spec::ObsSpec;

    /// Pays `rewards[t]` on step `t`, terminates after the last one; obs is `[t]`.
    struct Script {
        spec: EnvSpec,
        rewards: Vec<f32>,
        t: usize,
        obs: [f32; 1],
    }

    impl Script {
        fn new(rewards: &[f32]) -> Self {
            Self {
                spec: EnvSpec { observation: ObsSpec::Vector { len: 1 }, action_names: vec!["A".into()] },
                rewards: rewards.to_vec(),
                t: 0,
                obs: [0.0],
            }
        }
    }

    impl Env for Script {
        fn spec(&self) -> &EnvSpec {
            &self.spec
        }
        fn reset(&mut self, _seed: Option<u64>) -> Obs<'_> {
            self.t = 0;
            self.obs = [0.0];
            Obs::Vector(&self.obs)
        }
        fn step(&mut self, action: usize) -> Step<'_> {
            check_action(action, &self.spec);
            let r = self.rewards[self.t];
            self.t += 1;
            self.obs = [self.t as f32];
            let score = self.rewards[..self.t].iter().map(|&r| f64::from(r)).sum();
            let terminated = self.t == self.rewards.len();
            Step {
                obs: Obs::Vector(&self.obs),
                reward: r,
                terminated,
                truncated: false,
                info: StepInfo::single_frame(r, score, terminated),
            }
        }
    }

    #[test]
    fn clip_reward_clips_learner_reward_only() {
        let rewards = [5.0, -3.0, 0.25, -1.0, 1.0, -0.5];
        let mut env = ClipReward::new(Script::new(&rewards));
        env.reset(None);
        let mut score = 0.0;
        for (t, &raw) in rewards.iter().enumerate() {
            let s = env.step(0);
            score += f64::from(raw);
            assert_eq!(s.reward, [1.0, -1.0, 0.25, -1.0, 1.0, -0.5][t]);
            assert_eq!(s.info.raw_reward, raw);
            assert_eq!(s.info.episode_score, score);
            assert_eq!(s.obs, Obs::Vector(&[(t + 1) as f32]));
        }
    }

    #[test]
    fn time_limit_truncates_on_the_nth_step_and_resets_the_count() {
        let mut env = TimeLimit::new(Script::new(&[0.0; 10]), 3);
        for _ in 0..2 {
            env.reset(None);
            assert!(!env.step(0).done());
            assert!(!env.step(0).done());
            let s = env.step(0);
            assert!(s.truncated && !s.terminated);
            assert_eq!(env.elapsed_steps(), 3);
        }
    }

    #[test]
    fn time_limit_keeps_termination_on_the_last_step() {
        let mut env = TimeLimit::new(Script::new(&[0.0, 0.0, 7.0]), 3);
        env.step(0);
        env.step(0);
        let s = env.step(0);
        assert!(s.terminated && !s.truncated);
        assert_eq!(s.reward, 7.0);
    }

    #[test]
    fn time_limit_longer_than_the_episode_changes_nothing() {
        let mut env = TimeLimit::new(Script::new(&[1.0, 2.0]), 100);
        assert_eq!(env.step(0).reward, 1.0);
        let s = env.step(0);
        assert!(s.terminated && !s.truncated);
    }

    #[test]
    #[should_panic(expected = "call reset first")]
    fn time_limit_refuses_to_step_past_the_limit() {
        let mut env = TimeLimit::new(Script::new(&[0.0; 10]), 1);
        env.step(0);
        env.step(0);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn time_limit_of_zero_is_rejected() {
        TimeLimit::new(Script::new(&[0.0]), 0);
    }
}
