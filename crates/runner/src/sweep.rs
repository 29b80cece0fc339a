//! `masp experiment NAME`: a preset's runs ([`crate::experiment`]) with a local pool of
//! `masp train` processes, then the report and the plots; or, with `--emit slurm`, a Slurm
//! job array ([`crate::slurm`]).
//!
//! ```text
//! OUT/NAME/{game}__{arm}__{seed}/   one run folder each (see crate::run_dir), plus train.log:
//!                                   the run's stdout and stderr, appended by every session
//! OUT/NAME/report.md                `masp report` of the finished runs
//! OUT/NAME/curves.{png,svg}         `masp plot` of the finished runs
//! ```
//!
//! `--games` and `--arms` run a subset of the preset's runs, in the same folders.
//!
//! Resumable: a run whose folder has `eval.json` is finished and skipped, one with a
//! checkpoint continues with `masp train --resume`, any other starts with `--run-dir`. A run
//! waits for its `after` run; a failed run fails its dependents and no other. Ctrl-C (or
//! `kill -INT` of this process alone, as a scheduler sends it) stops every run at its next
//! checkpoint: each run has its own process group, so the signal reaches it once, passed on
//! by this process; the same command later continues them.

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::eval::EvalReport;
use crate::experiment::{Emit, ExperimentArgs, Plan, PlannedRun, Preset};
use crate::run_dir::{self, run_status, RunStatus, LOG};

/// The report of the finished runs, in the experiment's folder.
pub const REPORT: &str = "report.md";

/// `masp experiment`: see the module docs. `masp` is the binary that runs each run (this
/// one); `root` the folder presets and config paths are relative to; `stop` is set by
/// Ctrl-C.
pub fn experiment(args: &ExperimentArgs, masp: &Path, root: &Path, stop: &AtomicBool) -> Result<()> {
    let preset = Preset::load(root, &args.name)?.select(&args.games, &args.arms)?;
    let plan = Plan::expand(&preset, &args.out, args.seeds, args.frames)?;
    if args.emit == Some(Emit::Slurm) {
        return crate::slurm::emit(&plan, masp, root, args);
    }
    if args.report_only {
        return report(&plan, masp);
    }
    anyhow::ensure!(args.jobs >= 1, "--jobs 0: run at least 1 run at a time");
    eprintln!("{}: {}", preset.name, preset.experiment.description);
    let failures = execute(&plan, masp, args.jobs, stop)?;
    let unfinished: Vec<&PlannedRun> =
        plan.runs.iter().filter(|r| run_status(&r.dir) != RunStatus::Finished).collect();
    // A failed report must not hide the runs' failures, nor they the report's.
    let reported = if unfinished.len() < plan.runs.len() { report(&plan, masp) } else { Ok(()) };
    if let (Err(e), false) = (&reported, failures.is_empty() && unfinished.is_empty()) {
        eprintln!("error: {e:#}");
    }
    if !failures.is_empty() {
        let list: Vec<String> = failures.iter().map(|(id, why)| format!("  {id}: {why}")).collect();
        bail!(
            "{} of {} runs failed:\n{}\nfix the cause and rerun the same command: finished runs are skipped",
            failures.len(),
            plan.runs.len(),
            list.join("\n")
        );
    }
    if !unfinished.is_empty() {
        let interrupted = unfinished.iter().filter(|r| run_status(&r.dir) == RunStatus::Interrupted).count();
        bail!(
            "{} of {} runs are not finished ({interrupted} interrupted at a checkpoint, {} not started); rerun \
             the same command to continue",
            unfinished.len(),
            plan.runs.len(),
            unfinished.len() - interrupted
        );
    }
    reported
}

/// The running `masp train` processes, so that a stop reaches each of them exactly once (a
/// second Ctrl-C makes `masp train` abort without its checkpoint).
#[derive(Clone, Default)]
struct Children(Arc<Mutex<ChildList>>);

#[derive(Default)]
struct ChildList {
    pids: Vec<u32>,
    interrupted: bool,
}

