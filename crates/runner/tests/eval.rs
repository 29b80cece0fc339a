//! Evaluation on its own env copies (`run.eval_envs`): repeatable for a seed and a copy
//! count, the asked-for number of episodes, the training agent left as it was; and
//! `masp eval --video`'s GIFs, decoded and checked against the games' scores and frames; and
//! `masp eval --policy noisy`, training's policy, into its own file.

mod common;

use std::path::Path;

use common::{fresh_dir, masp, toy, train_toy};
use masp_runner::{
    compose, evaluate, evaluate_as, evaluate_filmed, read_gif, EvalPolicy, EvalReport, RunConfig, Videos,
};
use rainbow::Agent;
use rl_env::{Corridor, CorridorConfig, Env};

const LENGTH: usize = 5;
const MAX_STEPS: usize = 40;

/// The toy preset (16 random macros) on a corridor of 5 cells, with uniformly random
/// evaluation actions: games that reach the goal at different lengths and games truncated
/// at 40 steps, so the scores show which draws were made.
fn config(sets: &[&str]) -> RunConfig {
    let mut all = vec![
        format!("env.length={LENGTH}"),
        format!("env.max_steps={MAX_STEPS}"),
        "agent.exploration.eval_epsilon=1.0".to_string(),
    ];
    all.extend(sets.iter().map(|s| s.to_string()));
    RunConfig::load(&[toy().into()], &all).unwrap()
}

/// An untrained agent of `config` with its pool, as training builds them (one env copy).
fn agent(config: &RunConfig) -> (Agent, macro_actions::ActionPool) {
    let base = compose::base_envs(config, true, 1).unwrap();
    let pool = compose::action_pool(config, base[0].as_ref()).unwrap();
    let agent = Agent::new(config.agent.clone(), &base[0].spec().observation, pool.len(), 1).unwrap();
    (agent, pool)
}

fn fingerprint(report: &EvalReport) -> (Vec<f64>, u64) {
    (report.scores.clone(), report.eval_frames)
}

#[test]
fn scores_repeat_for_a_seed_and_copy_count_and_the_training_agent_is_left_as_it_was() {
    let three = config(&["run.eval_envs=3"]);
    let (mut agent, pool) = agent(&three);
    let (explore_rng, counters) = (agent.explorer().rng().clone(), agent.counters());

    let first = evaluate(&three, &mut agent, &pool, 7).unwrap();
    assert_eq!((first.episodes, first.scores.len()), (7, 7), "7 episodes over 3 copies: 3 + 2 + 2");
    assert!(first.scores.contains(&1.0), "no game reached the goal: {:?}", first.scores);
    assert!(first.eval_frames < 7 * MAX_STEPS as u64, "every game ran to the time limit");
    assert_eq!(fingerprint(&evaluate(&three, &mut agent, &pool, 7).unwrap()), fingerprint(&first));

    assert!(!agent.is_eval(), "evaluation put the agent in evaluation mode");
    assert_eq!(agent.explorer().rng(), &explore_rng, "evaluation drew from training's exploration RNG");
    assert_eq!(agent.counters(), counters);

    // Another seed plays other games; so does another number of copies.
    let other_seed = config(&["run.eval_envs=3", "run.seed=1"]);
    assert_ne!(fingerprint(&evaluate(&other_seed, &mut agent, &pool, 7).unwrap()), fingerprint(&first));
    let one = config(&["run.eval_envs=1"]);
    let sequential = evaluate(&one, &mut agent, &pool, 7).unwrap();
    assert_eq!(sequential.episodes, 7);
    assert_ne!(fingerprint(&sequential), fingerprint(&first));
    // More copies than episodes: one game on each of 2 copies.
    assert_eq!(evaluate(&config(&["run.eval_envs=16"]), &mut agent, &pool, 2).unwrap().episodes, 2);
}

#[test]
fn eval_envs_zero_is_refused_by_name() {
    let err = RunConfig::load(&[toy().into()], &["run.eval_envs=0".into()]).unwrap_err();
    assert!(format!("{err:#}").contains("[run] eval_envs = 0"), "{err:#}");
}

/// The corridor's picture with the agent on the goal.
fn goal_screen() -> Vec<u8> {
    let mut corridor =
        Corridor::new(CorridorConfig { length: LENGTH, max_steps: MAX_STEPS, ..Default::default() });
    corridor.reset(Some(0));
    for _ in 1..LENGTH {
        corridor.step(Corridor::RIGHT);
    }
    corridor.render_rgb().unwrap().pixels
}

