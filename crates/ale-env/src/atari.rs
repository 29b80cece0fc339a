//! `AtariEnv`: an ALE game behind the standard Atari preprocessing, as an [`rl_env::Env`].
//!
//! One agent step: the action is held for `frame_skip` emulator frames (ALE applies sticky
//! actions per frame); the grayscale screens of the last two frames are max-pooled, area-
//! resized to `(screen_size, screen_size)` and pushed onto a stack of `frame_stack` frames.
//! Observation: `u8`, `(frame_stack, screen_size, screen_size)` = `(4, 84, 84)`, oldest
//! frame first. Reward: the change in game score over the step, clipped to [-1, 1] if
//! configured (`info.raw_reward` keeps it unclipped). `terminated` (game over, or a life
//! lost when that is terminal) and `truncated` (the frame cap) can both be true.
//!
//! ```no_run
//! use ale_env::{AtariConfig, AtariEnv};
//! use rl_env::Env;
//! let mut env = AtariEnv::new(AtariConfig { game: "breakout".into(), ..AtariConfig::default() })?;
//! let obs = env.reset(Some(1));
//! assert_eq!(obs.len(), 4 * 84 * 84);
//! let step = env.step(1); // an index into the minimal action set: FIRE in Breakout
//! println!("reward {} after {} frames", step.reward, step.info.frames);
//! # Ok::<(), ale_env::Error>(())
//! ```

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rl_env::pixels::{max_pool, AreaResize, FrameStack};
use rl_env::{check_action, Env, EnvSpec, Obs, ObsSpec, RgbImage, Step, StepInfo, VecEnv};
use serde::{Deserialize, Serialize};

use crate::ale::{action_name, Ale};
use crate::error::{Error, Result};
use crate::roms::rom_path;

/// ALE's screen height in pixels (NTSC).
const SCREEN_HEIGHT: usize = 210;
/// ALE's screen width in pixels.
const SCREEN_WIDTH: usize = 160;

/// ALE's action ids used by the resets.
const NOOP: i32 = 0;
const FIRE: i32 = 1;

/// The preprocessing and protocol knobs. `Default` is the Machado et al. (2018) protocol
/// (sticky actions, no life-loss terminal, 108k-frame cap) with the DQN frame pipeline; see
/// [`crate::Protocol`] for the named presets. Units: "# frames" are emulator frames (60 a
/// second), "# agent steps" are calls to `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AtariConfig {
    /// ROM name as ALE spells it (`pong`, `space_invaders`, `ms_pacman`). Default `pong`.
    pub game: String,
    /// # frames per agent step; the action is repeated on each. Default 4.
    pub frame_skip: u32,
    /// Max-pool the last two frames of each step (removes sprite flicker). Default true.
    pub max_pool: bool,
    /// Number of frames in the observation stack (its channel count). Default 4.
    pub frame_stack: usize,
    /// Side of the square observation frame in pixels, 1..=160 (a shrink of the 210x160
    /// screen on both axes). Default 84.
    pub screen_size: usize,
    /// Largest number of no-op starts, # frames: each full reset emulates a uniform 1..=
    /// noop_max single NOOP frames (baselines' `NoopResetEnv` under the frame skip);
    /// 0 turns it off. Default 0.
    pub noop_max: u32,
    /// After each reset, take FIRE and then the action-set's action 2 as two agent steps
    /// (baselines' `FireResetEnv`), for games that wait for FIRE. Applies only to games
    /// whose action 1 is FIRE (with at least 3 actions), as CleanRL's wrapper checks; others
    /// ignore it. Default false.
    pub fire_reset: bool,
    /// Losing a life ends the episode (`terminated`), and the next `reset(None)` continues
    /// the same game with a no-op step, as baselines' `EpisodicLifeEnv`; training-only
    /// trick. Default false.
    pub terminal_on_life_loss: bool,
    /// Clip the learner's reward to [-1, 1]; `info.raw_reward` stays raw. Default false
    /// (evaluation); the protocols' training configs turn it on.
    pub clip_rewards: bool,
    /// Episode cap, # frames emulated since the last full reset (no-ops and fire steps
    /// included); reaching it sets `truncated`. Default 108_000 (30 minutes of play).
    pub max_episode_frames: u32,
    /// Probability that ALE repeats the previous action instead of the new one, per frame
    /// (ALE's `repeat_action_probability`). Default 0.25.
    pub sticky_action_prob: f32,
    /// Use all 18 joystick actions instead of the game's minimal set. Default false.
    pub full_action_space: bool,
    /// Game mode, as ALE numbers them; `None` keeps the ROM's default.
    pub mode: Option<i32>,
    /// Game difficulty, as ALE numbers them; `None` keeps the ROM's default.
    pub difficulty: Option<i32>,
}

