//! What a learned `S` says (docs/method.md, section 7): its rank correlation with a distance between
//! actions (the paper reports about -0.41 against macro edit distance), the most similar
//! pairs by name, and a heatmap with the actions grouped.
//!
//! Inputs are `S` and, where needed, a distance matrix `(A, A)` row-major or the actions'
//! identities in `S`'s row order; `masp` computes no distance itself (the macro-actions
//! crate has edit distance).
//!
//! ```
//! use candle_core::{DType, Device};
//! use masp::{spearman, top_pairs, Similarity};
//! let s = Similarity::from_values(&[1.0, 0.9, 0.1, 0.9, 1.0, 0.3, 0.1, 0.3, 1.0], 3, DType::F32, &Device::Cpu)?;
//! // More similar where the distance is smaller: a perfect negative rank correlation.
//! let distance = [0.0, 1.0, 3.0, 1.0, 0.0, 2.0, 3.0, 2.0, 0.0];
//! assert_eq!(spearman(&s, &distance)?, Some(-1.0));
//! let ids = ["A", "B", "A+B"].map(String::from);
//! let top = top_pairs(&s, &ids, 1)?;
//! assert_eq!((top[0].name_a.as_str(), top[0].name_b.as_str(), top[0].similarity), ("A", "B", 0.9));
//! # Ok::<(), masp::Error>(())
//! ```

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::{
    BitMapBackend, Color, DrawingArea, DrawingBackend, FontTransform, IntoDrawingArea, IntoFont, PathElement,
    RGBColor, Rectangle, Text, BLACK, WHITE,
};
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::learned_similarity::Similarity;

/// Spearman's rank correlation between `S` and `distance`, `(A, A)` row-major, over the
/// `A (A - 1) / 2` pairs above the diagonal; ties take their average rank. `None` when it
/// is undefined (fewer than two pairs, or either side constant).
pub fn spearman(similarity: &Similarity, distance: &[f32]) -> Result<Option<f64>> {
    spearman_of(&similarity.to_vec()?, similarity.num_actions(), distance)
}

/// [`spearman`] of any `(A, A)` row-major matrix `values`.
pub(crate) fn spearman_of(values: &[f32], a: usize, distance: &[f32]) -> Result<Option<f64>> {
    if distance.len() != a * a {
        return Err(Error::Shape {
            what: "the distance matrix".into(),
            expected: format!("({a}, {a}) row-major, {} values", a * a),
            got: vec![distance.len()],
        });
    }
    let pairs = upper_pairs(a);
    let x = ranks(&pairs.iter().map(|&(i, j)| values[i * a + j] as f64).collect::<Vec<_>>());
    let y = ranks(&pairs.iter().map(|&(i, j)| distance[i * a + j] as f64).collect::<Vec<_>>());
    Ok(pearson(&x, &y))
}

/// How well `S` tells apart actions known to have the same effect (a group) from the rest:
/// over the pairs `a < b` of actions that both have a group (`S` is symmetric), the mean
/// entry within groups and between them, and the AUC, the probability
/// that a within-group entry exceeds a between-group one (ties count half; 0.5 is chance, 1
/// perfect separation), from the Mann-Whitney rank sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupSeparation {
    pub within_mean: f64,
    pub between_mean: f64,
    pub auc: f64,
    pub within_pairs: usize,
    pub between_pairs: usize,
}

/// [`GroupSeparation`] of `S` for `groups`, one per action in `S`'s order (`None`: an
/// action of no known group, left out); `None` when either kind of pair is missing.
pub fn group_separation(
    similarity: &Similarity,
    groups: &[Option<usize>],
) -> Result<Option<GroupSeparation>> {
    separation_of(&similarity.to_vec()?, similarity.num_actions(), groups)
}

