//! What the runner's integration tests share: `helpers.rs`, run against the runner's own
//! `masp`.
#![allow(dead_code)] // each test file uses its own subset

mod helpers;

pub use helpers::*;

/// The binary under test.
pub const MASP: &str = env!("CARGO_BIN_EXE_masp");
/// The repository root, two levels above this package.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
