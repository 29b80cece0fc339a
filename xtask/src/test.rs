//! `cargo xtask test`: set-up, a formatting check, clippy with warnings as errors, then every
//! test in the workspace.
//!
//! Tests build with the `ci` profile (optimised, with debug assertions and overflow checks),
//! because the emulator and the learner are too slow unoptimised for a 15-minute suite.

use anyhow::{Context, Result};

use crate::cmd;

pub fn run(extra: &[String]) -> Result<()> {
    crate::setup::run()?;
    cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))
        .context("code is not formatted: run `cargo fmt --all`")?;
    // The ci profile, as the tests: clippy's check shares their dependencies' builds.
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--profile",
        "ci",
        "--",
        "-D",
        "warnings",
    ]))
    .context("clippy found warnings: fix them (`cargo clippy --workspace --all-targets`)")?;
    cmd::run(cmd::cargo().args(["test", "--workspace", "--profile", "ci", "--"]).args(extra))
}
