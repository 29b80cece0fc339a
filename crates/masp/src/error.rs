//! The crate's one error type: which knob, tensor, matrix or file is wrong, and how to fix it.
//!
//! Every variant carries structured fields, so a caller (or a test) can match on what went
//! wrong; the `Display` text is complete on its own, so `{err}` is enough for a user.
//!
//! ```
//! use masp::{Error, MaspConfig};
//! let err = MaspConfig { meta_interval: 0, ..Default::default() }.validate().unwrap_err();
//! assert!(matches!(err, Error::InvalidConfig { field: "meta_interval", .. }));
//! assert!(err.to_string().starts_with("invalid MaspConfig.meta_interval = 0: "));
//! ```

use std::path::PathBuf;

use candle_core::DType;

/// Everything that can go wrong when building, training, saving or analysing a similarity
/// matrix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field holds a value that cannot work.
    #[error("invalid {config}.{field} = {value}: {fix}")]
    InvalidConfig {
        /// The configuration struct, e.g. `MaspConfig`.
        config: &'static str,
        field: &'static str,
        /// The rejected value, as written by `Debug`.
        value: String,
        /// What a valid value looks like.
        fix: String,
    },

    /// A tensor with the wrong shape, e.g. Q-values whose action count is not `S`'s.
    #[error("{what} has shape {got:?}, expected {expected}")]
    Shape { what: String, expected: String, got: Vec<usize> },

    /// Two tensors that must share a dtype do not (the similarity matrix follows the
    /// Q-network's dtype: build it with the network's).
    #[error(
        "{what} is {got:?}, expected {expected:?} (build the similarity matrix in the Q-network's dtype)"
    )]
    DType { what: String, expected: DType, got: DType },

    /// A matrix (an initialisation, a prior, a loaded file) whose values do not fit.
    #[error("invalid similarity matrix: {reason}")]
    InvalidMatrix { reason: String },

    /// A value that must be finite is not; MASP stops rather than write NaN into `S`.
    #[error("{what} is not finite ({value}): {hint}")]
    NonFinite { what: String, value: f64, hint: &'static str },

    /// The Q-network behind [`crate::MetaModel`] broke the trait's contract.
    #[error("the MetaModel {reason}")]
    Model { reason: String },

    /// A similarity file whose contents are not what `transfer` writes.
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },

    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },

    /// The heatmap could not be drawn or encoded.
    #[error("{}: cannot draw the heatmap: {reason}", path.display())]
    Plot { path: PathBuf, reason: String },

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
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

    pub(crate) fn matrix(reason: impl Into<String>) -> Self {
        Error::InvalidMatrix { reason: reason.into() }
    }

    pub(crate) fn model(reason: impl Into<String>) -> Self {
        Error::Model { reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { path: path.into(), error }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format { path: path.into(), reason: reason.into() }
    }
}

/// For hooks that must return candle's `Result` (rainbow's `Regularizer`): `?` on a masp
/// error gives back candle's own error unwrapped, and wraps every other one with its full
/// message.
impl From<Error> for candle_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Candle(e) => e,
            e => candle_core::Error::wrap(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_candle_errors_for_hooks() {
        let hook = || -> candle_core::Result<()> {
            Err(Error::config("MaspConfig", "eta", -1.0, "use a penalty weight >= 0"))?;
            Ok(())
        };
        let text = hook().unwrap_err().to_string();
        assert!(text.contains("invalid MaspConfig.eta = -1.0"), "{text}");
    }

    #[test]
    fn messages_name_the_field_and_the_fix() {
        let e = Error::config("MaspConfig", "beta", -1.0, "use a positive meta learning rate, e.g. 1e-3");
        assert_eq!(
            e.to_string(),
            "invalid MaspConfig.beta = -1.0: use a positive meta learning rate, e.g. 1e-3"
        );
        let e = Error::DType { what: "Q-values".into(), expected: DType::F32, got: DType::F64 };
        assert!(e.to_string().starts_with("Q-values is F64, expected F32"), "{e}");
    }
}
