//! `RunConfig`: everything that defines a run, as one TOML document with five sections.
//!
//! ```toml
//! [env]      # kind = "atari" (game, protocol) | "retro" (game, state, actions, frame_skip, reward)
//!            # | "corridor" | "key_door" | "grouped_bandit" (their knobs)
//! [macros]   # source = { kind = "none" | "random" | "file" }, corruption
//! [agent]    # preset = "rainbow" | "der" | "toy", then any AgentConfig override
//! [masp]     # enabled, then any MaspConfig field
//! [run]      # frames (budget, # environment frames), num_envs, seed, evaluation, checkpoints
//! ```
//!
//! Resolution, in order: the built-in default (MASP on Pong, [`DEFAULT_CONFIG`]) when no file is
//! given, else each `--config` file deep-merged over the previous ones; then every
//! `--set key.path=value`; then the agent preset's values under the `[agent]` overrides;
//! then serde with `deny_unknown_fields` everywhere. The resolved config is written to
//! every run folder (`RunConfig::to_toml`) and reads back to the same run.
//!
//! Errors name the file (or `--set`) and the full key, and suggest the closest valid key
//! ([`crate::overrides`]).

use std::path::{Path, PathBuf};

use ale_env::Protocol;
use anyhow::{bail, Context, Result};
use macro_actions::RandomConfig;
use masp::MaspConfig;
use rainbow::{AgentConfig, ExplorationKind};
use retro_env::RetroConfig;
use rl_env::{CorridorConfig, GroupedBanditConfig, KeyDoorConfig};
use serde::{Deserialize, Serialize};

use crate::overrides::{self, Source};

/// The built-in default: MASP on Pong with 64 random macros and the machado protocol.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// A whole run; see the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub env: EnvConfig,
    #[serde(default)]
    pub macros: MacrosConfig,
    /// The agent, preset values plus overrides; `seed` and `device` come from `[run]`.
    #[serde(default)]
    pub agent: AgentConfig,
    /// `[agent] preset`: whose values the `[agent]` overrides start from.
    #[serde(skip)]
    pub agent_preset: AgentPreset,
    /// `[masp] enabled`.
    #[serde(skip)]
    pub masp_enabled: bool,
    #[serde(default)]
    pub masp: MaspConfig,
    #[serde(default)]
    pub run: RunSection,
}

/// Where the primitive actions come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnvConfig {
    /// An Atari game under a named protocol (its train and eval settings).
    Atari {
        /// ROM name as ALE spells it: `pong`, `space_invaders`, `montezuma_revenge`.
        #[serde(default = "default_game")]
        game: String,
        /// `machado` (default), `nature` or `atari100k`.
        #[serde(default = "default_protocol")]
        protocol: Protocol,
    },
    /// A Sega Genesis game through the Gym Retro backend (retro-env), by its stable-retro
    /// integration name.
    Retro(RetroConfig),
    /// rl-env's corridor: a sparse-reward chain (toy); one step is one frame.
    Corridor(CorridorConfig),
    /// rl-env's key-and-door grid (toy); one step is one frame.
    KeyDoor(KeyDoorConfig),
    /// rl-env's contextual bandit with hidden groups of identical actions (toy); one step
    /// is one frame.
    GroupedBandit(GroupedBanditConfig),
}

fn default_game() -> String {
    "pong".into()
}

fn default_protocol() -> Protocol {
    Protocol::Machado
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig::Atari { game: default_game(), protocol: default_protocol() }
    }
}

impl EnvConfig {
    /// Frames one primitive action consumes: the protocol's frame skip on Atari, 1 on the
    /// toy envs.
    pub fn frames_per_step(&self) -> u64 {
        match self {
            EnvConfig::Atari { game, protocol } => u64::from(protocol.train_config(game).frame_skip),
            EnvConfig::Retro(r) => u64::from(r.frame_skip),
            EnvConfig::Corridor(_) | EnvConfig::KeyDoor(_) | EnvConfig::GroupedBandit(_) => 1,
        }
    }

