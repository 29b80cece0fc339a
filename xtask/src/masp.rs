//! The `masp` runner as xtask's commands start it: set-up, a release build, then the binary
//! in the repository root.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd::{cargo, repo_root, run};

/// Set-up and a release build of the runner; the binary's path.
pub fn build_release_masp() -> Result<PathBuf> {
    crate::setup::run()?;
    run(cargo().args(["build", "--release", "-p", "masp-runner", "--bin", "masp"]))
        .context("building the runner")?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    Ok(target.join("release").join(format!("masp{}", std::env::consts::EXE_SUFFIX)))
}

/// Set-up, a release build of the runner, then `masp SUBCOMMAND ARGS` in the repository
/// root. On Unix the runner replaces this process (exec), so Ctrl-C reaches only the
/// runner (and its children), which checkpoints and exits cleanly.
pub fn release_masp(subcommand: &str, args: &[String]) -> Result<()> {
    let binary = build_release_masp()?;
    let mut masp = Command::new(&binary);
    masp.arg(subcommand).args(args).current_dir(repo_root());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = masp.exec();
        Err(err).with_context(|| format!("could not start {}", binary.display()))
    }
    #[cfg(not(unix))]
    run(&mut masp)
}
