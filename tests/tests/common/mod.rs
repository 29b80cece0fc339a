//! What these tests share with the runner's: `crates/runner/tests/common/helpers.rs`, run
//! against this package's build of the runner's `main.rs`.
#![allow(dead_code)] // each test file uses its own subset

#[path = "../../../crates/runner/tests/common/helpers.rs"]
mod helpers;

pub use helpers::*;

/// The binary under test: the `masp` program under the name `masp-e2e` (see Cargo.toml).
pub const MASP: &str = env!("CARGO_BIN_EXE_masp-e2e");
/// The repository root, one level above this package.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
