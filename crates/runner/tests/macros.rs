//! `masp record` and `masp mine-macros` round trip on the corridor toy (configs/toy.toml):
//! random games recorded, mined into a pool that `masp train` loads and trains with, then
//! that run's policy recorded with its macros expanded into primitives. Every recorded game
//! is replayed in a fresh corridor (deterministic: no slips) and must end at its last action
//! with its recorded return, so a wrongly expanded or cut macro fails.

use std::path::{Path, PathBuf};

use macro_actions::{ActionPool, TrajectorySet};
use rl_env::{Corridor, CorridorConfig, Env};

mod common;
use common::{fresh_dir, masp, toy};

fn ok(args: &[&str]) -> (String, String) {
    let (success, stdout, stderr) = masp(args);
    assert!(success, "masp {args:?}:\n{stderr}");
    (stdout, stderr)
}

/// Replays each episode in the toy preset's corridor: it must end exactly at its last
/// action, with the recorded return as the game score.
fn replay(set: &TrajectorySet) {
    assert_eq!(set.action_names, Corridor::ACTION_NAMES);
    let config = CorridorConfig { length: 10, max_steps: 40, ..CorridorConfig::default() };
    for (i, episode) in set.episodes.iter().enumerate() {
        let mut env = Corridor::new(config.clone());
        env.reset(Some(0));
        let n = episode.actions.len();
        for (t, &a) in episode.actions.iter().enumerate() {
            let step = env.step(a);
            assert_eq!(step.done(), t + 1 == n, "episode {i} ends at its last action, not at step {}", t + 1);
            if step.done() {
                assert_eq!(step.info.episode_score, episode.episode_return, "episode {i}'s return");
            }
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn record_mine_train_and_record_the_trained_policy() {
    let dir = fresh_dir("macros", "round_trip");
    let toy = toy();

    // 1. Random play.
    let random = dir.join("random.jsonl");
    ok(&["record", "--config", &toy, "--random", "--episodes", "30", "--out", path(&random)]);
    let set = TrajectorySet::load(&random).unwrap();
    assert_eq!(set.episodes.len(), 30);
    replay(&set);
    // (Random play never reaches the goal here: NOOP and BACK undo progress, so every
    // game is cut at max_steps.)

    // 2. Mining: the pool is the corridor's primitives plus the macros asked for.
    let pool_file = dir.join("pool.json");
    let (stdout, _) =
        ok(&["mine-macros", path(&random), "--top-k", "6", "--max-len", "5", "--out", path(&pool_file)]);
    let pool = ActionPool::load(&pool_file).unwrap();
    assert_eq!(pool.primitive_names(), Corridor::ACTION_NAMES);
    assert_eq!(pool.num_macros(), 6, "{stdout}");
    assert!(pool.macros().iter().all(|m| (3..=5).contains(&m.len())));
    assert!(stdout.contains(pool.name(4)), "the macros are listed:\n{stdout}");

    // Asking for more than the data holds warns with the count.
    let (_, stderr) =
        ok(&["mine-macros", path(&random), "--top-k", "1000", "--out", path(&dir.join("all.toml"))]);
    let all = ActionPool::load(dir.join("all.toml")).unwrap();
    assert!(all.num_macros() < 1000);
    assert!(
        stderr.contains(&format!("warning: mined {} of the 1000 macros asked for", all.num_macros())),
        "{stderr}"
    );

    // 3. `masp train` accepts the pool, and trains with it.
    let source = format!("macros.source={{ kind = \"file\", path = \"{}\" }}", path(&pool_file));
    let (resolved, _) = ok(&["train", "--dry-run", "--config", &toy, "--set", &source]);
    assert!(resolved.contains("kind = \"file\""), "{resolved}");
    let runs = dir.join("runs");
    let budget = ["--set", "run.frames=400", "--set", "run.eval_episodes=1", "--set", "run.target_score=2.0"];
    let mut args = vec!["train", "--config", &toy, "--set", &source, "--out", path(&runs)];
    args.extend_from_slice(&budget);
    let (stdout, stderr) = ok(&args);
    assert!(stderr.contains("10 actions (4 primitives, 6 macros)"), "{stderr}");
    let run = PathBuf::from(stdout.lines().last().unwrap().trim());

    // 4. The trained policy, macros and all, recorded as primitives.
    let trained = dir.join("trained.jsonl");
    ok(&["record", "--checkpoint", path(&run), "--episodes", "5", "--out", path(&trained)]);
    let set = TrajectorySet::load(&trained).unwrap();
    assert_eq!(set.episodes.len(), 5);
    replay(&set);
}

#[test]
fn bad_record_and_mine_input_gets_clear_errors() {
    let dir = fresh_dir("macros", "bad");
    let toy = toy();
    let (success, _, stderr) = masp(&["record", "--config", &toy, "--episodes", "1", "--out", "x.jsonl"]);
    assert!(!success && stderr.contains("--random") && stderr.contains("--checkpoint"), "{stderr}");
    let (success, _, stderr) =
        masp(&["record", "--checkpoint", path(&dir), "--episodes", "1", "--out", "x.jsonl"]);
    assert!(!success && stderr.contains("is not a run folder"), "{stderr}");

    // Trajectories of two action sets do not mix.
    let corridor = dir.join("corridor.jsonl");
    ok(&["record", "--config", &toy, "--random", "--episodes", "1", "--out", path(&corridor)]);
    let other = dir.join("other.jsonl");
    let set = TrajectorySet { action_names: vec!["A".into(), "B".into()], episodes: Vec::new() };
    set.save(&other).unwrap();
    let (success, _, stderr) = masp(&[
        "mine-macros",
        path(&corridor),
        path(&other),
        "--top-k",
        "2",
        "--out",
        path(&dir.join("p.json")),
    ]);
    assert!(!success && stderr.contains("mine trajectories of one game and action set together"), "{stderr}");
    let (success, _, stderr) = masp(&[
        "mine-macros",
        path(&corridor),
        "--top-k",
        "2",
        "--min-len",
        "1",
        "--out",
        path(&dir.join("p.json")),
    ]);
    assert!(!success && stderr.contains("min_n"), "{stderr}");
}
