//! Experiment presets, `configs/experiments/NAME.toml`: one of the paper's experiments as
//! games × arms × seeds of `masp train` runs, each in a fixed folder
//! `OUT/NAME/{game}__{arm}__{seed}/` so that a rerun finds it.
//!
//! ```toml
//! [experiment]
//! description = "MASP vs naive macros (MASP paper, section 6)"  # say the source
//! base = ["configs/protocols/machado.toml"]  # config files under every run, in order
//! games = ["breakout", "pong"]  # each run sets env.game; leave out for toy envs
//! seeds = 3                     # seeds 0..3; `--seeds` overrides
//! frames = 10_000_000           # run.frames, # environment frames; `--frames` overrides
//! set = ["run.eval_episodes=10"]  # `--set`s for every run
//!
//! [[arm]]                       # one agent or sweep point
//! name = "masp-k64"             # the run's run.name, and its folder's {arm}
//! configs = ["configs/agents/masp.toml"]  # after `base`
//! set = ["macros.source.count=64"]        # after the experiment's `set`
//!
//! [[arm]]                       # transfer: waits for an arm above, same game and seed
//! name = "masp-transfer"
//! after = "masp-k64"
//! set = ["masp.init_file={run:masp-k64}/checkpoint/similarity.json"]  # that run's folder
//! ```
//!
//! A run's config is `masp train` with `--config` base..., the arm's configs..., then
//! `--set` run.frames (the preset's), the experiment's sets, the arm's sets, `env.game`,
//! `run.seed`, `run.name`, and last `run.frames` from `--frames`. Every run's config is
//! resolved when the preset is expanded, so a bad key fails before anything trains.
//! [`Preset::select`] keeps some of the games and arms (`--games`, `--arms`) before that.
//!
//! ```no_run
//! use masp_runner::experiment::{Preset, Plan};
//! let preset = Preset::load(".".as_ref(), "toy-sweep")?;  // configs/experiments/toy-sweep.toml
//! let plan = Plan::expand(&preset, "runs".as_ref(), None, None)?;
//! for run in &plan.runs {
//!     println!("{} after {:?}: masp train {}", run.id, run.after, run.train_args().join(" "));
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use crate::config::RunConfig;
use crate::overrides::{self, Source};

/// Where presets named without a path live, relative to the root (the repository).
pub const PRESET_DIR: &str = "configs/experiments";

/// A parsed preset file.
#[derive(Clone, Debug)]
pub struct Preset {
    /// The file's stem: the experiment's folder under OUT.
    pub name: String,
    pub path: PathBuf,
    /// What the config paths inside are relative to: the repository root.
    pub root: PathBuf,
    pub experiment: ExperimentSection,
    pub arms: Vec<Arm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    experiment: ExperimentSection,
    #[serde(default)]
    arm: Vec<Arm>,
}

/// `[experiment]`: what every run shares.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    /// What the experiment reproduces, and its source.
    pub description: String,
    /// Config files under every run, merged in order.
    #[serde(default)]
    pub base: Vec<PathBuf>,
    /// ALE game names; each run sets `env.game`. Empty: the arms' configs name the env.
    #[serde(default)]
    pub games: Vec<String>,
    /// Seeds `0..seeds` per game and arm. Default 1.
    #[serde(default = "one")]
    pub seeds: u64,
    /// `run.frames` of every run, # environment frames. Default: the configs' own.
    pub frames: Option<u64>,
    /// `key.path=value` overrides for every run.
    #[serde(default)]
    pub set: Vec<String>,
}

fn one() -> u64 {
    1
}

/// `[[arm]]`: one agent or sweep point.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    /// The runs' `run.name` and their folders' `{arm}`.
    pub name: String,
    /// Config files after the experiment's `base`.
    #[serde(default)]
    pub configs: Vec<PathBuf>,
    /// Overrides after the experiment's `set`; `{run:ARM}` in a value is the folder of
    /// ARM's run with the same game and seed (ARM must be this arm's `after`).
    #[serde(default)]
    pub set: Vec<String>,
    /// An arm above this one whose run (same game and seed) must finish first.
    pub after: Option<String>,
}

