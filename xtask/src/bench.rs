//! `cargo xtask bench ...`: our code and its reference measured side by side in one run.
//!
//! Each benchmark prints its own figures first and, as its last three lines,
//! `ours_...=`, `<reference>_...=` and `ratio=` (ours / reference, higher is better for
//! throughput), so runs can be compared and recorded in `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::cmd::{self, repo_root, shared_dir};

#[derive(Subcommand)]
pub enum Which {
    /// Atari vector-env throughput against ale-py's AtariVectorEnv, plus one preprocessed env
    /// against raw ALE emulation.
    Env {
        #[arg(long, default_value = "pong")]
        game: String,
        #[arg(long, default_value_t = 2)]
        envs: usize,
        /// Agent steps summed over all envs.
        #[arg(long, default_value_t = 20_000)]
        steps: usize,
        #[arg(long, default_value_t = 0.25)]
        sticky: f32,
    },
    /// One Genesis env (retro-env: Airstriker, frame skip 4 with the whole frame pipeline)
    /// against stable-retro 1.0.1's RetroEnv stepping the same game raw, on one core.
    Retro {
        /// Emulator frames to time on each side.
        #[arg(long, default_value_t = 80_000)]
        frames: usize,
    },
    /// One full Rainbow learner update (batch 32, 4x84x84, 51 atoms, noisy dueling, double-Q,
    /// C51 projection, Adam) against the same update in PyTorch on the same CPU.
    Learner {
        /// Number of actions: 18 for the full Atari set, 1042 for 18 primitives + 1024 macros.
        #[arg(long, default_value_t = 18)]
        actions: usize,
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Timed updates after 3 warm-up ones; the median is reported.
        #[arg(long, default_value_t = 30)]
        updates: usize,
        /// CPU threads for both sides (0: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Also time the update with MASP (its penalty every update and a meta step every
        /// `meta_interval` updates, at intervals 4 and 1) against the plain one: runs masp's
        /// `learner_step_masp` in place of rainbow's `learner_step`. Issue 14's targets:
        /// at most 1.2x the plain update at interval 4, 1.8x at interval 1.
        #[arg(long)]
        masp: bool,
        /// With --masp: the meta batch, `update` (`B' = B`, MaspConfig's default) or `fresh`.
        #[arg(long, default_value = "update", requires = "masp")]
        meta_batch: String,
        /// With --masp: `one_sided` (MaspConfig's default) or `central` differences for the JVP.
        #[arg(long, default_value = "one_sided", requires = "masp")]
        difference: String,
        /// With --masp: the meta loss's target with `B' = B`, `update` (MaspConfig's default)
        /// or `lookahead` (MASP.md's: double-Q's `a*` chosen at theta').
        #[arg(long, default_value = "update", requires = "masp")]
        meta_target: String,
    },
    /// The real `masp train` loop on an Atari game, profiled once learning starts: the share
    /// of acting, env steps, replay insertion and sampling, the update and MASP's meta step,
    /// then the same update alone in the same process, and evaluation frames/s. Closes with
    /// `loop_ms_per_update=`, `learner_ms_per_update=` and `ratio=` (goal: <= 1.10).
    Train {
        #[arg(long, default_value = "frostbite")]
        game: String,
        /// An agent file `configs/agents/NAME.toml`, e.g. der, rainbow.
        #[arg(long, default_value = "der")]
        preset: String,
        /// A protocol file `configs/protocols/NAME.toml`.
        #[arg(long, default_value = "atari100k")]
        protocol: String,
        /// Profiled updates (and as many of the update alone).
        #[arg(long, default_value_t = 200)]
        updates: u64,
        /// Random macros added to the primitives (configs/agents/rainbow-macros.toml's
        /// lengths); 0 for primitives only.
        #[arg(long, default_value_t = 0)]
        macros: usize,
        /// MASP on top (configs/agents/masp.toml).
        #[arg(long)]
        masp: bool,
    },
    /// The real `masp train` loop resumed from a run's checkpoint, profiled with subnormal
    /// floats flushed to zero (the binaries' default) and kept (`MASP_KEEP_DENORMALS=1`, IEEE,
    /// the reference), alternated on fresh copies of the run folder. Subnormals appear deep
    /// into a run, so a fresh run (`bench train`) cannot show their cost. Closes with
    /// `flushed_loop_ms_per_update=`, `kept_loop_ms_per_update=` and `ratio=` (lower is better).
    Denormals {
        /// A run folder with a `checkpoint/` (an Atari run's after its first 100k frames).
        #[arg(long)]
        run: PathBuf,
        /// Profiled updates per command.
        #[arg(long, default_value_t = 200)]
        updates: u64,
        /// Pairs of commands (kept, then flushed); the last pair's figures close the report.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
}

pub fn run(which: Which) -> Result<()> {
    // The benchmarks of the runner do the set-up with its release build (build_release_masp).
    if !matches!(which, Which::Train { .. } | Which::Denormals { .. }) {
        crate::setup::run()?;
    }
    match which {
        Which::Env { game, envs, steps, sticky } => env(&game, envs, steps, sticky),
        Which::Learner { actions, batch, updates, threads, masp, meta_batch, difference, meta_target } => {
            let options = masp.then_some([
                "--meta-batch",
                &meta_batch,
                "--difference",
                &difference,
                "--meta-target",
                &meta_target,
            ]);
            learner(actions, batch, updates, threads, options)
        }
        Which::Retro { frames } => retro(frames),
        Which::Train { game, preset, protocol, updates, macros, masp } => {
            train(&game, &preset, &protocol, updates, macros, masp)
        }
        Which::Denormals { run, updates, rounds } => denormals(&run, updates, rounds),
    }
}

fn env(game: &str, envs: usize, steps: usize, sticky: f32) -> Result<()> {
    let (envs, steps, sticky) = (envs.to_string(), steps.to_string(), sticky.to_string());
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "ale-env", "--example", "env_fps"]))?;
    // The same flags for both sides, so they cannot drift apart.
    let args = ["--game", game, "--envs", &envs, "--threads", &envs, "--steps", &steps, "--sticky", &sticky];
    let ours = cmd::output(Command::new(repo_root().join("target/release/examples/env_fps")).args(args))?;
    print!("{ours}");
    let python = venv("ale-py", &["ale-py==0.12.1", "gymnasium", "numpy"])?;
    let reference =
        cmd::output(Command::new(python).arg(shared_dir().join("bench/ale_py_env_fps.py")).args(args))?;
    print!("{reference}");
    report("ours_frames_per_s", &ours, "ale_py_frames_per_s", &reference)
}

