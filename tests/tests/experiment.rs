//! `masp experiment` end to end (what `cargo xtask experiment` runs after its build): the
//! toy-sweep preset (2 arms x 2 seeds) with the report and the plots, a rerun that skips
//! every run, a resumed run, Ctrl-C stopping the runs at a checkpoint, and a sweep where one
//! run fails, its dependent is not started, the others finish and a transfer run starts from
//! its source run's `S`; the Atari 100k preset's games and arms, and `--games`/`--arms`.

use std::path::Path;
use std::process::Command;

mod common;
use common::{fresh_dir, root};

/// Runs `masp experiment ARGS` in the repository root; (success, stderr + stdout).
fn experiment(args: &[&str]) -> (bool, String) {
    let out = Command::new(common::MASP)
        .arg("experiment")
        .args(args)
        .current_dir(root())
        // The toy network is tiny: one thread per run is fastest.
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("running masp experiment");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

/// The report's table rows as cells.
fn report_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

#[test]
fn toy_sweep_runs_reports_plots_then_skips_and_resumes() {
    let out = fresh_dir("experiment", "toy-sweep");
    let out_arg = out.to_str().unwrap();
    let (ok, log) = experiment(&["toy-sweep", "--jobs", "2", "--out", out_arg]);
    assert!(ok, "{log}");
    let dir = out.join("toy-sweep");
    let ids = ["rainbow-macros__0", "rainbow-macros__1", "masp__0", "masp__1"];
    for id in ids {
        let run = dir.join(format!("corridor__{id}"));
        for file in ["config.toml", "metrics.csv", "eval.json", "train.log", "checkpoint/state.json"] {
            assert!(run.join(file).exists(), "{} lacks {file}\n{log}", run.display());
        }
    }
    assert_eq!(log.matches(": finished in").count(), 4, "{log}");
    for file in ["report.md", "curves.png", "curves.svg"] {
        assert!(dir.join(file).exists(), "no {file}\n{log}");
    }
    let rows = report_rows(&dir.join("report.md"));
    let seeds = rows[0].iter().position(|h| h == "seeds").expect("a seeds column");
    let agent = rows[0].iter().position(|h| h == "agent").expect("an agent column");
    for arm in ["rainbow-macros", "masp"] {
        let row =
            rows.iter().find(|r| r[agent] == arm).unwrap_or_else(|| panic!("no row for {arm}: {rows:?}"));
        assert_eq!(row[seeds], "2", "{row:?}");
    }

    // Again: every run is skipped, the report is made again.
    let (ok, log) = experiment(&["toy-sweep", "--jobs", "2", "--out", out_arg]);
    assert!(ok, "{log}");
    assert!(
        log.contains("4 runs in") && log.contains("4 finished (skipped), 0 to resume, 0 to start"),
        "{log}"
    );
    assert!(!log.contains("starting"), "{log}");

    // A run with a checkpoint but no eval.json (interrupted) is resumed, not restarted.
    let run = dir.join("corridor__masp__1");
    std::fs::remove_file(run.join("eval.json")).unwrap();
    let (ok, log) = experiment(&["toy-sweep", "--jobs", "2", "--out", out_arg]);
    assert!(ok, "{log}");
    assert!(log.contains("3 finished (skipped), 1 to resume, 0 to start"), "{log}");
    assert!(log.contains("resuming corridor__masp__1") && run.join("eval.json").exists(), "{log}");
    let train_log = std::fs::read_to_string(run.join("train.log")).unwrap();
    // `masp train --resumable` applied the rule: it continued from the checkpoint.
    assert!(train_log.contains("corridor__masp__1: resuming from its checkpoint"), "{train_log}");
}

#[test]
fn a_failed_run_fails_its_dependents_only_and_transfer_loads_the_source_s() {
    let out = fresh_dir("experiment", "failures");
    let preset = out.join("mixed.toml");
    std::fs::write(
        &preset,
        r#"
[experiment]
description = "test: transfer, and a run that fails"
base = ["configs/toy.toml"]
frames = 300
set = ["run.eval_episodes=1", "run.target_score=2.0"]

[[arm]]
name = "source"

[[arm]]
name = "target"
after = "source"
set = ["masp.init_file={run:source}/checkpoint/similarity.json"]

[[arm]]
name = "bad"
set = ["masp.init_file=/nonexistent/similarity.json"]

[[arm]]
name = "child"
after = "bad"
"#,
    )
    .unwrap();
    let (ok, log) = experiment(&[preset.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!ok, "a failed run makes the command fail\n{log}");
    let dir = out.join("mixed");
    assert!(log.contains("2 of 4 runs failed"), "{log}");
    let bad_log = dir.join("corridor__bad__0").join("train.log");
    assert!(log.contains("corridor__bad__0: masp train exited with"), "{log}");
    assert!(log.contains(&bad_log.display().to_string()), "the failure names its log\n{log}");
    assert!(
        log.contains("corridor__child__0: not started: it waits for corridor__bad__0, which failed"),
        "{log}"
    );
    assert!(!dir.join("corridor__child__0").exists(), "{log}");
    for arm in ["source", "target"] {
        assert!(dir.join(format!("corridor__{arm}__0/eval.json")).exists(), "{arm}\n{log}");
    }
    // The transfer run's resolved config points at its source run's saved S.
    let config = std::fs::read_to_string(dir.join("corridor__target__0/config.toml")).unwrap();
    let source_s = dir.join("corridor__source__0/checkpoint/similarity.json");
    assert!(config.contains(&source_s.display().to_string()), "{config}");
    let target_log = std::fs::read_to_string(dir.join("corridor__target__0/train.log")).unwrap();
    assert!(target_log.contains("20 of 20 actions matched the saved S"), "{target_log}");
    // The finished runs are still reported.
    assert!(dir.join("report.md").exists() && dir.join("curves.png").exists(), "{log}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_runs_at_a_checkpoint_and_starts_no_new_one() {
    // A terminal's Ctrl-C: SIGINT to the foreground job's whole process group.
    stop_the_runs("ctrl-c", |pid| format!("-{pid}"));
}

#[cfg(unix)]
#[test]
fn sigint_to_the_experiment_alone_reaches_its_runs() {
    // `kill -INT PID`, as a person or a scheduler sends it: the runs hear it from masp.
    stop_the_runs("sigint", |pid| pid.to_string());
}

/// Starts a 3-run experiment two at a time, sends SIGINT to `target(pid)` while two run,
/// and checks that both stop at a checkpoint and the third never starts.
#[cfg(unix)]
fn stop_the_runs(name: &str, target: impl Fn(u32) -> String) {
    use std::os::unix::process::CommandExt;
    let out = fresh_dir("experiment", name);
    let preset = out.join("long.toml");
    // Budgets far beyond the test: the runs are still training when Ctrl-C comes.
    std::fs::write(
        &preset,
        "[experiment]\ndescription = \"test\"\nbase = [\"configs/toy.toml\"]\nseeds = 3\nframes = 10_000_000\n\
         set = [\"run.target_score=2.0\", \"run.eval_episodes=1\"]\n[[arm]]\nname = \"masp\"\n",
    )
    .unwrap();
    let child = Command::new(common::MASP)
        .args(["experiment", preset.to_str().unwrap(), "--jobs", "2", "--out", out.to_str().unwrap()])
        .current_dir(root())
        .env("RAYON_NUM_THREADS", "1")
        .stderr(std::process::Stdio::piped())
        // Its own process group, as a terminal's foreground job: Ctrl-C reaches the group.
        .process_group(0)
        .spawn()
        .unwrap();
    let dir = out.join("long");
    let started = |seed: u64| dir.join(format!("corridor__masp__{seed}/checkpoint/state.json")).exists();
    let t = std::time::Instant::now();
    while !(started(0) && started(1)) {
        assert!(t.elapsed().as_secs() < 60, "the runs did not start");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(Command::new("kill").args(["-INT", "--", &target(child.id())]).status().unwrap().success());
    let result = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{log}");
    assert!(
        log.contains("3 of 3 runs are not finished (2 interrupted at a checkpoint, 1 not started)"),
        "{log}"
    );
    for seed in [0, 1] {
        let run = dir.join(format!("corridor__masp__{seed}"));
        assert!(run.join("checkpoint/state.json").exists() && !run.join("eval.json").exists(), "{log}");
    }
    assert!(!dir.join("corridor__masp__2").exists(), "no run starts after Ctrl-C\n{log}");
}

/// The games of the Atari 100k reference table, in its order.
fn atari100k_games() -> Vec<String> {
    let csv = std::fs::read_to_string(root().join("crates/runner/data/atari100k.csv")).unwrap();
    csv.lines().filter(|l| !l.starts_with('#')).skip(1).map(|l| l.split(',').next().unwrap().into()).collect()
}

#[test]
fn atari100k_preset_runs_der_and_its_macro_arms_on_the_reference_games() {
    use masp_runner::experiment::{Plan, Preset};
    use masp_runner::{AgentPreset, MacroSource, RunConfig};
    let preset = Preset::load(&root(), "atari100k").unwrap();
    assert_eq!(preset.experiment.games, atari100k_games());
    assert_eq!(preset.experiment.frames, Some(400_000));
    let plan = Plan::expand(&preset, Path::new("out"), Some(1), None).unwrap();
    assert_eq!(plan.runs.len(), 26 * 3);
    // (arm, random macros, MASP): DER's settings under every arm.
    for (arm, count, masp) in [("der", 0, false), ("rainbow-macros", 64, false), ("masp", 64, true)] {
        let run = plan.runs.iter().find(|r| r.arm == arm && r.game == "frostbite").unwrap();
        let config = RunConfig::load(&run.configs, &run.sets).unwrap();
        assert_eq!(config.agent_preset, AgentPreset::Der, "{arm}");
        assert_eq!((config.run.frames, config.run.eval_episodes), (400_000, 100), "{arm}");
        let macros = match config.macros.source {
            MacroSource::None => 0,
            MacroSource::Random { count, .. } => count,
            ref other => panic!("{arm}: {other:?}"),
        };
        assert_eq!((macros, config.masp_enabled), (count, masp), "{arm}");
    }
}

#[test]
fn games_and_arms_pick_a_subset_and_name_the_choices_when_wrong() {
    let out = fresh_dir("experiment", "subset");
    let out_arg = out.to_str().unwrap();
    // --emit slurm plans without training: its manifest lists the runs.
    let (ok, log) = experiment(&[
        "atari100k",
        "--games",
        "road_runner,frostbite",
        "--arms",
        "der,masp",
        "--seeds",
        "2",
        "--emit",
        "slurm",
        "--out",
        out_arg,
    ]);
    assert!(ok, "{log}");
    let manifest = std::fs::read_to_string(out.join("atari100k/manifest.tsv")).unwrap();
    let ids: Vec<&str> =
        manifest.lines().map(|l| l.split('\t').next().unwrap().rsplit('/').next().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "frostbite__der__0",
            "frostbite__der__1",
            "road_runner__der__0",
            "road_runner__der__1",
            "frostbite__masp__0",
            "frostbite__masp__1",
            "road_runner__masp__0",
            "road_runner__masp__1",
        ],
        "the preset's order, not the option's"
    );
    assert!(log.contains("--report-only --games road_runner,frostbite --arms der,masp --seeds 2"), "{log}");

    let (ok, log) = experiment(&["atari100k", "--games", "frostbite,roadrunner", "--out", out_arg]);
    assert!(!ok, "{log}");
    let games = atari100k_games().join(", ");
    assert!(log.contains("has no game `roadrunner`; did you mean `road_runner`?"), "{log}");
    assert!(log.contains(&format!("its games: {games}")), "the error lists the preset's games:\n{log}");
    assert!(!out.join("atari100k/frostbite__der__0").exists(), "nothing starts on a bad name");
}
