//! `KeyDoor`: a small grid maze with a key and a locked door, a two-stage sparse task whose
//! long straight corridors reward open-loop macros such as `RIGHT x 6`.
//!
//! The rules and the default map are on [`KeyDoor`].
//!
//! ```
//! use rl_env::{Env, KeyDoor, KeyDoorConfig};
//! let mut env = KeyDoor::try_new(KeyDoorConfig::default())?;
//! env.reset(Some(0));
//! let (up, down, left, right, pickup) =
//!     (KeyDoor::UP, KeyDoor::DOWN, KeyDoor::LEFT, KeyDoor::RIGHT, KeyDoor::PICKUP);
//! let plan = [[down; 4].as_slice(), &[right; 6], &[up, pickup, down], &[left; 3], &[down]].concat();
//! let ret: f32 = plan.iter().map(|&a| env.step(a).reward).sum();
//! assert!((ret - 1.1).abs() < 1e-6);
//! # Ok::<(), rl_env::Error>(())
//! ```

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::{check_action, Env, Step, StepInfo};
use crate::error::{Error, Result};
use crate::rgb::{self, RgbImage};
use crate::spec::{EnvSpec, Obs, ObsSpec};

/// The knobs of a [`KeyDoor`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct KeyDoorConfig {
    /// The ASCII layout (see [`KeyDoor`]): rows of `# . A K D`, all the same width, exactly
    /// one `A`, `K` and `D`. Leading and trailing whitespace on each line and blank lines are
    /// ignored, so an indented raw string works. Default [`KeyDoorConfig::DEFAULT_MAP`].
    pub map: String,
    /// Steps (= frames) after which the episode is truncated, at least 1. Default 100.
    pub max_steps: usize,
    /// Reward for picking up the key. Default 0.1.
    pub key_reward: f32,
    /// Reward for going through the door (which ends the episode). Default 1.0.
    pub door_reward: f32,
    /// Reward on every other step. Default 0.
    pub step_penalty: f32,
    /// Draw the start cell at each reset instead of using `A`. Default false.
    pub random_start: bool,
    /// Draw the key's cell at each reset instead of using `K`. Default false.
    pub random_key: bool,
}

impl KeyDoorConfig {
    /// The 9x9 two-corridor maze drawn in [`KeyDoor`]'s documentation.
    pub const DEFAULT_MAP: &'static str = "\
#########
#A..#...#
#.#.#.#.#
#.#...#.#
#.#####K#
#.......#
####D####
#.......#
#########
";

    /// Checks every field, the map included; the error names the first bad one and the fix.
    pub fn validate(&self) -> Result<()> {
        self.layout().map(|_| ())
    }

    fn layout(&self) -> Result<Layout> {
        const NAME: &str = "KeyDoorConfig";
        if self.max_steps == 0 {
            return Err(Error::config(NAME, "max_steps", self.max_steps, "use at least 1"));
        }
        for (field, value) in [
            ("key_reward", self.key_reward),
            ("door_reward", self.door_reward),
            ("step_penalty", self.step_penalty),
        ] {
            if !value.is_finite() {
                return Err(Error::config(NAME, field, value, "use a finite number"));
            }
        }
        Layout::parse(&self.map)
    }
}

