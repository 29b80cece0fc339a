//! [`RetroEnv`]: a Genesis game behind the Atari-style preprocessing, as an [`rl_env::Env`].
//!
//! A step holds one action for `frame_skip` frames, max-pools the last two grayscale screens,
//! crops as the scenario says, area-resizes to `(screen_size, screen_size)` and pushes onto a
//! stack of `frame_stack` frames: observations are `(frame_stack, screen_size, screen_size)`
//! `u8`, oldest first. Rewards and done are checked after every frame; the step stops at the
//! frame the episode ends.
//!
//! ```no_run
//! use rl_env::Env;
//! let mut env = retro_env::RetroEnv::new(retro_env::RetroConfig::airstriker())?;
//! env.reset(Some(0));
//! let step = env.step(0);
//! # Ok::<(), retro_env::Error>(())
//! ```

use rl_env::pixels::{max_pool, AreaResize, FrameStack};
use rl_env::{check_action, Env, EnvSpec, Obs, ObsSpec, RgbImage, Step, StepInfo, VecEnv};
use serde::{Deserialize, Serialize};

use crate::actions::{Action, ActionSet, Pad};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::integration::{Combine, Integration};
use crate::roms::rom_path;
use crate::variable::Variable;

/// Where the reward comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RewardKind {
    /// The scenario's variable rules (for SF2 and Airstriker: the score's increase).
    #[default]
    Scenario,
    /// Damage dealt minus damage taken, from the `health` and `enemy_health` variables:
    /// each frame, the drop of `enemy_health` minus the drop of `health` (refills between
    /// rounds count nothing). What StreetFighter II practitioners train on.
    HealthDifference,
}

/// The knobs of a [`RetroEnv`]. Units: frames are emulator frames (60 a second).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetroConfig {
    /// The integration's name, e.g. `StreetFighterIISpecialChampionEdition-Genesis-v0`.
    pub game: String,
    /// The start state (a `.state` file of the integration); `None` is metadata's default.
    pub state: Option<String>,
    pub actions: ActionSet,
    /// Frames each action is held (# frames).
    pub frame_skip: u32,
    pub screen_size: usize,
    pub frame_stack: usize,
    pub reward: RewardKind,
    /// Truncate an episode after this many frames (# frames); 0 means never.
    pub max_episode_frames: u64,
    /// Draw every emulated frame. Off (the default), the first `frame_skip - 2` frames of a
    /// step, which no observation shows, are emulated without drawing them: the same
    /// observations, RAM and rewards (a test checks it on Airstriker) for less work. A game
    /// whose logic reads the VDP's sprite collision or overflow flags, which only drawing
    /// sets, could play differently; switch this on for such a game.
    pub draw_all_frames: bool,
}

impl Default for RetroConfig {
    fn default() -> Self {
        RetroConfig {
            game: "Airstriker-Genesis-v0".into(),
            state: None,
            actions: ActionSet::Discrete,
            frame_skip: 4,
            screen_size: 84,
            frame_stack: 4,
            reward: RewardKind::Scenario,
            max_episode_frames: 0,
            draw_all_frames: false,
        }
    }
}

impl RetroConfig {
    /// Airstriker, the free test game, with the defaults.
    pub fn airstriker() -> Self {
        RetroConfig::default()
    }

    /// Checks the numbers; the error names the field and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, value: &dyn std::fmt::Debug, fix: &str| {
            Err(Error::InvalidConfig {
                config: "RetroConfig",
                field,
                value: format!("{value:?}"),
                fix: fix.into(),
            })
        };
        if self.frame_skip == 0 {
            return bad("frame_skip", &self.frame_skip, "use 1 or more (4 is standard)");
        }
        if self.frame_stack == 0 {
            return bad("frame_stack", &self.frame_stack, "use 1 or more (4 is standard)");
        }
        if !(1..=224).contains(&self.screen_size) {
            return bad(
                "screen_size",
                &self.screen_size,
                "area resizing only shrinks the 224-row screen: use 1..=224 (84 is standard)",
            );
        }
        Ok(())
    }
}

/// Turns RAM into rewards and done, frame by frame.
#[derive(Debug)]
struct Rules {
    /// (variable, reward coefficient, penalty coefficient) for the scenario.
    reward: Vec<(Variable, f64, f64)>,
    /// For the health difference: (health, enemy_health).
    health: Option<(Variable, Variable)>,
    done: Vec<(Variable, crate::integration::Op)>,
    combine: Combine,
    /// Each reward variable's value at the last frame (`reward` then `health` order).
    previous: Vec<i64>,
    lives: Option<Variable>,
}

