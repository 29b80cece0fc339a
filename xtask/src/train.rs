//! `cargo xtask train [ARGS]`: set-up (ALE sources and ROMs), a release build of the runner,
//! then `masp train ARGS` in the repository root; with no ARGS the built-in default config
//! (MASP on Pong, 64 random macros, the machado protocol).
//!
//! On Unix the runner replaces this process (exec), so Ctrl-C reaches only the runner, which
//! writes a checkpoint and exits cleanly.

use anyhow::Result;

use crate::masp;

pub fn run(args: &[String]) -> Result<()> {
    masp::release_masp("train", args)
}
