//! ROM lookup by game name.
//!
//! ROMs are the `<game>.bin` files in one folder: `ALE_ROM_DIR` if set, else the ROM folder
//! of the ale-py sdist that `arcade-learning-environment-sys` was built from
//! (`src/ale/python/roms`, fetched by `cargo xtask setup`). Names are ALE's snake_case ROM ids
//! (`space_invaders`); `SpaceInvaders`, `space-invaders`, `Space Invaders` and `pong.bin` find
//! the same files.
//!
//! The folder also holds `combat`, `joust`, `maze_craze` and `warlords`, which ALE supports
//! only as multi-player games: they are listed but [`crate::Ale::load_rom`] refuses them.
//!
//! ```no_run
//! let path = ale_env::rom_path("SpaceInvaders")?;
//! assert!(path.ends_with("space_invaders.bin"));
//! # Ok::<(), ale_env::Error>(())
//! ```

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable naming a folder of `.bin` ROMs to use instead of the sdist's.
pub const ROM_DIR_ENV: &str = "ALE_ROM_DIR";

/// How many close names an unknown-game error offers.
const MAX_SUGGESTIONS: usize = 5;
/// Below this normalised edit similarity a name is not worth suggesting.
const MIN_SUGGESTION_SIMILARITY: f64 = 0.4;

/// The ROM folder: `ALE_ROM_DIR` if set and non-empty, else the sdist's ROM folder.
pub fn rom_dir() -> Result<PathBuf> {
    let env_dir = std::env::var_os(ROM_DIR_ENV).filter(|v| !v.is_empty());
    resolve_rom_dir(env_dir.as_deref().map(Path::new))
}

/// The ROM folder given an explicit override (what `ALE_ROM_DIR` would say), checked to exist.
pub fn resolve_rom_dir(override_dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match override_dir {
        Some(dir) => dir.to_path_buf(),
        None => Path::new(ale_sys::SOURCE_DIR).join("src/ale/python/roms"),
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(Error::RomDirMissing { path: dir })
    }
}

/// The games in the ROM folder ([`rom_dir`]): the `.bin` file stems, sorted.
pub fn available_games() -> Result<Vec<String>> {
    available_games_in(&rom_dir()?)
}

/// The games in `dir`: the `.bin` file stems, sorted.
pub fn available_games_in(dir: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(dir).map_err(|_| Error::RomDirMissing { path: dir.to_path_buf() })?;
    let mut games: Vec<String> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension() == Some(OsStr::new("bin")))
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
        .collect();
    games.sort();
    Ok(games)
}

/// The ROM file for `game` in the ROM folder ([`rom_dir`]).
pub fn rom_path(game: &str) -> Result<PathBuf> {
    rom_path_in(&rom_dir()?, game)
}

/// The ROM file for `game` in `dir`; an unknown name gives [`Error::UnknownGame`] with the
/// closest names.
pub fn rom_path_in(dir: &Path, game: &str) -> Result<PathBuf> {
    let games = available_games_in(dir)?;
    let wanted = snake_case(game);
    if let Some(found) = games.iter().find(|g| **g == wanted) {
        return Ok(dir.join(format!("{found}.bin")));
    }
    // Digits and acronyms split ambiguously (`TicTacToe3D`, `tic_tac_toe_3d`), so compare
    // with the separators gone as well.
    let wanted_key = squash(&wanted);
    let mut same_key = games.iter().filter(|g| squash(g) == wanted_key);
    if let (Some(found), None) = (same_key.next(), same_key.next()) {
        return Ok(dir.join(format!("{found}.bin")));
    }
    Err(Error::UnknownGame {
        name: game.to_owned(),
        suggestions: closest(&wanted_key, &games),
        rom_dir: dir.to_path_buf(),
    })
}

