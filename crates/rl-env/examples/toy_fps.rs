//! Throughput of the toy environments: single-threaded steps per second with precomputed
//! random actions, then the same through a rayon `VecEnv`.
//!
//! Run with `cargo run --release -p rl-env --example toy_fps [steps]` (default 20 million).

use std::hint::black_box;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rl_env::{
    ClipReward, Corridor, CorridorConfig, Env, GroupedBandit, GroupedBanditConfig, KeyDoor, KeyDoorConfig,
    Obs, TimeLimit, VecEnv,
};

/// Drawn up front so that the timing measures the environment, not the generator.
fn random_actions(num_actions: usize, n: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    (0..n).map(|_| rng.random_range(0..num_actions)).collect()
}

fn first(obs: Obs<'_>) -> f32 {
    match obs {
        Obs::Vector(v) => v[0],
        Obs::Pixels(p) => f32::from(p[0]),
    }
}

fn single<E: Env>(name: &str, mut env: E, steps: usize) {
    let actions = random_actions(env.spec().num_actions(), 1 << 16);
    env.reset(Some(0));
    let (mut episodes, mut score) = (0usize, 0.0f64);
    let start = Instant::now();
    for t in 0..steps {
        let step = env.step(actions[t & 0xffff]);
        // Touch the observation so the update cannot be optimised away.
        black_box(first(step.obs));
        if step.done() {
            score += step.info.episode_score;
            episodes += 1;
            env.reset(None);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<34} {:>8.1} M steps/s  ({episodes} episodes, mean score {:.3})",
        steps as f64 / secs / 1e6,
        score / episodes.max(1) as f64
    );
}

fn vectorised<E: Env>(name: &str, envs: Vec<E>, steps: usize) {
    let n = envs.len();
    let mut venv = VecEnv::new(envs);
    let actions = random_actions(venv.spec().num_actions(), n * 1024);
    venv.reset(Some(0));
    let batches = steps / n;
    let start = Instant::now();
    for b in 0..batches {
        venv.step(&actions[(b % 1024) * n..(b % 1024 + 1) * n]);
        black_box(venv.results());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<34} {:>8.1} M steps/s  ({n} copies, {} threads)",
        (batches * n) as f64 / secs / 1e6,
        rayon::current_num_threads()
    );
}

fn main() {
    let steps: usize = std::env::args().nth(1).map_or(20_000_000, |s| s.parse().expect("steps: a number"));
    single("Corridor (default)", Corridor::new(CorridorConfig::default()), steps);
    single(
        "Corridor (slip_prob 0.1)",
        Corridor::new(CorridorConfig { slip_prob: 0.1, ..Default::default() }),
        steps,
    );
    single("KeyDoor (default)", KeyDoor::new(KeyDoorConfig::default()), steps);
    single(
        "KeyDoor (random start and key)",
        KeyDoor::new(KeyDoorConfig { random_start: true, random_key: true, ..Default::default() }),
        steps,
    );
    single("GroupedBandit (default)", GroupedBandit::new(GroupedBanditConfig::default()), steps);
    single(
        "GroupedBandit (A 1024, noiseless)",
        GroupedBandit::new(GroupedBanditConfig {
            actions: 1024,
            groups: 16,
            noise: 0.0,
            ..Default::default()
        }),
        steps,
    );
    single(
        "ClipReward<TimeLimit<KeyDoor>>",
        ClipReward::new(TimeLimit::new(KeyDoor::new(KeyDoorConfig::default()), 50)),
        steps,
    );
    // Toy envs are far cheaper than rayon's per-batch overhead, so only large batches pay off.
    let corridors = (0..256).map(|_| Corridor::new(CorridorConfig::default())).collect();
    vectorised("VecEnv<Corridor> x256", corridors, steps);
    let key_doors = (0..256).map(|_| KeyDoor::new(KeyDoorConfig::default())).collect();
    vectorised("VecEnv<KeyDoor> x256", key_doors, steps);
}