fn retro(frames: usize) -> Result<()> {
    // retro_fps counts agent steps of 4 frames.
    let steps = (frames / 4).to_string();
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "retro-env", "--example", "retro_fps"]))?;
    let ours = cmd::output(
        Command::new(repo_root().join("target/release/examples/retro_fps")).args(["--steps", &steps]),
    )?;
    print!("{ours}");
    let python = venv("stable-retro", &["stable-retro==1.0.1"])?;
    let reference = cmd::output(
        Command::new(python)
            .arg(repo_root().join("scripts/retro_bench.py"))
            .args(["--frames", &frames.to_string()]),
    )?;
    print!("{reference}");
    report("ours_frames_per_s", &ours, "stable_retro_frames_per_s", &reference)
}

/// `masp`: the MASP options to pass to `learner_step_masp`, or `None` for the plain update.
fn learner(
    actions: usize,
    batch: usize,
    updates: usize,
    threads: usize,
    masp: Option<[&str; 6]>,
) -> Result<()> {
    let threads =
        if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
    let (actions, batch, updates, threads) =
        (actions.to_string(), batch.to_string(), updates.to_string(), threads.to_string());
    let args = ["--actions", &actions, "--batch", &batch, "--updates", &updates, "--threads", &threads];
    // The MASP example times the plain update too, and prints it last under the same key.
    let (package, example) =
        if masp.is_some() { ("masp", "learner_step_masp") } else { ("rainbow", "learner_step") };
    cmd::run(cmd::cargo().args(["build", "--release", "-p", package, "--example", example]))?;
    let ours = cmd::output(
        Command::new(repo_root().join("target/release/examples").join(example))
            .args(args)
            .args(masp.iter().flatten()),
    )?;
    print!("{ours}");
    let python = venv("torch", &["torch==2.15.0", "numpy"])?;
    let reference =
        cmd::output(Command::new(python).arg(shared_dir().join("bench/torch_rainbow_step.py")).args(args))?;
    print!("{reference}");
    if masp.is_some() {
        // MASP against plain candle, gathered above the closing three lines.
        for line in masp_lines(&ours) {
            println!("{line}");
        }
    }
    // Time per update: the ratio is candle / torch, and <= 1.0 is the goal.
    report("candle_update_ms_median", &ours, "torch_update_ms_median", &reference)
}

