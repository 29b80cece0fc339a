//! `masp report`: the final scores of runs per game and agent over seeds, and for the Atari
//! 100k games the aggregate metrics over games of Agarwal et al. (2021) with stratified
//! bootstrap intervals, beside data-efficient Rainbow's (DER) published figures.
//!
//! * Final score of a run: the mean raw game score of its `eval.json` (the final
//!   evaluation, under the protocol's evaluation settings) when present, else the mean
//!   `episode_score` of the last [`FINAL_ROWS`] rows of `metrics.csv` that have one
//!   (training games; each row is already the mean of its interval's games). The table's
//!   `final` column says which.
//! * Per game and agent: the mean over seeds, its 95% t-interval, the number of seeds, the
//!   human-normalised score (HNS) of the mean, DER's published score and ours ÷ DER's, with
//!   the reference figures of `data/atari100k.csv` ([`crate::reference`]); `–` for games
//!   without figures (the toy envs, and Atari games outside the 26).
//! * Per agent, over its games that have figures: the mean and median HNS, the IQM and the
//!   optimality gap ([`crate::stats::Aggregate`]) of the seeds' HNS, each with a 95%
//!   stratified bootstrap interval ([`BOOTSTRAP_RESAMPLES`] resamples, seed
//!   [`BOOTSTRAP_SEED`]), beside the same metrics of DER's published scores on the same
//!   games (one run per game, no interval).
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
use crate::reference::{reference, Reference};
use crate::run_dir::{self, RunLabel};
use crate::stats::{bootstrap_ci95, ci95_half_width, mean_sd, Aggregate};

/// Without an `eval.json`, the final score averages this many last rows of `metrics.csv`.
pub const FINAL_ROWS: usize = 5;

/// Resamples of the aggregates' bootstrap. rliable's default is 50,000; 10,000 already
/// puts hundreds of values beyond each percentile, at a fifth of the cost
/// (docs/benchmarks.md times `masp report`).
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// The bootstrap's seed, fixed so that the same runs give the same report.
pub const BOOTSTRAP_SEED: u64 = 0;

/// Where a run's final score came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// `eval.json`.
    Eval,
    /// The last rows of `metrics.csv`.
    Training,
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

/// Each seed's final score and its source, by (game, agent).
type Groups = BTreeMap<(String, String), Vec<(f64, Source)>>;

/// The markdown report of `runs` (run folders, or folders holding them); see the module
/// docs.
pub fn report_markdown(runs: &[PathBuf]) -> Result<String> {
    let runs = run_dir::find_runs(runs)?;
    let mut groups = Groups::new();
    for run in &runs {
        let label = RunLabel::read(run)?;
        groups.entry((label.game, label.agent)).or_default().push(final_score(run)?);
    }
    let mut out = per_game_table(&groups);
    writeln!(
        out,
        "\nFinal score: the mean raw game score of the run's final evaluation (`eval.json`; `final` = eval) or, \
         without one, of `episode_score` over the last {FINAL_ROWS} rows of `metrics.csv` that have one \
         (`final` = training). score: the mean over seeds, with its 95% t-interval. HNS = (score - random) / \
         (human - random) of the mean, with the Atari 100k reference figures; DER: data-efficient Rainbow's \
         published score after 400k frames (van Hasselt et al. 2019), and ours ÷ DER's raw score where DER's \
         is positive (else the ratio reads backwards); – where there are none."
    )
    .unwrap();
    // Agent -> its games with reference figures: the figures and each seed's HNS.
    let mut normalised: BTreeMap<&str, Vec<(Reference, Vec<f64>)>> = BTreeMap::new();
    for ((game, agent), seeds) in &groups {
        if let Some(r) = reference(game) {
            normalised.entry(agent).or_default().push((r, seeds.iter().map(|s| r.normalise(s.0)).collect()));
        }
    }
    if !normalised.is_empty() {
        writeln!(
            out,
            "\n## Aggregates over games\n\nHuman-normalised scores of each agent's games that have reference \
             figures (Agarwal et al. 2021, rliable's definitions): the mean and the median of the per-game means \
             over seeds; the IQM, the mean of the middle 50% of all runs of all games pooled; the optimality gap, \
             1 - the mean of all runs' scores clipped at 1 (lower is better). 95% CI: stratified bootstrap, \
             {BOOTSTRAP_RESAMPLES} resamples of the seeds within each game (seed {BOOTSTRAP_SEED}), percentile \
             interval. DER: the same metrics of DER's published scores on the same games."
        )
        .unwrap();
    }
    for (agent, games) in &normalised {
        out += &aggregate_table(agent, games);
    }
    Ok(out)
}

