//! [`Ale`]: one owned Arcade Learning Environment instance, and [`AleState`], a saved state.
//!
//! A thin safe layer over `ale_sys`: each method is one shim call plus [`check`]. Screens
//! are written into caller buffers, row-major: `(height, width)` palette indices or
//! grayscale, `(height, width, 3)` interleaved RGB. Width is always 160; height is 210 for
//! most games but up to 250 for some (Adventure, Pac-Man, ...), so size buffers from
//! [`Ale::screen_height`] after [`Ale::load_rom`].
//! The hot-path calls ([`Ale::act`], `screen_*`, [`Ale::ram`]) never allocate.
//!
//! Calling a method that needs a game before [`Ale::load_rom`] panics, as does an action id
//! outside `0..18` or a screen buffer of the wrong size: those are bugs in the caller.
//!
//! ```no_run
//! use ale_env::{rom_path, Ale};
//! let mut ale = Ale::new()?;
//! ale.set_int("random_seed", 7)?;
//! ale.load_rom(&rom_path("pong")?)?;
//! let actions = ale.minimal_action_set();
//! let mut screen = vec![0u8; ale.screen_height() * ale.screen_width()];
//! let mut score = 0;
//! while !ale.game_over(true) {
//!     score += ale.act(actions[0], 1.0);
//!     ale.screen_grayscale(&mut screen);
//! }
//! # let _ = score;
//! # Ok::<(), ale_env::Error>(())
//! ```

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::ptr::{self, NonNull};

use ale_sys as sys;

use crate::error::{Error, Result};

/// Bytes of Atari 2600 RAM.
pub const RAM_SIZE: usize = sys::ALE_RAM_SIZE as usize;
/// Number of ALE joystick actions (ids `0..NUM_ACTIONS`).
pub const NUM_ACTIONS: usize = sys::ALE_NUM_ACTIONS as usize;

/// ALE's names for action ids `0..18`, as in `ale::Action` (`PLAYER_A_` dropped).
const ACTION_NAMES: [&str; NUM_ACTIONS] = [
    "NOOP",
    "FIRE",
    "UP",
    "RIGHT",
    "LEFT",
    "DOWN",
    "UPRIGHT",
    "UPLEFT",
    "DOWNRIGHT",
    "DOWNLEFT",
    "UPFIRE",
    "RIGHTFIRE",
    "LEFTFIRE",
    "DOWNFIRE",
    "UPRIGHTFIRE",
    "UPLEFTFIRE",
    "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
];

/// ALE's name for an action id (`0` -> `"NOOP"`, `1` -> `"FIRE"`, ...); `"UNKNOWN"` outside
/// `0..18`.
pub fn action_name(action: i32) -> &'static str {
    usize::try_from(action).ok().and_then(|i| ACTION_NAMES.get(i)).copied().unwrap_or("UNKNOWN")
}

/// ALE's console logging level, process-wide. New instances start at [`LogLevel::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything, including a banner per instance and a line per ROM load.
    Info,
    /// Warnings (e.g. a ROM with an unexpected checksum) and errors.
    Warning,
    /// Errors only.
    Error,
}

/// Sets ALE's console logging level for the whole process.
pub fn set_log_level(level: LogLevel) {
    let level = match level {
        LogLevel::Info => sys::ALE_LOG_INFO,
        LogLevel::Warning => sys::ALE_LOG_WARNING,
        LogLevel::Error => sys::ALE_LOG_ERROR,
    };
    // SAFETY: no pointers; the level is one of the three the shim accepts.
    let status = unsafe { sys::ale_set_log_level(level) };
    debug_assert_eq!(status, sys::ALE_OK);
}

/// The last shim error message on this thread.
fn last_error() -> String {
    // SAFETY: the shim returns a NUL-terminated thread-local string that lives until the next
    // failing call on this thread; it is copied before anything else calls the shim.
    unsafe { CStr::from_ptr(sys::ale_last_error()) }.to_string_lossy().into_owned()
}

/// Turns a shim status into this crate's error: the one place the codes are interpreted.
fn check(status: sys::ale_status, op: &'static str) -> Result<()> {
    match status {
        sys::ALE_OK => Ok(()),
        sys::ALE_BAD_STATE => Err(Error::BadState { message: last_error() }),
        _ => Err(Error::Ale { op, message: last_error() }),
    }
}

