//! Where the meta-gradient's signal goes (issue 14, section 3): over a window of meta
//! steps, which pairs of actions receive any gradient, whether the steps agree on a
//! direction or cancel out, how far `S` moved, and whether the direction points at a known
//! answer (an env's groups of actions with the same effect, or a distance between effects).
//!
//! [`MetaSignal`] sums each step's tangent (the gradient the optimiser receives) and its
//! absolute value on `S`'s device, two elementwise additions per meta step; numbers are
//! read only when a window is closed ([`MetaSignal::take`]).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use masp::{EffectReference, MetaSignal, Similarity};
//! let dev = Device::Cpu;
//! let s = Similarity::identity(3, DType::F32, &dev)?;
//! let mut signal = MetaSignal::default();
//! signal.open(&s)?;
//! // Two steps that both push S_01 up (a negative gradient) and disagree on S_02.
//! for sign in [1f32, -1.0] {
//!     let g = Tensor::new(&[[0f32, -1.0, sign], [-1.0, 0.0, 0.0], [sign, 0.0, 0.0]], &dev)?;
//!     signal.record(&g)?;
//! }
//! let groups = [Some(0), Some(0), Some(1)];
//! let w = signal.take(&s, Some(EffectReference::Groups(&groups)))?.expect("two steps");
//! assert_eq!((w.steps, w.reach), (2, 2.0 / 3.0)); // S_12 received nothing
//! assert_eq!(w.consistency, 0.5); // S_01 always one way, S_02 cancelled out
//! assert_eq!(w.alignment, Some(1.0)); // the descent direction favours the within-group pair
//! # Ok::<(), masp::Error>(())
//! ```

use candle_core::Tensor;

use crate::analysis::{separation_of, spearman_of};
use crate::error::Result;
use crate::learned_similarity::{host_f32, Similarity};

/// What is known of the actions' effects, to score the meta-gradient's direction against.
#[derive(Clone, Copy, Debug)]
pub enum EffectReference<'a> {
    /// Each action's group of identical effect (`None`: unknown), in `S`'s order.
    Groups(&'a [Option<usize>]),
    /// How differently each pair of actions acts, `(A, A)` row-major.
    Distance(&'a [f32]),
}

/// The meta-gradient over one window of meta steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignalWindow {
    /// Meta steps in the window.
    pub steps: u64,
    /// Share of the off-diagonal pairs that received a non-zero gradient in any step.
    pub reach: f64,
    /// Over the pairs that received any: the mean of `|sum_t g_t| / sum_t |g_t|`. 1 when
    /// every step pushes each pair the same way; near `sqrt(2 / (pi steps))` when the signs
    /// are random (a random walk of `S`).
    pub consistency: f64,
    /// Mean `|S_end - S_start|` over the off-diagonal pairs: how far `S` moved in the window
    /// (read it against `S`'s mean off-diagonal entry, [`crate::SimilarityStats`]).
    pub s_change: f64,
    /// How the summed descent direction `-sum_t g_t` ranks the pairs against the reference:
    /// for groups the AUC of within-group pairs over between-group ones (0.5 is chance, 1
    /// every step pushes same-effect pairs up hardest); for a distance the Spearman
    /// correlation (negative: pushed up where effects are close).
    pub alignment: Option<f64>,
}

/// Sums of the tangents since the window opened, on `S`'s device.
#[derive(Debug, Default)]
pub struct MetaSignal {
    sum: Option<Tensor>,
    abs_sum: Option<Tensor>,
    steps: u64,
    /// `S` when the window opened, `(A, A)` row-major.
    start: Vec<f32>,
}

impl MetaSignal {
    /// Starts a window at the current `S`.
    pub fn open(&mut self, similarity: &Similarity) -> Result<()> {
        *self = Self { start: similarity.to_vec()?, ..Self::default() };
        Ok(())
    }

    /// Adds one meta step's tangent, `(A, A)`.
    pub fn record(&mut self, tangent: &Tensor) -> Result<()> {
        let abs = tangent.abs()?;
        self.sum = Some(match self.sum.take() {
            Some(s) => (s + tangent)?,
            None => tangent.clone(),
        });
        self.abs_sum = Some(match self.abs_sum.take() {
            Some(s) => (s + abs)?,
            None => abs,
        });
        self.steps += 1;
        Ok(())
    }

