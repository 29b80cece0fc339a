//! `RgbImage`: a colour picture of an environment's state, what [`crate::Env::render_rgb`]
//! returns for videos: `(height, width, 3)` interleaved RGB, row-major.
//!
//! ```
//! use rl_env::RgbImage;
//! // A 2x1 grid of 3-pixel cells: red, then blue.
//! let image = RgbImage::from_cells(2, 1, 3, |x, _| if x == 0 { [255, 0, 0] } else { [0, 0, 255] });
//! assert_eq!((image.width, image.height, image.pixels.len()), (6, 3, 6 * 3 * 3));
//! assert_eq!(image.pixel(4, 2), [0, 0, 255]);
//! ```

/// The toy environments' pictures: pixels per grid cell, and the colours of what a cell
/// holds (the agent is drawn over whatever it stands on).
pub(crate) const CELL_PIXELS: usize = 8;
pub(crate) const AGENT: [u8; 3] = [220, 50, 50];
pub(crate) const FLOOR: [u8; 3] = [200, 200, 200];
pub(crate) const WALL: [u8; 3] = [40, 40, 40];
/// The goal: the corridor's last cell, the key-door maze's door.
pub(crate) const GOAL: [u8; 3] = [40, 170, 60];
pub(crate) const KEY: [u8; 3] = [230, 190, 30];

/// An RGB picture; `pixels` holds `height * width * 3` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// A grid of `cols x rows` cells, each a `scale x scale` square of the colour that
    /// `colour(col, row)` gives: how the toy environments draw their state.
    pub fn from_cells(
        cols: usize,
        rows: usize,
        scale: usize,
        colour: impl Fn(usize, usize) -> [u8; 3],
    ) -> Self {
        let (width, height) = (cols * scale, rows * scale);
        let mut pixels = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                pixels.extend_from_slice(&colour(x / scale, y / scale));
            }
        }
        Self { width, height, pixels }
    }

    /// The colour at column `x`, row `y`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }
}
