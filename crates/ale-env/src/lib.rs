//! A safe Arcade Learning Environment for reinforcement learning.
//!
//! * [`Ale`]: one owned ALE instance (`Send`), with settings, ROM loading, acting, screens,
//!   RAM, and clone/restore/serialise of state. [`AleState`] owns a saved state.
//! * [`rom_path`], [`available_games`]: ROM lookup by game name (`pong`, `space_invaders`)
//!   in the fetched ROM folder or `ALE_ROM_DIR`; an unknown name lists the closest ones.
//! * [`AtariEnv`]: the standard Atari preprocessing (frame skip with max-pool, grayscale,
//!   84x84 area resize, frame stack, no-op starts, fire reset, life loss as terminal, reward
//!   clipping, episode frame cap, sticky actions) as an [`rl_env::Env`].
//! * [`Protocol`]: the named evaluation protocols (`machado`, `nature`, `atari100k`).
//! * [`AtariVecEnv`]: N copies stepped in parallel on rayon.

mod ale;
mod atari;
mod error;
mod protocol;
mod roms;

pub use ale::{action_name, Ale, AleState};
pub use ale::{set_log_level, LogLevel, NUM_ACTIONS, RAM_SIZE};
pub use atari::{AtariConfig, AtariEnv, AtariVecEnv};
pub use error::{Error, Result};
pub use protocol::Protocol;
pub use roms::{available_games, rom_dir, rom_path};
pub use roms::{available_games_in, resolve_rom_dir, rom_path_in, ROM_DIR_ENV};
