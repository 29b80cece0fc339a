//! `KeyDoor` against an independent reference: a breadth-first search over its own dynamics
//! confirms the documented shortest solution, and random layouts stay solvable.

use std::collections::{HashSet, VecDeque};

use rl_env::{Env, KeyDoor, KeyDoorConfig};

/// Length of the shortest action sequence that ends the episode by the door, searching the
/// state `(agent, has_key)` through clones of the environment.
fn shortest_solution(env: &KeyDoor) -> Option<usize> {
    let mut seen = HashSet::from([(env.agent(), env.has_key())]);
    let mut queue = VecDeque::from([(env.clone(), 0usize)]);
    while let Some((state, depth)) = queue.pop_front() {
        for action in 0..state.spec().num_actions() {
            let mut next = state.clone();
            if next.step(action).terminated {
                return Some(depth + 1);
            }
            if seen.insert((next.agent(), next.has_key())) {
                queue.push_back((next, depth + 1));
            }
        }
    }
    None
}

#[test]
fn documented_17_step_solution_is_the_shortest() {
    let env = KeyDoor::new(KeyDoorConfig { max_steps: 1000, ..Default::default() });
    assert_eq!(shortest_solution(&env), Some(17));
}

#[test]
fn every_random_layout_is_solvable() {
    let mut env = KeyDoor::new(KeyDoorConfig {
        random_start: true,
        random_key: true,
        max_steps: 1000,
        ..Default::default()
    });
    for seed in 0..50 {
        env.reset(Some(seed));
        let len =
            shortest_solution(&env).unwrap_or_else(|| panic!("seed {seed} unsolvable:\n{}", env.render()));
        assert!(len >= 3, "seed {seed}: at least pickup, one move and the door");
    }
}

#[test]
fn custom_map_from_config_string() {
    let map = "
        #######
        #A...K#
        ###D###
    ";
    let mut env = KeyDoor::new(KeyDoorConfig { map: map.into(), ..Default::default() });
    assert_eq!(env.size(), (7, 3));
    assert_eq!(shortest_solution(&env), Some(4 + 1 + 2 + 1));
    let mut ret = 0.0;
    for a in
        [KeyDoor::RIGHT; 4].into_iter().chain([KeyDoor::PICKUP, KeyDoor::LEFT, KeyDoor::LEFT, KeyDoor::DOWN])
    {
        let step = env.step(a);
        ret += step.reward;
        assert_eq!(step.info.episode_score as f32, ret);
    }
    assert!((ret - 1.1).abs() < 1e-6);
}

#[test]
fn reset_none_continues_the_generator() {
    let config = KeyDoorConfig { random_start: true, random_key: true, ..Default::default() };
    let draws = |first_seed| {
        let mut env = KeyDoor::new(config.clone());
        env.reset(Some(first_seed));
        (0..20)
            .map(|_| {
                env.reset(None);
                (env.agent(), env.key())
            })
            .collect::<Vec<_>>()
    };
    let a = draws(9);
    assert_eq!(a, draws(9));
    assert_ne!(a, draws(10));
    assert!(a.windows(2).any(|w| w[0] != w[1]), "reset(None) must draw afresh");
}