    /// The `{game}` of the run name.
    pub fn game_name(&self) -> String {
        match self {
            EnvConfig::Atari { game, .. } => game.clone(),
            EnvConfig::Retro(r) => r.game.clone(),
            EnvConfig::Corridor(_) => "corridor".into(),
            EnvConfig::KeyDoor(_) => "key_door".into(),
            EnvConfig::GroupedBandit(_) => "grouped_bandit".into(),
        }
    }
}

/// Fields whose default changed after run folders were written without them: `(section,
/// key, the value every earlier run had)`. `masp.difference` arrived with commit aa7ce42
/// (central until then, one-sided the default later); `macros.corruption_draw` with
/// 78df303 (every corruption before it drew over all primitives); `masp.meta_target` with
/// 56e443a (the meta loss's target was chosen at theta' until then).
const LEGACY_DEFAULTS: [(&str, &str, &str); 3] = [
    ("masp", "difference", "central"),
    ("macros", "corruption_draw", "all_primitives"),
    ("masp", "meta_target", "lookahead"),
];

/// The macro-actions added to the primitives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MacrosConfig {
    pub source: MacroSource,
    /// Fraction of the macros replaced by random sequences (the paper's noise sweep: 0.25,
    /// 0.5, 0.75), drawn with `run.seed`. Default 0: none.
    pub corruption: f64,
    /// What a replacement is drawn like. Default `source`: a random source's own primitives
    /// and lengths (other sources: all primitives, 3-8 steps).
    pub corruption_draw: CorruptionDraw,
}

impl Default for MacrosConfig {
    fn default() -> Self {
        Self { source: MacroSource::None, corruption: 0.0, corruption_draw: CorruptionDraw::Source }
    }
}

/// What a corrupted macro's replacement is drawn like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorruptionDraw {
    /// Like the pool's random macros (their primitives and lengths): an uninformative macro.
    #[default]
    Source,
    /// Over all of the env's primitives, 3-8 steps, whatever the source: on a task with a
    /// harmful primitive (the corridor's BACK), mostly harmful macros. Before commit 78df303
    /// the only draw (docs/experiments.md's first corridor noise sweep ran with it).
    AllPrimitives,
}

/// Where the macros come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MacroSource {
    /// Primitives only.
    #[default]
    None,
    /// `count` uniform random sequences of `min_len..=max_len` primitives (MASP section 2).
    Random {
        #[serde(default = "default_count")]
        count: usize,
        #[serde(default = "default_min_len")]
        min_len: usize,
        #[serde(default = "default_max_len")]
        max_len: usize,
        /// The pool's seed, apart from the agent's so that seeds of a sweep share a pool.
        #[serde(default)]
        seed: u64,
        /// The primitives macros are drawn over, by name (e.g. leaving out `NOOP`);
        /// default all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primitives: Option<Vec<String>>,
    },
    /// A pool file (JSON or TOML, as `ActionPool::save` writes it); relative paths are
    /// relative to the working directory.
    File { path: PathBuf },
}

fn default_count() -> usize {
    RandomConfig::default().count
}

fn default_min_len() -> usize {
    RandomConfig::default().min_len
}

fn default_max_len() -> usize {
    RandomConfig::default().max_len
}

/// The key in the run's TOML of a value that validation rejected (`agent.learner.lr`),
/// carried as the error's context so that the message names it and the caller can say
/// which file or `--set` gave it.
#[derive(Debug)]
struct InvalidKey(String);

impl std::fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.0)
    }
}

/// The field a library's `InvalidConfig` error names, if it is one.
trait InvalidField {
    fn invalid_field(&self) -> Option<&'static str>;
}

macro_rules! invalid_field_of {
    ($($krate:ident),*) => {$(
        impl InvalidField for $krate::Error {
            fn invalid_field(&self) -> Option<&'static str> {
                match self {
                    $krate::Error::InvalidConfig { field, .. } => Some(field),
                    _ => None,
                }
            }
        }
    )*};
}

