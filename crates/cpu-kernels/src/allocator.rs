//! How long mimalloc, the allocator of every binary of the workspace, keeps freed memory.
//!
//! A learner update frees and allocates tensors of many MB. With mimalloc's default purge
//! delay (1 s in its v3, which the `mimalloc` crate builds) freed pages still go back to the
//! OS between updates and come back zeroed by the kernel: at 1042 actions that zeroing was
//! 41 % of an update's cycles (docs/benchmarks.md, the `perf` profile under "With the
//! cheaper meta step as the default"). Holding them for a few seconds spans many updates,
//! and still returns memory that a run stops using.

use libmimalloc_sys::{mi_option_set_default, mi_option_t};

/// mimalloc's `mi_option_purge_delay` (v3's `mimalloc.h`; the crate leaves the newer options
/// unnamed). Its environment variable is `MIMALLOC_PURGE_DELAY`.
const PURGE_DELAY: mi_option_t = 15;

/// The purge delay the binaries set, in ms: longer than any learner update or meta step.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`] unless the environment set one
/// (`MIMALLOC_PURGE_DELAY`, or the older `MIMALLOC_RESET_DELAY`), so a user's setting wins.
/// The binaries call it first in `main`, before any other thread exists: mimalloc stores
/// the option as a plain integer that allocating threads read without synchronisation.
pub fn hold_freed_memory() {
    // SAFETY: sets one integer option of mimalloc's; the only hazard is a concurrent read by
    // another thread, which the call's place (first in `main`) rules out.
    #[allow(unsafe_code)]
    unsafe {
        mi_option_set_default(PURGE_DELAY, PURGE_DELAY_MS as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mimalloc's purge delay in effect, in ms.
    fn purge_delay_ms() -> i64 {
        // SAFETY: reads an option; no precondition.
        #[allow(unsafe_code)]
        let ms = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        ms as i64
    }

    /// The option index is mimalloc's purge delay: it holds that option's default, 1000 ms
    /// (v3's options.c), which no neighbouring option has; and the call sets it.
    #[test]
    fn sets_the_purge_delay_unless_the_environment_did() {
        let set_by_env = |name: &str| {
            name.eq_ignore_ascii_case("MIMALLOC_PURGE_DELAY")
                || name.eq_ignore_ascii_case("MIMALLOC_RESET_DELAY")
        };
        if std::env::vars_os().any(|(name, _)| name.to_str().is_some_and(set_by_env)) {
            return;
        }
        assert_eq!(purge_delay_ms(), 1000);
        hold_freed_memory();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
