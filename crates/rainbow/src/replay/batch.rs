//! `Batch`: the reusable buffers a replay sample is written into.
//!
//! Shapes, with `B` the batch size:
//! * `obs`, `next_obs`: `u8` `(B, C, H, W)` for pixels (scaled to `[0, 1]` on the device),
//!   or `f32` `(B, len)` for vectors. `next_obs` is the state to bootstrap from, `n`
//!   transitions on (fewer at an episode's end);
//! * `actions`: `u32` `(B,)`; `returns`: `f32` `(B,)`, the n-step return `G`;
//!   `discounts`: `f32` `(B,)`, the bootstrap discount `D` (0 past a terminal);
//! * `weights`: `f32` `(B,)`, importance-sampling weights, at most 1;
//! * `indices`: `(B,)`, what [`PrioritizedReplay::update_priorities`] takes back.
//!
//! Allocated once by [`Batch::new`]; sampling overwrites it in place.
//!
//! ```
//! use rainbow::Batch;
//! use rl_env::{Obs, ObsSpec};
//! let batch = Batch::new(32, &ObsSpec::Pixels { channels: 4, height: 84, width: 84 });
//! assert_eq!(batch.obs_shape(), [32, 4, 84, 84]);
//! assert!(matches!(batch.obs(), Obs::Pixels(p) if p.len() == 32 * 4 * 84 * 84));
//! ```
//!
//! [`PrioritizedReplay::update_priorities`]: crate::PrioritizedReplay::update_priorities

use rl_env::{Obs, ObsSpec};

#[derive(Clone, Debug)]
pub(crate) enum ObsBuf {
    Pixels(Vec<u8>),
    Vector(Vec<f32>),
}

impl ObsBuf {
    fn zeros(spec: &ObsSpec, n: usize) -> Self {
        match spec {
            ObsSpec::Pixels { .. } => ObsBuf::Pixels(vec![0; n * spec.len()]),
            ObsSpec::Vector { .. } => ObsBuf::Vector(vec![0.0; n * spec.len()]),
        }
    }

    fn as_obs(&self) -> Obs<'_> {
        match self {
            ObsBuf::Pixels(p) => Obs::Pixels(p),
            ObsBuf::Vector(v) => Obs::Vector(v),
        }
    }
}

/// One sampled minibatch, in buffers that are reused from one sample to the next.
#[derive(Clone, Debug)]
pub struct Batch {
    pub(crate) spec: ObsSpec,
    shape: Vec<usize>,
    pub(crate) obs: ObsBuf,
    pub(crate) next_obs: ObsBuf,
    pub(crate) actions: Vec<u32>,
    pub(crate) returns: Vec<f32>,
    pub(crate) discounts: Vec<f32>,
    pub(crate) weights: Vec<f32>,
    pub(crate) indices: Vec<usize>,
}

impl Batch {
    /// Buffers for `size` transitions with observations of `obs`.
    pub fn new(size: usize, obs: &ObsSpec) -> Self {
        let shape = match *obs {
            ObsSpec::Pixels { channels, height, width } => vec![size, channels, height, width],
            ObsSpec::Vector { len } => vec![size, len],
        };
        Self {
            spec: obs.clone(),
            shape,
            obs: ObsBuf::zeros(obs, size),
            next_obs: ObsBuf::zeros(obs, size),
            actions: vec![0; size],
            returns: vec![0.0; size],
            discounts: vec![0.0; size],
            weights: vec![0.0; size],
            indices: vec![0; size],
        }
    }

    /// `B`, the number of transitions.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The observation spec the buffers were sized for.
    pub fn spec(&self) -> &ObsSpec {
        &self.spec
    }

    /// `(B, C, H, W)` for pixels, `(B, len)` for vectors.
    pub fn obs_shape(&self) -> &[usize] {
        &self.shape
    }

    /// The states acted in, `obs_shape()`.
    pub fn obs(&self) -> Obs<'_> {
        self.obs.as_obs()
    }

    /// The states to bootstrap from, `obs_shape()`.
    pub fn next_obs(&self) -> Obs<'_> {
        self.next_obs.as_obs()
    }

    /// `(B,)` the actions taken (pool indices, so macros included).
    pub fn actions(&self) -> &[u32] {
        &self.actions
    }

    /// `(B,)` the n-step returns `G`.
    pub fn returns(&self) -> &[f32] {
        &self.returns
    }

    /// `(B,)` the bootstrap discounts `D`: the product of the transitions' discounts, 0 when
    /// the return ran into a terminal.
    pub fn discounts(&self) -> &[f32] {
        &self.discounts
    }

    /// `(B,)` importance-sampling weights `(P(i) / min_k P(k))^-beta`, in `(0, 1]`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// `(B,)` the sampled transitions' indices, for `update_priorities`.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}
