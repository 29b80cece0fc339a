//! Config -> the pieces of a run: base envs, the action pool, the vector env of macro
//! executors, the agent with MASP as its regulariser.
//!
//! Every run steps a [`MacroVecEnv`], with or without macros (a primitives-only pool makes
//! each step one primitive), so one loop handles every configuration. The executor's
//! `gamma` is the agent's `n_step.gamma`: one config value for both.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use ale_env::AtariEnv;
use anyhow::{Context, Result};
use macro_actions::{
    corrupt, random_macros, ActionPool, ActionRef, CorruptionConfig, ExecutorConfig, MacroVecEnv,
    RandomConfig,
};
use masp::MaspRegularizer;
use rainbow::Agent;
use retro_env::RetroEnv;
use rl_env::{Corridor, Env, GroupedBandit, KeyDoor};

use crate::config::{CorruptionDraw, EnvConfig, MacroSource, MacrosConfig, RunConfig};

/// The env every run steps: copies of the base env behind macro executors.
pub type RunEnv = MacroVecEnv<Box<dyn Env>>;

/// `n` copies of the base env: the protocol's training settings, or its evaluation ones.
pub fn base_envs(config: &RunConfig, eval: bool, n: usize) -> Result<Vec<Box<dyn Env>>> {
    (0..n)
        .map(|_| -> Result<Box<dyn Env>> {
            Ok(match &config.env {
                EnvConfig::Atari { game, protocol } => {
                    let atari = if eval { protocol.eval_config(game) } else { protocol.train_config(game) };
                    Box::new(AtariEnv::new(atari).with_context(|| format!("[env] game = {game:?}"))?)
                }
                // Isolated cores: training, evaluation and any number of copies coexist.
                EnvConfig::Retro(r) => Box::new(
                    RetroEnv::new_isolated(r.clone())
                        .with_context(|| format!("[env] game = {:?}", r.game))?,
                ),
                EnvConfig::Corridor(c) => Box::new(Corridor::try_new(c.clone()).context("[env]")?),
                EnvConfig::KeyDoor(k) => Box::new(KeyDoor::try_new(k.clone()).context("[env]")?),
                EnvConfig::GroupedBandit(b) => Box::new(GroupedBandit::try_new(b.clone()).context("[env]")?),
            })
        })
        .collect()
}

/// The pool: the env's primitives plus the configured macros, corrupted if asked.
pub fn action_pool(config: &RunConfig, env: &dyn Env) -> Result<ActionPool> {
    let spec = env.spec();
    let pool = match &config.macros.source {
        MacroSource::None => ActionPool::for_env(spec, Vec::new())?,
        MacroSource::Random { seed, .. } => {
            let random = random_config(&config.macros.source).expect("a random source");
            let macros = random_macros(&random, &spec.action_names, *seed).context("[macros.source]")?;
            ActionPool::for_env(spec, macros)?
        }
        MacroSource::File { path } => {
            let pool = ActionPool::load(path)
                .with_context(|| format!("[macros.source] path = {}", path.display()))?;
            if pool.primitive_names() != spec.action_names.as_slice() {
                anyhow::bail!(
                    "[macros.source] path = {}: the pool's primitives {:?} are not the env's actions {:?}; \
                     mine the pool on the same game and action set",
                    path.display(),
                    pool.primitive_names(),
                    spec.action_names
                );
            }
            pool
        }
    };
    if config.macros.corruption > 0.0 {
        let c = corruption_config(&config.macros);
        return Ok(corrupt(&pool, &c, config.run.seed).context("[macros] corruption")?.pool);
    }
    Ok(pool)
}

/// The random source's settings as macro-actions' [`RandomConfig`]; `None` for other sources.
fn random_config(source: &MacroSource) -> Option<RandomConfig> {
    let MacroSource::Random { count, min_len, max_len, primitives, .. } = source else { return None };
    let primitives = primitives.as_ref().map(|p| p.iter().cloned().map(ActionRef::Name).collect());
    Some(RandomConfig { count: *count, min_len: *min_len, max_len: *max_len, primitives })
}

/// How `macros` corrupts its pool: like its random source, or over all primitives.
fn corruption_config(macros: &MacrosConfig) -> CorruptionConfig {
    let all = CorruptionConfig { fraction: macros.corruption, ..Default::default() };
    match (random_config(&macros.source), macros.corruption_draw) {
        (Some(RandomConfig { min_len, max_len, primitives, .. }), CorruptionDraw::Source) => {
            CorruptionConfig { min_len, max_len, primitives, ..all }
        }
        _ => all,
    }
}

