//! Training N steps, saving, loading into a fresh agent and training N more gives
//! bit-identical parameters (online, target, Adam moments), counters and actions to 2N
//! steps straight, on the CPU; the S-embedding's parameters and context round-trip.

mod common;

use rainbow::{Agent, AgentConfig, Error};
use rl_env::{Corridor, CorridorConfig, VecEnv};

const N: usize = 150;

fn setup(config: &AgentConfig) -> (Agent, VecEnv<Corridor>) {
    let corridor = CorridorConfig { length: 8, max_steps: 20, ..CorridorConfig::default() };
    let mut venv = VecEnv::new((0..2).map(|_| Corridor::new(corridor.clone())).collect());
    venv.reset(Some(7));
    let mut agent = Agent::new(config.clone(), &venv.spec().observation.clone(), 4, 2).unwrap();
    agent.start_vec_env(&venv).unwrap();
    (agent, venv)
}

fn config() -> AgentConfig {
    let mut c = AgentConfig::toy();
    // Small and quick, with every stateful piece exercised within 2N steps: updates from
    // step 40, target syncs every 25 updates, ez-greedy repeats in flight at the save.
    c.network = rainbow::NetworkConfig { hidden: 16, ..rainbow::NetworkConfig::mlp(16) };
    c.learner.batch_size = 8;
    c.learner.learning_starts = 40;
    c.learner.target_update_period = 25;
    c.exploration.kind = rainbow::ExplorationKind::EzGreedy;
    c.exploration.epsilon_decay_steps = 1000;
    c.seed = 42;
    c
}

/// Every parameter and moment, bit for bit.
fn state(agent: &Agent) -> Vec<(String, Vec<u32>)> {
    let bits = |t: &candle_core::Tensor| -> Vec<u32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    };
    let l = agent.learner();
    let mut out = Vec::new();
    for (prefix, net) in [("online", l.online()), ("target", l.target())] {
        for (name, var) in net.named_vars() {
            out.push((format!("{prefix}.{name}"), bits(var.as_tensor())));
        }
    }
    let (m, v) = l.adam().moments();
    for (k, (m, v)) in m.iter().zip(v).enumerate() {
        out.push((format!("m{k}"), bits(m.as_tensor())));
        out.push((format!("v{k}"), bits(v.as_tensor())));
    }
    out
}

#[test]
fn save_load_resume_is_bit_identical_to_an_uninterrupted_run() {
    let dir = std::env::temp_dir().join(format!("rainbow-checkpoint-{}", std::process::id()));
    let (mut straight, mut venv_a) = setup(&config());
    let (mut first, _) = common::train(&mut straight, &mut venv_a, N);
    let (second, _) = common::train(&mut straight, &mut venv_a, N);
    first.extend(second);

    let (mut interrupted, mut venv_b) = setup(&config());
    let (mut taken, _) = common::train(&mut interrupted, &mut venv_b, N);
    assert!(interrupted.learner().updates() > 0, "the save must come after some updates");
    interrupted.save(&dir, true).unwrap();
    drop(interrupted);
    let mut resumed = Agent::load(&dir).unwrap();
    // An agent loaded only to act leaves the saved replay unread, and nothing else.
    let acting = Agent::load_without_replay(&dir).unwrap();
    assert!(acting.learner().replay().is_empty() && !resumed.learner().replay().is_empty());
    assert_eq!((state(&acting), acting.counters()), (state(&resumed), resumed.counters()));
    let (rest, _) = common::train(&mut resumed, &mut venv_b, N);
    taken.extend(rest);

    if let Some(i) = taken.iter().zip(&first).position(|(a, b)| a != b) {
        panic!("the resumed run's actions differ from decision {i} on");
    }
    assert_eq!(resumed.counters(), straight.counters());
    assert_eq!(resumed.learner().adam().step_count(), straight.learner().adam().step_count());
    let (a, b) = (state(&straight), state(&resumed));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs after resuming");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoint_without_replay_and_damaged_checkpoints() {
    let dir = std::env::temp_dir().join(format!("rainbow-checkpoint-noreplay-{}", std::process::id()));
    let (mut agent, mut venv) = setup(&config());
    common::train(&mut agent, &mut venv, 60);
    agent.save(&dir, false).unwrap();
    assert!(!dir.join("replay.bin").exists());
    let loaded = Agent::load(&dir).unwrap();
    assert!(loaded.learner().replay().is_empty(), "no replay saved, none loaded");
    assert_eq!(state(&loaded), state(&agent));
    assert_eq!(loaded.counters(), agent.counters());
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");

    // A manifest from a future format, and a missing tensor file, are named errors.
    let manifest = std::fs::read_to_string(dir.join("agent.json")).unwrap();
    assert!(!manifest.contains("s_embedding"), "a network without it is saved as before");
    std::fs::write(
        dir.join("agent.json"),
        manifest.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    let err = Agent::load(&dir).unwrap_err();
    assert!(
        matches!(err, Error::Checkpoint { .. }) && err.to_string().contains("format version 99"),
        "{err}"
    );
    std::fs::write(dir.join("agent.json"), manifest).unwrap();
    std::fs::remove_file(dir.join("agent.safetensors")).unwrap();
    assert!(matches!(Agent::load(&dir), Err(Error::Checkpoint { .. })));
    assert!(matches!(Agent::load(dir.join("nowhere")), Err(Error::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

/// The S-embedding's `R`, `L_c` and context come back as saved, for the online and the
/// target network alike.
#[test]
fn the_s_embedding_round_trips() {
    let dir = std::env::temp_dir().join(format!("rainbow-checkpoint-embedding-{}", std::process::id()));
    let mut config = config();
    config.network.s_embedding = Some(rainbow::SEmbeddingConfig { dims: 3, ..Default::default() });
    let (mut agent, mut venv) = setup(&config);
    let raw = candle_core::Tensor::new(
        &[[1f32, 0.5, 0.0, 0.2], [0.5, 1.0, 0.3, 0.0], [0.0, 0.3, 1.0, 0.1], [0.2, 0.0, 0.1, 1.0]],
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let p = raw.broadcast_div(&raw.sum_keepdim(1).unwrap()).unwrap();
    agent.learner_mut().set_action_context(&p).unwrap();
    common::train(&mut agent, &mut venv, 60);
    assert!(agent.learner().updates() > 0);
    agent.save(&dir, false).unwrap();
    let loaded = Agent::load(&dir).unwrap();
    let names: Vec<String> = state(&loaded).into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"target.head.s_embedding.features".to_string()), "{names:?}");
    assert_eq!(state(&loaded), state(&agent));
    let context = |a: &Agent| -> Vec<Vec<Vec<f32>>> {
        let l = a.learner();
        [l.online(), l.target()].map(|n| n.action_context().unwrap().to_vec2().unwrap()).to_vec()
    };
    assert_eq!(context(&loaded), context(&agent));
    assert_eq!(context(&loaded)[0], p.to_vec2::<f32>().unwrap());
    std::fs::remove_dir_all(&dir).ok();
}
