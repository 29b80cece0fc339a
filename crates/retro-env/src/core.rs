//! [`Core`]: the libretro front end over Genesis Plus GX, one owned, loaded game.
//!
//! libretro callbacks take no user pointer, and the core keeps its own state in C globals, so
//! the front end's side (the pressed buttons, the last frame, the pixel format) is a global
//! too, and at most one `Core` is live per process ([`Error::CoreInUse`]).
//!
//! Screens are `(height, width)`; 320x224 for most Genesis games, 256x224 for games in the
//! 32-cell mode (StreetFighter II). RAM is the 64 KiB of work RAM at 0xFF0000 as the core
//! stores it: native 16-bit words (see [`crate::Variable`] for addressing).
//!
//! ```no_run
//! let mut core = retro_env::Core::load("Airstriker-Genesis-v0.md".as_ref())?;
//! core.run_frame(0);
//! let (w, h) = core.screen_size();
//! let mut rgb = vec![0; w * h * 3];
//! core.screen_rgb(&mut rgb);
//! # Ok::<(), retro_env::Error>(())
//! ```

use std::ffi::{c_char, c_uint, c_void, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use retro_sys as sys;

use crate::error::{io, Error, Result};

/// True while a `Core` exists in this process.
static LIVE: AtomicBool = AtomicBool::new(false);

/// The core options stable-retro sets (its `s_envVariables`); every other option keeps the
/// core's default. `render = single field` keeps interlaced games at one field per frame.
const CORE_OPTIONS: &[(&CStr, &CStr)] = &[
    (c"genesis_plus_gx_bram", c"per game"),
    (c"genesis_plus_gx_render", c"single field"),
    (c"genesis_plus_gx_blargg_ntsc_filter", c"disabled"),
];

/// The front end's half of the libretro state, shared with the C callbacks.
struct Frontend {
    /// Bit `i` pressed = libretro joypad id `i` on port 0 (genesis.json's `buttons` order).
    buttons: u16,
    pixel_format: sys::retro_pixel_format,
    /// The last frame the core drew: its pointer stays valid until the next `retro_run`.
    frame: *const u8,
    width: usize,
    height: usize,
    pitch: usize,
    /// What `GET_SYSTEM_DIRECTORY` answers: the ROM's folder, where BIOS files would live.
    system_dir: Option<CString>,
}

// SAFETY: `frame` points into the core's globals, only dereferenced by the live `Core`, which
// is unique in the process.
unsafe impl Send for Frontend {}

static FRONTEND: Mutex<Frontend> = Mutex::new(Frontend {
    buttons: 0,
    // libretro's default until the core says otherwise.
    pixel_format: sys::retro_pixel_format_RETRO_PIXEL_FORMAT_0RGB1555,
    frame: std::ptr::null(),
    width: 0,
    height: 0,
    pitch: 0,
    system_dir: None,
});

fn frontend() -> std::sync::MutexGuard<'static, Frontend> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    FRONTEND.lock().unwrap_or_else(|e| e.into_inner())
}

