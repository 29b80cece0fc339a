//! The executor against a direct computation from a scripted environment: frames, rewards,
//! discounts and `L` for arbitrary macros, early stops and life-loss rules; the vector
//! executor against sequential copies; and the toy environments' known macro numbers.

mod common;

use common::{vector, End, Script, NUM_ACTIONS};
use macro_actions::{ActionPool, ExecutorConfig, Macro, MacroEnv, MacroOutcome, MacroVecEnv};
use proptest::collection::vec;
use proptest::prelude::*;
use rl_env::{Corridor, CorridorConfig, Env, TimeLimit};

const T: usize = 24;

fn macro_env(
    script: Script,
    macros: Vec<Vec<usize>>,
    gamma: f64,
    life_loss_terminal: bool,
) -> MacroEnv<Script> {
    let pool = ActionPool::for_env(script.spec(), macros.into_iter().map(Macro::new).collect()).unwrap();
    MacroEnv::new(script, pool, ExecutorConfig { gamma, life_loss_terminal }).unwrap()
}

fn script_strategy() -> impl Strategy<Value = Script> {
    (
        vec(-5.0f32..5.0, T),
        vec(1u32..6, T),
        vec(prop::bool::weighted(0.1), T),
        prop::option::of(prop_oneof![
            (0..T).prop_map(|at| End::Terminated { at }),
            (0..T).prop_map(|at| End::Truncated { at })
        ]),
        any::<bool>(),
    )
        .prop_map(|(rewards, frames, life_lost, end, terminate_on_life_loss)| {
            let mut s = Script::new(rewards, frames, life_lost, end);
            s.terminate_on_life_loss = terminate_on_life_loss;
            s
        })
}

