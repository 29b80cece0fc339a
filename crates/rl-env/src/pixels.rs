//! Pure frame preprocessing shared by the emulator backends (Atari, Gym Retro): max-pool of
//! two grayscale screens, grayscale from RGB, the area downscale of
//! `cv2.resize(..., interpolation=cv2.INTER_AREA)`, and the frame stack.
//!
//! Shapes: screens are `u8` grayscale `(height, width)` row-major (ALE's NTSC screen is
//! `(210, 160)`, the Genesis's `(224, 320)`); frames are `(size, size)`, 84x84 by default; the
//! stack is `(k, size, size)`, oldest frame first.
//!
//! For Atari, grayscale comes from ALE itself (`getScreenGrayscale`, the palette's
//! luminance); other backends convert their RGB screens with [`rgb_to_gray`]. Note the order,
//! the same as gymnasium's and Dopamine's `AtariPreprocessing`: max-pool of two *grayscale*
//! screens, not grayscale of the max of two RGB screens as in the Nature DQN code. The two
//! differ only where colours of equal luminance flicker.
//!
//! ```ignore
//! let mut resize = AreaResize::new(210, 160, 84, 84);
//! let mut stack = FrameStack::new(4, 84 * 84);
//! max_pool(&screen_a, &screen_b, &mut pooled);
//! resize.resize(&pooled, stack.push_slot());
//! let obs: &[u8] = stack.as_slice(); // (4, 84, 84), oldest first
//! ```

/// `out[i] = max(a[i], b[i])`: removes the flicker of sprites that the Atari draws only on
/// every other frame. Panics if the lengths differ.
pub fn max_pool(a: &[u8], b: &[u8], out: &mut [u8]) {
    assert!(a.len() == b.len() && a.len() == out.len(), "max_pool needs three slices of one length");
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x.max(y);
    }
}

/// OpenCV's `cvtColor(COLOR_RGB2GRAY)` for 8-bit pixels, bit for bit: the BT.601 luma
/// weights in 14-bit fixed point (`R2Y = 4899`, `G2Y = 9617`, `B2Y = 1868`), rounded half up.
#[inline]
pub fn rgb_to_gray(r: u8, g: u8, b: u8) -> u8 {
    const SHIFT: u32 = 14;
    let y = 4899 * u32::from(r) + 9617 * u32::from(g) + 1868 * u32::from(b);
    ((y + (1 << (SHIFT - 1))) >> SHIFT) as u8
}

/// One row of the vertical table: source row `sy` adds `beta` times its horizontal sums to
/// output row `dy`.
#[derive(Clone, Copy, Debug)]
struct RowTap {
    dy: usize,
    sy: usize,
    beta: f32,
}

/// One (source index, weight) entry of OpenCV's `DecimateAlpha` table for one axis.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tap {
    dst: usize,
    src: usize,
    alpha: f32,
}

/// OpenCV's `computeResizeAreaTab`, entry for entry: for each output cell `[d*scale,
/// (d+1)*scale)`, the source pixels it overlaps and the overlap over the cell width, in f64
/// then rounded to f32 as OpenCV stores them. The 1e-3 thresholds, which drop slivers, are
/// OpenCV's; they decide which taps exist, so they are part of the bit-exact result.
fn area_taps(src_size: usize, dst_size: usize, scale: f64) -> Vec<Tap> {
    let mut taps = Vec::with_capacity(src_size * 2);
    for d in 0..dst_size {
        let fs1 = d as f64 * scale;
        let fs2 = fs1 + scale;
        let cell_width = scale.min(src_size as f64 - fs1);
        let mut s2 = fs2.floor() as usize;
        s2 = s2.min(src_size - 1);
        let s1 = (fs1.ceil() as usize).min(s2);
        if s1 as f64 - fs1 > 1e-3 {
            taps.push(Tap { dst: d, src: s1 - 1, alpha: ((s1 as f64 - fs1) / cell_width) as f32 });
        }
        for s in s1..s2 {
            taps.push(Tap { dst: d, src: s, alpha: (1.0 / cell_width) as f32 });
        }
        if fs2 - s2 as f64 > 1e-3 {
            let part = (fs2 - s2 as f64).min(1.0).min(cell_width);
            taps.push(Tap { dst: d, src: s2, alpha: (part / cell_width) as f32 });
        }
    }
    taps
}