impl Default for KeyDoorConfig {
    fn default() -> Self {
        Self {
            map: Self::DEFAULT_MAP.to_string(),
            max_steps: 100,
            key_reward: 0.1,
            door_reward: 1.0,
            step_penalty: 0.0,
            random_start: false,
            random_key: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Floor,
    Wall,
    Door,
}

/// A parsed, checked map. Cells are indexed `y * width + x`.
#[derive(Clone, Debug)]
struct Layout {
    width: usize,
    height: usize,
    cells: Vec<Cell>,
    start: usize,
    key: usize,
    door: usize,
    /// Floor cells reachable from `start` without the door, ascending: where random starts
    /// and keys are drawn from.
    reachable: Vec<usize>,
}

impl Layout {
    fn parse(map: &str) -> Result<Self> {
        let rows: Vec<(usize, &str)> =
            map.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty()).collect();
        let Some(&(_, first)) = rows.first() else {
            return Err(Error::map(0, 0, "the map is empty"));
        };
        let width = first.chars().count();
        let height = rows.len();
        let mut cells = Vec::with_capacity(width * height);
        let (mut start, mut key, mut door) = (None, None, None);
        // Where each cell came from in the source, so errors can point at it.
        let position = |cell: usize| (rows[cell / width].0, cell % width + 1);
        for &(line, row) in &rows {
            if row.chars().count() != width {
                return Err(Error::map(
                    line,
                    1,
                    format!("this row is {} cells wide but the first row is {width}", row.chars().count()),
                ));
            }
            for (x, ch) in row.chars().enumerate() {
                let here = cells.len();
                let mark = |slot: &mut Option<usize>, what: &str| match slot {
                    Some(_) => {
                        Err(Error::map(line, x + 1, format!("a second {what}; the map needs exactly one")))
                    }
                    None => {
                        *slot = Some(here);
                        Ok(())
                    }
                };
                cells.push(match ch {
                    '#' => Cell::Wall,
                    '.' => Cell::Floor,
                    'A' => mark(&mut start, "start 'A'").map(|_| Cell::Floor)?,
                    'K' => mark(&mut key, "key 'K'").map(|_| Cell::Floor)?,
                    'D' => mark(&mut door, "door 'D'").map(|_| Cell::Door)?,
                    other => {
                        return Err(Error::map(
                            line,
                            x + 1,
                            format!("unknown character {other:?}; use '#' '.' 'A' 'K' 'D'"),
                        ))
                    }
                });
            }
        }
        let missing = |what: &str| Error::map(0, 0, format!("the map has no {what}; it needs exactly one"));
        let start = start.ok_or_else(|| missing("start 'A'"))?;
        let key = key.ok_or_else(|| missing("key 'K'"))?;
        let door = door.ok_or_else(|| missing("door 'D'"))?;

        let mut layout = Self { width, height, cells, start, key, door, reachable: Vec::new() };
        layout.reachable = layout.flood_from(start);
        if layout.reachable.binary_search(&key).is_err() {
            let (line, column) = position(key);
            return Err(Error::map(line, column, "the key cannot be reached from the start 'A'"));
        }
        let door_reachable = (0..4)
            .filter_map(|a| layout.neighbour(door, a))
            .any(|c| layout.reachable.binary_search(&c).is_ok());
        if !door_reachable {
            let (line, column) = position(door);
            return Err(Error::map(line, column, "the door cannot be reached from the start 'A'"));
        }
        Ok(layout)
    }

    /// Floor cells reachable from `from` by moves that avoid walls and the door, ascending.
    fn flood_from(&self, from: usize) -> Vec<usize> {
        let mut seen = vec![false; self.cells.len()];
        let mut queue = VecDeque::from([from]);
        seen[from] = true;
        while let Some(cell) = queue.pop_front() {
            for action in 0..4 {
                if let Some(next) = self.neighbour(cell, action) {
                    if !seen[next] && self.cells[next] == Cell::Floor {
                        seen[next] = true;
                        queue.push_back(next);
                    }
                }
            }
        }
        (0..self.cells.len()).filter(|&c| seen[c]).collect()
    }

    /// The cell a move action leads to, or `None` off the grid.
    fn neighbour(&self, cell: usize, action: usize) -> Option<usize> {
        let (x, y) = (cell % self.width, cell / self.width);
        match action {
            KeyDoor::UP => (y > 0).then(|| cell - self.width),
            KeyDoor::DOWN => (y + 1 < self.height).then(|| cell + self.width),
            KeyDoor::LEFT => (x > 0).then(|| cell - 1),
            KeyDoor::RIGHT => (x + 1 < self.width).then(|| cell + 1),
            _ => None,
        }
    }
}

/// A grid maze with a key and a locked door.
///
/// The layout is an ASCII map ([`KeyDoorConfig::map`]); the default, 9x9:
///
/// ```text
/// #########
/// #A..#...#
/// #.#.#.#.#
/// #.#...#.#
/// #.#####K#
/// #.......#
/// ####D####
/// #.......#
/// #########
/// ```
///
/// `#` wall, `.` floor, `A` the agent's start, `K` the key, `D` the door (the room behind it is
/// the exit and is never entered). `x` grows to the right and `y` downwards.
///
/// Actions: `0 UP`, `1 DOWN`, `2 LEFT`, `3 RIGHT`, `4 PICKUP`. A move into a wall or off the
/// grid leaves the agent where it is. `PICKUP` takes the key when the agent stands on it and
/// does nothing anywhere else. The door blocks like a wall until the agent holds the key;
/// stepping into it with the key opens it and terminates the episode.
///
/// Reward: `key_reward` (default 0.1) on the step that picks the key up, `door_reward`
/// (default 1.0) on the step through the door, `step_penalty` (default 0) on every other step.
/// The episode is truncated after `max_steps` steps. The default map's shortest solution is 17
/// steps with return 1.1: `DOWN x 4, RIGHT x 6, UP, PICKUP, DOWN, LEFT x 3, DOWN`.
///
/// With `random_start` / `random_key`, `reset` draws the start and/or the key's cell uniformly
/// from the floor cells reachable from `A` (never the same cell), from the seeded generator.
///
/// Observation: `ObsSpec::Vector { len: 2 * wh + 1 }` with `wh = width * height`, cells indexed
/// row-major (`y * width + x`):
/// * `[0, wh)`: one-hot of the agent's cell;
/// * `[wh, 2wh)`: one-hot of the key's cell while it lies on the floor, all zero once held;
/// * `[2wh]`: 1 when the agent holds the key, else 0.
#[derive(Clone, Debug)]
pub struct KeyDoor {
    config: KeyDoorConfig,
    spec: EnvSpec,
    layout: Layout,
    rng: ChaCha8Rng,
    agent: usize,
    key: usize,
    has_key: bool,
    steps: usize,
    episode_score: f64,
    done: bool,
    /// The observation, updated in O(1) per step and lent out by `step`.
    obs: Vec<f32>,
}

impl KeyDoor {
    pub const UP: usize = 0;
    pub const DOWN: usize = 1;
    pub const LEFT: usize = 2;
    pub const RIGHT: usize = 3;
    pub const PICKUP: usize = 4;
    pub const ACTION_NAMES: [&'static str; 5] = ["UP", "DOWN", "LEFT", "RIGHT", "PICKUP"];

    /// Parses and checks the config and builds the environment, already reset with seed 0.
    pub fn try_new(config: KeyDoorConfig) -> Result<Self> {
        let layout = config.layout()?;
        let cells = layout.width * layout.height;
        let spec = EnvSpec {
            observation: ObsSpec::Vector { len: 2 * cells + 1 },
            action_names: Self::ACTION_NAMES.iter().map(|s| s.to_string()).collect(),
        };
        let mut env = Self {
            obs: vec![0.0; 2 * cells + 1],
            agent: layout.start,
            key: layout.key,
            config,
            spec,
            layout,
            rng: ChaCha8Rng::seed_from_u64(0),
            has_key: false,
            steps: 0,
            episode_score: 0.0,
            done: false,
        };
        env.reset(Some(0));
        Ok(env)
    }

    /// Like [`KeyDoor::try_new`], for configs known to be valid; panics with the validation
    /// message otherwise.
    pub fn new(config: KeyDoorConfig) -> Self {
        Self::try_new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn config(&self) -> &KeyDoorConfig {
        &self.config
    }

    /// `(width, height)` of the map.
    pub fn size(&self) -> (usize, usize) {
        (self.layout.width, self.layout.height)
    }

    /// The agent's `(x, y)`.
    pub fn agent(&self) -> (usize, usize) {
        self.xy(self.agent)
    }

    /// The `(x, y)` where the key lies (or lay, once held).
    pub fn key(&self) -> (usize, usize) {
        self.xy(self.key)
    }

    /// The door's `(x, y)`.
    pub fn door(&self) -> (usize, usize) {
        self.xy(self.layout.door)
    }

    pub fn has_key(&self) -> bool {
        self.has_key
    }

    /// Steps taken since the last reset.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The current state as a map: `@` the agent, `K` the key while on the floor, `D` the door.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity((self.layout.width + 1) * self.layout.height);
        for cell in 0..self.cells() {
            out.push(self.glyph(cell));
            if cell % self.layout.width == self.layout.width - 1 {
                out.push('\n');
            }
        }
        out
    }

    /// What [`KeyDoor::render`] shows of `cell`, which the colour picture draws too.
    fn glyph(&self, cell: usize) -> char {
        match self.layout.cells[cell] {
            _ if cell == self.agent => '@',
            _ if cell == self.key && !self.has_key => 'K',
            Cell::Wall => '#',
            Cell::Door => 'D',
            Cell::Floor => '.',
        }
    }

    fn xy(&self, cell: usize) -> (usize, usize) {
        (cell % self.layout.width, cell / self.layout.width)
    }

    fn cells(&self) -> usize {
        self.layout.width * self.layout.height
    }

    fn move_agent(&mut self, cell: usize) {
        self.obs[self.agent] = 0.0;
        self.obs[cell] = 1.0;
        self.agent = cell;
    }

    /// A uniform draw from the reachable floor cells other than `except` (which is one of
    /// them, so at least one other exists: the start and the key are distinct and reachable).
    fn draw_cell_except(&mut self, except: usize) -> usize {
        let reachable = &self.layout.reachable;
        let i = self.rng.random_range(0..reachable.len() - 1);
        // Drawing from all but the last slot and swapping `except` for the last cell keeps
        // the draw uniform without building a filtered list.
        if reachable[i] == except {
            reachable[reachable.len() - 1]
        } else {
            reachable[i]
        }
    }
}

impl Env for KeyDoor {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let (start, key) = match (self.config.random_start, self.config.random_key) {
            (false, false) => (self.layout.start, self.layout.key),
            (true, false) => (self.draw_cell_except(self.layout.key), self.layout.key),
            (false, true) => (self.layout.start, self.draw_cell_except(self.layout.start)),
            (true, true) => {
                let start = self.layout.reachable[self.rng.random_range(0..self.layout.reachable.len())];
                (start, self.draw_cell_except(start))
            }
        };
        let cells = self.cells();
        self.move_agent(start);
        self.obs[cells + self.key] = 0.0;
        self.obs[cells + key] = 1.0;
        self.obs[2 * cells] = 0.0;
        self.key = key;
        self.has_key = false;
        self.steps = 0;
        self.episode_score = 0.0;
        self.done = false;
        Obs::Vector(&self.obs)
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        check_action(action, &self.spec);
        assert!(!self.done, "KeyDoor::step called after the episode ended; call reset first");
        let mut reward = self.config.step_penalty;
        let mut terminated = false;
        if action == Self::PICKUP {
            if !self.has_key && self.agent == self.key {
                let cells = self.cells();
                self.has_key = true;
                self.obs[cells + self.key] = 0.0;
                self.obs[2 * cells] = 1.0;
                reward = self.config.key_reward;
            }
        } else if let Some(next) = self.layout.neighbour(self.agent, action) {
            match self.layout.cells[next] {
                Cell::Floor => self.move_agent(next),
                Cell::Wall => {}
                Cell::Door if self.has_key => {
                    self.move_agent(next);
                    reward = self.config.door_reward;
                    terminated = true;
                }
                Cell::Door => {}
            }
        }
        self.steps += 1;
        let truncated = !terminated && self.steps >= self.config.max_steps;
        self.episode_score += f64::from(reward);
        self.done = terminated || truncated;
        Step {
            obs: Obs::Vector(&self.obs),
            reward,
            terminated,
            truncated,
            info: StepInfo::single_frame(reward, self.episode_score, self.done),
        }
    }

