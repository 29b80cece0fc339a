//! `AtariEnv` on real ROMs: determinism, frame counting, life loss, truncation, reward
//! clipping, the vector env and config errors. Each test plays at most a few thousand
//! agent steps, so the whole file runs in seconds in an optimised build.

use ale_env::{Ale, AtariConfig, AtariEnv, Error};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rl_env::{Env, Obs};

fn config(game: &str) -> AtariConfig {
    AtariConfig { game: game.into(), ..AtariConfig::default() }
}

fn pixels(obs: Obs<'_>) -> Vec<u8> {
    match obs {
        Obs::Pixels(p) => p.to_vec(),
        Obs::Vector(_) => panic!("AtariEnv returned a vector observation"),
    }
}

/// Plays `steps` uniformly random actions (from `action_seed`), resetting with `None` when an
/// episode ends; returns every observation and reward.
fn rollout(env: &mut AtariEnv, seed: u64, action_seed: u64, steps: usize) -> (Vec<Vec<u8>>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(action_seed);
    let n = env.spec().num_actions();
    let mut obs = vec![pixels(env.reset(Some(seed)))];
    let mut rewards = Vec::new();
    for _ in 0..steps {
        let step = env.step(rng.random_range(0..n));
        let done = step.done();
        rewards.push(step.reward);
        obs.push(pixels(step.obs));
        if done {
            obs.push(pixels(env.reset(None)));
        }
    }
    (obs, rewards)
}

#[test]
fn same_seed_repeats_exactly_and_another_seed_differs() {
    let c = AtariConfig { noop_max: 30, ..config("breakout") };
    let mut env = AtariEnv::new(c.clone()).unwrap();
    let (obs_a, rew_a) = rollout(&mut env, 5, 1, 1000);
    // The same env reseeded, and a fresh one: both repeat the run.
    let (obs_b, rew_b) = rollout(&mut env, 5, 1, 1000);
    let (obs_c, rew_c) = rollout(&mut AtariEnv::new(c).unwrap(), 5, 1, 1000);
    assert!(obs_a == obs_b && rew_a == rew_b, "reseeding the same env did not repeat the run");
    assert!(obs_a == obs_c && rew_a == rew_c, "a fresh env with the same seed did not repeat the run");
    assert!(rew_a.iter().any(|&r| r != 0.0), "the run scored nothing; the test shows too little");

    // With sticky actions the emulator's RNG matters: the same actions, another seed.
    let (obs_d, _) = rollout(&mut env, 6, 1, 1000);
    assert_ne!(obs_a, obs_d, "seed 6 played exactly like seed 5 despite sticky actions");
}

#[test]
fn a_new_env_resets_like_seed_zero() {
    let c = AtariConfig { noop_max: 30, ..config("pong") };
    let mut fresh = AtariEnv::new(c.clone()).unwrap();
    let mut first = vec![pixels(fresh.reset(None))];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let actions: Vec<usize> = (0..200).map(|_| rng.random_range(0..6)).collect();
    first.extend(actions.iter().map(|&a| pixels(fresh.step(a).obs)));
    let mut seeded = AtariEnv::new(c).unwrap();
    let mut second = vec![pixels(seeded.reset(Some(0)))];
    second.extend(actions.iter().map(|&a| pixels(seeded.step(a).obs)));
    assert!(first == second, "reset(None) on a new env differs from reset(Some(0))");
}

#[test]
fn frames_count_what_the_emulator_ran_and_screens_are_its_own() {
    let c = AtariConfig { sticky_action_prob: 0.0, ..config("breakout") };
    let mut env = AtariEnv::new(c).unwrap();
    env.reset(Some(0));
    let start = env.ale().frame_number();
    let mut frames = 0i64;
    let mut screen = vec![0u8; 210 * 160];
    for i in 0..300 {
        let step = env.step(i % 4);
        let (done, f) = (step.done(), step.info.frames);
        let last_channel = pixels(step.obs)[3 * 84 * 84..].to_vec();
        assert!((1..=4).contains(&f), "step {i} ran {f} frames");
        frames += i64::from(f);
        assert_eq!(
            last_channel,
            env.newest_frame(),
            "the observation's last channel is not the newest frame"
        );
        env.ale().screen_grayscale(&mut screen);
        assert_eq!(env.last_screen(), &screen[..], "last_screen is not ALE's current screen");
        if done {
            break;
        }
    }
    assert_eq!(
        frames,
        i64::from(env.ale().frame_number() - start),
        "info.frames disagrees with ALE's frame counter"
    );
}

