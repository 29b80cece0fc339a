//! Times Rainbow's learner update with MASP against the plain update, on the same learner
//! and inputs: the masp half of `cargo xtask bench learner --masp`.
//!
//! The network, the learner and the fixed random batch are those of rainbow's
//! `learner_step` example and of `../shared/bench/torch_rainbow_step.py`
//! ([`rainbow::bench::LearnerBench`]): Nature CNN, 512 hidden units, 51 atoms, noisy dueling
//! heads, batch 32. The learner's replay also holds 256 random transitions, for the meta
//! step's fresh batch `B'` when `--meta-batch fresh` asks for one.
//!
//! A MASP update is the plain one plus the penalty on the batch's expected Q-values (every
//! update) plus, every `meta_interval` updates, the meta step ([`masp::MaspRegularizer`],
//! `MaspConfig::default()` otherwise: row-normalised penalty, SGD lookahead, `B' = B` with
//! the update's own target, a one-sided JVP, Adam on `S`). Its time per update is the time
//! of a whole cycle of `meta_interval` updates divided by `meta_interval`. Rounds alternate
//! the plain update with cycles of each interval, so that drift on a shared machine moves
//! all of them alike; within a
//! round each runs twice in a row and only the second is timed (its steady state: the
//! page faults that follow a meta step are charged to MASP, not to the next plain update).
//! The medians over rounds are reported.
//!
//! Prints the plain per-stage breakdown, the MASP updates' extra cost per stage and the
//! meta step's stages, then `plain_update_ms_median=`, for each interval
//! `masp_update_ms_median_interval_<k>=` and `masp_ratio_interval_<k>=` (MASP / plain), and
//! as its last line `candle_update_ms_median=` (the plain update, for the comparison with
//! PyTorch).
//!
//! ```text
//! cargo run --release -p masp --example learner_step_masp -- --actions 1042 --threads 2
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use masp::{MaspConfig, MaspRegularizer, MetaTimings};
use rainbow::bench::{stage_medians, LearnerBench};
use rainbow::{parse_device, UpdateTimings};

/// Time Rainbow learner updates with MASP against plain ones (candle).
#[derive(Parser, Debug)]
struct Args {
    /// Actions (18 primitives plus macros; 1042 = 18 + 1024).
    #[arg(long, default_value_t = 18)]
    actions: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed rounds (after one warm-up round); each round is two plain updates and two
    /// cycles of `meta_interval` MASP updates per interval, the second of each timed.
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
    /// The meta intervals to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,1")]
    meta_intervals: Vec<u64>,
    /// The meta batch: the `update`'s own (`B' = B`, its target-network pass reused;
    /// MaspConfig's default) or `fresh` from the replay.
    #[arg(long, default_value = "update", value_parser = ["fresh", "update"])]
    meta_batch: String,
    /// How `u` is differenced: `one_sided` (MaspConfig's default) or `central`.
    #[arg(long, default_value = "one_sided", value_parser = ["central", "one_sided"])]
    difference: String,
    /// The meta loss's target with `B' = B`: the `update`'s own (MaspConfig's default) or
    /// one with double-Q's `a*` chosen at theta' (`lookahead`, MASP.md's).
    #[arg(long, default_value = "update", value_parser = ["update", "lookahead"])]
    meta_target: String,
}

/// Transitions in the learner's replay, for the meta step's fresh batch.
const REPLAY_TRANSITIONS: usize = 256;

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
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One meta interval's regulariser and what its cycles measured.
struct Masp {
    interval: u64,
    regularizer: MaspRegularizer,
    /// Per cycle: its time divided by the interval.
    per_update: Vec<Duration>,
    /// Updates without a meta step (penalty only), each.
    penalty_only: Vec<Duration>,
    stages: Vec<UpdateTimings>,
    meta: Vec<MetaTimings>,
}