/// [`group_separation`] of any symmetric `(A, A)` row-major matrix `values`.
pub(crate) fn separation_of(
    values: &[f32],
    a: usize,
    groups: &[Option<usize>],
) -> Result<Option<GroupSeparation>> {
    if groups.len() != a {
        return Err(Error::Shape {
            what: "the action groups".into(),
            expected: format!("({a},), one per action of S"),
            got: vec![groups.len()],
        });
    }
    let s = values;
    let (mut values, mut within) = (Vec::new(), Vec::new());
    for (i, j) in upper_pairs(a) {
        if let (Some(gi), Some(gj)) = (groups[i], groups[j]) {
            values.push(f64::from(s[i * a + j]));
            within.push(gi == gj);
        }
    }
    let n_within = within.iter().filter(|&&w| w).count();
    let n_between = within.len() - n_within;
    if n_within == 0 || n_between == 0 {
        return Ok(None);
    }
    let rank = ranks(&values);
    let mean_of = |kind: bool| {
        values.iter().zip(&within).filter(|(_, &w)| w == kind).map(|(v, _)| v).sum::<f64>()
            / if kind { n_within } else { n_between } as f64
    };
    let rank_sum: f64 = rank.iter().zip(&within).filter(|(_, &w)| w).map(|(r, _)| r).sum();
    let (nw, nb) = (n_within as f64, n_between as f64);
    Ok(Some(GroupSeparation {
        within_mean: mean_of(true),
        between_mean: mean_of(false),
        auc: (rank_sum - nw * (nw + 1.0) / 2.0) / (nw * nb),
        within_pairs: n_within,
        between_pairs: n_between,
    }))
}

/// A pair of distinct actions and their similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct SimilarPair {
    /// Row indices, `a < b`.
    pub a: usize,
    pub b: usize,
    pub name_a: String,
    pub name_b: String,
    pub similarity: f32,
}

/// The `k` most similar pairs `a < b`, most similar first (ties in index order), named by
/// `ids` (`S`'s row identities).
pub fn top_pairs(similarity: &Similarity, ids: &[String], k: usize) -> Result<Vec<SimilarPair>> {
    let a = similarity.num_actions();
    names_per_row(a, ids)?;
    let s = similarity.to_vec()?;
    let mut pairs = upper_pairs(a);
    // Stable sort: equal similarities keep (a, b) order.
    pairs.sort_by(|&(i, j), &(k, l)| s[k * a + l].total_cmp(&s[i * a + j]));
    Ok(pairs
        .into_iter()
        .take(k)
        .map(|(i, j)| SimilarPair {
            a: i,
            b: j,
            name_a: ids[i].clone(),
            name_b: ids[j].clone(),
            similarity: s[i * a + j],
        })
        .collect())
}

/// A named set of actions drawn next to each other in the heatmap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionGroup {
    pub name: String,
    /// Row indices into `S`, in drawing order.
    pub actions: Vec<usize>,
}

impl ActionGroup {
    /// The issue's layout: the primitives in pool order, then the macros sorted by identity
    /// (so macros sharing a prefix sit together). Assumes the pool's order, primitives
    /// first; empty groups are left out.
    pub fn primitives_then_macros(ids: &[String], num_primitives: usize) -> Vec<ActionGroup> {
        let p = num_primitives.min(ids.len());
        let mut macros: Vec<usize> = (p..ids.len()).collect();
        macros.sort_by(|&x, &y| ids[x].cmp(&ids[y]));
        [("primitives", (0..p).collect::<Vec<_>>()), ("macros", macros)]
            .into_iter()
            .filter(|(_, actions)| !actions.is_empty())
            .map(|(name, actions)| ActionGroup { name: name.into(), actions })
            .collect()
    }
}

/// How [`heatmap_png`] draws: the colour scale, and whether to write text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeatmapStyle {
    /// The entries drawn white and dark blue, linearly between; others are clipped.
    pub range: (f32, f32),
    /// Label the axes (each action's name up to [`NAMED_ACTIONS`] actions, each group's
    /// name beyond) and number the colour bar. Needs a font registered with plotters as
    /// `sans-serif` (`plotters::style::register_font`): the drawing fails without one.
    pub text: bool,
}

