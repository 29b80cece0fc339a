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
use clap::Parser;
use rainbow::bench::{stage_medians, LearnerBench};
use rainbow::{parse_device, UpdateTimings};

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

/// As in the `masp` binary: candle's many-MB tensors from fresh mmap'd pages (glibc's
/// malloc) would make page faults the update's largest cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    cpu_kernels::allocator::hold_freed_memory();
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
    rainbow::configure_cpu_threads((args.threads > 0).then_some(args.threads));
    let device = parse_device(&args.device)?;
    let (b, a) = (args.batch, args.actions);
    // The learner owns a replay; this benchmark feeds it the fixed batch instead, so it
    // stays empty.
    let LearnerBench { mut learner, batch } =
        LearnerBench::atari(a, b, 0, &device, args.seed).context("building the learner")?;

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
        rayon::current_num_threads(),
        learner.online().num_parameters()
    );
    let rows = stage_medians(&stages);
    let sum: f64 = rows.iter().map(|(_, d)| ms(*d)).sum();
    println!("per-stage medians over {} updates:", stages.len());
    for (name, d) in rows {
        println!("  {name:<34} {:>9.2} ms  {:>5.1} %", ms(d), 100.0 * ms(d) / sum);
    }
    println!("candle_update_ms_median={:.2}", ms(median(totals)));
    Ok(())
}
