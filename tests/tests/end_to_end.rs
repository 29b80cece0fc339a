//! `masp train` and `masp eval` end to end: the toy preset to its threshold, the run folder's
//! contents, resume, a NaN loss caught with the last good checkpoint kept, and a few thousand
//! frames of the default Pong config.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{fresh_dir, masp, toy, train_toy};

/// Trains and returns the run folder (the last line of stdout).
fn train(args: &[&str]) -> PathBuf {
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = masp(&all);
    assert!(ok, "masp {all:?} failed:\n{stderr}");
    PathBuf::from(stdout.lines().last().expect("the run folder is printed").trim())
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn metrics(run: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
    let i = rows[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    rows[1..].iter().map(|r| r[i].clone()).collect()
}

#[test]
fn toy_preset_trains_to_its_threshold_and_fills_the_run_folder() {
    let out = fresh_dir("end_to_end", "toy");
    let run = train(&["--config", &toy(), "--out", out.to_str().unwrap()]);
    let name = run.file_name().unwrap().to_str().unwrap();
    let parts: Vec<&str> = name.split("__").collect();
    assert_eq!(&parts[..3], ["corridor", "masp", "0"], "{name}: {{game}}__{{agent}}__{{seed}}__{{time}}");

    // The resolved config reads back to the same config as the preset.
    let resolved = masp_runner::RunConfig::read_resolved(&run.join("config.toml")).unwrap();
    let preset = masp_runner::RunConfig::load(&[toy().into()], &[]).unwrap();
    assert_eq!(resolved, preset);

    // Threshold: the greedy policy reaches the goal (raw score 1) in every evaluation episode.
    let eval = json(&run.join("eval.json"));
    assert_eq!(eval["episodes"], 5);
    assert_eq!(eval["mean"].as_f64(), Some(1.0), "{eval}");
    assert_eq!(eval["game"], "corridor");

    // Provenance: the binary's commit heads config.toml and is in eval.json.
    let commit = masp_runner::run_dir::COMMIT;
    assert!(!commit.is_empty());
    assert_eq!(eval["commit"], commit);
    let config_text = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config_text.starts_with(&format!("# masp commit {commit}: started\n[")), "{config_text}");

    let rows = metrics(&run);
    assert_eq!(rows[0].len(), 22);
    assert!(rows.len() >= 2, "at least one metrics row");
    let frames: Vec<u64> = column(&rows, "frames").iter().map(|f| f.parse().unwrap()).collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "{frames:?}");
    assert!(column(&rows, "loss").iter().any(|l| !l.is_empty()), "losses are logged");
    assert!(column(&rows, "s_mean_off_diagonal").iter().all(|s| !s.is_empty()), "S statistics with MASP");

    for file in [
        "agent.json",
        "agent.safetensors",
        "similarity.json",
        "similarity.safetensors",
        "masp_state.json",
        "masp_state.safetensors",
        "state.json",
    ] {
        assert!(run.join("checkpoint").join(file).exists(), "checkpoint/{file}");
    }
    // A finished run's last checkpoint leaves the replay out (nothing continues it).
    assert!(!run.join("checkpoint/replay.bin").exists(), "a finished run keeps no replay");
    let state = json(&run.join("checkpoint/state.json"));
    assert_eq!(state["frames"].as_u64(), frames.last().copied());

    // `masp eval` evaluates the checkpoint again and rewrites eval.json.
    std::fs::remove_file(run.join("eval.json")).unwrap();
    let (ok, stdout, stderr) = masp(&["eval", run.to_str().unwrap(), "--episodes", "3"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("mean 1.00"), "{stdout}");
    assert_eq!(json(&run.join("eval.json"))["episodes"], 3);
}

#[test]
fn resume_continues_the_frame_count() {
    let out = fresh_dir("end_to_end", "resume");
    // An unreachable target so the first session runs to its budget.
    let common = ["--set", "run.target_score=2.0", "--set", "run.eval_episodes=0"];
    let toy = toy();
    let mut args = vec!["--config", &toy, "--out", out.to_str().unwrap(), "--set", "run.frames=600"];
    args.extend_from_slice(&common);
    let run = train(&args);
    let first = json(&run.join("checkpoint/state.json"))["frames"].as_u64().unwrap();
    assert!((600..700).contains(&first), "{first}");
    let rows_before = metrics(&run).len();

    let run2 = train(&["--resume", run.to_str().unwrap(), "--set", "run.frames=1200"]);
    assert_eq!(run2, run);
    let state = json(&run.join("checkpoint/state.json"));
    let second = state["frames"].as_u64().unwrap();
    assert!((1200..1300).contains(&second), "{second}");
    let agent = json(&run.join("checkpoint/agent.json"));
    assert_eq!(agent["counters"]["frames"].as_u64(), Some(second));
    let rows = metrics(&run);
    assert!(rows.len() > rows_before, "the resumed session appends rows");
    let frames: Vec<u64> = column(&rows, "frames").iter().map(|f| f.parse().unwrap()).collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "frames continue: {frames:?}");
    assert!(frames.iter().any(|&f| f > first));
    let resolved = masp_runner::RunConfig::read_resolved(&run.join("config.toml")).unwrap();
    assert_eq!(resolved.run.frames, 1200, "the resolved config records the new budget");
    // One provenance line per session, the first kept.
    let commit = masp_runner::run_dir::COMMIT;
    let config_text = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let sessions: Vec<&str> = config_text.lines().take_while(|l| l.starts_with("# masp commit")).collect();
    assert_eq!(
        sessions,
        [format!("# masp commit {commit}: started"), format!("# masp commit {commit}: resumed")]
    );
}

