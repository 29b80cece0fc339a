//! `metrics.csv`: one row per log interval (`run.log_interval`, # frames).
//!
//! Columns: `frames` (environment frames), `agent_steps` (decisions, primitive or macro),
//! `updates`, `games` (finished games), `episode_score` and `clipped_return` (means over the
//! games finished in the interval: the raw game score, and the sum of the learner's clipped
//! rewards; empty if none finished), `eval_score` (at a checkpoint: the mean raw score of
//! `run.checkpoint_eval_episodes` games of the evaluation policy), `loss`, `penalty`, `mean_priority`, `grad_norm` (the
//! interval's last update), the MASP columns (`s_*`: statistics of `S`; `penalty_td_ratio`,
//! `meta_grad_norm`: the last meta step; `meta_reach`, `meta_consistency`, `s_change`,
//! `meta_alignment`: where the interval's meta-gradients went, [`masp::SignalWindow`]), and
//! `fps` (frames per second over the interval).
//!
//! The same values go to TensorBoard (`tb/`, [`crate::tensorboard`]) with the frames as
//! the step. [`MetricsTable`] reads the CSV back for `masp plot` and `masp report`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::overrides::did_you_mean;
use crate::run_dir;
use crate::tensorboard::EventWriter;

pub const HEADER: &str =
    "frames,agent_steps,updates,games,episode_score,clipped_return,eval_score,loss,penalty,\
mean_priority,grad_norm,s_mean_off_diagonal,s_max_off_diagonal,s_mean_row_entropy,s_mean_self_weight,\
penalty_td_ratio,meta_grad_norm,meta_reach,meta_consistency,s_change,meta_alignment,fps";

/// One row; `None` is an empty cell.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub frames: u64,
    pub agent_steps: u64,
    pub updates: u64,
    pub games: u64,
    pub episode_score: Option<f64>,
    pub clipped_return: Option<f64>,
    pub eval_score: Option<f64>,
    pub loss: Option<f32>,
    pub penalty: Option<f32>,
    pub mean_priority: Option<f32>,
    pub grad_norm: Option<f32>,
    pub s_stats: Option<masp::SimilarityStats>,
    pub penalty_td_ratio: Option<f64>,
    pub meta_grad_norm: Option<f64>,
    pub signal: Option<masp::SignalWindow>,
    pub fps: f64,
}

/// One cell of a row, as written to the CSV and to TensorBoard.
enum Cell {
    Count(u64),
    F32(Option<f32>),
    F64(Option<f64>),
    /// Written with one decimal.
    Rate(f64),
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Count(v) => v.to_string(),
            Cell::F32(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Cell::F64(v) => v.map(|v| v.to_string()).unwrap_or_default(),
            Cell::Rate(v) => format!("{v:.1}"),
        }
    }

    fn value(&self) -> Option<f64> {
        match *self {
            Cell::Count(v) => Some(v as f64),
            Cell::F32(v) => v.map(f64::from),
            Cell::F64(v) => v,
            Cell::Rate(v) => Some(v),
        }
    }
}