/// Up to this many actions the heatmap's axes name every action; beyond, only the groups.
pub const NAMED_ACTIONS: usize = 32;

impl HeatmapStyle {
    /// White at 0, dark blue at 1, no text.
    pub const UNIT: HeatmapStyle = HeatmapStyle { range: (0.0, 1.0), text: false };

    /// The colours spread over `S`'s off-diagonal entries, the smallest white and the
    /// largest dark blue: a learned `S` stays in a narrow band near its init, which a 0-to-1
    /// scale draws as one flat colour. The unit diagonal is clipped to dark blue. An `S`
    /// whose off-diagonal entries are all equal is drawn from 0 to that value (0 to 1 when
    /// it is 0).
    pub fn off_diagonal(similarity: &Similarity, text: bool) -> Result<Self> {
        let a = similarity.num_actions();
        let s = similarity.to_vec()?;
        let (lo, hi) = upper_pairs(a)
            .into_iter()
            .map(|(i, j)| s[i * a + j])
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let range = match (lo, hi) {
            (lo, hi) if lo < hi => (lo, hi),
            (_, hi) if hi > 0.0 => (0.0, hi),
            _ => (0.0, 1.0),
        };
        Ok(Self { range, text })
    }

    /// `v` on this scale: 0 white, 1 dark blue.
    fn unit(&self, v: f32) -> f32 {
        let (lo, hi) = self.range;
        (v - lo) / (hi - lo)
    }
}

/// What labels a heatmap's axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisLabels {
    /// No text.
    None,
    /// Every row and column by its action's name.
    Actions,
    /// Each group's span by the group's name.
    Groups,
}

/// Where things landed in a heatmap.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatmapLayout {
    /// Row (and column) `r` of the picture is action `order[r]`.
    pub order: Vec<usize>,
    /// Each group's name and its rows in the picture.
    pub groups: Vec<(String, Range<usize>)>,
    /// Pixels per cell.
    pub cell_px: u32,
    /// The first cell's top-left corner, pixels from the picture's.
    pub origin: (u32, u32),
    /// Picture size, `(width, height)` in pixels.
    pub size: (u32, u32),
    pub labels: AxisLabels,
    /// The colour bar's numbers, bottom to top, with the values they mark.
    pub ticks: Vec<(f32, String)>,
}

/// The picture's margin, the colour bar's gap and width, in pixels.
const MARGIN: u32 = 8;
const BAR_GAP: u32 = 8;
const BAR_WIDTH: u32 = 16;
/// Text: the font's size, the width allowed per character, and the longest label drawn.
const FONT_PX: u32 = 12;
const CHAR_PX: u32 = 8;
const LABEL_CHARS: usize = 24;

/// Writes a PNG heatmap of `S` at `path`: rows and columns in the order of `groups`
/// (which must list every action once), coloured as `style` says, grey lines between
/// groups, and a colour bar on the right (the range's top at the top). `ids` names `S`'s
/// rows, for the axes.
pub fn heatmap_png(
    similarity: &Similarity,
    ids: &[String],
    groups: &[ActionGroup],
    style: &HeatmapStyle,
    path: impl AsRef<Path>,
) -> Result<HeatmapLayout> {
    let path = path.as_ref();
    let plot_err = |reason: String| Error::Plot { path: path.to_path_buf(), reason };
    let a = similarity.num_actions();
    names_per_row(a, ids)?;
    let layout = heatmap_layout(ids, groups, style).map_err(plot_err)?;
    let s = similarity.to_vec()?;
    let root = BitMapBackend::new(path, layout.size).into_drawing_area();
    draw_heatmap(&root, &s, ids, &layout, style).map_err(plot_err)?;
    root.present().map_err(|e| plot_err(e.to_string()))?;
    Ok(layout)
}

