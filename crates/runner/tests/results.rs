//! `masp plot` and `masp report` on fake run folders (config.toml, metrics.csv and eval.json
//! with known numbers): the report's means, intervals, human-normalised scores, DER
//! comparisons and aggregate metrics with their bootstrap intervals against hand
//! computation, the plots' files, their one line per agent and DER's dashed line, and the
//! errors for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use masp_runner::{plot_runs, report_markdown};

mod common;
use common::fresh_dir;

/// A run folder under `parent` with the `[env]` table `env`, agent `agent`, seed `seed`,
/// metrics rows `(frames, episode_score)` (`None`: no game finished) and, if given, an
/// `eval.json` with these episode scores.
fn fake_run(
    parent: &Path,
    env: &str,
    agent: &str,
    seed: u64,
    rows: &[(u64, Option<f64>)],
    eval: Option<&[f64]>,
) {
    let game = env.split('"').nth(3).unwrap_or("corridor");
    let run = parent.join(format!("{game}__{agent}__{seed}__20261125T200000"));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("config.toml"),
        format!("[env]\n{env}\n\n[run]\nname = \"{agent}\"\nseed = {seed}\n"),
    )
    .unwrap();
    let mut csv = String::from("frames,agent_steps,episode_score,loss\n");
    for (frames, score) in rows {
        let score = score.map(|s| s.to_string()).unwrap_or_default();
        csv += &format!("{frames},{},{score},0.5\n", frames / 4);
    }
    std::fs::write(run.join("metrics.csv"), csv).unwrap();
    if let Some(scores) = eval {
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let report = serde_json::json!({
            "game": game, "protocol": "machado", "agent": agent, "seed": seed, "frames_trained": 7000,
            "episodes": scores.len(), "scores": scores, "mean": mean, "std": 0.0,
            "min": mean, "max": mean, "eval_frames": 1000,
        });
        std::fs::write(run.join("eval.json"), report.to_string()).unwrap();
    }
}

const PONG: &str = "kind = \"atari\"\ngame = \"pong\"\nprotocol = \"machado\"";
const CORRIDOR: &str = "kind = \"corridor\"";

/// Pong: rainbow with 3 evaluated seeds, masp with 2 seeds scored from training rows;
/// the corridor: masp with 1 evaluated seed. In a sweep-like folder tree.
fn fake_sweep(name: &str) -> PathBuf {
    let dir = fresh_dir("results", name);
    let rows = |scores: &[f64]| -> Vec<(u64, Option<f64>)> {
        scores.iter().enumerate().map(|(i, s)| ((i as u64 + 1) * 1000, Some(*s))).collect()
    };
    for (seed, eval) in [-20.0, -18.0, -16.0].into_iter().enumerate() {
        fake_run(
            &dir.join("rainbow"),
            PONG,
            "rainbow",
            seed as u64,
            &rows(&[-21.0, -20.0, -19.0]),
            Some(&[eval - 1.0, eval + 1.0]),
        );
    }
    // Seed 0: an interval without a finished game, then the last 5 scores -20..-16 (mean -18).
    let mut seed0 = rows(&[-21.0, 0.0, -20.0, -19.0, -18.0, -17.0, -16.0]);
    seed0[1].1 = None;
    fake_run(&dir.join("masp"), PONG, "masp", 0, &seed0, None);
    // Seed 1: -30 falls outside the last 5 rows (mean -14).
    fake_run(&dir.join("masp"), PONG, "masp", 1, &rows(&[-30.0, -16.0, -15.0, -14.0, -13.0, -12.0]), None);
    fake_run(&dir, CORRIDOR, "masp", 0, &rows(&[0.0, 0.5, 1.0]), Some(&[0.6, 1.0]));
    dir
}

/// The rows of the report's first table (final scores per game and agent).
fn per_game_rows(report: &str) -> Vec<&str> {
    report.lines().skip_while(|l| !l.starts_with("| game ")).take_while(|l| l.starts_with('|')).collect()
}

