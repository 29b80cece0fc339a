// Where build.rs looks for stable-retro's sources. Its own file so that `tests/locate.rs` can
// check the error a user sees, which a build script cannot test on itself.

use std::path::{Path, PathBuf};

/// The stable-retro version this crate is written against; `third_party/retro/pin.toml` must
/// agree (`.state` files fit only this core version).
pub const PINNED_VERSION: &str = "1.0.1";

/// The unpacked sdist root: `override_dir` (from `RETRO_SOURCE_DIR`), else the workspace's
/// pinned copy. The error names the path looked at and the command that fills it.
pub fn source_root(override_dir: Option<PathBuf>, workspace: &Path) -> Result<PathBuf, String> {
    let root = override_dir
        .unwrap_or_else(|| workspace.join(format!("third_party/retro/stable_retro-{PINNED_VERSION}")));
    if !root.join("cores/genesis/libretro/libretro.c").is_file() {
        return Err(format!(
            "stable-retro sources (Genesis Plus GX) not found at {}: run `cargo xtask setup` (or \
             set RETRO_SOURCE_DIR to an unpacked stable-retro {PINNED_VERSION} sdist)",
            root.display()
        ));
    }
    // Canonical, so SOURCE_DIR is stable whatever `..` the workspace path had.
    Ok(std::fs::canonicalize(&root).unwrap_or(root))
}
