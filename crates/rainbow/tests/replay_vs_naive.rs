//! The replay against a naive reference that keeps every observation whole.
//!
//! Random episodes on several env copies, with macro-actions of random length (so one
//! decision adds 1 to `C` frames), random per-transition discounts, terminals and
//! truncations, and a ring small enough to wrap many times. For every transition the
//! replay can sample, the rebuilt stacks, the action, the n-step return and the bootstrap
//! discount must equal a direct `f64` computation from the naive record; and the set of
//! sampleable transitions must be exactly the documented one.

use proptest::prelude::*;
use rainbow::{Batch, NStepConfig, PrioritizedReplay, ReplayConfig, Transition};
use rand::SeedableRng;
use rl_env::{Obs, ObsSpec};

/// One decision of the generated run.
#[derive(Clone, Debug)]
struct Op {
    env: usize,
    /// Primitive steps the action took: the env pushes that many frames.
    steps: usize,
    reward: f32,
    discount: f32,
    /// 0: terminated, 1: truncated, otherwise the episode goes on.
    end: u8,
    /// For the next episode start: repeat the first frame (as `ale-env` does) or begin with
    /// `C` distinct frames.
    repeat_first: bool,
}

fn op() -> impl Strategy<Value = Op> {
    let discount = prop_oneof![1 => Just(1.0f32), 1 => Just(0.0f32), 6 => 0.0f32..=1.0];
    (0usize..3, 1usize..7, -2.0f32..2.0, discount, 0u8..12, any::<bool>()).prop_map(
        |(env, steps, reward, discount, end, repeat_first)| Op {
            env,
            steps,
            reward,
            discount,
            end,
            repeat_first,
        },
    )
}

/// An element type of observations, with a way to make frames from an id.
trait Elem: Copy + PartialEq + std::fmt::Debug {
    fn obs(s: &[Self]) -> Obs<'_>;
    fn from_obs(o: Obs<'_>) -> &[Self];
    fn frame(id: u32, len: usize, collide: bool) -> Vec<Self>;
}

impl Elem for u8 {
    fn obs(s: &[u8]) -> Obs<'_> {
        Obs::Pixels(s)
    }
    fn from_obs(o: Obs<'_>) -> &[u8] {
        match o {
            Obs::Pixels(p) => p,
            Obs::Vector(_) => unreachable!(),
        }
    }
    /// Unique frames carry their id; colliding ones are one of 4 patterns, so the
    /// replay's frame reuse sees many equal frames that belong to different steps.
    fn frame(id: u32, len: usize, collide: bool) -> Vec<u8> {
        if collide {
            vec![(id % 4) as u8; len]
        } else {
            (0..len).map(|i| id.to_le_bytes()[i % 4]).collect()
        }
    }
}

impl Elem for f32 {
    fn obs(s: &[f32]) -> Obs<'_> {
        Obs::Vector(s)
    }
    fn from_obs(o: Obs<'_>) -> &[f32] {
        match o {
            Obs::Vector(v) => v,
            Obs::Pixels(_) => unreachable!(),
        }
    }
    fn frame(id: u32, len: usize, collide: bool) -> Vec<f32> {
        let id = if collide { id % 3 } else { id };
        (0..len).map(|i| id as f32 + i as f32 / 16.0).collect()
    }
}

/// What the naive buffer keeps of one episode.
struct Episode<T> {
    env: usize,
    /// Every state, whole: `states[t]` is the observation before transition `t`; the last
    /// one, once `done`, is the final observation.
    states: Vec<Vec<T>>,
    /// `(R, d)` with `d = 0` for a terminal.
    transitions: Vec<(f32, f32)>,
    /// Absolute slot of each state's newest frame in its copy's stream, counting every
    /// frame the documented storage writes (the first stack whole, then only new frames).
    positions: Vec<u64>,
    done: bool,
}

struct Run {
    stack: usize,
    frame_len: usize,
    n: usize,
    num_envs: usize,
    per_env: usize,
    collide: bool,
}