/// The drawing order, group spans, labels and sizes, after checking that `groups` list
/// every action of `ids` exactly once.
fn heatmap_layout(
    ids: &[String],
    groups: &[ActionGroup],
    style: &HeatmapStyle,
) -> std::result::Result<HeatmapLayout, String> {
    let a = ids.len();
    let mut seen = vec![false; a];
    let mut order = Vec::with_capacity(a);
    let mut spans = Vec::with_capacity(groups.len());
    for g in groups {
        let start = order.len();
        for &i in &g.actions {
            if i >= a || std::mem::replace(&mut seen[i], true) {
                return Err(format!(
                    "group `{}` lists action {i}, which is out of range or already drawn",
                    g.name
                ));
            }
            order.push(i);
        }
        spans.push((g.name.clone(), start..order.len()));
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(format!("no group lists action {missing}: every action must be drawn once"));
    }
    let (lo, hi) = style.range;
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return Err(format!("the colour range {lo}..{hi} is empty: its top must exceed its bottom"));
    }
    let labels = match style.text {
        false => AxisLabels::None,
        true if a <= NAMED_ACTIONS => AxisLabels::Actions,
        true => AxisLabels::Groups,
    };
    let longest = |names: &mut dyn Iterator<Item = &str>| {
        names.map(|n| n.chars().count().min(LABEL_CHARS) as u32).max().unwrap_or(0)
    };
    let band = match labels {
        AxisLabels::None => 0,
        AxisLabels::Actions => CHAR_PX * longest(&mut ids.iter().map(String::as_str)) + MARGIN,
        AxisLabels::Groups => CHAR_PX * longest(&mut spans.iter().map(|(n, _)| n.as_str())) + MARGIN,
    };
    let ticks = match style.text {
        true => tick_labels(lo, hi),
        false => Vec::new(),
    };
    let bar_text = match longest(&mut ticks.iter().map(|(_, t)| t.as_str())) {
        0 => 0,
        chars => MARGIN / 2 + CHAR_PX * chars,
    };
    // About 768 pixels of heatmap, whole pixels per cell.
    let cell = (768 / a.max(1) as u32).clamp(1, 48);
    let side = a as u32 * cell;
    let origin = (MARGIN + band, MARGIN + band);
    let size = (origin.0 + side + BAR_GAP + BAR_WIDTH + bar_text + MARGIN, origin.1 + side + MARGIN);
    Ok(HeatmapLayout { order, groups: spans, cell_px: cell, origin, size, labels, ticks })
}

/// The colour bar's numbers: its bottom, middle and top, with enough decimals to tell them
/// apart (a learned `S` spans a few thousandths).
fn tick_labels(lo: f32, hi: f32) -> Vec<(f32, String)> {
    let decimals = (2.0 - f64::from(hi - lo).log10().floor()).clamp(0.0, 8.0) as usize;
    [lo, (lo + hi) / 2.0, hi].into_iter().map(|v| (v, format!("{v:.decimals$}"))).collect()
}

/// `name` cut to [`LABEL_CHARS`] characters, an ellipsis marking a cut.
fn label(name: &str) -> String {
    match name.char_indices().nth(LABEL_CHARS - 1) {
        Some((cut, _)) if name.chars().count() > LABEL_CHARS => format!("{}…", &name[..cut]),
        _ => name.to_string(),
    }
}