impl Preset {
    /// `name` is a preset in `root/`[`PRESET_DIR`] (`main`), or a path to a `.toml` file;
    /// config paths inside are relative to `root`.
    pub fn load(root: &Path, name: &str) -> Result<Self> {
        let path = if name.ends_with(".toml") || name.contains(['/', '\\']) {
            PathBuf::from(name)
        } else {
            root.join(PRESET_DIR).join(format!("{name}.toml"))
        };
        if !path.exists() {
            let known = available_presets(root);
            let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
            bail!(
                "no experiment preset {} ({} is missing){}; presets in {PRESET_DIR}/: {}",
                name,
                path.display(),
                overrides::did_you_mean(name, &known_refs),
                known.join(", ")
            );
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(root, &path, &text)
    }

    /// Parses and checks a preset's text; `path` names it in errors and gives its name.
    pub fn parse(root: &Path, path: &Path, text: &str) -> Result<Self> {
        let source = Source::parse(&path.display().to_string(), text)?;
        let file = PresetFile::deserialize(toml::Value::Table(source.table.clone()))
            .map_err(|e| overrides::explain(&e, std::slice::from_ref(&source)))?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("experiment").to_string();
        let preset = Preset {
            name,
            path: path.to_path_buf(),
            root: root.to_path_buf(),
            experiment: file.experiment,
            arms: file.arm,
        };
        preset.check()?;
        Ok(preset)
    }

    /// The preset cut down to `games` and `arms` (`--games`, `--arms`; empty keeps all),
    /// in the preset's order, so that a subset's runs keep their folders and a later full
    /// run skips them. A name the preset lacks is an error listing the names it has.
    pub fn select(mut self, games: &[String], arms: &[String]) -> Result<Self> {
        let at = self.path.display().to_string();
        if !games.is_empty() {
            ensure!(
                !self.experiment.games.is_empty(),
                "--games {}: {at} lists no games (its arms' configs name the env); leave --games out",
                games.join(",")
            );
            check_selected("--games", "game", &at, games, self.experiment.games.iter())?;
            self.experiment.games.retain(|g| games.contains(g));
        }
        if !arms.is_empty() {
            check_selected("--arms", "arm", &at, arms, self.arms.iter().map(|a| &a.name))?;
            for arm in self.arms.iter().filter(|a| arms.contains(&a.name)) {
                if let Some(after) = arm.after.as_ref().filter(|after| !arms.contains(after)) {
                    bail!(
                        "--arms: arm `{}` waits for arm `{after}`'s runs (same game and seed); select both: \
                         --arms {after},{}",
                        arm.name,
                        arms.join(",")
                    );
                }
            }
            self.arms.retain(|a| arms.contains(&a.name));
        }
        Ok(self)
    }

    /// The structural checks; the runs' configs are checked by [`Plan::expand`].
    fn check(&self) -> Result<()> {
        let at = self.path.display();
        let e = &self.experiment;
        ensure!(!self.arms.is_empty(), "{at}: no [[arm]]: give at least one, e.g. [[arm]] name = \"masp\"");
        ensure!(e.seeds >= 1, "{at}: experiment.seeds = 0: use at least 1 seed");
        ensure!(e.frames != Some(0), "{at}: experiment.frames = 0: give a budget in environment frames");
        for (i, game) in e.games.iter().enumerate() {
            ensure!(!e.games[..i].contains(game), "{at}: experiment.games lists `{game}` twice");
        }
        let mut seen: Vec<&str> = Vec::new();
        for arm in &self.arms {
            let name = arm.name.as_str();
            ensure!(
                !name.is_empty() && !name.contains(['/', '\\', '\t', '{', '}']) && !name.contains("__"),
                "{at}: arm name {name:?}: use a non-empty name without `/`, `__` or braces, e.g. \"masp-k64\""
            );
            ensure!(!seen.contains(&name), "{at}: two arms are named `{name}`");
            if let Some(after) = &arm.after {
                ensure!(
                    seen.contains(&after.as_str()),
                    "{at}: arm `{name}`: after = \"{after}\" names no arm above it{}; arms above: {}",
                    overrides::did_you_mean(after, &seen),
                    if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
                );
            }
            for set in e.set.iter().chain(&arm.set) {
                for target in placeholders(set) {
                    ensure!(
                        arm.after.as_deref() == Some(target),
                        "{at}: arm `{name}`: `{set}` uses {{run:{target}}} but the arm does not wait for that \
                         run; add after = \"{target}\""
                    );
                }
            }
            seen.push(name);
        }
        Ok(())
    }
}

/// The presets in `root/`[`PRESET_DIR`], by name.
pub fn available_presets(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join(PRESET_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}

/// Fails unless every name in `asked` (from the option `flag`) is one of `known`, the
/// preset's `noun`s; the error names the first stranger, the closest name and all of them.
fn check_selected<'a>(
    flag: &str,
    noun: &str,
    at: &str,
    asked: &[String],
    known: impl Iterator<Item = &'a String>,
) -> Result<()> {
    let known: Vec<&str> = known.map(String::as_str).collect();
    if let Some(stranger) = asked.iter().find(|a| !known.contains(&a.as_str())) {
        bail!(
            "{flag}: {at} has no {noun} `{stranger}`{}; its {noun}s: {}",
            overrides::did_you_mean(stranger, &known),
            known.join(", ")
        );
    }
    Ok(())
}

/// The arm names of the `{run:ARM}` placeholders in `text`.
fn placeholders(text: &str) -> Vec<&str> {
    text.split("{run:").skip(1).filter_map(|rest| rest.split_once('}').map(|(arm, _)| arm)).collect()
}

/// One `masp train` run of an experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// `{game}__{arm}__{seed}`, the folder's name.
    pub id: String,
    /// `OUT/NAME/{id}`, absolute so that a config's `{run:ARM}` paths hold from anywhere.
    pub dir: PathBuf,
    pub game: String,
    pub arm: String,
    pub seed: u64,
    pub configs: Vec<PathBuf>,
    pub sets: Vec<String>,
    /// The index in [`Plan::runs`] of the run this one waits for.
    pub after: Option<usize>,
}

