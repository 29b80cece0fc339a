//! Evaluation: raw game scores of the agent's policy over whole games, under the protocol's
//! evaluation settings (no reward clipping, no life-loss terminal), noise off; played on
//! `run.eval_envs` env copies at once, and optionally filmed ([`evaluate_filmed`]). Beside
//! it, training's noisy policy on the same settings ([`EvalPolicy::Noisy`]), to compare an
//! evaluation with the training returns.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use macro_actions::ActionPool;
use rainbow::Agent;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rl_env::Env;
use serde::{Deserialize, Serialize};

use crate::compose;
use crate::config::{EnvConfig, RunConfig};
use crate::run_dir;
use crate::video::Recording;

/// Env seeds of evaluation start here (plus the run seed), apart from training's.
const EVAL_SEED_OFFSET: u64 = 1_000_003;

/// The policy an evaluation plays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EvalPolicy {
    /// The protocol's: the noise off, `eval_epsilon`-greedy ([`Agent::act_eval`]). What
    /// `eval.json` and every report hold.
    #[default]
    Greedy,
    /// Training's: a fresh noise sample every step, greedy in it, with training's epsilon
    /// ([`Agent::act_eval_noisy`]); `masp eval --policy noisy` writes it to
    /// `eval-noisy.json`, never to `eval.json`.
    Noisy,
}

/// What `eval.json` (and, for the noisy policy, `eval-noisy.json`) holds.
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
    /// Raw game score of each episode: env copy 0's games, then copy 1's, ...
    pub scores: Vec<f64>,
    pub mean: f64,
    /// Standard deviation over episodes (population).
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Environment frames the evaluation took.
    pub eval_frames: u64,
    /// The commit of the binary that evaluated ([`run_dir::COMMIT`]); absent from the
    /// reports of binaries older than the field.
    #[serde(default)]
    pub commit: Option<String>,
    /// The policy played; greedy in the reports of binaries older than the field.
    #[serde(default)]
    pub policy: EvalPolicy,
}

/// Where [`evaluate_filmed`] writes its videos, and how many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Videos {
    pub dir: PathBuf,
    /// The first `count` games, in the order of the report's scores.
    pub count: usize,
}

/// Plays `episodes` whole games with `agent` in evaluation mode and reports raw scores.
///
/// The games are spread over `min(episodes, run.eval_envs)` env copies seeded from the run
/// seed, with one batched forward pass per step ([`Agent::act_eval`], its epsilon draws from
/// a generator of the evaluation's own), so the scores depend only on the agent, the seed
/// and the number of copies. Copy `i` plays a fixed quota of games, so short games do not
/// crowd out long ones; `scores` lists copy 0's games, then copy 1's, and so on.
///
/// The agent is left exactly as it was: still in training mode if it was, with its noise
/// sample, RNG streams, counters and replay untouched, so training can call this at a
/// checkpoint and carry on as if it had not.
pub fn evaluate(
    config: &RunConfig,
    agent: &mut Agent,
    pool: &ActionPool,
    episodes: usize,
) -> Result<EvalReport> {
    evaluate_as(config, agent, pool, episodes, EvalPolicy::Greedy)
}

/// [`evaluate`] with `policy`.
pub fn evaluate_as(
    config: &RunConfig,
    agent: &mut Agent,
    pool: &ActionPool,
    episodes: usize,
    policy: EvalPolicy,
) -> Result<EvalReport> {
    Ok(play(config, agent, pool, episodes, None, policy)?.0)
}

/// [`evaluate`], writing the first `videos.count` games as animated GIFs of the env's colour
/// screen, one frame per primitive step (module `video`); returns their paths too.
pub fn evaluate_filmed(
    config: &RunConfig,
    agent: &mut Agent,
    pool: &ActionPool,
    episodes: usize,
    videos: &Videos,
) -> Result<(EvalReport, Vec<PathBuf>)> {
    check_video_count(videos.count, episodes)?;
    std::fs::create_dir_all(&videos.dir).with_context(|| format!("creating {}", videos.dir.display()))?;
    play(config, agent, pool, episodes, Some(videos), EvalPolicy::Greedy)
}

fn check_video_count(videos: usize, episodes: usize) -> Result<()> {
    anyhow::ensure!(
        videos <= episodes,
        "{videos} videos asked of an evaluation of {episodes} episodes: ask for at most {episodes}, \
         or for more episodes"
    );
    Ok(())
}

/// Copy `i`'s quota of games when `episodes` are spread over `n` copies: as even as can be,
/// the first copies taking one more.
fn quotas(episodes: usize, n: usize) -> Vec<usize> {
    (0..n).map(|i| episodes / n + usize::from(i < episodes % n)).collect()
}

