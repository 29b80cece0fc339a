//! Integration tests of the safe ALE layer against the real emulator and the sdist's ROMs
//! (fetched by `cargo xtask setup`): determinism, clone/restore, every ROM, ROM lookup errors,
//! settings and RAM.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ale_env::{
    action_name, available_games, available_games_in, resolve_rom_dir, rom_dir, rom_path, rom_path_in, Ale,
    AleState, Error, RAM_SIZE,
};
use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// ROMs in the sdist's folder that ALE supports only as multi-player games (PettingZoo's
/// `combat_tank`, `joust`, `maze_craze`, `warlords`): ALE 0.12.1 has no single-player
/// `RomSettings` for them, so their MD5 matches none of its games, and ale-py's own
/// registration skips them (`src/ale/python/registration.py`, `register_v5_envs`).
const MULTIPLAYER_ONLY: [&str; 4] = ["combat", "joust", "maze_craze", "warlords"];

/// ALE's usual screen; the ROMs in `TALL_SCREENS` report more rows.
const SCREEN: usize = 210 * 160;

/// Games whose screen is taller than 210 rows (ALE takes the height from each cartridge's
/// properties; width is always 160). Pinned so a change in ALE shows up here.
const TALL_SCREENS: [(&str, usize); 13] = [
    ("adventure", 250),
    ("air_raid", 250),
    ("carnival", 214),
    ("journey_escape", 230),
    ("keystone_kapers", 250),
    ("king_kong", 250),
    ("klax", 250),
    ("laser_gates", 250),
    ("mr_do", 250),
    ("pacman", 250),
    ("pooyan", 220),
    ("sir_lancelot", 250),
    ("space_war", 250),
];

fn load(game: &str, seed: i32, sticky: f32) -> Result<Ale> {
    let mut ale = Ale::new()?;
    ale.set_int("random_seed", seed)?;
    ale.set_float("repeat_action_probability", sticky)?;
    ale.load_rom(&rom_path(game)?).with_context(|| format!("loading {game}"))?;
    Ok(ale)
}

/// One step's observable outcome.
#[derive(Debug, PartialEq)]
struct Outcome {
    reward: i32,
    screen: Vec<u8>,
    ram: [u8; RAM_SIZE],
    game_over: bool,
}

fn step(ale: &mut Ale, action: i32) -> Outcome {
    let reward = ale.act(action, 1.0);
    let pixels = ale.screen_height() * ale.screen_width();
    let mut screen = vec![0u8; pixels];
    ale.screen_rgb(&mut vec![0u8; pixels * 3]);
    ale.screen_grayscale(&mut screen);
    let mut ram = [0u8; RAM_SIZE];
    ale.ram(&mut ram);
    let game_over = ale.game_over(true);
    if game_over {
        ale.reset_game();
    }
    Outcome { reward, screen, ram, game_over }
}

fn random_actions(minimal: &[i32], n: usize, seed: u64) -> Vec<i32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| minimal[rng.random_range(0..minimal.len())]).collect()
}

#[test]
fn same_seed_same_run_and_other_seed_differs() -> Result<()> {
    // Breakout: sticky actions move the paddle differently, so the ALE seed shows on screen.
    let game = "breakout";
    let mut a = load(game, 123, 0.25)?;
    let mut b = load(game, 123, 0.25)?;
    let mut c = load(game, 124, 0.25)?;
    let actions = random_actions(&a.minimal_action_set(), 1000, 7);

    let mut first_difference = None;
    for (t, &action) in actions.iter().enumerate() {
        let oa = step(&mut a, action);
        let ob = step(&mut b, action);
        let oc = step(&mut c, action);
        assert_eq!(oa.reward, ob.reward, "reward differs at step {t} with the same seed");
        assert!(oa.screen == ob.screen, "screen differs at step {t} with the same seed");
        assert_eq!(oa.ram, ob.ram, "RAM differs at step {t} with the same seed");
        if first_difference.is_none() && (oa.screen != oc.screen || oa.ram != oc.ram) {
            first_difference = Some(t);
        }
    }
    assert_eq!(a.frame_number(), b.frame_number());
    assert!(
        first_difference.is_some(),
        "seeds 123 and 124 gave identical runs: random_seed is not reaching ALE"
    );
    // The run did something: the screen is not a constant image.
    let mut screen = vec![0u8; SCREEN];
    a.screen_grayscale(&mut screen);
    assert!(screen.iter().any(|&p| p != screen[0]));
    Ok(())
}