/// Feeds `ops` to the replay and to the naive record, checking everything at a few points.
fn check<T: Elem>(run: &Run, spec: &ObsSpec, ops: &[Op]) -> Result<(), TestCaseError> {
    let (c, f) = (run.stack, run.frame_len);
    let config = ReplayConfig { capacity: run.per_env * run.num_envs, ..ReplayConfig::default() };
    let n_step = NStepConfig { n: run.n, gamma: 0.99 };
    let mut replay = PrioritizedReplay::new(&config, &n_step, spec, run.num_envs).unwrap();
    let mut next_frame = 0u32;
    let frame = |next_frame: &mut u32| {
        *next_frame += 1;
        T::frame(*next_frame, f, run.collide)
    };
    let mut episodes: Vec<Episode<T>> = Vec::new();
    // Per copy: the episode in progress (index into `episodes`), and slots written.
    let mut current: Vec<Option<usize>> = vec![None; run.num_envs];
    let mut written = vec![0u64; run.num_envs];
    // Action ids are unique, so a sampled transition names its naive record.
    let mut by_action: Vec<(usize, usize)> = Vec::new();

    for (k, op) in ops.iter().enumerate() {
        let env = op.env % run.num_envs;
        match current[env] {
            None => {
                let first = frame(&mut next_frame);
                let mut obs = Vec::with_capacity(c * f);
                for i in 0..c {
                    if op.repeat_first || i + 1 == c {
                        obs.extend_from_slice(&first);
                    } else {
                        obs.extend(frame(&mut next_frame));
                    }
                }
                replay.start_episode(env, T::obs(&obs)).unwrap();
                written[env] += c as u64;
                episodes.push(Episode {
                    env,
                    states: vec![obs],
                    transitions: vec![],
                    positions: vec![written[env] - 1],
                    done: false,
                });
                current[env] = Some(episodes.len() - 1);
            }
            Some(e) => {
                // The env runs `steps` primitives, pushing one frame each.
                let mut obs = episodes[e].states.last().unwrap().clone();
                for _ in 0..op.steps {
                    obs.rotate_left(f);
                    let new = frame(&mut next_frame);
                    obs[(c - 1) * f..].copy_from_slice(&new);
                }
                let (terminated, truncated) = (op.end == 0, op.end == 1);
                let action = by_action.len();
                let t =
                    Transition { action, reward: op.reward, discount: op.discount, terminated, truncated };
                replay.add(env, &t, T::obs(&obs)).unwrap();
                by_action.push((e, episodes[e].transitions.len()));
                // Unique frames: exactly min(steps, C) are new. Colliding frames may be
                // stored fewer times, so positions are only tracked for unique ones.
                written[env] += op.steps.min(c) as u64;
                let ep = &mut episodes[e];
                ep.transitions.push((op.reward, if terminated { 0.0 } else { op.discount }));
                ep.states.push(obs);
                ep.positions.push(written[env] - 1);
                if terminated || truncated {
                    ep.done = true;
                    current[env] = None;
                }
            }
        }
        if k % 5 == 4 {
            // Spread the priorities, so weights and the min tree are tested under eviction.
            let live: Vec<usize> = replay.sampleable().collect();
            let values: Vec<f32> =
                (0..live.len()).map(|i| (i * 7 + k) as f32 % 5.0 + op.reward.abs()).collect();
            replay.update_priorities(&live, &values).unwrap();
        }
        if k % 40 == 39 || k + 1 == ops.len() {
            compare(run, spec, &replay, &episodes, &by_action, &written)?;
        }
    }
    Ok(())
}

/// Every sampleable transition against the naive record, and the sampleable set itself.
fn compare<T: Elem>(
    run: &Run,
    spec: &ObsSpec,
    replay: &PrioritizedReplay,
    episodes: &[Episode<T>],
    by_action: &[(usize, usize)],
    written: &[u64],
) -> Result<(), TestCaseError> {
    let indices: Vec<usize> = replay.sampleable().collect();
    prop_assert_eq!(indices.len(), replay.len());
    let mut seen = Vec::new();
    if !indices.is_empty() {
        let mut batch = Batch::new(indices.len(), spec);
        let step = 7;
        replay.gather(&indices, step, &mut batch).unwrap();
        // Reference weights: (P(i) / min_k P(k))^-beta, the min found by brute force.
        let probs: Vec<f64> = indices.iter().map(|&i| replay.probability(i).unwrap()).collect();
        let p_min = probs.iter().copied().fold(f64::INFINITY, f64::min);
        let beta = replay.beta(step);
        for (k, p) in probs.iter().enumerate() {
            let w = (p / p_min).powf(-beta);
            prop_assert!(
                (batch.weights()[k] as f64 - w).abs() <= 1e-6 * w,
                "weight {} vs {}",
                batch.weights()[k],
                w
            );
        }
        let len = spec.len();
        let (obs, next) = (T::from_obs(batch.obs()), T::from_obs(batch.next_obs()));
        for k in 0..indices.len() {
            let action = batch.actions()[k] as usize;
            let (e, t) = by_action[action];
            let ep = &episodes[e];
            seen.push(action);
            // Reference: the n-step return by its definition, in f64.
            let end = (t + run.n).min(ep.transitions.len());
            prop_assert!(ep.done || t + run.n <= ep.transitions.len(), "transition {} is incomplete", action);
            let (mut g, mut d) = (0.0f64, 1.0f64);
            for &(r, disc) in &ep.transitions[t..end] {
                g += d * r as f64;
                d *= disc as f64;
            }
            prop_assert_eq!(&obs[k * len..(k + 1) * len], &ep.states[t][..], "obs of transition {}", action);
            prop_assert_eq!(&next[k * len..(k + 1) * len], &ep.states[end][..], "next obs of {}", action);
            prop_assert!(
                (batch.returns()[k] as f64 - g).abs() <= 1e-5 * (1.0 + g.abs()),
                "G {} vs {}",
                batch.returns()[k],
                g
            );
            prop_assert!(
                (batch.discounts()[k] as f64 - d).abs() <= 1e-6,
                "D {} vs {}",
                batch.discounts()[k],
                d
            );
        }
        // Stratified sampling only ever returns sampleable transitions.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(indices.len() as u64);
        let mut small = Batch::new(7, spec);
        replay.sample(&mut rng, 0, &mut small).unwrap();
        prop_assert!(small.indices().iter().all(|i| indices.contains(i)));
    }
    if !run.collide {
        // The documented set: complete returns whose stack's oldest frame is still in the
        // ring (the last `per_env` slots written by the copy).
        let mut expected: Vec<usize> = Vec::new();
        for (action, &(e, t)) in by_action.iter().enumerate() {
            let ep = &episodes[e];
            let complete = ep.done || t + run.n <= ep.transitions.len();
            let oldest_kept = written[ep.env].saturating_sub(run.per_env as u64);
            if complete && ep.positions[t] + 1 >= oldest_kept + run.stack as u64 {
                expected.push(action);
            }
        }
        seen.sort_unstable();
        prop_assert_eq!(seen, expected);
    }
    Ok(())
}

