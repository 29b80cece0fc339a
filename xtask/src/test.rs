//! `cargo xtask test`: set-up, a formatting check, clippy and the libraries' docs with warnings
//! as errors (a doc link to a private item or an ambiguous one fails), then every test in the
//! workspace.
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
    cmd::run(
        cmd::cargo()
            .args(["doc", "--workspace", "--no-deps", "--lib", "--profile", "ci"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
    .context("the docs have warnings: fix them (`RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --lib`)")?;
    cmd::run(cmd::cargo().args(["test", "--workspace", "--profile", "ci", "--"]).args(extra))
}