impl Default for AtariConfig {
    fn default() -> Self {
        Self {
            game: "pong".into(),
            frame_skip: 4,
            max_pool: true,
            frame_stack: 4,
            screen_size: 84,
            noop_max: 0,
            fire_reset: false,
            terminal_on_life_loss: false,
            clip_rewards: false,
            max_episode_frames: 108_000,
            sticky_action_prob: 0.25,
            full_action_space: false,
            mode: None,
            difficulty: None,
        }
    }
}

impl AtariConfig {
    /// Checks every field's range; the error names the field and what is allowed.
    /// Game names, modes and difficulties are checked by `AtariEnv::new` against the ROM.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, message: String| Err(Error::InvalidConfig { field, message });
        if self.game.trim().is_empty() {
            return bad(
                "game",
                "is empty; name a ROM such as \"pong\" (see ale_env::available_games())".into(),
            );
        }
        if self.frame_skip == 0 {
            return bad(
                "frame_skip",
                "is 0; it counts frames per agent step, so use at least 1 (4 is standard)".into(),
            );
        }
        if self.frame_stack == 0 {
            return bad("frame_stack", "is 0; stack at least 1 frame (4 is standard)".into());
        }
        if !(1..=SCREEN_WIDTH).contains(&self.screen_size) {
            return bad(
                "screen_size",
                format!(
                    "is {}; area resizing only shrinks the {SCREEN_HEIGHT}x{SCREEN_WIDTH} screen, so use 1..={SCREEN_WIDTH} (84 is standard)",
                    self.screen_size
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.sticky_action_prob) {
            return bad(
                "sticky_action_prob",
                format!(
                    "is {}; it is a probability, so use a value in [0, 1] (0.25 for Machado's protocol, 0 to turn it off)",
                    self.sticky_action_prob
                ),
            );
        }
        if self.max_episode_frames == 0 {
            return bad(
                "max_episode_frames",
                "is 0; use a positive number of frames (108000 is standard)".into(),
            );
        }
        if self.noop_max >= self.max_episode_frames {
            return bad(
                "noop_max",
                format!(
                    "is {} but max_episode_frames is {}: no-op starts would use up the whole episode; use fewer (30 is standard)",
                    self.noop_max, self.max_episode_frames
                ),
            );
        }
        Ok(())
    }
}

/// N Atari environments stepped in parallel on rayon; see [`AtariEnv::vec`].
pub type AtariVecEnv = VecEnv<AtariEnv>;

/// What one run of the frame-skip loop did.
struct Advance {
    reward: i32,
    frames: u32,
    game_over: bool,
}

/// One ALE game with the preprocessing of [`AtariConfig`]. Stepping does not allocate.
pub struct AtariEnv {
    config: AtariConfig,
    ale: Ale,
    rom: PathBuf,
    spec: EnvSpec,
    /// ALE action ids; the agent's action `a` plays `actions[a]`.
    actions: Vec<i32>,
    fire_reset: bool,
    /// Draws the number of no-op starts; reseeded by `reset(Some(seed))`.
    rng: ChaCha8Rng,
    /// Two raw grayscale screens `(height, 160)`; `screens[last]` is the newest.
    screens: [Vec<u8>; 2],
    last: usize,
    pooled: Vec<u8>,
    /// Whether the newest frame comes from `pooled` (else straight from `screens[last]`).
    use_pooled: bool,
    resize: AreaResize,
    stack: FrameStack,
    lives: i32,
    episode_score: f64,
    /// Frames emulated since the last full reset, for the episode cap.
    episode_frames: u32,
    /// Frames the last `reset` emulated (no-ops, fire and continuation steps).
    reset_frames: u32,
    /// The last episode ended on a life loss with the game still running: `reset(None)`
    /// continues it.
    continue_game: bool,
    needs_reset: bool,
}

impl AtariEnv {
    /// Loads `config.game`'s ROM into a new ALE with the config's settings. Call `reset`
    /// before the first step; on a new env `reset(None)` is the same as `reset(Some(0))`.
    pub fn new(config: AtariConfig) -> Result<Self> {
        config.validate()?;
        let rom = rom_path(&config.game)?;
        let mut ale = Ale::new()?;
        // The frame skip is ours (we need the screens of the last two frames); ALE's stays 1.
        ale.set_int("frame_skip", 1)?;
        ale.set_float("repeat_action_probability", config.sticky_action_prob)?;
        ale.set_int("random_seed", ale_seed(0))?;
        ale.load_rom(&rom)?;
        check_choice("mode", config.mode, &ale.available_modes(), &config.game)?;
        check_choice("difficulty", config.difficulty, &ale.available_difficulties(), &config.game)?;
        apply_mode(&mut ale, &config)?;
        let actions =
            if config.full_action_space { ale.legal_action_set() } else { ale.minimal_action_set() };
        let fire_reset = config.fire_reset && actions.len() >= 3 && actions[1] == FIRE;
        let size = config.screen_size;
        let spec = EnvSpec {
            observation: ObsSpec::Pixels { channels: config.frame_stack, height: size, width: size },
            action_names: actions.iter().map(|&a| action_name(a).to_string()).collect(),
        };
        // Most ROMs are 210 rows tall, but some (air_raid, pooyan, carnival, ...) are taller:
        // every buffer is sized from the emulator, never from the 210x160 constants.
        let (h, w) = (ale.screen_height(), ale.screen_width());
        let mut env = Self {
            rom,
            spec,
            actions,
            fire_reset,
            rng: ChaCha8Rng::seed_from_u64(noop_seed(0)),
            screens: [vec![0; h * w], vec![0; h * w]],
            last: 0,
            pooled: vec![0; h * w],
            use_pooled: false,
            resize: AreaResize::new(h, w, size, size),
            stack: FrameStack::new(config.frame_stack, size * size),
            lives: 0,
            episode_score: 0.0,
            episode_frames: 0,
            reset_frames: 0,
            continue_game: false,
            needs_reset: true,
            config,
            ale,
        };
        env.ale.screen_grayscale(&mut env.screens[0]);
        Ok(env)
    }