/// Brute-force area average of a 210x160 screen into 84x84, in f64: cell `(dy, dx)` covers
/// `[dy*2.5, (dy+1)*2.5) x [dx*160/84, (dx+1)*160/84)`.
fn area_average(src: &[u8]) -> Vec<f64> {
    let overlap = |a0: f64, a1: f64, b: f64| (a1.min(b + 1.0) - a0.max(b)).max(0.0);
    let mut out = vec![0.0; 84 * 84];
    for dy in 0..84 {
        let (y0, y1) = (dy as f64 * 2.5, (dy + 1) as f64 * 2.5);
        for dx in 0..84 {
            let (x0, x1) = ((dx * 160) as f64 / 84.0, ((dx + 1) * 160) as f64 / 84.0);
            let mut sum = 0.0;
            for sy in y0.floor() as usize..(y1.ceil() as usize).min(210) {
                for sx in x0.floor() as usize..(x1.ceil() as usize).min(160) {
                    sum +=
                        overlap(y0, y1, sy as f64) * overlap(x0, x1, sx as f64) * src[sy * 160 + sx] as f64;
                }
            }
            out[dy * 84 + dx] = sum / ((y1 - y0) * (x1 - x0));
        }
    }
    out
}

#[test]
fn observation_is_the_area_average_of_the_max_of_the_last_two_frames() {
    // Without sticky actions the emulator is deterministic, so a bare ALE playing the same
    // actions frame by frame shows the screens the env should have pooled.
    let c = AtariConfig { sticky_action_prob: 0.0, ..config("space_invaders") };
    let mut env = AtariEnv::new(c.clone()).unwrap();
    let mut ale = Ale::new().unwrap();
    ale.set_float("repeat_action_probability", 0.0).unwrap();
    ale.load_rom(&ale_env::rom_path("space_invaders").unwrap()).unwrap();
    ale.reset_game();
    env.reset(Some(3));
    let actions = env.action_set().to_vec();
    let (mut before, mut last) = (vec![0u8; 210 * 160], vec![0u8; 210 * 160]);
    let mut pooled_differs = 0;
    for i in 0..200 {
        let a = (i * 5 + i / 7) % actions.len();
        for f in 0..4 {
            ale.act(actions[a], 1.0);
            if f == 2 {
                ale.screen_grayscale(&mut before);
            }
        }
        ale.screen_grayscale(&mut last);
        let step = env.step(a);
        assert!(!step.done());
        assert_eq!(env.last_screen(), &last[..], "step {i}: raw screens diverged");
        let pooled: Vec<u8> = before.iter().zip(&last).map(|(&x, &y)| x.max(y)).collect();
        pooled_differs += usize::from(pooled != last);
        let want = area_average(&pooled);
        for (j, (&got, &w)) in env.newest_frame().iter().zip(&want).enumerate() {
            // Within float noise of a half, either rounding is OpenCV's.
            let ok = if (w - w.floor() - 0.5).abs() < 1e-3 {
                got as f64 == w.floor() || got as f64 == w.ceil()
            } else {
                got as f64 == w.round()
            };
            assert!(ok, "step {i}, pixel {j}: got {got}, area average of the pooled frames {w}");
        }
    }
    assert!(
        pooled_differs > 10,
        "max-pooling changed only {pooled_differs} frames: the test shows too little"
    );
}

#[test]
fn life_loss_ends_the_episode_and_reset_continues_the_game() {
    let c = AtariConfig {
        terminal_on_life_loss: true,
        fire_reset: true,
        sticky_action_prob: 0.0,
        ..config("breakout")
    };
    let mut env = AtariEnv::new(c).unwrap();
    env.reset(Some(1));
    let full_lives = env.ale().lives();
    assert!(full_lives > 1, "breakout starts with {full_lives} lives");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut steps = 0;
    let (terminated, truncated, info) = loop {
        let step = env.step(rng.random_range(0..4));
        steps += 1;
        assert!(steps < 5000, "no life lost in 5000 steps");
        if step.done() {
            break (step.terminated, step.truncated, step.info);
        }
    };
    assert!(terminated && info.life_lost && !truncated, "{info:?}");
    assert_eq!(info.lives, full_lives - 1);
    let score = info.episode_score;
    assert!(!env.ale().game_over(false), "one life lost should not end breakout");

    env.reset(None);
    assert_eq!(env.ale().lives(), full_lives - 1, "reset(None) after a life loss must not restart the game");
    assert!(env.reset_frames() > 0, "the continuation should play a no-op and the fire steps");
    let next = env.step(0);
    assert!(next.info.episode_score >= score, "the episode score restarted after a life loss");

    // A seeded reset starts a new game whatever happened before.
    env.reset(Some(1));
    assert_eq!(env.ale().lives(), full_lives);

    // Without the flag, losing a life is just information.
    let c = AtariConfig {
        terminal_on_life_loss: false,
        fire_reset: true,
        sticky_action_prob: 0.0,
        ..config("breakout")
    };
    let mut env = AtariEnv::new(c).unwrap();
    env.reset(Some(1));
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let lost = (0..5000)
        .map(|_| {
            let s = env.step(rng.random_range(0..4));
            (s.info.life_lost, s.terminated)
        })
        .find(|&(life_lost, terminated)| life_lost || terminated);
    assert_eq!(lost, Some((true, false)), "(life_lost, terminated) of the first step that lost a life");
}