proptest! {
    /// One macro from the start of an episode, every field checked against the script.
    #[test]
    fn one_macro_matches_a_direct_computation(
        script in script_strategy(),
        seq in vec(0..NUM_ACTIONS, 2..10),
        gamma in 0.0f64..=1.0,
        life_loss_terminal: bool,
    ) {
        let s = script.clone();
        let mut env = macro_env(script, vec![seq.clone()], gamma, life_loss_terminal);
        env.reset(Some(0));
        let step = env.step_macro(NUM_ACTIONS);
        let out = step.outcome;

        // Where the macro must stop: the first step that ends the episode or (under the
        // protocol, or because the env itself ends there) loses a life, else its last step.
        let ends_at = |i: usize| matches!(s.end, Some(End::Terminated { at } | End::Truncated { at }) if at == i);
        let life_ends = |i: usize| s.life_lost[i] && (life_loss_terminal || s.terminate_on_life_loss);
        let l = (0..seq.len()).find(|&i| ends_at(i) || life_ends(i)).map_or(seq.len(), |i| i + 1);
        let last = l - 1;

        prop_assert_eq!(out.steps, l, "L");
        prop_assert_eq!(out.info.frames, s.frames[..l].iter().sum::<u32>(), "frames are the sum over the primitives taken");
        let want_reward: f64 = (0..l).map(|i| gamma.powi(i as i32) * f64::from(s.rewards[i])).sum();
        prop_assert!((f64::from(out.reward) - want_reward).abs() <= 1e-5 * (1.0 + want_reward.abs()), "reward {} vs {}", out.reward, want_reward);
        let want_raw: f64 = (0..l).map(|i| 10.0 * f64::from(s.rewards[i])).sum();
        prop_assert!((f64::from(out.info.raw_reward) - want_raw).abs() <= 1e-4 * (1.0 + want_raw.abs()));

        let terminated = matches!(s.end, Some(End::Terminated { at }) if at == last) || life_ends(last);
        let truncated = !terminated && matches!(s.end, Some(End::Truncated { at }) if at == last);
        prop_assert_eq!((out.terminated, out.truncated), (terminated, truncated));
        prop_assert_eq!(out.inner_done, ends_at(last) || (s.life_lost[last] && s.terminate_on_life_loss));
        let want_discount = if terminated { 0.0 } else { gamma.powi(l as i32) };
        prop_assert!((f64::from(out.discount) - want_discount).abs() <= 1e-6, "discount {} vs {}", out.discount, want_discount);
        prop_assert_eq!(out.info.life_lost, s.life_lost[..l].iter().any(|&b| b));
        prop_assert_eq!(out.action, NUM_ACTIONS);
        prop_assert_eq!(vector(step.obs), vec![l as f32, seq[last] as f32, 1.0], "the obs after the last step taken");
        prop_assert_eq!(env.last(), &out);
    }

    /// A run of decisions mixing primitives and macros executes exactly the concatenation
    /// of the primitives taken, and its frames add up to the script's.
    #[test]
    fn frames_and_steps_add_up_over_a_run(
        macros in prop::collection::hash_set(vec(0..NUM_ACTIONS, 2..9), 1..5),
        choices in vec(any::<prop::sample::Index>(), 1..20),
        frames in vec(1u32..6, 200),
    ) {
        let macros: Vec<Vec<usize>> = macros.into_iter().collect();
        let script = Script::new(vec![0.5; 200], frames.clone(), vec![false; 200], None);
        let mut env = macro_env(script, macros, 0.9, false);
        let pool = env.pool().clone();
        env.reset(None);
        let mut executed = Vec::new();
        let mut total_frames = 0;
        for c in choices {
            let a = c.index(pool.len());
            let out = env.step_macro(a).outcome;
            prop_assert_eq!(out.steps, pool.actions(a).len(), "nothing ends the episode, so macros run in full");
            executed.extend_from_slice(pool.actions(a));
            total_frames += out.info.frames;
        }
        prop_assert_eq!(env.inner().t(), executed.len());
        prop_assert_eq!(total_frames, frames[..executed.len()].iter().sum::<u32>());
    }

    /// Termination at step `at` of the episode cuts the macro that contains it to the
    /// right length, wherever the macro started.
    #[test]
    fn a_macro_cut_short_by_termination_reports_the_right_l(at in 0usize..T, prefix in 0usize..6, len in 2usize..10) {
        let prefix = prefix.min(at);
        let script = Script::new(vec![1.0; T], vec![2; T], vec![false; T], Some(End::Terminated { at }));
        let mut env = macro_env(script, vec![vec![1; len]], 0.5, false);
        env.reset(None);
        for _ in 0..prefix {
            env.step_macro(0);
        }
        let mut outcomes: Vec<MacroOutcome> = Vec::new();
        while outcomes.last().is_none_or(|o| !o.done()) {
            outcomes.push(env.step_macro(NUM_ACTIONS).outcome);
        }
        let last = outcomes.last().unwrap();
        // Steps before this macro: `prefix` primitives and the full macros before it.
        let before = prefix + len * (outcomes.len() - 1);
        prop_assert_eq!(last.steps, at + 1 - before);
        prop_assert!(last.terminated && !last.truncated);
        prop_assert_eq!(last.discount, 0.0);
        prop_assert_eq!(last.info.frames as usize, 2 * last.steps);
        prop_assert!(outcomes[..outcomes.len() - 1].iter().all(|o| o.steps == len && !o.done()));
    }
}

/// A game's end is the env's word, not a guess from lives: a cap (or game over) that falls
/// on a step that also cost a life ends the game with lives left, and a lost life that ends
/// only an episode does not.
#[test]
fn the_game_end_comes_from_the_env_whatever_the_lives() {
    let life_at_2 = (0..10).map(|t| t == 2).collect::<Vec<_>>();
    let capped = Script::new(vec![1.0; 10], vec![1; 10], life_at_2.clone(), Some(End::Truncated { at: 2 }));
    let mut env = macro_env(capped, vec![vec![0, 1, 2, 0]], 0.5, false);
    env.reset(Some(0));
    let o = env.step_macro(3).outcome;
    assert_eq!((o.steps, o.truncated, o.info.life_lost, o.info.lives), (3, true, true, 99));
    assert!(o.info.game_over, "the cap ended the game although a life was lost on that step");

    let mut episodic = Script::new(vec![1.0; 10], vec![1; 10], life_at_2, Some(End::Terminated { at: 5 }));
    episodic.terminate_on_life_loss = true;
    let mut env = macro_env(episodic, vec![vec![0, 1, 2, 0]], 0.5, false);
    env.reset(Some(0));
    let o = env.step_macro(3).outcome;
    assert_eq!((o.steps, o.terminated, o.info.life_lost), (3, true, true));
    assert!(!o.info.game_over, "a lost life ended the episode, not the game");
}

