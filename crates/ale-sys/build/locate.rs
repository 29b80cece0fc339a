// Where build.rs looks for ALE's sources. Its own file so that `tests/locate.rs` can check the
// error a user sees, which a build script cannot test on itself.

use std::path::{Path, PathBuf};

/// The ale-py version this shim is written against; `third_party/ale/pin.toml` must agree.
pub const PINNED_VERSION: &str = "0.12.1";

/// The unpacked sdist root: `override_dir` (from `ALE_SOURCE_DIR`), else the workspace's
/// pinned copy. The error names the path looked at and the command that fills it.
pub fn source_root(override_dir: Option<PathBuf>, workspace: &Path) -> Result<PathBuf, String> {
    let root =
        override_dir.unwrap_or_else(|| workspace.join(format!("third_party/ale/ale_py-{PINNED_VERSION}")));
    if !root.join("src/ale/ale_interface.cpp").is_file() {
        return Err(format!(
            "ALE sources not found at {}: run `cargo xtask setup` (or set ALE_SOURCE_DIR to an \
             unpacked ale-py {PINNED_VERSION} sdist)",
            root.display()
        ));
    }
    // Canonical, so SOURCE_DIR is stable whatever `..` the workspace path had.
    Ok(std::fs::canonicalize(&root).unwrap_or(root))
}