/// For calls whose only failures are caller bugs (no ROM loaded, a wrong buffer size, an
/// action id out of range): panics with ALE's message. Kept out of line so the hot path is a
/// compare and a branch.
#[inline]
fn expect_ok(status: sys::ale_status, op: &'static str) {
    if status != sys::ALE_OK {
        failed(op)
    }
}

#[cold]
#[inline(never)]
fn failed(op: &'static str) -> ! {
    panic!("Ale::{op}: {}", last_error())
}

fn c_string(s: &str, what: &'static str, op: &'static str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Ale { op, message: format!("{what} {s:?} contains a NUL byte") })
}

/// One ALE emulator: settings, a loaded ROM, and its game state.
///
/// Settings (`set_*`) take effect at the next [`Ale::load_rom`]. Not `Sync`: every call,
/// even a read, goes through one C++ object.
pub struct Ale {
    handle: NonNull<sys::ale_t>,
}

// SAFETY: an ALEInterface owns all of its state (emulator, settings, RNG) and keeps no
// thread-affine resources (no thread-locals, no OS handles tied to a thread), so moving it
// to another thread is sound; ALE's own vector environment runs one instance per worker
// thread. The shim's error message is thread-local and read on the failing thread. The only
// shared global is the log level, written through `set_log_level` and read only by logging.
unsafe impl Send for Ale {}