unsafe extern "C" fn environment(cmd: c_uint, data: *mut c_void) -> bool {
    match cmd {
        sys::RETRO_ENVIRONMENT_SET_PIXEL_FORMAT => {
            // SAFETY: libretro passes a `retro_pixel_format *` for this command.
            let format = unsafe { *(data as *const sys::retro_pixel_format) };
            frontend().pixel_format = format;
            true
        }
        sys::RETRO_ENVIRONMENT_GET_VARIABLE => {
            // SAFETY: libretro passes a `retro_variable *` for this command.
            let var = unsafe { &mut *(data as *mut sys::retro_variable) };
            if var.key.is_null() {
                return false;
            }
            // SAFETY: the key is a NUL-terminated string owned by the core.
            let key = unsafe { CStr::from_ptr(var.key) };
            match CORE_OPTIONS.iter().find(|(k, _)| *k == key) {
                Some((_, value)) => {
                    var.value = value.as_ptr();
                    true
                }
                None => false,
            }
        }
        sys::RETRO_ENVIRONMENT_GET_SYSTEM_DIRECTORY => {
            // The CString lives in a static and is replaced only by the next `Core::load`.
            let Some(dir) = frontend().system_dir.as_ref().map(|d| d.as_ptr()) else {
                return false;
            };
            // SAFETY: libretro passes a `const char **` for this command.
            unsafe { *(data as *mut *const c_char) = dir };
            true
        }
        sys::RETRO_ENVIRONMENT_GET_LOG_INTERFACE => {
            // SAFETY: libretro passes a `retro_log_callback *` for this command.
            unsafe { (*(data as *mut sys::retro_log_callback)).log = Some(sys::masp_retro_log) };
            true
        }
        sys::RETRO_ENVIRONMENT_GET_CAN_DUPE => {
            // SAFETY: libretro passes a `bool *` for this command.
            unsafe { *(data as *mut bool) = true };
            true
        }
        _ => false,
    }
}

unsafe extern "C" fn video_refresh(data: *const c_void, width: c_uint, height: c_uint, pitch: usize) {
    let mut f = frontend();
    // NULL means "the same frame again" (a duped frame): keep the last one.
    if !data.is_null() {
        f.frame = data as *const u8;
    }
    if pitch != 0 {
        f.pitch = pitch;
    }
    f.width = width as usize;
    f.height = height as usize;
}

unsafe extern "C" fn audio_sample(_left: i16, _right: i16) {}

unsafe extern "C" fn audio_sample_batch(_data: *const i16, frames: usize) -> usize {
    frames
}

unsafe extern "C" fn input_poll() {}

unsafe extern "C" fn input_state(port: c_uint, device: c_uint, _index: c_uint, id: c_uint) -> i16 {
    if port != 0 || device != sys::RETRO_DEVICE_JOYPAD || id >= 16 {
        return 0;
    }
    i16::from((frontend().buttons >> id) & 1 == 1)
}

/// One Genesis Plus GX instance with a loaded ROM. Dropping it unloads the game and
/// deinitialises the core, after which another `Core` may be loaded.
#[derive(Debug)]
pub struct Core {
    ram: *mut u8,
    ram_len: usize,
    /// How far `init` got, so that Drop undoes exactly that.
    initialised: bool,
    game_loaded: bool,
}

// SAFETY: the core's globals belong to this one value (LIVE enforces uniqueness), so moving
// it to another thread moves all access with it.
unsafe impl Send for Core {}

impl Core {
    /// Loads a ROM file (its extension, `.md`, tells the core the system). Fails with
    /// [`Error::CoreInUse`] while another `Core` is live in the process.
    pub fn load(rom: &Path) -> Result<Core> {
        if LIVE.swap(true, Ordering::AcqRel) {
            return Err(Error::CoreInUse);
        }
        // From here on, Drop of the half-built core releases LIVE and deinitialises.
        let mut core = Core { ram: std::ptr::null_mut(), ram_len: 0, initialised: false, game_loaded: false };
        core.init(rom)?;
        Ok(core)
    }