/// `masp train --profile` on a throwaway run folder under `target/bench-train/`.
fn train(game: &str, preset: &str, protocol: &str, updates: u64, macros: usize, masp: bool) -> Result<()> {
    let root = repo_root();
    let file = |kind: &str, name: &str| -> Result<String> {
        let path = root.join("configs").join(kind).join(format!("{name}.toml"));
        anyhow::ensure!(path.is_file(), "{} does not exist: name a file of configs/{kind}/", path.display());
        Ok(path.display().to_string())
    };
    let mut configs = vec![file("protocols", protocol)?, file("agents", preset)?];
    if macros > 0 {
        configs.push(file("agents", "rainbow-macros")?);
    }
    if masp {
        configs.push(file("agents", "masp")?);
    }
    let out = root.join("target/bench-train");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let mut args: Vec<String> = configs.into_iter().flat_map(|c| ["--config".to_string(), c]).collect();
    let sets = [
        format!("env.game={game:?}"),
        "run.frames=1000000000".into(),
        "run.eval_episodes=8".into(),
        "run.checkpoint_interval=1000000000".into(),
        "run.checkpoint_eval_episodes=0".into(),
        "run.save_replay=false".into(),
    ];
    let macro_count = (macros > 0).then(|| format!("macros.source.count={macros}"));
    for set in sets.into_iter().chain(macro_count) {
        args.extend(["--set".to_string(), set]);
    }
    args.extend(["--out".to_string(), out.display().to_string(), "--profile".into(), updates.to_string()]);
    crate::masp::release_masp("train", &args)
}

/// `masp train --resume COPY --profile N` on fresh copies of `run` (its `config.toml`,
/// `metrics.csv` and `checkpoint/`), each pair with subnormals kept, then flushed.
fn denormals(run: &Path, updates: u64, rounds: usize) -> Result<()> {
    anyhow::ensure!(
        run.join("checkpoint").is_dir(),
        "{} has no checkpoint/ folder: name a run folder that has saved one (every \
         run.checkpoint_interval frames)",
        run.display()
    );
    let binary = crate::masp::build_release_masp()?;
    let copy = repo_root().join("target/bench-denormals");
    let (mut kept, mut flushed) = (String::new(), String::new());
    for _ in 0..rounds {
        for keep in [true, false] {
            fresh_copy(run, &copy)?;
            let mut masp = Command::new(&binary);
            // A finished run continues too: the budget is lifted.
            masp.args(["train", "--resume"]).arg(&copy).args(["--set", "run.frames=1000000000"]);
            masp.args(["--profile", &updates.to_string()]);
            match keep {
                true => masp.env(KEEP_DENORMALS, "1"),
                false => masp.env_remove(KEEP_DENORMALS),
            };
            let out = cmd::output(masp.current_dir(repo_root()))?;
            println!("subnormals {}:\n{out}", if keep { "kept" } else { "flushed" });
            *(if keep { &mut kept } else { &mut flushed }) = out;
        }
    }
    let (flushed, kept) =
        (last_value(&flushed, "loop_ms_per_update")?, last_value(&kept, "loop_ms_per_update")?);
    println!("flushed_loop_ms_per_update={flushed:.2}");
    println!("kept_loop_ms_per_update={kept:.2}");
    println!("ratio={:.3}", flushed / kept);
    Ok(())
}

/// rainbow's `KEEP_DENORMALS_ENV` (xtask does not link the workspace's crates).
const KEEP_DENORMALS: &str = "MASP_KEEP_DENORMALS";

/// `dst` replaced by the files of `run` that resuming reads.
fn fresh_copy(run: &Path, dst: &Path) -> Result<()> {
    if dst.exists() {
        std::fs::remove_dir_all(dst).with_context(|| format!("clearing {}", dst.display()))?;
    }
    std::fs::create_dir_all(dst.join("checkpoint"))?;
    for file in ["config.toml", "metrics.csv"] {
        std::fs::copy(run.join(file), dst.join(file))
            .with_context(|| format!("copying {}", run.join(file).display()))?;
    }
    for entry in std::fs::read_dir(run.join("checkpoint"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), dst.join("checkpoint").join(entry.file_name()))?;
    }
    Ok(())
}

