//! A run folder, `runs/{game}__{agent}__{seed}__{time}/`:
//!
//! ```text
//! config.toml        the fully resolved config (reads back to the same run), headed by one
//!                    comment line per training session: the commit of the binary that
//!                    started or resumed the run
//! metrics.csv        one row per log interval, see crate::metrics
//! checkpoint/        the last good checkpoint: rainbow's Agent::save, MASP's S, state.json
//! eval.json          the final evaluation: raw game scores and the evaluating binary's commit
//! eval-noisy.json    `masp eval --policy noisy`'s, if one was asked for: training's policy
//! tb/                TensorBoard event files, one per training session (metrics.csv's values)
//! ```
//!
//! A checkpoint is written to `checkpoint.new/` and swapped in by renames, so a crash at
//! any moment leaves one complete checkpoint.
//!
//! Readers of results find run folders by their `config.toml` and `metrics.csv`
//! ([`find_runs`]) and group them by [`RunLabel`].

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::{EnvConfig, RunSection};

pub const CONFIG: &str = "config.toml";
/// The commit this binary was built from (`git describe --always --dirty`, `unknown`
/// outside a git checkout; build.rs), written into every run folder.
pub const COMMIT: &str = env!("MASP_COMMIT");
pub const METRICS: &str = "metrics.csv";
pub const CHECKPOINT: &str = "checkpoint";
pub const EVAL: &str = "eval.json";
/// `masp eval --policy noisy`'s report, beside the protocol's `eval.json`.
pub const EVAL_NOISY: &str = "eval-noisy.json";
/// A run's stdout and stderr when a sweep or a cluster job runs it.
pub const LOG: &str = "train.log";
/// `masp eval --video`'s GIFs of evaluation games.
pub const VIDEOS: &str = "videos";
/// TensorBoard's log folder of a run.
pub const TENSORBOARD: &str = "tb";
/// The runner's own state in a checkpoint folder.
pub const STATE: &str = "state.json";

/// The start of each session's line in a run's `config.toml`.
const SESSION_LINE: &str = "# masp commit ";

/// The header of `run`'s `config.toml` for a new session: the sessions the file records
/// already (none for a new run), then this one, `# masp commit {COMMIT}: started|resumed`.
pub fn stamp_sessions(run: &Path, resumed: bool) -> Result<String> {
    let path = run.join(CONFIG);
    let earlier = match resumed {
        true => std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
        false => String::new(),
    };
    let mut header: String =
        earlier.lines().take_while(|l| l.starts_with(SESSION_LINE)).map(|l| format!("{l}\n")).collect();
    let how = if resumed { "resumed" } else { "started" };
    header += &format!("{SESSION_LINE}{COMMIT}: {how}\n");
    Ok(header)
}

/// `{game}__{agent}__{seed}__{time}`, time as UTC `YYYYMMDDTHHMMSS`.
pub fn run_name(game: &str, agent: &str, seed: u64, now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{game}__{agent}__{seed}__{}", utc_stamp(secs))
}

/// `YYYYMMDDTHHMMSS` of a Unix time (proleptic Gregorian, UTC).
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// What the runner keeps beside the agent in a checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunState {
    /// Environment frames trained on (the agent's counter, repeated for readers).
    pub frames: u64,
    pub agent_steps: u64,
    pub updates: u64,
    /// Training episodes finished (whole games).
    pub games: u64,
    /// Wall-clock seconds of training so far, over all sessions.
    pub elapsed_s: f64,
    /// Raw scores of the most recent games, for the progress bar.
    pub recent_scores: Vec<f64>,
}

