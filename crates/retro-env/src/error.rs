//! The crate's one error type: every fallible call in `retro-env` returns [`Result`].

use std::path::PathBuf;

/// What went wrong in the core, an integration, or a ROM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Genesis Plus GX keeps its state in C globals: a second live core would share it.
    #[error(
        "a Genesis Plus GX core is already live in this process; the core keeps its state in \
         C globals, so drop the other `Core` (or `RetroEnv`) first, or run each copy in its own \
         process"
    )]
    CoreInUse,

    /// The core refused or failed an operation.
    #[error("Genesis Plus GX {op} failed: {message}")]
    Core {
        /// The libretro call that failed, e.g. `"retro_load_game"`.
        op: &'static str,
        message: String,
    },

    /// No integration of that name under the integrations folder.
    #[error("unknown game `{name}`{}; integrations are in {}", did_you_mean(suggestions), dir.display())]
    UnknownGame { name: String, suggestions: Vec<String>, dir: PathBuf },

    /// The game's ROM has not been imported.
    #[error(
        "no ROM for {game}: expected {} with sha1 {sha1}. Import your copy with `masp retro \
         import PATH...` (files or zip archives; it is matched by sha1)",
        path.display()
    )]
    RomMissing { game: String, sha1: String, path: PathBuf },

    /// A file of an integration, or a ROM, could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An integration file is not what stable-retro's format says.
    #[error("{}: {message}", path.display())]
    Integration { path: PathBuf, message: String },

    /// The scenario needs stable-retro's Lua interpreter, which this front end does not embed.
    #[error(
        "{}: the scenario of {game} uses a Lua script ({what}); only variable-based reward and \
         done rules are supported: choose a game whose scenario.json has none, or another \
         reward (e.g. `reward = \"health-difference\"` for StreetFighter II)",
        path.display()
    )]
    LuaScenario { game: String, path: PathBuf, what: String },

    /// A configuration field holds a value the env cannot work with.
    #[error("invalid {config}.{field} = {value}: {fix}")]
    InvalidConfig {
        /// The configuration struct, `RetroConfig`.
        config: &'static str,
        field: &'static str,
        /// The rejected value, as written by `Debug`.
        value: String,
        /// What a valid value looks like.
        fix: String,
    },
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Attaches the path to an I/O error.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
