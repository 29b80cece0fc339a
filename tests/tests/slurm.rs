//! `masp experiment --emit slurm` on a real one-node Slurm cluster, set up as
//! shared/design/SLURM.md says: install slurm-wlm and munge (apt, as root), start munged,
//! slurmctld and slurmd from a slurm.conf in a scratch folder, submit the toy sweep's emitted
//! job arrays, wait, check every run finished, make the report, stop the daemons by their
//! pids.
//!
//! Where it cannot run (not root, no apt-get, the install fails, e.g. offline) it prints
//! `SKIPPED: ...` with the reason and returns: run it with `--nocapture` to see which.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{root, MASP};

/// `bash -c script`.
fn sh(script: &str) -> Output {
    Command::new("bash").arg("-c").arg(script).output().expect("running bash")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Why the test cannot run here, if it cannot.
fn cannot_run() -> Option<String> {
    if text(&sh("id -u")).trim() != "0" {
        return Some("not root: installing and starting Slurm needs root".into());
    }
    if sh("command -v sbatch && command -v slurmctld && command -v munged").status.success() {
        return None;
    }
    if !sh("command -v apt-get").status.success() {
        return Some("slurm-wlm is not installed and there is no apt-get to install it".into());
    }
    let install = sh("DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge");
    if !install.status.success() {
        return Some(format!("`apt-get install -y slurm-wlm munge` failed (offline?):\n{}", text(&install)));
    }
    None
}

/// Daemons this test started, stopped by pid when it ends, however it ends.
struct Daemons {
    pid_files: Vec<PathBuf>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for file in self.pid_files.iter().rev() {
            if let Ok(pid) = std::fs::read_to_string(file) {
                let pid = pid.trim();
                if !pid.is_empty() {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn slurm_conf(scratch: &Path, host: &str) -> String {
    let s = scratch.display();
    format!(
        "ClusterName=local\n\
         SlurmctldHost={host}(127.0.0.1)\n\
         AuthType=auth/munge\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         StateSaveLocation={s}/state\n\
         SlurmdSpoolDir={s}/spool\n\
         SlurmctldPidFile={s}/slurmctld.pid\n\
         SlurmdPidFile={s}/slurmd.pid\n\
         SlurmctldLogFile={s}/slurmctld.log\n\
         SlurmdLogFile={s}/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         SchedulerType=sched/backfill\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         ReturnToService=2\n\
         NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=20000 State=UNKNOWN\n\
         PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
    )
}

#[test]
fn slurm_job_arrays_of_the_toy_sweep_run_on_a_one_node_cluster_or_skip_saying_why() {
    if let Some(why) = cannot_run() {
        eprintln!("SKIPPED: the Slurm integration test cannot run here: {why}");
        return;
    }
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("slurm");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).unwrap();
    }
    for dir in ["state", "spool", "out"] {
        std::fs::create_dir_all(scratch.join(dir)).unwrap();
    }
    let mut daemons = Daemons { pid_files: Vec::new() };

    // munge, unless one already answers (then it is not ours to stop).
    if !text(&sh("munge -n | unmunge")).contains("Success") {
        let start = sh("mkdir -p /run/munge && chown munge:munge /run/munge && /usr/sbin/munged --force");
        assert!(start.status.success(), "starting munged: {}", text(&start));
        daemons.pid_files.push("/run/munge/munged.pid".into());
        wait_for("munge", Duration::from_secs(10), || text(&sh("munge -n | unmunge")).contains("Success"));
    }

    let host = text(&sh("hostname -s")).trim().to_string();
    let conf = scratch.join("slurm.conf");
    std::fs::write(&conf, slurm_conf(&scratch, &host)).unwrap();
    let conf_env = format!("export SLURM_CONF={};", conf.display());
    for daemon in ["slurmctld", "slurmd"] {
        let start = sh(&format!("{conf_env} {daemon} -f $SLURM_CONF"));
        assert!(start.status.success(), "starting {daemon}: {}", text(&start));
        daemons.pid_files.push(scratch.join(format!("{daemon}.pid")));
    }
    wait_for("the node to be idle in sinfo", Duration::from_secs(60), || {
        text(&sh(&format!("{conf_env} sinfo -h -o %T"))).trim() == "idle"
    });

    // Emit the toy sweep with a tiny budget, submit it, wait for the queue to drain.
    let masp = MASP;
    let out = scratch.join("out");
    let common = ["toy-sweep", "--frames", "300", "--out", out.to_str().unwrap()];
    let emit = Command::new(masp)
        .args(["experiment", "--emit", "slurm"])
        .args(common)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(emit.status.success(), "{}", text(&emit));
    assert!(text(&emit).contains("--report-only"), "it says how to make the report: {}", text(&emit));
    let dir = out.join("toy-sweep");
    let submit = sh(&format!("{conf_env} bash {}", dir.join("submit.sh").display()));
    assert!(submit.status.success(), "submitting: {}", text(&submit));
    wait_for("the jobs to finish", Duration::from_secs(180), || {
        text(&sh(&format!("{conf_env} squeue -h"))).trim().is_empty()
    });

    let runs = ["rainbow-macros__0", "rainbow-macros__1", "masp__0", "masp__1"];
    for (task, id) in runs.iter().enumerate() {
        let run = dir.join(format!("corridor__{id}"));
        let slurm_log = sh(&format!("cat {}/slurm-*_{task}.out", dir.display()));
        let train_log = std::fs::read_to_string(run.join("train.log")).unwrap_or_default();
        assert!(
            run.join("eval.json").exists(),
            "{id} did not finish\nslurm output: {}\ntrain.log: {train_log}",
            text(&slurm_log)
        );
        assert!(text(&slurm_log).contains("starting"), "{}", text(&slurm_log));
    }

    // A second submission skips every run.
    let submit = sh(&format!("{conf_env} bash {}", dir.join("submit.sh").display()));
    assert!(submit.status.success(), "submitting again: {}", text(&submit));
    wait_for("the second submission to finish", Duration::from_secs(120), || {
        text(&sh(&format!("{conf_env} squeue -h"))).trim().is_empty()
    });
    let skipped = text(&sh(&format!("cat {}/slurm-*.out", dir.display())));
    assert_eq!(skipped.matches("finished, skipped").count(), 4, "{skipped}");

    let report = Command::new(masp)
        .args(["experiment", "--report-only"])
        .args(common)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", text(&report));
    assert!(dir.join("report.md").exists() && dir.join("curves.png").exists());
    drop(daemons);
}
