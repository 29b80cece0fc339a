//! The agent solves a sparse-reward toy task that a random policy does not: the `Corridor`
//! of 10 cells (goal reward 1 at the far end, LEFT / RIGHT / NOOP / BACK-to-start, 40 steps
//! before truncation), with an MLP Rainbow (noisy nets, C51, dueling, double-Q, 3-step
//! returns, prioritised replay) and fixed seeds.
//!
//! Stated result: after 3000 agent steps, the greedy policy (noise off, epsilon 0) reaches
//! the goal, return 1.0.
//!
//! Margin, measured when this test was written: with seeds 0 to 5 the greedy policy first
//! reached the goal (checked every 250 steps) at 2000, 250, 2000, 1500, 1250 and 250 agent
//! steps, and all six held it at 3000; seed 0, the one used here, is among the slowest.
//! A uniformly random policy reaches the goal in about 0.2 % of episodes (checked below).

mod common;

use rainbow::{Agent, AgentConfig};
use rand::{Rng, SeedableRng};
use rl_env::{Corridor, CorridorConfig, Env, VecEnv};

const BUDGET: usize = 3000;

fn corridor() -> CorridorConfig {
    CorridorConfig { length: 10, max_steps: 40, ..CorridorConfig::default() }
}

#[test]
fn a_random_policy_fails() {
    let mut env = Corridor::new(corridor());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let episodes = 2000;
    let mut successes = 0;
    for e in 0..episodes {
        env.reset(Some(e));
        loop {
            let step = env.step(rng.random_range(0..4));
            if step.done() {
                successes += usize::from(step.terminated);
                break;
            }
        }
    }
    // Expected 0.17 % (3 or 4 of 2000); a policy that sometimes walks right would score far more.
    assert!(successes <= 12, "{successes} of {episodes} random episodes reached the goal");
}

#[test]
fn rainbow_solves_the_corridor() {
    // The network is tiny: candle's matmuls are faster on one thread than split across two
    // at this size. Set before any tensor work; this file's other test touches no tensors.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let mut config = AgentConfig::toy();
    config.seed = 0;
    config.exploration.eval_epsilon = 0.0;
    let mut venv = VecEnv::new(vec![Corridor::new(corridor())]);
    venv.reset(Some(0));
    let mut agent = Agent::new(config, &venv.spec().observation.clone(), 4, 1).unwrap();
    agent.start_vec_env(&venv).unwrap();
    let (_, stats) = common::train(&mut agent, &mut venv, BUDGET);
    let ret = common::evaluate(&mut agent, &corridor());
    println!("return {ret} after {BUDGET} agent steps; last update {stats:?}");
    assert_eq!(ret, 1.0, "the greedy policy did not reach the goal after {BUDGET} agent steps");
    let c = agent.counters();
    assert_eq!((c.agent_steps, c.frames), (BUDGET as u64, BUDGET as u64));
    assert_eq!(c.updates, (BUDGET as u64) - 100 + 1, "an update per step from step 100");
}