/// The MASP example's figures: the plain update, and per meta interval the update with MASP
/// and its ratio to the plain one.
fn masp_lines(output: &str) -> Vec<&str> {
    let keys = ["plain_update_ms_median=", "masp_update_ms_median_interval_", "masp_ratio_interval_"];
    output.lines().map(str::trim).filter(|l| keys.iter().any(|k| l.starts_with(k))).collect()
}

/// Prints the benchmark's closing three lines: both figures and their ratio, ours / reference
/// (for throughput higher is better, for time per update lower is better).
fn report(ours_key: &str, ours: &str, ref_key: &str, reference: &str) -> Result<()> {
    let (ours, theirs) = (last_value(ours, ours_key)?, last_value(reference, ref_key)?);
    println!("{ours_key}={ours:.2}");
    println!("{ref_key}={theirs:.2}");
    println!("ratio={:.3}", ours / theirs);
    Ok(())
}

/// A virtualenv `target/venv-<name>` with Python packages (a benchmark's reference, or the
/// CUDA compiler); created once, and re-created if the package list changes. One per purpose,
/// because PyTorch from the package index brings about 3 GB of CUDA libraries that the env
/// benchmark does not need.
pub fn venv(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let dir = repo_root().join(format!("target/venv-{name}"));
    let python = dir.join("bin/python");
    let stamp = dir.join("installed.txt");
    let wanted = packages.join("\n");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    cmd::run(Command::new("python3").args(["-m", "venv"]).arg(&dir))
        .context("creating the benchmark virtualenv (Debian: apt-get install python3-venv)")?;
    cmd::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// The value of the last `key=value` line in a benchmark's output.
fn last_value(output: &str, key: &str) -> Result<f64> {
    let prefix = format!("{key}=");
    let Some(line) = output.lines().rev().find_map(|l| l.trim().strip_prefix(&prefix)) else {
        bail!("the benchmark printed no `{key}=` line; its output was:\n{output}");
    };
    line.parse().with_context(|| format!("`{key}={line}` is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_value_takes_the_last_matching_line() {
        let out = "x=1\nours_frames_per_s=10\nnoise\nours_frames_per_s=12.5\n";
        assert_eq!(last_value(out, "ours_frames_per_s").unwrap(), 12.5);
        assert!(last_value(out, "missing").unwrap_err().to_string().contains("missing"));
        assert!(last_value("k=abc", "k").is_err());
    }

    #[test]
    fn fresh_copy_replaces_the_copy_with_the_files_a_resume_reads() {
        let root = std::env::temp_dir().join(format!("xtask-fresh-copy-{}", std::process::id()));
        let (run, dst) = (root.join("run"), root.join("copy"));
        std::fs::create_dir_all(run.join("checkpoint")).unwrap();
        std::fs::create_dir_all(run.join("tb")).unwrap();
        for (file, text) in [("config.toml", "c"), ("metrics.csv", "m"), ("checkpoint/agent.json", "a")] {
            std::fs::write(run.join(file), text).unwrap();
        }
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(dst.join("metrics.csv"), "a resumed run's longer log").unwrap();
        fresh_copy(&run, &dst).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("metrics.csv")).unwrap(), "m");
        assert_eq!(std::fs::read_to_string(dst.join("checkpoint/agent.json")).unwrap(), "a");
        assert!(!dst.join("tb").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn masp_lines_are_the_plain_and_per_interval_figures() {
        let out = "stage table\nplain_update_ms_median=10.00\nmasp_update_ms_median_interval_4=11.00\n\
                   masp_ratio_interval_4=1.100\nmasp_ratio_interval_1=1.500\ncandle_update_ms_median=10.00\n";
        assert_eq!(
            masp_lines(out),
            [
                "plain_update_ms_median=10.00",
                "masp_update_ms_median_interval_4=11.00",
                "masp_ratio_interval_4=1.100",
                "masp_ratio_interval_1=1.500"
            ]
        );
    }
}
