//! Summary statistics: over seeds, the mean, the sample standard deviation and the 95%
//! t-interval that `masp plot` and `masp report` give; over games, the aggregate metrics of
//! Agarwal et al. (2021), "Deep Reinforcement Learning at the Edge of the Statistical
//! Precipice", with their stratified bootstrap intervals, as its library rliable defines them.
//!
//! ```text
//! mean = sum(x) / n;  sd = sqrt(sum((x - mean)^2) / (n - 1));  ci95 = t(0.975, n - 1) * sd / sqrt(n)
//! ```
//!
//! Aggregates take a score table `games[g][r]`: run `r` of game `g` (e.g. one seed's
//! human-normalised score); games may have different numbers of runs.
//!
//! ```text
//! mean, median     of the per-game means over runs
//! IQM              mean of the middle 50% of all runs of all games pooled (25% cut off each
//!                  end, floor(n / 4) values each: scipy.stats.trim_mean(x, 0.25))
//! optimality gap   gamma - mean(min(x, gamma)) over all runs pooled, gamma = 1 (human)
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Two-sided 95% quantiles of Student's t, `t(0.975, df)` for `df` = 1..=30 (standard
/// tables, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// `t(0.975, df)`; above 30 degrees of freedom `1.96 + 2.4 / df`, within 0.002 of the
/// table at 40, 60 and 120 and tending to the normal's 1.96.
pub fn t_975(df: usize) -> f64 {
    assert!(df > 0, "a t-interval needs at least 2 values");
    T_975.get(df - 1).copied().unwrap_or(1.96 + 2.4 / df as f64)
}

/// The mean of `xs` and their sample standard deviation (`n - 1` in the denominator;
/// `None` for fewer than 2 values).
pub fn mean_sd(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.len() > 1).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, sd)
}

/// Half the width of the 95% t-interval of the mean of `xs` (`None` for fewer than 2).
pub fn ci95_half_width(xs: &[f64]) -> Option<f64> {
    let (_, sd) = mean_sd(xs);
    sd.map(|sd| t_975(xs.len() - 1) * sd / (xs.len() as f64).sqrt())
}

/// The median of `xs` (non-empty): the middle value, or the mean of the two middle ones.
pub fn median(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0
}

/// The `q`-quantile of `sorted` (ascending, non-empty), interpolating linearly between the
/// order statistics around `q * (n - 1)` (numpy's default, which rliable's percentile
/// intervals use).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (below, above) = (at.floor() as usize, at.ceil() as usize);
    sorted[below] + (sorted[above] - sorted[below]) * (at - below as f64)
}

/// The mean of `xs` (non-empty) without its `floor(proportion * n)` smallest and as many
/// largest values (scipy.stats.trim_mean).
pub fn trim_mean(xs: &[f64], proportion: f64) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = (proportion * sorted.len() as f64) as usize;
    mean_sd(&sorted[cut..sorted.len() - cut]).0
}

/// Scores at or above this count as solved in the optimality gap: the human's score, in
/// human-normalised units (rliable's default gamma).
pub const OPTIMALITY_THRESHOLD: f64 = 1.0;

/// An aggregate metric over games; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Mean,
    Median,
    Iqm,
    OptimalityGap,
}

impl Aggregate {
    pub const ALL: [Aggregate; 4] =
        [Aggregate::Mean, Aggregate::Median, Aggregate::Iqm, Aggregate::OptimalityGap];

    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Mean => "mean",
            Aggregate::Median => "median",
            Aggregate::Iqm => "IQM",
            Aggregate::OptimalityGap => "optimality gap",
        }
    }

    /// The metric of the table `games[g][r]` (every game with at least one run).
    pub fn of(self, games: &[Vec<f64>]) -> f64 {
        let game_means = || games.iter().map(|runs| mean_sd(runs).0).collect::<Vec<f64>>();
        let pooled = || games.iter().flatten().copied().collect::<Vec<f64>>();
        match self {
            Aggregate::Mean => mean_sd(&game_means()).0,
            Aggregate::Median => median(&game_means()),
            Aggregate::Iqm => trim_mean(&pooled(), 0.25),
            Aggregate::OptimalityGap => {
                let clipped: Vec<f64> = pooled().iter().map(|x| x.min(OPTIMALITY_THRESHOLD)).collect();
                OPTIMALITY_THRESHOLD - mean_sd(&clipped).0
            }
        }
    }
}