impl Row {
    /// The row's cells, named as [`HEADER`]'s columns and in its order.
    fn cells(&self) -> [(&'static str, Cell); 22] {
        let s = self.s_stats.as_ref();
        let w = self.signal.as_ref();
        [
            ("frames", Cell::Count(self.frames)),
            ("agent_steps", Cell::Count(self.agent_steps)),
            ("updates", Cell::Count(self.updates)),
            ("games", Cell::Count(self.games)),
            ("episode_score", Cell::F64(self.episode_score)),
            ("clipped_return", Cell::F64(self.clipped_return)),
            ("eval_score", Cell::F64(self.eval_score)),
            ("loss", Cell::F32(self.loss)),
            ("penalty", Cell::F32(self.penalty)),
            ("mean_priority", Cell::F32(self.mean_priority)),
            ("grad_norm", Cell::F32(self.grad_norm)),
            ("s_mean_off_diagonal", Cell::F64(s.map(|s| s.mean_off_diagonal))),
            ("s_max_off_diagonal", Cell::F64(s.map(|s| s.max_off_diagonal))),
            ("s_mean_row_entropy", Cell::F64(s.map(|s| s.mean_row_entropy))),
            ("s_mean_self_weight", Cell::F64(s.map(|s| s.mean_self_weight))),
            ("penalty_td_ratio", Cell::F64(self.penalty_td_ratio)),
            ("meta_grad_norm", Cell::F64(self.meta_grad_norm)),
            ("meta_reach", Cell::F64(w.map(|w| w.reach))),
            ("meta_consistency", Cell::F64(w.map(|w| w.consistency))),
            ("s_change", Cell::F64(w.map(|w| w.s_change))),
            ("meta_alignment", Cell::F64(w.and_then(|w| w.alignment))),
            ("fps", Cell::Rate(self.fps)),
        ]
    }

    fn to_csv(&self) -> String {
        self.cells().iter().map(|(_, c)| c.csv()).collect::<Vec<_>>().join(",")
    }

    /// The non-empty cells but `frames` (TensorBoard's step), as TensorBoard scalars.
    fn scalars(&self) -> Vec<(&'static str, f64)> {
        self.cells().iter().skip(1).filter_map(|(name, c)| Some((*name, c.value()?))).collect()
    }
}

/// Appends rows to a run's `metrics.csv`, writing the header when the file is new, and the
/// same values as TensorBoard scalars (step = frames) to a new event file in its `tb/`.
pub struct MetricsWriter {
    out: BufWriter<File>,
    tensorboard: EventWriter,
}

impl MetricsWriter {
    pub fn open(run: &Path) -> Result<Self> {
        let path = run.join(run_dir::METRICS);
        let new = !path.exists() || std::fs::metadata(&path).map(|m| m.len() == 0).unwrap_or(true);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if !new {
            use std::io::BufRead;
            let mut header = String::new();
            std::io::BufReader::new(&file)
                .read_line(&mut header)
                .with_context(|| format!("reading {}", path.display()))?;
            if header.trim_end_matches(['\n', '\r']) != HEADER {
                bail!(
                    "{} has other columns than this masp writes (another version started the run): \
                     continue it with the masp binary that started it, or start the run afresh",
                    path.display()
                );
            }
        }
        let mut out = BufWriter::new(file);
        if new {
            writeln!(out, "{HEADER}").with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(Self { out, tensorboard: EventWriter::create(&run.join(run_dir::TENSORBOARD))? })
    }

    pub fn write(&mut self, row: &Row) -> Result<()> {
        writeln!(self.out, "{}", row.to_csv()).context("writing metrics.csv")?;
        self.out.flush().context("writing metrics.csv")?;
        self.tensorboard.scalars(row.frames, &row.scalars())
    }
}

/// Cuts a run's logs back to frame `frames` (a resumed checkpoint's): the rows of
/// `metrics.csv` and the TensorBoard events written after it are dropped, so that a run
/// killed between two checkpoints does not log the same frames twice when it resumes. A
/// row torn by the kill (no line end) goes too.
pub fn rewind(run: &Path, frames: u64) -> Result<()> {
    let path = run.join(run_dir::METRICS);
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        run_dir::replace_file(&path, rows_up_to(&text, frames).as_bytes())?;
    }
    crate::tensorboard::rewind(&run.join(run_dir::TENSORBOARD), frames)
}

/// The header and the complete rows of `text` whose `frames` (the first cell) is at most
/// `frames`.
fn rows_up_to(text: &str, frames: u64) -> String {
    let mut kept = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let whole = line.ends_with('\n');
        let before =
            line.split(',').next().and_then(|f| f.trim().parse::<u64>().ok()).is_some_and(|f| f <= frames);
        if whole && (i == 0 || before) {
            kept.push_str(line);
        }
    }
    kept
}

/// A `metrics.csv` read back: the columns named by its own header, every cell a number or
/// empty (`None`).
#[derive(Clone, Debug)]
pub struct MetricsTable {
    /// Where it was read from, for errors.
    path: std::path::PathBuf,
    pub columns: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
}

