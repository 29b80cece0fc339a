//! `MacroVecEnv`: N executors stepped in parallel, each copy running its own pool action.
//!
//! How it reports each copy's transition is documented on [`MacroVecEnv`].
//!
//! ```
//! use macro_actions::{ActionPool, ExecutorConfig, Macro, MacroVecEnv};
//! use rl_env::{Corridor, CorridorConfig, Env};
//! let envs: Vec<Corridor> = (0..3).map(|_| Corridor::new(CorridorConfig::default())).collect();
//! let pool = ActionPool::for_env(envs[0].spec(), vec![Macro::new(vec![Corridor::RIGHT; 4])])?;
//! let mut venv = MacroVecEnv::new(envs, pool, ExecutorConfig::default())?;
//! venv.reset(Some(0));
//! venv.step(&[4, Corridor::RIGHT, 4]);
//! let steps: Vec<usize> = venv.outcomes().iter().map(|o| o.steps).collect();
//! assert_eq!(steps, [4, 1, 4]);
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::sync::Arc;

use rl_env::{Env, EnvSpec, Obs, VecEnv, VecStep};

use crate::error::Result;
use crate::executor::{ExecutorConfig, MacroEnv, MacroOutcome};
use crate::pool::ActionPool;

/// N copies of an environment, each stepping one pool action per call.
///
/// It is an [`rl_env::VecEnv`] of [`MacroEnv`]s, so it inherits rayon parallelism, the one
/// contiguous `(n, obs_len)` observation buffer and same-step autoreset (`final_obs(i)`
/// holds the last observation of copy `i`'s finished episode: the state a truncated
/// transition bootstraps from). What `VecStep` cannot carry, each copy's
/// [`MacroOutcome`] with its discount and `L`, is gathered into [`MacroVecEnv::outcomes`]
/// after every step.
///
/// Copies run for different numbers of frames in one call (a primitive takes one step, a
/// macro up to its length); frame budgets should sum `outcomes()[i].info.frames`.
pub struct MacroVecEnv<E: Env> {
    venv: VecEnv<MacroEnv<E>>,
    outcomes: Vec<MacroOutcome>,
}

impl<E: Env> MacroVecEnv<E> {
    /// Wraps every copy in a [`MacroEnv`] sharing one pool. Fails as [`MacroEnv::new`]
    /// does; panics if `envs` is empty or the copies disagree on their spec, as
    /// [`VecEnv::new`] does.
    pub fn new(envs: Vec<E>, pool: impl Into<Arc<ActionPool>>, config: ExecutorConfig) -> Result<Self> {
        let pool = pool.into();
        let envs = envs
            .into_iter()
            .map(|e| MacroEnv::new(e, Arc::clone(&pool), config.clone()))
            .collect::<Result<Vec<_>>>()?;
        let n = envs.len();
        Ok(Self { venv: VecEnv::new(envs), outcomes: vec![MacroOutcome::default(); n] })
    }

    pub fn len(&self) -> usize {
        self.venv.len()
    }

    pub fn is_empty(&self) -> bool {
        self.venv.is_empty()
    }

    /// The spec of one copy: the wrapped observations, one action per pool entry.
    pub fn spec(&self) -> &EnvSpec {
        self.venv.spec()
    }

    pub fn pool(&self) -> &Arc<ActionPool> {
        self.venv.envs()[0].pool()
    }

    /// Resets every copy (copy `i` with `seed + i`, as [`VecEnv::reset`]) and clears the
    /// outcomes.
    pub fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        self.outcomes.fill(MacroOutcome::default());
        self.venv.reset(seed)
    }

    /// Copy `i` runs pool action `actions[i]`, all in parallel. Panics if the lengths differ
    /// or an action is not in the pool.
    pub fn step(&mut self, actions: &[usize]) {
        self.venv.step(actions);
        for (out, env) in self.outcomes.iter_mut().zip(self.venv.envs()) {
            *out = *env.last();
        }
    }

    /// All current observations, `(n, obs_len)` row-major; a finished copy's row already
    /// holds its next episode's first observation.
    pub fn obs(&self) -> Obs<'_> {
        self.venv.obs()
    }

    /// The last observation of copy `i`'s finished episode; meaningful only when
    /// `outcomes()[i].done()`.
    pub fn final_obs(&self, i: usize) -> Obs<'_> {
        self.venv.final_obs(i)
    }

    /// Each copy's transition from the last `step`: discounted reward, discount, `L`,
    /// frames and the rest.
    pub fn outcomes(&self) -> &[MacroOutcome] {
        &self.outcomes
    }

    /// The same steps as `VecEnv` reports them (`reward` is the discounted reward).
    pub fn results(&self) -> &[VecStep] {
        self.venv.results()
    }

    pub fn envs(&self) -> &[MacroEnv<E>] {
        self.venv.envs()
    }
}