fn try_main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.updates > 0 && args.batch > 0 && args.actions > 0,
        "--updates, --batch and --actions must be positive"
    );
    anyhow::ensure!(
        !args.meta_intervals.is_empty() && !args.meta_intervals.contains(&0),
        "--meta-intervals must list intervals >= 1, e.g. 4,1"
    );
    rainbow::configure_cpu_threads((args.threads > 0).then_some(args.threads));
    let device = parse_device(&args.device)?;
    let LearnerBench { mut learner, batch } =
        LearnerBench::atari(args.actions, args.batch, REPLAY_TRANSITIONS, &device, args.seed)
            .context("building the learner")?;
    let ids: Vec<String> = (0..args.actions).map(|a| format!("action{a}")).collect();
    // Per-stage timing synchronises the device at every stage boundary: free on the CPU,
    // but on a GPU it would add stalls to the timed figures, so there the breakdown comes
    // from separate, profiled rounds.
    let profile = device.is_cpu();
    learner.set_profiling(profile);
    let mut runs = args
        .meta_intervals
        .iter()
        .map(|&interval| {
            let config = MaspConfig {
                meta_interval: interval,
                fresh_batch: args.meta_batch == "fresh",
                difference: match args.difference.as_str() {
                    "one_sided" => masp::Difference::OneSided,
                    _ => masp::Difference::Central,
                },
                meta_target: match args.meta_target.as_str() {
                    "update" => masp::MetaTarget::Update,
                    _ => masp::MetaTarget::Lookahead,
                },
                ..MaspConfig::default()
            };
            let (mut regularizer, _) = MaspRegularizer::for_learner(config, &ids, None, &learner)?;
            regularizer.set_profiling(profile);
            Ok(Masp {
                interval,
                regularizer,
                per_update: Vec::new(),
                penalty_only: Vec::new(),
                stages: Vec::new(),
                meta: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let mut plain = Vec::new();
    let mut plain_stages = Vec::new();
    for round in 0..=args.updates {
        // Each configuration runs twice in a row and only the second is timed, so that
        // each is measured in its own steady state: after a meta step frees its
        // network-sized buffers, the next update's allocations page-fault again, a cost
        // that belongs to MASP and must not land on the plain update that follows it.
        for timed in [false, round > 0] {
            device.synchronize()?;
            let t0 = Instant::now();
            learner.learn(&batch, &mut ())?;
            device.synchronize()?;
            if timed {
                plain.push(t0.elapsed());
                if profile {
                    plain_stages.push(learner.timings().clone());
                }
            }
        }
        for run in &mut runs {
            for timed in [false, round > 0] {
                let mut cycle = Duration::ZERO;
                for i in 0..run.interval {
                    device.synchronize()?;
                    let t0 = Instant::now();
                    learner.learn(&batch, &mut run.regularizer)?;
                    device.synchronize()?;
                    let t = t0.elapsed();
                    cycle += t;
                    if timed {
                        if profile {
                            run.stages.push(learner.timings().clone());
                        }
                        if i + 1 < run.interval {
                            run.penalty_only.push(t);
                        }
                    }
                }
                if timed {
                    run.per_update.push(cycle / run.interval as u32);
                    if profile {
                        run.meta.push(run.regularizer.timings().clone());
                    }
                }
            }
        }
    }
    if !profile {
        learner.set_profiling(true);
        for run in &mut runs {
            run.regularizer.set_profiling(true);
        }
        for _ in 0..args.updates.min(10) {
            learner.learn(&batch, &mut ())?;
            plain_stages.push(learner.timings().clone());
            for run in &mut runs {
                for _ in 0..run.interval {
                    learner.learn(&batch, &mut run.regularizer)?;
                    run.stages.push(learner.timings().clone());
                }
                run.meta.push(run.regularizer.timings().clone());
            }
        }
    }

    println!(
        "rainbow + masp {} on candle 0.11 device={} threads={} actions={} batch={} parameters={} \
         masp=row_normalised,sgd_lookahead,meta_batch={},difference={},meta_target={},adam_on_S",
        env!("CARGO_PKG_VERSION"),
        args.device,
        rayon::current_num_threads(),
        args.actions,
        args.batch,
        learner.online().num_parameters(),
        args.meta_batch,
        args.difference,
        args.meta_target
    );
    let plain_rows = stage_medians(&plain_stages);
    let header: String =
        runs.iter().map(|r| format!("  {:>16}", format!("+MASP/{} (ms)", r.interval))).collect();
    println!(
        "learner stages, medians over {} rounds (+MASP/k: every update of the k-update cycle):",
        args.updates
    );
    println!("  {:<34} {:>10}{header}", "stage", "plain (ms)");
    let masp_rows: Vec<_> = runs.iter().map(|r| stage_medians(&r.stages)).collect();
    for (k, (name, d)) in plain_rows.iter().enumerate() {
        let extra: String = masp_rows.iter().map(|rows| format!("  {:>16.2}", ms(rows[k].1))).collect();
        println!("  {name:<34} {:>10.2}{extra}", ms(*d));
    }
    for run in &runs {
        let stage = |f: fn(&MetaTimings) -> Duration| ms(median(run.meta.iter().map(f).collect()));
        let rows: [(&str, f64); 7] = [
            ("fresh batch B' (replay -> device)", stage(|t| t.fresh_batch)),
            ("save theta, set theta'", stage(|t| t.save)),
            ("forward L_TD(theta'; B')", stage(|t| t.meta_forward)),
            ("backward g, restore theta", stage(|t| t.meta_backward)),
            ("JVP: forward Q(theta + eps g) [- eps g]", stage(|t| t.jvp)),
            ("surrogate, step on S, projection", stage(|t| t.surrogate_and_step)),
            ("meta step total", stage(|t| t.total())),
        ];
        println!(
            "meta step (meta_interval {}), stage medians over {} meta steps:",
            run.interval,
            run.meta.len()
        );
        for (name, t) in rows {
            println!("  {name:<36} {t:>9.2} ms");
        }
        if !run.penalty_only.is_empty() {
            println!(
                "  update with the penalty only       {:>9.2} ms (plain {:.2} ms)",
                ms(median(run.penalty_only.clone())),
                ms(median(plain.clone()))
            );
        }
    }

    let plain_ms = ms(median(plain));
    println!("plain_update_ms_median={plain_ms:.2}");
    for run in &runs {
        let masp_ms = ms(median(run.per_update.clone()));
        println!("masp_update_ms_median_interval_{}={masp_ms:.2}", run.interval);
        println!("masp_ratio_interval_{}={:.3}", run.interval, masp_ms / plain_ms);
    }
    println!("candle_update_ms_median={plain_ms:.2}");
    Ok(())
}