    /// `n` copies of the env in a [`AtariVecEnv`]; `reset(Some(s))` gives copy `i` seed `s + i`.
    pub fn vec(config: AtariConfig, n: usize) -> Result<AtariVecEnv> {
        if n == 0 {
            return Err(Error::InvalidConfig {
                field: "n",
                message: "a vector env needs at least 1 copy".into(),
            });
        }
        let envs = (0..n).map(|_| Self::new(config.clone())).collect::<Result<Vec<_>>>()?;
        Ok(VecEnv::new(envs))
    }

    pub fn config(&self) -> &AtariConfig {
        &self.config
    }

    /// ALE action ids of the agent's actions: action `a` plays `action_set()[a]`.
    pub fn action_set(&self) -> &[i32] {
        &self.actions
    }

    /// The raw `(height, 160)` grayscale screen (210 rows for most games, up to 250 for a few)
    /// after the last frame of the last step or reset.
    pub fn last_screen(&self) -> &[u8] {
        &self.screens[self.last]
    }

    /// The newest preprocessed frame, `(screen_size, screen_size)`: the last channel of the
    /// observation.
    pub fn newest_frame(&self) -> &[u8] {
        self.stack.newest()
    }

    /// Emulator frames the last `reset` used (no-op starts, fire steps, the continuation
    /// no-op step); `info.frames` counts only those of `step`.
    pub fn reset_frames(&self) -> u32 {
        self.reset_frames
    }

