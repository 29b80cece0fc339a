//! `masp experiment NAME --emit slurm`: a Slurm job array for a cluster, in OUT/NAME/.
//!
//! ```text
//! manifest.tsv   one line per run, dependencies' stages first: the run folder, then the
//!                `masp train` arguments that start it, tab-separated
//! slurm.sh       the array job: task i runs line i+1 of the manifest, resumably (skips a run
//!                with eval.json, resumes one with a checkpoint, starts it otherwise)
//! submit.sh      sbatch of slurm.sh once per stage, each stage --dependency=afterok on the
//!                previous one (transfer runs wait for their source runs)
//! ```
//!
//! The runs' folders, the binary and the repository are named by absolute paths: the cluster
//! is assumed to share the filesystem between the submitting host and the nodes.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::experiment::{ExperimentArgs, Plan, PlannedRun};
use crate::run_dir::LOG;

pub const MANIFEST: &str = "manifest.tsv";
pub const SCRIPT: &str = "slurm.sh";
pub const SUBMIT: &str = "submit.sh";

/// Writes the manifest, the job script and the submit script; prints how to submit and how
/// to make the report afterwards.
pub fn emit(plan: &Plan, masp: &Path, root: &Path, args: &ExperimentArgs) -> Result<()> {
    let masp = std::path::absolute(masp).context("resolving the masp binary's path")?;
    let root = std::path::absolute(root).context("resolving the repository root")?;
    std::fs::create_dir_all(&plan.dir).with_context(|| format!("creating {}", plan.dir.display()))?;
    let stages = plan.stages();
    let mut order: Vec<usize> = (0..plan.runs.len()).collect();
    order.sort_by_key(|&i| stages[i]);

    let manifest: String = order.iter().map(|&i| manifest_line(&plan.runs[i])).collect();
    write(&plan.dir.join(MANIFEST), &manifest, false)?;
    write(&plan.dir.join(SCRIPT), &job_script(plan, &masp, &root), true)?;

    // Contiguous task ranges per stage, in manifest order.
    let mut submit = format!(
        "#!/bin/bash\n# Submits the experiment {}: one job array per stage, each after the previous stage's \
         tasks all succeeded.\nset -euo pipefail\ndep=()\n",
        plan.name
    );
    let mut first = 0;
    let last_stage = order.last().map(|&i| stages[i]).unwrap_or(0);
    for stage in 0..=last_stage {
        let n = order.iter().filter(|&&i| stages[i] == stage).count();
        let script = plan.dir.join(SCRIPT);
        let _ = write!(
            submit,
            "job=$(sbatch --parsable --array={first}-{} \"${{dep[@]}}\" {})\njob=${{job%%;*}}\n\
             echo \"stage {stage}: job array $job, {n} runs\"\ndep=(--dependency=afterok:$job)\n",
            first + n - 1,
            shell_quote(&script.display().to_string())
        );
        first += n;
    }
    write(&plan.dir.join(SUBMIT), &submit, true)?;

    let mut again = format!("cargo xtask experiment {} --report-only", args.name);
    for (flag, names) in [("--games", &args.games), ("--arms", &args.arms)] {
        if !names.is_empty() {
            let _ = write!(again, " {flag} {}", names.join(","));
        }
    }
    if let Some(seeds) = args.seeds {
        let _ = write!(again, " --seeds {seeds}");
    }
    if args.out != Path::new("runs") {
        let _ = write!(again, " --out {}", args.out.display());
    }
    println!(
        "wrote {} runs in {} stage(s) to {}: {MANIFEST}, {SCRIPT}, {SUBMIT}\n\
         submit:      bash {}\n\
         (edit the #SBATCH lines of {SCRIPT} for your cluster first: partition, time, memory)\n\
         afterwards:  {again}   (the report and the plots of the finished runs)\n\
         resubmitting is safe: finished runs are skipped, interrupted ones resumed",
        plan.runs.len(),
        last_stage + 1,
        plan.dir.display(),
        plan.dir.join(SUBMIT).display()
    );
    Ok(())
}

/// The run folder, then the `masp train` arguments, tab-separated.
fn manifest_line(run: &PlannedRun) -> String {
    let mut fields = vec![run.dir.display().to_string()];
    fields.extend(run.train_args());
    fields.join("\t") + "\n"
}

