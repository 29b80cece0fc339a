//! Videos of evaluation games: [`ScreenTap`] keeps every screen its env shows, a
//! [`Recording`] streams one env copy's games into animated GIFs (`episode_000.gif`, ...).
//!
//! The tap wraps a base env under the macro executor, so it sees every primitive step of a
//! macro: a game of `T` primitive steps gives `1 + T` frames (the screen after the reset,
//! then after each step). The evaluation drains the tap after each decision, so what is held
//! in memory is one decision's screens, however long the game.
//!
//! ```text
//! base env -> ScreenTap -> MacroEnv -> MacroVecEnv        (one copy of the evaluation)
//!                 |  screens and game ends, through a shared Reel
//!                 v
//!             Recording::drain after each step -> GifWriter -> videos/episode_007.gif
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rl_env::{Env, EnvSpec, Obs, RgbImage, Step};

/// Hundredths of a second per GIF frame: 15 frames a second, an Atari game's real speed at
/// the usual frame skip of 4 (60 Hz / 4); the toy envs play at the same pace.
const FRAME_DELAY: u16 = 7;

/// NeuQuant's speed (1-30) for a screen of more than 256 colours; Atari screens have at
/// most 128 and get an exact palette, whatever this is.
const QUANTIZE_SPEED: i32 = 10;

/// What a tap saw, in order.
enum Shot {
    Screen(RgbImage),
    /// The game whose screens came before ended (its env was reset).
    GameEnd,
}

/// The shots a [`ScreenTap`] hands to its [`Recording`], across rayon's worker threads.
#[derive(Clone, Default)]
struct Reel(Arc<Mutex<ReelState>>);

#[derive(Default)]
struct ReelState {
    /// Off once the recording has every game it wants: the env then plays on unfilmed.
    off: bool,
    shots: Vec<Shot>,
}

impl Reel {
    fn state(&self) -> std::sync::MutexGuard<'_, ReelState> {
        // A panic while holding the lock happens only inside a panicking env step, which
        // takes the evaluation down anyway.
        self.0.lock().expect("a video reel's lock was poisoned by a panicking env")
    }

    fn push(&self, shot: impl FnOnce() -> Shot) {
        let mut state = self.state();
        if !state.off {
            state.shots.push(shot());
        }
    }
}

/// An env wrapper that puts the env's screen on a [`Reel`] before each step and at each
/// reset (the last screen of the game that ends), so a game's screens are all filmed
/// without copying its observations.
pub(crate) struct ScreenTap {
    env: Box<dyn Env>,
    reel: Reel,
    /// A game has been started, so the next reset ends it.
    playing: bool,
}

impl ScreenTap {
    fn screen(&self) -> Shot {
        Shot::Screen(self.env.render_rgb().expect("an env that showed a screen stopped showing one"))
    }
}

impl Env for ScreenTap {
    fn spec(&self) -> &EnvSpec {
        self.env.spec()
    }

    fn reset(&mut self, seed: Option<u64>) -> Obs<'_> {
        if std::mem::replace(&mut self.playing, true) {
            self.reel.push(|| self.screen());
            self.reel.push(|| Shot::GameEnd);
        }
        self.env.reset(seed)
    }

    fn step(&mut self, action: usize) -> Step<'_> {
        self.reel.push(|| self.screen());
        self.env.step(action)
    }

    fn render_rgb(&self) -> Option<RgbImage> {
        self.env.render_rgb()
    }
}

/// One env copy's games `first, first + 1, ...` of the evaluation, of which the first
/// `want` are written to `dir` as they are played.
pub(crate) struct Recording {
    reel: Reel,
    dir: PathBuf,
    first: usize,
    want: usize,
    /// Games of this copy ended so far.
    ended: usize,
    gif: Option<GifWriter>,
    written: Vec<PathBuf>,
}

impl Recording {
    /// Wraps `env` in a tap for its first `want` games (`want > 0`), numbered from `first`.
    /// Fails, naming `what` the env is, when the env has no colour screen.
    pub(crate) fn start(
        env: Box<dyn Env>,
        what: &str,
        dir: &Path,
        first: usize,
        want: usize,
    ) -> Result<(Box<dyn Env>, Recording)> {
        anyhow::ensure!(
            env.render_rgb().is_some(),
            "the {what} environment has no colour screen to film: videos need an env whose \
             Env::render_rgb shows one (Atari games and every rl-env toy do); leave out --video"
        );
        let reel = Reel::default();
        let tap = ScreenTap { env, reel: reel.clone(), playing: false };
        let recording =
            Recording { reel, dir: dir.to_path_buf(), first, want, ended: 0, gif: None, written: Vec::new() };
        Ok((Box::new(tap), recording))
    }

    /// Writes what the tap filmed since the last call; a game's GIF is finished at its end.
    pub(crate) fn drain(&mut self) -> Result<()> {
        let shots = std::mem::take(&mut self.reel.state().shots);
        for shot in shots {
            match shot {
                Shot::Screen(screen) => self.film(&screen)?,
                Shot::GameEnd => self.end_game()?,
            }
        }
        Ok(())
    }

    /// The GIFs written so far.
    pub(crate) fn written(&self) -> &[PathBuf] {
        &self.written
    }