#[test]
fn report_gives_mean_interval_seeds_hns_and_der_per_game_and_agent() {
    let dir = fake_sweep("report");
    let table = report_markdown(&[dir]).unwrap();
    // Pong's random and human scores: -20.7 and 14.6; DER's -19.3, negative: no ratio.
    // rainbow: evals -20, -18, -16: mean -18, sd 2, 95% CI -18 ± 4.303 * 2 / sqrt(3) =
    // -18 ± 4.97; HNS (-18 + 20.7) / 35.3 = 0.0765.
    // masp: last-5-row means -18 and -14: mean -16, sd sqrt(8), CI -16 ± 12.706 * 2 = ± 25.41;
    // HNS 4.7 / 35.3 = 0.1331.
    // corridor: one seed (no interval), eval 0.8, no reference figures.
    assert_eq!(
        per_game_rows(&table),
        [
            "| game | agent | seeds | score | 95% CI | HNS | DER | ours ÷ DER | final |",
            "|---|---|---:|---:|---|---:|---:|---:|---|",
            "| corridor | masp | 1 | 0.8 | – | – | – | – | eval |",
            "| pong | masp | 2 | -16.0 | [-41.4, 9.4] | 0.133 | -19.3 | – | training |",
            "| pong | rainbow | 3 | -18.0 | [-23.0, -13.0] | 0.076 | -19.3 | – | eval |",
        ],
        "{table}"
    );
    assert!(table.contains("last 5 rows"), "the report says how final scores were taken:\n{table}");
    // Pong has reference figures: aggregates for both of its agents, none for the corridor.
    assert!(
        table.contains("### masp: 1 game, 2 runs") && table.contains("### rainbow: 1 game, 3 runs"),
        "{table}"
    );
}

/// The score of `game` whose human-normalised score is `hns`.
fn score_at(game: &str, hns: f64) -> f64 {
    let (random, human) = match game {
        "frostbite" => (65.2, 4334.7),
        "road_runner" => (11.5, 7845.0),
        _ => unreachable!(),
    };
    random + hns * (human - random)
}

#[test]
fn report_aggregates_hns_over_games_with_bootstrap_intervals_beside_der() {
    let dir = fresh_dir("results", "aggregates");
    // HNS by seed: Frostbite 0.1 and 0.3, Road Runner 0.5 and 1.5; one episode each.
    for (game, hns) in [("frostbite", [0.1, 0.3]), ("road_runner", [0.5, 1.5])] {
        let env = format!("kind = \"atari\"\ngame = \"{game}\"\nprotocol = \"atari100k\"");
        for (seed, h) in hns.into_iter().enumerate() {
            fake_run(&dir, &env, "der", seed as u64, &[(1000, Some(0.0))], Some(&[score_at(game, h)]));
        }
    }
    let report = report_markdown(&[dir]).unwrap();
    // Frostbite: scores 492.15 and 1346.05, mean 919.1, CI 919.1 ± 12.706 * 853.9 / 2; DER
    // 866.8: ratio 1.06. Road Runner: 3928.25 and 11761.75, mean 7845.0; DER 9600: 0.82.
    assert_eq!(
        per_game_rows(&report)[2..],
        [
            "| frostbite | der | 2 | 919.1 | [-4505.7, 6343.9] | 0.200 | 866.8 | 1.06 | eval |",
            "| road_runner | der | 2 | 7845.0 | [-41921.2, 57611.2] | 1.000 | 9600.0 | 0.82 | eval |",
        ],
        "{report}"
    );
    // Per-game means 0.2 and 1.0: mean and median 0.6. Pooled 0.1, 0.3, 0.5, 1.5: the IQM
    // keeps the middle two, 0.4; clipped at 1 they average 0.475: gap 0.525.
    // Resampled, Frostbite's runs are always below Road Runner's, and each extreme (both
    // seeds of a game drawn at the same end) has probability 1/16 > 2.5%, so the intervals
    // are the extremes: mean, median and IQM (the larger of Frostbite's draws plus the
    // smaller of Road Runner's, halved) from (0.1 + 0.5) / 2 = 0.3 to (0.3 + 1.5) / 2 = 0.9;
    // the gap from 1 - (0.3 + 0.3 + 1 + 1) / 4 = 0.35 to 1 - (0.1 + 0.1 + 0.5 + 0.5) / 4 = 0.7.
    // DER's HNS: Frostbite 801.6 / 4269.5 = 0.1878, Road Runner 9588.5 / 7833.5 = 1.2240:
    // mean, median and IQM 0.7059 (ours ÷ DER's: 0.85, 0.85, 0.57), gap 1 - 1.1878 / 2 = 0.406.
    let aggregates: Vec<&str> = report.lines().skip_while(|l| !l.starts_with("### der")).collect();
    assert_eq!(
        aggregates[..8],
        [
            "### der: 2 games, 4 runs",
            "",
            "| HNS | ours | 95% CI | DER | ours ÷ DER |",
            "|---|---:|---|---:|---:|",
            "| mean | 0.600 | [0.300, 0.900] | 0.706 | 0.85 |",
            "| median | 0.600 | [0.300, 0.900] | 0.706 | 0.85 |",
            "| IQM | 0.400 | [0.300, 0.900] | 0.706 | 0.57 |",
            "| optimality gap | 0.525 | [0.350, 0.700] | 0.406 | – |",
        ],
        "{report}"
    );
    assert!(
        report.contains("stratified bootstrap"),
        "the report says how the intervals were made:\n{report}"
    );
}

