//! `metrics.csv`: one row per log interval (`run.log_interval`, # frames).
//!
//! Columns: `frames` (environment frames), `agent_steps` (decisions, primitive or macro),
//! `updates`, `games` (finished games), `episode_score` and `clipped_return` (means over the
//! games finished in the interval: the raw game score, and the sum of the learner's clipped
//! rewards; empty if none finished), `loss`, `penalty`, `mean_priority`, `grad_norm` (the
//! interval's last update), the MASP columns (`s_*`: statistics of `S`; `penalty_td_ratio`,
//! `meta_grad_norm`: the last meta step), and `fps` (frames per second over the interval).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

pub const HEADER: &str = "frames,agent_steps,updates,games,episode_score,clipped_return,loss,penalty,\
mean_priority,grad_norm,s_mean_off_diagonal,s_max_off_diagonal,s_mean_row_entropy,s_mean_self_weight,\
penalty_td_ratio,meta_grad_norm,fps";

/// One row; `None` is an empty cell.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub frames: u64,
    pub agent_steps: u64,
    pub updates: u64,
    pub games: u64,
    pub episode_score: Option<f64>,
    pub clipped_return: Option<f64>,
    pub loss: Option<f32>,
    pub penalty: Option<f32>,
    pub mean_priority: Option<f32>,
    pub grad_norm: Option<f32>,
    pub s_stats: Option<masp::SimilarityStats>,
    pub penalty_td_ratio: Option<f64>,
    pub meta_grad_norm: Option<f64>,
    pub fps: f64,
}

fn cell<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl Row {
    fn to_csv(&self) -> String {
        let s = self.s_stats.as_ref();
        [
            self.frames.to_string(),
            self.agent_steps.to_string(),
            self.updates.to_string(),
            self.games.to_string(),
            cell(self.episode_score),
            cell(self.clipped_return),
            cell(self.loss),
            cell(self.penalty),
            cell(self.mean_priority),
            cell(self.grad_norm),
            cell(s.map(|s| s.mean_off_diagonal)),
            cell(s.map(|s| s.max_off_diagonal)),
            cell(s.map(|s| s.mean_row_entropy)),
            cell(s.map(|s| s.mean_self_weight)),
            cell(self.penalty_td_ratio),
            cell(self.meta_grad_norm),
            format!("{:.1}", self.fps),
        ]
        .join(",")
    }
}

/// Appends rows to `metrics.csv`, writing the header when the file is new.
pub struct MetricsWriter {
    out: BufWriter<File>,
}

impl MetricsWriter {
    pub fn open(path: &Path) -> Result<Self> {
        let new = !path.exists() || std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut out = BufWriter::new(file);
        if new {
            writeln!(out, "{HEADER}").with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(Self { out })
    }

    pub fn write(&mut self, row: &Row) -> Result<()> {
        writeln!(self.out, "{}", row.to_csv()).context("writing metrics.csv")?;
        self.out.flush().context("writing metrics.csv")
    }
}
