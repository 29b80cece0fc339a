//! Builds the Arcade Learning Environment from the pinned ale-py sdist and a small C shim.
//!
//! Environment variables read:
//! * `ALE_SOURCE_DIR`: root of an unpacked ale-py sdist (the folder holding `src/ale`). Unset,
//!   the sources are looked for at `<workspace>/third_party/ale/ale_py-<pinned version>`, where
//!   `cargo xtask setup` puts them.
//! * `CXX`, `CXXFLAGS`, ... as read by the `cc` crate; `LIBCLANG_PATH` and
//!   `BINDGEN_EXTRA_CLANG_ARGS` as read by `bindgen`.
//!
//! Outputs: one static library (ALE + shim), Rust bindings for `shim/ale_c.h` only, and
//! `ALE_SYS_SOURCE_DIR` for `ale_sys::SOURCE_DIR`, so the safe crate can find the ROMs.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/locate.rs"]
mod locate;

use locate::PINNED_VERSION;

/// ALE source folders compiled for `ALEInterface` (python/, vector/ and wasm/ are the
/// Python, vectorised-OpenCV and WebAssembly front ends, not needed here).
const SOURCE_SUBDIRS: &[&str] = &["common", "emucore", "environment", "games", "games/supported"];

/// Listed in common/CMakeLists.txt but only meaningful with SDL: their bodies sit behind
/// `#ifdef SDL_SUPPORT`/`SDL_DYNLOAD`, except DynamicLoad.cpp, which would pull in `dlopen`
/// for nothing since nothing without SDL calls it.
const SDL_ONLY: &[&str] = &["DynamicLoad.cpp", "SDL2.cpp", "ScreenSDL.cpp", "SoundSDL.cxx"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let workspace = manifest_dir.join("../..");

    let source_root = locate_sources(&workspace);
    let ale_src = source_root.join("src/ale");
    let src_include = source_root.join("src");

    write_version_header(&source_root, &out_dir);

    let sources = ale_sources(&ale_src);
    for path in &sources {
        rerun_if_changed(path);
    }
    for header in ale_headers(&ale_src) {
        rerun_if_changed(&header);
    }

    let shim_dir = manifest_dir.join("shim");
    let shim_header = shim_dir.join("ale_c.h");
    let shim_source = shim_dir.join("ale_c.cpp");
    rerun_if_changed(&shim_header);
    rerun_if_changed(&shim_source);
    rerun_if_changed(&manifest_dir.join("build.rs"));

    // zlib (ALE reads gzip'd ROMs with it): libz-sys builds it statically and says where its
    // header is; without that, fall back to the system include path.
    let zlib_include = env::var_os("DEP_Z_INCLUDE").map(PathBuf::from);

    let base = || {
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .std("c++17")
            .opt_level(3)
            .pic(true)
            // Matches ALE's CMake Release build, which the ale-py wheels use.
            .define("NDEBUG", None)
            .include(&src_include)
            .include(&out_dir);
        if let Some(dir) = &zlib_include {
            build.include(dir);
        }
        build
    };

    // The shim is ours: compile it with warnings on, then link its objects into the same
    // archive as ALE so there is one library and no link-order question.
    let mut shim = base();
    // ALE's headers as system headers, so -Wextra reports only the shim's own code.
    shim.flag("-isystem").flag(&src_include);
    let shim_objects = shim
        .warnings(true)
        .extra_warnings(true)
        .include(&shim_dir)
        .file(&shim_source)
        .compile_intermediates();

    base()
        // ALE's code is third-party: its warnings are not ours to fix and drown real ones.
        .warnings(false)
        .flag_if_supported("-w")
        .files(&sources)
        .objects(&shim_objects)
        .compile("ale");

    println!("cargo:rustc-link-lib=pthread");

    generate_bindings(&shim_header, &out_dir);

    let source_root_str = source_root
        .to_str()
        .expect("ALE source path must be valid UTF-8 (it is embedded in ale_sys::SOURCE_DIR)");
    println!("cargo:rustc-env=ALE_SYS_SOURCE_DIR={source_root_str}");
    // For crates with a build script that depend on this one (`links = "ale"`).
    println!("cargo:source_dir={source_root_str}");
    println!("cargo:include={}", shim_dir.display());
}