/// Draws `s`, `(A, A)` row-major, on `root` as `layout` and `style` say.
fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &[f32],
    ids: &[String],
    layout: &HeatmapLayout,
    style: &HeatmapStyle,
) -> std::result::Result<(), String> {
    let (a, cell, order) = (layout.order.len(), layout.cell_px, &layout.order);
    let side = a as u32 * cell;
    let (ox, oy) = layout.origin;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let col = |k: usize| (ox + k as u32 * cell) as i32;
    let row = |k: usize| (oy + k as u32 * cell) as i32;
    for (r, &i) in order.iter().enumerate() {
        for (c, &j) in order.iter().enumerate() {
            // The bitmap backend fills [x0, x1) x [y0, y1): exactly `cell` pixels a side.
            let colour = shade(style.unit(s[i * a + j]));
            let cell_rect = Rectangle::new([(col(c), row(r)), (col(c + 1), row(r + 1))], colour.filled());
            root.draw(&cell_rect).map_err(err)?;
        }
    }
    let grey = RGBColor(128, 128, 128);
    for (_, span) in layout.groups.iter().skip(1) {
        let (x, y) = (col(span.start), row(span.start));
        root.draw(&PathElement::new(vec![(x, row(0)), (x, row(a))], grey)).map_err(err)?;
        root.draw(&PathElement::new(vec![(col(0), y), (col(a), y)], grey)).map_err(err)?;
    }
    let bar_x = (ox + side + BAR_GAP) as i32;
    let (lo, hi) = style.range;
    let bar_y = |v: f32| row(0) + ((hi - v) / (hi - lo) * (side.max(2) - 1) as f32).round() as i32;
    for y in 0..side {
        let v = hi - (hi - lo) * y as f32 / (side.max(2) - 1) as f32;
        let y = row(0) + y as i32;
        root.draw(&PathElement::new(
            vec![(bar_x, y), (bar_x + BAR_WIDTH as i32 - 1, y)],
            shade(style.unit(v)),
        ))
        .map_err(err)?;
    }
    if layout.labels == AxisLabels::None {
        return Ok(());
    }
    let font = ("sans-serif", FONT_PX).into_font().color(&BLACK);
    let row_label = font.pos(Pos::new(HPos::Right, VPos::Center));
    let column_label = ("sans-serif", FONT_PX)
        .into_font()
        .transform(FontTransform::Rotate270)
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let gap = (MARGIN / 2) as i32;
    let draw_labels = |name: &str, span: Range<usize>| {
        let centre = |at: &dyn Fn(usize) -> i32| (at(span.start) + at(span.end)) / 2;
        root.draw(&Text::new(label(name), (col(0) - gap, centre(&row)), row_label.clone()))?;
        root.draw(&Text::new(label(name), (centre(&col), row(0) - gap), column_label.clone()))
    };
    match layout.labels {
        AxisLabels::Actions => {
            for (r, &i) in order.iter().enumerate() {
                draw_labels(&ids[i], r..r + 1).map_err(err)?;
            }
        }
        _ => {
            for (name, span) in &layout.groups {
                draw_labels(name, span.clone()).map_err(err)?;
            }
        }
    }
    let tick_label = font.pos(Pos::new(HPos::Left, VPos::Center));
    let bar_right = bar_x + BAR_WIDTH as i32;
    for (v, text) in &layout.ticks {
        let y = bar_y(*v);
        root.draw(&PathElement::new(vec![(bar_right, y), (bar_right + gap / 2, y)], BLACK)).map_err(err)?;
        root.draw(&Text::new(text.clone(), (bar_right + gap, y), tick_label.clone())).map_err(err)?;
    }
    Ok(())
}

/// White at 0 to dark blue at 1, linearly (a sequential scale: darker is more similar).
fn shade(v: f32) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let mix = |hi: u8| (255.0 - v * (255.0 - hi as f32)).round() as u8;
    RGBColor(mix(8), mix(48), mix(107))
}

/// `ids` must name each of `S`'s `a` rows.
fn names_per_row(a: usize, ids: &[String]) -> Result<()> {
    match ids.len() == a {
        true => Ok(()),
        false => Err(Error::Shape {
            what: "the action identities".into(),
            expected: format!("{a} names, one per row of S"),
            got: vec![ids.len()],
        }),
    }
}

/// The pairs `(i, j)`, `i < j < a`, in row order.
fn upper_pairs(a: usize) -> Vec<(usize, usize)> {
    (0..a).flat_map(|i| (i + 1..a).map(move |j| (i, j))).collect()
}