impl MetricsTable {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            bail!("{} is empty: expected the header `{HEADER}`", path.display());
        };
        let columns: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
        if !columns.iter().any(|c| c == "frames") {
            bail!("{} has no `frames` column: is it a metrics.csv of `masp train`?", path.display());
        }
        let mut rows = Vec::new();
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != columns.len() {
                bail!(
                    "{} line {}: {} cells, the header has {} columns",
                    path.display(),
                    i + 1,
                    cells.len(),
                    columns.len()
                );
            }
            let row = cells
                .iter()
                .zip(&columns)
                .map(|(cell, column)| match cell.trim() {
                    "" => Ok(None),
                    v => v.parse::<f64>().map(Some).with_context(|| {
                        format!("{} line {}: `{column}` = {v:?} is not a number", path.display(), i + 1)
                    }),
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push(row);
        }
        Ok(Self { path: path.to_path_buf(), columns, rows })
    }

    /// `(frames, value)` of every row whose `metric` cell is not empty, in file order. An
    /// unknown `metric` is an error that lists the valid columns.
    pub fn series(&self, metric: &str) -> Result<Vec<(f64, f64)>> {
        let column = |name: &str| self.columns.iter().position(|c| c == name);
        let Some(m) = column(metric) else {
            let names: Vec<&str> = self.columns.iter().map(String::as_str).collect();
            bail!(
                "{} has no column `{metric}`{}; valid columns: {}",
                self.path.display(),
                did_you_mean(metric, &names),
                names.join(", ")
            );
        };
        let f = column("frames").expect("checked when read");
        Ok(self.rows.iter().filter_map(|r| Some((r[f]?, r[m]?))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_follow_the_header_and_scalars_leave_out_frames_and_empty_cells() {
        let row = Row { frames: 8, agent_steps: 2, loss: Some(0.5), fps: 3.25, ..Row::default() };
        let names: Vec<&str> = row.cells().iter().map(|(n, _)| *n).collect();
        assert_eq!(names.join(","), HEADER);
        assert_eq!(row.to_csv(), "8,2,0,0,,,,0.5,,,,,,,,,,,,,,3.2");
        assert_eq!(
            row.scalars(),
            [("agent_steps", 2.0), ("updates", 0.0), ("games", 0.0), ("loss", 0.5), ("fps", 3.25)]
        );
    }

    #[test]
    fn a_metrics_file_of_other_columns_is_not_appended_to() {
        let run = std::env::temp_dir().join(format!("masp-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&run).unwrap();
        let path = run.join(run_dir::METRICS);
        std::fs::write(&path, "frames,fps\n500,1.0\n").unwrap();
        let err = MetricsWriter::open(&run).err().expect("other columns").to_string();
        assert!(err.contains("other columns") && err.contains("start the run afresh"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "frames,fps\n500,1.0\n", "left as it was");
        std::fs::write(&path, format!("{HEADER}\n")).unwrap();
        assert!(MetricsWriter::open(&run).is_ok(), "its own columns: appended to");
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn rewinding_keeps_the_rows_up_to_the_checkpoint_and_drops_a_torn_one() {
        let text = format!("{HEADER}\n500,1\n1000,2\n1500,3\n2000,4\n25");
        assert_eq!(rows_up_to(&text, 1000), format!("{HEADER}\n500,1\n1000,2\n"));
        assert_eq!(rows_up_to(&text, 0), format!("{HEADER}\n"));
        assert_eq!(rows_up_to(&text, 9999), format!("{HEADER}\n500,1\n1000,2\n1500,3\n2000,4\n"));
    }

    #[test]
    fn written_rows_read_back_with_empty_cells_skipped() {
        let run = std::env::temp_dir().join(format!("masp-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run).unwrap();
        let path = run.join(run_dir::METRICS);
        let mut w = MetricsWriter::open(&run).unwrap();
        w.write(&Row { frames: 500, episode_score: Some(-3.5), ..Row::default() }).unwrap();
        w.write(&Row { frames: 1000, ..Row::default() }).unwrap();
        w.write(&Row { frames: 1500, episode_score: Some(2.0), fps: 10.0, ..Row::default() }).unwrap();
        drop(w);
        let t = MetricsTable::read(&path).unwrap();
        assert_eq!(t.columns.join(","), HEADER);
        assert_eq!(t.series("episode_score").unwrap(), [(500.0, -3.5), (1500.0, 2.0)]);
        assert_eq!(t.series("fps").unwrap().len(), 3);
        let err = t.series("episode_scor").unwrap_err().to_string();
        assert!(
            err.contains("did you mean `episode_score`?") && err.contains("valid columns: frames,"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