    pub fn ale(&self) -> &Ale {
        &self.ale
    }

    /// The emulator itself, for what this wrapper does not offer (RAM, states). Acting or
    /// resetting through it bypasses the frame stack, lives and score bookkeeping: call
    /// `reset(Some(seed))` afterwards to get back to a consistent env.
    pub fn ale_mut(&mut self) -> &mut Ale {
        &mut self.ale
    }

    /// Reseeds ALE (its sticky-action RNG) and reloads the ROM, so that the emulator starts
    /// from the same state; reseeds the no-op RNG.
    fn reseed(&mut self, seed: u64) {
        // These calls succeeded with the same arguments in `new`; failing now is a broken ALE.
        self.ale
            .set_int("random_seed", ale_seed(seed))
            .expect("ALE refused random_seed after accepting it in new()");
        self.ale.load_rom(&self.rom).expect("ALE failed to reload a ROM it loaded in new()");
        apply_mode(&mut self.ale, &self.config).expect("ALE refused a mode it accepted in new()");
        self.rng = ChaCha8Rng::seed_from_u64(noop_seed(seed));
    }

    /// A new game: ALE reset, no-op starts, fire reset; the stack filled with the first frame.
    fn full_reset(&mut self) {
        self.ale.reset_game();
        self.episode_score = 0.0;
        self.episode_frames = 0;
        let noops =
            if self.config.noop_max > 0 { self.rng.random_range(1..=self.config.noop_max) } else { 0 };
        for _ in 0..noops {
            self.episode_score += f64::from(self.ale.act(NOOP, 1.0));
            self.count_frames(1);
            if self.ale.game_over(false) {
                self.ale.reset_game();
            }
        }
        self.observe_current_screen();
        if self.fire_reset {
            self.fire();
        }
        self.lives = self.ale.lives();
    }

    /// baselines' `FireResetEnv.reset`: FIRE, then action 2, each an agent step; a game that
    /// ends on them starts over.
    fn fire(&mut self) {
        for action in [FIRE, self.actions[2]] {
            let adv = self.advance(action);
            self.episode_score += f64::from(adv.reward);
            self.count_frames(adv.frames);
            if adv.game_over {
                self.ale.reset_game();
                self.observe_current_screen();
            }
        }
    }

    /// baselines' `EpisodicLifeEnv.reset` after a life loss: one no-op agent step in the
    /// same game (then the fire reset, as `FireResetEnv` wraps it). Falls back to a full
    /// reset if that step ends the game or reaches the cap.
    fn continue_after_life_loss(&mut self) {
        let adv = self.advance(NOOP);
        self.episode_score += f64::from(adv.reward);
        self.count_frames(adv.frames);
        if adv.game_over || self.episode_frames >= self.config.max_episode_frames {
            self.full_reset();
            return;
        }
        if self.fire_reset {
            self.fire();
        }
        self.lives = self.ale.lives();
    }

    fn count_frames(&mut self, frames: u32) {
        self.episode_frames = self.episode_frames.saturating_add(frames);
        self.reset_frames = self.reset_frames.saturating_add(frames);
    }

    /// Takes the current screen as the newest frame, unpooled (a reset has no second frame).
    fn observe_current_screen(&mut self) {
        self.ale.screen_grayscale(&mut self.screens[self.last]);
        self.use_pooled = false;
    }

