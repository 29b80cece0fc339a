//! The knobs of prioritised replay ([`ReplayConfig`]) and of n-step returns
//! ([`NStepConfig`]), with the presets of the reference implementations.
//!
//! `Default` is full Rainbow as Dopamine runs it on Atari (Hessel et al. 2018, with
//! Dopamine's sticky-action protocol); `der()` is data-efficient Rainbow for Atari 100k
//! (van Hasselt et al. 2019, as configured in Dopamine). Both are documented field by
//! field against `shared/reference/README.md`. Configs are read from TOML with unknown
//! fields refused, so a typo cannot silently fall back to a default.
//!
//! ```
//! use rainbow::{NStepConfig, ReplayConfig};
//! let replay: ReplayConfig = toml::from_str("capacity = 100_000\nalpha = 0.6")?;
//! assert_eq!((replay.capacity, replay.alpha, replay.beta0), (100_000, 0.6, 0.4));
//! replay.validate()?;
//! assert_eq!(replay.beta(0), 0.4);
//! assert_eq!(NStepConfig::der().n, 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Prioritised experience replay (Schaul et al. 2016) as Rainbow uses it.
///
/// A transition `i` with priority `p_i` is sampled with probability
/// `P(i) = p_i^alpha / sum_k p_k^alpha` and weighted by `w_i = (N P(i))^-beta / max_k w_k`,
/// the maximum over the batch (Dopamine, Kaixhin's Rainbow) or over the whole buffer
/// (Schaul et al.'s text), see [`WeightNormalisation`], where `beta` rises linearly from
/// `beta0` to 1 over `beta_steps`. A priority is
/// `|x| + eps` for the value `x` the learner reports (Rainbow: the transition's
/// cross-entropy loss). New transitions enter at the largest priority seen so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayConfig {
    /// Slots in the ring, all env copies together: for pixels, stored 84x84 frames
    /// (`PrioritizedReplay` documents how transitions map to slots: about one per
    /// primitive transition). Default 1_000_000 (1M transitions, ~6.6 GiB for Atari).
    pub capacity: usize,
    /// Priority exponent `alpha` (0 gives uniform sampling). Default 0.5 (Hessel et al.;
    /// Dopamine's square root of the loss is the same exponent).
    pub alpha: f64,
    /// Importance-sampling exponent `beta` at step 0, in `[0, 1]`. Default 0.4 (Hessel et
    /// al.; Dopamine instead keeps 0.5 fixed).
    pub beta0: f64,
    /// Steps over which `beta` rises linearly from `beta0` to 1, counted in whatever step
    /// the caller passes to `sample` (agent steps in both presets); 0 means `beta = 1`
    /// from the start. Default 50_000_000 agent steps: Dopamine's 200 iterations of 250k
    /// steps (200M frames), so `beta` reaches 1 at the end of training as in Hessel et al.
    pub beta_steps: u64,
    /// Added to `|x|` so that no transition's priority is 0 (it could then never be sampled
    /// again, and its weight would divide by 0). Default 1e-10, as Dopamine's
    /// `sqrt(loss + 1e-10)`.
    pub eps: f64,
    /// What the importance weights are divided by. Default `batch_max`, as Dopamine and
    /// Kaixhin's Rainbow do.
    pub weight_normalisation: WeightNormalisation,
}

/// The maximum importance weight that each weight is divided by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightNormalisation {
    /// The largest weight of the sampled batch: every batch has a weight of 1.
    #[default]
    BatchMax,
    /// The largest weight any transition in the buffer could have (its smallest
    /// priority's): once a few transitions are learned well, every update's loss can
    /// shrink many-fold.
    BufferMax,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self::rainbow()
    }
}