/// Rounds a non-negative f32 to the nearest integer, ties to even, and saturates to `u8`:
/// OpenCV's `saturate_cast<uchar>(float)` (`cvRound` is `cvtss2si` in the default rounding
/// mode). Adding 2^23 pushes the fraction out of the mantissa with the FPU's own
/// round-to-nearest-even, which, unlike `f32::round_ties_even`, needs no libm call on
/// baseline x86-64 and vectorises.
#[inline]
fn round_to_u8(v: f32) -> u8 {
    const MAGIC: f32 = 8_388_608.0; // 2^23
    debug_assert!((0.0..MAGIC).contains(&v));
    let rounded = (v + MAGIC).to_bits() - MAGIC.to_bits();
    rounded.min(255) as u8
}

/// Area-averaging downscale, bit-identical to OpenCV's `resize(INTER_AREA)` on 8-bit
/// single-channel images whose scale is not an integer on both axes (OpenCV switches to
/// an integer-sum path then; for 210x160 that happens only for 1, 2, 5 and 10 pixel sides).
///
/// OpenCV's algorithm (`ResizeArea_Invoker<uchar, float>`): weights from
/// `computeResizeAreaTab` per axis; for each source row, horizontal sums
/// `buf[dx] += S[sx] * alpha` in table order in f32; each output row is
/// `sum = beta_0 * buf_0 (+= beta_j * buf_j ...)` in f32, then rounded. Every f32 operation
/// here happens in the same order, without fused multiply-adds, so the bits agree.
/// The tables are built once in `new`; `resize` does not allocate.
///
/// Consecutive Atari frames share most rows (backgrounds, score bars), so `resize` keeps the
/// last input and each source row's horizontal sums, recomputes only the rows that changed,
/// and copies the output rows none of whose source rows changed. Same inputs give the same
/// f32 operations, so this changes no bit of the result.
#[derive(Clone, Debug)]
pub struct AreaResize {
    src_h: usize,
    src_w: usize,
    dst_h: usize,
    dst_w: usize,
    horizontal: Horizontal,
    rows: Vec<RowTap>,
    /// `rows[row_range[dy]..row_range[dy + 1]]` are output row `dy`'s taps.
    row_range: Vec<usize>,
    /// `(src_h, dst_w)`: each source row's horizontal sums, in lane order.
    hsum: Vec<f32>,
    /// The output row being accumulated, in lane order.
    acc: Vec<f32>,
    /// The last call's input `(src_h, src_w)` and output `(dst_h, dst_w)`, valid once
    /// `primed`.
    prev_src: Vec<u8>,
    prev_dst: Vec<u8>,
    primed: bool,
    /// Which source rows differ from `prev_src` in this call.
    changed: Vec<bool>,
}

/// The horizontal pass arranged for SIMD. A row's output cells are split into `lanes`
/// groups of `phases` consecutive cells, and the source row into `lanes` segments of `seg`
/// pixels; when the scale repeats (160 -> 84 is 40 pixels -> 21 cells, four times over),
/// cell `p + phases * k` reads pixels `seg * k + start[p] ..+ taps` for every lane `k`.
/// Transposing the row into `(x, lane)` order then makes each phase's taps a few `[f32; 4]`
/// multiply-adds, with a weight per lane (the weights of repeated cells differ in the last
/// bits). Sizes that do not repeat use one lane, which is the plain per-cell loop.
///
/// OpenCV's taps of one cell are consecutive pixels. A phase's window covers every lane's
/// taps; the window positions that are not a tap of that lane's cell get weight 0, which adds
/// an exact +0.0 to a non-negative f32 sum (before or after the real taps, never between
/// them), so each cell's sum keeps OpenCV's bits.
#[derive(Clone, Debug)]
struct Horizontal {
    lanes: usize,
    seg: usize,
    taps: usize,
    /// Window start per phase, in segment coordinates.
    start: Vec<usize>,
    /// `(phases, taps, lanes)`.
    weights: Vec<f32>,
    /// The transposed row, `(window_len, lanes)`: `row_t[x][k] = row[seg * k + x]`, 0 past
    /// the row's end.
    row_t: Vec<f32>,
    window_len: usize,
}

