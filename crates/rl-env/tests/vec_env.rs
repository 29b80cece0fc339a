//! `VecEnv` against plain sequential copies: same-step autoreset (the buffer holds the new
//! episode, `final_obs` the finished one), per-copy seeding, and the spec checks.

mod common;

use common::{one_hot, vector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rl_env::{Corridor, CorridorConfig, Env, KeyDoor, KeyDoorConfig, Obs, TimeLimit, VecEnv, VecStep};

fn corridors(n: usize, length: usize, max_steps: usize) -> VecEnv<Corridor> {
    VecEnv::new(
        (0..n).map(|_| Corridor::new(CorridorConfig { length, max_steps, ..Default::default() })).collect(),
    )
}

fn row(venv: &VecEnv<impl Env>, i: usize) -> Vec<f32> {
    let len = venv.spec().observation.len();
    vector(venv.obs())[i * len..(i + 1) * len].to_vec()
}

#[test]
fn termination_autoresets_and_keeps_the_terminal_obs() {
    let mut venv = corridors(3, 4, 10);
    venv.reset(Some(0));
    for t in 1..3 {
        venv.step(&[Corridor::RIGHT; 3]);
        assert!(venv.results().iter().all(|r| !r.done()));
        assert_eq!(row(&venv, 1), one_hot(4, t));
    }
    venv.step(&[Corridor::RIGHT; 3]);
    for i in 0..3 {
        let r = venv.results()[i];
        assert!(r.terminated && !r.truncated);
        assert_eq!((r.reward, r.info.episode_score, r.info.frames), (1.0, 1.0, 1));
        assert_eq!(vector(venv.final_obs(i)), one_hot(4, 3), "final_obs is the goal cell");
        assert_eq!(row(&venv, i), one_hot(4, 0), "obs is the new episode's start");
    }
    // The new episode goes on from the start, with a fresh score.
    venv.step(&[Corridor::RIGHT; 3]);
    assert_eq!(row(&venv, 2), one_hot(4, 1));
    assert_eq!(
        venv.results()[2],
        VecStep { info: rl_env::StepInfo { frames: 1, ..Default::default() }, ..Default::default() }
    );
}

#[test]
fn truncation_autoresets_and_keeps_the_last_obs() {
    let mut venv = corridors(2, 4, 3);
    venv.reset(Some(0));
    venv.step(&[Corridor::RIGHT, Corridor::NOOP]);
    venv.step(&[Corridor::RIGHT, Corridor::NOOP]);
    venv.step(&[Corridor::LEFT, Corridor::RIGHT]);
    for i in 0..2 {
        let r = venv.results()[i];
        assert!(r.truncated && !r.terminated, "copy {i}: {r:?}");
        assert_eq!(row(&venv, i), one_hot(4, 0));
    }
    assert_eq!(vector(venv.final_obs(0)), one_hot(4, 1));
    assert_eq!(vector(venv.final_obs(1)), one_hot(4, 1));
}

#[test]
fn only_finished_copies_reset() {
    let mut venv = corridors(2, 2, 10);
    venv.reset(Some(0));
    venv.step(&[Corridor::RIGHT, Corridor::NOOP]);
    assert!(venv.results()[0].terminated);
    assert!(!venv.results()[1].done());
    assert_eq!(row(&venv, 0), one_hot(2, 0));
    assert_eq!(row(&venv, 1), one_hot(2, 0));
    venv.step(&[Corridor::NOOP, Corridor::RIGHT]);
    assert!(!venv.results()[0].done());
    assert!(venv.results()[1].terminated);
    assert_eq!(vector(venv.final_obs(1)), one_hot(2, 1));
}

#[test]
fn matches_sequential_copies_over_random_actions() {
    // Random layouts make the copies depend on their generators, so this also checks
    // that autoreset continues each copy's generator (reset(None)) instead of reseeding it.
    let make = || {
        TimeLimit::new(
            KeyDoor::new(KeyDoorConfig {
                random_start: true,
                random_key: true,
                max_steps: 1000,
                ..Default::default()
            }),
            15,
        )
    };
    let n = 4;
    let mut venv = VecEnv::new((0..n).map(|_| make()).collect());
    let mut reference: Vec<_> = (0..n).map(|_| make()).collect();
    venv.reset(Some(100));
    for (i, env) in reference.iter_mut().enumerate() {
        assert_eq!(vector(env.reset(Some(100 + i as u64))), row(&venv, i));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut episodes_ended = 0;
    for _ in 0..200 {
        let actions: Vec<usize> = (0..n).map(|_| rng.random_range(0..5)).collect();
        venv.step(&actions);
        for (i, env) in reference.iter_mut().enumerate() {
            let step = env.step(actions[i]);
            let expected = VecStep {
                reward: step.reward,
                terminated: step.terminated,
                truncated: step.truncated,
                info: step.info,
            };
            assert_eq!(venv.results()[i], expected);
            if step.done() {
                episodes_ended += 1;
                assert_eq!(vector(step.obs), vector(venv.final_obs(i)));
                let fresh = vector(env.reset(None));
                assert_eq!(fresh, row(&venv, i));
            } else {
                assert_eq!(vector(step.obs), row(&venv, i));
            }
        }
    }
    assert!(episodes_ended >= 4 * (200 / 15), "every copy should have been cut off repeatedly");
}

#[test]
fn copies_get_consecutive_seeds_and_the_batch_repeats() {
    let config = KeyDoorConfig { random_start: true, random_key: true, ..Default::default() };
    let mut venv = VecEnv::new((0..3).map(|_| KeyDoor::new(config.clone())).collect());
    let first = vector(venv.reset(Some(42)));
    assert_eq!(vector(venv.reset(Some(42))), first);
    let len = venv.spec().observation.len();
    for i in 0..3 {
        let mut solo = KeyDoor::new(config.clone());
        assert_eq!(vector(solo.reset(Some(42 + i as u64))), first[i * len..(i + 1) * len]);
    }
    assert_ne!(first[..len], first[len..2 * len], "copies differ");
}

#[test]
fn seeds_near_the_top_wrap_instead_of_overflowing() {
    let config = KeyDoorConfig { random_start: true, random_key: true, ..Default::default() };
    let mut venv = VecEnv::new((0..2).map(|_| KeyDoor::new(config.clone())).collect());
    let obs = vector(venv.reset(Some(u64::MAX)));
    let mut solo = KeyDoor::new(config);
    assert_eq!(vector(solo.reset(Some(0))), obs[obs.len() / 2..]);
}

#[test]
fn reset_clears_results() {
    let mut venv = corridors(2, 2, 10);
    venv.step(&[Corridor::RIGHT, Corridor::RIGHT]);
    assert!(venv.results()[0].done());
    let obs = venv.reset(None);
    assert!(matches!(obs, Obs::Vector(v) if v.len() == 4));
    assert!(venv.results().iter().all(|r| *r == VecStep::default()));
}

#[test]
fn boxed_envs_of_one_spec_work() {
    let envs: Vec<Box<dyn Env>> = vec![
        Box::new(Corridor::new(CorridorConfig::default())),
        Box::new(TimeLimit::new(Corridor::new(CorridorConfig::default()), 1)),
    ];
    let mut venv = VecEnv::new(envs);
    venv.reset(Some(0));
    venv.step(&[Corridor::RIGHT, Corridor::RIGHT]);
    assert!(!venv.results()[0].done());
    assert!(venv.results()[1].truncated);
}

#[test]
#[should_panic(expected = "same spec")]
fn mismatched_specs_are_rejected() {
    let envs: Vec<Box<dyn Env>> = vec![
        Box::new(Corridor::new(CorridorConfig::default())),
        Box::new(KeyDoor::new(KeyDoorConfig::default())),
    ];
    VecEnv::new(envs);
}

#[test]
#[should_panic(expected = "one action per environment")]
fn wrong_action_count_is_rejected() {
    corridors(2, 4, 10).step(&[0]);
}

#[test]
#[should_panic(expected = "at least one")]
fn empty_is_rejected() {
    VecEnv::<Corridor>::new(Vec::new());
}
