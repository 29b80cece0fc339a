//! The `masp` runner: a config in, a run folder out.
//!
//! * [`cli`]: the `masp` command line, one function per subcommand over the modules below;
//!   `main.rs` only runs it.
//! * [`RunConfig`] ([`config`]): the env, macros, agent, MASP and run sections of one TOML
//!   document; [`overrides`]: `--set key.path=value`, merging, and errors that suggest the
//!   closest key.
//! * [`compose`]: config -> vector env of macro executors over the base env, action pool,
//!   Rainbow agent with MASP as its regulariser.
//! * [`train()`]: the training loop over a frame budget, metrics, checkpoints, resume,
//!   Ctrl-C, the final evaluation; [`evaluate()`]: raw game scores of a checkpoint, on
//!   `run.eval_envs` env copies at once; [`evaluate_filmed`] (module `video`): GIFs of them.
//! * [`run_dir`]: the run folder's layout and name `{game}__{agent}__{seed}__{time}`.
//! * [`experiment`]: experiment presets (`configs/experiments/`) expanded into runs;
//!   [`sweep`] runs them with a local pool of processes, [`slurm`] writes a Slurm job array.
//! * Results of many runs: [`plot_runs`] (learning curves, mean and 95% interval over seeds,
//!   DER's published score as a line), [`report_markdown`] (final scores per game and agent,
//!   human-normalised, beside DER's; the aggregate metrics over games with bootstrap
//!   intervals); the Atari 100k reference figures in `reference`.
//! * Mined macros: [`record()`] plays a policy and writes primitive-action trajectories,
//!   [`mine_macros`] turns them into a pool file.
//! * [`analyze()`]: a run's learned `S` as a heatmap, its Spearman correlation with the
//!   macros' edit distance, and the most similar pairs.

#![forbid(unsafe_code)]

mod analyze;
pub mod cli;
pub mod compose;
pub mod config;
mod effects;
mod eval;
pub mod experiment;
mod font;
mod games;
mod metrics;
mod mine;
pub mod overrides;
mod plot;
mod profile;
mod record;
mod reference;
mod report;
pub mod run_dir;
pub mod slurm;
mod stats;
pub mod sweep;
mod tensorboard;
mod train;
mod video;

pub use analyze::{analyze, Analysis, AnalyzeOptions, AnalyzedPair};
pub use config::{AgentPreset, EnvConfig, MacroSource, RunConfig};
pub use eval::{evaluate, evaluate_as, evaluate_filmed, evaluate_run, EvalPolicy, EvalReport, Videos};
pub use font::FONT_ENV;
pub use mine::{mine_macros, Mined};
pub use plot::plot_runs;
pub use record::{record, Policy, RecordSummary};
pub use report::{report_markdown, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, FINAL_ROWS};
pub use tensorboard::EventWriter;
pub use train::{resume_config, train, TrainOptions, TrainSummary};
pub use video::read_gif;
