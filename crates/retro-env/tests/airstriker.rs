//! Airstriker (the free homebrew game in stable-retro's sdist, installed by `cargo xtask
//! setup`), played through the real core. The core's globals allow one emulator per process,
//! so every test holds `CORE` while its env lives.

use std::sync::{Mutex, MutexGuard};

use retro_env::{Error, RetroConfig, RetroEnv};
use rl_env::{Env, Obs, ObsSpec};

static CORE: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    CORE.lock().unwrap_or_else(|e| e.into_inner())
}

fn airstriker() -> RetroEnv {
    RetroEnv::new(RetroConfig::airstriker())
        .expect("run `cargo xtask setup` to fetch stable-retro and Airstriker")
}

/// A fixed pseudo-random action list (64-bit LCG, Knuth's MMIX constants).
fn actions(n: usize, num_actions: usize, seed: u64) -> Vec<usize> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as usize) % num_actions
        })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

fn pixels(obs: Obs<'_>) -> &[u8] {
    match obs {
        Obs::Pixels(p) => p,
        Obs::Vector(_) => panic!("RetroEnv observes pixels"),
    }
}

/// Per step: the observation's hash, the reward and done; stops at the episode's end.
fn play(env: &mut RetroEnv, actions: &[usize]) -> Vec<(u64, f32, bool)> {
    let mut out = Vec::new();
    for &a in actions {
        let step = env.step(a);
        out.push((fnv1a(pixels(step.obs)), step.reward, step.done()));
        if step.done() {
            break;
        }
    }
    out
}

#[test]
fn loads_and_steps() {
    let _g = lock();
    let mut env = airstriker();
    assert_eq!(env.spec().observation, ObsSpec::Pixels { channels: 4, height: 84, width: 84 });
    // genesis.json's groups: 3 vertical x 3 horizontal x 14 button choices.
    assert_eq!(env.spec().num_actions(), 126);
    assert_eq!(env.spec().action_names[0], "NOOP");
    assert!(env.spec().action_names.contains(&"DOWN_RIGHT_A".to_string()));
    let first = pixels(env.reset(None)).to_vec();
    assert_eq!(first.len(), 4 * 84 * 84);
    let step = env.step(0);
    assert_eq!(step.info.frames, 4);
    // The screen is not blank, and after 50 steps of play it has changed.
    assert!(first.iter().any(|&p| p != first[0]));
    let trace = play(&mut env, &actions(50, 126, 3));
    assert_ne!(trace.last().unwrap().0, fnv1a(&first));
    let frame = env.render_rgb().unwrap();
    assert_eq!((frame.width, frame.height), (320, 224));
}

#[test]
fn same_state_and_actions_give_same_frames_and_rewards() {
    let _g = lock();
    let mut env = airstriker();
    let acts = actions(300, 126, 7);
    env.reset(Some(1));
    let a = play(&mut env, &acts);
    env.reset(Some(2));
    let b = play(&mut env, &acts);
    assert_eq!(a, b);
    assert!(a.iter().any(|s| s.1 > 0.0), "300 random steps should score at least once");
    // A different action list plays differently.
    env.reset(None);
    assert_ne!(play(&mut env, &actions(300, 126, 8)), a);
}

#[test]
fn save_and_restore_continue_identically() {
    let _g = lock();
    let mut env = airstriker();
    env.reset(None);
    play(&mut env, &actions(60, 126, 11));
    let snapshot = env.save().unwrap();
    let rest = actions(120, 126, 12);
    let first = play(&mut env, &rest);
    let score = env.variable("score").unwrap();
    // Wander off elsewhere, then come back.
    play(&mut env, &actions(40, 126, 13));
    env.restore(&snapshot).unwrap();
    assert_eq!(play(&mut env, &rest), first);
    assert_eq!(env.variable("score").unwrap(), score);
}

#[test]
fn ram_variables_decode_to_the_start_values() {
    let _g = lock();
    let mut env = airstriker();
    env.reset(None);
    assert_eq!(env.variable("lives").unwrap(), 3);
    assert_eq!(env.variable("score").unwrap(), 0);
    assert_eq!(env.core().ram().len(), 0x10000);
    let err = env.variable("health").unwrap_err().to_string();
    assert!(err.contains("lives") && err.contains("score"), "{err}");
}

#[test]
fn reward_follows_the_score_and_the_episode_ends_at_game_over() {
    let _g = lock();
    let mut env = airstriker();
    env.reset(None);
    // Random play loses all three lives in about 400 steps; the budget is ample.
    let mut total = 0.0f64;
    let mut lives_seen = vec![3];
    let mut last = None;
    for &a in &actions(5000, 126, 1) {
        let step = env.step(a);
        total += f64::from(step.reward);
        if step.info.life_lost {
            lives_seen.push(step.info.lives);
        }
        if step.done() {
            last = Some((step.terminated, step.info));
            break;
        }
    }
    let (terminated, info) = last.expect("the game should be over within 5000 steps");
    assert!(terminated && info.game_over);
    assert_eq!(lives_seen, [3, 2, 1, 0]);
    let score = env.variable("score").unwrap();
    assert!(score > 0);
    assert_eq!(total, score as f64);
    assert_eq!(info.episode_score, score as f64);
    assert_eq!(env.variable("gameover").unwrap(), 1);
}

