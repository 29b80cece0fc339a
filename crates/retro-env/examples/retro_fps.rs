//! Emulator frames per second of `RetroEnv` on one core: Airstriker (or `--game`), random
//! actions, the full frame pipeline, resetting at game over.
//!
//! `cargo run --release -p retro-env --example retro_fps -- --steps 20000`

use std::time::Instant;

use anyhow::Result;
use retro_env::{RetroConfig, RetroEnv};
use rl_env::Env;

fn main() -> Result<()> {
    let mut steps = 20_000usize;
    let mut config = RetroConfig::airstriker();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--steps" => steps = args.next().unwrap_or_default().parse()?,
            "--game" => config.game = args.next().unwrap_or_default(),
            other => anyhow::bail!("unknown argument {other} (--steps N, --game NAME)"),
        }
    }
    let mut env = RetroEnv::new(config)?;
    let n = env.spec().num_actions();
    env.reset(None);
    let mut s = 1u64;
    let mut frames = 0u64;
    let start = Instant::now();
    for _ in 0..steps {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let step = env.step((s >> 33) as usize % n);
        frames += u64::from(step.info.frames);
        if step.done() {
            env.reset(None);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // The figure on its own line: `cargo xtask bench retro` reads `key=value` lines.
    println!("steps={steps} frames={frames} seconds={secs:.3}");
    println!("ours_frames_per_s={:.0}", frames as f64 / secs);
    Ok(())
}