    /// The frame-skip loop: plays ALE action `action` for up to `frame_skip` frames, fewer
    /// if the game ends (or a life is lost, when that is terminal) or the episode cap comes
    /// first. Fetches only the screens of the last two frames, and leaves the newest
    /// preprocessing input in `pooled` or `screens[last]`.
    fn advance(&mut self, action: i32) -> Advance {
        let left = self.config.max_episode_frames.saturating_sub(self.episode_frames);
        let n = self.config.frame_skip.min(left).max(1);
        let lives_before = self.ale.lives();
        let pool = self.config.max_pool;
        // The screen slot holding the frame just before the current one, if fetched: at the
        // first frame that is the previous step's last screen.
        let mut before = Some(self.last);
        let mut adv = Advance { reward: 0, frames: 0, game_over: false };
        for i in 0..n {
            adv.reward += self.ale.act(action, 1.0);
            adv.frames += 1;
            adv.game_over = self.ale.game_over(false);
            let life_stop = self.config.terminal_on_life_loss && self.ale.lives() < lives_before;
            if adv.game_over || life_stop || i + 1 == n {
                let slot = before.map_or(0, |b| 1 - b);
                self.ale.screen_grayscale(&mut self.screens[slot]);
                self.last = slot;
                self.use_pooled = pool && before.is_some();
                if let (true, Some(b)) = (pool, before) {
                    let (a, c) = (&self.screens[b], &self.screens[slot]);
                    max_pool(a, c, &mut self.pooled);
                }
                break;
            }
            before = if pool && i + 2 == n {
                let slot = 1 - self.last;
                self.ale.screen_grayscale(&mut self.screens[slot]);
                Some(slot)
            } else {
                None
            };
        }
        adv
    }

    /// Resizes the newest preprocessing input into the stack: pushed as a new frame, or
    /// (after a reset) copied into every slot.
    fn write_frame(&mut self, reset: bool) {
        let src: &[u8] = if self.use_pooled { &self.pooled } else { &self.screens[self.last] };
        if reset {
            self.resize.resize(src, self.stack.newest_mut());
            self.stack.fill_with_newest();
        } else {
            self.resize.resize(src, self.stack.push_slot());
        }
    }
}

impl Env for AtariEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// `Some(seed)`: reseed and reload, then a new game. `None` after a life-loss terminal
    /// (with the game still running): continue the same game. `None` otherwise: a new game.
    ///
    /// Reloading the ROM is what makes a seeded run repeat exactly, and it is slow (about
    /// 65 ms, mostly ALE rebuilding its colour tables, against 3 ms for `reset(None)`): seed
    /// once per run, not once per episode.
    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        self.reset_frames = 0;
        match seed {
            Some(seed) => {
                self.reseed(seed);
                self.full_reset();
            }
            None if self.continue_game => self.continue_after_life_loss(),
            None => self.full_reset(),
        }
        self.continue_game = false;
        self.needs_reset = false;
        self.write_frame(true);
        Obs::Pixels(self.stack.as_slice())
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        check_action(action, &self.spec);
        assert!(
            !self.needs_reset,
            "AtariEnv::step called before reset, or after a step that returned done()"
        );
        let adv = self.advance(self.actions[action]);
        self.episode_frames = self.episode_frames.saturating_add(adv.frames);
        self.write_frame(false);

        let lives = self.ale.lives();
        let life_lost = lives < self.lives;
        self.lives = lives;
        let raw = adv.reward as f32;
        self.episode_score += f64::from(adv.reward);
        let terminated = adv.game_over || (self.config.terminal_on_life_loss && life_lost);
        let truncated = self.episode_frames >= self.config.max_episode_frames;
        self.continue_game = terminated && !adv.game_over && !truncated;
        self.needs_reset = terminated || truncated;
        Step {
            obs: Obs::Pixels(self.stack.as_slice()),
            reward: if self.config.clip_rewards { raw.clamp(-1.0, 1.0) } else { raw },
            terminated,
            truncated,
            info: StepInfo {
                raw_reward: raw,
                lives,
                life_lost,
                frames: adv.frames,
                episode_score: self.episode_score,
                game_over: adv.game_over || truncated,
            },
        }
    }

    /// The emulator's last frame in colour at full size (`(210, 160)` for most games), before
    /// the preprocessing: what a person playing would see.
    fn render_rgb(&self) -> Option<RgbImage> {
        let (width, height) = (self.ale.screen_width(), self.ale.screen_height());
        let mut pixels = vec![0; width * height * 3];
        self.ale.screen_rgb(&mut pixels);
        Some(RgbImage { width, height, pixels })
    }
}

