//! Plays a fixed list of actions and saves what the agent would see, for comparing our
//! preprocessing with another implementation (gymnasium's `AtariPreprocessing`, ale-py).
//!
//! ```text
//! cargo run --release -p ale-env --example rollout -- \
//!     --game pong --seed 0 --sticky 0 --actions actions.txt --out out/
//! ```
//!
//! `actions.txt`: one integer a line, an index into the game's minimal action set (blank
//! lines are skipped). The env: frame skip 4, max-pool of the last two frames, 84x84 area
//! resize, no no-ops, no fire reset, raw rewards, life loss not terminal. Writes, for N
//! actions:
//! * `DIR/raw.npy`: uint8 `(N, 210, 160)` (a few games are taller), the grayscale screen after each step's last frame;
//! * `DIR/obs.npy`: uint8 `(N, 84, 84)`, the newest preprocessed frame after each step;
//! * `DIR/rewards.npy`: float32 `(N,)`, each step's raw reward.
//!
//! If the episode ends before the list does, the env resets (without a new seed) and says so
//! on stderr; the rows after that belong to the next episode. Prints frames/s at the end.
//!
//! With `--sticky 0` the emulator is deterministic, so gymnasium can replay the same list:
//! `AtariPreprocessing(gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0),
//! noop_max=0, frame_skip=4, screen_size=84)`, resetting on `terminated or truncated`, gives
//! the same `ale.getScreenGrayscale()` as `raw.npy`, the same rewards, and the same frames as
//! `obs.npy` on every non-terminal step (its terminal step returns a stale frame). Checked
//! byte for byte over 3000 steps of pong, breakout and space_invaders with ale-py 0.12.1,
//! gymnasium 1.4 and opencv-python 4.10.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ale_env::{AtariConfig, AtariEnv};
use anyhow::{bail, Context, Result};
use clap::Parser;
use rl_env::Env;

#[derive(Parser)]
#[command(about = "Play a list of actions and save raw screens, preprocessed frames and rewards as .npy")]
struct Args {
    /// ROM name, e.g. pong, breakout, space_invaders.
    #[arg(long)]
    game: String,
    /// Seed for ALE (its sticky actions) at the reset.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sticky-action probability (ALE's repeat_action_probability), in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    sticky: f32,
    /// File with one action a line: an index into the minimal action set.
    #[arg(long)]
    actions: PathBuf,
    /// Folder for raw.npy, obs.npy and rewards.npy (created if missing).
    #[arg(long)]
    out: PathBuf,
}

fn main() {
    if let Err(e) = try_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<()> {
    let args = Args::parse();
    let config = AtariConfig {
        game: args.game.clone(),
        frame_skip: 4,
        max_pool: true,
        noop_max: 0,
        fire_reset: false,
        terminal_on_life_loss: false,
        clip_rewards: false,
        sticky_action_prob: args.sticky,
        ..AtariConfig::default()
    };
    let mut env =
        AtariEnv::new(config.clone()).with_context(|| format!("creating the env for {}", args.game))?;
    let actions = read_actions(&args.actions, env.spec().num_actions())?;
    let names = &env.spec().action_names;
    eprintln!(
        "{}: {} actions ({}), {} steps, seed {}",
        args.game,
        names.len(),
        names.join(" "),
        actions.len(),
        args.seed
    );

    let n = actions.len();
    let screen = env.last_screen().len();
    let frame = env.newest_frame().len();
    let (mut raw, mut obs, mut rewards) =
        (Vec::with_capacity(n * screen), Vec::with_capacity(n * frame), Vec::with_capacity(n));
    env.reset(Some(args.seed));
    let mut frames = 0u64;
    let start = Instant::now();
    for (i, &a) in actions.iter().enumerate() {
        let step = env.step(a);
        let (done, score, reward) = (step.done(), step.info.episode_score, step.reward);
        frames += u64::from(step.info.frames);
        rewards.push(reward);
        raw.extend_from_slice(env.last_screen());
        obs.extend_from_slice(env.newest_frame());
        if done {
            eprintln!("episode ended at step {} of {n}, score {score}; resetting", i + 1);
            env.reset(None);
        }
    }
    let secs = start.elapsed().as_secs_f64();

    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let side = config.screen_size as u64;
    let (height, width) = (env.ale().screen_height() as u64, env.ale().screen_width() as u64);
    write_npy(&args.out.join("raw.npy"), &[n as u64, height, width], &raw)?;
    write_npy(&args.out.join("obs.npy"), &[n as u64, side, side], &obs)?;
    write_npy(&args.out.join("rewards.npy"), &[n as u64], &rewards)?;
    eprintln!("wrote {}/{{raw,obs,rewards}}.npy", args.out.display());
    println!("steps={n} frames={frames} seconds={secs:.3} frames_per_s={:.0}", frames as f64 / secs);
    Ok(())
}

/// Parses one action index a line; a bad line is an error naming its number and content.
fn read_actions(path: &Path, num_actions: usize) -> Result<Vec<usize>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("reading actions from {}", path.display()))?;
    let mut actions = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let a: usize = line.parse().with_context(|| {
            format!(
                "{} line {}: `{line}` is not an action index (a non-negative integer)",
                path.display(),
                i + 1
            )
        })?;
        if a >= num_actions {
            bail!(
                "{} line {}: action {a} is out of range; this game's minimal action set has {num_actions} actions (0..{num_actions})",
                path.display(),
                i + 1
            );
        }
        actions.push(a);
    }
    if actions.is_empty() {
        bail!("{} holds no actions", path.display());
    }
    Ok(actions)
}

fn write_npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) -> Result<()> {
    use npyz::WriterBuilder;
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .with_context(|| format!("writing {}", path.display()))?;
    writer.extend(data.iter().copied()).with_context(|| format!("writing {}", path.display()))?;
    writer.finish().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
