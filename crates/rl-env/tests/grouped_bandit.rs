//! `GroupedBandit` measured from outside: the rewards depend on the context and the action's
//! group only, and the best group is worth what the docs promise. Every tolerance is 5
//! standard errors of the estimate, from the configured noise and the sample counts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rl_env::{Env, GroupedBandit, GroupedBanditConfig};

/// Reward sums per (context, action), from playing a policy.
struct Tally {
    actions: usize,
    count: Vec<f64>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl Tally {
    /// Plays `steps` single-step episodes of `env` with `policy(context, t)`.
    fn play(env: &mut GroupedBandit, steps: usize, mut policy: impl FnMut(usize, usize) -> usize) -> Self {
        let (contexts, actions) = (env.config().contexts, env.config().actions);
        let cells = contexts * actions;
        let mut tally =
            Tally { actions, count: vec![0.0; cells], sum: vec![0.0; cells], sum_sq: vec![0.0; cells] };
        env.reset(Some(7));
        for t in 0..steps {
            let context = env.context();
            let action = policy(context, t);
            let step = env.step(action);
            let (i, r) = (context * actions + action, f64::from(step.reward));
            tally.count[i] += 1.0;
            tally.sum[i] += r;
            tally.sum_sq[i] += r * r;
            if step.done() {
                env.reset(None);
            }
        }
        tally
    }

    fn n(&self, context: usize, action: usize) -> f64 {
        self.count[context * self.actions + action]
    }

    fn mean(&self, context: usize, action: usize) -> f64 {
        self.sum[context * self.actions + action] / self.n(context, action)
    }

    fn sd(&self, context: usize, action: usize) -> f64 {
        let i = context * self.actions + action;
        (self.sum_sq[i] / self.count[i] - self.mean(context, action).powi(2)).sqrt()
    }

    /// Mean reward over everything played.
    fn overall_mean(&self) -> f64 {
        self.sum.iter().sum::<f64>() / self.count.iter().sum::<f64>()
    }
}

fn bandit(noise: f32) -> GroupedBandit {
    GroupedBandit::new(GroupedBanditConfig { noise, ..Default::default() })
}

/// Every action in turn, so each (context, action) gets about `steps / (A * C)` samples.
fn round_robin(env: &mut GroupedBandit, per_cell: usize) -> Tally {
    let (contexts, actions) = (env.config().contexts, env.config().actions);
    Tally::play(env, per_cell * contexts * actions, |_, t| t % actions)
}

/// All pairs of distinct actions, with whether they share a group.
fn pairs(env: &GroupedBandit) -> Vec<(usize, usize, bool)> {
    let groups = env.groups();
    let a = groups.len();
    (0..a).flat_map(|i| (i + 1..a).map(move |j| (i, j, groups[i] == groups[j]))).collect()
}

#[test]
fn actions_of_one_group_share_their_reward_distribution() {
    let noise = 1.0;
    let mut env = bandit(noise as f32);
    let tally = round_robin(&mut env, 2_000);
    let mut compared = 0;
    for (a, b, same) in pairs(&env) {
        if !same {
            continue;
        }
        for c in 0..env.config().contexts {
            let (na, nb) = (tally.n(c, a), tally.n(c, b));
            // Means: the difference of two sample means has sd noise * sqrt(1/na + 1/nb).
            let tolerance = 5.0 * noise * (1.0 / na + 1.0 / nb).sqrt();
            let gap = (tally.mean(c, a) - tally.mean(c, b)).abs();
            assert!(gap < tolerance, "a{a} and a{b} in context {c}: means differ by {gap} > {tolerance}");
            // Spreads: a sample sd of n Gaussian draws has sd about noise / sqrt(2n).
            for (action, n) in [(a, na), (b, nb)] {
                let off = (tally.sd(c, action) - noise).abs();
                assert!(off < 5.0 * noise / (2.0 * n).sqrt(), "a{action} in context {c}: sd off by {off}");
            }
            compared += 1;
        }
    }
    // 4 groups of 4 actions: 4 * C(4, 2) = 24 pairs, in 8 contexts.
    assert_eq!(compared, 24 * 8);
}

#[test]
fn actions_of_different_groups_differ_as_the_structure_says() {
    // Less noise, so that the smallest difference between groups, 0.5 / (G - 1) = 1/6, stands
    // well clear of the tolerance (5 * 0.25 * sqrt(2 / 2000) ~ 0.04).
    let noise = 0.25;
    let mut env = bandit(noise as f32);
    let tally = round_robin(&mut env, 2_000);
    let mut compared = 0;
    for (a, b, same) in pairs(&env) {
        for c in 0..env.config().contexts {
            let designed = f64::from(env.mean_reward(c, a) - env.mean_reward(c, b));
            assert_eq!(designed == 0.0, same, "a{a}, a{b}, context {c}: equal means exactly within a group");
            if same {
                continue;
            }
            assert!(designed.abs() >= 0.5 / 3.0 - 1e-6, "groups are at least 1/6 apart: {designed}");
            let measured = tally.mean(c, a) - tally.mean(c, b);
            let tolerance = 5.0 * noise * (1.0 / tally.n(c, a) + 1.0 / tally.n(c, b)).sqrt();
            assert!(
                (measured - designed).abs() < tolerance,
                "a{a} - a{b} in context {c}: measured {measured}, designed {designed}"
            );
            compared += 1;
        }
    }
    // 120 pairs of 16 actions, less the 24 within groups, in 8 contexts.
    assert_eq!(compared, (120 - 24) * 8);
}

#[test]
fn the_optimal_policy_beats_a_random_one_by_the_designed_margin() {
    let mut env = bandit(1.0);
    let steps = 200_000;
    let best_action: Vec<usize> = (0..env.config().contexts)
        .map(|c| env.groups().iter().position(|&g| g == env.best_group(c)).unwrap())
        .collect();
    let optimal = Tally::play(&mut env, steps, |c, _| best_action[c]).overall_mean();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let random = Tally::play(&mut env, steps, |_, _| rng.random_range(0..16)).overall_mean();
    // Optimal: BEST_MEAN = 1 on every step, sd = noise = 1.
    // Random, G = 4 groups of 4: (1 + 1/3 + 1/6 + 0) / 4 = 0.375, sd sqrt(1 + 0.144) < 1.1
    // (the noise plus the spread of the four means).
    let tolerance = |sd: f64| 5.0 * sd / (steps as f64).sqrt();
    assert!((optimal - 1.0).abs() < tolerance(1.0), "optimal {optimal}");
    assert!((random - 0.375).abs() < tolerance(1.1), "random {random}");
    assert!(optimal - random > 0.625 - tolerance(1.0) - tolerance(1.1), "margin {}", optimal - random);
}