impl Rules {
    fn new(game: &Integration, kind: RewardKind) -> Result<Rules> {
        let s = &game.scenario;
        let mut reward = Vec::new();
        let mut health = None;
        match kind {
            RewardKind::Scenario => {
                for r in &s.reward {
                    reward.push((*game.variable(&r.variable)?, r.reward, r.penalty));
                }
            }
            RewardKind::HealthDifference => {
                health = Some((*game.variable("health")?, *game.variable("enemy_health")?));
            }
        }
        let done = s.done.iter().map(|(n, op)| Ok((*game.variable(n)?, *op))).collect::<Result<_>>()?;
        let lives = game.variables.get("lives").copied();
        Ok(Rules { reward, health, done, combine: s.combine, previous: Vec::new(), lives })
    }

    fn reset(&mut self, ram: &[u8]) {
        self.previous.clear();
        self.previous.extend(self.reward.iter().map(|(v, ..)| v.read(ram)));
        if let Some((h, e)) = &self.health {
            self.previous.extend([h.read(ram), e.read(ram)]);
        }
    }

    /// The reward of the frame that led to `ram`.
    fn reward(&mut self, ram: &[u8]) -> f64 {
        let mut total = 0.0;
        for ((var, up, down), prev) in self.reward.iter().zip(&mut self.previous) {
            let now = var.read(ram);
            let delta = (now - *prev) as f64;
            total += delta * if delta > 0.0 { *up } else { *down };
            *prev = now;
        }
        if let Some((h, e)) = &self.health {
            let n = self.reward.len();
            let (now_h, now_e) = (h.read(ram), e.read(ram));
            total += (self.previous[n + 1] - now_e).max(0) as f64 - (self.previous[n] - now_h).max(0) as f64;
            self.previous[n] = now_h;
            self.previous[n + 1] = now_e;
        }
        total
    }

    fn done(&self, ram: &[u8]) -> bool {
        if self.done.is_empty() {
            return false;
        }
        let mut holds = self.done.iter().map(|(v, op)| op.holds(v.read(ram)));
        match self.combine {
            Combine::Any => holds.any(|h| h),
            Combine::All => holds.all(|h| h),
        }
    }

    fn lives(&self, ram: &[u8]) -> i32 {
        self.lives.map_or(0, |v| v.read(ram) as i32)
    }
}

/// One Genesis game with the preprocessing of [`RetroConfig`]. At most one [`RetroEnv::new`]
/// per process (the linked core's globals); [`RetroEnv::new_isolated`] and [`RetroEnv::vec`]
/// have no limit.
#[derive(Debug)]
pub struct RetroEnv {
    config: RetroConfig,
    spec: EnvSpec,
    actions: Vec<Action>,
    game: Integration,
    core: Core,
    /// The serialised start state, restored by every reset; `None` power-cycles instead.
    start: Option<Vec<u8>>,
    rules: Rules,
    crop: Option<[usize; 4]>,
    /// The last two grayscale screens `(h, w)` and their max.
    screens: [Vec<u8>; 2],
    pooled: Vec<u8>,
    cropped: Vec<u8>,
    /// Built for the (cropped) screen size last seen; rebuilt if the game changes mode.
    resize: Option<(usize, usize, AreaResize)>,
    stack: FrameStack,
    /// The core's state and the reward baselines at the start of the step, to emulate a
    /// step again with every frame drawn (see `step`).
    step_start: (Vec<u8>, Vec<i64>),
    episode_frames: u64,
    episode_score: f64,
    lives: i32,
}

impl RetroEnv {
    /// Loads the game's integration, ROM and start state into the linked core (one such env
    /// per process; see [`Core::load`]).
    pub fn new(config: RetroConfig) -> Result<RetroEnv> {
        RetroEnv::build(config, Core::load)
    }

    /// The same on a private copy of the core ([`Core::load_isolated`]): any number of these
    /// run in one process, side by side.
    pub fn new_isolated(config: RetroConfig) -> Result<RetroEnv> {
        RetroEnv::build(config, Core::load_isolated)
    }

