//! ROM lookup and import. ROMs are `<Game>.md` files (the integration's name) in one folder:
//! `RETRO_ROM_DIR` if set, else `third_party/retro/roms`, where `cargo xtask setup` puts
//! Airstriker's. Other games' ROMs are the user's own: [`import`] (`masp retro import`) finds
//! them in files and zip archives by sha1 against the integrations' `rom.sha`.
//!
//! ```no_run
//! let game = retro_env::Integration::load("Airstriker-Genesis-v0")?;
//! let rom = retro_env::rom_path(&game)?;
//! # Ok::<(), retro_env::Error>(())
//! ```

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::error::{io, Error, Result};
use crate::integration::Integration;

/// Environment variable naming a folder of ROMs to use instead of `third_party/retro/roms`.
pub const ROM_DIR_ENV: &str = "RETRO_ROM_DIR";

/// The ROM folder: `RETRO_ROM_DIR` if set and non-empty, else `third_party/retro/roms`.
pub fn rom_dir() -> PathBuf {
    std::env::var_os(ROM_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(retro_sys::DEFAULT_ROM_DIR))
}

/// The ROM file of `game` in [`rom_dir`]; [`Error::RomMissing`] names the fix.
pub fn rom_path(game: &Integration) -> Result<PathBuf> {
    rom_path_in(&rom_dir(), game)
}

/// The ROM file of `game` in `dir`.
pub fn rom_path_in(dir: &Path, game: &Integration) -> Result<PathBuf> {
    let path = dir.join(format!("{}.{}", game.name, rom_extension(&game.name)));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::RomMissing { game: game.name.clone(), sha1: game.rom_sha1.clone(), path })
    }
}

/// The file extension the core expects for a game's system (it picks the console by it).
fn rom_extension(game: &str) -> &'static str {
    match game.rsplit('-').nth(1) {
        Some("Sms") => "sms",
        Some("GameGear") => "gg",
        _ => "md",
    }
}

/// One ROM recognised by [`import`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub game: String,
    /// Where it came from: the file, or `archive.zip:member`.
    pub source: String,
    pub path: PathBuf,
}

/// Scans `paths` (files, folders, zip archives) for ROMs whose sha1 is some integration's
/// `rom.sha` in `integrations`, and copies each to `rom_dir/<Game>.md`. Files that match no
/// game are skipped; a path that cannot be read is an error.
pub fn import(paths: &[PathBuf], integrations: &Path, rom_dir: &Path) -> Result<Vec<Imported>> {
    let known = known_roms(integrations)?;
    let mut imported = Vec::new();
    let mut found = |bytes: &[u8], source: String| -> Result<()> {
        let Some(game) = known.get(&sha1_hex(bytes)) else { return Ok(()) };
        std::fs::create_dir_all(rom_dir).map_err(io(rom_dir))?;
        let path = rom_dir.join(format!("{game}.{}", rom_extension(game)));
        std::fs::write(&path, bytes).map_err(io(&path))?;
        imported.push(Imported { game: game.clone(), source, path });
        Ok(())
    };
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)?;
    }
    for file in files {
        let bytes = std::fs::read(&file).map_err(io(&file))?;
        if bytes.starts_with(b"PK\x03\x04") {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes))
                .map_err(|e| Error::Io { path: file.clone(), source: e.into() })?;
            for i in 0..archive.len() {
                let mut member =
                    archive.by_index(i).map_err(|e| Error::Io { path: file.clone(), source: e.into() })?;
                if member.is_dir() {
                    continue;
                }
                let name = member.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("member {i}"));
                let mut data = Vec::new();
                member.read_to_end(&mut data).map_err(io(&file))?;
                found(&data, format!("{}:{name}", file.display()))?;
            }
        } else {
            found(&bytes, file.display().to_string())?;
        }
    }
    Ok(imported)
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).map_err(io(path))?.filter_map(|e| Some(e.ok()?.path())).collect();
        entries.sort();
        for entry in entries {
            collect_files(&entry, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// sha1 -> game name over every integration folder's `rom.sha` (one sha1 a line).
fn known_roms(integrations: &Path) -> Result<HashMap<String, String>> {
    let mut known = HashMap::new();
    for entry in std::fs::read_dir(integrations).map_err(io(integrations))? {
        let dir = entry.map_err(io(integrations))?.path();
        let Ok(text) = std::fs::read_to_string(dir.join("rom.sha")) else { continue };
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { continue };
        for sha in text.split_whitespace() {
            known.insert(sha.to_ascii_lowercase(), name.to_owned());
        }
    }
    Ok(known)
}

/// Lower-case hex sha1, the form `rom.sha` files hold.
pub fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
