//! `masp record`: plays whole games with a policy and writes the primitive actions taken, as
//! a trajectory file (macro-actions' [`TrajectoryWriter`] format) for `masp mine-macros`.
//!
//! * [`Policy::Random`]: uniform over the env's primitive actions, seeded by `run.seed`.
//! * [`Policy::Checkpoint`]: a trained run's evaluation policy (noise off, the config's
//!   `eval_epsilon`). A pool action that is a macro is recorded as the primitives it
//!   executed: the first `outcome.steps` of its sequence (fewer than all when the game
//!   ended inside it).
//!
//! Games are played one after another in one env copy under the protocol's evaluation
//! settings (whole games, no reward clipping), and each one's return is its raw game score.
//!
//! ```no_run
//! use std::path::Path;
//! use masp_runner::{record, Policy, RunConfig};
//! let config = RunConfig::load(&["configs/toy.toml".into()], &[])?;
//! let summary = record(&config, &Policy::Random, 20, Path::new("corridor.jsonl"))?;
//! println!("{} games, {} primitive actions", summary.episodes, summary.actions);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use macro_actions::TrajectoryWriter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::compose;
use crate::config::RunConfig;
use crate::eval::load_agent;

/// Env seeds of recording start here (plus the run seed), apart from training's and
/// evaluation's, so recorded games are not the ones an evaluation plays.
const RECORD_SEED_OFFSET: u64 = 2_000_003;

/// Who plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Uniform over the primitive actions.
    Random,
    /// The evaluation policy of this run folder's last checkpoint; `config` must be the
    /// run's own (e.g. [`crate::resume_config`]).
    Checkpoint(PathBuf),
}

/// What was recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSummary {
    pub episodes: usize,
    /// Primitive actions over all episodes.
    pub actions: usize,
    /// Mean raw game score of the episodes.
    pub mean_return: f64,
}

/// Plays `episodes` whole games of `config`'s env with `policy` and writes their primitive
/// actions to `out` (created or replaced).
pub fn record(config: &RunConfig, policy: &Policy, episodes: usize, out: &Path) -> Result<RecordSummary> {
    anyhow::ensure!(episodes > 0, "record at least 1 episode");
    let (mut agent, pool) = match policy {
        Policy::Random => {
            let base = compose::base_envs(config, true, 1)?;
            (None, compose::action_pool(config, base[0].as_ref())?)
        }
        Policy::Checkpoint(run) => {
            let (mut agent, pool) = load_agent(run, config)?;
            agent.set_eval(true);
            (Some(agent), pool)
        }
    };
    let mut rng = StdRng::seed_from_u64(config.run.seed);
    let mut venv = compose::run_env(config, &pool, true, 1)?;
    venv.reset(Some(config.run.seed + RECORD_SEED_OFFSET));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut writer = TrajectoryWriter::create(out, pool.primitive_names())?;
    let (mut returns, mut actions) = (Vec::with_capacity(episodes), 0);
    while returns.len() < episodes {
        let action = match &mut agent {
            Some(agent) => agent.act(venv.obs()).context("acting")?[0],
            None => rng.random_range(0..pool.num_primitives()),
        };
        venv.step(&[action]);
        let o = &venv.outcomes()[0];
        let executed = &pool.actions(action)[..o.steps];
        writer.extend(executed);
        actions += executed.len();
        if o.done() {
            writer.end_episode(o.info.episode_score)?;
            returns.push(o.info.episode_score);
        }
    }
    writer.finish()?;
    Ok(RecordSummary { episodes, actions, mean_return: returns.iter().sum::<f64>() / episodes as f64 })
}