/// What a checkpoint holds of the agent's experience and MASP's state: the replay's
/// transition count, `masp_state.json` (counters, Adam's step) and the bits of Adam's
/// moments of `S`.
fn saved_state(checkpoint: &Path) -> (usize, Value, Vec<Vec<u32>>) {
    let agent = rainbow::Agent::load(checkpoint).unwrap();
    let tensors =
        candle_core::safetensors::load(checkpoint.join("masp_state.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let bits = |name: &str| -> Vec<u32> {
        tensors[name].flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    };
    (
        agent.learner().replay().len(),
        json(&checkpoint.join("masp_state.json")),
        vec![bits("adam.m"), bits("adam.v")],
    )
}

/// Starts `masp train ARGS`, waits until its checkpoint has passed `frames`, then presses
/// Ctrl-C (SIGINT); returns the run folder and stderr.
fn train_then_interrupt(args: &[&str], frames: u64) -> (PathBuf, String) {
    let mut child = Command::new(common::MASP)
        .arg("train")
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = PathBuf::from(args[args.iter().position(|a| *a == "--out").unwrap() + 1]);
    let passed = || -> bool {
        let Some(run) = std::fs::read_dir(&out).ok().and_then(|mut d| d.next()).and_then(|e| e.ok()) else {
            return false;
        };
        let state = run.path().join("checkpoint/state.json");
        let read = std::fs::read_to_string(state).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok());
        read.and_then(|s| s["frames"].as_u64()).is_some_and(|f| f >= frames)
    };
    while !passed() {
        // A step budget, not a clock: the run must still be going while no checkpoint has
        // passed `frames` (its budget is larger, so it writes one before it ends).
        assert!(child.try_wait().unwrap().is_none(), "the run ended with no checkpoint past frame {frames}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let result = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&result.stdout).into_owned(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    );
    assert!(result.status.success() && stderr.contains("interrupted at frame"), "{stderr}");
    (PathBuf::from(stdout.lines().last().unwrap().trim()), stderr)
}

#[test]
fn resume_restores_the_replay_and_masps_optimiser_state() {
    let out = fresh_dir("end_to_end", "resume_state");
    let toy = toy();
    // A budget it will not reach and an unreachable target: Ctrl-C stops it, after a
    // checkpoint past frame 800 (past learning_starts, 100 agent steps, and several meta
    // steps, one every 4 updates).
    let args = [
        "--config",
        &toy,
        "--out",
        out.to_str().unwrap(),
        "--set",
        "run.frames=1000000",
        "--set",
        "run.checkpoint_interval=400",
        "--set",
        "run.target_score=2.0",
        "--set",
        "run.eval_episodes=0",
    ];
    let (run, stderr) = train_then_interrupt(&args, 800);
    assert!(stderr.contains("MB with the replay buffer ("), "the checkpoint's size is said:\n{stderr}");
    let checkpoint = run.join("checkpoint");
    let saved = saved_state(&checkpoint);
    let (replay, header, moments) = &saved;
    assert!(*replay > 100, "the interrupted run's replay is saved: {replay} transitions");
    assert!(
        header["meta_steps"].as_u64().unwrap() >= 2 && header["optimizer"]["step"] == header["meta_steps"],
        "{header}"
    );
    assert!(moments[1].iter().any(|&v| v != 0), "Adam's second moment has moved");

    // Resuming with the budget set to the frames already done takes no step: the checkpoint
    // it writes again is MASP's state as loaded (and, the run now finished, no replay).
    let frames = json(&checkpoint.join("state.json"))["frames"].as_u64().unwrap().to_string();
    let budget = format!("run.frames={frames}");
    let (ok, _, stderr) = masp(&["train", "--resume", run.to_str().unwrap(), "--set", &budget]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("no replay buffer"), "{stderr}");
    assert!(
        stderr.contains(&format!("with {replay} transitions in the replay")),
        "the replay as saved:\n{stderr}"
    );
    let (resumed_replay, resumed_header, resumed_moments) = saved_state(&checkpoint);
    assert_eq!(&resumed_header, header, "MASP's counters and Adam's step");
    assert!(&resumed_moments == moments, "Adam's moments of S, bit for bit");
    assert_eq!(resumed_replay, 0, "the finished run's last checkpoint leaves the replay out");

    // Extending it: the resume says that the replay starts empty, and why.
    let (ok, _, stderr) = masp(&["train", "--resume", run.to_str().unwrap(), "--set", "run.frames=1"]);
    assert!(ok && stderr.contains("the checkpoint holds no replay buffer"), "{stderr}");
}

/// `masp train` takes MASP's meta step through the learner's own `lookahead_jvp` with the
/// SGD lookahead, and through the generic path only when the config asks for it.
#[test]
fn masp_train_takes_the_meta_step_path_the_config_asks_for() {
    for (lookahead, learner_steps) in [("sgd", true), ("adam_preconditioned", false)] {
        let out = fresh_dir("end_to_end", &format!("meta_path_{lookahead}"));
        let set = format!("masp.lookahead=\"{lookahead}\"");
        let sets = [set.as_str(), "run.frames=1000", "run.target_score=1000.0", "run.eval_episodes=0"];
        let (ok, _, stderr) = train_toy(&out, &sets);
        assert!(ok, "{stderr}");
        let line = stderr.lines().find(|l| l.starts_with("MASP meta steps this session:")).expect(&stderr);
        let counts: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let [learner, generic] = counts[..] else { panic!("{line}") };
        // Updates from agent step 100 (about frame 440 here), a meta step every 4.
        if learner_steps {
            assert!(learner > 20 && generic == 0, "{line}");
        } else {
            assert!(learner == 0 && generic > 20, "{line}");
        }
    }
}

/// The frames of the run's last checkpoint, once its state file reads whole.
fn checkpoint_frames(run: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(run.join("checkpoint/state.json")).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["frames"].as_u64()
}

#[test]
fn a_run_killed_again_and_again_resumes_to_the_end_with_clean_logs() {
    let run = fresh_dir("end_to_end", "sigkill").join("corridor__masp__0");
    let dir = run.to_str().unwrap();
    let toy = toy();
    // No early stop; a checkpoint every 300 frames and a row every 100, so kills land
    // between checkpoints with rows already written past them.
    let config = [
        "--set",
        "run.frames=3000",
        "--set",
        "run.target_score=1000.0",
        "--set",
        "run.checkpoint_interval=300",
        "--set",
        "run.log_interval=100",
        "--set",
        "run.eval_episodes=2",
    ];
    let start = |resume: bool| {
        let mut cmd = Command::new(common::MASP);
        cmd.arg("train").env("RAYON_NUM_THREADS", "1");
        if resume {
            cmd.args(["--resume", dir]);
        } else {
            cmd.args(["--config", &toy, "--run-dir", dir]).args(config);
        }
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
    };
    let mut kills = 0;
    for round in 0..5u64 {
        let mut child = start(round > 0);
        let before = checkpoint_frames(&run).unwrap_or(0);
        // Wait for a checkpoint past the last one, then kill at a moment that differs by round.
        while checkpoint_frames(&run).is_none_or(|f| f <= before) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(40 + 37 * round));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no handler runs
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 3, "only {kills} kills landed before the run finished");
    let status = start(true).wait().unwrap();
    assert!(status.success(), "the last resume finishes the run");

    let rows = metrics(&run);
    assert_eq!(rows[0].len(), 22);
    assert!(rows[1..].iter().all(|r| r.len() == 22), "every row is whole");
    let frames: Vec<u64> = column(&rows, "frames").iter().map(|f| f.parse().unwrap()).collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "frames rise strictly: {frames:?}");
    assert!(*frames.last().unwrap() >= 3000, "{frames:?}");
    json(&run.join("eval.json"));
    json(&run.join("checkpoint/state.json"));
    masp_runner::RunConfig::read_resolved(&run.join("config.toml")).unwrap();
}

