//! The crate's one error type: what a configuration or a map got wrong, and how to fix it.
//!
//! ```
//! use rl_env::{Corridor, CorridorConfig, Error};
//! let err = Corridor::try_new(CorridorConfig { length: 1, ..Default::default() }).unwrap_err();
//! assert!(matches!(err, Error::InvalidConfig { field: "length", .. }));
//! ```

/// Everything that can go wrong when building an environment from its configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A configuration field holds a value the environment cannot work with.
    #[error("invalid {config}.{field} = {value}: {fix}")]
    InvalidConfig {
        /// The configuration struct, e.g. `CorridorConfig`.
        config: &'static str,
        field: &'static str,
        /// The rejected value, as written by `Debug`.
        value: String,
        /// What a valid value looks like.
        fix: String,
    },
    /// A `KeyDoor` ASCII map cannot be used; `line` and `column` count from 1 (0 when the
    /// problem is the map as a whole, e.g. a missing key).
    #[error("invalid key-door map at line {line}, column {column}: {reason}")]
    InvalidMap { line: usize, column: usize, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn config(
        config: &'static str,
        field: &'static str,
        value: impl std::fmt::Debug,
        fix: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig { config, field, value: format!("{value:?}"), fix: fix.into() }
    }

    pub(crate) fn map(line: usize, column: usize, reason: impl Into<String>) -> Self {
        Error::InvalidMap { line, column, reason: reason.into() }
    }
}
