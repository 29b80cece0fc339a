//! `masp plot`: learning curves against environment frames from run folders' `metrics.csv`.
//!
//! One panel per game (or toy env), one line per agent (`run.name`): the mean over seeds
//! of a metrics column (default `episode_score`), with its 95% t-interval over seeds as a
//! band. Seeds that log at different frames are interpolated linearly onto the union of
//! their frames, over the range every seed covers. Where the metric is a raw game score
//! ([`RAW_SCORES`]) and the game is one of the Atari 100k reference table's, a dashed
//! line marks data-efficient Rainbow's (DER) published score after 400k frames. Written as
//! `curves.png` and `curves.svg`.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! let files = masp_runner::plot_runs(&[PathBuf::from("runs")], Path::new("plots"), "episode_score")?;
//! assert_eq!(files, [Path::new("plots/curves.png"), Path::new("plots/curves.svg")]);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Text needs a TrueType font ([`crate::font`]); without one the plots are drawn without
//! text and a warning says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::font::{self, FONT_ENV};
use crate::metrics::MetricsTable;
use crate::reference::reference;
use crate::run_dir::{self, RunLabel};
use crate::stats::{ci95_half_width, mean_sd};

/// The metrics.csv columns that hold raw game scores, the unit of DER's published
/// scores: only beside these is DER's line meaningful.
const RAW_SCORES: [&str; 1] = ["episode_score"];

/// DER's line: dark grey, apart from the agents' palette and from the black axes.
const DER_COLOUR: RGBColor = RGBColor(80, 80, 80);

/// Size of one panel, pixels.
const PANEL: (u32, u32) = (640, 420);

/// One seed's `(frames, value)` points, sorted by frames; `games` in [`plot_runs`] holds
/// them by game, then agent.
type Series = Vec<(f64, f64)>;

/// One agent's curve on one game: the grid and, at each point, the mean over seeds and
/// the half-width of its 95% interval (`None` with one seed).
#[derive(Clone, Debug, PartialEq)]
struct Curve {
    agent: String,
    seeds: usize,
    frames: Vec<f64>,
    mean: Vec<f64>,
    half_width: Vec<Option<f64>>,
}

/// One game's panel: its agents' curves and, when known, DER's published score.
#[derive(Clone, Debug, PartialEq)]
struct Panel {
    game: String,
    curves: Vec<Curve>,
    der: Option<f64>,
}

