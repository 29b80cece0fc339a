//! `cargo xtask`: set-up, tests, training, experiments and benchmarks, so that a fresh machine
//! needs two commands.
//!
//! `main` only parses and dispatches; each subcommand lives in its own module.

mod bench;
mod build_cuda;
mod cmd;
mod experiment;
mod masp;
mod setup;
mod test;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "MASP-rs project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install missing system packages, fetch and verify the pinned ALE sources and ROMs.
    Setup,
    /// Run set-up, then the whole test suite (what CI runs).
    Test {
        /// Extra arguments passed to `cargo test` (after `--`, e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up, build the runner in release mode and run `masp train ARGS` (default: MASP on Pong).
    Train {
        /// Arguments of `masp train`, e.g. --config configs/toy.toml --set run.frames=400000.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build the runner in release mode and run an experiment preset
    /// (configs/experiments/NAME.toml): `masp experiment ARGS`, e.g. toy-sweep --jobs 2,
    /// main --seeds 3, atari100k --games frostbite,road_runner --arms der, transfer --emit
    /// slurm, main --report-only.
    Experiment {
        /// Arguments of `masp experiment`: NAME [--games G,..] [--arms A,..] [--seeds N]
        /// [--jobs J] [--frames F] [--out DIR] [--emit slurm] [--report-only].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the CUDA binary (candle's `cuda` feature) on a machine without a GPU.
    BuildCuda,
    /// Benchmarks, each run side by side with its reference.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn main() {
    if let Err(err) = try_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn try_main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::run(),
        Command::Test { args } => test::run(&args),
        Command::Train { args } => train::run(&args),
        Command::Experiment { args } => experiment::run(&args),
        Command::BuildCuda => build_cuda::run(),
        Command::Bench { which } => bench::run(which),
    }
}
