//! Throughput of the Atari environment, the Rust half of `cargo xtask bench env`.
//!
//! Three measurements with uniformly random actions, in environment frames per second:
//! * raw ALE `act()` on one emulator (the ceiling for one core), median of 3 runs;
//! * one `AtariEnv` with full preprocessing (frame skip 4, max-pool, grayscale, 84x84 area
//!   resize, 4-frame stack), to show what preprocessing costs; median of 3 runs alternated
//!   with the raw ones;
//! * an `AtariVecEnv` of `--envs` copies on `--threads` rayon threads, configured like
//!   `shared/bench/ale_py_env_fps.py` (no-op starts 30, no life-loss terminal, no fire reset)
//!   and counted the same way (agent steps x frame skip).
//!
//! Its last line is `ours_frames_per_s=...` (the vector env).

use std::time::Instant;

use ale_env::{rom_path, Ale, AtariConfig, AtariEnv};
use anyhow::{Context, Result};
use clap::Parser;
use rand::{Rng, SeedableRng};
use rl_env::Env;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "pong")]
    game: String,
    #[arg(long, default_value_t = 2)]
    envs: usize,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Agent steps, summed over all envs.
    #[arg(long, default_value_t = 20_000)]
    steps: usize,
    #[arg(long, default_value_t = 0.25)]
    sticky: f32,
}

const FRAME_SKIP: usize = 4;
const REPEATS: usize = 3;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = AtariConfig {
        game: args.game.clone(),
        frame_skip: FRAME_SKIP as u32,
        noop_max: 30,
        fire_reset: false,
        terminal_on_life_loss: false,
        clip_rewards: false,
        sticky_action_prob: args.sticky,
        ..AtariConfig::default()
    };
    // Alternated and repeated, so a burst of load on the machine cannot favour either side.
    let (mut raw, mut single) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS {
        raw.push(raw_ale_fps(&config, args.steps * FRAME_SKIP)?);
        single.push(single_env_fps(&config, args.steps)?);
    }
    let (raw, single) = (median(raw), median(single));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.threads).build()?;
    let vector = pool.install(|| vec_env_fps(&config, args.envs, args.steps))?;
    println!("ours game={} envs={} threads={} sticky={}", args.game, args.envs, args.threads, args.sticky);
    println!("raw_ale_frames_per_s={raw:.0}");
    println!("single_env_frames_per_s={single:.0}");
    println!("single_env_vs_raw_ale={:.3}", single / raw);
    println!("ours_frames_per_s={vector:.0}");
    Ok(())
}

fn raw_ale_fps(config: &AtariConfig, frames: usize) -> Result<f64> {
    let mut ale = Ale::new()?;
    ale.set_float("repeat_action_probability", config.sticky_action_prob)?;
    ale.set_int("random_seed", 0)?;
    ale.load_rom(&rom_path(&config.game)?)?;
    let actions = ale.minimal_action_set();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let start = Instant::now();
    for _ in 0..frames {
        ale.act(actions[rng.random_range(0..actions.len())], 1.0);
        if ale.game_over(true) {
            ale.reset_game();
        }
    }
    Ok(frames as f64 / start.elapsed().as_secs_f64())
}

fn single_env_fps(config: &AtariConfig, steps: usize) -> Result<f64> {
    let mut env = AtariEnv::new(config.clone())?;
    let n = env.spec().num_actions();
    env.reset(Some(0));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut frames = 0u64;
    let start = Instant::now();
    for _ in 0..steps {
        let step = env.step(rng.random_range(0..n));
        frames += u64::from(step.info.frames);
        if step.done() {
            env.reset(None);
        }
    }
    Ok(frames as f64 / start.elapsed().as_secs_f64())
}

fn vec_env_fps(config: &AtariConfig, envs: usize, steps: usize) -> Result<f64> {
    let mut venv = AtariEnv::vec(config.clone(), envs).context("building the vector env")?;
    let n = venv.spec().num_actions();
    venv.reset(Some(0));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let mut actions = vec![0; envs];
    let mut random_step = |venv: &mut ale_env::AtariVecEnv| {
        actions.iter_mut().for_each(|a| *a = rng.random_range(0..n));
        venv.step(&actions);
    };
    for _ in 0..50 {
        random_step(&mut venv);
    }
    let iters = (steps / envs).max(1);
    let start = Instant::now();
    for _ in 0..iters {
        random_step(&mut venv);
    }
    Ok((iters * envs * FRAME_SKIP) as f64 / start.elapsed().as_secs_f64())
}