    /// `n` isolated copies in a [`RetroVecEnv`], stepped in parallel on rayon.
    pub fn vec(config: RetroConfig, n: usize) -> Result<RetroVecEnv> {
        let envs = (0..n).map(|_| RetroEnv::new_isolated(config.clone())).collect::<Result<Vec<_>>>()?;
        Ok(VecEnv::new(envs))
    }

    fn build(config: RetroConfig, load: fn(&std::path::Path) -> Result<Core>) -> Result<RetroEnv> {
        config.validate()?;
        let game = Integration::load(&config.game)?;
        let rom = rom_path(&game)?;
        let actions = Pad::genesis()?.actions(config.actions);
        let rules = Rules::new(&game, config.reward)?;
        let state_name = config.state.clone().or_else(|| game.default_state.clone());
        let start = state_name.map(|s| game.state(&s)).transpose()?;
        let core = load(&rom)?;
        let size = config.screen_size;
        let spec = EnvSpec {
            observation: ObsSpec::Pixels { channels: config.frame_stack, height: size, width: size },
            action_names: actions.iter().map(|a| a.name.clone()).collect(),
        };
        Ok(RetroEnv {
            stack: FrameStack::new(config.frame_stack, size * size),
            crop: game.scenario.crop,
            config,
            spec,
            actions,
            game,
            core,
            start,
            rules,
            screens: [Vec::new(), Vec::new()],
            pooled: Vec::new(),
            cropped: Vec::new(),
            resize: None,
            step_start: (Vec::new(), Vec::new()),
            episode_frames: 0,
            episode_score: 0.0,
            lives: 0,
        })
    }

    pub fn config(&self) -> &RetroConfig {
        &self.config
    }

    pub fn integration(&self) -> &Integration {
        &self.game
    }

    /// The core, for states and RAM (tests, tools).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The value of a `data.json` variable now.
    pub fn variable(&self, name: &str) -> Result<i64> {
        Ok(self.game.variable(name)?.read(self.core.ram()))
    }

    /// The whole emulator state plus the env's episode counters, to continue from later.
    pub fn save(&self) -> Result<RetroSnapshot> {
        Ok(RetroSnapshot {
            core: self.core.serialize()?,
            stack: self.stack.clone(),
            previous: self.rules.previous.clone(),
            episode_frames: self.episode_frames,
            episode_score: self.episode_score,
            lives: self.lives,
        })
    }

    /// Continues from a [`RetroEnv::save`] of this game.
    pub fn restore(&mut self, snapshot: &RetroSnapshot) -> Result<()> {
        self.core.unserialize(&snapshot.core)?;
        self.stack = snapshot.stack.clone();
        self.rules.previous.clone_from(&snapshot.previous);
        self.episode_frames = snapshot.episode_frames;
        self.episode_score = snapshot.episode_score;
        self.lives = snapshot.lives;
        Ok(())
    }

    /// Holds `mask` for up to `frame_skip` frames, the first `undrawn` of them not drawn,
    /// checking rewards and done after each frame and grabbing the frames to pool.
    fn run_frames(&mut self, mask: u16, undrawn: u32) -> Frames {
        let skip = self.config.frame_skip;
        let mut run = Frames { reward: 0.0, terminated: false, frames: 0, grabbed: 0 };
        for f in 0..skip {
            if f < undrawn {
                self.core.run_frame_undrawn(mask);
            } else {
                self.core.run_frame(mask);
            }
            run.frames += 1;
            let ram = self.core.ram();
            run.reward += self.rules.reward(ram);
            run.terminated = self.rules.done(ram);
            // The last two frames of the skip (or the frames up to an early end) are pooled.
            if f + 2 >= skip || run.terminated {
                self.screens.swap(0, 1);
                self.grab(1);
                run.grabbed += 1;
            }
            if run.terminated {
                break;
            }
        }
        run
    }

    fn save_step_start(&mut self) {
        let (core, previous) = &mut self.step_start;
        self.core.serialize_into(core).expect("the core saves any state it runs");
        previous.clone_from(&self.rules.previous);
    }

    fn restore_step_start(&mut self) {
        let (core, previous) = &self.step_start;
        self.core.unserialize(core).expect("the core restores a state it saved");
        self.rules.previous.clone_from(previous);
    }

    /// Grabs the current screen into `screens[slot]` in grayscale.
    fn grab(&mut self, slot: usize) {
        let (w, h) = self.core.screen_size();
        self.screens[slot].resize(w * h, 0);
        self.core.screen_gray(&mut self.screens[slot]);
    }

