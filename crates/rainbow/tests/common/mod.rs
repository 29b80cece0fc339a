//! A training loop over `VecEnv<Corridor>` shared by the integration tests.

use rainbow::{Agent, UpdateStats};
use rl_env::{Corridor, CorridorConfig, Env, Obs, VecEnv};

/// Runs `steps` rounds of act / step / observe / update on `venv`, returning the actions
/// taken (for comparing runs) and the last update's stats.
pub fn train(
    agent: &mut Agent,
    venv: &mut VecEnv<Corridor>,
    steps: usize,
) -> (Vec<usize>, Option<UpdateStats>) {
    let mut taken = Vec::new();
    let mut last = None;
    for _ in 0..steps {
        let actions = agent.act(venv.obs()).unwrap().to_vec();
        venv.step(&actions);
        agent.observe_vec_env(venv, &actions).unwrap();
        if let Some(stats) = agent.update().unwrap() {
            last = Some(stats);
        }
        taken.extend_from_slice(&actions);
    }
    (taken, last)
}

/// The undiscounted return of one greedy evaluation episode (evaluation mode: noise off).
#[allow(dead_code)] // each test binary compiles this module; not all of them evaluate
pub fn evaluate(agent: &mut Agent, config: &CorridorConfig) -> f32 {
    agent.set_eval(true);
    let mut env = Corridor::new(config.clone());
    let vector = |obs: Obs<'_>| match obs {
        Obs::Vector(v) => v.to_vec(),
        Obs::Pixels(_) => unreachable!("the corridor has vector observations"),
    };
    let mut obs = vector(env.reset(Some(12_345)));
    let mut ret = 0.0;
    loop {
        let action = agent.act(Obs::Vector(&obs)).unwrap()[0];
        let step = env.step(action);
        ret += step.reward;
        if step.done() {
            break;
        }
        obs = vector(step.obs);
    }
    agent.set_eval(false);
    ret
}
