//! `masp plot` and `masp report` on fake run folders (config.toml, metrics.csv and eval.json
//! with known numbers): the report's means, standard deviations and human-normalised scores
//! against hand computation, the plots' files and their one line per agent, and the errors
//! for bad input.

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

#[test]
fn report_gives_mean_std_seeds_and_hns_per_game_and_agent() {
    let dir = fake_sweep("report");
    let table = report_markdown(&[dir]).unwrap();
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    // Pong's random and human scores: -20.7 and 14.6.
    // rainbow: evals -20, -18, -16: mean -18, sd 2; HNS (-18 + 20.7) / 35.3 = 0.0765.
    // masp: last-5-row means -18 and -14: mean -16, sd sqrt(8) = 2.83; HNS 4.7 / 35.3 = 0.1331.
    // corridor: one seed, eval 0.8, no reference figures.
    assert_eq!(
        rows,
        [
            "| game | agent | score (mean ± std) | seeds | HNS | final |",
            "| corridor | masp | 0.8 | 1 | – | eval |",
            "| pong | masp | -16.0 ± 2.8 | 2 | 0.133 | training |",
            "| pong | rainbow | -18.0 ± 2.0 | 3 | 0.076 | eval |",
        ],
        "{table}"
    );
    assert!(table.contains("last 5 rows"), "the report says how final scores were taken:\n{table}");
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

/// The stroke colours of an SVG's coloured `<polyline .../>` elements (the axes are black).
fn coloured_lines(svg: &str) -> Vec<String> {
    let stroke = |p: &str| p.split("stroke=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    svg.split("<polyline").skip(1).map(stroke).filter(|s| s != "#000000").collect()
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
    assert!(printed.contains("| pong | rainbow | -18.0 ± 2.0 | 3 | 0.076 | eval |"), "{printed}");
}