/// The array job: each task a `masp train --resumable`, whose rule
/// ([`crate::run_dir::run_status`]) skips, resumes or starts its run.
fn job_script(plan: &Plan, masp: &Path, root: &Path) -> String {
    let dir = plan.dir.display().to_string();
    format!(
        r#"#!/bin/bash
# The experiment {name}: task i runs line i+1 of {manifest}, one `masp train` each. Submit with
# `bash {submit}`, which orders the stages; `sbatch {script}` alone suits an experiment of one
# stage. A task skips a finished run (eval.json), resumes an interrupted one (checkpoint) and
# starts a new one otherwise, so resubmitting is safe. The run's output goes to its {log} too.
# Edit these for your cluster (partition, time, memory):
#SBATCH --job-name=masp-{name}
#SBATCH --array=0-{last}
#SBATCH --cpus-per-task=2
#SBATCH --output={dir}/slurm-%A_%a.out
set -euo pipefail
MASP=${{MASP:-{masp}}}
cd {root}
line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {manifest_path})
IFS=$'\t' read -r -a fields <<< "$line"
run=${{fields[0]}}
# One rayon thread per allocated core.
export RAYON_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}
mkdir -p "$run"
# Into the job's output and the run's {log}; pipefail passes on masp's exit status.
"$MASP" train --resumable "${{fields[@]:1}}" 2>&1 | tee -a "$run/{log}"
"#,
        name = plan.name,
        manifest = MANIFEST,
        submit = plan.dir.join(SUBMIT).display(),
        script = plan.dir.join(SCRIPT).display(),
        log = LOG,
        last = plan.runs.len() - 1,
        masp = shell_quote(&masp.display().to_string()),
        root = shell_quote(&root.display().to_string()),
        manifest_path = shell_quote(&plan.dir.join(MANIFEST).display().to_string()),
    )
}

/// `text` in single quotes for bash.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn write(path: &Path, text: &str, executable: bool) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Preset;

    #[test]
    fn emitted_files_order_stages_and_quote_arguments() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text = r#"
            [experiment]
            description = "t"
            base = ["configs/toy.toml"]
            seeds = 2
            [[arm]]
            name = "target"
            after = "source"
            [[arm]]
            name = "source"
        "#;
        // `after` must name an arm above: the dependent arm goes second.
        assert!(Preset::parse(&root, Path::new("t.toml"), text).is_err());
        let text = text.replace("name = \"target\"\n            after = \"source\"", "name = \"plain\"");
        let text = text + "            [[arm]]\n            name = \"target\"\n            after = \"source\"\n            set = [\"masp.init_file={run:source}/checkpoint/similarity.json\"]\n";
        let preset = Preset::parse(&root, Path::new("t.toml"), &text).unwrap();
        let out = std::env::temp_dir().join(format!("masp-slurm-unit-{}", std::process::id()));
        let plan = Plan::expand(&preset, &out, None, None).unwrap();
        let args = ExperimentArgs {
            name: "t".into(),
            games: Vec::new(),
            arms: Vec::new(),
            seeds: None,
            jobs: 1,
            frames: None,
            out: out.clone(),
            emit: Some(crate::experiment::Emit::Slurm),
            report_only: false,
        };
        emit(&plan, Path::new("/bin/masp"), &root, &args).unwrap();
        let manifest = std::fs::read_to_string(plan.dir.join(MANIFEST)).unwrap();
        let ids: Vec<&str> =
            manifest.lines().map(|l| l.split('\t').next().unwrap().rsplit('/').next().unwrap()).collect();
        // Stage 0 (plain, source) before stage 1 (target).
        assert_eq!(
            ids,
            [
                "corridor__plain__0",
                "corridor__plain__1",
                "corridor__source__0",
                "corridor__source__1",
                "corridor__target__0",
                "corridor__target__1"
            ]
        );
        let fields: Vec<&str> = manifest.lines().last().unwrap().split('\t').collect();
        assert_eq!(fields[1..3], ["--run-dir", fields[0]]);
        assert!(fields.iter().any(|f| f.starts_with("masp.init_file=") && f.contains("corridor__source__1")));
        let script = std::fs::read_to_string(plan.dir.join(SCRIPT)).unwrap();
        assert!(
            script.contains("#SBATCH --array=0-5\n") && script.contains("MASP=${MASP:-'/bin/masp'}"),
            "{script}"
        );
        let submit = std::fs::read_to_string(plan.dir.join(SUBMIT)).unwrap();
        assert!(submit.contains("--array=0-3 ") && submit.contains("--array=4-5 "), "{submit}");
        assert!(submit.contains("dep=(--dependency=afterok:$job)"), "{submit}");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