invalid_field_of!(rainbow, masp, rl_env, ale_env, macro_actions, retro_env);

/// `result` of validating the section at `section`, its error keyed by the field it names.
fn keyed<E>(section: &str, result: std::result::Result<(), E>) -> Result<()>
where
    E: InvalidField + std::error::Error + Send + Sync + 'static,
{
    result.map_err(|e| {
        let key = e.invalid_field().map_or_else(|| section.to_string(), |field| format!("{section}.{field}"));
        anyhow::Error::new(e).context(InvalidKey(key))
    })
}

/// A rule of the runner's own broken by the value at `key`; its message names the key.
#[derive(Debug)]
struct BrokenRule {
    key: &'static str,
    message: String,
}

impl std::fmt::Display for BrokenRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BrokenRule {}

/// Checks a rule of the runner's own on the value at `key`.
fn check(ok: bool, key: &'static str, message: impl FnOnce() -> String) -> Result<()> {
    match ok {
        true => Ok(()),
        false => Err(BrokenRule { key, message: message() }.into()),
    }
}

/// The key of the value that [`RunConfig::validate`] rejected, if it knows it.
fn rejected_key(err: &anyhow::Error) -> Option<&str> {
    match err.downcast_ref::<InvalidKey>() {
        Some(InvalidKey(key)) => Some(key),
        None => err.downcast_ref::<BrokenRule>().map(|rule| rule.key),
    }
}

/// The agent presets of `[agent] preset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentPreset {
    /// Full Rainbow (Hessel et al. 2018; Dopamine's values).
    #[default]
    Rainbow,
    /// Data-efficient Rainbow (van Hasselt et al. 2019).
    Der,
    /// A small MLP Rainbow for the toy envs.
    Toy,
}

impl AgentPreset {
    pub const NAMES: [&'static str; 3] = ["rainbow", "der", "toy"];

    pub fn name(self) -> &'static str {
        match self {
            AgentPreset::Rainbow => "rainbow",
            AgentPreset::Der => "der",
            AgentPreset::Toy => "toy",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "rainbow" => Some(AgentPreset::Rainbow),
            "der" => Some(AgentPreset::Der),
            "toy" => Some(AgentPreset::Toy),
            _ => None,
        }
    }

    pub fn config(self) -> AgentConfig {
        match self {
            AgentPreset::Rainbow => AgentConfig::rainbow(),
            AgentPreset::Der => AgentConfig::der(),
            AgentPreset::Toy => AgentConfig::toy(),
        }
    }
}

/// The run's budget, parallelism, seed, evaluation and checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    /// The `{agent}` of the run name, e.g. `masp`, `rainbow-macros`. Default: from the
    /// config (`masp`, `rainbow-macros` or `rainbow`).
    pub name: String,
    /// Training budget, # environment frames (emulator frames on Atari: 4 per primitive
    /// agent step with frame skip 4; a macro of L steps costs 4L). Default 10M.
    pub frames: u64,
    /// Env copies stepped in parallel. Default 1 (Dopamine).
    pub num_envs: usize,
    /// Seed of the agent and the envs. Default 0.
    pub seed: u64,
    /// `"cpu"` or `"cuda:N"`. Default `"cpu"`.
    pub device: String,
    /// Final evaluation, # episodes under the protocol's eval settings. Default 10.
    pub eval_episodes: usize,
    /// Env copies an evaluation plays its episodes on, one batched forward pass per step
    /// (at most one copy per episode). Default 16.
    pub eval_envs: usize,
    /// A checkpoint every this many # frames (and at the end). Default 1M.
    pub checkpoint_interval: u64,
    /// At each checkpoint before the end, # episodes of the evaluation policy whose mean
    /// raw score goes into `metrics.csv`'s `eval_score`; 0 turns it off. Default 10.
    pub checkpoint_eval_episodes: usize,
    /// Whether checkpoints include the replay buffer. Default true: a resumed run then goes
    /// on with the experience it had, as if never stopped (the project's rule: nothing
    /// lost); without it, it resumes from an empty replay and its next updates sample only
    /// the few transitions gathered since. The cost is disk and write time: about 7 GB per
    /// checkpoint for a full 1M-transition Atari buffer (84x84 frames stored once), a few
    /// MB on the toy envs; the first checkpoint of a session prints its size. A finished
    /// run's last checkpoint leaves the replay out either way (nothing continues it, and a
    /// sweep's finished runs would otherwise keep 7 GB each). Set it to false where disk is
    /// short even for the runs in flight.
    pub save_replay: bool,
    /// A metrics row every this many # frames. Default 10k.
    pub log_interval: u64,
    /// Stop early once the mean raw score of the last 10 training episodes reaches this
    /// (toy presets). Default none.
    pub target_score: Option<f64>,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            name: String::new(),
            frames: 10_000_000,
            num_envs: 1,
            seed: 0,
            device: "cpu".into(),
            eval_episodes: 10,
            eval_envs: 16,
            checkpoint_interval: 1_000_000,
            checkpoint_eval_episodes: 10,
            save_replay: true,
            log_interval: 10_000,
            target_score: None,
        }
    }
}

