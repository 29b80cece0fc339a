//! Raw FFI to the Arcade Learning Environment (ALE) through the C shim in `shim/ale_c.h`.
//!
//! `build.rs` compiles ALE's C++ sources from the pinned ale-py sdist together with the shim
//! into one static library; the items here are the `bindgen` output for the shim header and
//! nothing else. Every function returns an `ale_status` (`ALE_OK` on success); on failure
//! `ale_last_error()` gives the message. No C++ exception crosses this boundary.
//!
//! Everything is `unsafe` and handle-based: use the `ale-env` crate for a safe API.
//!
//! ```no_run
//! use std::ptr;
//! let mut ale: *mut ale_sys::ale_t = ptr::null_mut();
//! // SAFETY: `ale` is a valid out-pointer; the handle is destroyed below.
//! unsafe {
//!     assert_eq!(ale_sys::ale_create(&mut ale), ale_sys::ALE_OK);
//!     ale_sys::ale_destroy(ale);
//! }
//! ```

#![allow(non_camel_case_types, non_upper_case_globals, non_snake_case)]

// zlib is linked through libz-sys's static build; naming the crate keeps it in the link.
extern crate libz_sys;

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// The unpacked ale-py sdist this crate was built from (the folder holding `src/ale`); the
/// ROMs ALE supports are in `SOURCE_DIR/src/ale/python/roms`.
pub const SOURCE_DIR: &str = env!("ALE_SYS_SOURCE_DIR");
