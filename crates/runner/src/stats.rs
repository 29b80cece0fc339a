//! Summary statistics over seeds: the mean, the sample standard deviation and the 95%
//! t-interval that `masp plot` and `masp report` give.
//!
//! ```text
//! mean = sum(x) / n;  sd = sqrt(sum((x - mean)^2) / (n - 1));  ci95 = t(0.975, n - 1) * sd / sqrt(n)
//! ```

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

    #[test]
    fn t_quantiles_join_the_table_smoothly() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        for (df, table) in [(40, 2.021), (60, 2.000), (120, 1.980)] {
            assert!((t_975(df) - table).abs() < 0.002, "df {df}");
        }
    }
}