impl Ale {
    /// A new instance with ALE's default settings and logging quietened to errors.
    pub fn new() -> Result<Ale> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success it holds a handle we now own.
        check(unsafe { sys::ale_create(&mut raw) }, "new")?;
        let handle = NonNull::new(raw)
            .ok_or_else(|| Error::Ale { op: "new", message: "ale_create returned a null handle".into() })?;
        Ok(Ale { handle })
    }

    fn raw(&self) -> *const sys::ale_t {
        self.handle.as_ptr()
    }

    fn raw_mut(&mut self) -> *mut sys::ale_t {
        self.handle.as_ptr()
    }

    /// Sets an integer setting (e.g. `random_seed`, `frame_skip`, `max_num_frames_per_episode`).
    pub fn set_int(&mut self, key: &str, v: i32) -> Result<()> {
        let key = c_string(key, "setting key", "set_int")?;
        // SAFETY: live handle, NUL-terminated key that outlives the call.
        check(unsafe { sys::ale_set_int(self.raw_mut(), key.as_ptr(), v) }, "set_int")
    }

    /// Sets a float setting (e.g. `repeat_action_probability`). ALE stores settings as text
    /// with six significant digits, so reading back may round.
    pub fn set_float(&mut self, key: &str, v: f32) -> Result<()> {
        let key = c_string(key, "setting key", "set_float")?;
        // SAFETY: live handle, NUL-terminated key that outlives the call.
        check(unsafe { sys::ale_set_float(self.raw_mut(), key.as_ptr(), v) }, "set_float")
    }

    /// Sets a boolean setting (e.g. `color_averaging`, `truncate_on_loss_of_life`).
    pub fn set_bool(&mut self, key: &str, v: bool) -> Result<()> {
        let key = c_string(key, "setting key", "set_bool")?;
        // SAFETY: live handle, NUL-terminated key that outlives the call.
        check(unsafe { sys::ale_set_bool(self.raw_mut(), key.as_ptr(), c_int::from(v)) }, "set_bool")
    }

    /// Sets a string setting (e.g. `record_screen_dir`).
    pub fn set_string(&mut self, key: &str, v: &str) -> Result<()> {
        let key = c_string(key, "setting key", "set_string")?;
        let v = c_string(v, "setting value", "set_string")?;
        // SAFETY: live handle, NUL-terminated key and value that outlive the call.
        check(unsafe { sys::ale_set_string(self.raw_mut(), key.as_ptr(), v.as_ptr()) }, "set_string")
    }

    /// Reads an integer setting; an unknown key is an error.
    pub fn get_int(&self, key: &str) -> Result<i32> {
        let key = c_string(key, "setting key", "get_int")?;
        let mut out: c_int = 0;
        // SAFETY: live handle, NUL-terminated key, valid out-pointer.
        check(unsafe { sys::ale_get_int(self.raw(), key.as_ptr(), &mut out) }, "get_int")?;
        Ok(out)
    }

    /// Reads a float setting; an unknown key is an error.
    pub fn get_float(&self, key: &str) -> Result<f32> {
        let key = c_string(key, "setting key", "get_float")?;
        let mut out = 0.0f32;
        // SAFETY: live handle, NUL-terminated key, valid out-pointer.
        check(unsafe { sys::ale_get_float(self.raw(), key.as_ptr(), &mut out) }, "get_float")?;
        Ok(out)
    }

    /// Reads a boolean setting; an unknown key is an error.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let key = c_string(key, "setting key", "get_bool")?;
        let mut out: c_int = 0;
        // SAFETY: live handle, NUL-terminated key, valid out-pointer.
        check(unsafe { sys::ale_get_bool(self.raw(), key.as_ptr(), &mut out) }, "get_bool")?;
        Ok(out != 0)
    }

    /// Reads a string setting; an unknown key is an error.
    pub fn get_string(&self, key: &str) -> Result<String> {
        let key = c_string(key, "setting key", "get_string")?;
        let mut data: *const c_char = ptr::null();
        let mut len = 0usize;
        // SAFETY: live handle, NUL-terminated key, valid out-pointers.
        check(unsafe { sys::ale_get_string(self.raw(), key.as_ptr(), &mut data, &mut len) }, "get_string")?;
        if len == 0 {
            return Ok(String::new());
        }
        // SAFETY: on success `data` points at `len` bytes of ALE's stored setting, which stays
        // put until a setter or load_rom runs; `&self` rules both out until we have copied it.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Whether ALE supports the ROM file (its MD5 is one ALE knows), and if so its ROM id
    /// (e.g. `"space_invaders"`). A missing file is an error.
    pub fn supported_rom_id(path: &Path) -> Result<Option<String>> {
        let cpath = path_c_string(path, "is_supported_rom")?;
        let mut supported: c_int = 0;
        let mut id = [0u8; 64];
        let mut id_len = 0usize;
        // SAFETY: NUL-terminated path; `id` is a writable buffer of the stated capacity.
        check(
            unsafe {
                sys::ale_is_supported_rom(
                    cpath.as_ptr(),
                    &mut supported,
                    id.as_mut_ptr().cast::<c_char>(),
                    id.len(),
                    &mut id_len,
                )
            },
            "is_supported_rom",
        )?;
        if supported == 0 {
            return Ok(None);
        }
        let id = &id[..id_len.min(id.len() - 1)];
        Ok(Some(String::from_utf8_lossy(id).into_owned()))
    }

    /// Loads a ROM and resets the game, applying the current settings. A file whose checksum
    /// ALE does not support is refused with [`Error::UnsupportedRom`].
    pub fn load_rom(&mut self, path: &Path) -> Result<()> {
        if Ale::supported_rom_id(path)?.is_none() {
            return Err(Error::UnsupportedRom { path: path.to_path_buf() });
        }
        let cpath = path_c_string(path, "load_rom")?;
        // SAFETY: live handle, NUL-terminated path.
        check(unsafe { sys::ale_load_rom(self.raw_mut(), cpath.as_ptr()) }, "load_rom")
    }

    /// Runs one agent step (`frame_skip` frames, with sticky actions if set) and returns the
    /// reward. `action` is an ALE action id in `0..18`; `paddle_strength` in `[-1, 1]` scales
    /// paddle movement in paddle games.
    ///
    /// # Panics
    /// If no ROM is loaded or `action` is outside `0..18`.
    #[inline]
    pub fn act(&mut self, action: i32, paddle_strength: f32) -> i32 {
        let mut reward: c_int = 0;
        // SAFETY: live handle, valid out-pointer; the shim range-checks `action`.
        let status = unsafe { sys::ale_act(self.raw_mut(), action, paddle_strength, &mut reward) };
        expect_ok(status, "act");
        reward
    }

    /// Starts a new episode (soft reset, with the game's start actions).
    pub fn reset_game(&mut self) {
        // SAFETY: live handle.
        expect_ok(unsafe { sys::ale_reset_game(self.raw_mut()) }, "reset_game");
    }

    /// Whether the episode is over: the game ended, or (`with_truncation`) it hit
    /// `max_num_frames_per_episode`.
    pub fn game_over(&self, with_truncation: bool) -> bool {
        let mut out: c_int = 0;
        // SAFETY: live handle, valid out-pointer.
        let status = unsafe { sys::ale_game_over(self.raw(), c_int::from(with_truncation), &mut out) };
        expect_ok(status, "game_over");
        out != 0
    }

    /// Whether the episode was cut at `max_num_frames_per_episode`.
    pub fn game_truncated(&self) -> bool {
        let mut out: c_int = 0;
        // SAFETY: live handle, valid out-pointer.
        expect_ok(unsafe { sys::ale_game_truncated(self.raw(), &mut out) }, "game_truncated");
        out != 0
    }

    /// Lives left, as the game's RAM says (0 for games without lives).
    pub fn lives(&self) -> i32 {
        self.int_query(sys::ale_lives, "lives")
    }

    /// Frames emulated since the ROM was loaded.
    pub fn frame_number(&self) -> i32 {
        self.int_query(sys::ale_frame_number, "frame_number")
    }

    /// Frames emulated since the episode began.
    pub fn episode_frame_number(&self) -> i32 {
        self.int_query(sys::ale_episode_frame_number, "episode_frame_number")
    }

    fn int_query(
        &self,
        f: unsafe extern "C" fn(*const sys::ale_t, *mut c_int) -> sys::ale_status,
        op: &'static str,
    ) -> i32 {
        let mut out: c_int = 0;
        // SAFETY: `f` is one of the shim's (handle, out) queries; live handle, valid out-ptr.
        expect_ok(unsafe { f(self.raw(), &mut out) }, op);
        out
    }

    /// The actions that matter in this game, as ALE action ids.
    pub fn minimal_action_set(&self) -> Vec<i32> {
        self.list(sys::ale_minimal_action_set, "minimal_action_set")
    }

    /// All 18 joystick actions, as ALE action ids.
    pub fn legal_action_set(&self) -> Vec<i32> {
        self.list(sys::ale_legal_action_set, "legal_action_set")
    }

    /// The game modes this ROM offers.
    pub fn available_modes(&self) -> Vec<i32> {
        self.list(sys::ale_available_modes, "available_modes")
    }

    /// The difficulty settings this ROM offers.
    pub fn available_difficulties(&self) -> Vec<i32> {
        self.list(sys::ale_available_difficulties, "available_difficulties")
    }

    fn list(
        &self,
        f: unsafe extern "C" fn(*const sys::ale_t, *mut c_int, usize, *mut usize) -> sys::ale_status,
        op: &'static str,
    ) -> Vec<i32> {
        let mut buf = vec![0; NUM_ACTIONS];
        loop {
            let mut len = 0usize;
            // SAFETY: `f` is one of the shim's list queries; `buf` has `buf.len()` writable
            // ints and the shim writes at most that many.
            expect_ok(unsafe { f(self.raw(), buf.as_mut_ptr(), buf.len(), &mut len) }, op);
            if len <= buf.len() {
                buf.truncate(len);
                return buf;
            }
            buf.resize(len, 0);
        }
    }

    /// Selects a game mode (one of [`Ale::available_modes`]); applies at the next
    /// [`Ale::reset_game`].
    pub fn set_mode(&mut self, m: i32) -> Result<()> {
        // SAFETY: live handle; the shim checks `m` against the available modes.
        check(unsafe { sys::ale_set_mode(self.raw_mut(), m) }, "set_mode")
    }

    /// Selects a difficulty (one of [`Ale::available_difficulties`]); applies at the next
    /// [`Ale::reset_game`].
    pub fn set_difficulty(&mut self, d: i32) -> Result<()> {
        // SAFETY: live handle; the shim checks `d` against the available difficulties.
        check(unsafe { sys::ale_set_difficulty(self.raw_mut(), d) }, "set_difficulty")
    }

    /// Screen height in pixels: 210 for most games, up to 250 (e.g. `adventure`, `pacman`).
    pub fn screen_height(&self) -> usize {
        let mut out = 0usize;
        // SAFETY: live handle, valid out-pointer.
        expect_ok(unsafe { sys::ale_screen_height(self.raw(), &mut out) }, "screen_height");
        out
    }

    /// Screen width in pixels (160).
    pub fn screen_width(&self) -> usize {
        let mut out = 0usize;
        // SAFETY: live handle, valid out-pointer.
        expect_ok(unsafe { sys::ale_screen_width(self.raw(), &mut out) }, "screen_width");
        out
    }

    /// The screen as grayscale luminance, `(height, width)`.
    ///
    /// # Panics
    /// If `out.len() != height * width` or no ROM is loaded.
    #[inline]
    pub fn screen_grayscale(&self, out: &mut [u8]) {
        // SAFETY: `out` is writable for `out.len()` bytes; the shim writes only if that is
        // exactly the screen size.
        let status = unsafe { sys::ale_screen_grayscale(self.raw(), out.as_mut_ptr(), out.len()) };
        expect_ok(status, "screen_grayscale");
    }

    /// The screen as interleaved RGB, `(height, width, 3)`.
    ///
    /// # Panics
    /// If `out.len() != height * width * 3` or no ROM is loaded.
    #[inline]
    pub fn screen_rgb(&self, out: &mut [u8]) {
        // SAFETY: as in screen_grayscale, with three bytes per pixel.
        let status = unsafe { sys::ale_screen_rgb(self.raw(), out.as_mut_ptr(), out.len()) };
        expect_ok(status, "screen_rgb");
    }

    /// The screen as NTSC palette indices, `(height, width)`.
    ///
    /// # Panics
    /// If `out.len() != height * width` or no ROM is loaded.
    #[inline]
    pub fn screen_palette(&self, out: &mut [u8]) {
        // SAFETY: as in screen_grayscale.
        let status = unsafe { sys::ale_screen_palette(self.raw(), out.as_mut_ptr(), out.len()) };
        expect_ok(status, "screen_palette");
    }

    /// The 128 bytes of console RAM.
    #[inline]
    pub fn ram(&self, out: &mut [u8; RAM_SIZE]) {
        // SAFETY: `out` is writable for exactly RAM_SIZE bytes, which the shim requires.
        let status = unsafe { sys::ale_get_ram(self.raw(), out.as_mut_ptr(), out.len()) };
        expect_ok(status, "ram");
    }

    /// The 128 bytes of console RAM, in a new vector.
    pub fn ram_vec(&self) -> Vec<u8> {
        let mut ram = [0u8; RAM_SIZE];
        self.ram(&mut ram);
        ram.to_vec()
    }

    /// Writes one byte of console RAM (`index` in `0..128`).
    pub fn set_ram(&mut self, index: usize, value: u8) -> Result<()> {
        // SAFETY: live handle; the shim range-checks `index`.
        check(unsafe { sys::ale_set_ram(self.raw_mut(), index, value) }, "set_ram")
    }

    /// Saves the game state. Without `include_rng`, restoring it keeps the current RNG (for
    /// sticky actions) running, so continuations differ when actions are sticky; with it,
    /// they repeat exactly.
    pub fn clone_state(&mut self, include_rng: bool) -> Result<AleState> {
        let mut raw = ptr::null_mut();
        // SAFETY: live handle, valid out-pointer; on success we own the new state.
        check(
            unsafe { sys::ale_clone_state(self.raw_mut(), c_int::from(include_rng), &mut raw) },
            "clone_state",
        )?;
        AleState::from_raw(raw, "clone_state")
    }

    /// Saves the whole system state, RNG included: `clone_state(true)`.
    pub fn clone_system_state(&mut self) -> Result<AleState> {
        let mut raw = ptr::null_mut();
        // SAFETY: live handle, valid out-pointer; on success we own the new state.
        check(unsafe { sys::ale_clone_system_state(self.raw_mut(), &mut raw) }, "clone_system_state")?;
        AleState::from_raw(raw, "clone_system_state")
    }

    /// Restores a state saved from the same ROM; one from another ROM is
    /// [`Error::BadState`].
    pub fn restore_state(&mut self, s: &AleState) -> Result<()> {
        // SAFETY: live handle and live state; the shim only reads the state.
        check(unsafe { sys::ale_restore_state(self.raw_mut(), s.handle.as_ptr()) }, "restore_state")
    }
}

