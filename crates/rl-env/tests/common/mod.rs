//! Helpers shared by the integration tests: executing a macro-action the way MASP's agents do,
//! and copying observations out of their borrowed buffers.

#![allow(dead_code)] // each test binary uses its own subset

use rl_env::{Env, Obs};

/// The outcome of one macro-action executed open-loop, as a semi-MDP transition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacroOutcome {
    /// Undiscounted sum of the learner rewards of the primitives actually taken.
    pub reward: f32,
    /// Primitives actually taken (`L <= len(macro)`): the macro stops early when the episode ends.
    pub steps: usize,
    pub frames: u32,
    pub terminated: bool,
    pub truncated: bool,
}

impl MacroOutcome {
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// Runs `actions` open-loop from the current state, stopping at the end of the episode.
pub fn run_macro<E: Env>(env: &mut E, actions: &[usize]) -> MacroOutcome {
    let mut out = MacroOutcome { reward: 0.0, steps: 0, frames: 0, terminated: false, truncated: false };
    for &a in actions {
        let step = env.step(a);
        out.reward += step.reward;
        out.steps += 1;
        out.frames += step.info.frames;
        out.terminated = step.terminated;
        out.truncated = step.truncated;
        if step.done() {
            break;
        }
    }
    out
}

/// An owned copy of a vector observation.
pub fn vector(obs: Obs<'_>) -> Vec<f32> {
    match obs {
        Obs::Vector(v) => v.to_vec(),
        Obs::Pixels(_) => panic!("expected a vector observation"),
    }
}

pub fn one_hot(len: usize, i: usize) -> Vec<f32> {
    let mut v = vec![0.0; len];
    v[i] = 1.0;
    v
}