    /// Closes the window at the current `S` and opens the next one; `None` when no meta
    /// step ran in it.
    pub fn take(
        &mut self,
        similarity: &Similarity,
        reference: Option<EffectReference>,
    ) -> Result<Option<SignalWindow>> {
        // S's end of this window is the next one's start: one copy to the host serves both.
        let end = similarity.to_vec()?;
        let window = std::mem::replace(self, Self { start: end.clone(), ..Self::default() });
        let (Some(sum), Some(abs_sum)) = (window.sum, window.abs_sum) else { return Ok(None) };
        let (steps, start) = (window.steps, window.start);
        let a = similarity.num_actions();
        let sum = host_f32(&sum)?;
        let abs_sum = host_f32(&abs_sum)?;
        let off: Vec<usize> = (0..a * a).filter(|&k| k / a != k % a).collect();
        let reached: Vec<usize> = off.iter().copied().filter(|&k| abs_sum[k] > 0.0).collect();
        let mean = |values: &mut dyn Iterator<Item = f64>, n: usize| values.sum::<f64>() / n.max(1) as f64;
        let descent: Vec<f32> = sum.iter().map(|g| -g).collect();
        Ok(Some(SignalWindow {
            steps,
            reach: reached.len() as f64 / off.len().max(1) as f64,
            consistency: mean(
                &mut reached.iter().map(|&k| f64::from(sum[k].abs() / abs_sum[k])),
                reached.len(),
            ),
            s_change: mean(&mut off.iter().map(|&k| f64::from((end[k] - start[k]).abs())), off.len()),
            alignment: match reference {
                Some(EffectReference::Groups(groups)) => separation_of(&descent, a, groups)?.map(|s| s.auc),
                Some(EffectReference::Distance(distance)) => spearman_of(&descent, a, distance)?,
                None => None,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    const CPU: Device = Device::Cpu;

    fn tangent(values: &[f32], a: usize) -> Tensor {
        Tensor::from_slice(values, (a, a), &CPU).unwrap()
    }

    #[test]
    fn an_empty_window_reports_nothing_and_take_reopens() {
        let s = Similarity::identity(2, DType::F32, &CPU).unwrap();
        let mut signal = MetaSignal::default();
        signal.open(&s).unwrap();
        assert_eq!(signal.take(&s, None).unwrap(), None);
        signal.record(&tangent(&[0.0, 1.0, 1.0, 0.0], 2)).unwrap();
        assert_eq!(signal.take(&s, None).unwrap().unwrap().steps, 1);
        assert_eq!(signal.take(&s, None).unwrap(), None, "the next window starts empty");
    }

    /// Brute force over a random window: every figure recomputed from the list of steps.
    #[test]
    fn figures_match_a_direct_computation() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let a = 5;
        let start: Vec<f32> =
            (0..a * a).map(|k| if k / a == k % a { 1.0 } else { rng.random_range(0.0..1.0) }).collect();
        let start = symmetric(&start, a);
        let s = Similarity::from_values(&start, a, DType::F32, &CPU).unwrap();
        let mut signal = MetaSignal::default();
        signal.open(&s).unwrap();
        let steps: Vec<Vec<f32>> = (0..7)
            .map(|_| {
                // Pair (0, 1) never receives a gradient.
                let g: Vec<f32> = (0..a * a)
                    .map(|k| {
                        if [1, a].contains(&k) || k / a == k % a {
                            0.0
                        } else {
                            rng.random_range(-1.0..1.0)
                        }
                    })
                    .collect();
                symmetric(&g, a)
            })
            .collect();
        for g in &steps {
            signal.record(&tangent(g, a)).unwrap();
        }
        let end: Vec<f32> = start.iter().map(|v| if *v == 1.0 { 1.0 } else { v * 0.5 }).collect();
        let s_end = Similarity::from_values(&end, a, DType::F32, &CPU).unwrap();
        let distance: Vec<f32> = (0..a * a).map(|k| (k / a).abs_diff(k % a) as f32).collect();
        let w = signal.take(&s_end, Some(EffectReference::Distance(&distance))).unwrap().unwrap();

        let off: Vec<usize> = (0..a * a).filter(|&k| k / a != k % a).collect();
        let sum = |k: usize| steps.iter().map(|g| f64::from(g[k])).sum::<f64>();
        let abs = |k: usize| steps.iter().map(|g| f64::from(g[k].abs())).sum::<f64>();
        let reached: Vec<usize> = off.iter().copied().filter(|&k| abs(k) > 0.0).collect();
        assert_eq!(w.steps, 7);
        assert_eq!(w.reach, 18.0 / 20.0);
        let consistency = reached.iter().map(|&k| sum(k).abs() / abs(k)).sum::<f64>() / 18.0;
        assert!((w.consistency - consistency).abs() < 1e-6, "{} vs {consistency}", w.consistency);
        let change = off.iter().map(|&k| f64::from((end[k] - start[k]).abs())).sum::<f64>() / 20.0;
        assert!((w.s_change - change).abs() < 1e-6);
        let descent: Vec<f32> = (0..a * a).map(|k| -sum(k) as f32).collect();
        assert_eq!(w.alignment, spearman_of(&descent, a, &distance).unwrap());
    }

    fn symmetric(values: &[f32], a: usize) -> Vec<f32> {
        (0..a * a).map(|k| if k / a < k % a { values[k] } else { values[(k % a) * a + k / a] }).collect()
    }
}