impl RunConfig {
    /// Resolves `files` (none: [`DEFAULT_CONFIG`]) and `sets` (`key.path=value`) into a
    /// checked config; see the module docs.
    pub fn load(files: &[PathBuf], sets: &[String]) -> Result<Self> {
        let mut sources = Vec::new();
        if files.is_empty() {
            sources.push(Source::parse("the built-in default config", DEFAULT_CONFIG)?);
        }
        for file in files {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read config file {}", file.display()))?;
            sources.push(Source::parse(&file.display().to_string(), &text)?);
        }
        for set in sets {
            sources.push(Source::from_set(set)?);
        }
        Self::from_sources(&sources)
    }

    /// Parses one TOML document (no defaults file underneath).
    pub fn from_toml_str(name: &str, text: &str) -> Result<Self> {
        Self::from_sources(&[Source::parse(name, text)?])
    }

    /// Reads the resolved `config.toml` of a run folder, as the binary that wrote it meant it:
    /// a field that the file lacks predates it, and reads as what every run did before it
    /// existed (`LEGACY_DEFAULTS`), not as today's default.
    pub fn read_resolved(path: &Path) -> Result<Self> {
        Self::read_resolved_with(path, &[])
    }

    /// [`RunConfig::read_resolved`] with `sets` on top: a resumed run goes on as it ran.
    pub fn read_resolved_with(path: &Path, sets: &[String]) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut sources = vec![Source::parse(&path.display().to_string(), &text)?];
        for (section, key, value) in LEGACY_DEFAULTS {
            if let Some(toml::Value::Table(table)) = sources[0].table.get_mut(section) {
                table.entry(key).or_insert_with(|| value.into());
            }
        }
        for set in sets {
            sources.push(Source::from_set(set)?);
        }
        Self::from_sources(&sources)
    }

    fn from_sources(sources: &[Source]) -> Result<Self> {
        let mut table = toml::Table::new();
        for s in sources {
            overrides::deep_merge(&mut table, s.table.clone());
        }
        let describe = |path: &str| overrides::source_of(sources, path);

        // [agent] preset, then the preset's values under the overrides.
        let agent = match table.remove("agent") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                bail!("{}: `agent` must be a table, found {}", describe("agent"), other.type_str())
            }
        };
        let mut agent = agent;
        let preset = match agent.remove("preset") {
            None => AgentPreset::default(),
            Some(toml::Value::String(name)) => AgentPreset::parse(&name).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: unknown agent preset `{name}` for `agent.preset`{}; valid presets: {}",
                    describe("agent.preset"),
                    overrides::did_you_mean(&name, &AgentPreset::NAMES),
                    AgentPreset::NAMES.join(", ")
                )
            })?,
            Some(other) => bail!(
                "{}: `agent.preset` must be a string (one of {}), found {}",
                describe("agent.preset"),
                AgentPreset::NAMES.join(", "),
                other.type_str()
            ),
        };
        for key in ["seed", "device"] {
            if agent.contains_key(key) {
                bail!(
                    "{}: `agent.{key}` is set from `run.{key}`; set `run.{key}` instead",
                    describe(&format!("agent.{key}"))
                );
            }
        }
        let mut base = match toml::Value::try_from(preset.config()).context("serialising the agent preset")? {
            toml::Value::Table(t) => t,
            _ => unreachable!("AgentConfig is a struct"),
        };
        base.remove("seed");
        base.remove("device");
        let beta_from_budget = !agent
            .get("replay")
            .and_then(toml::Value::as_table)
            .is_some_and(|r| r.contains_key("beta_steps"));
        overrides::deep_merge(&mut base, agent);
        table.insert("agent".into(), toml::Value::Table(base));

        // [masp] enabled, the rest is MaspConfig.
        let mut masp_enabled = false;
        let meta_target_given =
            table.get("masp").and_then(toml::Value::as_table).is_some_and(|m| m.contains_key("meta_target"));
        if let Some(toml::Value::Table(m)) = table.get_mut("masp") {
            match m.remove("enabled") {
                None => {}
                Some(toml::Value::Boolean(b)) => masp_enabled = b,
                Some(other) => bail!(
                    "{}: `masp.enabled` must be true or false, found {}",
                    describe("masp.enabled"),
                    other.type_str()
                ),
            }
        }

        let mut config =
            RunConfig::deserialize(toml::Value::Table(table)).map_err(|e| overrides::explain(&e, sources))?;
        config.agent_preset = preset;
        config.masp_enabled = masp_enabled;
        // The resolved config records the target a meta step takes, not a default that does
        // not apply (a fresh B' has none of the update's); asking for the update's target
        // with a fresh B' is a contradiction.
        let in_effect = config.masp.meta_target_in_effect();
        if meta_target_given && in_effect != config.masp.meta_target {
            bail!(
                "{}: `masp.meta_target = \"update\"` reuses the update's own TD target, which exists \
                 only for B' = B, but `masp.fresh_batch = true` draws a fresh B': set \
                 masp.fresh_batch = false, or masp.meta_target = \"lookahead\"",
                describe("masp.meta_target")
            );
        }
        config.masp.meta_target = in_effect;
        config.agent.seed = config.run.seed;
        config.agent.device = config.run.device.clone();
        // PER's beta reaches 1 at the end of training (Schaul et al.; Hessel et al.), so
        // unless a config says otherwise its schedule is the run's own length.
        if beta_from_budget {
            config.agent.replay.beta_steps = config.budget_agent_steps();
        }
        if config.run.name.is_empty() {
            config.run.name = config.default_name();
        }
        if let Err(e) = config.validate() {
            bail!("{}: impossible value: {e:#}", describe(rejected_key(&e).unwrap_or("")));
        }
        if let EnvConfig::Atari { game, .. } = &config.env {
            ale_env::rom_path(game)
                .map_err(|e| anyhow::anyhow!("{}: `env.game`: {e}", describe("env.game")))?;
        }
        // The integration must exist; its ROM is checked when the env is built, so that
        // presets of games whose ROM is not imported here (SF2) still resolve and expand.
        if let EnvConfig::Retro(r) = &config.env {
            retro_env::Integration::load(&r.game)
                .map_err(|e| anyhow::anyhow!("{}: `env.game`: {e}", describe("env.game")))?;
        }
        Ok(config)
    }

    /// The run's budget in agent steps were every decision a primitive: `run.frames` over
    /// the frames a primitive consumes. Macros make fewer decisions in the same frames.
    pub fn budget_agent_steps(&self) -> u64 {
        (self.run.frames / self.env.frames_per_step()).max(1)
    }

    /// What a schedule longer than the run leaves at its end, one line per schedule: said
    /// at start-up, since such a run never sees the schedule's end value.
    pub fn schedule_warnings(&self) -> Vec<String> {
        let budget = self.budget_agent_steps();
        let within = format!("this run has at most {budget} agent steps ({} frames)", self.run.frames);
        let mut warnings = Vec::new();
        let replay = &self.agent.replay;
        if replay.beta_steps > budget {
            warnings.push(format!(
                "agent.replay.beta_steps = {} agent steps outlives the run ({within}): PER's beta ends at {:.2} \
                 rather than 1",
                replay.beta_steps,
                replay.beta(budget)
            ));
        }
        if self.macros.source != MacroSource::None && replay.beta_steps >= budget {
            warnings.push(format!(
                "agent.replay.beta_steps = {} counts decisions, and with macros this run makes fewer than its \
                 {budget} primitive steps: PER's beta ends below 1 (known deviation: the schedules count \
                 agent steps, not frames)",
                replay.beta_steps
            ));
        }
        let e = &self.agent.exploration;
        if e.kind != ExplorationKind::Noisy && e.epsilon_decay_steps > budget {
            warnings.push(format!(
                "agent.exploration.epsilon_decay_steps = {} agent steps outlives the run ({within}): epsilon \
                 ends at {:.2} rather than {}",
                e.epsilon_decay_steps,
                e.train_epsilon(budget),
                e.epsilon_end
            ));
        }
        warnings
    }

    /// `masp`, `rainbow-macros` or `rainbow`, from what is switched on.
    fn default_name(&self) -> String {
        let name = if self.masp_enabled {
            "masp"
        } else if self.macros.source != MacroSource::None {
            "rainbow-macros"
        } else {
            "rainbow"
        };
        name.into()
    }

    /// Checks everything that the libraries check, before any env or network is built.
    pub fn validate(&self) -> Result<()> {
        match &self.env {
            EnvConfig::Atari { protocol, game } => keyed("env", protocol.train_config(game).validate())?,
            EnvConfig::Retro(r) => keyed("env", r.validate())?,
            EnvConfig::Corridor(c) => keyed("env", c.validate())?,
            EnvConfig::KeyDoor(k) => keyed("env", k.validate())?,
            EnvConfig::GroupedBandit(b) => keyed("env", b.validate())?,
        }
        if let MacroSource::Random { count, min_len, max_len, primitives: _, seed: _ } = &self.macros.source {
            let random =
                RandomConfig { count: *count, min_len: *min_len, max_len: *max_len, primitives: None };
            // The primitives are only known once the env exists; check lengths on a stand-in.
            keyed("macros.source", random.validate(&["A".to_string(), "B".to_string()]))?;
        }
        check((0.0..=1.0).contains(&self.macros.corruption), "macros.corruption", || {
            format!("[macros] corruption = {}: use a fraction in [0, 1], e.g. 0.25", self.macros.corruption)
        })?;
        let agent = &self.agent;
        keyed("run.device", rainbow::DeviceSpec::parse(&agent.device).map(drop))?;
        keyed("agent.network", agent.network.validate())?;
        keyed("agent.learner", agent.learner.validate())?;
        keyed("agent.replay", agent.replay.validate())?;
        keyed("agent.n_step", agent.n_step.validate())?;
        keyed("agent.exploration", agent.exploration.validate())?;
        // What AgentConfig checks beyond its parts: exploration against the network.
        keyed("agent.exploration", agent.validate())?;
        if self.masp_enabled {
            keyed("masp", self.masp.validate())?;
        }
        // The embedding's context is MASP's P(S): without MASP it would stay the identity.
        check(self.masp_enabled || agent.network.s_embedding.is_none(), "agent.network.s_embedding", || {
            "[agent.network] s_embedding needs MASP, which hands it P(S): set [masp] enabled = true, or \
             remove s_embedding"
                .into()
        })?;
        let r = &self.run;
        check(r.frames > 0, "run.frames", || {
            "[run] frames = 0: give a training budget in environment frames, e.g. 10_000_000".into()
        })?;
        check(r.num_envs > 0, "run.num_envs", || "[run] num_envs = 0: use at least 1 env copy".into())?;
        check(r.eval_envs > 0, "run.eval_envs", || {
            "[run] eval_envs = 0: evaluate on at least 1 env copy, e.g. 16".into()
        })?;
        let every = "# frames and must be at least 1";
        check(r.checkpoint_interval > 0, "run.checkpoint_interval", || {
            format!("[run] checkpoint_interval is {every}")
        })?;
        check(r.log_interval > 0, "run.log_interval", || format!("[run] log_interval is {every}"))?;
        let name_ok = !(r.name.is_empty() || r.name.contains(['/', '\\']) || r.name.contains("__"));
        check(name_ok, "run.name", || {
            format!("[run] name = {:?}: use a non-empty name without `/` or `__`, e.g. \"masp\"", r.name)
        })?;
        Ok(())
    }

    /// The resolved config as TOML, with `agent.preset` and `masp.enabled` in place; it
    /// reads back (with [`RunConfig::from_toml_str`]) to the same config.
    pub fn to_toml(&self) -> Result<String> {
        let mut table = match toml::Value::try_from(self).context("serialising the config")? {
            toml::Value::Table(t) => t,
            _ => unreachable!("RunConfig is a struct"),
        };
        if let Some(toml::Value::Table(agent)) = table.get_mut("agent") {
            agent.remove("seed");
            agent.remove("device");
            agent.insert("preset".into(), self.agent_preset.name().into());
        }
        if let Some(toml::Value::Table(m)) = table.get_mut("masp") {
            m.insert("enabled".into(), self.masp_enabled.into());
        }
        toml::to_string(&table).context("writing the config as TOML")
    }
}

