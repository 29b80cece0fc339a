//! The crate's one error type: which entry of a pool, a list or a file is wrong, and how.
//!
//! Every variant carries structured fields, so a caller (or a test) can match on what went
//! wrong; the `Display` text is complete on its own, so `{err}` is enough for a user.
//!
//! ```
//! use macro_actions::{ActionPool, Error};
//! let err = ActionPool::from_toml(
//!     r#"version = 1
//!        primitives = ["LEFT", "RIGHT"]
//!        macros = ["RIGHT+RIGHT", "RIGHT+RIGHT"]"#,
//! )
//! .unwrap_err();
//! assert!(matches!(err, Error::DuplicateMacro { entry: 1, first: 0, .. }));
//! ```

use std::path::PathBuf;

/// Everything that can go wrong when building, loading or using an action pool.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field holds a value that cannot work.
    #[error("invalid {config}.{field} = {value}: {fix}")]
    InvalidConfig {
        /// The configuration struct, e.g. `RandomConfig`.
        config: &'static str,
        field: &'static str,
        /// The rejected value, as written by `Debug`.
        value: String,
        /// What a valid value looks like.
        fix: String,
    },

    /// The primitive action names cannot identify actions: one is empty, repeated, or
    /// contains the `+` that joins names into macro names.
    #[error("primitive action {index} (`{name}`): {reason}")]
    InvalidPrimitive { index: usize, name: String, reason: String },

    /// A macro with no actions.
    #[error("macros[{entry}] is empty: a macro needs at least two primitive actions")]
    EmptyMacro {
        /// Position in the list of macros (0-based, primitives not counted).
        entry: usize,
    },

    /// A macro refers to an action index that is not a primitive.
    #[error(
        "macros[{entry}] ({name}): action {action} at position {position} is not a primitive \
         action (valid indices: 0..{num_primitives})"
    )]
    ActionOutOfRange {
        entry: usize,
        /// The macro as written, out-of-range indices shown as `#index`.
        name: String,
        position: usize,
        action: i64,
        num_primitives: usize,
    },

    /// Two macros have the same sequence, so the same identity.
    #[error("macros[{entry}] ({name}) repeats macros[{first}]")]
    DuplicateMacro { entry: usize, first: usize, name: String },

    /// A one-step macro, which is the primitive action itself.
    #[error(
        "macros[{entry}] ({name}) is the primitive action {primitive}: a macro needs at least two steps"
    )]
    MacroIsPrimitive { entry: usize, name: String, primitive: usize },

    /// An action name that the primitive set does not have.
    #[error(
        "{context}: unknown action name `{name}`{}; valid names: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        valid.join(", ")
    )]
    UnknownActionName {
        /// Where the name was written, e.g. `macros[3]` or `RandomConfig.primitives[1]`.
        context: String,
        name: String,
        /// The closest valid name, when one is close.
        suggestion: Option<String>,
        valid: Vec<String>,
    },

    /// A pool's primitive actions are not the environment's.
    #[error("the pool's primitive actions {pool:?} are not the environment's actions {env:?}")]
    PrimitiveMismatch { pool: Vec<String>, env: Vec<String> },

    /// A random source was asked for more distinct sequences than its lengths and
    /// primitives allow.
    #[error(
        "cannot draw {requested} distinct random macros: lengths {min_len}..={max_len} over \
         {alphabet} primitives give only {available}{}",
        if *excluded > 0 { format!(" not already in the pool ({excluded} are)") } else { String::new() }
    )]
    NotEnoughSequences {
        requested: usize,
        available: u128,
        excluded: usize,
        min_len: usize,
        max_len: usize,
        alphabet: usize,
    },

    /// A file written in a format version this build does not read.
    #[error("{what} format version {found} is not supported: this build reads version {supported}")]
    UnsupportedVersion { what: &'static str, found: String, supported: u32 },

    /// Text that is not valid JSON or TOML, or does not have the expected fields.
    #[error("cannot parse {what} as {format}: {message}")]
    Parse {
        /// What was being read, e.g. `action pool`.
        what: &'static str,
        /// `JSON` or `TOML`.
        format: &'static str,
        message: String,
    },

    /// A record of a trajectory file is malformed.
    #[error("trajectory file, line {line}: {reason}")]
    Trajectory {
        /// Line number, counted from 1.
        line: usize,
        reason: String,
    },

    /// A similarity matrix whose shape or values do not fit its action identities.
    #[error("invalid similarity matrix: {reason}")]
    InvalidMatrix { reason: String },

    /// A file (or, with no path, a caller's reader or writer) could not be read or written.
    #[error("{}: {error}", path.as_ref().map_or("I/O error".into(), |p| p.display().to_string()))]
    Io { path: Option<PathBuf>, error: std::io::Error },

    /// An error in the contents of a file; `error` says what and where inside it.
    ///
    /// The inner error is part of the message rather than a `source()`, so that printing
    /// the error chain does not say it twice.
    #[error("{}: {error}", path.display())]
    File { path: PathBuf, error: Box<Error> },
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

    /// An unknown name, with the closest valid one suggested when it is close enough to
    /// be a typo: case-insensitive normalised Damerau-Levenshtein similarity above 0.5, so
    /// a swapped pair (`FIER`) counts as one edit and half a word changed (`JUMP` and
    /// `UP`) is not a typo.
    pub(crate) fn unknown_name(context: impl Into<String>, name: &str, valid: &[String]) -> Self {
        let lower = name.to_ascii_lowercase();
        let suggestion = valid
            .iter()
            .map(|v| (strsim::normalized_damerau_levenshtein(&lower, &v.to_ascii_lowercase()), v))
            .filter(|(score, _)| *score > 0.5)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, v)| v.clone());
        Error::UnknownActionName {
            context: context.into(),
            name: name.to_string(),
            suggestion,
            valid: valid.to_vec(),
        }
    }

    /// Wraps an error about a file's contents with the file's path.
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            // An I/O error already names its path.
            e @ Error::Io { .. } => e,
            e => Error::File { path: path.into(), error: Box::new(e) },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { path: Some(path.into()), error }
    }

    /// An I/O error on a reader or writer the caller handed over, which has no path.
    pub(crate) fn stream(error: std::io::Error) -> Self {
        Error::Io { path: None, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name_suggests_a_close_name_and_lists_all() {
        let valid: Vec<String> = ["NOOP", "FIRE", "UP", "UPFIRE"].map(String::from).to_vec();
        let e = Error::unknown_name("macros[2]", "UPFRE", &valid);
        let text = e.to_string();
        assert!(
            text.starts_with("macros[2]: unknown action name `UPFRE` (did you mean `UPFIRE`?)"),
            "{text}"
        );
        assert!(text.ends_with("valid names: NOOP, FIRE, UP, UPFIRE"), "{text}");
        let Error::UnknownActionName { suggestion, .. } = Error::unknown_name("x", "jump", &valid) else {
            unreachable!()
        };
        assert_eq!(suggestion, None, "nothing is close to `jump`");
    }

    #[test]
    fn file_errors_name_the_path_once() {
        let inner = Error::EmptyMacro { entry: 3 };
        let e = inner.in_file("pools/a.toml");
        assert_eq!(
            e.to_string(),
            "pools/a.toml: macros[3] is empty: a macro needs at least two primitive actions"
        );
        let io = Error::io("x.json", std::io::Error::from(std::io::ErrorKind::NotFound)).in_file("x.json");
        assert!(matches!(io, Error::Io { .. }));
    }
}
