//! Times one full Rainbow learner update on the Atari network, the candle side of
//! `cargo xtask bench learner` (the PyTorch side is shared/bench/torch_rainbow_step.py).
//!
//! The work per update is the reference script's: new noise for both networks, online and
//! target forward passes on `next_obs` (batch, 4, 84, 84) u8 for the double-Q choice and
//! the bootstrap distribution, the C51 projection, the online forward and backward pass on
//! `obs`, the importance-weighted cross-entropy, and an Adam step; plus gradient-norm
//! clipping (max norm 10), which Rainbow has and the script leaves out. Network: Nature
//! CNN, 512 hidden units, 51 atoms, noisy dueling heads (sigma0 0.5). Inputs are random,
//! as in the script: obs and next_obs uniform bytes, standard-normal returns, discount
//! 0.99^3, uniform weights.
//!
//! 3 warm-up updates, then the median of `--updates`. Prints a per-stage breakdown and, as
//! its last line, `candle_update_ms_median=<float>`.
//!
//! ```text
//! cargo run --release -p rainbow --example learner_step -- --actions 18 --threads 2
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use clap::Parser;
use rainbow::{
    parse_device, DeviceBatch, Learner, LearnerConfig, NStepConfig, NetworkConfig, PrioritizedReplay,
    ReplayConfig, UpdateTimings,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rl_env::ObsSpec;

/// Time full Rainbow learner updates (candle), like torch_rainbow_step.py.
#[derive(Parser, Debug)]
struct Args {
    /// Actions (18 for the full Atari set; primitives plus macros for MASP).
    #[arg(long, default_value_t = 18)]
    actions: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed updates (after 3 warm-up updates).
    #[arg(long, default_value_t = 30)]
    updates: usize,
    /// CPU threads for candle (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// `cpu` or `cuda:N` (the latter needs a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() {
    if let Err(err) = try_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn try_main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.updates > 0 && args.batch > 0 && args.actions > 0,
        "--updates, --batch and --actions must be positive"
    );
    if args.threads > 0 {
        // candle's CPU kernels size their thread pools from these, read on first use: set
        // them before any tensor work (no other thread exists yet).
        std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", args.threads.to_string());
    }
    let device = parse_device(&args.device)?;
    let (b, a) = (args.batch, args.actions);
    let spec = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
    // The learner owns a replay; this benchmark feeds it fixed batches instead, so the
    // smallest buffer the spec allows will do.
    let replay = PrioritizedReplay::new(
        &ReplayConfig { capacity: 64, ..ReplayConfig::rainbow() },
        &NStepConfig::rainbow(),
        &spec,
        1,
    )?;
    let config = LearnerConfig { batch_size: b, ..LearnerConfig::rainbow() };
    let mut learner =
        Learner::new(&config, &NetworkConfig::rainbow(), replay, a, DType::F32, &device, args.seed)
            .context("building the learner")?;

    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut bytes = || (0..b * spec.len()).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
    let (obs, next_obs) = (bytes(), bytes());
    let actions: Vec<u32> = (0..b).map(|_| rng.random_range(0..a as u32)).collect();
    let returns: Vec<f32> = (0..b).map(|_| rng.sample(StandardNormal)).collect();
    let weights: Vec<f32> = (0..b).map(|_| rng.random::<f32>()).collect();
    let discounts = vec![0.99f32.powi(3); b];
    let shape = (b, 4, 84, 84);
    let batch = DeviceBatch::from_tensors(
        Tensor::from_vec(obs, shape, &device)?,
        Tensor::from_vec(next_obs, shape, &device)?,
        Tensor::from_vec(actions, b, &device)?,
        Tensor::from_vec(returns, b, &device)?,
        Tensor::from_vec(discounts, b, &device)?,
        Tensor::from_vec(weights, b, &device)?,
    )?;

    // Per-stage timing synchronises the device at every stage boundary: free on the CPU,
    // but on a GPU it would add stalls to the figure that is compared, so there the
    // breakdown comes from separate, profiled updates.
    let profile_in_timed_loop = device.is_cpu();
    learner.set_profiling(profile_in_timed_loop);
    let mut totals = Vec::new();
    let mut stages: Vec<UpdateTimings> = Vec::new();
    for i in 0..args.updates + 3 {
        device.synchronize()?;
        let t0 = Instant::now();
        learner.learn(&batch, &mut ())?;
        device.synchronize()?;
        if i >= 3 {
            totals.push(t0.elapsed());
            if profile_in_timed_loop {
                stages.push(learner.timings().clone());
            }
        }
    }
    if !profile_in_timed_loop {
        learner.set_profiling(true);
        for _ in 0..args.updates {
            learner.learn(&batch, &mut ())?;
            stages.push(learner.timings().clone());
        }
    }

    println!(
        "rainbow {} on candle 0.11 device={} threads={} actions={a} batch={b} parameters={}",
        env!("CARGO_PKG_VERSION"),
        args.device,
        candle_core::utils::get_num_threads(),
        learner.online().num_parameters()
    );
    let stage = |f: fn(&UpdateTimings) -> Duration| median(stages.iter().map(f).collect());
    let rows: [(&str, Duration); 9] = [
        ("noise + weights (mu + sigma eps)", stage(|t| t.noise)),
        ("forward next (online + target)", stage(|t| t.forward_next)),
        ("projection", stage(|t| t.projection)),
        ("forward online", stage(|t| t.forward_online)),
        ("loss", stage(|t| t.loss)),
        ("backward", stage(|t| t.backward)),
        ("clip", stage(|t| t.clip)),
        ("readback", stage(|t| t.readback)),
        ("adam", stage(|t| t.adam)),
    ];
    let sum: f64 = rows.iter().map(|(_, d)| ms(*d)).sum();
    println!("per-stage medians over {} updates:", stages.len());
    for (name, d) in rows {
        println!("  {name:<34} {:>9.2} ms  {:>5.1} %", ms(d), 100.0 * ms(d) / sum);
    }
    println!("candle_update_ms_median={:.2}", ms(median(totals)));
    Ok(())
}
