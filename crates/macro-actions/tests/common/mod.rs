//! A scripted environment for executor tests: every reward, frame count, life loss and
//! episode end is fixed in advance, so a test can compute what a macro should report
//! directly from the script.

#![allow(dead_code)] // each test binary uses its own subset

use rl_env::{check_action, Env, EnvSpec, Obs, ObsSpec, Step, StepInfo};

/// How the scripted episode ends, on step `at` (0-based) of the episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    Terminated { at: usize },
    Truncated { at: usize },
}

#[derive(Clone, Debug)]
pub struct Script {
    spec: EnvSpec,
    /// Learner reward of step `t`; the raw reward is ten times it, so the two sums differ.
    pub rewards: Vec<f32>,
    pub frames: Vec<u32>,
    pub life_lost: Vec<bool>,
    pub end: Option<End>,
    /// Report `terminated` at a life loss, as an env with episodic lives does.
    pub terminate_on_life_loss: bool,
    t: usize,
    lives: i32,
    score: f64,
    /// `[steps since reset, last action, resets so far]`.
    obs: [f32; 3],
}

pub const NUM_ACTIONS: usize = 3;

impl Script {
    /// A script long enough for `len` steps; every list must have at least `len` entries.
    pub fn new(rewards: Vec<f32>, frames: Vec<u32>, life_lost: Vec<bool>, end: Option<End>) -> Self {
        assert!(rewards.len() == frames.len() && frames.len() == life_lost.len());
        Self {
            spec: EnvSpec {
                observation: ObsSpec::Vector { len: 3 },
                action_names: (0..NUM_ACTIONS).map(|a| format!("A{a}")).collect(),
            },
            rewards,
            frames,
            life_lost,
            end,
            terminate_on_life_loss: false,
            t: 0,
            lives: 100,
            score: 0.0,
            obs: [0.0; 3],
        }
    }

    /// Steps since the last reset.
    pub fn t(&self) -> usize {
        self.t
    }
}

impl Env for Script {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, _seed: Option<u64>) -> Obs<'_> {
        self.t = 0;
        self.score = 0.0;
        self.obs = [0.0, 0.0, self.obs[2] + 1.0];
        Obs::Vector(&self.obs)
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        check_action(action, &self.spec);
        let t = self.t;
        assert!(t < self.rewards.len(), "the script is too short");
        self.t += 1;
        let reward = self.rewards[t];
        let raw = 10.0 * reward;
        self.score += f64::from(raw);
        let life_lost = self.life_lost[t];
        self.lives -= i32::from(life_lost);
        self.obs = [self.t as f32, action as f32, self.obs[2]];
        let terminated = matches!(self.end, Some(End::Terminated { at }) if at == t)
            || (life_lost && self.terminate_on_life_loss);
        let truncated = !terminated && matches!(self.end, Some(End::Truncated { at }) if at == t);
        Step {
            obs: Obs::Vector(&self.obs),
            reward,
            terminated,
            truncated,
            info: StepInfo {
                raw_reward: raw,
                lives: self.lives,
                life_lost,
                frames: self.frames[t],
                episode_score: self.score,
                // The script's end is the game's; a life lost ends an episode at most.
                game_over: matches!(self.end, Some(End::Terminated { at } | End::Truncated { at }) if at == t),
            },
        }
    }
}

pub fn vector(obs: Obs<'_>) -> Vec<f32> {
    match obs {
        Obs::Vector(v) => v.to_vec(),
        Obs::Pixels(_) => panic!("expected a vector observation"),
    }
}