#[test]
fn videos_hold_one_frame_per_primitive_step_of_the_scored_games() {
    let dir = fresh_dir("eval", "videos");
    let config = config(&["run.eval_envs=2"]);
    let (mut agent, pool) = agent(&config);
    let videos = Videos { dir: dir.clone(), count: 5 };
    let (report, written) = evaluate_filmed(&config, &mut agent, &pool, 5, &videos).unwrap();
    let expected: Vec<_> = (0..5).map(|k| dir.join(format!("episode_{k:03}.gif"))).collect();
    assert_eq!(written, expected);
    assert!(report.scores.contains(&1.0) && report.scores.contains(&0.0), "{:?}", report.scores);

    // Filming changes nothing of the games.
    let unfilmed = evaluate(&config, &mut agent, &pool, 5).unwrap();
    assert_eq!(fingerprint(&report), fingerprint(&unfilmed));

    // Video k is the game of scores[k]: it ends on the goal when that game scored, and runs
    // to the time limit (its reset screen plus 40 steps) when it did not.
    let goal = goal_screen();
    let mut steps = 0;
    for (k, path) in written.iter().enumerate() {
        let frames = read_gif(path).unwrap();
        let reached = frames.last() == Some(&goal);
        assert_eq!(reached, report.scores[k] == 1.0, "video {k}: score {}", report.scores[k]);
        if !reached {
            assert_eq!(frames.len(), 1 + MAX_STEPS, "video {k}");
        }
        steps += frames.len() as u64 - 1;
    }
    // A frame per primitive step, macros' included: a corridor step is one frame.
    assert_eq!(steps, report.eval_frames);
}

#[test]
fn masp_eval_writes_videos_and_refuses_more_videos_than_episodes() {
    let out = fresh_dir("eval", "cli");
    let (ok, stdout, stderr) = train_toy(&out, &["run.frames=200", "run.eval_episodes=1"]);
    assert!(ok, "{stderr}");
    let run = stdout.lines().last().unwrap().trim().to_string();
    let (ok, stdout, stderr) = masp(&["eval", &run, "--episodes", "3", "--video", "2"]);
    assert!(ok, "{stderr}");
    let videos = Path::new(&run).join("videos");
    assert!(stdout.contains(&format!("video: {}", videos.join("episode_001.gif").display())), "{stdout}");
    assert_eq!(std::fs::read_dir(&videos).unwrap().count(), 2);
    for name in ["episode_000.gif", "episode_001.gif"] {
        assert!(read_gif(&videos.join(name)).unwrap().len() >= 2, "{name} shows no step");
    }

    let (ok, _, stderr) = masp(&["eval", &run, "--episodes", "3", "--video", "4"]);
    assert!(!ok && stderr.contains("4 videos asked of an evaluation of 3 episodes"), "{stderr}");
}

/// The noisy policy (training's: a fresh noise sample every step) plays other games than the
/// greedy one, repeatably for a seed, and leaves the training agent as it was. Greedy here
/// means eval epsilon 0: the toy agent's untrained network then picks one action per state.
#[test]
fn the_noisy_policy_repeats_for_a_seed_and_differs_from_the_greedy_one() {
    let config = config(&["run.eval_envs=3", "agent.exploration.eval_epsilon=0.0"]);
    let (mut agent, pool) = agent(&config);
    let noise = agent.learner().online().noise_factors();
    let greedy = evaluate(&config, &mut agent, &pool, 6).unwrap();
    let noisy = evaluate_as(&config, &mut agent, &pool, 6, EvalPolicy::Noisy).unwrap();
    assert_eq!((greedy.policy, noisy.policy), (EvalPolicy::Greedy, EvalPolicy::Noisy));
    assert_ne!(fingerprint(&noisy), fingerprint(&greedy));
    let again = evaluate_as(&config, &mut agent, &pool, 6, EvalPolicy::Noisy).unwrap();
    assert_eq!(fingerprint(&again), fingerprint(&noisy));
    assert_eq!(agent.learner().online().noise_factors(), noise, "training's noise sample is back");
}

/// `masp eval --policy noisy` writes `eval-noisy.json` and leaves the run's `eval.json` alone;
/// it refuses videos, which film the protocol's evaluation.
#[test]
fn masp_eval_noisy_writes_its_own_report() {
    let out = fresh_dir("eval", "noisy");
    let (ok, stdout, stderr) = train_toy(&out, &["run.frames=200", "run.eval_episodes=1"]);
    assert!(ok, "{stderr}");
    let run = Path::new(stdout.lines().last().unwrap().trim()).to_path_buf();
    let protocol = std::fs::read(run.join("eval.json")).unwrap();
    let (ok, stdout, stderr) = masp(&["eval", run.to_str().unwrap(), "--episodes", "3", "--policy", "noisy"]);
    assert!(ok && stdout.contains("noisy policy"), "{stdout}{stderr}");
    let report: EvalReport =
        serde_json::from_slice(&std::fs::read(run.join("eval-noisy.json")).unwrap()).unwrap();
    assert_eq!((report.policy, report.episodes), (EvalPolicy::Noisy, 3));
    assert_eq!(std::fs::read(run.join("eval.json")).unwrap(), protocol, "eval.json untouched");

    let (ok, _, stderr) = masp(&["eval", run.to_str().unwrap(), "--policy", "noisy", "--video", "1"]);
    assert!(!ok && stderr.contains("leave out --video with --policy noisy"), "{stderr}");
}