#[test]
fn life_loss_ends_the_macro_only_under_the_protocol() {
    let life_at_1 = || Script::new(vec![1.0; 10], vec![1; 10], (0..10).map(|t| t == 1).collect(), None);
    // Off: the macro plays through the lost life.
    let mut env = macro_env(life_at_1(), vec![vec![0, 1, 2, 0]], 0.5, false);
    env.reset(Some(0));
    let o = env.step_macro(3).outcome;
    assert_eq!((o.steps, o.terminated, o.info.life_lost, o.info.lives), (4, false, true, 99));
    assert_eq!(o.discount, 0.0625);
    // On, and the env plays on through the lost life: a terminal transition, and
    // `reset(None)` continues the game where it was.
    let mut env = macro_env(life_at_1(), vec![vec![0, 1, 2, 0]], 0.5, true);
    env.reset(Some(0));
    let s = env.step_macro(3);
    let obs = vector(s.obs);
    let o = s.outcome;
    assert_eq!((o.steps, o.terminated, o.truncated, o.inner_done, o.discount), (2, true, false, false, 0.0));
    assert_eq!(o.reward, 1.5);
    assert_eq!(vector(env.reset(None)), obs, "continued, not restarted");
    assert_eq!(env.inner().t(), 2);
    let o = env.step_macro(3).outcome;
    assert_eq!((o.steps, o.terminated), (4, false), "the next life plays on from step 2");
    assert_eq!(env.inner().t(), 6);
    // `reset(Some(seed))` always restarts.
    let mut env = macro_env(life_at_1(), vec![vec![0, 1, 2, 0]], 0.5, true);
    env.reset(None);
    env.step_macro(3);
    assert_eq!(vector(env.reset(Some(3))), [0.0, 0.0, 2.0]);
    // On, and the env itself ends its episode at the life loss: an ordinary termination,
    // and `reset(None)` restarts the wrapped env, which decides what a new episode is.
    let mut script = life_at_1();
    script.terminate_on_life_loss = true;
    let mut env = macro_env(script, vec![vec![0, 1, 2, 0]], 0.5, true);
    env.reset(None);
    let o = env.step_macro(3).outcome;
    assert_eq!((o.steps, o.terminated, o.inner_done), (2, true, true));
    assert_eq!(vector(env.reset(None)), [0.0, 0.0, 2.0]);
}

#[test]
fn the_corridor_right_macro_numbers_match_rl_envs_reference() {
    // rl-env's tests/macro_actions.rs: RIGHT x 8 covers the 49 cells of the default corridor
    // in six full macros and one of a single step.
    let env = Corridor::new(CorridorConfig::default());
    let pool = ActionPool::for_env(env.spec(), vec![Macro::new(vec![Corridor::RIGHT; 8])]).unwrap();
    let mut env = MacroEnv::new(env, pool, ExecutorConfig { gamma: 0.9, life_loss_terminal: false }).unwrap();
    env.reset(Some(0));
    let mut outcomes = Vec::new();
    while outcomes.last().is_none_or(|o: &MacroOutcome| !o.done()) {
        outcomes.push(env.step_macro(4).outcome);
    }
    assert_eq!(outcomes.len(), 7);
    assert!(outcomes[..6].iter().all(|o| o.steps == 8 && o.info.frames == 8 && o.reward == 0.0));
    assert!((f64::from(outcomes[0].discount) - 0.9f64.powi(8)).abs() < 1e-7);
    let last = outcomes[6];
    assert_eq!(
        (last.steps, last.info.frames, last.reward, last.discount, last.terminated),
        (1, 1, 1.0, 0.0, true)
    );
    assert_eq!(outcomes.iter().map(|o| o.info.frames).sum::<u32>(), 49);
}

