//! `cargo xtask setup`: everything a fresh machine needs before the first build, idempotent.
//!
//! 1. System packages: a C++ compiler for ALE, libclang for bindgen, Python with pip for the
//!    fetch. Missing ones are installed with apt-get when running as root, otherwise the error
//!    says what to install.
//! 2. The pinned ale-py sdist (`third_party/ale/pin.toml`): downloaded with pip, its sha256
//!    checked, unpacked atomically into `third_party/ale/<name>/`, and a marker written so
//!    later runs do nothing.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::cmd::{self, repo_root};

/// `third_party/ale/pin.toml`: the one place the ALE version and hash are written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub package: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
}

impl Pin {
    pub fn load(path: &Path) -> Result<Pin> {
        let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The folder the sdist unpacks to: `ale_py-0.12.1`.
    pub fn unpacked_name(&self) -> &str {
        self.file.trim_end_matches(".tar.gz")
    }
}

pub fn run() -> Result<()> {
    ensure_system_packages()?;
    let ale_dir = repo_root().join("third_party/ale");
    let pin = Pin::load(&ale_dir.join("pin.toml"))?;
    let sources = ensure_sources(&pin, &ale_dir, &repo_root().join("target/ale-download"))?;
    println!("setup: ALE {} sources and ROMs ready in {}", pin.version, sources.display());
    Ok(())
}

/// A system requirement: how to tell it is there, and the Debian package that provides it.
struct Requirement {
    what: &'static str,
    present: fn() -> bool,
    apt_package: &'static str,
}

const REQUIREMENTS: &[Requirement] = &[
    Requirement { what: "a C++ compiler (g++), to build ALE", present: has_cxx, apt_package: "g++" },
    Requirement { what: "libclang, for bindgen", present: has_libclang, apt_package: "libclang-dev" },
    Requirement { what: "Python 3 with pip, to fetch ale-py", present: has_pip, apt_package: "python3-pip" },
    Requirement {
        what: "a TrueType font (DejaVu Sans), for the text of plots and heatmaps",
        present: has_font,
        apt_package: "fonts-dejavu-core",
    },
];

fn ensure_system_packages() -> Result<()> {
    let missing: Vec<&Requirement> = REQUIREMENTS.iter().filter(|r| !(r.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|r| r.apt_package).collect();
    let needs = missing.iter().map(|r| r.what).collect::<Vec<_>>().join("; ");
    if !(is_root() && succeeds(Command::new("apt-get").arg("--version"))) {
        bail!("missing {needs}. Install them (Debian/Ubuntu: `sudo apt-get install {}`) and rerun `cargo xtask setup`", packages.join(" "));
    }
    println!("setup: installing {} ({needs})", packages.join(" "));
    cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if let Some(r) = missing.iter().find(|r| !(r.present)()) {
        bail!("{} is still missing after installing {}", r.what, r.apt_package);
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn has_cxx() -> bool {
    succeeds(Command::new(std::env::var("CXX").unwrap_or_else(|_| "c++".into())).arg("--version"))
}

fn has_pip() -> bool {
    succeeds(Command::new("python3").args(["-m", "pip", "--version"]))
}

/// bindgen finds libclang through `LIBCLANG_PATH` or the usual library folders.
fn has_font() -> bool {
    Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists()
}

fn has_libclang() -> bool {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LIBCLANG_PATH").map(PathBuf::from).into_iter().collect();
    dirs.extend(
        [
            "/usr/lib",
            "/usr/lib64",
            "/usr/local/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .map(PathBuf::from),
    );
    if let Ok(entries) = fs::read_dir("/usr/lib") {
        dirs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("llvm")))
                .map(|p| p.join("lib")),
        );
    }
    dirs.iter().any(|d| {
        fs::read_dir(d).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("libclang") && name.contains(".so") && !name.starts_with("libclang-cpp")
            })
        })
    })
}

/// Makes sure `ale_dir/<unpacked>` holds the verified sdist; returns that folder.
pub fn ensure_sources(pin: &Pin, ale_dir: &Path, download_dir: &Path) -> Result<PathBuf> {
    let target = ale_dir.join(pin.unpacked_name());
    let marker = target.join(".verified-sha256");
    if fs::read_to_string(&marker).is_ok_and(|s| s.trim() == pin.sha256) {
        return Ok(target);
    }
    let archive = download_dir.join(&pin.file);
    if !archive.exists() {
        download(pin, download_dir)?;
    }
    verify_sha256(&archive, &pin.sha256)?;
    unpack(&archive, ale_dir, &target)?;
    fs::write(&marker, &pin.sha256).with_context(|| format!("writing {}", marker.display()))?;
    Ok(target)
}