impl Horizontal {
    fn new(taps: &[Tap], src_w: usize, dst_w: usize) -> Self {
        // Four lanes fill an SSE/NEON register of f32.
        Self::with_lanes(taps, src_w, dst_w, 4)
            .unwrap_or_else(|| Self::with_lanes(taps, src_w, dst_w, 1).expect("one lane always fits"))
    }

    fn with_lanes(taps: &[Tap], src_w: usize, dst_w: usize, lanes: usize) -> Option<Self> {
        if dst_w % lanes != 0 || src_w % lanes != 0 {
            return None;
        }
        let (phases, seg) = (dst_w / lanes, src_w / lanes);
        let local = |t: &Tap| -> Option<usize> { t.src.checked_sub(seg * (t.dst / phases)) };
        let mut start = vec![usize::MAX; phases];
        let mut end = vec![0usize; phases];
        for t in taps {
            let x = local(t)?;
            let p = t.dst % phases;
            start[p] = start[p].min(x);
            end[p] = end[p].max(x + 1);
        }
        let width = (0..phases).map(|p| end[p] - start[p]).max()?;
        // Wider windows than the cells need would mean the scale does not repeat; the
        // one-lane layout is then cheaper. Five taps: Genesis's 320-pixel rows to 84.
        if lanes > 1 && width > 5 {
            return None;
        }
        let mut weights = vec![0f32; phases * width * lanes];
        for t in taps {
            let (p, k) = (t.dst % phases, t.dst / phases);
            let x = local(t)? - start[p];
            weights[(p * width + x) * lanes + k] = t.alpha;
        }
        // Each phase reads its whole window; the 4-lane loop transposes every segment whole.
        let window_len = (0..phases).map(|p| start[p] + width).max()?.max(seg);
        Some(Self {
            lanes,
            seg,
            taps: width,
            start,
            weights,
            row_t: vec![0.0; window_len * lanes],
            window_len,
        })
    }

    /// One source row's horizontal sums into `out`, in lane order `(phases, lanes)`.
    fn run(&mut self, row: &[u8], out: &mut [f32]) {
        // Constant shapes let the compiler keep a phase's taps in registers.
        match (self.lanes, self.taps) {
            (4, 2) => self.run_fixed::<2>(row, out),
            (4, 3) => self.run_fixed::<3>(row, out),
            (4, 4) => self.run_fixed::<4>(row, out),
            (4, 5) => self.run_fixed::<5>(row, out),
            _ => self.run_one_lane(row, out),
        }
    }

    #[inline]
    fn run_fixed<const T: usize>(&mut self, row: &[u8], out: &mut [f32]) {
        const L: usize = 4;
        debug_assert_eq!((self.lanes, self.taps), (L, T));
        let seg = self.seg;
        // Transpose the row into (x, lane) order. Zipping the four segments (rather than
        // indexing) lets the compiler see four contiguous streams and vectorise.
        let (s0, rest) = row.split_at(seg);
        let (s1, rest) = rest.split_at(seg);
        let (s2, s3) = rest.split_at(seg);
        let (main, tail) = self.row_t.split_at_mut(seg * L);
        for ((((o, &a), &b), &c), &d) in main.chunks_exact_mut(L).zip(s0).zip(s1).zip(s2).zip(s3) {
            o.copy_from_slice(&[f32::from(a), f32::from(b), f32::from(c), f32::from(d)]);
        }
        // Windows that run past a segment's end read the next segment's first pixels (with
        // weight 0 in the lanes they do not belong to); past the row's end they read the 0.0
        // that `row_t` was built with.
        for (x, o) in tail.chunks_exact_mut(L).enumerate() {
            for (k, v) in o.iter_mut().enumerate() {
                *v = row.get(seg * (k + 1) + x).map_or(0.0, |&p| f32::from(p));
            }
        }
        for ((o, &s), w) in out.chunks_exact_mut(L).zip(&self.start).zip(self.weights.chunks_exact(T * L)) {
            // A constant length, so that the indexing below needs no bounds checks.
            let px = &self.row_t[s * L..][..T * L];
            let mut acc = [0f32; L];
            for k in 0..L {
                acc[k] = px[k] * w[k];
            }
            for t in 1..T {
                for k in 0..L {
                    acc[k] += px[t * L + k] * w[t * L + k];
                }
            }
            o.copy_from_slice(&acc);
        }
    }