#[test]
fn reference_games_are_ale_rom_names() {
    let csv = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/atari100k.csv"))
        .unwrap();
    let games: Vec<&str> =
        csv.lines().filter(|l| !l.starts_with('#')).skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(games.len(), 26);
    for game in games {
        let rom = ale_env::rom_path(game).unwrap_or_else(|e| panic!("{game}: {e}"));
        assert_eq!(rom.file_stem().unwrap(), game, "the table spells {game} as ALE does");
    }
}

/// DER's line's colour in the plots (dark grey).
const DER_GREY: &str = "#505050";

/// An SVG's `<polyline .../>` elements: their stroke colour and points.
fn polylines(svg: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    let attr = |p: &str, name: &str| {
        p.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().to_string()
    };
    svg.split("<polyline")
        .skip(1)
        .map(|p| {
            let points = attr(p, "points")
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            (attr(p, "stroke"), points)
        })
        .collect()
}

/// The stroke colours of an SVG's agents' lines (not the black axes, nor DER's dashes).
fn coloured_lines(svg: &str) -> Vec<String> {
    polylines(svg).into_iter().map(|l| l.0).filter(|s| s != "#000000" && s != DER_GREY).collect()
}

#[test]
fn plot_writes_png_and_svg_with_one_line_per_agent_and_game() {
    let dir = fake_sweep("plot_in");
    let out = fresh_dir("results", "plot_out");
    let files = plot_runs(&[dir], &out, "episode_score").unwrap();
    assert_eq!(files, [out.join("curves.png"), out.join("curves.svg")]);
    let png = std::fs::read(&files[0]).unwrap();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "a PNG of {} bytes", png.len());
    let svg = std::fs::read_to_string(&files[1]).unwrap();
    // Two panels: the corridor (masp) and pong (masp, rainbow).
    let lines = coloured_lines(&svg);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], lines[1], "masp has one colour in every panel");
    assert_ne!(lines[1], lines[2], "masp and rainbow differ");
    // Rainbow's 3 seeds give a band; masp on the corridor (1 seed) none.
    assert_eq!(svg.matches("<polygon").count(), 2, "bands of pong's masp and rainbow");
}