/// Records `actions` from the current state.
fn record(ale: &mut Ale, actions: &[i32]) -> Vec<Outcome> {
    actions.iter().map(|&a| step(ale, a)).collect()
}

fn assert_same_run(expected: &[Outcome], got: &[Outcome], what: &str) {
    assert_eq!(expected.len(), got.len());
    for (t, (e, g)) in expected.iter().zip(got).enumerate() {
        assert_eq!(e.reward, g.reward, "{what}: reward differs at step {t}");
        assert!(e.screen == g.screen, "{what}: screen differs at step {t}");
        assert_eq!(e.ram, g.ram, "{what}: RAM differs at step {t}");
        assert_eq!(e.game_over, g.game_over, "{what}: game_over differs at step {t}");
    }
}

#[test]
fn clone_restore_and_serialize_repeat_the_continuation() -> Result<()> {
    // Sticky actions on, so a restore that lost the RNG would diverge.
    let game = "space_invaders";
    let mut ale = load(game, 5, 0.25)?;
    let minimal = ale.minimal_action_set();
    for &a in &random_actions(&minimal, 100, 1) {
        step(&mut ale, a);
    }
    let frame_at_clone = ale.frame_number();
    let ram_at_clone = ale.ram_vec();
    let state = ale.clone_system_state()?;
    let actions = random_actions(&minimal, 200, 2);
    let expected = record(&mut ale, &actions);
    assert!(
        expected.iter().any(|o| o.ram[..] != ram_at_clone[..]),
        "200 steps left RAM unchanged, so this test could not see a bad restore"
    );
    assert_ne!(ale.frame_number(), frame_at_clone);

    ale.restore_state(&state)?;
    assert_eq!(ale.frame_number(), frame_at_clone);
    assert_eq!(ale.ram_vec(), ram_at_clone, "RAM right after restore");
    assert_same_run(&expected, &record(&mut ale, &actions), "restore");

    // Through bytes, into the same instance and into a fresh one seeded differently.
    let bytes = state.serialize();
    let back = AleState::deserialize(&bytes)?;
    assert_eq!(back.serialize(), bytes, "serialize(deserialize(b)) != b");
    ale.restore_state(&back)?;
    assert_same_run(&expected, &record(&mut ale, &actions), "deserialized restore");

    let mut fresh = load(game, 99, 0.25)?;
    fresh.restore_state(&back)?;
    assert_eq!(fresh.frame_number(), frame_at_clone);
    assert_same_run(&expected, &record(&mut fresh, &actions), "restore in a new instance");
    Ok(())
}

#[test]
fn clone_without_rng_repeats_when_actions_are_not_sticky() -> Result<()> {
    let mut ale = load("pong", 3, 0.0)?;
    let minimal = ale.minimal_action_set();
    for &a in &random_actions(&minimal, 50, 3) {
        step(&mut ale, a);
    }
    let state = ale.clone_state(false)?;
    let actions = random_actions(&minimal, 200, 4);
    let expected = record(&mut ale, &actions);
    ale.restore_state(&state)?;
    assert_same_run(&expected, &record(&mut ale, &actions), "clone_state(false)");
    Ok(())
}