/// 1-based ranks, ties sharing their average rank.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut r = vec![0.0; x.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && x[idx[end]] == x[idx[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let mean = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            r[i] = mean;
        }
        start = end;
    }
    r
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    if x.len() < 2 {
        return None;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn sim(values: &[f32], a: usize) -> Similarity {
        Similarity::from_values(values, a, DType::F32, &Device::Cpu).unwrap()
    }

    #[test]
    fn group_separation_matches_a_hand_computation() {
        // Actions 0, 1 in group 0, actions 2, 3 in group 1, action 4 unknown (left out).
        #[rustfmt::skip]
        let values = [
            1.0, 0.5, 0.2, 0.3, 0.9,
            0.5, 1.0, 0.4, 0.1, 0.9,
            0.2, 0.4, 1.0, 0.3, 0.9,
            0.3, 0.1, 0.3, 1.0, 0.9,
            0.9, 0.9, 0.9, 0.9, 1.0,
        ];
        let s = Similarity::from_values(&values, 5, DType::F32, &Device::Cpu).unwrap();
        let groups = [Some(0), Some(0), Some(1), Some(1), None];
        let g = group_separation(&s, &groups).unwrap().unwrap();
        // Within: (0,1) 0.5, (2,3) 0.3. Between: (0,2) 0.2, (0,3) 0.3, (1,2) 0.4, (1,3) 0.1.
        assert_eq!((g.within_pairs, g.between_pairs), (2, 4));
        assert!((g.within_mean - 0.4).abs() < 1e-6 && (g.between_mean - 0.25).abs() < 1e-6, "{g:?}");
        // 0.5 beats all four; 0.3 beats 0.2 and 0.1 and ties 0.3: (4 + 2.5) / 8.
        assert!((g.auc - 6.5 / 8.0).abs() < 1e-12, "{g:?}");
        assert_eq!(group_separation(&s, &[Some(0); 5]).unwrap(), None, "no between-group pair");
        assert!(group_separation(&s, &groups[..3]).is_err());
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 10.0, 5.0]), [2.5, 4.0, 2.5, 1.0]);
    }

    #[test]
    fn spearman_matches_a_hand_computed_value() {
        // Pairs (0,1), (0,2), (0,3), (1,2), (1,3), (2,3).
        // similarity 0.9 0.5 0.1 0.5 0.2 0.7 -> ranks 6 3.5 1 3.5 2 5
        // distance     1   2   4   3   2   1 -> ranks 1.5 3.5 6 5 3.5 1.5
        // Pearson of the ranks, worked by hand: sxy = -14.25, sxx = 17, syy = 16.5.
        let s = sim(&[1.0, 0.9, 0.5, 0.1, 0.9, 1.0, 0.5, 0.2, 0.5, 0.5, 1.0, 0.7, 0.1, 0.2, 0.7, 1.0], 4);
        let d = [0.0, 1.0, 2.0, 4.0, 1.0, 0.0, 3.0, 2.0, 2.0, 3.0, 0.0, 1.0, 4.0, 2.0, 1.0, 0.0];
        let want = -14.25 / (17.0f64 * 16.5).sqrt();
        let got = spearman(&s, &d).unwrap().unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert_eq!(spearman(&sim(&[1.0; 4], 2), &[0.0, 1.0, 1.0, 0.0]).unwrap(), None, "one pair");
        assert_eq!(spearman(&sim(&[1.0; 9], 3), &d[..9]).unwrap(), None, "S constant");
        assert!(spearman(&s, &d[..9]).is_err());
    }

    #[test]
    fn top_pairs_are_sorted_and_named() {
        let s = sim(&[1.0, 0.3, 0.8, 0.3, 1.0, 0.3, 0.8, 0.3, 1.0], 3);
        let ids = ["X", "Y", "Z"].map(String::from);
        let top = top_pairs(&s, &ids, 5).unwrap();
        let got: Vec<(usize, usize)> = top.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(got, [(0, 2), (0, 1), (1, 2)], "0.8 first, then ties in index order");
        assert_eq!((top[0].name_a.as_str(), top[0].name_b.as_str()), ("X", "Z"));
        assert!(top_pairs(&s, &ids[..2], 1).is_err());
    }

    #[test]
    fn groups_put_primitives_first_and_sort_macros() {
        let ids = ["NOOP", "UP", "UP+UP", "NOOP+UP", "UP+NOOP"].map(String::from);
        let g = ActionGroup::primitives_then_macros(&ids, 2);
        assert_eq!(g[0].actions, [0, 1]);
        assert_eq!(g[1].actions, [3, 4, 2]);
        assert_eq!(ActionGroup::primitives_then_macros(&ids[..2], 2).len(), 1, "no empty macro group");
    }

    /// Reads a PNG's size from its IHDR chunk and checks the signature.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let be = |k: usize| u32::from_be_bytes(bytes[k..k + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn heatmap_writes_a_png_in_group_order() {
        let dir = std::env::temp_dir().join(format!("masp-heatmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.png");
        let ids = ["NOOP", "UP", "UP+UP", "NOOP+UP", "UP+NOOP", "UP+UP+UP"].map(String::from);
        let values: Vec<f32> = (0..36).map(|k| if k % 7 == 0 { 1.0 } else { (k % 5) as f32 / 5.0 }).collect();
        let s = sim(&values, 6);
        let groups = ActionGroup::primitives_then_macros(&ids, 2);
        let unit = HeatmapStyle::UNIT;
        let layout = heatmap_png(&s, &ids, &groups, &unit, &path).unwrap();
        assert_eq!(layout.order, [0, 1, 3, 4, 2, 5]);
        assert_eq!(layout.groups, [("primitives".to_string(), 0..2), ("macros".to_string(), 2..6)]);
        assert_eq!(layout.cell_px, 48);
        assert_eq!(png_size(&path), layout.size);
        assert_eq!(layout.size, (2 * 8 + 6 * 48 + 8 + 16, 2 * 8 + 6 * 48));
        // Every cell's centre has the colour of its entry, in group order, on either scale.
        let v = s.to_vec().unwrap();
        let spread = HeatmapStyle::off_diagonal(&s, false).unwrap();
        assert_eq!(spread.range, (0.0, 0.8), "the off-diagonal entries run 0 to 0.8");
        for style in [unit, spread] {
            let pixels = render(&s, &ids, &layout, &style);
            for (r, &i) in layout.order.iter().enumerate() {
                for (c, &j) in layout.order.iter().enumerate() {
                    let (x, y) = (8 + c as u32 * 48 + 24, 8 + r as u32 * 48 + 24);
                    let want = shade(style.unit(v[i * 6 + j]));
                    assert_eq!(pixels(x, y), want, "cell ({r}, {c}) shows S[{i}][{j}] on {style:?}");
                }
            }
        }
        let bad = [ActionGroup { name: "all".into(), actions: vec![0, 1, 1, 2, 3, 4] }];
        let err = heatmap_png(&s, &ids, &bad, &unit, &path).unwrap_err().to_string();
        assert!(err.contains("group `all` lists action 1"), "{err}");
        let short = [ActionGroup { name: "some".into(), actions: vec![0, 1] }];
        let err = heatmap_png(&s, &ids, &short, &unit, &path).unwrap_err().to_string();
        assert!(err.contains("no group lists action 2"), "{err}");
        assert!(heatmap_png(&s, &ids[..5], &groups, &unit, &path).is_err(), "one name per row");
        let empty = HeatmapStyle { range: (0.5, 0.5), text: false };
        assert!(heatmap_png(&s, &ids, &groups, &empty, &path).unwrap_err().to_string().contains("is empty"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Draws `s` without writing a file; the colour at a pixel.
    fn render(
        s: &Similarity,
        ids: &[String],
        layout: &HeatmapLayout,
        style: &HeatmapStyle,
    ) -> impl Fn(u32, u32) -> RGBColor {
        let (width, height) = layout.size;
        let mut buf = vec![0u8; (width * height * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, layout.size).into_drawing_area();
            draw_heatmap(&root, &s.to_vec().unwrap(), ids, layout, style).unwrap();
            root.present().unwrap();
        }
        move |x, y| {
            let k = ((y * width + x) * 3) as usize;
            RGBColor(buf[k], buf[k + 1], buf[k + 2])
        }
    }

    #[test]
    fn a_learned_s_spans_the_whole_colour_scale() {
        // Off-diagonal entries in a narrow band, as after training from a uniform init.
        let s = sim(&[1.0, 0.0161, 0.0175, 0.0161, 1.0, 0.0168, 0.0175, 0.0168, 1.0], 3);
        let style = HeatmapStyle::off_diagonal(&s, true).unwrap();
        assert_eq!(style.range, (0.0161, 0.0175));
        assert_eq!((shade(style.unit(0.0161)), shade(style.unit(0.0175))), (shade(0.0), shade(1.0)));
        assert_eq!(shade(style.unit(1.0)), shade(1.0), "the diagonal clips to dark blue");
        assert_eq!(
            HeatmapStyle::off_diagonal(&sim(&[1.0, 0.3, 0.3, 1.0], 2), false).unwrap().range,
            (0.0, 0.3)
        );
        assert_eq!(
            HeatmapStyle::off_diagonal(&sim(&[1.0, 0.0, 0.0, 1.0], 2), false).unwrap().range,
            (0.0, 1.0)
        );
    }

    #[test]
    fn the_colour_bar_numbers_tell_a_narrow_range_apart() {
        let texts = |lo, hi| tick_labels(lo, hi).into_iter().map(|(_, t)| t).collect::<Vec<_>>();
        assert_eq!(texts(0.0161, 0.0175), ["0.01610", "0.01680", "0.01750"]);
        assert_eq!(texts(0.0, 1.0), ["0.00", "0.50", "1.00"]);
        assert_eq!(texts(0.0, 300.0), ["0", "150", "300"]);
    }

    #[test]
    fn axes_name_the_actions_while_they_are_few_and_the_groups_beyond() {
        let ids = ["NOOP", "UP", "UP+UP", "NOOP+UP"].map(String::from);
        let groups = ActionGroup::primitives_then_macros(&ids, 2);
        let text = HeatmapStyle { range: (0.0, 1.0), text: true };
        let layout = heatmap_layout(&ids, &groups, &text).unwrap();
        assert_eq!(layout.labels, AxisLabels::Actions);
        // The band holds the longest name (7 characters) and a margin, on both axes.
        assert_eq!(layout.origin, (8 + 7 * 8 + 8, 8 + 7 * 8 + 8));
        // The bar's numbers ("0.50") sit right of the bar.
        assert_eq!(layout.size.0, layout.origin.0 + 4 * 48 + 8 + 16 + 4 + 4 * 8 + 8);
        assert_eq!(layout.ticks.len(), 3);
        let many: Vec<String> = (0..NAMED_ACTIONS + 1).map(|k| format!("A{k}")).collect();
        let all = [ActionGroup { name: "primitives".into(), actions: (0..many.len()).collect() }];
        let layout = heatmap_layout(&many, &all, &text).unwrap();
        assert_eq!(layout.labels, AxisLabels::Groups);
        assert_eq!(layout.origin.0, 8 + 10 * 8 + 8, "the band fits `primitives`");
        let plain = heatmap_layout(&many, &all, &HeatmapStyle::UNIT).unwrap();
        assert_eq!((plain.labels, plain.origin, plain.ticks.len()), (AxisLabels::None, (8, 8), 0));
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis() {
        assert_eq!(label("UP+UP"), "UP+UP");
        let long = "RIGHT+RIGHT+RIGHT+RIGHT+LEFT";
        assert_eq!(label(long), "RIGHT+RIGHT+RIGHT+RIGHT…");
        assert_eq!(label(long).chars().count(), LABEL_CHARS);
        assert_eq!(label(&long[..LABEL_CHARS]), &long[..LABEL_CHARS]);
    }

    #[test]
    fn shade_runs_white_to_dark_blue() {
        assert_eq!(shade(0.0), RGBColor(255, 255, 255));
        assert_eq!(shade(1.0), RGBColor(8, 48, 107));
    }
}