#[test]
fn plot_marks_der_published_score_with_a_dashed_line_in_reference_games() {
    let dir = fresh_dir("results", "der_line_in");
    let rows = |scores: &[f64]| -> Vec<(u64, Option<f64>)> {
        scores.iter().enumerate().map(|(i, s)| ((i as u64 + 1) * 1000, Some(*s))).collect()
    };
    // On Pong, an agent flat at DER's published -19.3 and one that is not; the corridor has
    // no reference figures.
    fake_run(&dir, PONG, "flat", 0, &rows(&[-19.3, -19.3, -19.3]), None);
    fake_run(&dir, PONG, "rising", 0, &rows(&[-21.0, -15.0, -10.0]), None);
    fake_run(&dir, CORRIDOR, "flat", 0, &rows(&[0.0, 0.5, 1.0]), None);
    let out = fresh_dir("results", "der_line_out");
    let files = plot_runs(std::slice::from_ref(&dir), &out, "episode_score").unwrap();
    let lines = polylines(&std::fs::read_to_string(&files[1]).unwrap());
    let dashes: Vec<&Vec<(f64, f64)>> = lines.iter().filter(|l| l.0 == DER_GREY).map(|l| &l.1).collect();
    assert!(dashes.len() > 10, "a dashed line: {} dashes", dashes.len());
    // Two panels side by side, 640 pixels wide each: the dashes are all in pong's, the
    // second, and at the height of the flat agent's line, which sits at DER's score.
    let in_pong: Vec<&Vec<(f64, f64)>> = lines
        .iter()
        .filter(|l| l.0 != "#000000" && l.0 != DER_GREY && l.1[0].0 >= 640.0)
        .map(|l| &l.1)
        .collect();
    // Agents in name order.
    let (flat, rising) = (in_pong[0], in_pong[1]);
    assert!(flat.iter().all(|p| p.1 == flat[0].1), "the flat agent's line is flat: {flat:?}");
    assert!(rising.iter().any(|p| p.1 != flat[0].1), "the other is not: {rising:?}");
    for dash in &dashes {
        assert!(dash.iter().all(|&(x, y)| x >= 640.0 && y == flat[0].1), "{dash:?} vs {flat:?}");
    }
    // Beside a column that is not a game score (a loss), no DER line.
    let files = plot_runs(&[dir], &out, "loss").unwrap();
    let svg = std::fs::read_to_string(&files[1]).unwrap();
    assert!(!svg.contains(DER_GREY), "no DER line beside a loss");
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = fresh_dir("results", "bad");
    let err = |inputs: &[PathBuf], metric: &str| {
        plot_runs(inputs, &dir.join("out"), metric).unwrap_err().to_string()
    };

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = err(std::slice::from_ref(&empty), "episode_score");
    assert!(e.contains("no run folders in") && e.contains("config.toml and metrics.csv"), "{e}");
    assert!(report_markdown(&[empty]).unwrap_err().to_string().contains("no run folders"));

    let no_metrics = dir.join("sweep/run0");
    std::fs::create_dir_all(&no_metrics).unwrap();
    std::fs::write(no_metrics.join("config.toml"), format!("[env]\n{PONG}\n")).unwrap();
    let e = err(&[dir.join("sweep")], "episode_score");
    assert!(e.contains("run0 has a config.toml but no metrics.csv"), "{e}");
    std::fs::remove_dir_all(dir.join("sweep")).unwrap();

    let runs = dir.join("runs");
    fake_run(&runs, PONG, "masp", 0, &[(1000, Some(1.0))], None);
    let e = err(&[runs], "episode_scor");
    assert!(e.contains("no column `episode_scor`; did you mean `episode_score`?"), "{e}");
    assert!(e.contains("valid columns: frames, agent_steps, episode_score, loss"), "{e}");
}

/// The binary's interface, as `cargo xtask experiment` calls it.
#[test]
fn masp_plot_and_report_write_where_asked() {
    let dir = fake_sweep("cli_in");
    let out = fresh_dir("results", "cli_out");
    let masp = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_masp")).args(args).output().unwrap();
        assert!(o.status.success(), "masp {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let (dir_s, out_s) = (dir.to_str().unwrap(), out.to_str().unwrap());
    masp(&["plot", dir_s, "--out", out_s]);
    for f in ["curves.png", "curves.svg"] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 0, "{f}");
    }
    let report = out.join("report.md");
    let printed = masp(&["report", dir_s, "--out", report.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), printed);
    assert!(
        printed.contains("| pong | rainbow | 3 | -18.0 | [-23.0, -13.0] | 0.076 | -19.3 | – | eval |"),
        "{printed}"
    );
}
