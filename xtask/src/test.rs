//! `cargo xtask test`: set-up, a formatting check, then every test in the workspace.
//!
//! Tests build with the `ci` profile (optimised, with debug assertions and overflow checks),
//! because the emulator and the learner are too slow unoptimised for a 15-minute suite.

use anyhow::{Context, Result};

use crate::cmd;

pub fn run(extra: &[String]) -> Result<()> {
    crate::setup::run()?;
    cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))
        .context("code is not formatted: run `cargo fmt --all`")?;
    cmd::run(cmd::cargo().args(["test", "--workspace", "--profile", "ci", "--"]).args(extra))
}