/// `n` executors over fresh base envs (training or evaluation settings).
pub fn run_env(config: &RunConfig, pool: &ActionPool, eval: bool, n: usize) -> Result<RunEnv> {
    executors(config, pool, base_envs(config, eval, n)?)
}

/// An executor over each of `envs`: base envs, or wrappers of them (evaluation's videos).
pub fn executors(config: &RunConfig, pool: &ActionPool, envs: Vec<Box<dyn Env>>) -> Result<RunEnv> {
    let executor = ExecutorConfig { gamma: config.agent.n_step.gamma, life_loss_terminal: false };
    Ok(MacroVecEnv::new(envs, pool.clone(), executor)?)
}

/// What the runner reads from the regulariser while the agent owns it.
pub type SharedMasp = Rc<RefCell<MaspRegularizer>>;

/// The file `S` is saved to in a checkpoint folder ([`masp::Masp::save_state`] writes it
/// beside MASP's optimiser state and counters).
pub const SIMILARITY_FILE: &str = masp::STATE_SIMILARITY_FILE;

/// Saves MASP's whole state into the checkpoint folder `dir`.
pub fn save_masp(masp: &SharedMasp, pool: &ActionPool, dir: &Path) -> Result<()> {
    masp.borrow().masp().save_state(pool.names(), dir).context("saving MASP's state")
}

/// Sets `agent`'s regulariser from the config; returns MASP for logging and saving. With
/// `resume_from`, MASP continues from the checkpoint's state: `S`, its optimiser's state
/// and the counters (a checkpoint of an older build holds `S` alone; the rest restarts).
pub fn attach_regularizer(
    config: &RunConfig,
    agent: &mut Agent,
    pool: &ActionPool,
    resume_from: Option<&Path>,
) -> Result<Option<SharedMasp>> {
    let masp = if config.masp_enabled {
        let mut masp_config = config.masp.clone();
        let saved_state = resume_from.filter(|dir| dir.join(masp::MASP_STATE_FILE).exists());
        if let Some(dir) = resume_from.filter(|_| saved_state.is_none()) {
            let saved = dir.join(SIMILARITY_FILE);
            if saved.exists() {
                eprintln!(
                    "{} holds S but not its optimiser's state (an older checkpoint): S's Adam moments and \
                     MASP's update count start afresh",
                    dir.display()
                );
                masp_config.init_file = Some(saved);
            }
        }
        let init_file = masp_config.init_file.clone();
        let (mut reg, alignment) =
            MaspRegularizer::for_learner(masp_config, pool.names(), None, agent.learner())
                .context("building MASP")?;
        // A transferred S that matched few actions is a silent failure unless it is said.
        if let (Some(file), Some(alignment), None) = (init_file, alignment, resume_from) {
            eprintln!("S starts from {}: {alignment}", file.display());
        }
        if let Some(dir) = saved_state {
            reg.masp_mut()
                .load_state(pool.names(), dir)
                .with_context(|| format!("loading MASP's state from {}", dir.display()))?;
        }
        reg.install_action_context(agent.learner_mut()).context("handing P(S) to the S-embedding")?;
        Some(Rc::new(RefCell::new(reg)))
    } else {
        None
    };
    if let Some(m) = &masp {
        agent.set_regularizer(Box::new(Rc::clone(m)));
    }
    Ok(masp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 60-cell corridor's pool (LEFT, RIGHT, NOOP macros) with three quarters corrupted:
    /// drawn like the source, no replacement walks BACK to the start; over all primitives,
    /// most do (1 - (3/4)^L for a replacement of L steps).
    #[test]
    fn corruption_is_drawn_like_the_source_unless_asked_otherwise() {
        let back = rl_env::Corridor::ACTION_NAMES.iter().position(|n| *n == "BACK").unwrap();
        let with_back = |draw: &str| -> usize {
            let sets = ["macros.corruption=0.75".to_string(), format!("macros.corruption_draw=\"{draw}\"")];
            let config = RunConfig::load(&["../../configs/corridor60.toml".into()], &sets).unwrap();
            let env = base_envs(&config, false, 1).unwrap().remove(0);
            let pool = action_pool(&config, env.as_ref()).unwrap();
            (pool.num_primitives()..pool.len()).filter(|&a| pool.actions(a).contains(&back)).count()
        };
        assert_eq!(with_back("source"), 0);
        assert!(with_back("all_primitives") > 24, "of 48 replacements");
    }
}