    /// Any shape: one lane is the plain per-cell loop over `row_t` = the row as f32.
    fn run_one_lane(&mut self, row: &[u8], out: &mut [f32]) {
        let (lanes, taps, seg) = (self.lanes, self.taps, self.seg);
        for k in 0..lanes {
            let part = &row[seg * k..row.len().min(seg * k + self.window_len)];
            for (x, &p) in part.iter().enumerate() {
                self.row_t[x * lanes + k] = p as f32;
            }
        }
        for ((o, &s), w) in
            out.chunks_exact_mut(lanes).zip(&self.start).zip(self.weights.chunks_exact(taps * lanes))
        {
            for (k, o) in o.iter_mut().enumerate() {
                let mut acc = 0.0f32;
                for t in 0..taps {
                    acc += self.row_t[(s + t) * lanes + k] * w[t * lanes + k];
                }
                *o = acc;
            }
        }
    }
}

impl AreaResize {
    /// Panics unless `1 <= dst <= src` on both axes: INTER_AREA only averages when it
    /// shrinks (OpenCV falls back to bilinear when enlarging).
    pub fn new(src_h: usize, src_w: usize, dst_h: usize, dst_w: usize) -> Self {
        assert!(
            (1..=src_h).contains(&dst_h) && (1..=src_w).contains(&dst_w),
            "AreaResize shrinks only: {src_h}x{src_w} -> {dst_h}x{dst_w}"
        );
        // cv::resize computes inv_scale = dsize/ssize and then scale = 1/inv_scale; the
        // double rounding of that route decides the last bits of every weight.
        let scale_x = 1.0 / (dst_w as f64 / src_w as f64);
        let scale_y = 1.0 / (dst_h as f64 / src_h as f64);
        let horizontal = Horizontal::new(&area_taps(src_w, dst_w, scale_x), src_w, dst_w);
        let rows: Vec<RowTap> = area_taps(src_h, dst_h, scale_y)
            .into_iter()
            .map(|t| RowTap { dy: t.dst, sy: t.src, beta: t.alpha })
            .collect();
        // The table is sorted by output row, and every output row has at least one tap.
        let mut row_range = vec![0; dst_h + 1];
        for (i, t) in rows.iter().enumerate() {
            row_range[t.dy + 1] = i + 1;
        }
        Self {
            src_h,
            src_w,
            dst_h,
            dst_w,
            horizontal,
            rows,
            row_range,
            hsum: vec![0.0; src_h * dst_w],
            acc: vec![0.0; dst_w],
            prev_src: vec![0; src_h * src_w],
            prev_dst: vec![0; dst_h * dst_w],
            primed: false,
            changed: vec![true; src_h],
        }
    }

    /// Downscales `src` `(src_h, src_w)` into `dst` `(dst_h, dst_w)`. Panics on wrong lengths.
    pub fn resize(&mut self, src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), self.src_h * self.src_w, "resize source has the wrong size");
        assert_eq!(dst.len(), self.dst_h * self.dst_w, "resize destination has the wrong size");
        let (src_w, dst_w, primed) = (self.src_w, self.dst_w, self.primed);

        let rows_in = src.chunks_exact(src_w).zip(self.prev_src.chunks_exact_mut(src_w));
        for (((row, prev), hsum), changed) in
            rows_in.zip(self.hsum.chunks_exact_mut(dst_w)).zip(&mut self.changed)
        {
            *changed = !primed || row != prev;
            if *changed {
                prev.copy_from_slice(row);
                self.horizontal.run(row, hsum);
            }
        }

        let rows_out = dst.chunks_exact_mut(dst_w).zip(self.prev_dst.chunks_exact_mut(dst_w));
        for (dy, (out, prev)) in rows_out.enumerate() {
            let taps = &self.rows[self.row_range[dy]..self.row_range[dy + 1]];
            if primed && taps.iter().all(|t| !self.changed[t.sy]) {
                out.copy_from_slice(prev);
                continue;
            }
            let h = |t: &RowTap| &self.hsum[t.sy * dst_w..(t.sy + 1) * dst_w];
            for (a, &v) in self.acc.iter_mut().zip(h(&taps[0])) {
                *a = taps[0].beta * v;
            }
            for t in &taps[1..] {
                for (a, &v) in self.acc.iter_mut().zip(h(t)) {
                    *a += t.beta * v;
                }
            }
            store_row(&self.acc, self.horizontal.lanes, out);
            prev.copy_from_slice(out);
        }
        self.primed = true;
    }
}

