//! `cargo xtask train [ARGS]`: set-up (ALE sources and ROMs), a release build of the runner,
//! then `masp train ARGS` in the repository root; with no ARGS the built-in default config
//! (MASP on Pong, 64 random macros, the machado protocol).
//!
//! On Unix the runner replaces this process (exec), so Ctrl-C reaches only the runner, which
//! writes a checkpoint and exits cleanly.

use anyhow::{Context, Result};

use crate::cmd;

pub fn run(args: &[String]) -> Result<()> {
    crate::setup::run()?;
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "masp-runner", "--bin", "masp"]))
        .context("building the runner")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| cmd::repo_root().join("target"));
    let binary = target.join("release").join(format!("masp{}", std::env::consts::EXE_SUFFIX));
    let mut masp = std::process::Command::new(&binary);
    masp.arg("train").args(args).current_dir(cmd::repo_root());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = masp.exec();
        Err(err).with_context(|| format!("could not start {}", binary.display()))
    }
    #[cfg(not(unix))]
    cmd::run(&mut masp)
}