impl Drop for Ale {
    fn drop(&mut self) {
        // SAFETY: the handle came from ale_create and is freed exactly once, here.
        unsafe { sys::ale_destroy(self.handle.as_ptr()) }
    }
}

impl std::fmt::Debug for Ale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ale").finish_non_exhaustive()
    }
}

fn path_c_string(path: &Path, op: &'static str) -> Result<CString> {
    let s = path
        .to_str()
        .ok_or_else(|| Error::Ale { op, message: format!("path {} is not valid UTF-8", path.display()) })?;
    c_string(s, "path", op)
}

/// A saved ALE state (from [`Ale::clone_state`] or [`AleState::deserialize`]).
pub struct AleState {
    handle: NonNull<sys::ale_state_t>,
}

// SAFETY: an ALEState is plain data (integers and a byte string) with no ties to the thread
// or the Ale that made it.
unsafe impl Send for AleState {}

impl AleState {
    fn from_raw(raw: *mut sys::ale_state_t, op: &'static str) -> Result<AleState> {
        NonNull::new(raw)
            .map(|handle| AleState { handle })
            .ok_or_else(|| Error::Ale { op, message: "the shim returned a null state".into() })
    }

    /// ALE's own byte serialisation of the state (as ale-py's `ALEState.serialize`).
    pub fn serialize(&self) -> Vec<u8> {
        let mut len = 0usize;
        // SAFETY: live state; a null buffer with capacity 0 asks only for the length.
        let status = unsafe { sys::ale_state_serialize(self.handle.as_ptr(), ptr::null_mut(), 0, &mut len) };
        expect_ok(status, "AleState::serialize");
        let mut bytes = vec![0u8; len];
        let mut written = 0usize;
        // SAFETY: `bytes` is writable for `len` bytes, the capacity passed.
        let status =
            unsafe { sys::ale_state_serialize(self.handle.as_ptr(), bytes.as_mut_ptr(), len, &mut written) };
        expect_ok(status, "AleState::serialize");
        assert_eq!(written, len, "ALE state changed size between two reads");
        bytes
    }