/// Plays the same pool actions on a `MacroVecEnv` and on sequential `MacroEnv`s with the
/// vector env's seeding and autoreset rule; everything must agree.
#[test]
fn vector_executor_matches_sequential_copies() {
    let make = || {
        TimeLimit::new(
            Corridor::new(CorridorConfig { length: 6, max_steps: 40, slip_prob: 0.3, ..Default::default() }),
            9,
        )
    };
    let n = 5;
    let spec = make().spec().clone();
    let pool = ActionPool::for_env(
        &spec,
        [vec![1, 1, 1], vec![1, 1, 1, 1, 1], vec![0, 1, 2, 1]].map(Macro::new).to_vec(),
    )
    .unwrap();
    let config = ExecutorConfig { gamma: 0.95, life_loss_terminal: false };
    let mut venv = MacroVecEnv::new((0..n).map(|_| make()).collect(), pool.clone(), config.clone()).unwrap();
    let mut seq: Vec<MacroEnv<_>> =
        (0..n).map(|_| MacroEnv::new(make(), pool.clone(), config.clone()).unwrap()).collect();
    venv.reset(Some(10));
    for (i, e) in seq.iter_mut().enumerate() {
        e.reset(Some(10 + i as u64));
    }
    let obs_len = spec.observation.len();
    let (mut dones, mut truncations) = (0, 0);
    for t in 0..200 {
        let actions: Vec<usize> = (0..n).map(|i| (t * 7 + i * 3) % pool.len()).collect();
        venv.step(&actions);
        for (i, e) in seq.iter_mut().enumerate() {
            let s = e.step_macro(actions[i]);
            let (out, obs) = (s.outcome, vector(s.obs));
            assert_eq!(venv.outcomes()[i], out, "step {t}, copy {i}");
            assert_eq!(venv.results()[i].reward, out.reward);
            let row = vector(venv.obs())[i * obs_len..(i + 1) * obs_len].to_vec();
            if out.done() {
                dones += 1;
                truncations += usize::from(out.truncated);
                assert_eq!(vector(venv.final_obs(i)), obs);
                assert_eq!(row, vector(e.reset(None)), "autoreset");
            } else {
                assert_eq!(row, obs);
            }
        }
    }
    assert!(
        dones > 50 && truncations > 10,
        "the test should cover both ends: {dones} done, {truncations} truncated"
    );
}

#[test]
fn vector_executor_reports_per_copy_lengths_and_frames() {
    let envs: Vec<Corridor> =
        (0..3).map(|_| Corridor::new(CorridorConfig { length: 5, ..Default::default() })).collect();
    let pool =
        ActionPool::for_env(envs[0].spec(), vec![Macro::new(vec![1; 6]), Macro::new(vec![2, 2])]).unwrap();
    let mut venv = MacroVecEnv::new(envs, pool, ExecutorConfig::default()).unwrap();
    assert_eq!((venv.len(), venv.spec().num_actions(), venv.pool().len()), (3, 6, 6));
    venv.reset(Some(0));
    venv.step(&[4, 5, 1]);
    let o = venv.outcomes();
    assert_eq!([o[0].steps, o[1].steps, o[2].steps], [4, 2, 1], "RIGHT x 6 stops at the goal after 4");
    assert!(o[0].terminated && !o[1].done() && !o[2].done());
    assert_eq!([o[0].info.frames, o[1].info.frames, o[2].info.frames], [4, 2, 1]);
    assert_eq!(vector(venv.final_obs(0)), [0.0, 0.0, 0.0, 0.0, 1.0]);
}