/// Rounds the lane-order sums `(phases, lanes)` into their output columns
/// `p + phases * k`. Zipping the lanes' output slices keeps the rounding vectorised.
fn store_row(acc: &[f32], lanes: usize, out: &mut [u8]) {
    if lanes == 4 {
        let phases = out.len() / 4;
        let (o0, rest) = out.split_at_mut(phases);
        let (o1, rest) = rest.split_at_mut(phases);
        let (o2, o3) = rest.split_at_mut(phases);
        for ((((q, a), b), c), d) in acc.chunks_exact(4).zip(o0).zip(o1).zip(o2).zip(o3) {
            let r = [round_to_u8(q[0]), round_to_u8(q[1]), round_to_u8(q[2]), round_to_u8(q[3])];
            (*a, *b, *c, *d) = (r[0], r[1], r[2], r[3]);
        }
    } else {
        debug_assert_eq!(lanes, 1);
        for (o, &v) in out.iter_mut().zip(acc) {
            *o = round_to_u8(v);
        }
    }
}

/// The last `k` frames as one contiguous `(k, frame_len)` buffer, oldest first: the layout an
/// observation is handed out in.
///
/// Pushing shifts the older frames down one slot and hands out the newest slot to write
/// into. A ring buffer would avoid that shift but would then need an ordered copy to hand
/// out a contiguous borrowed observation, which moves the same bytes (`(k-1) * frame_len`,
/// 21 KiB for 4x84x84) through a second buffer; the shift needs neither.
#[derive(Clone, Debug)]
pub struct FrameStack {
    frame_len: usize,
    data: Vec<u8>,
}

impl FrameStack {
    /// A stack of `k >= 1` zero frames of `frame_len` bytes each.
    pub fn new(k: usize, frame_len: usize) -> Self {
        assert!(k >= 1 && frame_len >= 1, "a frame stack needs at least one non-empty frame");
        Self { frame_len, data: vec![0; k * frame_len] }
    }

    /// Drops the oldest frame and returns the (stale) newest slot for the caller to fill.
    pub fn push_slot(&mut self) -> &mut [u8] {
        let n = self.data.len();
        self.data.copy_within(self.frame_len.., 0);
        &mut self.data[n - self.frame_len..]
    }

    /// Sets every slot to a copy of the newest frame: the stack after a reset.
    pub fn fill_with_newest(&mut self) {
        let n = self.data.len();
        let (older, newest) = self.data.split_at_mut(n - self.frame_len);
        for slot in older.chunks_exact_mut(self.frame_len) {
            slot.copy_from_slice(newest);
        }
    }

    /// The newest slot, writable, without shifting (for a reset that fills it first).
    pub fn newest_mut(&mut self) -> &mut [u8] {
        let n = self.data.len();
        &mut self.data[n - self.frame_len..]
    }

    pub fn newest(&self) -> &[u8] {
        &self.data[self.data.len() - self.frame_len..]
    }

    /// `(k, frame_len)`, oldest first.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ALE's NTSC screen, the shape the Atari backend resizes.
    const SCREEN_HEIGHT: usize = 210;
    const SCREEN_WIDTH: usize = 160;

    /// The exact area average, independent of OpenCV's tables: each output pixel is the mean
    /// of the source over the rectangle `[dx*W/w, (dx+1)*W/w) x [dy*H/h, (dy+1)*H/h)`, each
    /// source pixel weighted by its overlap with it, in f64 with exact rational bounds.
    fn brute_force(src: &[u8], sh: usize, sw: usize, dh: usize, dw: usize) -> Vec<f64> {
        let overlap = |a0: f64, a1: f64, b0: f64, b1: f64| (a1.min(b1) - a0.max(b0)).max(0.0);
        let mut out = vec![0.0; dh * dw];
        for dy in 0..dh {
            let (y0, y1) = ((dy * sh) as f64 / dh as f64, ((dy + 1) * sh) as f64 / dh as f64);
            for dx in 0..dw {
                let (x0, x1) = ((dx * sw) as f64 / dw as f64, ((dx + 1) * sw) as f64 / dw as f64);
                let mut total = 0.0;
                for sy in 0..sh {
                    let wy = overlap(y0, y1, sy as f64, sy as f64 + 1.0);
                    if wy == 0.0 {
                        continue;
                    }
                    for sx in 0..sw {
                        let wx = overlap(x0, x1, sx as f64, sx as f64 + 1.0);
                        total += wy * wx * src[sy * sw + sx] as f64;
                    }
                }
                out[dy * dw + dx] = total / ((y1 - y0) * (x1 - x0));
            }
        }
        out
    }

