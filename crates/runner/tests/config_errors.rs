//! Bad configs get clear errors: each names where the bad value came from (the file or the
//! `--set`), the full key, and the fix or the closest valid name. `--dry-run` resolves the
//! config without building anything.

use std::path::PathBuf;
use std::process::Command;

fn masp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_masp")).args(args).output().expect("running masp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The error of `masp train --dry-run ARGS`, which must fail.
fn error_of(args: &[&str]) -> String {
    let mut all = vec!["train", "--dry-run"];
    all.extend_from_slice(args);
    let (ok, _, stderr) = masp(&all);
    assert!(!ok, "{args:?} should fail");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("config_errors");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "expected {p:?} in:\n{text}");
    }
}

#[test]
fn unknown_key_in_a_file_names_the_file_and_suggests_the_closest_key() {
    let path = write_config("typo.toml", "[agent]\npreset = \"toy\"\n[agent.learner]\nlerning_starts = 3\n");
    let err = error_of(&["--config", path.to_str().unwrap()]);
    assert_contains(
        &err,
        &[
            "typo.toml",
            "unknown key `agent.learner.lerning_starts`",
            "did you mean `agent.learner.learning_starts`?",
        ],
    );
}

#[test]
fn unknown_key_in_a_set_names_the_set_and_suggests_the_closest_key() {
    let err = error_of(&["--set", "run.frams=5"]);
    assert_contains(&err, &["--set run.frams=5", "unknown key `run.frams`", "did you mean `run.frames`?"]);
    let err = error_of(&["--set", "masp.etaa=1"]);
    assert_contains(&err, &["unknown key `masp.etaa`", "did you mean `masp.eta`?"]);
    let err = error_of(&["--set", "bogus_section.x=1"]);
    assert_contains(&err, &["unknown key `bogus_section`"]);
}

#[test]
fn wrong_type_names_the_key_and_the_expected_type() {
    let err = error_of(&["--set", "run.frames=\"lots\""]);
    assert_contains(&err, &["`run.frames`", "invalid type: string \"lots\", expected u64"]);
    let path = write_config("types.toml", "[masp]\nenabled = \"yes\"\n");
    let err = error_of(&["--config", path.to_str().unwrap()]);
    assert_contains(&err, &["types.toml", "`masp.enabled` must be true or false"]);
}

#[test]
fn unknown_game_lists_the_closest_games() {
    let err = error_of(&["--set", "env.game=pongg"]);
    assert_contains(&err, &["--set env.game=pongg", "`env.game`", "unknown game `pongg`", "pong"]);
}

#[test]
fn unknown_names_suggest_the_closest_valid_one() {
    let err = error_of(&["--set", "agent.preset=rainbw"]);
    assert_contains(&err, &["unknown agent preset `rainbw`", "did you mean `rainbow`?", "rainbow, der, toy"]);
    let err = error_of(&["--set", "env.protocol=machdo"]);
    assert_contains(&err, &["`env.protocol`", "did you mean `machado`?"]);
    let err = error_of(&["--set", "env.kind=atary"]);
    assert_contains(&err, &["`env.kind`", "did you mean `atari`?"]);
}

#[test]
fn impossible_values_surface_the_library_checks() {
    let err = error_of(&["--set", "agent.learner.v_min=10"]);
    assert_contains(&err, &["impossible value", "agent.learner.v_max", "greater than v_min"]);
    let err = error_of(&["--set", "agent.learner.lr=-1e-4"]);
    assert_contains(&err, &["--set agent.learner.lr=-1e-4", "`agent.learner.lr`", "positive learning rate"]);
    let err = error_of(&["--set", "masp.meta_interval=0"]);
    assert_contains(&err, &["`masp.meta_interval`"]);
    let embedding = "agent.network.s_embedding={ dims = 8 }";
    let err = error_of(&["--set", embedding, "--set", "masp.enabled=false"]);
    assert_contains(&err, &["agent.network.s_embedding", "needs MASP", "[masp] enabled = true"]);
    let err = error_of(&["--set", "agent.network.s_embedding={ dims = 0 }"]);
    assert_contains(&err, &["s_embedding.dims"]);
    let err = error_of(&["--set", "run.frames=0"]);
    assert_contains(&err, &["frames = 0"]);
    let err = error_of(&["--set", "agent.seed=3"]);
    assert_contains(&err, &["set `run.seed` instead"]);
}

#[test]
fn every_preset_resolves_and_the_resolved_config_reads_back() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let agents = ["rainbow", "rainbow-macros", "masp", "masp-k0", "ez-greedy"];
    let protocols = ["machado", "nature", "atari100k"];
    for agent in agents {
        for protocol in protocols {
            let a = root.join(format!("agents/{agent}.toml"));
            let p = root.join(format!("protocols/{protocol}.toml"));
            let (ok, stdout, stderr) = masp(&[
                "train",
                "--dry-run",
                "--config",
                a.to_str().unwrap(),
                "--config",
                p.to_str().unwrap(),
            ]);
            assert!(ok, "{agent} + {protocol}: {stderr}");
            let config = masp_runner::RunConfig::from_toml_str("resolved", &stdout).unwrap();
            assert_eq!(config.run.name, agent);
        }
    }
    let (ok, _, stderr) = masp(&["train", "--dry-run", "--config", root.join("toy.toml").to_str().unwrap()]);
    assert!(ok, "{stderr}");
}

#[test]
fn the_grouped_bandit_preset_resolves_and_its_env_checks_name_the_key() {
    let preset = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/grouped-bandit.toml");
    let preset = preset.to_str().unwrap();
    let (ok, stdout, stderr) = masp(&["train", "--dry-run", "--config", preset]);
    assert!(ok, "{stderr}");
    let config = masp_runner::RunConfig::from_toml_str("resolved", &stdout).unwrap();
    assert_eq!((config.env.game_name(), config.env.frames_per_step()), ("grouped_bandit".to_string(), 1));
    let masp_runner::EnvConfig::GroupedBandit(bandit) = &config.env else { panic!("{:?}", config.env) };
    assert_eq!((bandit.actions, bandit.groups, bandit.contexts), (16, 4, 8));
    // rl-env's own check, with the key it came from.
    let err = error_of(&["--config", preset, "--set", "env.groups=17"]);
    assert_contains(&err, &["--set env.groups=17", "`env.groups`", "between 1 and actions = 16"]);
    let err = error_of(&["--config", preset, "--set", "env.noise=-1.0"]);
    assert_contains(&err, &["`env.noise`", "standard deviation >= 0"]);
    let err = error_of(&["--config", preset, "--set", "env.group=2"]);
    assert_contains(&err, &["unknown key `env.group`", "did you mean `env.groups`?"]);
}
