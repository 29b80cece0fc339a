//! Evaluation: raw game scores of the agent's policy over whole games, under the protocol's
//! evaluation settings (no reward clipping, no life-loss terminal), noise off.

use std::path::Path;

use anyhow::{Context, Result};
use macro_actions::ActionPool;
use rainbow::Agent;
use serde::{Deserialize, Serialize};

use crate::compose;
use crate::config::{EnvConfig, RunConfig};
use crate::run_dir;

/// Env seeds of evaluation start here (plus the run seed), apart from training's.
const EVAL_SEED_OFFSET: u64 = 1_000_003;

/// What `eval.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    pub game: String,
    /// The Atari protocol whose evaluation settings were used (none for toy envs).
    pub protocol: Option<String>,
    pub agent: String,
    pub seed: u64,
    /// Environment frames the agent had trained on.
    pub frames_trained: u64,
    pub episodes: usize,
    /// Raw game score of each episode.
    pub scores: Vec<f64>,
    pub mean: f64,
    /// Standard deviation over episodes (population).
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Environment frames the evaluation took.
    pub eval_frames: u64,
}

/// Plays `episodes` whole games with `agent` in evaluation mode and reports raw scores.
/// The agent is put back in training mode afterwards.
pub fn evaluate(
    config: &RunConfig,
    agent: &mut Agent,
    pool: &ActionPool,
    episodes: usize,
) -> Result<EvalReport> {
    anyhow::ensure!(episodes > 0, "evaluate at least 1 episode");
    let n = episodes.min(config.run.num_envs.max(1));
    let mut venv = compose::run_env(config, pool, true, n)?;
    venv.reset(Some(config.run.seed + EVAL_SEED_OFFSET));
    // Copy i plays quota[i] games, so short games do not crowd out long ones.
    let quota: Vec<usize> = (0..n).map(|i| episodes / n + usize::from(i < episodes % n)).collect();
    let mut played = vec![0usize; n];
    let mut scores = Vec::with_capacity(episodes);
    let mut eval_frames = 0u64;
    agent.set_eval(true);
    let result = (|| -> Result<()> {
        while played.iter().zip(&quota).any(|(p, q)| p < q) {
            let actions = agent.act(venv.obs()).context("acting in evaluation")?.to_vec();
            venv.step(&actions);
            for (i, o) in venv.outcomes().iter().enumerate() {
                if played[i] >= quota[i] {
                    continue;
                }
                eval_frames += u64::from(o.info.frames);
                if o.done() {
                    scores.push(o.info.episode_score);
                    played[i] += 1;
                }
            }
        }
        Ok(())
    })();
    agent.set_eval(false);
    result?;
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
    Ok(EvalReport {
        game: config.env.game_name(),
        protocol: match &config.env {
            EnvConfig::Atari { protocol, .. } => Some(protocol.name().into()),
            _ => None,
        },
        agent: config.run.name.clone(),
        seed: config.run.seed,
        frames_trained: agent.counters().frames,
        episodes: scores.len(),
        min: scores.iter().copied().fold(f64::INFINITY, f64::min),
        max: scores.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        scores,
        mean,
        std,
        eval_frames,
    })
}

/// The agent of `run`'s last checkpoint and the action pool of `config` (the run's), checked
/// to have the same actions.
pub(crate) fn load_agent(run: &Path, config: &RunConfig) -> Result<(Agent, ActionPool)> {
    let checkpoint = run_dir::find_checkpoint(run)?;
    // The agent only acts: the replay (gigabytes on Atari) is not read.
    let agent = Agent::load_without_replay(&checkpoint)
        .with_context(|| format!("loading the checkpoint {}", checkpoint.display()))?;
    let base = compose::base_envs(config, true, 1)?;
    let pool = compose::action_pool(config, base[0].as_ref())?;
    anyhow::ensure!(
        pool.len() == agent.num_actions(),
        "the checkpoint has {} actions but the config's pool has {}: was the pool file changed?",
        agent.num_actions(),
        pool.len()
    );
    Ok((agent, pool))
}

/// Evaluates the last checkpoint of the run folder `run` for `episodes` games (default: the
/// config's `run.eval_episodes`) and writes `eval.json` there.
pub fn evaluate_run(run: &Path, episodes: Option<usize>) -> Result<EvalReport> {
    let config = RunConfig::read_resolved(&run.join(run_dir::CONFIG))?;
    let (mut agent, pool) = load_agent(run, &config)?;
    let report = evaluate(&config, &mut agent, &pool, episodes.unwrap_or(config.run.eval_episodes).max(1))?;
    run_dir::write_json(&run.join(run_dir::EVAL), &report)?;
    Ok(report)
}
