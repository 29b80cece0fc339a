//! Raw FFI to Genesis Plus GX, the Sega Mega Drive / Genesis emulator, through its libretro
//! API (`libretro.h`).
//!
//! `build.rs` compiles the core's C sources from the pinned stable-retro sdist into one static
//! library; the items here are the `bindgen` output for `libretro.h` and nothing else. The
//! core keeps all its state in C globals, so a process holds at most one emulator: the
//! `retro-env` crate enforces that and is the safe API.
//!
//! Licence: Genesis Plus GX may not be sold or used commercially (its `LICENSE.txt`); this
//! crate's sources are fetched by `cargo xtask setup` and never redistributed.
//!
//! ```no_run
//! // SAFETY: nothing else in the process uses the core.
//! let version = unsafe { retro_sys::retro_api_version() };
//! assert_eq!(version, retro_sys::RETRO_API_VERSION);
//! ```

#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

extern "C" {
    /// A `retro_log_printf_t` that discards the message (`shim/log.c`): the core calls its
    /// log callback unchecked, so `RETRO_ENVIRONMENT_GET_LOG_INTERFACE` must give one.
    pub fn masp_retro_log(level: retro_log_level, fmt: *const std::ffi::c_char, ...);

    /// While `skip` is true, `retro_run` emulates frames without drawing them
    /// (`shim/skip_render.c`): the screen buffer keeps the last drawn frame.
    pub fn masp_retro_set_skip_render(skip: bool);

    /// Resamples the core's sound the fast way from now on (`shim/fast_audio.c`): other
    /// samples to the audio callback, the same emulation. Call after `retro_load_game`.
    pub fn masp_retro_set_fast_audio();
}

/// The unpacked stable-retro sdist this crate was built from: the game integrations are in
/// `SOURCE_DIR/stable_retro/data/stable`, the button maps in `SOURCE_DIR/cores`.
pub const SOURCE_DIR: &str = env!("RETRO_SYS_SOURCE_DIR");

/// The core again as a shared library, for private copies loaded with `dlopen` (one per
/// extra emulator in a process: each copy has its own globals).
pub const SHARED_LIBRARY: &str = env!("RETRO_SYS_SHARED_LIBRARY");

/// Where `cargo xtask setup` and `masp retro import` put ROMs: `third_party/retro/roms`.
pub const DEFAULT_ROM_DIR: &str = env!("RETRO_SYS_DEFAULT_ROM_DIR");