/// The evaluation of [`evaluate_as`], filming `videos` if given.
fn play(
    config: &RunConfig,
    agent: &mut Agent,
    pool: &ActionPool,
    episodes: usize,
    videos: Option<&Videos>,
    policy: EvalPolicy,
) -> Result<(EvalReport, Vec<PathBuf>)> {
    anyhow::ensure!(episodes > 0, "evaluate at least 1 episode");
    let quota = quotas(episodes, episodes.min(config.run.eval_envs.max(1)));
    let (envs, mut recordings) = eval_envs(config, &quota, videos)?;
    let mut venv = compose::executors(config, pool, envs)?;
    let seed = config.run.seed + EVAL_SEED_OFFSET;
    venv.reset(Some(seed));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scores: Vec<Vec<f64>> = quota.iter().map(|&q| Vec::with_capacity(q)).collect();
    let mut eval_frames = 0u64;
    while scores.iter().zip(&quota).any(|(s, &q)| s.len() < q) {
        let actions = match policy {
            EvalPolicy::Greedy => agent.act_eval(venv.obs(), &mut rng),
            EvalPolicy::Noisy => agent.act_eval_noisy(venv.obs(), &mut rng),
        };
        let actions = actions.context("acting in evaluation")?;
        venv.step(&actions);
        for ((o, copy), &q) in venv.outcomes().iter().zip(&mut scores).zip(&quota) {
            if copy.len() < q {
                eval_frames += u64::from(o.info.frames);
                if o.done() {
                    copy.push(o.info.episode_score);
                }
            }
        }
        for recording in &mut recordings {
            recording.drain()?;
        }
    }
    let scores: Vec<f64> = scores.concat();
    let written = recordings.iter().flat_map(|r| r.written().iter().cloned()).collect();
    Ok((report(config, agent, scores, eval_frames, policy), written))
}

/// The evaluation's base envs, and the recordings of those that are filmed.
type FilmedEnvs = (Vec<Box<dyn Env>>, Vec<Recording>);

/// The evaluation's base envs, one per copy of `quota`; the copies whose games are among the
/// first `videos.count` (numbered copy by copy, as the scores are) are filmed.
fn eval_envs(config: &RunConfig, quota: &[usize], videos: Option<&Videos>) -> Result<FilmedEnvs> {
    let mut recordings = Vec::new();
    let mut first_game = 0;
    let mut envs = Vec::with_capacity(quota.len());
    for (env, &games) in compose::base_envs(config, true, quota.len())?.into_iter().zip(quota) {
        let want = videos.map_or(0, |v| v.count.saturating_sub(first_game).min(games));
        envs.push(match videos {
            Some(v) if want > 0 => {
                let (env, recording) =
                    Recording::start(env, &config.env.game_name(), &v.dir, first_game, want)?;
                recordings.push(recording);
                env
            }
            _ => env,
        });
        first_game += games;
    }
    Ok((envs, recordings))
}

/// The report of an evaluation's `scores`, played with `policy`.
fn report(
    config: &RunConfig,
    agent: &Agent,
    scores: Vec<f64>,
    eval_frames: u64,
    policy: EvalPolicy,
) -> EvalReport {
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
    EvalReport {
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
        commit: Some(run_dir::COMMIT.into()),
        policy,
    }
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
/// config's `run.eval_episodes`) with `policy` and writes `eval.json` there (greedy) or
/// `eval-noisy.json` (noisy); with `videos > 0` (greedy only), the first `videos` games also
/// as `videos/episode_000.gif`, ... (returned), replacing any earlier ones.
pub fn evaluate_run(
    run: &Path,
    episodes: Option<usize>,
    videos: usize,
    policy: EvalPolicy,
) -> Result<(EvalReport, Vec<PathBuf>)> {
    anyhow::ensure!(
        videos == 0 || policy == EvalPolicy::Greedy,
        "videos film the protocol's (greedy) evaluation: leave out --video with --policy noisy"
    );
    let config = RunConfig::read_resolved(&run.join(run_dir::CONFIG))?;
    // Before the checkpoint and the envs are loaded, with the error the agent would give.
    anyhow::ensure!(
        config.agent.network.noisy || policy == EvalPolicy::Greedy,
        "{}: {}",
        run.display(),
        rainbow::Error::NoNoise
    );
    let (mut agent, pool) = load_agent(run, &config)?;
    let episodes = episodes.unwrap_or(config.run.eval_episodes).max(1);
    let (report, written) = if videos > 0 {
        let videos = Videos { dir: run.join(run_dir::VIDEOS), count: videos };
        check_video_count(videos.count, episodes)?; // before the earlier videos go
        clear_videos(&videos.dir)?;
        evaluate_filmed(&config, &mut agent, &pool, episodes, &videos)?
    } else {
        (evaluate_as(&config, &mut agent, &pool, episodes, policy)?, Vec::new())
    };
    let file = match policy {
        EvalPolicy::Greedy => run_dir::EVAL,
        EvalPolicy::Noisy => run_dir::EVAL_NOISY,
    };
    run_dir::write_json(&run.join(file), &report)?;
    Ok((report, written))
}

/// Removes `dir`, the videos of an earlier evaluation, which would pass for this one's.
fn clear_videos(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the earlier videos in {}", dir.display()))?;
    }
    Ok(())
}