fn run_strategy() -> impl Strategy<Value = (usize, usize, usize, usize, bool)> {
    // (stack C, n, env copies, extra slots per copy beyond the minimum, colliding frames)
    (1usize..=4, 1usize..=5, 1usize..=3, 0usize..40, any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pixel_stacks_and_returns_match_a_full_copy_buffer(
        (stack, n, num_envs, extra, collide) in run_strategy(),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let spec = ObsSpec::Pixels { channels: stack, height: 2, width: 3 };
        let run = Run { stack, frame_len: 6, n, num_envs, per_env: (n + 2) * stack + extra, collide };
        check::<u8>(&run, &spec, &ops)?;
    }

    #[test]
    fn vector_observations_and_returns_match_a_full_copy_buffer(
        (_, n, num_envs, extra, collide) in run_strategy(),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let spec = ObsSpec::Vector { len: 3 };
        let run = Run { stack: 1, frame_len: 3, n, num_envs, per_env: (n + 2) + extra, collide };
        check::<f32>(&run, &spec, &ops)?;
    }
}

#[test]
fn episode_starts_repeat_their_first_frame_and_never_show_the_previous_episode() {
    // Two episodes on one copy with 4-frame stacks of 1x1 frames; `ale-env` starts an
    // episode with its first frame repeated. Reference: the stacks written out by hand.
    let spec = ObsSpec::Pixels { channels: 4, height: 1, width: 1 };
    let config = ReplayConfig { capacity: 64, ..ReplayConfig::default() };
    let mut replay = PrioritizedReplay::new(&config, &NStepConfig { n: 1, gamma: 0.9 }, &spec, 1).unwrap();
    let step = |a, end| Transition::primitive(a, 0.0, 0.9, end, false);
    replay.start_episode(0, Obs::Pixels(&[1, 1, 1, 1])).unwrap();
    replay.add(0, &step(0, false), Obs::Pixels(&[1, 1, 1, 2])).unwrap();
    replay.add(0, &step(1, true), Obs::Pixels(&[1, 1, 2, 3])).unwrap();
    replay.start_episode(0, Obs::Pixels(&[9, 9, 9, 9])).unwrap();
    replay.add(0, &step(2, false), Obs::Pixels(&[9, 9, 9, 8])).unwrap();
    replay.add(0, &step(3, true), Obs::Pixels(&[9, 9, 8, 7])).unwrap();
    let indices: Vec<usize> = replay.sampleable().collect();
    let mut batch = Batch::new(4, &spec);
    replay.gather(&indices, 0, &mut batch).unwrap();
    let Obs::Pixels(obs) = batch.obs() else { unreachable!() };
    let Obs::Pixels(next) = batch.next_obs() else { unreachable!() };
    assert_eq!(batch.actions(), [0, 1, 2, 3]);
    assert_eq!(obs, [1, 1, 1, 1, 1, 1, 1, 2, 9, 9, 9, 9, 9, 9, 9, 8]);
    assert_eq!(next, [1, 1, 1, 2, 1, 1, 2, 3, 9, 9, 9, 8, 9, 9, 8, 7]);
    assert_eq!(batch.discounts(), [0.9, 0.0, 0.9, 0.0]);
}