    fn film(&mut self, screen: &RgbImage) -> Result<()> {
        if self.ended >= self.want {
            return Ok(()); // filmed before the reel heard that the wanted games were over
        }
        let gif = match &mut self.gif {
            Some(gif) => gif,
            None => {
                let path = self.dir.join(episode_file(self.first + self.ended));
                self.gif.insert(GifWriter::create(&path, screen.width, screen.height)?)
            }
        };
        gif.push(screen)
    }

    fn end_game(&mut self) -> Result<()> {
        if let Some(gif) = self.gif.take() {
            self.written.push(gif.finish()?);
        }
        self.ended += 1;
        if self.ended >= self.want {
            self.reel.state().off = true;
        }
        Ok(())
    }
}

/// The file of the evaluation's game `index` (0-based, in the order of `eval.json`'s scores).
pub(crate) fn episode_file(index: usize) -> String {
    format!("episode_{index:03}.gif")
}

/// One animated GIF, a frame at a time, looping forever.
struct GifWriter {
    encoder: gif::Encoder<BufWriter<File>>,
    path: PathBuf,
    width: u16,
    height: u16,
}

impl GifWriter {
    fn create(path: &Path, width: usize, height: usize) -> Result<Self> {
        let size = |n: usize| u16::try_from(n).ok().filter(|&n| n > 0);
        let (Some(w), Some(h)) = (size(width), size(height)) else {
            anyhow::bail!("a {width}x{height} screen cannot be a GIF frame: GIF sides are 1 to 65535 pixels");
        };
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = gif::Encoder::new(BufWriter::new(file), w, h, &[])
            .with_context(|| format!("starting the GIF {}", path.display()))?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        Ok(Self { encoder, path: path.to_path_buf(), width: w, height: h })
    }

    fn push(&mut self, screen: &RgbImage) -> Result<()> {
        anyhow::ensure!(
            (screen.width, screen.height) == (usize::from(self.width), usize::from(self.height)),
            "{}: a {}x{} screen in a {}x{} video; an env's screen must keep its size",
            self.path.display(),
            screen.width,
            screen.height,
            self.width,
            self.height
        );
        let mut frame = gif::Frame::from_rgb_speed(self.width, self.height, &screen.pixels, QUANTIZE_SPEED);
        frame.delay = FRAME_DELAY;
        self.encoder.write_frame(&frame).with_context(|| format!("writing {}", self.path.display()))
    }

    /// Writes the trailer; returns the file's path.
    fn finish(self) -> Result<PathBuf> {
        let path = self.path;
        let mut file = self.encoder.into_inner().with_context(|| format!("finishing {}", path.display()))?;
        file.flush().with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The frames of a GIF video as RGB bytes (row-major, 3 a pixel), to check or re-encode
/// what an evaluation filmed.
pub fn read_gif(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder = options.read_info(file).with_context(|| format!("reading {}", path.display()))?;
    let mut frames = Vec::new();
    while let Some(frame) =
        decoder.read_next_frame().with_context(|| format!("decoding {}", path.display()))?
    {
        frames.push(frame.buffer.chunks_exact(4).flat_map(|p| &p[..3]).copied().collect());
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use rl_env::{Corridor, CorridorConfig, StepInfo};

    use super::*;

    /// A one-cell env without a picture of itself.
    struct Blind(EnvSpec);

    impl Env for Blind {
        fn spec(&self) -> &EnvSpec {
            &self.0
        }
        fn reset(&mut self, _seed: Option<u64>) -> Obs<'_> {
            Obs::Vector(&[0.0])
        }
        fn step(&mut self, _action: usize) -> Step<'_> {
            let info = StepInfo { frames: 1, ..Default::default() };
            Step { obs: Obs::Vector(&[0.0]), reward: 0.0, terminated: true, truncated: false, info }
        }
    }

    #[test]
    fn an_env_without_a_screen_is_refused_by_name() {
        let spec =
            EnvSpec { observation: rl_env::ObsSpec::Vector { len: 1 }, action_names: vec!["NOOP".into()] };
        let err = Recording::start(Box::new(Blind(spec)), "blind", Path::new("."), 0, 1).err().unwrap();
        assert!(err.to_string().contains("the blind environment has no colour screen"), "{err}");
    }

    #[test]
    fn a_game_of_t_steps_is_its_t_plus_one_screens_and_later_games_are_not_filmed() {
        let dir = std::env::temp_dir().join(format!("masp-video-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let corridor = Corridor::new(CorridorConfig { length: 4, ..Default::default() });
        // What the game looks like: the reset screen, then one per step to the goal.
        let mut twin = corridor.clone();
        twin.reset(None);
        let mut expected = vec![twin.render_rgb().unwrap().pixels];
        for _ in 0..3 {
            twin.step(Corridor::RIGHT);
            expected.push(twin.render_rgb().unwrap().pixels);
        }

        let (mut env, mut recording) = Recording::start(Box::new(corridor), "corridor", &dir, 5, 1).unwrap();
        for _game in 0..2 {
            env.reset(None);
            while !env.step(Corridor::RIGHT).done() {}
            recording.drain().unwrap();
        }
        env.reset(None);
        recording.drain().unwrap();
        assert_eq!(recording.written(), [dir.join("episode_005.gif")]);
        assert!(
            read_gif(&dir.join("episode_005.gif")).unwrap() == expected,
            "the GIF is not the game's screens"
        );
        assert!(!dir.join("episode_006.gif").exists(), "only one game was wanted");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