impl ReplayConfig {
    /// Full Rainbow on Atari (Hessel et al. 2018; Dopamine's `full_rainbow` preset).
    pub fn rainbow() -> Self {
        Self {
            capacity: 1_000_000,
            alpha: 0.5,
            beta0: 0.4,
            beta_steps: 50_000_000,
            eps: 1e-10,
            weight_normalisation: WeightNormalisation::BatchMax,
        }
    }

    /// Data-efficient Rainbow for Atari 100k (van Hasselt et al. 2019): the same prioritised
    /// replay, with `beta` reaching 1 at the end of the 100k-agent-step run. The capacity
    /// stays at Dopamine's 1M, so the whole run is kept (the paper's buffer is unbounded);
    /// frame memory is committed only as it fills, about 0.7 GB for 100k steps.
    pub fn der() -> Self {
        Self { beta_steps: 100_000, ..Self::rainbow() }
    }

    /// The importance-sampling exponent after `step` steps: linear from `beta0` to 1 over
    /// `beta_steps`, then 1.
    pub fn beta(&self, step: u64) -> f64 {
        if self.beta_steps == 0 {
            return 1.0;
        }
        let progress = (step as f64 / self.beta_steps as f64).min(1.0);
        self.beta0 + (1.0 - self.beta0) * progress
    }

    /// Checks every field; the error names the first bad field and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: &dyn std::fmt::Debug, fix: &str| {
            Err(Error::config("ReplayConfig", field, value, fix))
        };
        if self.capacity == 0 {
            return bad(
                "capacity",
                &self.capacity,
                "hold at least one transition per env copy, e.g. 1_000_000",
            );
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad(
                "alpha",
                &self.alpha,
                "use a priority exponent >= 0: 0.5 for Rainbow, 0 for uniform replay",
            );
        }
        if !(0.0..=1.0).contains(&self.beta0) {
            return bad("beta0", &self.beta0, "use an importance-sampling exponent in [0, 1], e.g. 0.4");
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(
                "eps",
                &self.eps,
                "use a small positive number, e.g. 1e-10 (Dopamine) or 1e-6 (baselines)",
            );
        }
        Ok(())
    }
}

/// n-step returns over (semi-MDP) transitions.
///
/// The return of transition `t` is `G = R_t + d_t R_{t+1} + d_t d_{t+1} R_{t+2} + ...`
/// over at most `n` transitions, stopping at the episode's end, where `R` and `d` are each
/// transition's own reward and discount: `r` and `gamma` for a primitive action,
/// `sum_{i<L} gamma^i r_i` and `gamma^L` for a macro of `L` steps, and discount 0 for a
/// terminal one. The bootstrap discount is the product of the `d`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NStepConfig {
    /// Transitions (decisions, not frames) per return. Default 3 (Hessel et al., Dopamine).
    pub n: usize,
    /// The discount per primitive step, `gamma`, in `[0, 1]`: a primitive transition's
    /// discount is `gamma` and a macro's `gamma^L` ([`NStepConfig::discount`]). Default 0.99.
    /// An executor that forms macro transitions must use the same value.
    pub gamma: f64,
}

impl Default for NStepConfig {
    fn default() -> Self {
        Self::rainbow()
    }
}

impl NStepConfig {
    /// Full Rainbow: 3-step returns, `gamma = 0.99`.
    pub fn rainbow() -> Self {
        Self { n: 3, gamma: 0.99 }
    }

    /// Data-efficient Rainbow as Dopamine configures it: 10-step returns (the DER paper
    /// used 20), `gamma = 0.99`.
    pub fn der() -> Self {
        Self { n: 10, ..Self::rainbow() }
    }

    /// The discount of a transition that took `steps` primitive steps and did not
    /// terminate: `gamma^steps`.
    pub fn discount(&self, steps: u32) -> f32 {
        self.gamma.powi(steps as i32) as f32
    }

