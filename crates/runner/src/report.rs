//! `masp report`: a markdown table of final scores per game and agent over seeds, with
//! human-normalised scores where reference figures exist.
//!
//! * Final score of a run: the mean raw game score of its `eval.json` (the final
//!   evaluation, under the protocol's evaluation settings) when present, else the mean
//!   `episode_score` of the last [`FINAL_ROWS`] rows of `metrics.csv` that have one
//!   (training games; each row is already the mean of its interval's games). The table's
//!   `final` column says which.
//! * Per game and agent: the mean ± the sample standard deviation (`n - 1`) over seeds,
//!   and the number of seeds.
//! * HNS = (score - random) / (human - random) of the mean score, with the random and human
//!   scores of `data/atari100k.csv` (26 games of the Atari 100k benchmark); `–` for games
//!   without figures (the toy envs, and Atari games outside those 26).
//!
//! ```no_run
//! use std::path::PathBuf;
//! let table = masp_runner::report_markdown(&[PathBuf::from("runs")])?;
//! println!("{table}");
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::eval::EvalReport;
use crate::metrics::MetricsTable;
use crate::run_dir::{self, RunLabel};
use crate::stats::mean_sd;

/// `game,random,human,der` per Atari 100k game, `#` lines are comments; see its header.
const ATARI100K: &str = include_str!("../data/atari100k.csv");

/// Without an `eval.json`, the final score averages this many last rows of `metrics.csv`.
pub const FINAL_ROWS: usize = 5;

/// Where a run's final score came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// `eval.json`.
    Eval,
    /// The last rows of `metrics.csv`.
    Training,
}

/// A game's random and human scores.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Reference {
    random: f64,
    human: f64,
}

/// How games are matched to the reference table: lower-case letters and digits only, so
/// ALE's `ms_pacman`, `MsPacman` and `ms-pacman` are one game (ROM lookup accepts the same
/// spellings).
fn game_key(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The reference table by [`game_key`].
fn references() -> BTreeMap<String, Reference> {
    let mut lines = ATARI100K.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("the table has a header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("random and human columns");
    let (game, random, human) = (col("game"), col("random"), col("human"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let number = |i: usize| cells[i].parse::<f64>().expect("the table holds numbers");
            (game_key(cells[game]), Reference { random: number(random), human: number(human) })
        })
        .collect()
}

/// A run's final score and where it came from.
fn final_score(run: &Path) -> Result<(f64, Source)> {
    let eval = run.join(run_dir::EVAL);
    if eval.is_file() {
        let text = std::fs::read_to_string(&eval).with_context(|| format!("reading {}", eval.display()))?;
        let report: EvalReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an evaluation report", eval.display()))?;
        return Ok((report.mean, Source::Eval));
    }
    let series = MetricsTable::read(&run.join(run_dir::METRICS))?.series("episode_score")?;
    anyhow::ensure!(
        !series.is_empty(),
        "{} has no {} and no finished game in its {}: nothing to report",
        run.display(),
        run_dir::EVAL,
        run_dir::METRICS
    );
    let last: Vec<f64> = series.iter().rev().take(FINAL_ROWS).map(|p| p.1).collect();
    Ok((mean_sd(&last).0, Source::Training))
}

/// The markdown report of `runs` (run folders, or folders holding them); see the module
/// docs.
pub fn report_markdown(runs: &[PathBuf]) -> Result<String> {
    let runs = run_dir::find_runs(runs)?;
    // (game, agent) -> each seed's final score and its source.
    let mut groups: BTreeMap<(String, String), Vec<(f64, Source)>> = BTreeMap::new();
    for run in &runs {
        let label = RunLabel::read(run)?;
        groups.entry((label.game, label.agent)).or_default().push(final_score(run)?);
    }
    let references = references();
    let mut out = String::new();
    writeln!(out, "| game | agent | score (mean ± std) | seeds | HNS | final |").unwrap();
    writeln!(out, "|---|---|---:|---:|---:|---|").unwrap();
    for ((game, agent), seeds) in &groups {
        let scores: Vec<f64> = seeds.iter().map(|s| s.0).collect();
        let (mean, sd) = mean_sd(&scores);
        let score = match sd {
            Some(sd) => format!("{mean:.1} ± {sd:.1}"),
            None => format!("{mean:.1}"),
        };
        let hns = references
            .get(&game_key(game))
            .map(|r| format!("{:.3}", (mean - r.random) / (r.human - r.random)))
            .unwrap_or_else(|| "–".into());
        let mut sources: Vec<Source> = seeds.iter().map(|s| s.1).collect();
        sources.sort();
        sources.dedup();
        let source = match sources[..] {
            [Source::Eval] => "eval",
            [Source::Training] => "training",
            _ => "eval + training",
        };
        writeln!(out, "| {game} | {agent} | {score} | {} | {hns} | {source} |", scores.len()).unwrap();
    }
    writeln!(
        out,
        "\nFinal score: the mean raw game score of the run's final evaluation (`eval.json`; `final` = eval) or, \
         without one, of `episode_score` over the last {FINAL_ROWS} rows of `metrics.csv` that have one \
         (`final` = training). ± is the sample standard deviation over seeds. HNS = (score - random) / \
         (human - random) of the mean, with the Atari 100k reference figures; – where there are none."
    )
    .unwrap();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_table_has_the_atari_100k_games_under_ale_names() {
        let r = references();
        assert_eq!(r.len(), 26);
        assert_eq!(r["pong"], Reference { random: -20.7, human: 14.6 });
        assert_eq!(r[&game_key("MsPacman")], r[&game_key("ms_pacman")]);
        assert!(r.contains_key(&game_key("private_eye")) && r.contains_key(&game_key("up_n_down")));
        assert!(!r.contains_key(&game_key("space_invaders")), "not one of the 26");
    }
}