    /// The map of [`KeyDoor::render`], one square cell per character.
    fn render_rgb(&self) -> Option<RgbImage> {
        let (width, height) = (self.layout.width, self.layout.height);
        Some(RgbImage::from_cells(width, height, rgb::CELL_PIXELS, |x, y| match self.glyph(y * width + x) {
            '@' => rgb::AGENT,
            'K' => rgb::KEY,
            '#' => rgb::WALL,
            'D' => rgb::GOAL,
            _ => rgb::FLOOR,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: usize = KeyDoor::UP;
    const D: usize = KeyDoor::DOWN;
    const L: usize = KeyDoor::LEFT;
    const R: usize = KeyDoor::RIGHT;
    const P: usize = KeyDoor::PICKUP;

    /// The shortest solution of the default map, found by hand and checked by the BFS test in
    /// `tests/key_door.rs`.
    const OPTIMAL: [usize; 17] = [D, D, D, D, R, R, R, R, R, R, U, P, D, L, L, L, D];

    fn env() -> KeyDoor {
        KeyDoor::new(KeyDoorConfig::default())
    }

    fn map_error(map: &str) -> (usize, usize, String) {
        match KeyDoor::try_new(KeyDoorConfig { map: map.into(), ..Default::default() }).unwrap_err() {
            Error::InvalidMap { line, column, reason } => (line, column, reason),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn default_layout_parses_as_documented() {
        let env = env();
        assert_eq!(env.size(), (9, 9));
        assert_eq!(env.agent(), (1, 1));
        assert_eq!(env.key(), (7, 4));
        assert_eq!(env.door(), (4, 6));
        assert_eq!(env.spec().observation, ObsSpec::Vector { len: 163 });
        assert_eq!(env.spec().action_names, ["UP", "DOWN", "LEFT", "RIGHT", "PICKUP"]);
        assert_eq!(env.render(), KeyDoorConfig::DEFAULT_MAP.replace('A', "@"));
    }

    #[test]
    fn reset_observation_layout() {
        let mut env = env();
        let Obs::Vector(obs) = env.reset(Some(1)) else { panic!("vector obs") };
        let ones: Vec<usize> = (0..obs.len()).filter(|&i| obs[i] != 0.0).collect();
        assert_eq!(ones, [9 + 1, 81 + 4 * 9 + 7], "agent at (1,1), key at (7,4), no key held");
        assert!(obs.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn optimal_plan_returns_exactly_key_plus_door_reward_in_17_steps() {
        let mut env = env();
        env.reset(Some(0));
        let mut rewards = Vec::new();
        for (t, &a) in OPTIMAL.iter().enumerate() {
            let s = env.step(a);
            rewards.push(s.reward);
            assert_eq!(s.terminated, t == OPTIMAL.len() - 1, "step {t}");
            assert!(!s.truncated);
            assert_eq!((s.info.frames, s.info.raw_reward, s.info.lives), (1, s.reward, 0));
        }
        let mut expected = vec![0.0; 17];
        expected[11] = 0.1;
        expected[16] = 1.0;
        assert_eq!(rewards, expected);
        assert_eq!(env.agent(), env.door());
        assert_eq!(env.steps(), 17);
    }

    #[test]
    fn door_blocks_without_the_key() {
        let mut env = env();
        for a in [D, D, D, D, R, R, R] {
            env.step(a);
        }
        assert_eq!(env.agent(), (4, 5), "right above the door");
        let s = env.step(D);
        assert_eq!((s.reward, s.terminated, s.truncated), (0.0, false, false));
        assert_eq!(env.agent(), (4, 5));
    }

    #[test]
    fn pickup_away_from_the_key_and_twice_gives_nothing() {
        let mut env = env();
        assert_eq!(env.step(P).reward, 0.0);
        assert!(!env.has_key());
        for &a in &OPTIMAL[..11] {
            env.step(a);
        }
        let s = env.step(P);
        assert_eq!(s.reward, 0.1);
        let Obs::Vector(obs) = s.obs else { panic!() };
        assert_eq!(obs[162], 1.0);
        assert!(obs[81..162].iter().all(|&v| v == 0.0), "key plane clears once held");
        assert_eq!(env.step(P).reward, 0.0, "the key is picked up only once");
        assert!(env.render().chars().all(|c| c != 'K'));
    }

    #[test]
    fn walls_and_edges_block_moves() {
        let mut env = env();
        env.step(U);
        env.step(L);
        assert_eq!(env.agent(), (1, 1));
        // A map with no border: moves off the grid stay put.
        let mut open = KeyDoor::new(KeyDoorConfig { map: "AKD".into(), ..Default::default() });
        open.step(U);
        open.step(L);
        open.step(D);
        assert_eq!(open.agent(), (0, 0));
    }

    #[test]
    fn truncates_at_max_steps() {
        let mut env = KeyDoor::new(KeyDoorConfig { max_steps: 3, ..Default::default() });
        assert!(!env.step(U).done());
        assert!(!env.step(U).done());
        let s = env.step(U);
        assert!(s.truncated && !s.terminated);
    }

    #[test]
    fn random_positions_are_seeded_distinct_and_reachable() {
        let config = KeyDoorConfig { random_start: true, random_key: true, ..Default::default() };
        let mut env = KeyDoor::new(config);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200 {
            env.reset(Some(seed));
            let (agent, key) = (env.agent(), env.key());
            assert_ne!(agent, key);
            assert!(env.layout.reachable.contains(&(agent.1 * 9 + agent.0)));
            assert!(env.layout.reachable.contains(&(key.1 * 9 + key.0)));
            assert!(agent.1 < 6, "never behind the door");
            seen.insert((agent, key));
            env.reset(Some(seed));
            assert_eq!((env.agent(), env.key()), (agent, key), "same seed, same draw");
        }
        assert!(seen.len() > 150, "draws should vary: {} distinct of 200", seen.len());
    }

    #[test]
    fn draw_except_is_uniform_over_the_rest() {
        let mut env = KeyDoor::new(KeyDoorConfig { random_key: true, ..Default::default() });
        let n = env.layout.reachable.len();
        let mut counts = vec![0usize; 81];
        let draws = 20_000;
        for _ in 0..draws {
            counts[env.draw_cell_except(env.layout.start)] += 1;
        }
        assert_eq!(counts[env.layout.start], 0);
        let expected = draws as f64 / (n - 1) as f64;
        for &c in &env.layout.reachable {
            if c != env.layout.start {
                // Binomial sd is about sqrt(expected) ~ 26: 6 sd of slack.
                assert!(
                    (counts[c] as f64 - expected).abs() < 6.0 * expected.sqrt(),
                    "cell {c}: {}",
                    counts[c]
                );
            }
        }
    }

    #[test]
    fn map_errors_point_at_the_problem() {
        assert_eq!(map_error("").2, "the map is empty");
        let (line, col, reason) = map_error("\n#####\n#AKD\n");
        assert_eq!((line, col), (3, 1));
        assert!(reason.contains("4 cells wide"), "{reason}");
        let (line, col, reason) = map_error("AKDx");
        assert_eq!((line, col), (1, 4));
        assert!(reason.contains("unknown character 'x'"), "{reason}");
        assert!(map_error("AKDA").2.contains("a second start"));
        assert!(map_error("A.D").2.contains("no key"));
        let (line, col, reason) = map_error("A#K\n..D");
        assert_eq!((line, col), (1, 3));
        assert!(reason.contains("key cannot be reached"), "{reason}");
        let (line, col, reason) = map_error("AK#D");
        assert_eq!((line, col), (1, 4));
        assert!(reason.contains("door cannot be reached"), "{reason}");
        // Indented raw strings are fine.
        assert!(KeyDoor::try_new(KeyDoorConfig {
            map: "\n    #####\n    #AKD#\n    #####\n".into(),
            ..Default::default()
        })
        .is_ok());
    }

    #[test]
    fn the_picture_draws_the_text_map() {
        let mut env = env();
        env.reset(Some(0));
        for action in &OPTIMAL[..12] {
            env.step(*action); // to the key and picking it up: the key leaves the picture
        }
        let image = env.render_rgb().unwrap();
        let (width, height) = env.size();
        assert_eq!((image.width, image.height), (width * rgb::CELL_PIXELS, height * rgb::CELL_PIXELS));
        let text: Vec<char> = env.render().chars().filter(|&c| c != '\n').collect();
        for (cell, glyph) in text.into_iter().enumerate() {
            let (x, y) = ((cell % width) * rgb::CELL_PIXELS, (cell / width) * rgb::CELL_PIXELS);
            let expected = match glyph {
                '@' => rgb::AGENT,
                '#' => rgb::WALL,
                'D' => rgb::GOAL,
                '.' => rgb::FLOOR,
                other => panic!("the key was picked up, yet the map shows {other:?}"),
            };
            assert_eq!(image.pixel(x + 3, y + 5), expected, "cell {cell} ({glyph})");
        }
    }

    #[test]
    fn invalid_fields_are_named() {
        let field = |c: KeyDoorConfig| match c.validate().unwrap_err() {
            Error::InvalidConfig { field, .. } => field,
            e => panic!("unexpected {e}"),
        };
        assert_eq!(field(KeyDoorConfig { max_steps: 0, ..Default::default() }), "max_steps");
        assert_eq!(field(KeyDoorConfig { door_reward: f32::NAN, ..Default::default() }), "door_reward");
        assert_eq!(
            field(KeyDoorConfig { step_penalty: f32::NEG_INFINITY, ..Default::default() }),
            "step_penalty"
        );
    }
}
