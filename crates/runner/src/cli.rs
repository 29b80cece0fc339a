//! The `masp` command line: its arguments and one function per subcommand. `main.rs` calls
//! [`run`], so that every binary built from that file (the runner's `masp`, and the copy the
//! workspace's `tests/` builds because cargo shows a binary only to its own package's
//! tests) is this same program.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use macro_actions::NgramConfig;

use crate::experiment::ExperimentArgs;
use crate::run_dir::{self, run_status, RunStatus};
use crate::{
    evaluate_run, mine_macros, plot_runs, record, report_markdown, resume_config, train, EvalPolicy, Policy,
    RunConfig, TrainOptions,
};

#[derive(Parser)]
#[command(name = "masp", version, about = "Rainbow with macro-actions and MASP: train and evaluate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an agent; with no --config, MASP on Pong with 64 random macros (machado protocol).
    Train {
        /// Config files (TOML), merged in order; e.g. configs/agents/masp.toml.
        #[arg(long = "config", value_name = "FILE")]
        configs: Vec<PathBuf>,
        /// Override one key, `key.path=value` (value in TOML), e.g. --set run.frames=400000.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Parent folder of the run folder.
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// Start the run in exactly this folder instead of a timestamped one under --out.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "resume"])]
        run_dir: Option<PathBuf>,
        /// Continue this run folder from its last checkpoint (its own config, plus any --set).
        #[arg(long, value_name = "RUN_DIR", conflicts_with = "configs")]
        resume: Option<PathBuf>,
        /// With --run-dir: skip the run if it is finished (eval.json), continue it from its
        /// checkpoint if it has one, start it otherwise: the rule of every sweep and cluster
        /// job. --config and --set apply only when it starts.
        #[arg(long, requires = "run_dir")]
        resumable: bool,
        /// Print the resolved config and exit.
        #[arg(long)]
        dry_run: bool,
        /// Benchmark the loop: once learning starts, profile N updates (acting, env, replay,
        /// update, MASP's meta step), time the update alone N times, print the shares and
        /// `ratio=` and stop (`cargo xtask bench train`).
        #[arg(long, value_name = "N")]
        profile: Option<u64>,
    },
    /// Evaluate a run's checkpoint: raw game scores under the protocol's evaluation settings.
    Eval {
        /// The run folder (holding config.toml and checkpoint/).
        run: PathBuf,
        /// Episodes to play (default: the config's run.eval_episodes).
        #[arg(long)]
        episodes: Option<usize>,
        /// Also write the first N episodes as animated GIFs of the colour screen, one frame
        /// per primitive step, into RUN/videos/ (episode_000.gif, ...).
        #[arg(long, value_name = "N", default_value_t = 0)]
        video: usize,
        /// `greedy`: the protocol's evaluation (noise off), into RUN/eval.json. `noisy`: the
        /// policy training acts with (a fresh noise sample every step and training's
        /// epsilon), into RUN/eval-noisy.json, to compare the evaluation with the training
        /// returns.
        #[arg(long, value_enum, default_value_t = EvalPolicy::Greedy)]
        policy: EvalPolicy,
    },
    /// Analyse a run's learned similarity S: heatmap, Spearman vs edit distance, top pairs.
    Analyze {
        /// A run folder (its checkpoint's S), a checkpoint folder, or a saved S (similarity.json).
        input: PathBuf,
        /// How many of the most similar action pairs to list.
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        /// Output folder (default: analysis/ in the run folder, or beside the file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Learning curves against frames: one panel per game, one line per agent, the mean and
    /// 95% interval over seeds, DER's published score as a dashed line on Atari 100k games;
    /// writes OUT/curves.png and OUT/curves.svg.
    Plot {
        /// Run folders, or folders holding run folders (e.g. a sweep's output folder).
        #[arg(required = true, value_name = "RUN_DIRS")]
        runs: Vec<PathBuf>,
        /// Folder for the plots.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
        /// The metrics.csv column to draw.
        #[arg(long, default_value = "episode_score")]
        metric: String,
    },
    /// Markdown tables of final scores per game and agent (mean and 95% interval over seeds,
    /// human-normalised score, DER's published score) and of the aggregate metrics over
    /// games (mean, median, IQM, optimality gap, with bootstrap intervals); printed, and
    /// written to --out if given.
    Report {
        /// Run folders, or folders holding run folders (e.g. a sweep's output folder).
        #[arg(required = true, value_name = "RUN_DIRS")]
        runs: Vec<PathBuf>,
        /// Also write the table to this file (e.g. results/report.md).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Run an experiment preset (configs/experiments/NAME.toml): its runs with a local pool
    /// of processes, resumably, then the report and the plots in OUT/NAME; or --emit slurm.
    Experiment(ExperimentArgs),
    /// Play whole games with a policy (random, or a trained run's) and write the primitive
    /// actions taken as a trajectory file, for mine-macros.
    #[command(group(clap::ArgGroup::new("policy").required(true).args(["random", "checkpoint"])))]
    Record {
        /// Config files (TOML), merged in order (not with --checkpoint: the run's own config).
        #[arg(long = "config", value_name = "FILE", conflicts_with = "checkpoint")]
        configs: Vec<PathBuf>,
        /// Override one key, `key.path=value`, e.g. --set run.seed=1.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Play uniformly random primitive actions.
        #[arg(long)]
        random: bool,
        /// Play this run folder's trained policy (evaluation mode); macros are recorded as the
        /// primitives they executed.
        #[arg(long, value_name = "RUN_DIR")]
        checkpoint: Option<PathBuf>,
        /// Whole games to play.
        #[arg(long)]
        episodes: usize,
        /// The trajectory file to write (JSON lines).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Mine the most frequent n-grams of trajectory files into an action pool file, for
    /// `masp train --set 'macros.source={kind="file", path="POOL_FILE"}'`.
    MineMacros {
        /// Trajectory files written by `masp record`, all of one game.
        #[arg(required = true, value_name = "TRAJ_FILES")]
        trajectories: Vec<PathBuf>,
        /// How many macros to keep.
        #[arg(long)]
        top_k: usize,
        /// Shortest macro, in primitive steps.
        #[arg(long, default_value_t = NgramConfig::default().min_n)]
        min_len: usize,
        /// Longest macro, in primitive steps.
        #[arg(long, default_value_t = NgramConfig::default().max_n)]
        max_len: usize,
        /// The pool file to write (`.json` or `.toml`).
        #[arg(long, value_name = "POOL_FILE")]
        out: PathBuf,
    },
    /// Gym Retro (Sega Genesis) games: ROM management.
    Retro {
        #[command(subcommand)]
        command: RetroCommand,
    },
}

#[derive(Subcommand)]
enum RetroCommand {
    /// Find ROMs in files, folders and zip archives by sha1 (against the game integrations'
    /// rom.sha) and copy each into the ROM folder (RETRO_ROM_DIR, or third_party/retro/roms)
    /// under the name the env looks for, like stable-retro's `python -m retro.import`.
    Import {
        /// Files, folders (searched recursively) or zip archives.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

/// Parses the command line and runs its subcommand.
pub fn run() -> Result<()> {
    // Before any tensor work; RAYON_NUM_THREADS (set by sweeps and Slurm tasks) is kept.
    rainbow::configure_cpu_threads(None);
    match Cli::parse().command {
        Command::Train { configs, sets, out, run_dir, resume, resumable, dry_run, profile } => {
            let mut options =
                TrainOptions { out, run_dir, resume, progress: true, stop: Arc::default(), profile };
            match resumable.then(|| resume_rule(&mut options)) {
                Some(RunStatus::Finished) => Ok(()),
                // A run that --resumable resumes continues as it was set up: the flags that
                // would have started it do not apply (an explicit --resume takes its --set).
                Some(RunStatus::Interrupted) => train_cmd(&[], &[], options, dry_run),
                Some(RunStatus::New) | None => train_cmd(&configs, &sets, options, dry_run),
            }
        }
        Command::Eval { run, episodes, video, policy } => eval_cmd(run, episodes, video, policy),
        Command::Analyze { input, top_k, out } => analyze_cmd(input, top_k, out),
        Command::Plot { runs, out, metric } => plot_cmd(&runs, &out, &metric),
        Command::Report { runs, out } => report_cmd(&runs, out.as_deref()),
        Command::Experiment(args) => experiment_cmd(&args),
        Command::Record { configs, sets, random: _, checkpoint, episodes, out } => {
            record_cmd(&configs, &sets, checkpoint, episodes, &out)
        }
        Command::MineMacros { trajectories, top_k, min_len, max_len, out } => {
            let config = NgramConfig { top_k, min_n: min_len, max_n: max_len, ..NgramConfig::default() };
            mine_cmd(&trajectories, &config, &out)
        }
        Command::Retro { command: RetroCommand::Import { paths } } => retro_import_cmd(&paths),
    }
}

/// `masp retro import`: copies every recognised ROM under PATHS into the ROM folder.
fn retro_import_cmd(paths: &[PathBuf]) -> Result<()> {
    let rom_dir = retro_env::rom_dir();
    let imported = retro_env::import(paths, &retro_env::integrations_dir(), &rom_dir)?;
    for rom in &imported {
        println!("imported {} from {} -> {}", rom.game, rom.source, rom.path.display());
    }
    if imported.is_empty() {
        anyhow::bail!(
            "no ROM under {} matches a game integration's sha1 (rom.sha in {}); stable-retro \
             supports only the exact dumps it names",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            retro_env::integrations_dir().display()
        );
    }
    println!("{} ROM(s) imported into {}", imported.len(), rom_dir.display());
    Ok(())
}

/// `--resumable`: the run folder's status, said; `options` pointed at its checkpoint when it
/// has one, and a finished run's folder printed (as a run's is), there being nothing to do.
fn resume_rule(options: &mut TrainOptions) -> RunStatus {
    let dir = options.run_dir.clone().expect("clap: --resumable requires --run-dir");
    let status = run_status(&dir);
    match status {
        RunStatus::Finished => {
            eprintln!("{}: finished, skipped (it has {})", dir.display(), run_dir::EVAL);
            println!("{}", dir.display());
        }
        RunStatus::Interrupted => {
            eprintln!("{}: resuming from its checkpoint", dir.display());
            options.resume = Some(dir);
            options.run_dir = None;
        }
        RunStatus::New => eprintln!("{}: starting", dir.display()),
    }
    status
}

/// `masp train`: resolves the config, trains until the frame budget, evaluates. Ctrl-C
/// writes a checkpoint and exits cleanly; `--resume` continues the frame count.
fn train_cmd(configs: &[PathBuf], sets: &[String], options: TrainOptions, dry_run: bool) -> Result<()> {
    let config = match &options.resume {
        Some(run) => resume_config(run, sets)?,
        None => RunConfig::load(configs, sets)?,
    };
    if dry_run {
        print!("{}", config.to_toml()?);
        return Ok(());
    }
    let flag = Arc::clone(&options.stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: the user does not want to wait for the checkpoint.
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: writing a checkpoint, then stopping (Ctrl-C again to abort)");
    })
    .context("installing the Ctrl-C handler")?;
    let summary = train(&config, &options)?;
    println!("{}", summary.run.display());
    if let Some(report) = summary.profile {
        println!("{report}");
    }
    Ok(())
}

/// `masp eval RUN_DIR`: plays N episodes with the checkpoint, prints raw game scores and
/// writes `eval.json` or `eval-noisy.json` (and with `--video`, GIFs) into the run folder.
fn eval_cmd(run: PathBuf, episodes: Option<usize>, video: usize, policy: EvalPolicy) -> Result<()> {
    let (report, videos) = evaluate_run(&run, episodes, video, policy)?;
    let scores: Vec<String> = report.scores.iter().map(|s| format!("{s}")).collect();
    println!(
        "{} ({}, {} policy), {} frames trained: mean {:.2} ± {:.2} over {} episodes; scores: {}",
        report.game,
        report.protocol.as_deref().unwrap_or("toy"),
        report.policy.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string()),
        report.frames_trained,
        report.mean,
        report.std,
        report.episodes,
        scores.join(", ")
    );
    for path in videos {
        println!("video: {}", path.display());
    }
    Ok(())
}

/// `masp analyze INPUT`: writes the heatmap of S, `analysis.md` and `analysis.json`, and
/// prints the report.
fn analyze_cmd(input: PathBuf, top_k: usize, out: Option<PathBuf>) -> Result<()> {
    let analysis = crate::analyze(&input, &crate::AnalyzeOptions { top_k, out })?;
    print!("{}", analysis.to_markdown());
    println!("\nwritten: {} and {}", analysis.heatmap.display(), analysis.report.display());
    Ok(())
}

/// `masp plot RUN_DIRS...`: draws the learning curves and prints the files written.
fn plot_cmd(runs: &[PathBuf], out: &std::path::Path, metric: &str) -> Result<()> {
    for file in plot_runs(runs, out, metric)? {
        println!("{}", file.display());
    }
    Ok(())
}

/// `masp report RUN_DIRS...`: prints the final-score table, and writes it to `out`.
fn report_cmd(runs: &[PathBuf], out: Option<&std::path::Path>) -> Result<()> {
    let table = report_markdown(runs)?;
    if let Some(out) = out {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(out, &table).with_context(|| format!("writing {}", out.display()))?;
    }
    print!("{table}");
    Ok(())
}

/// `masp experiment NAME`: the preset's runs, each a `masp train` of this binary, then
/// `masp report` and `masp plot`. Ctrl-C (or SIGINT to this process alone) is passed on to
/// the runs: they checkpoint and stop, and no new run starts.
fn experiment_cmd(args: &ExperimentArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        eprintln!(
            "\nCtrl-C: the running runs write a checkpoint and stop; rerun the same command to continue"
        );
    })
    .context("installing the Ctrl-C handler")?;
    let masp = std::env::current_exe().context("locating the masp binary")?;
    crate::sweep::experiment(args, &masp, std::path::Path::new("."), &stop)
}

