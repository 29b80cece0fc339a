//! `cargo xtask experiment NAME [--games G,..] [--arms A,..] [--seeds N] [--jobs J] [--frames F]
//! [--out DIR] [--emit slurm] [--report-only]`: set-up, a release build of the runner, then
//! `masp experiment ...` in the repository root, which expands `configs/experiments/NAME.toml`
//! into runs (those of the games and arms given, else all), runs them J at a time (resumably:
//! finished runs are skipped, interrupted ones resumed) and writes the report and the plots
//! into `OUT/NAME/` (see crates/runner/src/sweep.rs).
//!
//! The sweep lives in the runner rather than here so that its end-to-end test can use the
//! `masp` binary that cargo builds for the runner's tests, and so that a Slurm node needs
//! only that binary. On Unix the runner replaces this process, so Ctrl-C reaches it and its
//! runs, which checkpoint and stop.

use anyhow::Result;

use crate::masp;

pub fn run(args: &[String]) -> Result<()> {
    masp::release_masp("experiment", args)
}