impl Children {
    /// Starts `cmd` in its own process group, so that a terminal's Ctrl-C reaches it only
    /// through [`Children::interrupt`]; a run started after the stop is interrupted at once.
    fn spawn(&self, cmd: &mut Command) -> std::io::Result<std::process::Child> {
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let child = cmd.spawn()?;
        list.pids.push(child.id());
        if list.interrupted {
            interrupt(child.id());
        }
        Ok(child)
    }

    fn remove(&self, pid: u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pids.retain(|&p| p != pid);
    }

    /// SIGINT to every running run, once: each writes its checkpoint and stops.
    fn interrupt(&self) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !std::mem::replace(&mut list.interrupted, true) {
            list.pids.iter().for_each(|&pid| interrupt(pid));
        }
    }
}

#[cfg(unix)]
fn interrupt(pid: u32) {
    use nix::sys::signal::{kill, Signal};
    // A run that has just exited is no longer there to stop.
    let _ = kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGINT);
}

#[cfg(not(unix))]
fn interrupt(_pid: u32) {}

/// What a worker thread sends back: the run's index, how `masp train` exited, how long it took.
type Outcome = (usize, Result<ExitStatus>, Duration);

/// Runs the plan's unfinished runs, `jobs` at a time; returns the failed runs' ids and why.
fn execute(plan: &Plan, masp: &Path, jobs: usize, stop: &AtomicBool) -> Result<Vec<(String, String)>> {
    #[derive(Clone, PartialEq)]
    enum State {
        Waiting,
        Running,
        Done,
        /// Stopped at a checkpoint (Ctrl-C): left for the next invocation.
        Interrupted,
        Failed(String),
    }
    let total = plan.runs.len();
    let statuses: Vec<RunStatus> = plan.runs.iter().map(|r| run_status(&r.dir)).collect();
    let count = |s: RunStatus| statuses.iter().filter(|&&x| x == s).count();
    eprintln!(
        "{total} runs in {}: {} finished (skipped), {} to resume, {} to start; {jobs} at a time, each \
         logging to its {LOG}",
        plan.dir.display(),
        count(RunStatus::Finished),
        count(RunStatus::Interrupted),
        count(RunStatus::New)
    );
    let mut state: Vec<State> = statuses
        .iter()
        .map(|s| if *s == RunStatus::Finished { State::Done } else { State::Waiting })
        .collect();
    // Cores shared by the runs: each run's rayon pool gets its part, unless the user says.
    let threads = std::env::var("RAYON_NUM_THREADS").ok().unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        (cores / jobs).max(1).to_string()
    });
    let (tx, rx) = mpsc::channel::<Outcome>();
    let children = Children::default();
    let (mut running, mut ended) = (0usize, count(RunStatus::Finished));
    loop {
        // Plan order puts a dependency before its dependents, so one pass settles chains.
        for i in 0..total {
            if state[i] != State::Waiting {
                continue;
            }
            if let Some(a) = plan.runs[i].after {
                if let State::Failed(_) = state[a] {
                    state[i] =
                        State::Failed(format!("not started: it waits for {}, which failed", plan.runs[a].id));
                    ended += 1;
                    eprintln!(
                        "[{ended}/{total}] {}: not started, {} failed",
                        plan.runs[i].id, plan.runs[a].id
                    );
                    continue;
                }
                if state[a] != State::Done {
                    continue;
                }
            }
            if running >= jobs || stop.load(Ordering::SeqCst) {
                continue;
            }
            let run = &plan.runs[i];
            let status = run_status(&run.dir);
            let mut cmd = train_command(masp, run);
            cmd.env("RAYON_NUM_THREADS", &threads);
            let dir = run.dir.clone();
            let tx = tx.clone();
            let children = children.clone();
            eprintln!(
                "{} {}",
                if status == RunStatus::Interrupted { "resuming" } else { "starting" },
                run.id
            );
            std::thread::spawn(move || {
                let start = Instant::now();
                let result = spawn_logged(&mut cmd, &dir, &children);
                // The receiver lives until every worker has reported.
                let _ = tx.send((i, result, start.elapsed()));
            });
            state[i] = State::Running;
            running += 1;
        }
        if running == 0 {
            break;
        }
        let (i, result, elapsed) = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(outcome) => break outcome,
                Err(mpsc::RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => children.interrupt(),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("a run's worker thread vanished"),
            }
        };
        running -= 1;
        let run = &plan.runs[i];
        let log = run.dir.join(LOG);
        let secs = elapsed.as_secs_f64();
        match result {
            Ok(exit) if exit.success() && run_status(&run.dir) == RunStatus::Finished => {
                state[i] = State::Done;
                ended += 1;
                eprintln!("[{ended}/{total}] {}: finished in {secs:.0} s{}", run.id, eval_summary(&run.dir));
            }
            Ok(exit) if exit.success() => {
                // Stopped by Ctrl-C at a checkpoint: neither done nor failed.
                state[i] = State::Interrupted;
                eprintln!("{}: interrupted after {secs:.0} s; its checkpoint is kept", run.id);
            }
            Ok(exit) => {
                state[i] = State::Failed(format!("masp train exited with {exit}; log: {}", log.display()));
                ended += 1;
                eprintln!(
                    "[{ended}/{total}] {}: FAILED ({exit}) after {secs:.0} s; log: {}",
                    run.id,
                    log.display()
                );
            }
            Err(e) => {
                state[i] = State::Failed(format!("{e:#}"));
                ended += 1;
                eprintln!("[{ended}/{total}] {}: FAILED: {e:#}", run.id);
            }
        }
    }
    Ok(plan
        .runs
        .iter()
        .zip(&state)
        .filter_map(|(r, s)| match s {
            State::Failed(why) => Some((r.id.clone(), why.clone())),
            _ => None,
        })
        .collect())
}

