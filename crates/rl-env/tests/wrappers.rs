//! The wrappers over the real environments and inside a `VecEnv`.

mod common;

use common::{one_hot, vector};
use rl_env::{ClipReward, Corridor, CorridorConfig, Env, KeyDoor, KeyDoorConfig, TimeLimit, VecEnv};

#[test]
fn time_limit_shorter_than_the_env_limit_truncates_first() {
    let mut env = TimeLimit::new(Corridor::new(CorridorConfig::default()), 10);
    env.reset(Some(0));
    for _ in 0..9 {
        assert!(!env.step(Corridor::RIGHT).done());
    }
    let s = env.step(Corridor::RIGHT);
    assert!(s.truncated && !s.terminated);
    assert_eq!(vector(s.obs), one_hot(50, 10), "the observation passes through untouched");
    assert_eq!(env.inner().position(), 10);
    // A reset starts a full new allowance.
    env.reset(None);
    assert_eq!(env.elapsed_steps(), 0);
    assert!(!env.step(Corridor::RIGHT).done());
}

#[test]
fn env_limit_shorter_than_the_time_limit_passes_through() {
    let inner = Corridor::new(CorridorConfig { length: 5, max_steps: 6, ..Default::default() });
    let mut env = TimeLimit::new(inner, 100);
    for _ in 0..5 {
        env.step(Corridor::NOOP);
    }
    let s = env.step(Corridor::NOOP);
    assert!(s.truncated && !s.terminated);
}

#[test]
fn clipped_key_door_keeps_the_raw_score() {
    let config =
        KeyDoorConfig { key_reward: 3.0, door_reward: 10.0, step_penalty: -2.0, ..Default::default() };
    let mut env = ClipReward::new(TimeLimit::new(KeyDoor::new(config), 50));
    env.reset(Some(0));
    let (u, d, l, r, p) = (KeyDoor::UP, KeyDoor::DOWN, KeyDoor::LEFT, KeyDoor::RIGHT, KeyDoor::PICKUP);
    let plan = [[d; 4].as_slice(), &[r; 6], &[u, p, d], &[l; 3], &[d]].concat();
    let (mut clipped, mut last_info) = (0.0, None);
    for &a in &plan {
        let s = env.step(a);
        assert!(s.reward.abs() <= 1.0);
        assert_eq!(s.reward, s.info.raw_reward.clamp(-1.0, 1.0));
        clipped += s.reward;
        last_info = Some((s.info, s.terminated));
    }
    let (info, terminated) = last_info.unwrap();
    assert!(terminated);
    // 15 penalised steps, the key and the door: raw -30 + 3 + 10, clipped -15 + 1 + 1.
    assert_eq!(info.episode_score, -17.0);
    assert_eq!(clipped, -13.0);
}

#[test]
fn wrapped_envs_autoreset_in_a_vec_env() {
    let make = || ClipReward::new(TimeLimit::new(Corridor::new(CorridorConfig::default()), 2));
    let mut venv = VecEnv::new(vec![make(), make()]);
    venv.reset(Some(0));
    venv.step(&[Corridor::RIGHT, Corridor::RIGHT]);
    venv.step(&[Corridor::RIGHT, Corridor::NOOP]);
    assert!(venv.results().iter().all(|r| r.truncated && !r.terminated));
    assert_eq!(vector(venv.final_obs(0)), one_hot(50, 2));
    assert_eq!(vector(venv.final_obs(1)), one_hot(50, 1));
    assert_eq!(vector(venv.obs())[..50], one_hot(50, 0));
    // The wrapper's count was reset along with the inner env, so two more steps are allowed.
    venv.step(&[Corridor::RIGHT, Corridor::RIGHT]);
    assert!(venv.results().iter().all(|r| !r.done()));
    assert_eq!(venv.envs()[0].inner().elapsed_steps(), 1);
}
