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
    BitMapBackend, Color, DrawingArea, DrawingBackend, IntoDrawingArea, PathElement, RGBColor, Rectangle,
    WHITE,
};

use crate::error::{Error, Result};
use crate::learned_similarity::Similarity;

/// Spearman's rank correlation between `S` and `distance`, `(A, A)` row-major, over the
/// `A (A - 1) / 2` pairs above the diagonal; ties take their average rank. `None` when it
/// is undefined (fewer than two pairs, or either side constant).
pub fn spearman(similarity: &Similarity, distance: &[f32]) -> Result<Option<f64>> {
    let a = similarity.num_actions();
    if distance.len() != a * a {
        return Err(Error::Shape {
            what: "the distance matrix".into(),
            expected: format!("({a}, {a}) row-major, {} values", a * a),
            got: vec![distance.len()],
        });
    }
    let s = similarity.to_vec()?;
    let pairs = upper_pairs(a);
    let x = ranks(&pairs.iter().map(|&(i, j)| s[i * a + j] as f64).collect::<Vec<_>>());
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
    let a = similarity.num_actions();
    if groups.len() != a {
        return Err(Error::Shape {
            what: "the action groups".into(),
            expected: format!("({a},), one per action of S"),
            got: vec![groups.len()],
        });
    }
    let s = similarity.to_vec()?;
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
    if ids.len() != a {
        return Err(Error::Shape {
            what: "the action identities".into(),
            expected: format!("{a} names, one per row of S"),
            got: vec![ids.len()],
        });
    }
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

/// Where things landed in a heatmap: the drawing has no text (plotters is built without
/// fonts), so print this beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeatmapLayout {
    /// Row (and column) `r` of the picture is action `order[r]`.
    pub order: Vec<usize>,
    /// Each group's name and its rows in the picture.
    pub groups: Vec<(String, Range<usize>)>,
    /// Pixels per cell.
    pub cell_px: u32,
    /// Picture size, `(width, height)` in pixels.
    pub size: (u32, u32),
}

/// The picture's margin, and the colour bar's gap and width, in pixels.
const MARGIN: u32 = 8;
const BAR_GAP: u32 = 8;
const BAR_WIDTH: u32 = 16;

/// Writes a PNG heatmap of `S` at `path`: rows and columns in the order of `groups`
/// (which must list every action once), white (0) to dark blue (1), grey lines between
/// groups, and a colour bar on the right (1 at the top).
pub fn heatmap_png(
    similarity: &Similarity,
    groups: &[ActionGroup],
    path: impl AsRef<Path>,
) -> Result<HeatmapLayout> {
    let path = path.as_ref();
    let plot_err = |reason: String| Error::Plot { path: path.to_path_buf(), reason };
    let layout = heatmap_layout(similarity.num_actions(), groups).map_err(plot_err)?;
    let s = similarity.to_vec()?;
    let root = BitMapBackend::new(path, layout.size).into_drawing_area();
    draw_heatmap(&root, &s, &layout).map_err(plot_err)?;
    root.present().map_err(|e| plot_err(e.to_string()))?;
    Ok(layout)
}

/// The drawing order, group spans and sizes for `a` actions, after checking that
/// `groups` list every action exactly once.
fn heatmap_layout(a: usize, groups: &[ActionGroup]) -> std::result::Result<HeatmapLayout, String> {
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
    // About 768 pixels of heatmap, whole pixels per cell.
    let cell = (768 / a.max(1) as u32).clamp(1, 48);
    let side = a as u32 * cell;
    let size = (2 * MARGIN + side + BAR_GAP + BAR_WIDTH, 2 * MARGIN + side);
    Ok(HeatmapLayout { order, groups: spans, cell_px: cell, size })
}

/// Draws `s`, `(A, A)` row-major, on `root` as `layout` says.
fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &[f32],
    layout: &HeatmapLayout,
) -> std::result::Result<(), String> {
    let (a, cell, order) = (layout.order.len(), layout.cell_px, &layout.order);
    let side = a as u32 * cell;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let at = |k: usize| (MARGIN + k as u32 * cell) as i32;
    for (r, &i) in order.iter().enumerate() {
        for (c, &j) in order.iter().enumerate() {
            // The bitmap backend fills [x0, x1) x [y0, y1): exactly `cell` pixels a side.
            let cell_rect =
                Rectangle::new([(at(c), at(r)), (at(c + 1), at(r + 1))], shade(s[i * a + j]).filled());
            root.draw(&cell_rect).map_err(err)?;
        }
    }
    let grey = RGBColor(128, 128, 128);
    let (lo, hi) = (at(0), at(a));
    for (_, span) in layout.groups.iter().skip(1) {
        let k = at(span.start);
        root.draw(&PathElement::new(vec![(k, lo), (k, hi)], grey)).map_err(err)?;
        root.draw(&PathElement::new(vec![(lo, k), (hi, k)], grey)).map_err(err)?;
    }
    let bar_x = (MARGIN + side + BAR_GAP) as i32;
    for y in 0..side {
        let v = 1.0 - y as f32 / (side.max(2) - 1) as f32;
        let y = (MARGIN + y) as i32;
        root.draw(&PathElement::new(vec![(bar_x, y), (bar_x + BAR_WIDTH as i32 - 1, y)], shade(v)))
            .map_err(err)?;
    }
    Ok(())
}

/// White at 0 to dark blue at 1, linearly (a sequential scale: darker is more similar).
fn shade(v: f32) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let mix = |hi: u8| (255.0 - v * (255.0 - hi as f32)).round() as u8;
    RGBColor(mix(8), mix(48), mix(107))
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
        let layout = heatmap_png(&s, &groups, &path).unwrap();
        assert_eq!(layout.order, [0, 1, 3, 4, 2, 5]);
        assert_eq!(layout.groups, [("primitives".to_string(), 0..2), ("macros".to_string(), 2..6)]);
        assert_eq!(layout.cell_px, 48);
        assert_eq!(png_size(&path), layout.size);
        assert_eq!(layout.size, (2 * 8 + 6 * 48 + 8 + 16, 2 * 8 + 6 * 48));
        // Every cell's centre has the colour of its entry, in group order.
        let mut buf = vec![0u8; (layout.size.0 * layout.size.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, layout.size).into_drawing_area();
            draw_heatmap(&root, &s.to_vec().unwrap(), &layout).unwrap();
            root.present().unwrap();
        }
        let v = s.to_vec().unwrap();
        for (r, &i) in layout.order.iter().enumerate() {
            for (c, &j) in layout.order.iter().enumerate() {
                let (x, y) = (8 + c as u32 * 48 + 24, 8 + r as u32 * 48 + 24);
                let k = ((y * layout.size.0 + x) * 3) as usize;
                let RGBColor(red, green, blue) = shade(v[i * 6 + j]);
                assert_eq!(buf[k..k + 3], [red, green, blue], "cell ({r}, {c}) shows S[{i}][{j}]");
            }
        }
        let bad = [ActionGroup { name: "all".into(), actions: vec![0, 1, 1, 2, 3, 4] }];
        let err = heatmap_png(&s, &bad, &path).unwrap_err().to_string();
        assert!(err.contains("group `all` lists action 1"), "{err}");
        let short = [ActionGroup { name: "some".into(), actions: vec![0, 1] }];
        assert!(heatmap_png(&s, &short, &path).unwrap_err().to_string().contains("no group lists action 2"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shade_runs_white_to_dark_blue() {
        assert_eq!(shade(0.0), RGBColor(255, 255, 255));
        assert_eq!(shade(1.0), RGBColor(8, 48, 107));
    }
}