/// A mode or difficulty the ROM does not offer is a config error, listing those it does.
fn check_choice(field: &'static str, value: Option<i32>, offered: &[i32], game: &str) -> Result<()> {
    match value {
        Some(v) if !offered.contains(&v) => Err(Error::InvalidConfig {
            field,
            message: format!(
                "{game} has no {field} {v}; it offers {offered:?} (or leave it unset for the default)"
            ),
        }),
        _ => Ok(()),
    }
}

fn apply_mode(ale: &mut Ale, config: &AtariConfig) -> Result<()> {
    if let Some(mode) = config.mode {
        ale.set_mode(mode)?;
    }
    if let Some(difficulty) = config.difficulty {
        ale.set_difficulty(difficulty)?;
    }
    Ok(())
}

/// SplitMix64's finaliser: spreads nearby seeds (a VecEnv's `s, s+1, ...`) over the range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// ALE's seed for an env seed: 31 bits, since ALE reads `random_seed` as a signed int.
fn ale_seed(seed: u64) -> i32 {
    (mix(seed) >> 33) as i32
}

/// The no-op RNG's seed: a different stream from ALE's, so the two draws are unrelated.
fn noop_seed(seed: u64) -> u64 {
    mix(seed ^ 0x6e6f_6f70) // "noop"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: AtariConfig) -> &'static str {
        match config.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn default_is_the_machado_protocol() {
        let c = AtariConfig::default();
        assert_eq!((c.frame_skip, c.frame_stack, c.screen_size, c.max_episode_frames), (4, 4, 84, 108_000));
        assert_eq!(c.sticky_action_prob, 0.25);
        assert!(c.max_pool && !c.terminal_on_life_loss && !c.full_action_space && c.noop_max == 0);
        c.validate().unwrap();
    }

    #[test]
    fn invalid_configs_name_their_field() {
        let d = AtariConfig::default;
        assert_eq!(field_of(AtariConfig { frame_skip: 0, ..d() }), "frame_skip");
        assert_eq!(field_of(AtariConfig { frame_stack: 0, ..d() }), "frame_stack");
        assert_eq!(field_of(AtariConfig { screen_size: 0, ..d() }), "screen_size");
        assert_eq!(field_of(AtariConfig { screen_size: 161, ..d() }), "screen_size");
        assert_eq!(field_of(AtariConfig { sticky_action_prob: 1.5, ..d() }), "sticky_action_prob");
        assert_eq!(field_of(AtariConfig { sticky_action_prob: -0.1, ..d() }), "sticky_action_prob");
        assert_eq!(field_of(AtariConfig { sticky_action_prob: f32::NAN, ..d() }), "sticky_action_prob");
        assert_eq!(field_of(AtariConfig { max_episode_frames: 0, ..d() }), "max_episode_frames");
        assert_eq!(field_of(AtariConfig { noop_max: 200, max_episode_frames: 100, ..d() }), "noop_max");
        assert_eq!(field_of(AtariConfig { game: " ".into(), ..d() }), "game");
        let msg = AtariConfig { frame_skip: 0, ..d() }.validate().unwrap_err().to_string();
        assert!(msg.contains("frame_skip") && msg.contains("at least 1"), "{msg}");
    }

    #[test]
    fn config_deserialises_partially_and_refuses_unknown_fields() {
        use serde::de::value::{Error as DeError, MapDeserializer};
        let partial = MapDeserializer::<_, DeError>::new([("game", "breakout")].into_iter());
        let c = AtariConfig::deserialize(partial).unwrap();
        assert_eq!(c, AtariConfig { game: "breakout".into(), ..AtariConfig::default() });
        let typo = MapDeserializer::<_, DeError>::new([("frameskip", "4")].into_iter());
        let err = AtariConfig::deserialize(typo).unwrap_err().to_string();
        assert!(err.contains("frameskip"), "{err}");
    }

    #[test]
    fn seeds_spread_and_fit_ales_signed_int() {
        let seeds: Vec<i32> = (0..100).map(ale_seed).collect();
        assert!(seeds.iter().all(|&s| s >= 0));
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_ne!(noop_seed(3), mix(3));
    }
}
