//! The crate's one error type: every fallible call in `ale-env` returns [`Result`].
//!
//! ```
//! use ale_env::{rom_path, Error};
//! match rom_path("pongg") {
//!     Err(Error::UnknownGame { suggestions, .. }) => assert!(suggestions.contains(&"pong".to_string())),
//!     Err(Error::RomDirMissing { .. }) => {} // ROMs not fetched on this machine
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

use std::path::PathBuf;

/// What went wrong in ALE, ROM lookup or configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ALE (through its C shim) refused or failed an operation.
    #[error("ALE {op} failed: {message}")]
    Ale {
        /// The `Ale` method that failed, e.g. `"set_int"`.
        op: &'static str,
        /// ALE's own message.
        message: String,
    },

    /// No ROM of that name in the ROM folder.
    #[error(
        "unknown game `{name}`{}; list all games with `ale_env::available_games()` \
         (ROM folder: {})",
        did_you_mean(suggestions),
        rom_dir.display()
    )]
    UnknownGame {
        /// The name as given.
        name: String,
        /// Up to five known games closest to `name`, closest first.
        suggestions: Vec<String>,
        /// The folder that was searched.
        rom_dir: PathBuf,
    },

    /// The ROM folder does not exist.
    #[error(
        "ROM folder {} does not exist: run `cargo xtask setup` to fetch ALE's ROMs, or set \
         ALE_ROM_DIR to a folder of .bin files",
        path.display()
    )]
    RomDirMissing {
        /// The folder that was looked for.
        path: PathBuf,
    },

    /// The file's checksum is not one of the ROMs this ALE version supports.
    #[error(
        "{} is not a ROM this ALE version supports (its MD5 matches none of ALE's games); use \
         the ROMs from the pinned ale-py sdist",
        path.display()
    )]
    UnsupportedRom {
        /// The ROM file.
        path: PathBuf,
    },

    /// A saved state is malformed, or was saved from a different ROM.
    #[error("bad ALE state: {message}")]
    BadState {
        /// Why the state was refused.
        message: String,
    },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid config `{field}`: {message}")]
    InvalidConfig {
        /// The config field, as named in the config file.
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// `std::result::Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_game_message_lists_suggestions_and_how_to_list_all() {
        let e = Error::UnknownGame {
            name: "pongg".into(),
            suggestions: vec!["pong".into(), "kong".into()],
            rom_dir: PathBuf::from("/roms"),
        };
        let msg = e.to_string();
        assert!(msg.contains("`pongg`"), "{msg}");
        assert!(msg.contains("did you mean pong, kong?"), "{msg}");
        assert!(msg.contains("available_games()"), "{msg}");
        assert!(msg.contains("/roms"), "{msg}");
    }

    #[test]
    fn rom_dir_missing_names_the_fix() {
        let msg = Error::RomDirMissing { path: PathBuf::from("/nowhere") }.to_string();
        assert!(msg.contains("cargo xtask setup"), "{msg}");
        assert!(msg.contains("ALE_ROM_DIR"), "{msg}");
    }
}