#[test]
fn run_dir_trains_in_exactly_that_folder_and_refuses_one_with_a_checkpoint() {
    // A sweep creates the folder (with its log file) before it starts the run.
    let dir = fresh_dir("end_to_end", "run_dir").join("corridor__masp__0");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train.log"), "").unwrap();
    let toy = toy();
    let dir_arg = dir.to_str().unwrap();
    let budget = ["--set", "run.frames=300", "--set", "run.target_score=2.0", "--set", "run.eval_episodes=1"];
    let mut args = vec!["--config", &toy, "--run-dir", dir_arg];
    args.extend_from_slice(&budget);
    assert_eq!(train(&args), dir);
    assert!(dir.join("checkpoint/state.json").exists() && dir.join("eval.json").exists());

    let mut again = vec!["train", "--config", &toy, "--run-dir", dir_arg];
    again.extend_from_slice(&budget);
    let (ok, _, stderr) = masp(&again);
    assert!(!ok && stderr.contains("already holds a checkpoint") && stderr.contains("--resume"), "{stderr}");
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let out = fresh_dir("end_to_end", "nan");
    // A learning rate of 1e30 sends every parameter to about 1e30 at the first Adam step, so
    // the next update's forward pass overflows and its loss is NaN: a real divergence, with
    // nothing injected. Updates start at agent step 300, after the checkpoint at frame 200.
    let (ok, _, stderr) = train_toy(
        &out,
        &[
            "agent.learner.lr=1e30",
            "agent.learner.learning_starts=300",
            "run.checkpoint_interval=200",
            "run.target_score=2.0",
        ],
    );
    assert!(!ok, "the run should fail");
    let failed_at: u64 = stderr
        .split("training stopped at update ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failing update named: {stderr}"));
    assert!(stderr.contains("not finite"), "{stderr}");
    assert!(stderr.contains("last good checkpoint"), "{stderr}");
    let run = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path();
    let state = json(&run.join("checkpoint/state.json"));
    let frames = state["frames"].as_u64().unwrap();
    assert!(frames >= 200, "a checkpoint after frame 0 was kept: {frames}");
    assert!(state["updates"].as_u64().unwrap() < failed_at, "the checkpoint predates the NaN: {state}");
    assert!(!run.join("eval.json").exists());
    // The kept checkpoint loads and plays.
    let (ok, _, stderr) = masp(&["eval", run.to_str().unwrap(), "--episodes", "1"]);
    assert!(ok, "{stderr}");
}