/// The 95% stratified bootstrap intervals of `aggregates` over the table `games[g][r]`:
/// `resamples` times, each game's runs are drawn again with replacement (as many as it
/// has, so the games stay as they are and only the runs vary), and the interval is the
/// 2.5th to 97.5th percentile of the aggregate over the resampled tables (rliable's
/// `StratifiedBootstrap` with the percentile method). The same `seed` gives the same
/// intervals.
pub fn bootstrap_ci95(
    games: &[Vec<f64>],
    aggregates: &[Aggregate],
    resamples: usize,
    seed: u64,
) -> Vec<(f64, f64)> {
    assert!(games.iter().all(|runs| !runs.is_empty()), "every game needs a run");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sample = games.to_vec();
    let mut estimates = vec![Vec::with_capacity(resamples); aggregates.len()];
    for _ in 0..resamples {
        for (runs, drawn) in games.iter().zip(&mut sample) {
            for x in drawn.iter_mut() {
                *x = runs[rng.random_range(0..runs.len())];
            }
        }
        for (aggregate, values) in aggregates.iter().zip(&mut estimates) {
            values.push(aggregate.of(&sample));
        }
    }
    estimates
        .into_iter()
        .map(|mut values| {
            values.sort_by(f64::total_cmp);
            (quantile(&values, 0.025), quantile(&values, 0.975))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sd_and_interval_match_hand_computation() {
        // 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, sd = sqrt(14 / 3).
        let xs = [1.0, 2.0, 3.0, 6.0];
        let (mean, sd) = mean_sd(&xs);
        assert_eq!(mean, 3.0);
        assert!((sd.unwrap() - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let half = ci95_half_width(&xs).unwrap();
        assert!((half - 3.182 * (14.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
        assert_eq!(mean_sd(&[5.0]), (5.0, None));
        assert_eq!(ci95_half_width(&[5.0]), None);
    }

    /// Three games with 3, 2 and 4 runs. Per-game means 1, 0.5, 1: mean 2.5 / 3, median 1.
    /// Pooled and sorted: -1, 0, 0.5, 0.5, 1, 1, 1, 2, 3; IQM cuts floor(9 / 4) = 2 from
    /// each end: (0.5 + 0.5 + 1 + 1 + 1) / 5 = 0.8. Clipped at 1 the runs sum to
    /// 0 + 1 + 1 + 0.5 + 0.5 + 1 - 1 + 1 + 1 = 5: optimality gap 1 - 5 / 9 = 4 / 9.
    fn table() -> Vec<Vec<f64>> {
        vec![vec![0.0, 1.0, 2.0], vec![0.5, 0.5], vec![3.0, -1.0, 1.0, 1.0]]
    }

    #[test]
    fn aggregates_match_hand_computation() {
        let t = table();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(Aggregate::Mean.of(&t), 2.5 / 3.0));
        assert_eq!(Aggregate::Median.of(&t), 1.0);
        assert!(close(Aggregate::Iqm.of(&t), 0.8));
        assert!(close(Aggregate::OptimalityGap.of(&t), 4.0 / 9.0));
        // Even counts: the median averages the middle two; IQM of 4 keeps the middle 2.
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(trim_mean(&[10.0, 1.0, 3.0, 2.0], 0.25), 2.5);
        // Fewer than 4 values: nothing is cut.
        assert_eq!(trim_mean(&[1.0, 2.0, 6.0], 0.25), 3.0);
        // numpy.percentile([1, 2, 3, 4], 25) = 1.75.
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
    }

    #[test]
    fn bootstrap_is_seeded_stratified_and_brackets_the_estimate() {
        let t = table();
        let a = bootstrap_ci95(&t, &Aggregate::ALL, 2000, 7);
        assert_eq!(a, bootstrap_ci95(&t, &Aggregate::ALL, 2000, 7), "the same seed, the same intervals");
        assert_ne!(a, bootstrap_ci95(&t, &Aggregate::ALL, 2000, 8));
        for (aggregate, (lo, hi)) in Aggregate::ALL.into_iter().zip(&a) {
            let point = aggregate.of(&t);
            assert!(lo <= &point && &point <= hi, "{aggregate:?}: {point} not in [{lo}, {hi}]");
            assert!(lo < hi, "{aggregate:?}: the runs differ, so must the resamples");
        }
        // Runs are drawn within their game: a game whose runs agree never varies, so two
        // such games give one value whatever is drawn (pooled resampling would not).
        let fixed = vec![vec![0.0; 3], vec![1.0; 3]];
        assert_eq!(bootstrap_ci95(&fixed, &[Aggregate::Mean], 500, 0), [(0.5, 0.5)]);
        // One game of runs 0 and 1: resampled means 0, 0.5, 1 with probability 1/4, 1/2,
        // 1/4, so 2.5% of 2000 resamples fall at 0 and 2.5% at 1 (each about 500 times).
        assert_eq!(bootstrap_ci95(&[vec![0.0, 1.0]], &[Aggregate::Mean], 2000, 0), [(0.0, 1.0)]);
    }

    #[test]
    fn t_quantiles_join_the_table_smoothly() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        for (df, table) in [(40, 2.021), (60, 2.000), (120, 1.980)] {
            assert!((t_975(df) - table).abs() < 0.002, "df {df}");
        }
    }
}
