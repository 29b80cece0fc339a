//! `cargo xtask setup`: everything a fresh machine needs before the first build, idempotent.
//!
//! 1. System packages: a C++ compiler for ALE, libclang for bindgen, Python with pip for the
//!    fetch. Missing ones are installed with apt-get when running as root, otherwise the error
//!    says what to install.
//! 2. The pinned ale-py sdist (`third_party/ale/pin.toml`): downloaded with pip, its sha256
//!    checked, unpacked atomically into `third_party/ale/<name>/`, and a marker written so
//!    later runs do nothing.
//! 3. The same for stable-retro's sdist (`third_party/retro/pin.toml`: Genesis Plus GX's
//!    sources and the game integrations), then Airstriker's ROM, which the sdist ships as a
//!    free test game, copied into `third_party/retro/roms/` after its sha1 is checked.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::cmd::{self, repo_root};

/// A `third_party/*/pin.toml`: the one place a fetched sdist's version and hash are written.
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

    /// The folder the sdist unpacks to: `ale_py-0.12.1`, `stable_retro-1.0.1`.
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

    let retro_dir = repo_root().join("third_party/retro");
    let pin = Pin::load(&retro_dir.join("pin.toml"))?;
    let sources = ensure_sources(&pin, &retro_dir, &repo_root().join("target/retro-download"))?;
    let rom = install_test_rom(&sources, &retro_dir.join("roms"))?;
    println!(
        "setup: stable-retro {} sources ready in {}, test ROM {}",
        pin.version,
        sources.display(),
        rom.display()
    );
    Ok(())
}

/// The free homebrew game stable-retro ships for its own tests; every other ROM comes from
/// the user through `masp retro import`.
const TEST_GAME: &str = "Airstriker-Genesis-v0";

/// Copies Airstriker's `rom.md` from the sdist to `<rom_dir>/<game>.md`, the name
/// `retro-env` looks for, once its sha1 matches the integration's `rom.sha`.
fn install_test_rom(sources: &Path, rom_dir: &Path) -> Result<PathBuf> {
    let integration = sources.join("stable_retro/data/stable").join(TEST_GAME);
    let target = rom_dir.join(format!("{TEST_GAME}.md"));
    let expected = fs::read_to_string(integration.join("rom.sha"))
        .with_context(|| format!("reading {}", integration.join("rom.sha").display()))?;
    let expected = expected.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    if target.is_file() && sha1_hex(&fs::read(&target)?) == expected {
        return Ok(target);
    }
    let rom = fs::read(integration.join("rom.md"))
        .with_context(|| format!("reading {}", integration.join("rom.md").display()))?;
    let actual = sha1_hex(&rom);
    if actual != expected {
        bail!("{TEST_GAME}'s rom.md has sha1 {actual}, its rom.sha says {expected}: the sdist is not the pinned one; delete third_party/retro and rerun `cargo xtask setup`");
    }
    fs::create_dir_all(rom_dir).with_context(|| format!("creating {}", rom_dir.display()))?;
    fs::write(&target, rom).with_context(|| format!("writing {}", target.display()))?;
    Ok(target)
}

fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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
    .with_context(|| format!("downloading {} {} from the Python package index", pin.package, pin.version))
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
            "sha256 mismatch for {}: expected {expected} (its third_party/*/pin.toml), got {actual}. \
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
    fn the_real_pins_parse() {
        let pin = Pin::load(&repo_root().join("third_party/ale/pin.toml")).unwrap();
        assert_eq!(pin.unpacked_name(), format!("ale_py-{}", pin.version));
        assert_eq!(pin.sha256.len(), 64);
        let pin = Pin::load(&repo_root().join("third_party/retro/pin.toml")).unwrap();
        assert_eq!(pin.unpacked_name(), format!("stable_retro-{}", pin.version));
        assert_eq!(pin.sha256.len(), 64);
    }

    #[test]
    fn sha1_matches_known_digest() {
        // FIPS 180-2, appendix A.1.
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn test_rom_is_installed_only_when_its_sha1_matches() {
        let dir = temp_dir("test-rom");
        let integration = dir.join("src/stable_retro/data/stable").join(TEST_GAME);
        fs::create_dir_all(&integration).unwrap();
        fs::write(integration.join("rom.md"), "rom bytes").unwrap();
        fs::write(integration.join("rom.sha"), "0000000000000000000000000000000000000000\n").unwrap();
        let err = install_test_rom(&dir.join("src"), &dir.join("roms")).unwrap_err().to_string();
        assert!(err.contains("rom.sha") && err.contains(&sha1_hex(b"rom bytes")), "{err}");
        assert!(!dir.join("roms").exists());

        fs::write(integration.join("rom.sha"), format!("{}\n", sha1_hex(b"rom bytes"))).unwrap();
        let installed = install_test_rom(&dir.join("src"), &dir.join("roms")).unwrap();
        assert_eq!(installed, dir.join("roms").join(format!("{TEST_GAME}.md")));
        assert_eq!(fs::read(&installed).unwrap(), b"rom bytes");
    }
}