/// Trains 3000 frames with a small replay and an early learning start (so memory stays
/// small and updates run) and one evaluation episode; checks the frame count and returns the
/// run folder and its eval.json.
fn train_a_few_thousand_frames(name: &str, extra: &[&str]) -> (PathBuf, Value) {
    let out = fresh_dir("end_to_end", name);
    let mut args = vec!["--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    for set in ["run.frames=3000", "run.log_interval=1000", "run.eval_episodes=1"] {
        args.extend_from_slice(&["--set", set]);
    }
    args.extend_from_slice(&[
        "--set",
        "agent.replay.capacity=5000",
        "--set",
        "agent.learner.learning_starts=100",
    ]);
    let run = train(&args);
    let rows = metrics(&run);
    let frames: Vec<u64> = column(&rows, "frames").iter().map(|f| f.parse().unwrap()).collect();
    assert!(*frames.last().unwrap() >= 3000);
    let eval = json(&run.join("eval.json"));
    assert_eq!(eval["episodes"], 1);
    (run, eval)
}

#[test]
fn pong_default_config_trains_a_few_thousand_frames() {
    let (run, eval) = train_a_few_thousand_frames("pong", &[]);
    assert!(run.file_name().unwrap().to_str().unwrap().starts_with("pong__masp__0__"));
    assert_eq!(eval["protocol"], "machado");
    // Raw Pong scores lie in [-21, 21].
    let score = eval["scores"][0].as_f64().unwrap();
    assert!((-21.0..=21.0).contains(&score), "{score}");
    let resolved = masp_runner::RunConfig::read_resolved(&run.join("config.toml")).unwrap();
    assert!(resolved.masp_enabled);
    assert_eq!(resolved.agent.replay.capacity, 5000);
}

#[test]
fn airstriker_preset_trains_a_few_thousand_frames_on_the_genesis_core() {
    let preset = common::root().join("configs/games/airstriker.toml");
    // Random play ends Airstriker in about 1500 frames; the cap bounds a passive policy. Two
    // training copies and two evaluation copies: isolated cores, all in one process.
    let extra = [
        "--config",
        preset.to_str().unwrap(),
        "--set",
        "env.max_episode_frames=6000",
        "--set",
        "run.num_envs=2",
        "--set",
        "run.eval_envs=2",
    ];
    let (run, eval) = train_a_few_thousand_frames("airstriker", &extra);
    assert!(run.file_name().unwrap().to_str().unwrap().starts_with("Airstriker-Genesis-v0__masp__0__"));
    assert_eq!(eval["game"], "Airstriker-Genesis-v0");
    // Airstriker scores 20 a kill.
    let score = eval["scores"][0].as_f64().unwrap();
    assert!(score >= 0.0 && score % 20.0 == 0.0, "{score}");
}