    fn init(&mut self, rom: &Path) -> Result<()> {
        let data = std::fs::read(rom).map_err(io(rom))?;
        let path_c = CString::new(rom.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Core { op: "retro_load_game", message: "ROM path contains NUL".into() })?;
        let dir = rom.parent().unwrap_or(Path::new("."));
        {
            let mut f = frontend();
            f.system_dir = CString::new(dir.as_os_str().as_encoded_bytes()).ok();
            f.buttons = 0;
            f.frame = std::ptr::null();
            f.pixel_format = sys::retro_pixel_format_RETRO_PIXEL_FORMAT_0RGB1555;
        }
        let info = sys::retro_game_info {
            path: path_c.as_ptr(),
            data: data.as_ptr().cast(),
            size: data.len(),
            meta: std::ptr::null(),
        };
        // SAFETY: LIVE makes this the only user of the core; the callbacks are valid for the
        // program's life; `info` and what it points to outlive the call (the core copies the
        // ROM into its own cartridge buffer).
        let loaded = unsafe {
            sys::retro_set_environment(Some(environment));
            sys::retro_set_video_refresh(Some(video_refresh));
            sys::retro_set_audio_sample(Some(audio_sample));
            sys::retro_set_audio_sample_batch(Some(audio_sample_batch));
            sys::retro_set_input_poll(Some(input_poll));
            sys::retro_set_input_state(Some(input_state));
            sys::retro_init();
            self.initialised = true;
            sys::retro_load_game(&info)
        };
        if !loaded {
            return Err(Error::Core {
                op: "retro_load_game",
                message: format!("the core rejected {} (not a Genesis ROM?)", rom.display()),
            });
        }
        self.game_loaded = true;
        // SAFETY: a game is loaded; the RAM buffer is a core global that lives until unload.
        unsafe {
            self.ram = sys::retro_get_memory_data(sys::RETRO_MEMORY_SYSTEM_RAM).cast();
            self.ram_len = sys::retro_get_memory_size(sys::RETRO_MEMORY_SYSTEM_RAM);
        }
        if self.ram.is_null() {
            self.ram_len = 0;
        }
        Ok(())
    }

    /// Emulates one frame (1/60 s) with `buttons` held: bit `i` is genesis.json's
    /// `buttons[i]` (B, A, MODE, START, UP, DOWN, LEFT, RIGHT, C, Y, X, Z).
    pub fn run_frame(&mut self, buttons: u16) {
        frontend().buttons = buttons;
        // SAFETY: this `Core` is the core's only user, and a game is loaded.
        unsafe { sys::retro_run() };
    }

    /// Power-cycles the console (the ROM stays loaded).
    pub fn reset(&mut self) {
        // SAFETY: as in `run_frame`.
        unsafe { sys::retro_reset() };
    }

    /// The core's whole state, as `.state` files hold it (before gzip).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        // SAFETY: as in `run_frame`; the buffer is as large as the core asks.
        unsafe {
            let mut buf = vec![0u8; sys::retro_serialize_size()];
            if !sys::retro_serialize(buf.as_mut_ptr().cast(), buf.len()) {
                return Err(Error::Core { op: "retro_serialize", message: "the core refused".into() });
            }
            Ok(buf)
        }
    }

    /// Restores a state from [`Core::serialize`] (or a `.state` file, unzipped).
    pub fn unserialize(&mut self, state: &[u8]) -> Result<()> {
        // SAFETY: as in `run_frame`; the core reads at most `state.len()` bytes.
        let ok = unsafe { sys::retro_unserialize(state.as_ptr().cast(), state.len()) };
        if ok {
            Ok(())
        } else {
            Err(Error::Core {
                op: "retro_unserialize",
                message: format!(
                    "the core rejected a state of {} bytes (states fit only this core version)",
                    state.len()
                ),
            })
        }
    }

    /// The 64 KiB of work RAM as the core stores it (16-bit words in host order).
    pub fn ram(&self) -> &[u8] {
        if self.ram.is_null() {
            return &[];
        }
        // SAFETY: the core's RAM global, valid while the game is loaded; `&self` means no
        // `retro_run` (the only writer) runs meanwhile.
        unsafe { std::slice::from_raw_parts(self.ram, self.ram_len) }
    }

    /// `(width, height)` of the last frame drawn; `(0, 0)` before the first `run_frame`.
    pub fn screen_size(&self) -> (usize, usize) {
        let f = frontend();
        if f.frame.is_null() {
            (0, 0)
        } else {
            (f.width, f.height)
        }
    }

    /// The last frame as packed RGB, `(height, width, 3)`. 15- and 16-bit colours are
    /// shifted into the high bits (31 -> 248), as stable-retro converts them, so that raw
    /// screens equal its. Panics if `out` is not `width * height * 3` long.
    pub fn screen_rgb(&self, out: &mut [u8]) {
        self.for_each_pixel(out, 3, |o, [r, g, b]| o.copy_from_slice(&[r, g, b]));
    }

    /// The last frame in grayscale, `(height, width)`, with OpenCV's RGB-to-gray weights.
    pub fn screen_gray(&self, out: &mut [u8]) {
        self.for_each_pixel(out, 1, |o, [r, g, b]| o[0] = rl_env::pixels::rgb_to_gray(r, g, b));
    }

    fn for_each_pixel(&self, out: &mut [u8], channels: usize, mut put: impl FnMut(&mut [u8], [u8; 3])) {
        let f = frontend();
        let (w, h) = if f.frame.is_null() { (0, 0) } else { (f.width, f.height) };
        assert_eq!(out.len(), w * h * channels, "screen buffer must be {w}x{h}x{channels}");
        let bytes_per_pixel = match f.pixel_format {
            sys::retro_pixel_format_RETRO_PIXEL_FORMAT_XRGB8888 => 4,
            _ => 2,
        };
        for y in 0..h {
            // SAFETY: the core's frame buffer holds `height` rows of `pitch` bytes, valid until
            // the next `retro_run`, which needs `&mut self`.
            let row = unsafe { std::slice::from_raw_parts(f.frame.add(y * f.pitch), w * bytes_per_pixel) };
            let out_row = &mut out[y * w * channels..(y + 1) * w * channels];
            for (px, o) in row.chunks_exact(bytes_per_pixel).zip(out_row.chunks_exact_mut(channels)) {
                put(o, decode(f.pixel_format, px));
            }
        }
    }
}

