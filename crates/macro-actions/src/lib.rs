//! Macro-actions for reinforcement learning: the action pool, where macros come from, and
//! their execution as semi-MDP transitions over any [`rl_env::Env`] (MASP design,
//! section 2).
//!
//! * [`Macro`]: a fixed sequence of primitive action indices. Its identity is the sequence;
//!   its name (`UP+UP+FIRE`) is an equivalent identity that survives renumbering.
//! * [`ActionPool`]: primitives first, then macros; lookup by index and identity;
//!   validation that names the offending entry; versioned JSON/TOML files.
//! * Sources, each seeded or deterministic: [`random_macros`], [`mine_ngrams`] (from a
//!   [`TrajectorySet`], recorded with a [`TrajectoryWriter`]), [`explicit_macros`], and
//!   [`corrupt`] for robustness studies.
//! * The executor: [`MacroEnv`] runs one pool action on a wrapped env and reports the
//!   discounted reward, the raw reward, `L`, the frames, and the bootstrap discount
//!   `gamma^L` ([`MacroOutcome`]); [`MacroVecEnv`] runs N copies in parallel.
//! * [`SimilarityMatrix`]: structural similarity between actions ([`Structural`]: edit
//!   distance, shared prefix, primitive-multiset overlap) and re-alignment by identity.
//!
//! Everything fallible returns this crate's [`Error`], which names what to fix.
//!
//! ```
//! use macro_actions::{
//!     random_macros, ActionPool, ExecutorConfig, MacroEnv, RandomConfig, SimilarityMatrix, Structural,
//! };
//! use rl_env::{Corridor, CorridorConfig, Env};
//!
//! // A pool of the corridor's 4 primitives and 16 random macros of 3 to 8 steps.
//! let env = Corridor::new(CorridorConfig::default());
//! let names = &env.spec().action_names;
//! let macros = random_macros(&RandomConfig { count: 16, ..Default::default() }, names, 42)?;
//! let pool = ActionPool::for_env(env.spec(), macros)?;
//! assert_eq!(pool.len(), 20);
//!
//! // Pool files are versioned and round-trip.
//! assert_eq!(ActionPool::from_toml(&pool.to_toml())?, pool);
//!
//! // Step macro 0 (pool action 4) as one semi-MDP transition.
//! let mut menv = MacroEnv::new(env, pool.clone(), ExecutorConfig::default())?;
//! menv.reset(Some(0));
//! let step = menv.step_macro(4);
//! let o = step.outcome;
//! assert_eq!(o.steps, pool.actions(4).len());
//! assert_eq!(o.info.frames as usize, o.steps); // the corridor spends one frame a step
//! assert!((o.discount - 0.99f32.powi(o.steps as i32)).abs() < 1e-6);
//!
//! // A structural prior for MASP's similarity matrix, A x A.
//! let prior = SimilarityMatrix::structural(&pool, Structural::EditDistance);
//! assert_eq!((prior.len(), prior.get(7, 7)), (20, 1.0));
//! # Ok::<(), macro_actions::Error>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod executor;
mod macro_action;
mod macro_vec_env;
mod pool;
mod similarity;
mod sources;
mod trajectory;

pub use error::{Error, Result};
pub use executor::{ExecutorConfig, MacroEnv, MacroOutcome, MacroStep};
pub use macro_action::{ActionRef, Macro, MacroSpec, NAME_SEPARATOR};
pub use macro_vec_env::MacroVecEnv;
pub use pool::{ActionPool, POOL_FORMAT_VERSION};
pub use similarity::{edit_distance, SimilarityMatrix, Structural};
pub use sources::corruption::{corrupt, Corruption, CorruptionConfig};
pub use sources::explicit::{explicit_macros, ExplicitConfig};
pub use sources::ngram::{mine_ngrams, MinedMacro, NgramConfig};
pub use sources::random::{random_macros, RandomConfig};
pub use sources::MAX_MACRO_LEN;
pub use trajectory::{Trajectory, TrajectorySet, TrajectoryWriter, TRAJECTORY_FORMAT_VERSION};
