//! Environments for reinforcement learning, in the gymnasium style.
//!
//! * [`Env`]: `reset(seed)` and `step(action)`, with borrowed observations so stepping never
//!   allocates. Observations are `u8` pixel stacks `(channels, height, width)` or `f32`
//!   vectors ([`ObsSpec`]); the action count is part of the [`EnvSpec`].
//! * [`VecEnv`]: N copies stepped in parallel on rayon into one contiguous buffer.
//! * Small pure-Rust environments in which macro-actions matter, for tests and demos:
//!   [`Corridor`] (a long sparse-reward chain) and [`KeyDoor`] (a grid maze with a key
//!   and a door); and [`GroupedBandit`] (a contextual bandit whose actions fall into hidden
//!   groups of identical effect), in which a learned similarity of actions matters.
//! * Generic wrappers: [`TimeLimit`], [`ClipReward`].
//! * [`RgbImage`]: what [`Env::render_rgb`] shows of an environment, for videos.
//! * [`pixels`]: the emulator backends' shared frame preprocessing (max-pool, grayscale,
//!   OpenCV-exact area resize, frame stack).

#![forbid(unsafe_code)]

mod corridor;
mod env;
mod error;
mod grouped_bandit;
mod key_door;
pub mod pixels;
mod rgb;
mod spec;
mod vec_env;
mod wrappers;

pub use corridor::{Corridor, CorridorConfig};
pub use env::{check_action, Env, Step, StepInfo};
pub use error::{Error, Result};
pub use grouped_bandit::{GroupedBandit, GroupedBanditConfig};
pub use key_door::{KeyDoor, KeyDoorConfig};
pub use rgb::RgbImage;
pub use spec::{EnvSpec, Obs, ObsSpec};
pub use vec_env::{VecEnv, VecStep};
pub use wrappers::{ClipReward, TimeLimit};