/// One pixel in the core's format to RGB, as stable-retro's front end converts it: the
/// channel's bits moved to the top, the low bits left 0.
#[inline]
fn decode(format: sys::retro_pixel_format, px: &[u8]) -> [u8; 3] {
    let wide5 = |v: u16| (v << 3) as u8;
    let wide6 = |v: u16| (v << 2) as u8;
    match format {
        sys::retro_pixel_format_RETRO_PIXEL_FORMAT_XRGB8888 => [px[2], px[1], px[0]],
        sys::retro_pixel_format_RETRO_PIXEL_FORMAT_RGB565 => {
            let v = u16::from_ne_bytes([px[0], px[1]]);
            [wide5(v >> 11), wide6((v >> 5) & 0x3f), wide5(v & 0x1f)]
        }
        _ => {
            let v = u16::from_ne_bytes([px[0], px[1]]);
            [wide5((v >> 10) & 0x1f), wide5((v >> 5) & 0x1f), wide5(v & 0x1f)]
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // SAFETY: this is the live core; unload before deinit, as libretro orders them.
        unsafe {
            if self.game_loaded {
                sys::retro_unload_game();
            }
            if self.initialised {
                sys::retro_deinit();
            }
        }
        frontend().frame = std::ptr::null();
        LIVE.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_formats_shift_like_stable_retro() {
        let white15 = 0x7fffu16.to_ne_bytes();
        let white565 = 0xffffu16.to_ne_bytes();
        assert_eq!(decode(sys::retro_pixel_format_RETRO_PIXEL_FORMAT_0RGB1555, &white15), [248; 3]);
        assert_eq!(decode(sys::retro_pixel_format_RETRO_PIXEL_FORMAT_RGB565, &white565), [248, 252, 248]);
        assert_eq!(decode(sys::retro_pixel_format_RETRO_PIXEL_FORMAT_XRGB8888, &[1, 2, 3, 0]), [3, 2, 1]);
        // RGB565 green 51 of 63 is 204, the value stable-retro's Airstriker screens hold.
        let green = (51u16 << 5).to_ne_bytes();
        assert_eq!(decode(sys::retro_pixel_format_RETRO_PIXEL_FORMAT_RGB565, &green), [0, 204, 0]);
    }
}