/// The unpacked sdist root, checked against the pin; a missing folder stops the build with
/// the message from `locate::source_root`.
fn locate_sources(workspace: &Path) -> PathBuf {
    println!("cargo:rerun-if-env-changed=ALE_SOURCE_DIR");
    let pin = workspace.join("third_party/ale/pin.toml");
    if pin.exists() {
        rerun_if_changed(&pin);
        check_pin(&pin);
    }
    rerun_if_changed(Path::new("build/locate.rs"));
    locate::source_root(env::var_os("ALE_SOURCE_DIR").map(PathBuf::from), workspace)
        .unwrap_or_else(|msg| panic!("{msg}"))
}

/// Fails the build when pin.toml names another version than this shim was written for.
fn check_pin(pin: &Path) {
    let text = fs::read_to_string(pin).unwrap_or_else(|e| panic!("cannot read {}: {e}", pin.display()));
    let version = text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "version").then(|| value.trim().trim_matches('"').to_owned())
    });
    match version {
        Some(v) if v == PINNED_VERSION => {}
        Some(v) => panic!(
            "{} pins ale-py {v}, but crates/ale-sys is written against {PINNED_VERSION}: update \
             PINNED_VERSION in crates/ale-sys/build.rs and check the shim against the new API",
            pin.display()
        ),
        None => panic!("{} has no `version = \"...\"` line", pin.display()),
    }
}

/// version.hpp from version.hpp.in, as ALE's CMake `configure_file` writes it.
fn write_version_header(source_root: &Path, out_dir: &Path) {
    let template_path = source_root.join("src/ale/version.hpp.in");
    let version_txt = source_root.join("version.txt");
    rerun_if_changed(&template_path);
    rerun_if_changed(&version_txt);

    let version = fs::read_to_string(&version_txt)
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| PINNED_VERSION.to_owned());
    if version != PINNED_VERSION {
        println!("cargo:warning=ALE sources are version {version}, the shim targets {PINNED_VERSION}");
    }
    let mut parts = version.split('.');
    let mut next = || parts.next().unwrap_or("0").to_owned();
    let (major, minor, patch) = (next(), next(), next());

    let template = fs::read_to_string(&template_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));
    let header = template
        .replace("@ALE_VERSION@", &version)
        .replace("@ALE_VERSION_MAJOR@", &major)
        .replace("@ALE_VERSION_MINOR@", &minor)
        .replace("@ALE_VERSION_PATCH@", &patch)
        // What ALE's CMake writes when it is not built from a git checkout, as from an sdist.
        .replace("@ALE_VERSION_GIT_SHA@", "unknown");
    write_if_changed(&out_dir.join("version.hpp"), &header);
}

/// The .cpp/.cxx files of `SOURCE_SUBDIRS`, minus the SDL ones, sorted so the archive is
/// the same from build to build whatever order the file system lists them in.
fn ale_sources(ale_src: &Path) -> Vec<PathBuf> {
    let mut sources = vec![ale_src.join("ale_interface.cpp")];
    for sub in SOURCE_SUBDIRS {
        sources.extend(
            files_with_ext(&ale_src.join(sub), &["cpp", "cxx"])
                .into_iter()
                .filter(|p| !SDL_ONLY.iter().any(|name| p.file_name() == Some(name.as_ref()))),
        );
    }
    sources.sort();
    sources
}

fn ale_headers(ale_src: &Path) -> Vec<PathBuf> {
    let mut headers = files_with_ext(ale_src, &["hpp", "hxx", "h"]);
    for sub in SOURCE_SUBDIRS {
        headers.extend(files_with_ext(&ale_src.join(sub), &["hpp", "hxx", "h", "ins"]));
    }
    headers.sort();
    headers
}

fn files_with_ext(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e)))
        .collect();
    files.sort();
    files
}

fn generate_bindings(header: &Path, out_dir: &Path) {
    let bindings = bindgen::Builder::default()
        .header(header.to_str().expect("shim path must be valid UTF-8"))
        .allowlist_function("ale_.*")
        .allowlist_type("ale_.*")
        .allowlist_var("ALE_.*")
        // ale_status is a C int, so the ALE_* codes should be i32 too.
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on shim/ale_c.h (is libclang installed?)");
    bindings.write_to_file(out_dir.join("bindings.rs")).expect("cannot write bindings.rs");
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

/// Leaves the file's mtime alone when nothing changed, so `cc` does not see a new header.
fn write_if_changed(path: &Path, contents: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(contents) {
        fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