#[test]
fn episodes_truncate_at_the_frame_cap() {
    for (cap, steps, last_frames) in [(100, 25, 4), (102, 26, 2)] {
        let c = AtariConfig { max_episode_frames: cap, ..config("pong") };
        let mut env = AtariEnv::new(c).unwrap();
        env.reset(Some(0));
        let mut total = 0;
        for i in 1..=steps {
            let step = env.step(0);
            total += step.info.frames;
            assert!(!step.terminated);
            assert_eq!(step.truncated, i == steps, "cap {cap}: step {i} truncated={}", step.truncated);
            if i == steps {
                assert_eq!(step.info.frames, last_frames);
            }
        }
        assert_eq!(total, cap);
        // A truncated episode restarts from scratch.
        env.reset(None);
        assert!(!env.step(0).truncated);
    }
}

#[test]
fn clipping_changes_the_reward_but_not_raw_reward_or_score() {
    let c = AtariConfig { clip_rewards: true, ..config("space_invaders") };
    let mut env = AtariEnv::new(c).unwrap();
    env.reset(Some(0));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut big, mut score) = (0, 0.0);
    for _ in 0..2000 {
        let step = env.step(rng.random_range(0..env.spec().num_actions()));
        assert_eq!(step.reward, step.info.raw_reward.clamp(-1.0, 1.0));
        score += f64::from(step.info.raw_reward);
        assert_eq!(step.info.episode_score, score);
        big += usize::from(step.info.raw_reward > 1.0);
        if step.done() {
            break;
        }
    }
    assert!(big > 0, "no reward above 1 in space invaders; clipping went untested");
}

