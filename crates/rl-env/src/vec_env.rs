//! `VecEnv`: N copies of an environment stepped in parallel on rayon, writing their
//! observations into one contiguous buffer of shape `(n, obs_len)`.
//!
//! Episodes reset automatically in the same `step` call that ends them (gymnasium's
//! "same-step" autoreset): the buffer then holds the new episode's first observation, and the
//! last observation of the finished episode, which a learner needs to bootstrap a truncated
//! episode, is kept in `final_obs(i)`. After construction no call allocates.
//!
//! ```
//! use rl_env::{Corridor, CorridorConfig, VecEnv};
//! let mut venv = VecEnv::new((0..4).map(|_| Corridor::new(CorridorConfig::default())).collect());
//! venv.reset(Some(1));
//! venv.step(&[1, 1, 0, 1]);
//! assert_eq!(venv.results().len(), 4);
//! ```

use rayon::prelude::*;

use crate::env::{Env, StepInfo};
use crate::spec::{EnvSpec, Obs, ObsSpec};

/// What one copy returned from the last `VecEnv::step`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VecStep {
    pub reward: f32,
    pub terminated: bool,
    pub truncated: bool,
    pub info: StepInfo,
}

impl VecStep {
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

#[derive(Debug)]
enum Buffer {
    Pixels(Vec<u8>),
    Vector(Vec<f32>),
}

impl Buffer {
    fn zeros(spec: &ObsSpec, n: usize) -> Self {
        match spec {
            ObsSpec::Pixels { .. } => Buffer::Pixels(vec![0; n * spec.len()]),
            ObsSpec::Vector { .. } => Buffer::Vector(vec![0.0; n * spec.len()]),
        }
    }

    fn as_obs(&self) -> Obs<'_> {
        match self {
            Buffer::Pixels(p) => Obs::Pixels(p),
            Buffer::Vector(v) => Obs::Vector(v),
        }
    }
}

/// An element type an observation can hold; lets one generic loop fill either buffer.
trait Element: Copy + Send + Sync {
    fn of<'a>(obs: Obs<'a>) -> &'a [Self];
}

impl Element for u8 {
    fn of<'a>(obs: Obs<'a>) -> &'a [u8] {
        match obs {
            Obs::Pixels(p) => p,
            Obs::Vector(_) => panic!("environment declared pixel observations but returned a vector"),
        }
    }
}

impl Element for f32 {
    fn of<'a>(obs: Obs<'a>) -> &'a [f32] {
        match obs {
            Obs::Vector(v) => v,
            Obs::Pixels(_) => panic!("environment declared vector observations but returned pixels"),
        }
    }
}

/// N environments of one kind, stepped together.
pub struct VecEnv<E: Env> {
    envs: Vec<E>,
    spec: EnvSpec,
    obs: Buffer,
    final_obs: Buffer,
    results: Vec<VecStep>,
}

impl<E: Env> VecEnv<E> {
    /// Panics if `envs` is empty or the copies disagree on their spec.
    pub fn new(envs: Vec<E>) -> Self {
        assert!(!envs.is_empty(), "a VecEnv needs at least one environment");
        let spec = envs[0].spec().clone();
        assert!(
            envs.iter().all(|e| *e.spec() == spec),
            "all environments of a VecEnv must have the same spec"
        );
        let n = envs.len();
        Self {
            obs: Buffer::zeros(&spec.observation, n),
            final_obs: Buffer::zeros(&spec.observation, n),
            results: vec![VecStep::default(); n],
            envs,
            spec,
        }
    }

    pub fn len(&self) -> usize {
        self.envs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// The spec of one copy.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Resets every copy; copy `i` gets seed `seed + i` (wrapping), so copies differ but the batch
    /// repeats.
    pub fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        let obs_len = self.spec.observation.len();
        match &mut self.obs {
            Buffer::Pixels(buf) => reset_into(&mut self.envs, buf, obs_len, seed),
            Buffer::Vector(buf) => reset_into(&mut self.envs, buf, obs_len, seed),
        }
        self.results.fill(VecStep::default());
        self.obs.as_obs()
    }

    /// Steps copy `i` with `actions[i]`, all copies in parallel. Panics if the lengths differ.
    pub fn step(&mut self, actions: &[usize]) {
        assert_eq!(actions.len(), self.envs.len(), "one action per environment");
        let obs_len = self.spec.observation.len();
        match (&mut self.obs, &mut self.final_obs) {
            (Buffer::Pixels(o), Buffer::Pixels(f)) => {
                step_into(&mut self.envs, actions, o, f, &mut self.results, obs_len)
            }
            (Buffer::Vector(o), Buffer::Vector(f)) => {
                step_into(&mut self.envs, actions, o, f, &mut self.results, obs_len)
            }
            _ => unreachable!("both buffers are built from the same spec"),
        }
    }

    /// All current observations, `(n, obs_len)` row-major.
    pub fn obs(&self) -> Obs<'_> {
        self.obs.as_obs()
    }

    /// The last observation of copy `i`'s finished episode; meaningful only when
    /// `results()[i].done()`.
    pub fn final_obs(&self, i: usize) -> Obs<'_> {
        let len = self.spec.observation.len();
        match &self.final_obs {
            Buffer::Pixels(p) => Obs::Pixels(&p[i * len..(i + 1) * len]),
            Buffer::Vector(v) => Obs::Vector(&v[i * len..(i + 1) * len]),
        }
    }

    /// What each copy returned from the last `step`.
    pub fn results(&self) -> &[VecStep] {
        &self.results
    }
}

fn reset_into<E: Env, T: Element>(envs: &mut [E], buf: &mut [T], obs_len: usize, seed: Option<u64>) {
    envs.par_iter_mut().zip(buf.par_chunks_mut(obs_len)).enumerate().for_each(|(i, (env, out))| {
        out.copy_from_slice(T::of(env.reset(seed.map(|s| s.wrapping_add(i as u64)))));
    });
}

fn step_into<E: Env, T: Element>(
    envs: &mut [E],
    actions: &[usize],
    obs: &mut [T],
    final_obs: &mut [T],
    results: &mut [VecStep],
    obs_len: usize,
) {
    envs.par_iter_mut()
        .zip(actions.par_iter())
        .zip(obs.par_chunks_mut(obs_len))
        .zip(final_obs.par_chunks_mut(obs_len))
        .zip(results.par_iter_mut())
        .for_each(|((((env, &action), out), final_out), result)| {
            let step = env.step(action);
            *result = VecStep {
                reward: step.reward,
                terminated: step.terminated,
                truncated: step.truncated,
                info: step.info,
            };
            if result.done() {
                final_out.copy_from_slice(T::of(step.obs));
                out.copy_from_slice(T::of(env.reset(None)));
            } else {
                out.copy_from_slice(T::of(step.obs));
            }
        });
}