/// Draws the curves of `runs` (run folders, or folders holding them) for the metrics
/// column `metric` into `out_dir/curves.png` and `out_dir/curves.svg`; returns both paths.
pub fn plot_runs(runs: &[PathBuf], out_dir: &Path, metric: &str) -> Result<Vec<PathBuf>> {
    let runs = run_dir::find_runs(runs)?;
    let mut games: BTreeMap<String, BTreeMap<String, Vec<Series>>> = BTreeMap::new();
    for run in &runs {
        let label = RunLabel::read(run)?;
        let mut series = MetricsTable::read(&run.join(run_dir::METRICS))?.series(metric)?;
        if series.is_empty() {
            // e.g. no game finished yet: nothing to draw for this seed.
            continue;
        }
        // A resume from an earlier checkpoint logs frames again: keep the later rows.
        series.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                *earlier = *later;
            }
            same
        });
        games.entry(label.game).or_default().entry(label.agent).or_default().push(series);
    }
    if games.is_empty() {
        bail!("none of the {} run folders has a value of `{metric}` in its metrics.csv yet", runs.len());
    }
    let panels = games
        .into_iter()
        .map(|(game, agents)| {
            let curves = agents
                .into_iter()
                .map(|(agent, seeds)| curve(agent, &seeds).with_context(|| format!("game {game}")))
                .collect::<Result<Vec<_>>>()?;
            let der = der_line(&game, metric);
            Ok(Panel { game, curves, der })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut agents: Vec<&str> =
        panels.iter().flat_map(|p| p.curves.iter().map(|c| c.agent.as_str())).collect();
    agents.sort();
    agents.dedup();

    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let text = font::loaded();
    if !text {
        eprintln!(
            "warning: no font found (set {FONT_ENV} to a .ttf file, or install DejaVu Sans): the plots have \
             no text; colours by agent: {}",
            agents
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{a} = {:?}", colour(i).rgb()))
                .collect::<Vec<_>>()
                .join(", ")
                + &format!("; DER's published score: dashed {:?}", DER_COLOUR.rgb())
        );
    }
    let cols = (panels.len() as f64).sqrt().ceil() as u32;
    let rows = (panels.len() as u32).div_ceil(cols);
    let size = (PANEL.0 * cols, PANEL.1 * rows);
    let png = out_dir.join("curves.png");
    let svg = out_dir.join("curves.svg");
    draw(BitMapBackend::new(&png, size).into_drawing_area(), &panels, &agents, metric, text)
        .with_context(|| format!("drawing {}", png.display()))?;
    draw(SVGBackend::new(&svg, size).into_drawing_area(), &panels, &agents, metric, text)
        .with_context(|| format!("drawing {}", svg.display()))?;
    Ok(vec![png, svg])
}

/// DER's published score for `game`'s panel, when `metric` is a raw game score and the
/// reference table has one.
fn der_line(game: &str, metric: &str) -> Option<f64> {
    RAW_SCORES.contains(&metric).then(|| reference(game)?.der).flatten()
}

/// The mean and 95% interval over `seeds` (each sorted by frames, non-empty) on the
/// union of their frames within the range all of them cover.
fn curve(agent: String, seeds: &[Series]) -> Result<Curve> {
    let start = seeds.iter().map(|s| s[0].0).fold(f64::NEG_INFINITY, f64::max);
    let end = seeds.iter().map(|s| s[s.len() - 1].0).fold(f64::INFINITY, f64::min);
    if start > end {
        bail!(
            "the {} seeds of agent {agent} log at frames that do not overlap (the latest starts at {start}, the \
             earliest ends at {end})",
            seeds.len()
        );
    }
    let mut frames: Vec<f64> =
        seeds.iter().flatten().map(|p| p.0).filter(|f| (start..=end).contains(f)).collect();
    frames.sort_by(f64::total_cmp);
    frames.dedup();
    let (mut mean, mut half_width) = (Vec::new(), Vec::new());
    for &f in &frames {
        let values: Vec<f64> = seeds.iter().map(|s| interpolate(s, f)).collect();
        mean.push(mean_sd(&values).0);
        half_width.push(ci95_half_width(&values));
    }
    Ok(Curve { agent, seeds: seeds.len(), frames, mean, half_width })
}

/// The value of the piecewise-linear `series` (sorted by frames) at `frames`, which lies
/// within its range.
fn interpolate(series: &[(f64, f64)], frames: f64) -> f64 {
    let i = series.partition_point(|p| p.0 < frames);
    let (x1, y1) = series[i];
    if x1 == frames || i == 0 {
        return y1;
    }
    let (x0, y0) = series[i - 1];
    y0 + (y1 - y0) * (frames - x0) / (x1 - x0)
}

/// Agent `i`'s colour, the same in every panel.
fn colour(i: usize) -> PaletteColor<Palette99> {
    Palette99::pick(i)
}

/// `1.5M`, `200k`, `950`: a frame count for an axis label.
fn human_frames(frames: f64) -> String {
    match frames.abs() {
        f if f >= 1e6 => format!("{}M", frames / 1e6),
        f if f >= 1e3 => format!("{}k", frames / 1e3),
        _ => format!("{frames}"),
    }
}

/// The whole figure: panels row by row. Each mean is one polyline (the SVG has one path per
/// agent and panel, and one per dash of DER's line); the legend uses rectangles so that it
/// adds none.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    panels: &[Panel],
    agents: &[&str],
    metric: &str,
    text: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    root.fill(&WHITE).map_err(err)?;
    let cols = (panels.len() as f64).sqrt().ceil() as usize;
    let rows = panels.len().div_ceil(cols);
    for (Panel { game, curves, der }, area) in panels.iter().zip(root.split_evenly((rows, cols))) {
        let x_end = curves.iter().filter_map(|c| c.frames.last()).copied().fold(0.0, f64::max);
        let x_start = curves.iter().filter_map(|c| c.frames.first()).copied().fold(x_end, f64::min);
        // DER's score is in range too, however far the curves are from it.
        let bounds = curves
            .iter()
            .flat_map(|c| {
                c.mean
                    .iter()
                    .zip(&c.half_width)
                    .flat_map(|(m, h)| [m - h.unwrap_or(0.0), m + h.unwrap_or(0.0)])
            })
            .chain(*der);
        let (lo, hi) = bounds.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        // Flat curves and single points still get a visible range.
        let pad = ((hi - lo) * 0.05).max(1e-3 * hi.abs().max(1.0));
        let x_pad = ((x_end - x_start) * 0.02).max(1.0);
        let mut builder = ChartBuilder::on(&area);
        builder.margin(12);
        if text {
            builder.caption(game, ("sans-serif", 22)).x_label_area_size(40).y_label_area_size(64);
        }
        let mut chart =
            builder.build_cartesian_2d(x_start - x_pad..x_end + x_pad, lo - pad..hi + pad).map_err(err)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("environment frames")
                .y_desc(metric)
                .x_label_formatter(&|x| human_frames(*x))
                .light_line_style(WHITE)
                .draw()
                .map_err(err)?;
        }
        for c in curves {
            let i = agents.iter().position(|a| *a == c.agent).expect("every agent is listed");
            let colour = colour(i);
            if c.half_width.iter().all(Option::is_some) && c.frames.len() > 1 {
                let upper =
                    c.frames.iter().zip(&c.mean).zip(&c.half_width).map(|((f, m), h)| (*f, m + h.unwrap()));
                let lower =
                    c.frames.iter().zip(&c.mean).zip(&c.half_width).map(|((f, m), h)| (*f, m - h.unwrap()));
                let band: Vec<(f64, f64)> = upper.chain(lower.rev()).collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(band, colour.mix(0.2).filled())))
                    .map_err(err)?;
            }
            let line =
                LineSeries::new(c.frames.iter().copied().zip(c.mean.iter().copied()), colour.stroke_width(2));
            let seeds = if c.seeds == 1 { "1 seed".to_string() } else { format!("{} seeds", c.seeds) };
            chart
                .draw_series(line)
                .map_err(err)?
                .label(format!("{} ({seeds})", c.agent))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
        }
        if let Some(score) = *der {
            let ends = [(x_start - x_pad, score), (x_end + x_pad, score)];
            chart
                .draw_series(DashedLineSeries::new(ends, 10, 6, DER_COLOUR.stroke_width(2)))
                .map_err(err)?
                .label(format!("DER at 400k frames, published: {score}"))
                .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 10, y + 1)], DER_COLOUR.filled()));
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
    }
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_on_different_frames_meet_on_the_union_of_their_frames() {
        let a = vec![(0.0, 0.0), (10.0, 10.0), (20.0, 20.0)];
        let b = vec![(5.0, 1.0), (15.0, 1.0), (25.0, 1.0)];
        let c = curve("x".into(), &[a, b]).unwrap();
        // The range both cover is 5..=20.
        assert_eq!(c.frames, [5.0, 10.0, 15.0, 20.0]);
        assert_eq!(c.mean, [3.0, 5.5, 8.0, 10.5]);
        // Two values x, y: sd = |x - y| / sqrt(2), half width = 12.706 * sd / sqrt(2).
        let h = c.half_width[0].unwrap();
        assert!((h - 12.706 * 4.0 / 2.0).abs() < 1e-9, "{h}");
        let apart = curve("x".into(), &[vec![(0.0, 1.0)], vec![(5.0, 1.0)]]);
        assert!(apart.unwrap_err().to_string().contains("do not overlap"));
    }

    #[test]
    fn der_line_only_for_raw_scores_of_reference_games() {
        assert_eq!(der_line("pong", "episode_score"), Some(-19.3));
        assert_eq!(der_line("RoadRunner", "episode_score"), Some(9600.0));
        assert_eq!(der_line("pong", "loss"), None, "DER's score is not a loss");
        assert_eq!(der_line("space_invaders", "episode_score"), None, "not an Atari 100k game");
        assert_eq!(der_line("corridor", "episode_score"), None);
    }

    #[test]
    fn frame_labels_are_short() {
        assert_eq!(human_frames(1_500_000.0), "1.5M");
        assert_eq!(human_frames(200_000.0), "200k");
        assert_eq!(human_frames(950.0), "950");
    }
}