fn download(pin: &Pin, download_dir: &Path) -> Result<()> {
    println!("setup: downloading {}=={} (source distribution) with pip", pin.package, pin.version);
    cmd::run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                &pin.package,
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(download_dir)
            .arg(format!("{}=={}", pin.package, pin.version)),
    )
    .context("downloading the ALE sources from the Python package index")
}

/// Fails unless the file's sha256 is `expected`; the error names both hashes and the fix.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if actual != expected.to_ascii_lowercase() {
        bail!(
            "sha256 mismatch for {}: expected {expected} (third_party/ale/pin.toml), got {actual}. \
             The download is corrupt or not the pinned release: delete it and rerun `cargo xtask setup`",
            path.display()
        );
    }
    Ok(())
}

/// Unpacks into a temporary folder first, so an interrupted set-up never leaves a half tree
/// that looks complete.
fn unpack(archive: &Path, ale_dir: &Path, target: &Path) -> Result<()> {
    let staging = ale_dir.join(".unpacking");
    let _ = fs::remove_dir_all(&staging);
    let file = fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&staging)
        .with_context(|| format!("unpacking {}", archive.display()))?;
    let name = target.file_name().expect("target has a name");
    if !staging.join(name).is_dir() {
        bail!("{} does not contain the folder {}", archive.display(), name.to_string_lossy());
    }
    let _ = fs::remove_dir_all(target);
    fs::rename(staging.join(name), target)
        .with_context(|| format!("moving sources into {}", target.display()))?;
    fs::remove_dir_all(&staging).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-setup-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn sha256_matches_known_digest() {
        let dir = temp_dir("sha-ok");
        let file = dir.join("abc");
        fs::write(&file, "abc").unwrap();
        // FIPS 180-2, appendix B.1.
        verify_sha256(&file, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").unwrap();
    }

    #[test]
    fn bad_hash_is_a_clear_error() {
        let dir = temp_dir("sha-bad");
        let file = dir.join("tampered.tar.gz");
        fs::write(&file, "not the pinned release").unwrap();
        let err = verify_sha256(&file, &"0".repeat(64)).unwrap_err().to_string();
        assert!(err.contains("sha256 mismatch"), "{err}");
        assert!(err.contains("tampered.tar.gz") && err.contains("cargo xtask setup"), "{err}");
    }

    #[test]
    fn ensure_sources_rejects_a_tampered_archive_and_leaves_no_tree() {
        let dir = temp_dir("tampered");
        let pin = Pin {
            package: "ale-py".into(),
            version: "0.0.0".into(),
            file: "ale_py-0.0.0.tar.gz".into(),
            sha256: "0".repeat(64),
        };
        fs::write(dir.join(&pin.file), "junk").unwrap();
        let err = ensure_sources(&pin, &dir, &dir).unwrap_err();
        assert!(format!("{err:#}").contains("sha256 mismatch"));
        assert!(!dir.join("ale_py-0.0.0").exists());
    }

    #[test]
    fn verified_sources_unpack_once_and_are_then_reused() {
        let dir = temp_dir("unpack");
        let archive = dir.join("pkg-1.0.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                fs::File::create(&archive).unwrap(),
                flate2::Compression::fast(),
            );
            let mut tar = tar::Builder::new(gz);
            let mut header = tar::Header::new_gnu();
            header.set_size(5);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, "pkg-1.0/src/hello.txt", &b"hello"[..]).unwrap();
            tar.into_inner().unwrap().finish().unwrap();
        }
        let sha: String =
            Sha256::digest(fs::read(&archive).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
        let pin =
            Pin { package: "pkg".into(), version: "1.0".into(), file: "pkg-1.0.tar.gz".into(), sha256: sha };
        let out = ensure_sources(&pin, &dir, &dir).unwrap();
        assert_eq!(fs::read_to_string(out.join("src/hello.txt")).unwrap(), "hello");
        // A second run must not touch the archive: remove it and it still succeeds.
        fs::remove_file(&archive).unwrap();
        assert_eq!(ensure_sources(&pin, &dir, &dir).unwrap(), out);
    }

    #[test]
    fn the_real_pin_parses() {
        let pin = Pin::load(&repo_root().join("third_party/ale/pin.toml")).unwrap();
        assert_eq!(pin.unpacked_name(), format!("ale_py-{}", pin.version));
        assert_eq!(pin.sha256.len(), 64);
    }
}