    /// Our u8 must be the rounded exact average; where that average sits within 1e-3 of a
    /// half (OpenCV's f32 sums and its dropped slivers can tip it), either neighbour passes.
    fn assert_matches_brute_force(src: &[u8], sh: usize, sw: usize, dh: usize, dw: usize) {
        let mut got = vec![0u8; dh * dw];
        AreaResize::new(sh, sw, dh, dw).resize(src, &mut got);
        let want = brute_force(src, sh, sw, dh, dw);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let near_half = (w - w.floor() - 0.5).abs() < 1e-3;
            let ok =
                if near_half { g as f64 == w.floor() || g as f64 == w.ceil() } else { g as f64 == w.round() };
            assert!(
                ok,
                "{sh}x{sw}->{dh}x{dw}: pixel {i} (y {}, x {}) is {g}, exact average {w}",
                i / dw,
                i % dw
            );
        }
    }

    /// A fixed pseudo-random screen: 64-bit LCG (Knuth's MMIX constants), top byte.
    fn lcg_screen(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect()
    }

    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
    }

    #[test]
    fn gray_uses_opencvs_fixed_point_luma() {
        // The weights sum to 2^14, so grays stay grays and white stays 255.
        for v in [0u8, 1, 127, 128, 254, 255] {
            assert_eq!(rgb_to_gray(v, v, v), v);
        }
        // Pure primaries: round(255 * w / 2^14) for each weight (76.2, 149.7, 29.07).
        assert_eq!([rgb_to_gray(255, 0, 0), rgb_to_gray(0, 255, 0), rgb_to_gray(0, 0, 255)], [76, 150, 29]);
    }

    #[test]
    fn max_pool_takes_the_brighter_pixel() {
        let mut out = [0u8; 4];
        max_pool(&[0, 200, 7, 255], &[3, 100, 7, 0], &mut out);
        assert_eq!(out, [3, 200, 7, 255]);
    }

    #[test]
    fn constant_screens_stay_constant() {
        let mut resize = AreaResize::new(SCREEN_HEIGHT, SCREEN_WIDTH, 84, 84);
        let mut out = vec![0u8; 84 * 84];
        for c in [0u8, 1, 87, 128, 254, 255] {
            resize.resize(&vec![c; SCREEN_HEIGHT * SCREEN_WIDTH], &mut out);
            assert!(out.iter().all(|&v| v == c), "constant {c} came out as {:?}", &out[..8]);
        }
    }

    #[test]
    fn single_bright_pixel_spreads_by_overlap() {
        // Pixel (y 2, x 1) of a 5x4 screen into 2x2 cells of 2.5x2 pixels: it lies wholly
        // in output column 0 and half in output rows 0 and 1: 255 * 0.5 / 5 = 25.5 each,
        // which the brute force settles, and which rounds to even (26) in f32 too.
        let mut src = vec![0u8; 5 * 4];
        src[2 * 4 + 1] = 255;
        assert_matches_brute_force(&src, 5, 4, 2, 2);
        let mut out = [0u8; 4];
        AreaResize::new(5, 4, 2, 2).resize(&src, &mut out);
        assert_eq!(out, [26, 0, 26, 0]);

        for (y, x) in [(0, 0), (105, 80), (209, 159), (2, 1), (17, 121)] {
            let mut screen = vec![0u8; SCREEN_HEIGHT * SCREEN_WIDTH];
            screen[y * SCREEN_WIDTH + x] = 255;
            assert_matches_brute_force(&screen, SCREEN_HEIGHT, SCREEN_WIDTH, 84, 84);
        }
    }

    #[test]
    fn ramps_checkerboards_and_noise_match_the_exact_area_average() {
        let (h, w) = (SCREEN_HEIGHT, SCREEN_WIDTH);
        let ramp_x: Vec<u8> = (0..h * w).map(|i| ((i % w) * 255 / (w - 1)) as u8).collect();
        let ramp_y: Vec<u8> = (0..h * w).map(|i| ((i / w) * 255 / (h - 1)) as u8).collect();
        let checker: Vec<u8> = (0..h * w).map(|i| if (i / w + i % w) % 2 == 0 { 255 } else { 0 }).collect();
        let stripes: Vec<u8> = (0..h * w).map(|i| if (i % w) % 3 == 0 { 200 } else { 10 }).collect();
        for img in [&ramp_x, &ramp_y, &checker, &stripes, &lcg_screen(h * w, 1)] {
            assert_matches_brute_force(img, h, w, 84, 84);
        }
        // Other shapes: integer scale on one axis only, no shrink on one axis, five taps a
        // cell (42 columns), and four lanes over two-pixel segments (8 -> 4, 8 -> 8).
        for (sh, sw, dh, dw) in [
            (7, 5, 3, 2),
            (10, 10, 3, 7),
            (9, 8, 3, 4),
            (8, 8, 4, 8),
            (210, 160, 42, 80),
            (210, 160, 84, 160),
            (210, 160, 84, 42),
            (13, 1, 4, 1),
        ] {
            assert_matches_brute_force(&lcg_screen(sh * sw, 7), sh, sw, dh, dw);
        }
    }

    #[test]
    fn every_small_shape_matches_the_exact_area_average() {
        // Covers both horizontal layouts and their edge cases (windows that run past a
        // segment or the row, one-pixel segments, cells of one tap).
        for sw in 1..=24 {
            for dw in 1..=sw {
                for (sh, dh) in [(1, 1), (5, 2), (6, 4)] {
                    assert_matches_brute_force(&lcg_screen(sh * sw, (sw * 31 + dw) as u64), sh, sw, dh, dw);
                }
            }
        }
    }

    #[test]
    fn four_lanes_give_the_one_lane_bits_at_the_genesis_and_atari_widths() {
        // Genesis rows are 320 pixels (five taps a cell at 84) or 256; Atari's are 160.
        for (src_w, taps) in [(320, 5), (256, 4), (160, 3)] {
            let table = area_taps(src_w, 84, 1.0 / (84.0 / src_w as f64));
            let mut four = Horizontal::with_lanes(&table, src_w, 84, 4).expect("these scales repeat");
            assert_eq!(four.taps, taps, "{src_w} pixels");
            let mut one = Horizontal::with_lanes(&table, src_w, 84, 1).expect("one lane always fits");
            let (mut by_lane, mut by_cell) = (vec![0f32; 84], vec![0f32; 84]);
            for seed in 0..8 {
                let row = lcg_screen(src_w, seed);
                four.run(&row, &mut by_lane);
                one.run(&row, &mut by_cell);
                // Lane order is (phases, lanes): cell d is phase d % 21 of lane d / 21.
                for (d, want) in by_cell.iter().enumerate() {
                    let got = by_lane[(d % 21) * 4 + d / 21];
                    assert_eq!(got.to_bits(), want.to_bits(), "{src_w} pixels, seed {seed}, cell {d}");
                }
            }
        }
    }

    #[test]
    fn bits_match_opencv() {
        // References: opencv-python-headless 5.0.0 and 4.10.0.84, numpy 2,
        // `cv2.resize(img, (84, 84), interpolation=cv2.INTER_AREA)` on these same images
        // built in Python (LCG top bytes; a 0/255 checkerboard, whose cells of 2.5x1.905
        // pixels make many exact halves), hashed with FNV-1a 64 over the 84x84 bytes.
        let (h, w) = (SCREEN_HEIGHT, SCREEN_WIDTH);
        let checker: Vec<u8> = (0..h * w).map(|i| if (i / w + i % w) % 2 == 0 { 255 } else { 0 }).collect();
        let cases = [
            (lcg_screen(h * w, 1), OPENCV_LCG1),
            (lcg_screen(h * w, 2), OPENCV_LCG2),
            (checker, OPENCV_CHECKER),
        ];
        let mut resize = AreaResize::new(h, w, 84, 84);
        let mut out = vec![0u8; 84 * 84];
        for (i, (img, want)) in cases.iter().enumerate() {
            resize.resize(img, &mut out);
            assert_eq!(fnv1a(&out), *want, "case {i}: first bytes {:?}", &out[..12]);
        }
    }

    const OPENCV_LCG1: u64 = 0xa0d2_13bb_cda0_6826;
    const OPENCV_LCG2: u64 = 0x4ea3_631c_ead6_7efb;
    const OPENCV_CHECKER: u64 = 0xddd6_4ce8_011c_bde5;

    #[test]
    fn opencv_tables_for_the_atari_scales() {
        // Hand-computed from the geometry: rows scale 210/84 = 2.5, so output row 0 takes
        // rows 0, 1 whole and half of row 2: weights 1/2.5, 1/2.5, 0.5/2.5.
        let rows = area_taps(210, 84, 1.0 / (84.0 / 210.0));
        assert_eq!(
            rows[..4].iter().map(|t| (t.dst, t.src)).collect::<Vec<_>>(),
            [(0, 0), (0, 1), (0, 2), (1, 2)]
        );
        assert_eq!(rows[0].alpha, 0.4f32);
        assert_eq!(rows[2].alpha, 0.2f32);
        // Columns: 160/84 = 40/21; cell 1 is [1.905, 3.810): 0.095 of pixel 1, all of 2,
        // 0.810 of pixel 3, over 1.905.
        let cols = area_taps(160, 84, 1.0 / (84.0 / 160.0));
        let cell1: Vec<_> = cols.iter().filter(|t| t.dst == 1).collect();
        assert_eq!(cell1.iter().map(|t| t.src).collect::<Vec<_>>(), [1, 2, 3]);
        let s = 40.0 / 21.0;
        for (t, want) in cell1.iter().zip([(2.0 - s) / s, 1.0 / s, (2.0 * s - 3.0) / s]) {
            assert!((t.alpha as f64 - want).abs() < 1e-6, "{t:?} vs {want}");
        }
        // Every cell's weights sum to one.
        for d in 0..84 {
            let sum: f64 = cols.iter().filter(|t| t.dst == d).map(|t| t.alpha as f64).sum();
            assert!((sum - 1.0).abs() < 1e-5, "column cell {d} sums to {sum}");
        }
    }

    #[test]
    fn rounding_is_half_to_even_and_saturates() {
        assert_eq!([0.5f32, 1.5, 2.5, 25.5, 254.5, 2.49, 2.51].map(round_to_u8), [0, 2, 2, 26, 254, 2, 3]);
        assert_eq!(round_to_u8(255.4), 255);
        assert_eq!(round_to_u8(300.0), 255);
        assert_eq!(round_to_u8(0.0), 0);
    }

    #[test]
    fn reusing_unchanged_rows_gives_the_fresh_result() {
        // A resizer that has seen other frames must give what a new one gives: change a
        // few rows, one pixel, everything, nothing, in turn.
        let (h, w) = (SCREEN_HEIGHT, SCREEN_WIDTH);
        let mut frame = lcg_screen(h * w, 3);
        let mut reused = AreaResize::new(h, w, 84, 84);
        let (mut got, mut want) = (vec![0u8; 84 * 84], vec![0u8; 84 * 84]);
        for i in 0..5 {
            match i {
                0 => frame[50 * w..53 * w].fill(255),
                1 => frame[209 * w + 159] ^= 0x80,
                2 => frame = lcg_screen(h * w, 4),
                3 => {}
                _ => frame[2 * w..3 * w].fill(0),
            }
            reused.resize(&frame, &mut got);
            AreaResize::new(h, w, 84, 84).resize(&frame, &mut want);
            assert_eq!(got, want, "after edit {i}");
        }
    }

    #[test]
    fn frame_stack_keeps_the_last_k_oldest_first() {
        let mut stack = FrameStack::new(3, 2);
        stack.newest_mut().copy_from_slice(&[9, 9]);
        stack.fill_with_newest();
        assert_eq!(stack.as_slice(), [9, 9, 9, 9, 9, 9]);
        for v in 1..=4u8 {
            stack.push_slot().copy_from_slice(&[v, v * 10]);
        }
        assert_eq!(stack.as_slice(), [2, 20, 3, 30, 4, 40]);
        assert_eq!(stack.newest(), [4, 40]);
        let before = stack.as_slice().as_ptr();
        stack.push_slot().fill(5);
        assert_eq!(stack.as_slice().as_ptr(), before, "pushing must not reallocate");
        assert_eq!(stack.as_slice(), [3, 30, 4, 40, 5, 5]);
    }
}