    /// Rebuilds a state from [`AleState::serialize`] bytes. The framing and the ROM checksum
    /// inside are checked (a malformed buffer is [`Error::BadState`]); the emulator payload is
    /// trusted as ALE trusts it, so only restore bytes this crate or ale-py wrote.
    pub fn deserialize(bytes: &[u8]) -> Result<AleState> {
        let mut raw = ptr::null_mut();
        // SAFETY: `bytes` is readable for its length; valid out-pointer.
        check(
            unsafe { sys::ale_state_deserialize(bytes.as_ptr(), bytes.len(), &mut raw) },
            "AleState::deserialize",
        )?;
        AleState::from_raw(raw, "AleState::deserialize")
    }
}

impl Drop for AleState {
    fn drop(&mut self) {
        // SAFETY: the state came from the shim and is freed exactly once, here.
        unsafe { sys::ale_state_free(self.handle.as_ptr()) }
    }
}

impl std::fmt::Debug for AleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AleState").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_follow_ale() {
        assert_eq!(action_name(0), "NOOP");
        assert_eq!(action_name(1), "FIRE");
        assert_eq!(action_name(11), "RIGHTFIRE");
        assert_eq!(action_name(17), "DOWNLEFTFIRE");
        assert_eq!(action_name(18), "UNKNOWN");
        assert_eq!(action_name(-1), "UNKNOWN");
    }

    #[test]
    fn settings_work_without_a_rom() {
        let mut ale = Ale::new().unwrap();
        ale.set_int("frame_skip", 3).unwrap();
        assert_eq!(ale.get_int("frame_skip").unwrap(), 3);
        assert!(matches!(ale.get_int("no_such_key"), Err(Error::Ale { op: "get_int", .. })));
        assert!(matches!(ale.set_int("no_such_key", 1), Err(Error::Ale { op: "set_int", .. })));
        assert!(ale.set_int("bad\0key", 1).is_err());
    }

    #[test]
    #[should_panic(expected = "no ROM loaded")]
    fn acting_without_a_rom_panics_clearly() {
        let mut ale = Ale::new().unwrap();
        ale.act(0, 1.0);
    }

    #[test]
    fn deserialize_rejects_garbage() {
        for bytes in [&b""[..], &[0u8; 10][..], &[0xffu8; 64][..]] {
            assert!(matches!(AleState::deserialize(bytes), Err(Error::BadState { .. })));
        }
    }
}
