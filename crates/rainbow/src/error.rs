//! The crate's one error type: which setting, env copy, observation or index is wrong, and
//! how to fix it.
//!
//! Every variant carries structured fields, so a caller (or a test) can match on what went
//! wrong; the `Display` text is complete on its own, so `{err}` is enough for a user.
//!
//! ```
//! use rainbow::{Error, ReplayConfig};
//! let err = ReplayConfig { alpha: -1.0, ..ReplayConfig::default() }.validate().unwrap_err();
//! assert!(matches!(err, Error::InvalidConfig { field: "alpha", .. }));
//! assert!(err.to_string().starts_with("invalid ReplayConfig.alpha = -1.0:"));
//! ```

/// Everything that can go wrong in the replay, the learner, the agent and their configs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The noisy policy asked of a network without noisy layers.
    #[error("this agent's network has no noisy layers, so it has no noisy policy: evaluate it greedily")]
    NoNoise,

    /// A configuration field holds a value that cannot work.
    #[error("invalid {config}.{field} = {value}: {fix}")]
    InvalidConfig {
        /// The configuration struct, e.g. `ReplayConfig`.
        config: &'static str,
        field: &'static str,
        /// The rejected value, as written by `Debug`.
        value: String,
        /// What a valid value looks like.
        fix: String,
    },

    /// An observation (or a batch) whose kind or length is not the one the buffer was built for.
    #[error("{what}: expected {expected}, got {found}")]
    ObsMismatch {
        /// Where it was passed, e.g. `start_episode(env 2)` or `Batch`.
        what: String,
        expected: String,
        found: String,
    },

    /// An env copy index past the number of copies the buffer was built for.
    #[error("env copy {env} is out of range: this buffer was built for {num_envs} copies (0..{num_envs})")]
    EnvOutOfRange { env: usize, num_envs: usize },

    /// `add` for an env copy with no episode in progress.
    #[error(
        "env copy {env} has no episode in progress: call start_episode with its reset \
         observation first (after a terminated or truncated transition too)"
    )]
    NoEpisode { env: usize },

    /// `start_episode` for an env copy whose episode has not ended.
    #[error(
        "env copy {env} is already in an episode: end it with a terminated or truncated \
         transition before starting the next, so its last n-step returns can be completed"
    )]
    EpisodeInProgress { env: usize },

    /// A transition field that cannot be a reward or a discount.
    #[error("env copy {env}: transition {field} = {value} is invalid: {fix}")]
    InvalidTransition { env: usize, field: &'static str, value: String, fix: &'static str },

    /// Sampling before any transition has a complete n-step return.
    #[error(
        "the replay buffer has no transition to sample yet: a transition becomes sampleable once \
         n transitions follow it or its episode ends (wait for the learning start)"
    )]
    Empty,

    /// An index that does not name a transition the buffer can sample now.
    #[error(
        "index {index} is not a sampleable transition: indices come from a batch of this buffer \
         (0..{capacity}), and a transition stops being sampleable when the ring overwrites it"
    )]
    NotSampleable { index: usize, capacity: usize },

    /// Two slices that must have one entry each per sample have different lengths.
    #[error("{what}: {found} entries for {expected} samples")]
    LengthMismatch { what: &'static str, expected: usize, found: usize },

    /// A priority (a TD error or a loss) that is NaN or infinite; it would poison the sum tree.
    #[error(
        "priority {value} for transition {index} is not finite: check the loss for NaN or \
         overflow before updating priorities"
    )]
    InvalidPriority { index: usize, value: f32 },

    /// The update's loss or gradient norm came out NaN or infinite. The optimiser was not
    /// stepped and no priority was changed, so the parameters are still the last good ones.
    #[error(
        "update {update}: the loss ({loss}) or gradient norm ({grad_norm}) is not finite; the \
         optimiser step was skipped. Lower LearnerConfig.lr, check the rewards for huge values, \
         or keep LearnerConfig.max_grad_norm set"
    )]
    NonFiniteLoss { update: u64, loss: f32, grad_norm: f32 },

    /// A `device` string that is neither `cpu` nor `cuda:N`.
    #[error("device {spec:?} is not understood: use \"cpu\" or \"cuda:N\" (e.g. \"cuda:0\")")]
    InvalidDevice { spec: String },

    /// CUDA asked for in a build without the `cuda` feature.
    #[error(
        "device {spec:?} needs CUDA, but this build of rainbow has no `cuda` feature: build with \
         `cargo xtask build-cuda` (it enables the feature with the CUDA toolkit it installs), or \
         use device = \"cpu\""
    )]
    CudaNotCompiled { spec: String },

    /// Observations, a batch or a checkpoint whose shape does not fit the network.
    #[error("{what}: expected {expected}, got {found}")]
    ShapeMismatch { what: String, expected: String, found: String },

    /// A checkpoint that cannot be written or read back.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: std::path::PathBuf, reason: String },

    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A tensor operation failed (shape or device errors inside candle).
    #[error("tensor operation failed: {0}")]
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

    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn checkpoint(path: impl Into<std::path::PathBuf>, reason: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), reason: reason.into() }
    }
}
