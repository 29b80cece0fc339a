//! Macro-actions matter in the toy environments: random primitive policies almost never see
//! the reward, the same random policy with one good macro added often does, and open-loop
//! sequences solve the tasks with exactly the specified return and frame count.

mod common;

use common::{run_macro, MacroOutcome};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rl_env::{Corridor, CorridorConfig, Env, KeyDoor, KeyDoorConfig};

const EPISODES: usize = 2000;

/// Plays `EPISODES` episodes choosing uniformly among `choices` (each a primitive or a macro)
/// at every decision point; returns how many reached the goal.
fn random_policy_solves<E: Env>(env: &mut E, choices: &[Vec<usize>], seed: u64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut solved = 0;
    for episode in 0..EPISODES {
        env.reset(Some(episode as u64));
        loop {
            let choice = &choices[rng.random_range(0..choices.len())];
            let out = run_macro(env, choice);
            if out.terminated {
                solved += 1;
            }
            if out.done() {
                break;
            }
        }
    }
    solved
}

fn primitives(n: usize) -> Vec<Vec<usize>> {
    (0..n).map(|a| vec![a]).collect()
}

#[test]
fn random_primitive_policy_almost_never_solves_the_corridor_but_one_macro_changes_that() {
    let mut env = Corridor::new(CorridorConfig::default());
    let plain = random_policy_solves(&mut env, &primitives(4), 1);
    let mut with_macro = primitives(4);
    with_macro.push(vec![Corridor::RIGHT; 8]);
    let boosted = random_policy_solves(&mut env, &with_macro, 1);
    // Reference rates from a 20 000-episode simulation of the same rules: 0 % with primitives
    // only, about 15 % with RIGHT x 8 added (so ~300 of 2000, sd ~16).
    assert!(plain <= 4, "random primitives solved {plain} of {EPISODES}");
    assert!(boosted >= 200, "random primitives + RIGHT x 8 solved only {boosted} of {EPISODES}");
}

#[test]
fn open_loop_right_macros_solve_the_corridor_in_exactly_length_minus_one_frames() {
    let mut env = Corridor::new(CorridorConfig::default());
    env.reset(Some(0));
    let right8 = [Corridor::RIGHT; 8];
    let mut outcomes = Vec::new();
    loop {
        let out = run_macro(&mut env, &right8);
        outcomes.push(out);
        if out.done() {
            break;
        }
    }
    // 49 cells to cover: six full macros (48 frames), then the seventh stops after one step.
    assert_eq!(outcomes.len(), 7);
    assert!(outcomes[..6].iter().all(
        |o| *o == MacroOutcome { reward: 0.0, steps: 8, frames: 8, terminated: false, truncated: false }
    ));
    assert_eq!(
        outcomes[6],
        MacroOutcome { reward: 1.0, steps: 1, frames: 1, terminated: true, truncated: false }
    );
    assert_eq!(outcomes.iter().map(|o| o.frames).sum::<u32>(), 49);
}

#[test]
fn key_door_solved_by_five_open_loop_macros_with_exact_return() {
    let (u, d, l, r, p) = (KeyDoor::UP, KeyDoor::DOWN, KeyDoor::LEFT, KeyDoor::RIGHT, KeyDoor::PICKUP);
    let plan: [&[usize]; 5] = [&[d; 4], &[r; 6], &[u, p, d], &[l; 3], &[d]];
    let mut env = KeyDoor::new(KeyDoorConfig::default());
    env.reset(Some(0));
    let outcomes: Vec<MacroOutcome> = plan.iter().map(|m| run_macro(&mut env, m)).collect();
    let rewards: Vec<f32> = outcomes.iter().map(|o| o.reward).collect();
    assert_eq!(rewards, [0.0, 0.0, 0.1, 0.0, 1.0]);
    assert_eq!(outcomes.iter().map(|o| o.frames).sum::<u32>(), 17);
    assert!(outcomes[4].terminated && outcomes[..4].iter().all(|o| !o.done()));
}

#[test]
fn random_primitive_policy_rarely_opens_the_door_while_corridor_macros_help() {
    let mut env = KeyDoor::new(KeyDoorConfig::default());
    let plain = random_policy_solves(&mut env, &primitives(5), 2);
    let mut with_macros = primitives(5);
    with_macros.extend([vec![KeyDoor::DOWN; 4], vec![KeyDoor::RIGHT; 6], vec![KeyDoor::LEFT; 3]]);
    let boosted = random_policy_solves(&mut env, &with_macros, 2);
    // Measured with these seeds: 1 % of episodes with primitives, about 3 % with the macros.
    assert!(plain < EPISODES / 20, "random primitives solved {plain} of {EPISODES}");
    assert!(boosted > 2 * plain, "macros should help: {boosted} vs {plain} of {EPISODES}");
}
