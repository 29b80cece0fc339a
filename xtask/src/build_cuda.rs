//! `cargo xtask build-cuda`: the CUDA build on a machine without a GPU or a CUDA toolkit
//! (the recipe of `shared/design/CUDA.md`).
//!
//! 1. The CUDA 13.0 compiler and libraries from the Python package index, in a virtualenv
//!    under `target/` (cudarc 0.19 rejects toolkits newer than it knows, so versions are pinned).
//! 2. A link folder with unversioned names for the versioned libraries, and a stub
//!    `libcuda.so` (the driver is only on the GPU machine) that defines every `cu*` symbol the
//!    cudarc rlib leaves undefined.
//! 3. `cargo build --release --features cuda` into `target/cuda`, a target folder of its own
//!    so the `-L` flag does not invalidate the CPU build's cache. On the very first run the
//!    stub does not exist yet: that build fails at its final link, the stub is written from
//!    the cudarc rlib it left, and the build is run again (only the link remains).
//!
//! On the GPU machine the real driver's `libcuda.so.1` is used, and `LD_LIBRARY_PATH` must name
//! the folders with libcublas.so.13 & co (PyTorch's site-packages/nvidia/ has them there).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cmd::{self, repo_root};

/// CUDA.md's tried set: versions that agree with each other and with cudarc 0.19.10.
const CUDA_PACKAGES: &[&str] = &[
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.*",
    "nvidia-cuda-runtime==13.0.*",
    "nvidia-cuda-crt==13.0.*",
    "nvidia-cuda-cccl==13.0.*",
    "nvidia-cublas==13.0.*",
    "nvidia-cuda-nvrtc==13.0.*",
    "nvidia-curand",
];

/// Libraries candle links by their unversioned names.
const LINKED_LIBS: &[&str] = &["cublas", "cublasLt", "cudart", "curand", "nvrtc"];

/// H100 and H200.
const COMPUTE_CAP: &str = "90";

/// What the CUDA build produces: the packages and targets to build.
const BUILD_ARGS: &[&str] = &["-p", "rainbow", "--features", "rainbow/cuda", "--example", "learner_step"];

pub fn run() -> Result<()> {
    let venv = crate::bench::venv("cuda", CUDA_PACKAGES)?;
    let root = toolkit_root(&venv)?;
    let link_dir = repo_root().join("target/cuda-link");
    fs::create_dir_all(&link_dir)?;
    link_versioned_libs(&venv, &link_dir)?;
    let target_dir = repo_root().join("target/cuda");
    let build = || {
        let mut c = cuda_cargo(&root, &link_dir, &target_dir);
        c.args(["build", "--release"]).args(BUILD_ARGS);
        c
    };
    if !link_dir.join("libcuda.so").exists() {
        // The first build can only fail at the final link, for want of the stub; by then the
        // cudarc rlib that says which driver symbols the stub needs exists. Building exactly
        // the final targets (not a subset with other features) keeps candle compiled once.
        let _ = build().status();
    }
    write_driver_stub(&target_dir, &link_dir)?;
    cmd::run(&mut build())?;
    // Stripped copies in one folder: what travels to the GPU machine (at most 64 MiB there).
    let dist = target_dir.join("dist");
    fs::create_dir_all(&dist)?;
    let binary = dist.join("learner_step");
    cmd::run(
        Command::new("strip").arg("-o").arg(&binary).arg(target_dir.join("release/examples/learner_step")),
    )?;
    println!("build-cuda: built {} ({} MiB)", binary.display(), fs::metadata(&binary)?.len() >> 20);
    println!("build-cuda: on the GPU machine set LD_LIBRARY_PATH to the folders holding libcublas.so.13, libcublasLt.so.13, libcudart.so.13, libcurand.so.10 and libnvrtc.so.13");
    Ok(())
}

fn cuda_cargo(root: &Path, link_dir: &Path, target_dir: &Path) -> Command {
    let mut c = cmd::cargo();
    let path = format!("{}:{}", root.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    c.env("CUDA_ROOT", root)
        .env("CUDA_PATH", root)
        .env("PATH", path)
        .env("CUDA_COMPUTE_CAP", COMPUTE_CAP)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTFLAGS", format!("-L native={}", link_dir.display()));
    c
}

/// `<venv>/lib/python3.*/site-packages/nvidia/cu13`, where the pip packages put bin/nvcc,
/// include/ and lib/.
fn toolkit_root(venv_python: &Path) -> Result<PathBuf> {
    let nvidia = site_packages(venv_python)?.join("nvidia");
    let root = nvidia.join("cu13");
    if !root.join("bin/nvcc").exists() {
        bail!("nvcc not found under {}: the CUDA pip packages did not install as expected", root.display());
    }
    Ok(root)
}

fn site_packages(venv_python: &Path) -> Result<PathBuf> {
    let out = cmd::output(
        Command::new(venv_python).args(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]),
    )?;
    Ok(PathBuf::from(out.trim()))
}

/// Symlinks `lib<name>.so` to the versioned file found anywhere under site-packages/nvidia.
fn link_versioned_libs(venv_python: &Path, link_dir: &Path) -> Result<()> {
    let nvidia = site_packages(venv_python)?.join("nvidia");
    let files = walk(&nvidia)?;
    for lib in LINKED_LIBS {
        let prefix = format!("lib{lib}.so.");
        let found = files
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
            .with_context(|| format!("no {prefix}* under {}", nvidia.display()))?;
        let link = link_dir.join(format!("lib{lib}.so"));
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(found, &link).with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// A `libcuda.so` with an empty function for every `cu*` symbol cudarc needs, as NVIDIA's
/// toolkit ships for linking on machines without a driver. Never loaded at run time: the
/// soname is `libcuda.so.1`, which resolves to the real driver there.
fn write_driver_stub(target_dir: &Path, link_dir: &Path) -> Result<()> {
    let deps = target_dir.join("release/deps");
    let rlib = fs::read_dir(&deps)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("libcudarc-") && n.to_string_lossy().ends_with(".rlib")
            })
        })
        .with_context(|| format!("no cudarc rlib in {}", deps.display()))?;
    let nm = cmd::output(Command::new("nm").arg(&rlib))?;
    let symbols = driver_symbols(&nm);
    if symbols.is_empty() {
        bail!("{} references no cu* driver symbols; the stub would be empty", rlib.display());
    }
    let source = link_dir.join("cuda_stub.c");
    let body: String = symbols.iter().map(|s| format!("void {s}(void) {{}}\n")).collect();
    fs::write(&source, body)?;
    cmd::run(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o"])
            .arg(link_dir.join("libcuda.so"))
            .arg(&source),
    )
}

/// The undefined `cu[A-Z]*` symbols in `nm` output, sorted and deduplicated.
fn driver_symbols(nm: &str) -> Vec<String> {
    let mut symbols: Vec<String> = nm
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("U"), Some(sym)) => Some(sym),
                _ => None,
            }
        })
        .filter(|s| s.starts_with("cu") && s[2..].starts_with(|c: char| c.is_ascii_uppercase()))
        .map(str::to_owned)
        .collect();
    symbols.sort();
    symbols.dedup();
    symbols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_symbols_are_the_undefined_cu_ones() {
        let nm = "cudarc-1.o:\n                 U cuInit\n                 U cuMemAlloc_v2\n0000 T cudarc_thing\n                 U cudaFree\n                 U cuInit\n                 U memcpy\n";
        assert_eq!(driver_symbols(nm), ["cuInit", "cuMemAlloc_v2"]);
    }
}
