//! [`Core`]: the libretro front end over Genesis Plus GX, one owned, loaded game.
//!
//! The core keeps its state in C globals, so one linked copy serves one emulator: at most one
//! [`Core::load`] is live per process ([`Error::CoreInUse`]). [`Core::load_isolated`] loads
//! a private copy of the core's shared library instead (its own globals), so any number run
//! side by side. libretro callbacks take no user pointer: the front end's side (pressed
//! buttons, last frame, pixel format) is found through a thread-local pointer set around
//! every call into a core, which is where all callbacks happen.
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

use std::cell::Cell;
use std::ffi::{c_char, c_uint, c_void, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use retro_sys as sys;

use crate::error::{io, Error, Result};

/// True while a `Core` of the linked copy exists in this process.
static LIVE: AtomicBool = AtomicBool::new(false);

/// The core options stable-retro sets (its `s_envVariables`); every other option keeps the
/// core's default. `render = single field` keeps interlaced games at one field per frame.
const CORE_OPTIONS: &[(&CStr, &CStr)] = &[
    (c"genesis_plus_gx_bram", c"per game"),
    (c"genesis_plus_gx_render", c"single field"),
    (c"genesis_plus_gx_blargg_ntsc_filter", c"disabled"),
];

/// The front end's half of the libretro state, one per `Core`, reached by the callbacks
/// through `CURRENT`.
#[derive(Debug)]
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

thread_local! {
    /// The frontend of the core being called on this thread; null outside calls.
    static CURRENT: Cell<*mut Frontend> = const { Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` on the frontend of the core now calling back; `None` outside a call.
fn with_frontend<R>(f: impl FnOnce(&mut Frontend) -> R) -> Option<R> {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: CURRENT is set only by `Core::call`, to the calling core's frontend, which
    // outlives the call, and the core calls back only from inside that call on this thread.
    unsafe { ptr.as_mut() }.map(f)
}

/// The libretro entry points of one copy of the core: the linked one, or a loaded one.
#[derive(Clone, Copy)]
struct Api {
    set_environment: unsafe extern "C" fn(sys::retro_environment_t),
    set_video_refresh: unsafe extern "C" fn(sys::retro_video_refresh_t),
    set_audio_sample: unsafe extern "C" fn(sys::retro_audio_sample_t),
    set_audio_sample_batch: unsafe extern "C" fn(sys::retro_audio_sample_batch_t),
    set_input_poll: unsafe extern "C" fn(sys::retro_input_poll_t),
    set_input_state: unsafe extern "C" fn(sys::retro_input_state_t),
    init: unsafe extern "C" fn(),
    deinit: unsafe extern "C" fn(),
    load_game: unsafe extern "C" fn(*const sys::retro_game_info) -> bool,
    unload_game: unsafe extern "C" fn(),
    run: unsafe extern "C" fn(),
    reset: unsafe extern "C" fn(),
    serialize_size: unsafe extern "C" fn() -> usize,
    serialize: unsafe extern "C" fn(*mut c_void, usize) -> bool,
    unserialize: unsafe extern "C" fn(*const c_void, usize) -> bool,
    get_memory_data: unsafe extern "C" fn(c_uint) -> *mut c_void,
    get_memory_size: unsafe extern "C" fn(c_uint) -> usize,
    set_skip_render: unsafe extern "C" fn(bool),
    set_fast_audio: unsafe extern "C" fn(),
}

impl Api {
    fn linked() -> Api {
        Api {
            set_environment: sys::retro_set_environment,
            set_video_refresh: sys::retro_set_video_refresh,
            set_audio_sample: sys::retro_set_audio_sample,
            set_audio_sample_batch: sys::retro_set_audio_sample_batch,
            set_input_poll: sys::retro_set_input_poll,
            set_input_state: sys::retro_set_input_state,
            init: sys::retro_init,
            deinit: sys::retro_deinit,
            load_game: sys::retro_load_game,
            unload_game: sys::retro_unload_game,
            run: sys::retro_run,
            reset: sys::retro_reset,
            serialize_size: sys::retro_serialize_size,
            serialize: sys::retro_serialize,
            unserialize: sys::retro_unserialize,
            get_memory_data: sys::retro_get_memory_data,
            get_memory_size: sys::retro_get_memory_size,
            set_skip_render: sys::masp_retro_set_skip_render,
            set_fast_audio: sys::masp_retro_set_fast_audio,
        }
    }

    /// The entry points of a loaded copy; `lib` must outlive every use.
    fn loaded(lib: &libloading::Library) -> std::result::Result<Api, libloading::Error> {
        // SAFETY: each symbol is the libretro function of that name, with the signature
        // libretro.h gives it (the same the bindings use).
        unsafe {
            Ok(Api {
                set_environment: *lib.get(b"retro_set_environment")?,
                set_video_refresh: *lib.get(b"retro_set_video_refresh")?,
                set_audio_sample: *lib.get(b"retro_set_audio_sample")?,
                set_audio_sample_batch: *lib.get(b"retro_set_audio_sample_batch")?,
                set_input_poll: *lib.get(b"retro_set_input_poll")?,
                set_input_state: *lib.get(b"retro_set_input_state")?,
                init: *lib.get(b"retro_init")?,
                deinit: *lib.get(b"retro_deinit")?,
                load_game: *lib.get(b"retro_load_game")?,
                unload_game: *lib.get(b"retro_unload_game")?,
                run: *lib.get(b"retro_run")?,
                reset: *lib.get(b"retro_reset")?,
                serialize_size: *lib.get(b"retro_serialize_size")?,
                serialize: *lib.get(b"retro_serialize")?,
                unserialize: *lib.get(b"retro_unserialize")?,
                get_memory_data: *lib.get(b"retro_get_memory_data")?,
                get_memory_size: *lib.get(b"retro_get_memory_size")?,
                set_skip_render: *lib.get(b"masp_retro_set_skip_render")?,
                set_fast_audio: *lib.get(b"masp_retro_set_fast_audio")?,
            })
        }
    }
}

unsafe extern "C" fn environment(cmd: c_uint, data: *mut c_void) -> bool {
    match cmd {
        sys::RETRO_ENVIRONMENT_SET_PIXEL_FORMAT => {
            // SAFETY: libretro passes a `retro_pixel_format *` for this command.
            let format = unsafe { *(data as *const sys::retro_pixel_format) };
            with_frontend(|f| f.pixel_format = format).is_some()
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
            // The CString lives in the core's frontend, as long as the core.
            let Some(dir) = with_frontend(|f| f.system_dir.as_ref().map(|d| d.as_ptr())).flatten() else {
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
    with_frontend(|f| {
        // NULL means "the same frame again" (a duped frame): keep the last one.
        if !data.is_null() {
            f.frame = data as *const u8;
        }
        if pitch != 0 {
            f.pitch = pitch;
        }
        f.width = width as usize;
        f.height = height as usize;
    });
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
    with_frontend(|f| i16::from((f.buttons >> id) & 1 == 1)).unwrap_or(0)
}

/// One Genesis Plus GX instance with a loaded ROM. Dropping it unloads the game and
/// deinitialises the core (and, for an isolated one, unloads its copy of the library).
pub struct Core {
    api: Api,
    frontend: Box<Frontend>,
    ram: *mut u8,
    ram_len: usize,
    /// How far `init` got, so that Drop undoes exactly that.
    initialised: bool,
    game_loaded: bool,
    /// `None`: the linked core (holds `LIVE`); `Some`: this core's private copy.
    library: Option<libloading::Library>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("isolated", &self.library.is_some())
            .field("ram_len", &self.ram_len)
            .finish()
    }
}

// SAFETY: the core's globals belong to this one value (the linked copy through LIVE, a
// loaded copy by construction), so moving it to another thread moves all access with it;
// the callbacks find the frontend through the calling thread's CURRENT.
unsafe impl Send for Core {}

/// Numbers the private copies of the library, so their file names never collide.
static COPIES: AtomicUsize = AtomicUsize::new(0);

impl Core {
    /// Loads a ROM file (its extension, `.md`, tells the core the system) into the linked
    /// core. Fails with [`Error::CoreInUse`] while another such `Core` is live in the process;
    /// [`Core::load_isolated`] has no such limit.
    pub fn load(rom: &Path) -> Result<Core> {
        if LIVE.swap(true, Ordering::AcqRel) {
            return Err(Error::CoreInUse);
        }
        // From here on, Drop of the half-built core releases LIVE and deinitialises.
        let mut core = Core::new(Api::linked(), None);
        core.init(rom)?;
        Ok(core)
    }

    /// Loads a ROM into a private copy of the core's shared library, with globals of its own:
    /// any number of isolated cores (and one [`Core::load`]) run side by side.
    pub fn load_isolated(rom: &Path) -> Result<Core> {
        // dlopen returns the same handle for a file it has open, so each copy is its own file;
        // it is deleted once loaded (the mapping stays).
        let n = COPIES.fetch_add(1, Ordering::Relaxed);
        let copy = std::env::temp_dir().join(format!("masp-retro-core-{}-{n}.so", std::process::id()));
        std::fs::copy(sys::SHARED_LIBRARY, &copy).map_err(io(&copy))?;
        // SAFETY: the library is the core built with this crate; loading runs no constructor
        // with side effects outside its own globals.
        let lib = unsafe { libloading::Library::new(&copy) };
        let _ = std::fs::remove_file(&copy);
        let failed = |e: libloading::Error| Error::Core { op: "dlopen", message: e.to_string() };
        let lib = lib.map_err(failed)?;
        let api = Api::loaded(&lib).map_err(failed)?;
        let mut core = Core::new(api, Some(lib));
        core.init(rom)?;
        Ok(core)
    }

    fn new(api: Api, library: Option<libloading::Library>) -> Core {
        let frontend = Box::new(Frontend {
            buttons: 0,
            // libretro's default until the core says otherwise.
            pixel_format: sys::retro_pixel_format_RETRO_PIXEL_FORMAT_0RGB1555,
            frame: std::ptr::null(),
            width: 0,
            height: 0,
            pitch: 0,
            system_dir: None,
        });
        Core {
            api,
            frontend,
            ram: std::ptr::null_mut(),
            ram_len: 0,
            initialised: false,
            game_loaded: false,
            library,
        }
    }

    /// Calls into this core with `CURRENT` pointing at its frontend, restored afterwards (a
    /// call may happen while another core's is on the stack only across threads, but the
    /// restore keeps nesting correct anyway).
    fn call<R>(&mut self, f: impl FnOnce(&Api) -> R) -> R {
        let previous = CURRENT.with(|c| c.replace(&mut *self.frontend));
        let result = f(&self.api);
        CURRENT.with(|c| c.set(previous));
        result
    }

    fn init(&mut self, rom: &Path) -> Result<()> {
        let data = std::fs::read(rom).map_err(io(rom))?;
        let path_c = CString::new(rom.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Core { op: "retro_load_game", message: "ROM path contains NUL".into() })?;
        let dir = rom.parent().unwrap_or(Path::new("."));
        self.frontend.system_dir = CString::new(dir.as_os_str().as_encoded_bytes()).ok();
        let info = sys::retro_game_info {
            path: path_c.as_ptr(),
            data: data.as_ptr().cast(),
            size: data.len(),
            meta: std::ptr::null(),
        };
        let mut initialised = false;
        // SAFETY: this `Core` is its copy's only user; the callbacks are valid for the
        // program's life; `info` and what it points to outlive the call (the core copies the
        // ROM into its own cartridge buffer).
        let loaded = self.call(|api| unsafe {
            (api.set_environment)(Some(environment));
            (api.set_video_refresh)(Some(video_refresh));
            (api.set_audio_sample)(Some(audio_sample));
            (api.set_audio_sample_batch)(Some(audio_sample_batch));
            (api.set_input_poll)(Some(input_poll));
            (api.set_input_state)(Some(input_state));
            (api.init)();
            initialised = true;
            (api.load_game)(&info)
        });
        self.initialised = initialised;
        if !loaded {
            return Err(Error::Core {
                op: "retro_load_game",
                message: format!("the core rejected {} (not a Genesis ROM?)", rom.display()),
            });
        }
        self.game_loaded = true;
        // The front end discards the sound, so how finely it is resampled does not matter.
        // SAFETY: a game is loaded; the setting is this copy's own global.
        self.call(|api| unsafe { (api.set_fast_audio)() });
        // SAFETY: a game is loaded; the RAM buffer is a core global that lives until unload.
        let (ram, len) = self.call(|api| unsafe {
            (
                (api.get_memory_data)(sys::RETRO_MEMORY_SYSTEM_RAM).cast::<u8>(),
                (api.get_memory_size)(sys::RETRO_MEMORY_SYSTEM_RAM),
            )
        });
        self.ram = ram;
        self.ram_len = if ram.is_null() { 0 } else { len };
        Ok(())
    }

    /// Emulates one frame (1/60 s) with `buttons` held: bit `i` is genesis.json's
    /// `buttons[i]` (B, A, MODE, START, UP, DOWN, LEFT, RIGHT, C, Y, X, Z).
    pub fn run_frame(&mut self, buttons: u16) {
        self.frontend.buttons = buttons;
        // SAFETY: this `Core` is its copy's only user, and a game is loaded.
        self.call(|api| unsafe { (api.run)() });
    }

    /// Emulates one frame like [`Core::run_frame`] without drawing it: every chip runs and
    /// RAM changes alike, but the screen keeps the last drawn frame. For frames whose
    /// picture is never looked at; the VDP's sprite collision and overflow flags, which
    /// only drawing sets, stay clear in such a frame.
    pub fn run_frame_undrawn(&mut self, buttons: u16) {
        self.frontend.buttons = buttons;
        // SAFETY: as in `run_frame`; the switch is this copy's own global.
        self.call(|api| unsafe {
            (api.set_skip_render)(true);
            (api.run)();
            (api.set_skip_render)(false);
        });
    }

    /// Power-cycles the console (the ROM stays loaded).
    pub fn reset(&mut self) {
        // SAFETY: as in `run_frame`.
        self.call(|api| unsafe { (api.reset)() });
    }

    /// The core's whole state, as `.state` files hold it (before gzip).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.serialize_into(&mut buf)?;
        Ok(buf)
    }

    /// [`Core::serialize`] into `buf`, reusing its allocation: for states saved every step.
    pub fn serialize_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        // No callback runs while serialising, so CURRENT need not be set (and `&self` cannot).
        // SAFETY: as in `run_frame`; the buffer is as large as the core asks.
        unsafe {
            buf.resize((self.api.serialize_size)(), 0);
            if !(self.api.serialize)(buf.as_mut_ptr().cast(), buf.len()) {
                return Err(Error::Core { op: "retro_serialize", message: "the core refused".into() });
            }
        }
        Ok(())
    }

    /// Restores a state from [`Core::serialize`] (or a `.state` file, unzipped).
    pub fn unserialize(&mut self, state: &[u8]) -> Result<()> {
        // SAFETY: as in `run_frame`; the core reads at most `state.len()` bytes.
        let ok = self.call(|api| unsafe { (api.unserialize)(state.as_ptr().cast(), state.len()) });
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
        let f = &self.frontend;
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
        let format = self.frontend.pixel_format;
        let Some(table) = gray_table(format) else {
            return self.for_each_pixel(out, 1, |o, [r, g, b]| o[0] = rl_env::pixels::rgb_to_gray(r, g, b));
        };
        for (row, out_row) in self.rows(out, 1) {
            gray_row(table, row, out_row);
        }
    }

    fn for_each_pixel(&self, out: &mut [u8], channels: usize, mut put: impl FnMut(&mut [u8], [u8; 3])) {
        let format = self.frontend.pixel_format;
        for (row, out_row) in self.rows(out, channels) {
            for (px, o) in row.chunks_exact(bytes_per_pixel(format)).zip(out_row.chunks_exact_mut(channels)) {
                put(o, decode(format, px));
            }
        }
    }

    /// The last frame's rows, each paired with its row of `out` (`channels` bytes a pixel).
    /// Panics if `out` is not `width * height * channels` long.
    fn rows<'a>(
        &'a self,
        out: &'a mut [u8],
        channels: usize,
    ) -> impl Iterator<Item = (&'a [u8], &'a mut [u8])> + 'a {
        let f = &self.frontend;
        let (w, h) = self.screen_size();
        assert_eq!(out.len(), w * h * channels, "screen buffer must be {w}x{h}x{channels}");
        let row_len = w * bytes_per_pixel(f.pixel_format);
        // `max(1)`: an empty screen has no rows, and chunks of 0 bytes would panic.
        out.chunks_exact_mut((w * channels).max(1)).enumerate().map(move |(y, out_row)| {
            // SAFETY: the core's frame buffer holds `height` rows of `pitch` bytes, valid until
            // the next `retro_run`, which needs `&mut self` (this borrows `self`).
            let row = unsafe { std::slice::from_raw_parts(f.frame.add(y * f.pitch), row_len) };
            (row, out_row)
        })
    }
}

/// Indexed by a 16-bit pixel: its size spares the look-ups their bounds checks.
type GrayTable = [u8; 1 << 16];

/// One row of 16-bit pixels to gray through `table`. Four pixels are read as one `u64`: a
/// quarter of the loads, which is most of the work of a look-up.
fn gray_row(table: &GrayTable, row: &[u8], out: &mut [u8]) {
    // Where pixel `i` of the four sits in the `u64`.
    let shift = |i: u32| if cfg!(target_endian = "little") { 16 * i } else { 48 - 16 * i };
    let quads = row.chunks_exact(8);
    let rest = quads.remainder();
    let mut out_quads = out.chunks_exact_mut(4);
    for (px, o) in quads.zip(&mut out_quads) {
        let four = u64::from_ne_bytes(px.try_into().expect("chunks of 8 bytes"));
        let gray = |i| table[usize::from((four >> shift(i)) as u16)];
        o.copy_from_slice(&[gray(0), gray(1), gray(2), gray(3)]);
    }
    for (px, o) in rest.chunks_exact(2).zip(out_quads.into_remainder()) {
        *o = table[usize::from(u16::from_ne_bytes([px[0], px[1]]))];
    }
}

fn bytes_per_pixel(format: sys::retro_pixel_format) -> usize {
    match format {
        sys::retro_pixel_format_RETRO_PIXEL_FORMAT_XRGB8888 => 4,
        _ => 2,
    }
}

/// The gray level of every 16-bit pixel value of `format` (`None` for 32-bit formats), built
/// once per process: two screens are converted every step, and a look-up per pixel is
/// several times cheaper than decoding and weighing it.
fn gray_table(format: sys::retro_pixel_format) -> Option<&'static GrayTable> {
    static RGB565: OnceLock<Box<GrayTable>> = OnceLock::new();
    static RGB1555: OnceLock<Box<GrayTable>> = OnceLock::new();
    let table = match format {
        sys::retro_pixel_format_RETRO_PIXEL_FORMAT_RGB565 => &RGB565,
        sys::retro_pixel_format_RETRO_PIXEL_FORMAT_0RGB1555 => &RGB1555,
        _ => return None,
    };
    let build = || {
        let mut gray = Box::new([0; 1 << 16]);
        for (v, y) in (0..=u16::MAX).zip(gray.iter_mut()) {
            let [r, g, b] = decode(format, &v.to_ne_bytes());
            *y = rl_env::pixels::rgb_to_gray(r, g, b);
        }
        gray
    };
    Some(table.get_or_init(build))
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
        let (loaded, initialised) = (self.game_loaded, self.initialised);
        // SAFETY: this core's copy has no other user; unload before deinit, as libretro
        // orders them; the library (if loaded) is dropped after, with the struct.
        self.call(|api| unsafe {
            if loaded {
                (api.unload_game)();
            }
            if initialised {
                (api.deinit)();
            }
        });
        if self.library.is_none() {
            LIVE.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_rows_equal_decoding_and_weighing_each_pixel() {
        for format in [
            sys::retro_pixel_format_RETRO_PIXEL_FORMAT_RGB565,
            sys::retro_pixel_format_RETRO_PIXEL_FORMAT_0RGB1555,
        ] {
            let table = gray_table(format).expect("a 16-bit format");
            let pixels: Vec<u16> = (0..=u16::MAX).collect();
            // Rows of 7 pixels: one `u64` of four and a remainder of three.
            for row in pixels.chunks(7) {
                let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_ne_bytes()).collect();
                let mut out = vec![0; row.len()];
                gray_row(table, &bytes, &mut out);
                for (&v, &got) in row.iter().zip(&out) {
                    let [r, g, b] = decode(format, &v.to_ne_bytes());
                    assert_eq!(got, rl_env::pixels::rgb_to_gray(r, g, b), "pixel {v:#06x}");
                }
            }
        }
    }

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
