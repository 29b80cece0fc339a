//! Stamps the binary with the commit it was built from (`MASP_COMMIT`), so that every run
//! folder can say which code produced it: the short commit, `-dirty` when the code that goes
//! into the binary (`crates/`, `Cargo.toml`, `Cargo.lock`) differs from it, or `unknown`
//! outside a git checkout. Rerun when HEAD moves or that code changes.

use std::process::Command;

/// What the binary is built from, relative to the workspace root.
const CODE: [&str; 3] = ["crates", "Cargo.toml", "Cargo.lock"];

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir("../..").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty());
    let dirty = git(&[&["status", "--porcelain", "--untracked-files=no", "--"][..], &CODE].concat())
        .is_some_and(|changes| !changes.is_empty());
    let stamp = match commit {
        Some(c) if dirty => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=MASP_COMMIT={stamp}");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for file in ["HEAD", "logs/HEAD"] {
            if std::path::Path::new(&dir).join(file).exists() {
                println!("cargo:rerun-if-changed={dir}/{file}");
            }
        }
    }
    for path in CODE {
        println!("cargo:rerun-if-changed=../../{path}");
    }
}
