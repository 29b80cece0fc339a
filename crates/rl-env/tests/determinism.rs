//! Same seed and same actions give the same observations and rewards, for arbitrary action
//! sequences and every source of randomness the environments have.

mod common;

use common::vector;
use proptest::collection::vec;
use proptest::prelude::*;
use rl_env::{Corridor, CorridorConfig, Env, GroupedBandit, GroupedBanditConfig, KeyDoor, KeyDoorConfig};

type Trace = Vec<(Vec<f32>, f32, bool, bool, f64)>;

/// Plays `actions` from `reset(Some(seed))`, resetting with `None` whenever an episode ends.
fn trace<E: Env>(env: &mut E, seed: u64, actions: &[usize]) -> Trace {
    let mut out = vec![(vector(env.reset(Some(seed))), 0.0, false, false, 0.0)];
    for &a in actions {
        let s = env.step(a % env.spec().num_actions());
        let done = s.done();
        out.push((vector(s.obs), s.reward, s.terminated, s.truncated, s.info.episode_score));
        if done {
            out.push((vector(env.reset(None)), 0.0, false, false, 0.0));
        }
    }
    out
}

fn slippery() -> Corridor {
    Corridor::new(CorridorConfig { length: 8, max_steps: 20, slip_prob: 0.3, step_penalty: -0.01 })
}

fn shuffled() -> KeyDoor {
    KeyDoor::new(KeyDoorConfig { random_start: true, random_key: true, max_steps: 30, ..Default::default() })
}

/// Noisy rewards and multi-step episodes: both the context draws and the noise are random.
fn noisy_bandit() -> GroupedBandit {
    GroupedBandit::new(GroupedBanditConfig { actions: 6, groups: 3, episode_length: 5, ..Default::default() })
}

proptest! {
    #[test]
    fn corridor_is_deterministic_given_the_seed(seed: u64, actions in vec(0usize..4, 0..300)) {
        let a = trace(&mut slippery(), seed, &actions);
        // A used environment, reseeded, must forget its past.
        let mut used = slippery();
        trace(&mut used, seed.wrapping_add(1), &actions);
        prop_assert_eq!(&a, &trace(&mut used, seed, &actions));
        prop_assert_eq!(a, trace(&mut slippery(), seed, &actions));
    }

    #[test]
    fn key_door_is_deterministic_given_the_seed(seed: u64, actions in vec(0usize..5, 0..300)) {
        let a = trace(&mut shuffled(), seed, &actions);
        let mut used = shuffled();
        trace(&mut used, seed.wrapping_add(1), &actions);
        prop_assert_eq!(&a, &trace(&mut used, seed, &actions));
        prop_assert_eq!(a, trace(&mut shuffled(), seed, &actions));
    }

    #[test]
    fn grouped_bandit_is_deterministic_given_the_seed(seed: u64, actions in vec(0usize..6, 0..300)) {
        let a = trace(&mut noisy_bandit(), seed, &actions);
        let mut used = noisy_bandit();
        trace(&mut used, seed.wrapping_add(1), &actions);
        prop_assert_eq!(&a, &trace(&mut used, seed, &actions));
        prop_assert_eq!(a, trace(&mut noisy_bandit(), seed, &actions));
    }
}

#[test]
fn different_seeds_give_different_slips_and_layouts() {
    let actions: Vec<usize> = (0..200).map(|t| t % 4).collect();
    assert_ne!(trace(&mut slippery(), 1, &actions), trace(&mut slippery(), 2, &actions));
    assert_ne!(trace(&mut shuffled(), 1, &actions), trace(&mut shuffled(), 2, &actions));
    assert_ne!(trace(&mut noisy_bandit(), 1, &actions), trace(&mut noisy_bandit(), 2, &actions));
}
