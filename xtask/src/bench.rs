//! `cargo xtask bench ...`: our code and its reference measured side by side in one run.
//!
//! Each benchmark prints its own figures first and, as its last three lines,
//! `ours_...=`, `<reference>_...=` and `ratio=` (ours / reference, higher is better for
//! throughput), so runs can be compared and recorded in `docs/benchmarks.md`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::cmd::{self, repo_root, shared_dir};

#[derive(Subcommand)]
pub enum Which {
    /// Atari vector-env throughput against ale-py's AtariVectorEnv, plus one preprocessed env
    /// against raw ALE emulation.
    Env {
        #[arg(long, default_value = "pong")]
        game: String,
        #[arg(long, default_value_t = 2)]
        envs: usize,
        /// Agent steps summed over all envs.
        #[arg(long, default_value_t = 20_000)]
        steps: usize,
        #[arg(long, default_value_t = 0.25)]
        sticky: f32,
    },
}

pub fn run(which: Which) -> Result<()> {
    crate::setup::run()?;
    match which {
        Which::Env { game, envs, steps, sticky } => env(&game, envs, steps, sticky),
    }
}

fn env(game: &str, envs: usize, steps: usize, sticky: f32) -> Result<()> {
    let (envs, steps, sticky) = (envs.to_string(), steps.to_string(), sticky.to_string());
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "ale-env", "--example", "env_fps"]))?;
    // The same flags for both sides, so they cannot drift apart.
    let args = ["--game", game, "--envs", &envs, "--threads", &envs, "--steps", &steps, "--sticky", &sticky];
    let ours = cmd::output(Command::new(repo_root().join("target/release/examples/env_fps")).args(args))?;
    print!("{ours}");
    let python = bench_venv(&["ale-py==0.12.1", "gymnasium", "numpy"])?;
    let reference =
        cmd::output(Command::new(python).arg(shared_dir().join("bench/ale_py_env_fps.py")).args(args))?;
    print!("{reference}");
    let ours_fps = last_value(&ours, "ours_frames_per_s")?;
    let ref_fps = last_value(&reference, "ale_py_frames_per_s")?;
    println!("ours_frames_per_s={ours_fps:.0}");
    println!("ale_py_frames_per_s={ref_fps:.0}");
    println!("ratio={:.3}", ours_fps / ref_fps);
    Ok(())
}

/// A virtualenv under `target/` with the reference's Python packages; created once, and
/// re-created if the package list changes.
fn bench_venv(packages: &[&str]) -> Result<PathBuf> {
    let dir = repo_root().join("target/bench-venv");
    let python = dir.join("bin/python");
    let stamp = dir.join("installed.txt");
    let wanted = packages.join("\n");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    cmd::run(Command::new("python3").args(["-m", "venv"]).arg(&dir))
        .context("creating the benchmark virtualenv (Debian: apt-get install python3-venv)")?;
    cmd::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// The value of the last `key=value` line in a benchmark's output.
fn last_value(output: &str, key: &str) -> Result<f64> {
    let prefix = format!("{key}=");
    let Some(line) = output.lines().rev().find_map(|l| l.trim().strip_prefix(&prefix)) else {
        bail!("the benchmark printed no `{key}=` line; its output was:\n{output}");
    };
    line.parse().with_context(|| format!("`{key}={line}` is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_value_takes_the_last_matching_line() {
        let out = "x=1\nours_frames_per_s=10\nnoise\nours_frames_per_s=12.5\n";
        assert_eq!(last_value(out, "ours_frames_per_s").unwrap(), 12.5);
        assert!(last_value(out, "missing").unwrap_err().to_string().contains("missing"));
        assert!(last_value("k=abc", "k").is_err());
    }
}
