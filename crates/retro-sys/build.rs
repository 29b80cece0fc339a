//! Builds Genesis Plus GX's libretro core from the pinned stable-retro sdist, as one static
//! library, and generates Rust bindings for `libretro.h`.
//!
//! Only what a Mega Drive / Genesis cartridge needs is compiled, as stable-retro's own
//! `make -f Makefile.libretro` does it on Unix, minus the CD-image (libchdr) and Ogg
//! (Tremor) support, which only Mega-CD games use. The core's licence forbids commercial
//! use, which is why its sources are fetched at set-up and never committed.
//!
//! Environment variables read:
//! * `RETRO_SOURCE_DIR`: root of an unpacked stable-retro sdist (the folder holding
//!   `cores/genesis`). Unset, the sources are looked for at
//!   `<workspace>/third_party/retro/stable_retro-<pinned version>`, where `cargo xtask setup`
//!   puts them.
//! * `CC`, `CFLAGS`, ... as read by the `cc` crate; `LIBCLANG_PATH` and
//!   `BINDGEN_EXTRA_CLANG_ARGS` as read by `bindgen`.
//!
//! Outputs: the static library, `bindings.rs`, and `RETRO_SYS_SOURCE_DIR` /
//! `RETRO_SYS_DEFAULT_ROM_DIR` for `retro_sys::SOURCE_DIR` / `DEFAULT_ROM_DIR`, so the safe
//! crate finds the game integrations and the ROMs.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/locate.rs"]
mod locate;

use locate::PINNED_VERSION;

/// Folders of `cores/genesis` whose every `.c` file is compiled (Makefile.common's
/// `GENPLUS_SRC_DIR`). `core/cd_hw` stays although no CD game is run: `system.c` and the
/// memory map call into it; without `USE_LIBCHDR`/`USE_LIBTREMOR` it reads no images.
const CORE_DIRS: &[&str] = &[
    "core",
    "core/z80",
    "core/m68k",
    "core/ntsc",
    "core/sound",
    "core/input_hw",
    "core/cd_hw",
    "core/cart_hw",
    "core/cart_hw/svp",
];

/// The libretro glue besides `libretro.c` (compiled on its own, see [`FRAME_RENAMES`]) and the
/// parts of libretro-common it calls (the ROM is read through `filestream_*`).
const GLUE: &[&str] = &[
    "libretro/scrc32.c",
    "libretro/libretro-common/streams/file_stream.c",
    "libretro/libretro-common/streams/file_stream_transforms.c",
];

