//! The build script's source lookup: a missing folder must say what to run.

#[path = "../build/locate.rs"]
mod locate;

use std::path::Path;

#[test]
fn missing_sources_name_the_path_and_the_fix() {
    let err = locate::source_root(Some("/nonexistent/retro-sdist".into()), Path::new("/ws")).unwrap_err();
    assert!(err.contains("/nonexistent/retro-sdist"), "{err}");
    assert!(err.contains("cargo xtask setup") && err.contains("RETRO_SOURCE_DIR"), "{err}");
}

#[test]
fn default_location_is_the_pinned_copy_under_third_party() {
    let err = locate::source_root(None, Path::new("/ws")).unwrap_err();
    assert!(err.contains(&format!("/ws/third_party/retro/stable_retro-{}", locate::PINNED_VERSION)), "{err}");
}

#[test]
fn the_fetched_sources_are_found() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = locate::source_root(None, &workspace).expect("run `cargo xtask setup` first");
    assert_eq!(root, Path::new(retro_sys::SOURCE_DIR));
}
