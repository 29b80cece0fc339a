//! The Gym Retro backend from the command line: ROM import, the SF2 presets without the
//! SF2 ROM, and the special-moves pool against the env's actions.

mod common;
use common::{fresh_dir, root};

use macro_actions::ActionPool;
use retro_env::{ActionSet, Pad};

const SF2: &str = "StreetFighterIISpecialChampionEdition-Genesis-v0";

fn masp_with_rom_dir(args: &[&str], rom_dir: &std::path::Path) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_masp"))
        .args(args)
        .env(retro_env::ROM_DIR_ENV, rom_dir)
        .output()
        .expect("running masp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn import_copies_a_recognised_rom_under_its_game_name() {
    let dir = fresh_dir("retro", "import");
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    // Airstriker's ROM, renamed: import must recognise it by content.
    let game = retro_env::Integration::load("Airstriker-Genesis-v0").unwrap();
    std::fs::copy(game.dir.join("rom.md"), downloads.join("my airstriker.bin")).unwrap();
    std::fs::write(downloads.join("notes.txt"), "not a rom").unwrap();
    let roms = dir.join("roms");
    let (ok, stdout, stderr) = masp_with_rom_dir(&["retro", "import", downloads.to_str().unwrap()], &roms);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("imported Airstriker-Genesis-v0"), "{stdout}");
    let copied = std::fs::read(roms.join("Airstriker-Genesis-v0.md")).unwrap();
    assert_eq!(retro_env::sha1_hex(&copied), game.rom_sha1);

    let (ok, _, stderr) =
        masp_with_rom_dir(&["retro", "import", downloads.join("notes.txt").to_str().unwrap()], &roms);
    assert!(!ok);
    assert!(stderr.contains("no ROM under") && stderr.contains("rom.sha"), "{stderr}");
}

#[test]
fn sf2_without_its_rom_fails_with_the_import_command() {
    let dir = fresh_dir("retro", "sf2-no-rom");
    let preset = root().join("configs/games/sf2.toml");
    let args = [
        "train",
        "--config",
        preset.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--set",
        "run.frames=100",
    ];
    let (ok, _, stderr) = masp_with_rom_dir(&args, &dir.join("empty"));
    assert!(!ok);
    assert!(stderr.contains(SF2) && stderr.contains("a5aad1d108046d9388e33247610dafb4c6516e0b"), "{stderr}");
    assert!(stderr.contains("masp retro import"), "{stderr}");
}

#[test]
fn sf2_special_moves_pool_fits_the_discrete_actions() {
    let pool = ActionPool::load(root().join("configs/pools/sf2-special-moves.toml")).unwrap();
    let names: Vec<String> =
        Pad::genesis().unwrap().actions(ActionSet::Discrete).into_iter().map(|a| a.name).collect();
    assert_eq!(pool.primitive_names(), names.as_slice());
    let macros = &pool.names()[names.len()..];
    assert_eq!(macros.len(), 18);
    assert!(macros.contains(&"DOWN+DOWN_RIGHT+RIGHT_X".to_string()), "{macros:?}");
    assert!(macros.contains(&"LEFT+DOWN+DOWN_LEFT_Z".to_string()), "{macros:?}");
}