/// Saves a checkpoint into `run/checkpoint/` atomically: `write` fills a fresh folder,
/// which then replaces the old one.
pub fn save_checkpoint(run: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let target = run.join(CHECKPOINT);
    let fresh = run.join(format!("{CHECKPOINT}.new"));
    let old = run.join(format!("{CHECKPOINT}.old"));
    for stale in [&fresh, &old] {
        if stale.exists() {
            std::fs::remove_dir_all(stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    std::fs::create_dir_all(&fresh).with_context(|| format!("creating {}", fresh.display()))?;
    write(&fresh)?;
    if target.exists() {
        std::fs::rename(&target, &old).with_context(|| format!("moving {} aside", target.display()))?;
    }
    std::fs::rename(&fresh, &target).with_context(|| format!("installing {}", target.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(target)
}

/// The checkpoint folder of a run, or where a crash mid-swap left the previous one.
pub fn find_checkpoint(run: &Path) -> Result<PathBuf> {
    for name in [CHECKPOINT.to_string(), format!("{CHECKPOINT}.old")] {
        let dir = run.join(&name);
        if dir.join(STATE).exists() {
            return Ok(dir);
        }
    }
    anyhow::bail!(
        "{} has no checkpoint ({}/{STATE} is missing): is it a run folder of `masp train`, and did it \
         reach its first checkpoint?",
        run.display(),
        CHECKPOINT
    )
}

pub fn read_state(checkpoint: &Path) -> Result<RunState> {
    let path = checkpoint.join(STATE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a run state", path.display()))
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialising JSON")?;
    replace_file(path, (text + "\n").as_bytes())
}

/// Writes `bytes` to `path` through a temporary file renamed over it, so that a kill at any
/// moment leaves either the old file or the new one, never a truncated one.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The total size in bytes of the files directly in `dir` (a checkpoint folder is flat).
pub fn folder_bytes(dir: &Path) -> Result<u64> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    entries
        .map(|e| Ok(e?.metadata()?.len()))
        .sum::<std::io::Result<u64>>()
        .with_context(|| format!("reading {}", dir.display()))
}

/// Whether `dir` is a run folder: it holds `config.toml` and `metrics.csv`.
fn is_run(dir: &Path) -> bool {
    dir.join(CONFIG).is_file() && dir.join(METRICS).is_file()
}

/// The run folders named by `inputs`: each input is a run folder, or a folder searched
/// (recursively, not into run folders) for run folders, e.g. a sweep's output folder.
/// Sorted, without duplicates. An input that holds no run folder, or a folder with a
/// `config.toml` but no `metrics.csv`, is an error.
pub fn find_runs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, runs: &mut Vec<PathBuf>) -> Result<()> {
        if is_run(dir) {
            runs.push(dir.to_path_buf());
            return Ok(());
        }
        anyhow::ensure!(
            !dir.join(CONFIG).is_file(),
            "{} has a {CONFIG} but no {METRICS}: did its training start?",
            dir.display()
        );
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
            if path.is_dir() {
                subdirs.push(path);
            }
        }
        subdirs.sort();
        subdirs.iter().try_for_each(|d| walk(d, runs))
    }
    anyhow::ensure!(!inputs.is_empty(), "name at least one run folder, or a folder holding run folders");
    let mut runs = Vec::new();
    for input in inputs {
        anyhow::ensure!(input.is_dir(), "{} is not a folder", input.display());
        let before = runs.len();
        walk(input, &mut runs)?;
        anyhow::ensure!(
            runs.len() > before,
            "no run folders in {} (a run folder holds {CONFIG} and {METRICS})",
            input.display()
        );
    }
    runs.sort();
    runs.dedup();
    Ok(runs)
}

/// What a run is, for grouping results: its game (or toy env), agent (`run.name`) and seed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunLabel {
    pub game: String,
    pub agent: String,
    pub seed: u64,
}

impl RunLabel {
    /// Reads the `[env]` and `[run]` sections of the run's `config.toml`. Only these two are
    /// parsed (not the whole config, whose loading checks the ROM), so results can be read
    /// on a machine without the games.
    pub fn read(run: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Sections {
            env: EnvConfig,
            run: RunSection,
        }
        let path = run.join(CONFIG);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut table: toml::Table =
            text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
        table.retain(|k, _| k == "env" || k == "run");
        let s = Sections::deserialize(toml::Value::Table(table))
            .with_context(|| format!("{}: reading [env] and [run]", path.display()))?;
        Ok(Self { game: s.env.game_name(), agent: s.run.name, seed: s.run.seed })
    }
}

/// Where a run stands, from its folder: the one rule by which `masp train --resumable`
/// (and so every sweep and cluster job) skips, resumes or starts a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// `eval.json` is there: skip it.
    Finished,
    /// A checkpoint is there: continue from it.
    Interrupted,
    /// Nothing to continue from: start it.
    New,
}

pub fn run_status(dir: &Path) -> RunStatus {
    if dir.join(EVAL).exists() {
        RunStatus::Finished
    } else if find_checkpoint(dir).is_ok() {
        RunStatus::Interrupted
    } else {
        RunStatus::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_follow_the_convention() {
        // 2026-11-25 19:02:05 UTC.
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_633_325);
        assert_eq!(run_name("pong", "masp", 3, t), "pong__masp__3__20261125T190205");
        assert_eq!(utc_stamp(0), "19700101T000000");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000");
    }
}