#[test]
fn state_from_another_rom_is_refused() -> Result<()> {
    let mut pong = load("pong", 1, 0.0)?;
    let mut breakout = load("breakout", 1, 0.0)?;
    let pong_state = pong.clone_state(true)?;
    let before = breakout.ram_vec();
    match breakout.restore_state(&pong_state) {
        Err(Error::BadState { message }) => assert!(message.contains("MD5"), "{message}"),
        other => panic!("expected BadState, got {other:?}"),
    }
    assert_eq!(breakout.ram_vec(), before, "a refused restore must not touch the emulator");

    let bytes = pong_state.serialize();
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(AleState::deserialize(&bytes[..cut]), Err(Error::BadState { .. })),
            "truncated to {cut} bytes"
        );
    }
    Ok(())
}

#[test]
fn every_rom_in_the_sdist_loads_and_steps() -> Result<()> {
    let dir = rom_dir()?;
    let games = available_games()?;
    assert!(games.len() >= 100, "only {} ROMs in {}", games.len(), dir.display());

    let mut unsupported = BTreeSet::new();
    let mut tall = Vec::new();
    let mut failures = Vec::new();
    for game in &games {
        let path = rom_path(game)?;
        match Ale::supported_rom_id(&path)? {
            None => {
                unsupported.insert(game.as_str());
                continue;
            }
            Some(id) if id != *game => failures.push(format!("{game}: ALE calls it `{id}`")),
            Some(_) => {}
        }
        let result = (|| -> Result<()> {
            let mut ale = load(game, 0, 0.25)?;
            let (h, w) = (ale.screen_height(), ale.screen_width());
            anyhow::ensure!(w == 160 && (210..=250).contains(&h), "screen {h}x{w}");
            if h != 210 {
                tall.push((game.clone(), h));
            }
            let minimal = ale.minimal_action_set();
            anyhow::ensure!(!minimal.is_empty(), "empty minimal action set");
            // Most games accept all 18 actions; a few (skiing, lost_luggage) fewer.
            let legal = ale.legal_action_set();
            anyhow::ensure!(
                legal.len() <= 18 && minimal.iter().all(|a| legal.contains(a)),
                "legal {legal:?} vs minimal {minimal:?}"
            );
            anyhow::ensure!(!ale.available_modes().is_empty(), "no modes");
            anyhow::ensure!(!ale.available_difficulties().is_empty(), "no difficulties");
            for &a in &random_actions(&minimal, 100, 0) {
                step(&mut ale, a);
            }
            anyhow::ensure!(ale.frame_number() >= 100, "frame_number {}", ale.frame_number());
            Ok(())
        })();
        if let Err(e) = result {
            failures.push(format!("{game}: {e:#}"));
        }
    }
    assert!(failures.is_empty(), "ROMs that failed:\n{}", failures.join("\n"));
    assert_eq!(
        unsupported,
        MULTIPLAYER_ONLY.into_iter().collect(),
        "ROMs ALE does not support as single-player games"
    );
    let tall_expected: Vec<(String, usize)> = TALL_SCREENS.iter().map(|&(g, h)| (g.to_owned(), h)).collect();
    assert_eq!(tall, tall_expected, "games with screens taller than 210 rows");
    for game in MULTIPLAYER_ONLY {
        let mut ale = Ale::new()?;
        assert!(matches!(ale.load_rom(&rom_path(game)?), Err(Error::UnsupportedRom { .. })));
    }
    Ok(())
}

#[test]
fn unknown_game_lists_close_names() -> Result<()> {
    match rom_path("pongg") {
        Err(e @ Error::UnknownGame { .. }) => {
            let msg = e.to_string();
            let Error::UnknownGame { suggestions, .. } = e else { unreachable!() };
            assert_eq!(suggestions.first().map(String::as_str), Some("pong"), "{msg}");
            assert!(suggestions.len() <= 5);
            assert!(msg.contains("pong") && msg.contains("available_games"), "{msg}");
        }
        other => panic!("expected UnknownGame, got {other:?}"),
    }
    for name in ["pong", "Pong", "space_invaders", "SpaceInvaders", "space-invaders"] {
        assert!(rom_path(name)?.is_file(), "{name}");
    }
    Ok(())
}