/// `masp train --resumable` for a run: it skips, resumes or starts the run as its folder
/// says ([`RunStatus`]).
pub fn train_command(masp: &Path, run: &PlannedRun) -> Command {
    let mut cmd = Command::new(masp);
    cmd.args(["train", "--resumable"]).args(run.train_args());
    cmd
}

/// Runs `cmd` with stdout and stderr appended to `dir/train.log`, after a line naming it.
fn spawn_logged(cmd: &mut Command, dir: &Path, children: &Children) -> Result<ExitStatus> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOG);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(log, "==> {cmd:?}").with_context(|| format!("writing {}", path.display()))?;
    cmd.stdout(log.try_clone()?).stderr(log);
    let mut child = children.spawn(cmd).with_context(|| format!("could not start {cmd:?}"))?;
    let status = child.wait().with_context(|| format!("waiting for {cmd:?}"));
    children.remove(child.id());
    status
}

/// `", eval mean 1.00 over 3 episodes"`, or nothing when eval.json cannot be read.
fn eval_summary(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(run_dir::EVAL))
        .ok()
        .and_then(|t| serde_json::from_str::<EvalReport>(&t).ok())
        .map(|e| format!(", eval mean {:.2} over {} episodes", e.mean, e.episodes))
        .unwrap_or_default()
}

/// `masp report` and `masp plot` of the plan's finished runs into its folder; names the
/// runs that are not finished.
fn report(plan: &Plan, masp: &Path) -> Result<()> {
    let (finished, missing): (Vec<&PlannedRun>, Vec<&PlannedRun>) =
        plan.runs.iter().partition(|r| run_status(&r.dir) == RunStatus::Finished);
    if finished.is_empty() {
        bail!("no run of {} has finished yet (none has eval.json): nothing to report", plan.dir.display());
    }
    if !missing.is_empty() {
        let ids: Vec<&str> = missing.iter().map(|r| r.id.as_str()).collect();
        eprintln!("the report leaves out {} unfinished runs: {}", ids.len(), ids.join(", "));
    }
    let dirs: Vec<&Path> = finished.iter().map(|r| r.dir.as_path()).collect();
    let report = plan.dir.join(REPORT);
    let run = |what: &str, out: &Path| -> Result<()> {
        let mut cmd = Command::new(masp);
        cmd.arg(what).args(&dirs).arg("--out").arg(out);
        let status = cmd.status().with_context(|| format!("could not start masp {what}"))?;
        anyhow::ensure!(status.success(), "masp {what} failed with {status}");
        Ok(())
    };
    run("report", &report)?;
    run("plot", &plan.dir)?;
    eprintln!("report: {}\nplots: {}/curves.png, curves.svg", report.display(), plan.dir.display());
    Ok(())
}
