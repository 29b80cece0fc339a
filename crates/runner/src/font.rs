//! The TrueType font that plots and heatmaps write their text with, found at run time:
//! `MASP_FONT` (a `.ttf` file), else DejaVu Sans or Liberation Sans from the usual system
//! folders (`cargo xtask setup` installs DejaVu Sans). plotters draws text only with a
//! registered font, so callers ask [`loaded`] and draw without text when it says no.

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

/// Environment variable naming the `.ttf` font for plot text.
pub const FONT_ENV: &str = "MASP_FONT";

/// Where Debian/Ubuntu, Fedora and Arch put the fonts we look for.
const SYSTEM_FONTS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];

/// Registers the font with plotters as `sans-serif` once; whether one was found.
pub fn loaded() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let from_env = std::env::var_os(FONT_ENV).map(PathBuf::from);
        from_env.into_iter().chain(SYSTEM_FONTS.iter().map(PathBuf::from)).any(|path| {
            let Ok(bytes) = std::fs::read(&path) else { return false };
            // plotters keeps fonts for the life of the process; this runs once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}
