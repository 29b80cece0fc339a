//! The game integrations without any ROM but Airstriker's: StreetFighter II's files parse into
//! the variables and rules the SF2 configs rely on, a missing ROM names the fix, and import
//! recognises a ROM by sha1.

use std::fs;
use std::path::PathBuf;

use retro_env::{import, rom_path_in, sha1_hex, ActionSet, Combine, Error, Integration, Op, Pad};

const SF2: &str = "StreetFighterIISpecialChampionEdition-Genesis-v0";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retro-env-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn street_fighter_ii_integration_parses() {
    let game = Integration::load(SF2).unwrap();
    assert_eq!(game.default_state.as_deref(), Some("Champion.Level1.RyuVsGuile"));
    assert_eq!(game.rom_sha1, "a5aad1d108046d9388e33247610dafb4c6516e0b");
    for v in ["health", "enemy_health", "score", "matches_won", "enemy_matches_won", "continuetimer"] {
        assert!(game.variables.contains_key(v), "{v}");
    }
    assert_eq!(game.scenario.done, vec![("continuetimer".to_string(), Op::Equal(10))]);
    assert_eq!(game.scenario.combine, Combine::Any);
    assert_eq!(game.scenario.crop, Some([0, 16, 256, 200]));
    assert_eq!(game.scenario.reward.len(), 1);
    assert_eq!(game.scenario.reward[0].variable, "score");
    // The start state is a gzip'd core state of the pinned core's size.
    let state = game.state("Champion.Level1.RyuVsGuile").unwrap();
    assert!(state.len() > 0x10000, "{} bytes", state.len());
    let err = game.state("Nope").unwrap_err().to_string();
    assert!(err.contains("Champion.Level1.RyuVsGuile"), "{err}");
}

#[test]
fn genesis_actions_are_stable_retros() {
    let pad = Pad::genesis().unwrap();
    let discrete = pad.actions(ActionSet::Discrete);
    assert_eq!(discrete.len(), 126);
    let names: Vec<&str> = discrete.iter().map(|a| a.name.as_str()).collect();
    for name in ["NOOP", "DOWN", "DOWN_RIGHT", "DOWN_RIGHT_A", "UP_LEFT_X_Y", "C"] {
        assert!(names.contains(&name), "{name}");
    }
    assert_eq!(pad.actions(ActionSet::Buttons).len(), 13);
}

#[test]
fn missing_rom_names_the_game_the_sha1_and_the_import_command() {
    let game = Integration::load(SF2).unwrap();
    let err = rom_path_in(&temp_dir("no-roms"), &game).unwrap_err();
    assert!(matches!(err, Error::RomMissing { .. }));
    let msg = err.to_string();
    assert!(msg.contains(SF2) && msg.contains(&game.rom_sha1) && msg.contains("masp retro import"), "{msg}");
}

#[test]
fn unknown_games_suggest_close_names() {
    let err = Integration::load("StreetFighterII-Genesis").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(SF2), "{msg}");
}

#[test]
fn import_recognises_roms_by_sha1_in_files_and_zips() {
    let dir = temp_dir("import");
    let integrations = dir.join("integrations");
    let rom = b"synthetic Genesis ROM".to_vec();
    for (game, sha) in [("Fake-Genesis-v0", sha1_hex(&rom)), ("Other-Genesis-v0", "0".repeat(40))] {
        fs::create_dir_all(integrations.join(game)).unwrap();
        fs::write(integrations.join(game).join("rom.sha"), format!("{sha}\n")).unwrap();
    }
    let downloads = dir.join("downloads");
    fs::create_dir_all(&downloads).unwrap();
    fs::write(downloads.join("whatever name.bin"), &rom).unwrap();
    fs::write(downloads.join("unrelated.txt"), b"not a rom").unwrap();

    let roms = dir.join("roms");
    let got = import(std::slice::from_ref(&downloads), &integrations, &roms).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].game, "Fake-Genesis-v0");
    assert_eq!(fs::read(roms.join("Fake-Genesis-v0.md")).unwrap(), rom);

    // The same ROM inside a zip archive, deflate-compressed.
    fs::remove_dir_all(&roms).unwrap();
    let archive = dir.join("roms.zip");
    {
        let mut zip = zip::ZipWriter::new(fs::File::create(&archive).unwrap());
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("nested/game.md", options).unwrap();
        std::io::Write::write_all(&mut zip, &rom).unwrap();
        zip.finish().unwrap();
    }
    let got = import(&[archive], &integrations, &roms).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].source.ends_with("roms.zip:nested/game.md"), "{}", got[0].source);
    assert_eq!(fs::read(roms.join("Fake-Genesis-v0.md")).unwrap(), rom);

    let err = import(&[dir.join("missing.md")], &integrations, &roms).unwrap_err().to_string();
    assert!(err.contains("missing.md"), "{err}");
}
