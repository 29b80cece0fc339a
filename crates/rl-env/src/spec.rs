//! What an environment looks like from outside: its observation layout and its actions.
//!
//! Observations are either pixel stacks, `u8` in `(channels, height, width)` order, or flat
//! `f32` vectors. The action count is part of the spec, so an agent can size its head from it.

/// The layout and element type of one observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObsSpec {
    /// `u8` pixels, `(channels, height, width)`, row-major; for Atari, a stack of 84x84 frames.
    Pixels { channels: usize, height: usize, width: usize },
    /// A flat `f32` feature vector of this length.
    Vector { len: usize },
}

impl ObsSpec {
    /// Number of scalar elements in one observation.
    pub fn len(&self) -> usize {
        match *self {
            ObsSpec::Pixels { channels, height, width } => channels * height * width,
            ObsSpec::Vector { len } => len,
        }
    }

    /// True for a spec with no elements (never the case for a real environment).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An environment's observation spec and its discrete action set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvSpec {
    pub observation: ObsSpec,
    /// One readable name per action, e.g. ALE's `UPFIRE`; its length is the action count.
    pub action_names: Vec<String>,
}

impl EnvSpec {
    pub fn num_actions(&self) -> usize {
        self.action_names.len()
    }
}

/// A borrowed observation: the environment owns the buffer, callers copy what they keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Obs<'a> {
    Pixels(&'a [u8]),
    Vector(&'a [f32]),
}

impl Obs<'_> {
    pub fn len(&self) -> usize {
        match self {
            Obs::Pixels(p) => p.len(),
            Obs::Vector(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