#[cfg(test)]
mod tests {
    use masp::MetaTarget;

    use super::*;

    #[test]
    fn default_config_is_masp_on_pong_with_64_random_macros_machado() {
        let c = RunConfig::load(&[], &[]).unwrap();
        assert_eq!(c.env, EnvConfig::Atari { game: "pong".into(), protocol: Protocol::Machado });
        assert!(matches!(c.macros.source, MacroSource::Random { count: 64, .. }));
        assert!(c.masp_enabled);
        assert_eq!(c.run.name, "masp");
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = RunConfig::load(&[], &["agent.preset=\"der\"".into(), "run.seed=7".into()]).unwrap();
        assert_eq!(c.agent.learner, AgentConfig::der().learner);
        assert_eq!(c.agent.seed, 7);
        let back = RunConfig::from_toml_str("config.toml", &c.to_toml().unwrap()).unwrap();
        assert_eq!(back, c);
    }

    /// A run folder written before `masp.difference` (or `macros.corruption_draw`, or
    /// `masp.meta_target`) existed reads as it ran (central; all primitives; the target at
    /// theta'), not as the defaults that came later; a
    /// folder that names the field keeps it, and the commit header is no obstacle.
    #[test]
    fn a_config_from_before_a_field_reads_as_its_runs_ran() {
        let dir = std::env::temp_dir().join(format!("masp-config-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let c = RunConfig::load(&[], &[]).unwrap();
        assert_eq!(c.masp.difference, masp::Difference::OneSided, "today's default");
        let text = c.to_toml().unwrap();
        let old: String =
            text.lines().filter(|l| !l.starts_with("difference")).collect::<Vec<_>>().join("\n");
        assert_ne!(old.len(), text.len(), "the field was written");
        std::fs::write(&path, format!("# masp commit abc: started\n{old}")).unwrap();
        assert_eq!(RunConfig::read_resolved(&path).unwrap().masp.difference, masp::Difference::Central);
        let old = old.lines().filter(|l| !l.starts_with("corruption_draw")).collect::<Vec<_>>().join("\n");
        std::fs::write(&path, &old).unwrap();
        assert_eq!(
            RunConfig::read_resolved(&path).unwrap().macros.corruption_draw,
            CorruptionDraw::AllPrimitives
        );
        let old = old.lines().filter(|l| !l.starts_with("meta_target")).collect::<Vec<_>>().join("\n");
        std::fs::write(&path, &old).unwrap();
        assert_eq!(RunConfig::read_resolved(&path).unwrap().masp.meta_target, MetaTarget::Lookahead);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(RunConfig::read_resolved(&path).unwrap(), c);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh `B'` has no update target: the resolved config records the target chosen at
    /// theta', and asking for the update's with a fresh `B'` names both fixes.
    #[test]
    fn a_fresh_meta_batch_takes_the_target_at_theta_prime() {
        let load =
            |sets: &[&str]| RunConfig::load(&[], &sets.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(load(&[]).unwrap().masp.meta_target, MetaTarget::Update, "the default with B' = B");
        let fresh = load(&["masp.fresh_batch=true"]).unwrap();
        assert_eq!(fresh.masp.meta_target, MetaTarget::Lookahead);
        let back = RunConfig::from_toml_str("config.toml", &fresh.to_toml().unwrap()).unwrap();
        assert_eq!(back, fresh, "round trip");
        let err = load(&["masp.fresh_batch=true", "masp.meta_target=\"update\""]).unwrap_err().to_string();
        assert!(err.contains("masp.fresh_batch = false") && err.contains("\"lookahead\""), "{err}");
    }

    #[test]
    fn preset_values_stay_under_overrides() {
        let c = RunConfig::load(&[], &["agent.preset=toy".into(), "agent.learner.lr=0.01".into()]).unwrap();
        assert_eq!(c.agent.learner.lr, 0.01);
        assert_eq!(c.agent.learner.learning_starts, AgentConfig::toy().learner.learning_starts);
        assert_eq!(c.agent_preset, AgentPreset::Toy);
    }

    #[test]
    fn schedules_follow_the_budget_and_a_longer_one_is_warned() {
        // PER's beta ends with the run: 10M frames at frame skip 4 are 2.5M agent steps.
        let c = RunConfig::load(&[], &["run.frames=10000000".into()]).unwrap();
        assert_eq!((c.budget_agent_steps(), c.agent.replay.beta_steps), (2_500_000, 2_500_000));
        let c =
            RunConfig::load(&[], &["run.frames=10000000".into(), "agent.replay.beta_steps=50000000".into()])
                .unwrap();
        assert_eq!(c.agent.replay.beta_steps, 50_000_000, "a config's own value stays");
        let warnings = c.schedule_warnings();
        // beta at 2.5M of 50M steps: 0.4 + 0.6 * 0.05 = 0.43.
        assert!(
            warnings.iter().any(|w| w.contains("beta_steps = 50000000") && w.contains("ends at 0.43")),
            "{warnings:?}"
        );
        // Atari 100k with ez-greedy: 100k agent steps of a 250k decay end at 1 - 0.99 * 0.4 = 0.604.
        let sets = [
            "env.protocol=\"atari100k\"".into(),
            "run.frames=400000".into(),
            "macros.source={kind=\"none\"}".into(),
            "agent.network.noisy=false".into(),
            "agent.exploration.kind=\"ez_greedy\"".into(),
        ];
        let c = RunConfig::load(&[], &sets).unwrap();
        let warnings = c.schedule_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("epsilon_decay_steps = 250000") && warnings[0].contains("ends at 0.60"),
            "{warnings:?}"
        );
        // With macros, beta counts decisions, fewer than the budget's primitive steps.
        let c = RunConfig::load(&[], &["run.frames=400000".into()]).unwrap();
        assert!(
            c.schedule_warnings().iter().any(|w| w.contains("with macros")),
            "{:?}",
            c.schedule_warnings()
        );
    }
}