/// `libretro.c`'s `retro_run` always draws the frame; its calls go to `shim/skip_render.c`
/// instead, which lets the front end switch drawing off (`masp_retro_set_skip_render`).
const FRAME_RENAMES: &[(&str, &str)] = &[
    ("system_frame_gen", "masp_system_frame_gen"),
    ("system_frame_scd", "masp_system_frame_scd"),
    ("system_frame_sms", "masp_system_frame_sms"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let workspace = manifest_dir.join("../..");

    println!("cargo:rerun-if-env-changed=RETRO_SOURCE_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/locate.rs");
    let pin = workspace.join("third_party/retro/pin.toml");
    if pin.exists() {
        println!("cargo:rerun-if-changed={}", pin.display());
        check_pin(&pin);
    }
    let source_root = locate::source_root(env::var_os("RETRO_SOURCE_DIR").map(PathBuf::from), &workspace)
        .unwrap_or_else(|msg| panic!("{msg}"));
    let genesis = source_root.join("cores/genesis");

    let mut sources: Vec<PathBuf> = GLUE.iter().map(|f| genesis.join(f)).collect();
    sources.push(manifest_dir.join("shim/log.c"));
    sources.push(manifest_dir.join("shim/skip_render.c"));
    sources.push(manifest_dir.join("shim/fast_audio.c"));
    for dir in CORE_DIRS {
        sources.extend(c_files(&genesis.join(dir)));
    }
    // Sorted so the archive is the same whatever order the file system lists files in.
    sources.sort();
    for path in &sources {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let libretro_c = genesis.join("libretro/libretro.c");
    println!("cargo:rerun-if-changed={}", libretro_c.display());
    let mut glue = core_build(&genesis);
    glue.file(&libretro_c);
    for (name, renamed) in FRAME_RENAMES {
        glue.define(name, *renamed);
    }
    let glue_objects = glue.compile_intermediates();
    core_build(&genesis).files(&sources).objects(&glue_objects).compile("genesis_plus_gx");
    println!("cargo:rustc-link-lib=m");
    link_shared_copy(&out_dir);

    generate_bindings(&genesis.join("libretro/libretro.h"), &out_dir);

    let source_root_str =
        source_root.to_str().expect("stable-retro source path must be valid UTF-8 (it is embedded)");
    println!("cargo:rustc-env=RETRO_SYS_SOURCE_DIR={source_root_str}");
    let workspace = fs::canonicalize(&workspace).unwrap_or(workspace);
    println!(
        "cargo:rustc-env=RETRO_SYS_DEFAULT_ROM_DIR={}",
        workspace.join("third_party/retro/roms").display()
    );
}

/// The compiler settings every file of the core is built with.
fn core_build(genesis: &Path) -> cc::Build {
    let mut build = cc::Build::new();
    for dir in CORE_DIRS {
        build.include(genesis.join(dir));
    }
    build
        .include(genesis.join("libretro"))
        .include(genesis.join("libretro/libretro-common/include"))
        .opt_level(3)
        .pic(true)
        // Makefile.libretro's Unix defines, with 16-bit (RGB565) colour: stable-retro's wheel
        // renders so (its screens hold 6-bit green), and our raw screens must equal its.
        .define("NDEBUG", None)
        .define("LSB_FIRST", None)
        .define("BYTE_ORDER", "LITTLE_ENDIAN")
        .define("__LIBRETRO__", None)
        .define("USE_16BPP_RENDERING", None)
        .define("FRONTEND_SUPPORTS_RGB565", None)
        .define("INLINE", "static inline")
        // libretro's scrc32.c defines zlib's `crc32`; renamed (at its definition and every
        // use in the core) so that it links beside a real zlib, as ALE's in the `masp` binary.
        .define("crc32", "genesis_plus_gx_crc32")
        // The core's headers declare globals without `extern` (tentative definitions);
        // GCC >= 10 defaults to -fno-common and would fail the link with duplicates.
        .flag("-fcommon")
        // The core's code reads its many globals directly instead of through the GOT, as it
        // could not if the shared copy exported them. The entry points stay exported: they
        // are declared `RETRO_API`, which is default visibility.
        .flag("-fvisibility=hidden")
        // Third-party code: its warnings are not ours to fix and drown real ones.
        .warnings(false)
        .flag_if_supported("-w");
    build
}

/// The same objects as a shared library, `libgenesis_plus_gx_copy.so`: `retro-env` loads one
/// private copy of it per extra emulator, each with its own C globals, so several emulators
/// run in one process. `-Bsymbolic` binds the library's references to its own globals, never
/// to the statically linked core's.
fn link_shared_copy(out_dir: &Path) {
    let so = out_dir.join("libgenesis_plus_gx_copy.so");
    let status = cc::Build::new()
        .get_compiler()
        .to_command()
        .args(["-shared", "-o"])
        .arg(&so)
        .arg("-Wl,--whole-archive")
        .arg(out_dir.join("libgenesis_plus_gx.a"))
        .args(["-Wl,--no-whole-archive", "-Wl,-Bsymbolic", "-lm"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler to link {}: {e}", so.display()));
    assert!(status.success(), "linking {} failed", so.display());
    println!("cargo:rustc-env=RETRO_SYS_SHARED_LIBRARY={}", so.display());
}

/// Fails the build when pin.toml names another version than this crate was written for.
fn check_pin(pin: &Path) {
    let text = fs::read_to_string(pin).unwrap_or_else(|e| panic!("cannot read {}: {e}", pin.display()));
    let pinned = format!("version = \"{PINNED_VERSION}\"");
    if !text.lines().any(|line| line.trim() == pinned) {
        panic!(
            "{} does not say `{pinned}`: crates/retro-sys is written against stable-retro \
             {PINNED_VERSION}; update PINNED_VERSION in crates/retro-sys/build/locate.rs and \
             check the front end and the .state files against the new core",
            pin.display()
        );
    }
}

fn c_files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "c"))
        .collect()
}

fn generate_bindings(header: &Path, out_dir: &Path) {
    let bindings = bindgen::Builder::default()
        .header(header.to_str().expect("libretro.h path must be valid UTF-8"))
        .allowlist_function("retro_.*")
        .allowlist_type("retro_.*")
        .allowlist_var("RETRO_.*")
        // The RETRO_* constants are passed where libretro takes `unsigned`.
        .default_macro_constant_type(bindgen::MacroTypeVariation::Unsigned)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on libretro.h (is libclang installed?)");
    bindings.write_to_file(out_dir.join("bindings.rs")).expect("cannot write bindings.rs");
}