#[test]
fn missing_rom_dir_is_reported() {
    let nowhere = std::env::temp_dir().join("ale-env-test-no-such-rom-dir");
    match resolve_rom_dir(Some(&nowhere)) {
        Err(e @ Error::RomDirMissing { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("cargo xtask setup") && msg.contains("ALE_ROM_DIR"), "{msg}");
        }
        other => panic!("expected RomDirMissing, got {other:?}"),
    }
    assert!(matches!(available_games_in(&nowhere), Err(Error::RomDirMissing { .. })));
    assert!(matches!(rom_path_in(&nowhere, "pong"), Err(Error::RomDirMissing { .. })));
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ale-env-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn unsupported_and_missing_rom_files_are_errors_not_exits() -> Result<()> {
    let dir = temp_dir("unsupported");
    let mut bytes = vec![0u8; 4096];
    ChaCha8Rng::seed_from_u64(0).fill(&mut bytes[..]);
    // Named like a real game: ALE alone would accept it by file name and run garbage.
    let fake = dir.join("pong.bin");
    std::fs::write(&fake, &bytes)?;
    let mut ale = Ale::new()?;
    match ale.load_rom(&fake) {
        Err(Error::UnsupportedRom { path }) => assert_eq!(path, fake),
        other => panic!("expected UnsupportedRom, got {other:?}"),
    }
    assert_eq!(Ale::supported_rom_id(&fake)?, None);
    assert_eq!(Ale::supported_rom_id(&rom_path("pong")?)?.as_deref(), Some("pong"));

    let missing = dir.join("missing.bin");
    assert!(matches!(ale.load_rom(&missing), Err(Error::Ale { .. })));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn settings_round_trip() -> Result<()> {
    let mut ale = Ale::new()?;
    ale.set_int("frame_skip", 4)?;
    assert_eq!(ale.get_int("frame_skip")?, 4);
    ale.set_int("random_seed", -7)?;
    assert_eq!(ale.get_int("random_seed")?, -7);
    ale.set_float("repeat_action_probability", 0.125)?;
    assert_eq!(ale.get_float("repeat_action_probability")?, 0.125);
    for v in [true, false, true] {
        ale.set_bool("color_averaging", v)?;
        assert_eq!(ale.get_bool("color_averaging")?, v);
    }
    ale.set_string("record_screen_dir", "/tmp/frames here")?;
    assert_eq!(ale.get_string("record_screen_dir")?, "/tmp/frames here");
    ale.set_string("record_screen_dir", "")?;
    assert_eq!(ale.get_string("record_screen_dir")?, "");
    // The defaults ALE documents.
    let fresh = Ale::new()?;
    assert_eq!(fresh.get_float("repeat_action_probability")?, 0.25);
    assert_eq!(fresh.get_int("frame_skip")?, 1);
    assert!(!fresh.get_bool("color_averaging")?);

    for err in [
        ale.set_int("no_such_setting", 1).err(),
        ale.set_float("no_such_setting", 1.0).err(),
        ale.set_bool("no_such_setting", true).err(),
        ale.set_string("no_such_setting", "x").err(),
        ale.get_int("no_such_setting").err(),
        ale.get_string("no_such_setting").err(),
    ] {
        match err {
            Some(Error::Ale { message, .. }) => assert!(message.contains("no_such_setting")),
            other => panic!("expected an Ale error naming the key, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn settings_apply_at_load() -> Result<()> {
    let mut one = load("pong", 0, 0.0)?;
    let mut four = Ale::new()?;
    four.set_int("frame_skip", 4)?;
    four.set_float("repeat_action_probability", 0.0)?;
    four.load_rom(&rom_path("pong")?)?;
    let (f1, f4) = (one.frame_number(), four.frame_number());
    one.act(0, 1.0);
    four.act(0, 1.0);
    assert_eq!(one.frame_number() - f1, 1);
    assert_eq!(four.frame_number() - f4, 4);
    Ok(())
}

#[test]
fn set_ram_changes_ram() -> Result<()> {
    let mut ale = load("pong", 0, 0.0)?;
    let before = ale.ram_vec();
    assert_eq!(before.len(), RAM_SIZE);
    for index in [0usize, 57, 127] {
        let value = before[index].wrapping_add(1);
        ale.set_ram(index, value)?;
        let after = ale.ram_vec();
        assert_eq!(after[index], value, "RAM[{index}]");
        for (i, (&a, &b)) in before.iter().zip(&after).enumerate() {
            if ![0, 57, 127].contains(&i) {
                assert_eq!(a, b, "set_ram({index}) changed RAM[{i}]");
            }
        }
    }
    assert!(matches!(ale.set_ram(128, 0), Err(Error::Ale { op: "set_ram", .. })));
    Ok(())
}

#[test]
fn modes_and_difficulties() -> Result<()> {
    let mut ale = load("space_invaders", 0, 0.0)?;
    let modes = ale.available_modes();
    assert!(modes.len() > 1, "{modes:?}");
    ale.set_mode(modes[1])?;
    ale.reset_game();
    let bad = modes.iter().max().unwrap() + 1000;
    match ale.set_mode(bad) {
        Err(Error::Ale { op: "set_mode", message }) => {
            assert!(message.contains("not available"), "{message}")
        }
        other => panic!("expected an Ale error, got {other:?}"),
    }
    assert!(ale.set_mode(-1).is_err());
    let difficulties = ale.available_difficulties();
    ale.set_difficulty(*difficulties.last().unwrap())?;
    assert!(ale.set_difficulty(99).is_err());
    Ok(())
}

#[test]
fn screens_agree_with_each_other() -> Result<()> {
    let mut ale = load("breakout", 0, 0.0)?;
    for _ in 0..60 {
        ale.act(1, 1.0);
    }
    let (h, w) = (ale.screen_height(), ale.screen_width());
    assert_eq!((h, w), (210, 160));
    let mut palette = vec![0u8; h * w];
    let mut gray = vec![0u8; h * w];
    let mut rgb = vec![0u8; h * w * 3];
    ale.screen_palette(&mut palette);
    ale.screen_grayscale(&mut gray);
    ale.screen_rgb(&mut rgb);
    // Equal palette index means equal colour and equal luminance.
    let mut seen = std::collections::HashMap::new();
    for i in 0..h * w {
        let colour = (&rgb[3 * i..3 * i + 3], gray[i]);
        let first = *seen.entry(palette[i]).or_insert(colour);
        assert_eq!(first, colour, "pixel {i}");
    }
    assert!(seen.len() > 2, "only {} colours on a Breakout screen", seen.len());
    Ok(())
}

#[test]
#[should_panic(expected = "expected 210 x 160 x 3")]
fn wrong_screen_buffer_panics_with_the_expected_size() {
    let ale = load("pong", 0, 0.0).unwrap();
    ale.screen_rgb(&mut [0u8; 10]);
}

#[test]
#[should_panic(expected = "action id")]
fn out_of_range_action_panics() {
    let mut ale = load("pong", 0, 0.0).unwrap();
    ale.act(18, 1.0);
}

#[test]
fn ale_moves_between_threads() -> Result<()> {
    let mut ale = load("pong", 0, 0.0)?;
    let state = ale.clone_state(true)?;
    let handle = std::thread::spawn(move || {
        ale.restore_state(&state).unwrap();
        ale.act(0, 1.0);
        ale.frame_number()
    });
    assert!(handle.join().unwrap() > 0);
    Ok(())
}

#[test]
fn action_names_match_the_legal_set() -> Result<()> {
    let ale = load("pong", 0, 0.0)?;
    let names: Vec<&str> = ale.legal_action_set().into_iter().map(action_name).collect();
    assert_eq!(names[0], "NOOP");
    assert_eq!(names[17], "DOWNLEFTFIRE");
    let minimal: Vec<&str> = ale.minimal_action_set().into_iter().map(action_name).collect();
    assert_eq!(minimal, ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]);
    Ok(())
}