/// The table of final scores per game and agent.
fn per_game_table(groups: &Groups) -> String {
    let mut out = String::new();
    writeln!(out, "| game | agent | seeds | score | 95% CI | HNS | DER | ours ÷ DER | final |").unwrap();
    writeln!(out, "|---|---|---:|---:|---|---:|---:|---:|---|").unwrap();
    let none = || "–".to_string();
    for ((game, agent), seeds) in groups {
        let scores: Vec<f64> = seeds.iter().map(|s| s.0).collect();
        let mean = mean_sd(&scores).0;
        let ci = ci95_half_width(&scores).map(|h| format!("[{:.1}, {:.1}]", mean - h, mean + h));
        let r = reference(game);
        let hns = r.map(|r| format!("{:.3}", r.normalise(mean)));
        let der = r.and_then(|r| r.der);
        let ratio = der.filter(|d| *d > 0.0).map(|d| format!("{:.2}", mean / d));
        let mut sources: Vec<Source> = seeds.iter().map(|s| s.1).collect();
        sources.sort();
        sources.dedup();
        let source = match sources[..] {
            [Source::Eval] => "eval",
            [Source::Training] => "training",
            _ => "eval + training",
        };
        writeln!(
            out,
            "| {game} | {agent} | {} | {mean:.1} | {} | {} | {} | {} | {source} |",
            scores.len(),
            ci.unwrap_or_else(none),
            hns.unwrap_or_else(none),
            der.map(|d| format!("{d:.1}")).unwrap_or_else(none),
            ratio.unwrap_or_else(none),
        )
        .unwrap();
    }
    out
}

/// One agent's aggregate metrics over `games` (reference figures, each seed's HNS) with
/// their bootstrap intervals, beside DER's on the same games.
fn aggregate_table(agent: &str, games: &[(Reference, Vec<f64>)]) -> String {
    let ours: Vec<Vec<f64>> = games.iter().map(|g| g.1.clone()).collect();
    // DER's published score is one number per game: a table of one run per game.
    let der: Option<Vec<Vec<f64>>> = games.iter().map(|(r, _)| r.der.map(|d| vec![r.normalise(d)])).collect();
    let intervals = bootstrap_ci95(&ours, &Aggregate::ALL, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED);
    let runs: usize = ours.iter().map(Vec::len).sum();
    let mut out = format!(
        "\n### {agent}: {} game{}, {runs} run{}\n\n| HNS | ours | 95% CI | DER | ours ÷ DER |\n|---|---:|---|---:|---:|\n",
        games.len(),
        if games.len() == 1 { "" } else { "s" },
        if runs == 1 { "" } else { "s" },
    );
    for (aggregate, (lo, hi)) in Aggregate::ALL.into_iter().zip(intervals) {
        let value = aggregate.of(&ours);
        let theirs = der.as_ref().map(|d| aggregate.of(d));
        // A gap shrinks as an agent improves: its ratio would read backwards.
        let ratio = theirs
            .filter(|t| *t > 0.0 && aggregate != Aggregate::OptimalityGap)
            .map(|t| format!("{:.2}", value / t));
        writeln!(
            out,
            "| {} | {value:.3} | [{lo:.3}, {hi:.3}] | {} | {} |",
            aggregate.name(),
            theirs.map(|t| format!("{t:.3}")).unwrap_or_else(|| "–".into()),
            ratio.unwrap_or_else(|| "–".into()),
        )
        .unwrap();
    }
    out
}
