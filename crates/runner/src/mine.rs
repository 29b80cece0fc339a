//! `masp mine-macros`: trajectory files in, an action pool file out: the env's primitives
//! plus the most frequent deduplicated n-grams of the recorded primitive actions
//! (macro-actions' [`mine_ngrams`]). `masp train` loads the pool with
//! `macros.source = { kind = "file", path = "POOL_FILE" }`.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use macro_actions::NgramConfig;
//! let config = NgramConfig { top_k: 16, ..Default::default() };
//! let mined = masp_runner::mine_macros(&[PathBuf::from("corridor.jsonl")], &config, Path::new("pool.json"))?;
//! if let Some(warning) = mined.shortfall() {
//!     eprintln!("warning: {warning}");
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use macro_actions::{mine_ngrams, ActionPool, NgramConfig, TrajectorySet};

/// What mining found.
#[derive(Clone, Debug, PartialEq)]
pub struct Mined {
    /// The pool written: primitives, then the mined macros best first.
    pub pool: ActionPool,
    /// The `top_k` asked for, and the n-gram lengths.
    pub config: NgramConfig,
    pub episodes: usize,
    /// Primitive actions over all episodes.
    pub actions: usize,
}

impl Mined {
    /// Why fewer than `top_k` macros came back, if they did.
    pub fn shortfall(&self) -> Option<String> {
        let (got, asked) = (self.pool.num_macros(), self.config.top_k);
        (got < asked).then(|| {
            format!(
                "mined {got} of the {asked} macros asked for: every other n-gram of {}..={} steps in the {} \
                 episodes ({} actions) is a piece or a one-step shift of a kept one, or folds into a longer \
                 one; record more (or more varied) games, widen --min-len/--max-len, or ask for fewer",
                self.config.min_n, self.config.max_n, self.episodes, self.actions
            )
        })
    }
}

/// Mines the trajectory files `trajectories` (all recorded with the same actions) with
/// `config` and writes the pool to `out` (`.json` or `.toml`).
pub fn mine_macros(trajectories: &[PathBuf], config: &NgramConfig, out: &Path) -> Result<Mined> {
    anyhow::ensure!(!trajectories.is_empty(), "name at least one trajectory file (written by `masp record`)");
    let mut names: Option<(Vec<String>, &Path)> = None;
    let mut episodes = Vec::new();
    for path in trajectories {
        let set = TrajectorySet::load(path)?;
        match &names {
            None => names = Some((set.action_names, path)),
            Some((first, first_path)) => anyhow::ensure!(
                *first == set.action_names,
                "{} was recorded with the actions {:?}, {} with {:?}: mine trajectories of one game and action \
                 set together",
                first_path.display(),
                first,
                path.display(),
                set.action_names
            ),
        }
        episodes.extend(set.episodes);
    }
    let (names, _) = names.expect("at least one file");
    let actions = episodes.iter().map(|e| e.actions.len()).sum();
    let macros = mine_ngrams(&episodes, config).context("mining n-grams")?;
    let pool = ActionPool::new(names, macros.into_iter().map(|m| m.sequence).collect())?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    pool.save(out)?;
    Ok(Mined { pool, config: config.clone(), episodes: episodes.len(), actions })
}