/// `SpaceInvaders`, `space-invaders`, `Space Invaders`, `pong.bin` -> `space_invaders`, `pong`.
fn snake_case(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_suffix(".bin").unwrap_or(name);
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if c == '-' || c == ' ' || c == '_' {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        } else if c.is_uppercase() {
            // A word starts at an upper-case letter after a lower-case letter or digit.
            if prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Lower-case letters and digits only: the name with every separator gone.
fn squash(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Up to `MAX_SUGGESTIONS` games closest to `wanted_key`, closest first.
fn closest(wanted_key: &str, games: &[String]) -> Vec<String> {
    let mut scored: Vec<(f64, &String)> = games
        .iter()
        .map(|g| {
            let key = squash(g);
            let mut score = strsim::normalized_damerau_levenshtein(wanted_key, &key);
            // A typed prefix or fragment ("invaders") is a strong hint even when short.
            if !wanted_key.is_empty() && key.contains(wanted_key) {
                score = score.max(0.9);
            }
            (score, g)
        })
        .filter(|(score, _)| *score >= MIN_SUGGESTION_SIMILARITY)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(MAX_SUGGESTIONS).map(|(_, g)| g.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throw-away folder of empty `.bin` files (names only matter here).
    fn rom_folder(tag: &str, games: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ale-env-roms-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for g in games {
            fs::write(dir.join(format!("{g}.bin")), b"").unwrap();
        }
        fs::write(dir.join("md5.json"), b"{}").unwrap();
        dir
    }

    #[test]
    fn snake_case_accepts_the_usual_spellings() {
        for (given, want) in [
            ("pong", "pong"),
            ("Pong", "pong"),
            ("space_invaders", "space_invaders"),
            ("SpaceInvaders", "space_invaders"),
            ("space-invaders", "space_invaders"),
            ("Space Invaders", "space_invaders"),
            ("pong.bin", "pong"),
            ("MontezumaRevenge", "montezuma_revenge"),
            ("  Breakout ", "breakout"),
        ] {
            assert_eq!(snake_case(given), want, "{given}");
        }
    }

    #[test]
    fn rom_path_finds_each_spelling() {
        let dir = rom_folder("spellings", &["pong", "space_invaders", "tic_tac_toe_3d", "pitfall2"]);
        for (given, file) in [
            ("pong", "pong.bin"),
            ("Pong", "pong.bin"),
            ("space_invaders", "space_invaders.bin"),
            ("SpaceInvaders", "space_invaders.bin"),
            ("space-invaders", "space_invaders.bin"),
            ("TicTacToe3D", "tic_tac_toe_3d.bin"),
            ("Pitfall2", "pitfall2.bin"),
        ] {
            assert_eq!(rom_path_in(&dir, given).unwrap(), dir.join(file), "{given}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn available_games_lists_sorted_bin_stems_only() {
        let dir = rom_folder("list", &["zaxxon", "pong", "air_raid"]);
        assert_eq!(available_games_in(&dir).unwrap(), ["air_raid", "pong", "zaxxon"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_name_suggests_closest_first() {
        let dir = rom_folder("unknown", &["pong", "kong", "breakout", "space_invaders"]);
        match rom_path_in(&dir, "pongg") {
            Err(Error::UnknownGame { name, suggestions, rom_dir }) => {
                assert_eq!(name, "pongg");
                assert_eq!(suggestions.first().map(String::as_str), Some("pong"));
                assert!(!suggestions.contains(&"space_invaders".to_string()));
                assert_eq!(rom_dir, dir);
            }
            other => panic!("expected UnknownGame, got {other:?}"),
        }
        match rom_path_in(&dir, "invaders") {
            Err(Error::UnknownGame { suggestions, .. }) => {
                assert_eq!(suggestions.first().map(String::as_str), Some("space_invaders"))
            }
            other => panic!("expected UnknownGame, got {other:?}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn suggestions_are_capped() {
        let games: Vec<String> = (0..20).map(|i| format!("pong{i}")).collect();
        assert_eq!(closest("pong", &games).len(), MAX_SUGGESTIONS);
    }

    #[test]
    fn missing_override_dir_is_rom_dir_missing() {
        let nowhere = std::env::temp_dir().join("ale-env-roms-definitely-not-here");
        match resolve_rom_dir(Some(&nowhere)) {
            Err(Error::RomDirMissing { path }) => assert_eq!(path, nowhere),
            other => panic!("expected RomDirMissing, got {other:?}"),
        }
        assert!(matches!(available_games_in(&nowhere), Err(Error::RomDirMissing { .. })));
    }

    #[test]
    fn existing_override_dir_is_used() {
        let dir = rom_folder("override", &["pong"]);
        assert_eq!(resolve_rom_dir(Some(&dir)).unwrap(), dir);
        fs::remove_dir_all(&dir).unwrap();
    }
}
