//! A Gym Retro backend: Sega Genesis games through Genesis Plus GX's libretro core, with
//! stable-retro's game integrations, as [`rl_env::Env`]s. No Python at run time.
//!
//! * [`Core`]: the libretro front end, one owned, loaded game: on the linked core (at most
//!   one per process: the core keeps its state in C globals) or on a private copy of its
//!   shared library (any number). Frames, button masks, states, RAM.
//! * [`Integration`]: a game's `data.json` [`Variable`]s, its variable-based [`Scenario`],
//!   default state and ROM sha1; [`available_games`], [`integrations_dir`].
//! * [`Pad`], [`ActionSet`]: stable-retro's discrete action sets with readable names
//!   (`DOWN_RIGHT_A`).
//! * [`rom_path`], [`import`]: ROMs by game name, and the sha1-matching import behind
//!   `masp retro import`.
//! * [`RetroEnv`]: the Atari-style preprocessing (frame skip with max-pool, grayscale, 84x84
//!   area resize, frame stack; [`rl_env::pixels`]) over a game, rewarded by its scenario or by
//!   health difference ([`RewardKind`]); [`RetroVecEnv`], isolated copies in parallel.
//!
//! Genesis Plus GX's licence forbids commercial use; its sources are fetched by
//! `cargo xtask setup`, never committed.

mod actions;
mod core;
mod env;
mod error;
mod integration;
mod roms;
mod variable;

pub use actions::{Action, ActionSet, Pad};
pub use core::Core;
pub use env::{RetroConfig, RetroEnv, RetroSnapshot, RetroVecEnv, RewardKind};
pub use error::{Error, Result};
pub use integration::{available_games, integrations_dir, Combine, Integration, Op, RewardRule, Scenario};
pub use roms::{import, rom_dir, rom_path, rom_path_in, sha1_hex, Imported, ROM_DIR_ENV};
pub use variable::{Variable, GENESIS_RAM_BASE};