#[test]
fn vec_env_matches_single_envs_stepped_in_turn() {
    // Life-loss continuations and a short cap make both kinds of autoreset happen.
    let c = AtariConfig {
        terminal_on_life_loss: true,
        fire_reset: true,
        noop_max: 30,
        max_episode_frames: 800,
        ..config("breakout")
    };
    let mut venv = AtariEnv::vec(c.clone(), 2).unwrap();
    let mut singles = [AtariEnv::new(c.clone()).unwrap(), AtariEnv::new(c).unwrap()];
    let first = pixels(venv.reset(Some(7)));
    let len = 4 * 84 * 84;
    for (i, env) in singles.iter_mut().enumerate() {
        assert_eq!(
            pixels(env.reset(Some(7 + i as u64))),
            first[i * len..(i + 1) * len],
            "copy {i} after reset"
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut dones = 0;
    for t in 0..600 {
        let actions = [rng.random_range(0..4), rng.random_range(0..4)];
        venv.step(&actions);
        let all = pixels(venv.obs());
        for (i, env) in singles.iter_mut().enumerate() {
            let step = env.step(actions[i]);
            let r = venv.results()[i];
            assert_eq!(
                (step.reward, step.terminated, step.truncated, step.info),
                (r.reward, r.terminated, r.truncated, r.info),
                "copy {i} at step {t}"
            );
            if step.done() {
                dones += 1;
                assert_eq!(pixels(step.obs), pixels(venv.final_obs(i)), "copy {i} final obs at step {t}");
                assert_eq!(
                    pixels(env.reset(None)),
                    all[i * len..(i + 1) * len],
                    "copy {i} autoreset at step {t}"
                );
            } else {
                assert_eq!(pixels(step.obs), all[i * len..(i + 1) * len], "copy {i} at step {t}");
            }
        }
    }
    assert!(dones >= 2, "only {dones} episodes ended; autoreset went untested");
}

#[test]
fn spec_and_actions() {
    let env = AtariEnv::new(config("pong")).unwrap();
    let spec = rl_env::Env::spec(&env);
    assert_eq!(spec.observation, rl_env::ObsSpec::Pixels { channels: 4, height: 84, width: 84 });
    assert_eq!(spec.action_names, ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]);
    let full =
        AtariEnv::new(AtariConfig { full_action_space: true, frame_stack: 2, ..config("pong") }).unwrap();
    assert_eq!(rl_env::Env::spec(&full).num_actions(), 18);
    assert_eq!(rl_env::Env::spec(&full).observation.len(), 2 * 84 * 84);
}

#[test]
fn no_op_starts_vary_with_the_seed_and_repeat_with_it() {
    let c = AtariConfig { noop_max: 30, sticky_action_prob: 0.0, ..config("pong") };
    let mut env = AtariEnv::new(c).unwrap();
    let counts: Vec<u32> = (0..10u64)
        .map(|s| {
            env.reset(Some(s));
            env.reset_frames()
        })
        .collect();
    assert!(counts.iter().all(|n| (1..=30).contains(n)), "{counts:?}");
    assert!(counts.iter().any(|&n| n != counts[0]), "every seed drew {} no-ops", counts[0]);
    env.reset(Some(4));
    assert_eq!(env.reset_frames(), counts[4]);
}

#[test]
fn bad_configs_are_refused_with_the_field_named() {
    let field = |c: AtariConfig| match AtariEnv::new(c) {
        Err(Error::InvalidConfig { field, .. }) => field,
        Err(e) => panic!("expected InvalidConfig, got {e}"),
        Ok(_) => panic!("expected InvalidConfig, got an env"),
    };
    assert_eq!(field(AtariConfig { frame_skip: 0, ..config("pong") }), "frame_skip");
    assert_eq!(field(AtariConfig { sticky_action_prob: 2.0, ..config("pong") }), "sticky_action_prob");
    assert_eq!(field(AtariConfig { frame_stack: 0, ..config("pong") }), "frame_stack");
    assert_eq!(field(AtariConfig { screen_size: 200, ..config("pong") }), "screen_size");
    assert!(matches!(AtariEnv::vec(config("pong"), 0), Err(Error::InvalidConfig { field: "n", .. })));
    assert!(matches!(AtariEnv::new(config("pongg")), Err(Error::UnknownGame { .. })));
    assert_eq!(field(AtariConfig { mode: Some(12345), ..config("pong") }), "mode");
    assert_eq!(field(AtariConfig { difficulty: Some(-3), ..config("pong") }), "difficulty");
    // A mode the ROM offers is accepted and survives the reload of a seeded reset.
    let mut env =
        AtariEnv::new(AtariConfig { mode: Some(1), difficulty: Some(1), ..config("pong") }).unwrap();
    env.reset(Some(2));
    env.step(0);
}

/// Some ROMs render more than 210 rows (air_raid 250, pooyan 220); preprocessing must size its
/// buffers from the emulator and still produce 84x84 frames.
#[test]
fn taller_screens_are_preprocessed_too() {
    for (game, height) in [("air_raid", 250), ("pooyan", 220)] {
        let mut env = AtariEnv::new(config(game)).unwrap();
        assert_eq!(env.ale().screen_height(), height, "{game}");
        let (obs, _) = rollout(&mut env, 0, 0, 50);
        assert!(obs.iter().all(|o| o.len() == 4 * 84 * 84), "{game}");
        assert_eq!(env.last_screen().len(), height * 160, "{game}");
        assert!(obs.last().unwrap().iter().any(|&p| p > 0), "{game} rendered a black frame");
    }
}

#[test]
fn the_colour_picture_is_the_emulators_last_screen() {
    let mut env = AtariEnv::new(config("breakout")).unwrap();
    env.reset(Some(0));
    env.step(1);
    let image = env.render_rgb().expect("an Atari game has a colour screen");
    assert_eq!((image.width, image.height), (160, 210));
    let mut screen = vec![0u8; 210 * 160 * 3];
    env.ale().screen_rgb(&mut screen);
    assert!(image.pixels == screen, "render_rgb is not ALE's current RGB screen");
    assert!(
        image.pixels.chunks_exact(3).any(|p| p[0] != p[1] || p[1] != p[2]),
        "Breakout's bricks are coloured, yet the picture is gray"
    );
}