/// `masp record`: plays `episodes` games with the policy and writes their primitive actions.
fn record_cmd(
    configs: &[PathBuf],
    sets: &[String],
    checkpoint: Option<PathBuf>,
    episodes: usize,
    out: &std::path::Path,
) -> Result<()> {
    let (config, policy) = match checkpoint {
        Some(run) => (resume_config(&run, sets)?, Policy::Checkpoint(run)),
        None => (RunConfig::load(configs, sets)?, Policy::Random),
    };
    let summary = record(&config, &policy, episodes, out)?;
    println!(
        "{}: {} episodes of {}, {} primitive actions, mean return {:.2}",
        out.display(),
        summary.episodes,
        config.env.game_name(),
        summary.actions,
        summary.mean_return
    );
    Ok(())
}

/// `masp mine-macros`: writes the pool, lists its macros, and warns when fewer than asked.
fn mine_cmd(trajectories: &[PathBuf], config: &NgramConfig, out: &std::path::Path) -> Result<()> {
    let mined = mine_macros(trajectories, config, out)?;
    if let Some(warning) = mined.shortfall() {
        eprintln!("warning: {warning}");
    }
    let pool = &mined.pool;
    println!(
        "{}: {} primitives + {} macros mined from {} episodes ({} actions)",
        out.display(),
        pool.num_primitives(),
        pool.num_macros(),
        mined.episodes,
        mined.actions
    );
    for name in &pool.names()[pool.num_primitives()..] {
        println!("  {name}");
    }
    Ok(())
}