#[test]
fn a_second_core_in_one_process_is_refused() {
    let _g = lock();
    let env = airstriker();
    let err = RetroEnv::new(RetroConfig::airstriker()).unwrap_err();
    assert!(matches!(err, Error::CoreInUse), "{err}");
    assert!(err.to_string().contains("process"), "{err}");
    drop(env);
    // Once dropped, a new one loads.
    airstriker();
}

#[test]
fn max_pool_crop_and_frame_skip_one_still_step() {
    let _g = lock();
    let config = RetroConfig { frame_skip: 1, frame_stack: 2, screen_size: 42, ..RetroConfig::airstriker() };
    let mut env = RetroEnv::new(config).unwrap();
    assert_eq!(pixels(env.reset(None)).len(), 2 * 42 * 42);
    let step = env.step(5);
    assert_eq!(step.info.frames, 1);
}

/// stable-retro's own env (its 1.0.1 wheel) on a recorded action list gives these raw
/// screens (`tests/data/airstriker_stable_retro.txt`, written by scripts/retro_reference.py):
/// ours must be equal, frame for frame, from the same state with the same actions.
#[test]
fn raw_screens_match_stable_retros_env() {
    let _g = lock();
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/airstriker_stable_retro.txt"
    ))
    .unwrap();
    let rows: Vec<Vec<&str>> =
        reference.lines().filter(|l| !l.starts_with('#')).map(|l| l.split_whitespace().collect()).collect();
    let config = RetroConfig { frame_skip: 1, state: Some("Level1".into()), ..RetroConfig::airstriker() };
    let mut env = RetroEnv::new(config).unwrap();
    let screen_hash = |env: &RetroEnv| format!("{:016x}", fnv1a(&env.render_rgb().unwrap().pixels));
    env.reset(None);
    assert_eq!(rows[0][0], "reset");
    assert_eq!(screen_hash(&env), rows[0][2], "after reset");
    let acts = actions(rows.len() - 1, 126, 5);
    for (row, &a) in rows[1..].iter().zip(&acts) {
        assert_eq!(row[1], a.to_string(), "the action lists differ at step {}", row[0]);
        let step = env.step(a);
        let reward = step.reward;
        assert_eq!(screen_hash(&env), row[2], "step {}", row[0]);
        assert_eq!(reward.to_string(), row[3], "step {}", row[0]);
    }
    assert!(rows.len() > 500);
}

/// Frames left undrawn (`draw_all_frames` off, the default) change nothing the env gives:
/// over whole episodes of play, the same observations, rewards, episode ends and RAM as
/// drawing every frame, including episodes that end on an undrawn frame.
#[test]
fn undrawn_frames_change_no_observation() {
    let _g = lock();
    let acts = actions(3000, 126, 31);
    let play_all = |draw_all_frames: bool| {
        let mut env = RetroEnv::new(RetroConfig { draw_all_frames, ..RetroConfig::airstriker() }).unwrap();
        let mut trace = vec![(fnv1a(pixels(env.reset(None))), 0.0, false, 0)];
        let mut ends_undrawn = 0;
        for &a in &acts {
            let step = env.step(a);
            let (hash, reward, done) = (fnv1a(pixels(step.obs)), step.reward, step.done());
            ends_undrawn += usize::from(step.terminated && step.info.frames <= 2);
            trace.push((hash, reward, done, fnv1a(env.core().ram())));
            if done {
                env.reset(None);
            }
        }
        (trace, ends_undrawn)
    };
    let (drawn, _) = play_all(true);
    let (undrawn, ends_undrawn) = play_all(false);
    assert_eq!(undrawn, drawn);
    assert!(drawn.iter().filter(|s| s.2).count() >= 3, "3000 random steps should end several episodes");
    assert!(ends_undrawn >= 1, "no episode ended on an undrawn frame: pick another action list");
}

/// Isolated copies (each on its own loaded copy of the core) in a vector env, stepped in
/// parallel, give each copy the frames it gives alone on the linked core.
#[test]
fn a_vector_env_of_isolated_copies_gives_each_copy_its_own_frames() {
    let _g = lock();
    let lists: Vec<Vec<usize>> = (0..3).map(|i| actions(150, 126, 20 + i)).collect();
    let mut alone = Vec::new();
    {
        let mut env = airstriker();
        for list in &lists {
            env.reset(None);
            alone.push(
                play(&mut env, list).into_iter().map(|(hash, reward, _)| (hash, reward)).collect::<Vec<_>>(),
            );
        }
        // The linked core stays live while the vector env runs beside it.
        let mut venv = RetroEnv::vec(RetroConfig::airstriker(), 3).unwrap();
        venv.reset(None);
        let len = 4 * 84 * 84;
        let mut together = vec![Vec::new(); 3];
        for t in 0..150 {
            let step: Vec<usize> = lists.iter().map(|l| l[t]).collect();
            venv.step(&step);
            for (i, out) in venv.results().iter().enumerate() {
                if t < alone[i].len() {
                    // A finished copy is reset at once; its last frame is kept aside.
                    let obs = if out.done() {
                        pixels(venv.final_obs(i))
                    } else {
                        &pixels(venv.obs())[i * len..(i + 1) * len]
                    };
                    together[i].push((fnv1a(obs), out.reward));
                }
            }
        }
        for i in 0..3 {
            assert_eq!(together[i], alone[i], "copy {i}");
        }
        assert_ne!(alone[0], alone[1]);
        drop(env);
    }
}