impl PlannedRun {
    /// `masp train` arguments that start this run in its folder.
    pub fn train_args(&self) -> Vec<String> {
        let mut args = vec!["--run-dir".to_string(), self.dir.display().to_string()];
        for c in &self.configs {
            args.extend(["--config".to_string(), c.display().to_string()]);
        }
        for s in &self.sets {
            args.extend(["--set".to_string(), s.clone()]);
        }
        args
    }
}

/// A preset expanded into its runs, dependencies before their dependents.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    /// `OUT/NAME`, absolute.
    pub dir: PathBuf,
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    /// Expands `preset` under `out` (`OUT/NAME/...`), with `seeds` and `frames` overriding
    /// the preset's, and resolves every run's config.
    pub fn expand(preset: &Preset, out: &Path, seeds: Option<u64>, frames: Option<u64>) -> Result<Self> {
        let e = &preset.experiment;
        let seeds = seeds.unwrap_or(e.seeds);
        ensure!(seeds >= 1, "--seeds 0: use at least 1 seed");
        ensure!(frames != Some(0), "--frames 0: give a budget in environment frames");
        let dir = std::path::absolute(out.join(&preset.name))
            .with_context(|| format!("resolving {}", out.display()))?;
        // `None`: the arm's configs name the env, one game per arm.
        let games: Vec<Option<&String>> =
            if e.games.is_empty() { vec![None] } else { e.games.iter().map(Some).collect() };
        let mut runs: Vec<PlannedRun> = Vec::new();
        // Arms in file order, so that an `after` arm's runs are always planned first.
        for arm in &preset.arms {
            let configs: Vec<PathBuf> =
                e.base.iter().chain(&arm.configs).map(|f| preset.root.join(f)).collect();
            for file in &configs {
                ensure!(
                    file.exists(),
                    "{}: arm `{}`: the config file {} does not exist (paths are relative to the repository \
                     root)",
                    preset.path.display(),
                    arm.name,
                    file.display()
                );
            }
            for game in &games {
                for seed in 0..seeds {
                    // The same seed, and the same game when the experiment lists games (else
                    // each arm names its own, as a transfer's source and target do).
                    let after = arm.after.as_ref().map(|name| {
                        runs.iter()
                            .position(|r| {
                                r.arm == *name && r.seed == seed && game.is_none_or(|g| r.game == *g)
                            })
                            .expect("check() made sure `after` names an arm above")
                    });
                    let substitute = |set: &String| match after {
                        Some(i) => set
                            .replace(&format!("{{run:{}}}", runs[i].arm), &runs[i].dir.display().to_string()),
                        None => set.clone(),
                    };
                    let mut sets: Vec<String> =
                        e.frames.map(|f| format!("run.frames={f}")).into_iter().collect();
                    sets.extend(e.set.iter().chain(&arm.set).map(substitute));
                    if let Some(game) = game {
                        sets.push(format!("env.game={game}"));
                    }
                    sets.push(format!("run.seed={seed}"));
                    sets.push(format!("run.name={}", arm.name));
                    sets.extend(frames.map(|f| format!("run.frames={f}")));
                    let config = RunConfig::load(&configs, &sets).with_context(|| {
                        format!("{}: arm `{}`, seed {seed}", preset.path.display(), arm.name)
                    })?;
                    ensure!(
                        config.run.eval_episodes >= 1,
                        "{}: arm `{}`: run.eval_episodes = 0, but a sweep needs the final evaluation: it marks \
                         a run finished (eval.json) and feeds the report",
                        preset.path.display(),
                        arm.name
                    );
                    for s in &sets {
                        ensure!(!s.contains(['\t', '\n']), "`{s}`: a set may not hold tabs or newlines");
                    }
                    let game = config.env.game_name();
                    let id = format!("{game}__{}__{seed}", arm.name);
                    ensure!(
                        !runs.iter().any(|r| r.id == id),
                        "{}: two runs would share the folder {id}: give the arms distinct names or games",
                        preset.path.display()
                    );
                    runs.push(PlannedRun {
                        dir: dir.join(&id),
                        id,
                        game,
                        arm: arm.name.clone(),
                        seed,
                        configs: configs.clone(),
                        sets,
                        after,
                    });
                }
            }
        }
        Ok(Plan { name: preset.name.clone(), dir, runs })
    }

    /// How many runs must finish before each run can start: 0 for independent runs, 1 for
    /// those that wait on one, and so on. Slurm submits one array per stage.
    pub fn stages(&self) -> Vec<usize> {
        let mut stage = vec![0; self.runs.len()];
        for (i, run) in self.runs.iter().enumerate() {
            if let Some(a) = run.after {
                stage[i] = stage[a] + 1;
            }
        }
        stage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Parses `text` as a preset named `t`.
    fn preset(text: &str) -> Result<Preset> {
        Preset::parse(&root(), Path::new("t.toml"), text)
    }

    const TOY: &str = r#"
        [experiment]
        description = "test"
        base = ["configs/toy.toml"]
        seeds = 2
        frames = 500
        set = ["run.eval_episodes=2"]
        [[arm]]
        name = "source"
        set = ["masp.eta=0.5"]
        [[arm]]
        name = "target"
        after = "source"
        set = ["masp.init_file={run:source}/checkpoint/similarity.json"]
    "#;

    #[test]
    fn expansion_counts_sets_folders_and_placeholders() {
        {
            let p = preset(TOY).unwrap();
            let plan = Plan::expand(&p, Path::new("out"), None, None).unwrap();
            assert_eq!(plan.runs.len(), 4, "2 arms x 2 seeds");
            let ids: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(
                ids,
                ["corridor__source__0", "corridor__source__1", "corridor__target__0", "corridor__target__1"]
            );
            assert!(plan.dir.is_absolute() && plan.dir.ends_with("out/t"));
            let r = &plan.runs[3];
            assert_eq!(r.dir, plan.dir.join("corridor__target__1"));
            assert_eq!(r.after, Some(1), "same seed of the source arm");
            let init = format!("masp.init_file={}/checkpoint/similarity.json", plan.runs[1].dir.display());
            assert_eq!(
                r.sets,
                ["run.frames=500", "run.eval_episodes=2", &init, "run.seed=1", "run.name=target"]
                    .map(String::from)
            );
            assert_eq!(plan.stages(), [0, 0, 1, 1]);
            let args = r.train_args();
            assert_eq!(
                args[..4],
                [
                    "--run-dir",
                    &r.dir.display().to_string(),
                    "--config",
                    &root().join("configs/toy.toml").display().to_string()
                ]
            );

            // --seeds and --frames override; --frames comes last.
            let plan = Plan::expand(&p, Path::new("out"), Some(3), Some(900)).unwrap();
            assert_eq!(plan.runs.len(), 6);
            assert_eq!(plan.runs[0].sets.last().map(String::as_str), Some("run.frames=900"));
            // Deterministic: the same preset gives the same plan.
            let again = Plan::expand(&p, Path::new("out"), Some(3), Some(900)).unwrap();
            assert_eq!(plan.runs, again.runs);
        }
    }

    #[test]
    fn games_multiply_the_runs_and_dependencies_keep_the_game() {
        {
            let text = r#"
                [experiment]
                description = "test"
                base = ["configs/protocols/machado.toml"]
                games = ["pong", "breakout"]
                [[arm]]
                name = "a"
                configs = ["configs/agents/masp.toml"]
                [[arm]]
                name = "b"
                configs = ["configs/agents/masp.toml"]
                after = "a"
            "#;
            let plan = Plan::expand(&preset(text).unwrap(), Path::new("out"), Some(2), None).unwrap();
            assert_eq!(plan.runs.len(), 2 * 2 * 2);
            for r in plan.runs.iter().filter(|r| r.arm == "b") {
                let a = &plan.runs[r.after.unwrap()];
                assert_eq!((a.arm.as_str(), &a.game, a.seed), ("a", &r.game, r.seed));
                assert!(r.sets.contains(&format!("env.game={}", r.game)));
            }
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn games_and_arms_select_a_subset_in_the_preset_order_and_folders() {
        let text = r#"
            [experiment]
            description = "test"
            base = ["configs/protocols/machado.toml"]
            games = ["pong", "breakout", "frostbite"]
            [[arm]]
            name = "a"
            configs = ["configs/agents/rainbow.toml"]
            [[arm]]
            name = "b"
            configs = ["configs/agents/rainbow.toml"]
            after = "a"
            [[arm]]
            name = "c"
            configs = ["configs/agents/rainbow.toml"]
        "#;
        let full = Plan::expand(&preset(text).unwrap(), Path::new("out"), Some(1), None).unwrap();
        assert_eq!(full.runs.len(), 3 * 3);
        let subset =
            preset(text).unwrap().select(&names(&["frostbite", "pong"]), &names(&["c", "a"])).unwrap();
        let plan = Plan::expand(&subset, Path::new("out"), Some(1), None).unwrap();
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["pong__a__0", "frostbite__a__0", "pong__c__0", "frostbite__c__0"]);
        for run in &plan.runs {
            assert!(full.runs.iter().any(|f| f.dir == run.dir && f.sets == run.sets), "{}", run.id);
        }
        let all = preset(text).unwrap().select(&[], &[]).unwrap();
        assert_eq!(Plan::expand(&all, Path::new("out"), Some(1), None).unwrap().runs, full.runs);
        // A dependent arm keeps its dependency.
        let chain = preset(text).unwrap().select(&[], &names(&["a", "b"])).unwrap();
        let plan = Plan::expand(&chain, Path::new("out"), Some(1), None).unwrap();
        assert_eq!(plan.runs[3].after, Some(0), "pong__b__0 waits for pong__a__0");

        let err = |games: &[&str], arms: &[&str]| {
            preset(text).unwrap().select(&names(games), &names(arms)).unwrap_err().to_string()
        };
        assert_eq!(
            err(&["pong", "frostbit"], &[]),
            "--games: t.toml has no game `frostbit`; did you mean `frostbite`?; its games: pong, breakout, frostbite"
        );
        assert_eq!(err(&[], &["d"]), "--arms: t.toml has no arm `d`; its arms: a, b, c");
        let e = err(&[], &["b", "c"]);
        assert!(e.contains("arm `b` waits for arm `a`'s runs") && e.contains("--arms a,b,c"), "{e}");
        let e = preset(TOY).unwrap().select(&names(&["pong"]), &[]).unwrap_err().to_string();
        assert!(e.contains("t.toml lists no games") && e.contains("leave --games out"), "{e}");
    }

    fn error(text: &str) -> String {
        format!(
            "{:#}",
            preset(text).and_then(|p| Plan::expand(&p, Path::new("out"), None, None)).unwrap_err()
        )
    }

    #[test]
    fn errors_name_the_problem_and_suggest() {
        let e = error("[experiment]\ndescription = \"x\"\nseds = 2\n[[arm]]\nname = \"a\"");
        assert!(
            e.contains("unknown key `experiment.seds`") && e.contains("did you mean `experiment.seeds`"),
            "{e}"
        );
        let e = error("[experiment]\ndescription = \"x\"\n[[arm]]\nname = \"a\"\nconfig = []");
        assert!(e.contains("unknown key") && e.contains("configs"), "{e}");
        let e = error("[experiment]\ndescription = \"x\"\n[[arm]]\nname = \"source\"\n[[arm]]\nname = \"t\"\nafter = \"sorce\"");
        assert!(e.contains("after = \"sorce\" names no arm above it; did you mean `source`?"), "{e}");
        let e = error(
            "[experiment]\ndescription = \"x\"\nbase = [\"configs/toy.toml\"]\n[[arm]]\nname = \"s\"\n[[arm]]\nname = \"t\"\nset = [\"masp.init_file={run:s}/x\"]",
        );
        assert!(e.contains("add after = \"s\""), "{e}");
        let e = error("[experiment]\ndescription = \"x\"\n[[arm]]\nname = \"a\"\nconfigs = [\"configs/agents/nope.toml\"]");
        assert!(e.contains("arm `a`") && e.contains("configs/agents/nope.toml does not exist"), "{e}");
        let e = error("[experiment]\ndescription = \"x\"\n[[arm]]\nname = \"a\"\n[[arm]]\nname = \"a\"");
        assert!(e.contains("two arms are named `a`"), "{e}");
        let e = error("[experiment]\ndescription = \"x\"\n");
        assert!(e.contains("no [[arm]]"), "{e}");
        // A bad run config is caught at expansion, with the runner's message.
        let e = error(
            "[experiment]\ndescription = \"x\"\nbase = [\"configs/toy.toml\"]\n[[arm]]\nname = \"a\"\nset = [\"masp.etaa=1\"]",
        );
        assert!(e.contains("arm `a`, seed 0") && e.contains("did you mean `masp.eta`"), "{e}");
        let e = error(
            "[experiment]\ndescription = \"x\"\nbase = [\"configs/toy.toml\"]\nset = [\"run.eval_episodes=0\"]\n[[arm]]\nname = \"a\"",
        );
        assert!(e.contains("run.eval_episodes = 0"), "{e}");
        let e = format!("{:#}", Preset::load(&root(), "toy-swep").unwrap_err());
        assert!(e.contains("no experiment preset toy-swep"), "{e}");
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(placeholders("a={run:x}/b/{run:y}"), ["x", "y"]);
        assert!(placeholders("a=b").is_empty());
    }

    #[test]
    fn every_preset_expands() {
        {
            let names = available_presets(&root());
            assert!(names.iter().any(|n| n == "toy-sweep"), "{names:?}");
            for name in names {
                let preset = Preset::load(&root(), &name).unwrap();
                let plan = Plan::expand(&preset, Path::new("out"), None, None)
                    .unwrap_or_else(|e| panic!("{name}: {e:#}"));
                assert!(!plan.runs.is_empty());
            }
        }
    }
}

/// The options of `masp experiment` (and `cargo xtask experiment`).
#[derive(Clone, Debug, clap::Args)]
pub struct ExperimentArgs {
    /// A preset in configs/experiments/ (main, atari100k, macro-count, noise, transfer,
    /// toy-sweep), or a path to a preset file.
    pub name: String,
    /// Only these of the preset's games, comma-separated, e.g. frostbite,road_runner
    /// (default: all).
    #[arg(long, value_delimiter = ',', value_name = "GAMES")]
    pub games: Vec<String>,
    /// Only these of the preset's arms, comma-separated, e.g. der,masp (default: all).
    #[arg(long, value_delimiter = ',', value_name = "ARMS")]
    pub arms: Vec<String>,
    /// Seeds per game and arm (default: the preset's).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Runs at a time, each its own `masp train` process sharing the cores.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Training budget of every run, # environment frames (default: the preset's).
    #[arg(long)]
    pub frames: Option<u64>,
    /// Parent of the experiment's folder OUT/NAME.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Write a job script and its manifest into OUT/NAME instead of running.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Only write the report and the plots of the runs finished so far (after a cluster
    /// sweep, for instance).
    #[arg(long, conflicts_with = "emit")]
    pub report_only: bool,
}

/// Schedulers `--emit` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    Slurm,
}