    /// Checks every field; the error names the first bad field and the fix.
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::config(
                "NStepConfig",
                "n",
                self.n,
                "use at least 1 (1 is one-step TD; Rainbow uses 3)",
            ));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::config(
                "NStepConfig",
                "gamma",
                self.gamma,
                "use a discount in [0, 1], e.g. 0.99",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: Error) -> &'static str {
        match err {
            Error::InvalidConfig { field, .. } => field,
            other => panic!("expected a config error, got {other}"),
        }
    }

    #[test]
    fn presets_match_the_reference_table() {
        // shared/reference/README.md: priority exponent 0.5, IS beta 0.4 -> 1, replay 1M,
        // n-step 3 (full Rainbow) / 10 (DER), gamma 0.99.
        let r = ReplayConfig::default();
        assert_eq!(r, ReplayConfig::rainbow());
        assert_eq!((r.capacity, r.alpha, r.beta0, r.eps), (1_000_000, 0.5, 0.4, 1e-10));
        assert_eq!(ReplayConfig::der().beta_steps, 100_000);
        assert_eq!(NStepConfig::default(), NStepConfig { n: 3, gamma: 0.99 });
        assert_eq!(NStepConfig::der(), NStepConfig { n: 10, gamma: 0.99 });
        for c in [ReplayConfig::rainbow(), ReplayConfig::der()] {
            c.validate().unwrap();
        }
        NStepConfig::der().validate().unwrap();
    }

    #[test]
    fn beta_rises_linearly_to_one_and_stays() {
        let c = ReplayConfig { beta0: 0.4, beta_steps: 100, ..ReplayConfig::default() };
        assert_eq!(c.beta(0), 0.4);
        assert!((c.beta(50) - 0.7).abs() < 1e-12);
        assert_eq!(c.beta(100), 1.0);
        assert_eq!(c.beta(1_000), 1.0);
        assert_eq!(ReplayConfig { beta_steps: 0, ..c }.beta(0), 1.0);
    }

    #[test]
    fn validation_names_the_field() {
        let d = ReplayConfig::default;
        assert_eq!(field_of(ReplayConfig { capacity: 0, ..d() }.validate().unwrap_err()), "capacity");
        assert_eq!(field_of(ReplayConfig { alpha: f64::NAN, ..d() }.validate().unwrap_err()), "alpha");
        assert_eq!(field_of(ReplayConfig { alpha: -0.1, ..d() }.validate().unwrap_err()), "alpha");
        assert_eq!(field_of(ReplayConfig { beta0: 1.5, ..d() }.validate().unwrap_err()), "beta0");
        assert_eq!(field_of(ReplayConfig { eps: 0.0, ..d() }.validate().unwrap_err()), "eps");
        assert_eq!(field_of(NStepConfig { n: 0, ..NStepConfig::default() }.validate().unwrap_err()), "n");
        let e = NStepConfig { gamma: 1.01, ..NStepConfig::default() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "invalid NStepConfig.gamma = 1.01: use a discount in [0, 1], e.g. 0.99");
    }

    #[test]
    fn toml_fills_defaults_and_refuses_unknown_fields() {
        let c: ReplayConfig = toml::from_str("beta_steps = 10").unwrap();
        assert_eq!(c, ReplayConfig { beta_steps: 10, ..ReplayConfig::default() });
        let err = toml::from_str::<ReplayConfig>("betta0 = 0.5").unwrap_err().to_string();
        assert!(err.contains("unknown field `betta0`"), "{err}");
        let err = toml::from_str::<NStepConfig>("n_step = 3").unwrap_err().to_string();
        assert!(err.contains("unknown field `n_step`"), "{err}");
        let round: NStepConfig = toml::from_str(&toml::to_string(&NStepConfig::der()).unwrap()).unwrap();
        assert_eq!(round, NStepConfig::der());
    }

    #[test]
    fn discount_is_gamma_to_the_steps() {
        let c = NStepConfig { gamma: 0.5, n: 3 };
        assert_eq!((c.discount(0), c.discount(1), c.discount(3)), (1.0, 0.5, 0.125));
    }
}