    /// Max-pools (when two screens were grabbed), crops and resizes into the stack's newest
    /// slot, pushing a new frame first unless `replace`.
    fn process(&mut self, pooled_two: bool, replace: bool) {
        let (w, h) = self.core.screen_size();
        let input: &[u8] = if pooled_two && self.screens[0].len() == self.screens[1].len() {
            self.pooled.resize(w * h, 0);
            max_pool(&self.screens[0], &self.screens[1], &mut self.pooled);
            &self.pooled
        } else {
            &self.screens[1]
        };
        let (cx, cy, cw, ch) = match self.crop {
            Some([x, y, cw, ch]) if x + cw <= w && y + ch <= h => (x, y, cw, ch),
            _ => (0, 0, w, h),
        };
        self.cropped.clear();
        for row in input.chunks_exact(w).skip(cy).take(ch) {
            self.cropped.extend_from_slice(&row[cx..cx + cw]);
        }
        let size = self.config.screen_size;
        if !matches!(self.resize, Some((rh, rw, _)) if (rh, rw) == (ch, cw)) {
            self.resize = Some((ch, cw, AreaResize::new(ch, cw, size.min(ch), size.min(cw))));
        }
        let (_, _, resize) = self.resize.as_mut().expect("built above");
        let slot = if replace { self.stack.newest_mut() } else { self.stack.push_slot() };
        resize.resize(&self.cropped, slot);
    }
}

/// What one step's frames gave.
struct Frames {
    reward: f64,
    terminated: bool,
    frames: u32,
    /// Screens grabbed for pooling (2, or 1 when the episode ended early).
    grabbed: u32,
}

/// Several [`RetroEnv`]s on private copies of the core, stepped in parallel.
pub type RetroVecEnv = VecEnv<RetroEnv>;

/// A saved [`RetroEnv`]: emulator state and episode bookkeeping.
#[derive(Clone, Debug)]
pub struct RetroSnapshot {
    core: Vec<u8>,
    stack: FrameStack,
    previous: Vec<i64>,
    episode_frames: u64,
    episode_score: f64,
    lives: i32,
}

impl Env for RetroEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// Restores the start state (the game is deterministic, so `seed` changes nothing) and
    /// emulates one no-op frame: the core draws no picture of a restored state.
    fn reset(&mut self, _seed: Option<u64>) -> Obs<'_> {
        match &self.start {
            Some(state) => self.core.unserialize(state).expect("the start state loaded at creation"),
            None => self.core.reset(),
        }
        self.core.run_frame(0);
        self.grab(1);
        self.process(false, true);
        self.stack.fill_with_newest();
        self.rules.reset(self.core.ram());
        self.lives = self.rules.lives(self.core.ram());
        self.episode_frames = 0;
        self.episode_score = 0.0;
        Obs::Pixels(self.stack.as_slice())
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        check_action(action, &self.spec);
        let mask = self.actions[action].mask;
        let undrawn = if self.config.draw_all_frames { 0 } else { self.config.frame_skip.saturating_sub(2) };
        if undrawn > 0 {
            self.save_step_start();
        }
        let mut run = self.run_frames(mask, undrawn);
        if run.terminated && run.frames <= undrawn {
            // The episode ended on a frame that was not drawn, and the observation shows that
            // frame: emulate the step again, drawing it. Once an episode at most.
            self.restore_step_start();
            run = self.run_frames(mask, 0);
        }
        let Frames { reward, terminated, frames, grabbed } = run;
        self.process(grabbed >= 2, false);
        self.episode_frames += u64::from(frames);
        self.episode_score += reward;
        let lives = self.rules.lives(self.core.ram());
        let life_lost = lives < self.lives;
        self.lives = lives;
        let cap = self.config.max_episode_frames;
        let truncated = !terminated && cap > 0 && self.episode_frames >= cap;
        Step {
            obs: Obs::Pixels(self.stack.as_slice()),
            reward: reward as f32,
            terminated,
            truncated,
            info: StepInfo {
                raw_reward: reward as f32,
                lives,
                life_lost,
                frames,
                episode_score: self.episode_score,
                game_over: terminated || truncated,
            },
        }
    }

    fn render_rgb(&self) -> Option<RgbImage> {
        let (w, h) = self.core.screen_size();
        let mut rgb = vec![0; w * h * 3];
        self.core.screen_rgb(&mut rgb);
        Some(RgbImage { width: w, height: h, pixels: rgb })
    }
}
