//! What the tests that run `masp` share: the repository root, the toy preset, fresh output
//! folders and running the binary. The runner's tests and the workspace's `tests/` both
//! include this file; each says in its `common/mod.rs` which binary it runs and where the
//! repository root is, the two things that differ between them.

use std::path::PathBuf;
use std::process::Command;

use super::{MASP, ROOT};

pub fn root() -> PathBuf {
    PathBuf::from(ROOT)
}

/// `configs/toy.toml`, the corridor preset.
pub fn toy() -> String {
    root().join("configs/toy.toml").display().to_string()
}

/// An empty folder `suite/name` under cargo's scratch folder for integration tests.
pub fn fresh_dir(suite: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(suite).join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `masp ARGS`; (success, stdout, stderr).
pub fn masp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(MASP)
        .args(args)
        // The toy network is tiny: one thread is faster than several.
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("running masp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `masp train` on the toy preset into `out` with each of `sets` as a `--set`;
/// (success, stdout, stderr).
pub fn train_toy(out: &std::path::Path, sets: &[&str]) -> (bool, String, String) {
    let toy = toy();
    let mut args = vec!["train", "--config", &toy, "--out", out.to_str().unwrap()];
    for set in sets {
        args.extend(["--set", set]);
    }
    masp(&args)
}
