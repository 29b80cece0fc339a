//! MASP's knobs ([`MaspConfig`]) and the choices behind them: the penalty's [`Form`], the
//! [`SimilarityInit`], the [`Lookahead`] and the [`MetaOptimizer`].
//!
//! Where the paper and its public discussion are silent, the project fixes a choice
//! (docs/method.md, section 5) and makes it an option; each field's doc says which, and where its default comes from. Configs are
//! read from TOML or JSON with unknown fields refused, so a typo cannot silently fall back
//! to a default.
//!
//! ```
//! use masp::{Form, MaspConfig, MetaOptimizer, SimilarityInit};
//! let config: MaspConfig = serde_json::from_str(
//!     r#"{ "eta": 0.5, "form": "pairwise", "init": { "uniform": 0.01 }, "meta_interval": 4 }"#,
//! )?;
//! config.validate()?;
//! assert_eq!((config.form, config.init), (Form::Pairwise, SimilarityInit::Uniform(0.01)));
//! assert_eq!(config.meta_optimizer, MetaOptimizer::Adam); // the default, as docs/method.md recommends (section 5)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which penalty ties the Q-values together (docs/method.md, section 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// `eta/n sum_s ||(I - P(S)) Q_s||^2`, `P(S)` being `S` with rows normalised to sum to
    /// one: each action's value is pulled towards the similarity-weighted average of its
    /// neighbours'. The paper's form.
    #[default]
    RowNormalised,
    /// `eta/n sum_s sum_{a,b} S_ab (Q_sa - Q_sb)^2`, a graph Laplacian: each pair is pulled
    /// together in proportion to its similarity. Linear in `S`, so its meta-gradient is
    /// non-zero even at `S = I`.
    Pairwise,
}

/// How `S` starts (docs/method.md, section 2). Off-diagonal only: the diagonal is always 1.
///
/// In TOML, `init = "identity"`, `init = { uniform = 0.01 }`, `init = { self_weight = 0.5 }`
/// or `init = { prior = { measure = "edit_distance", self_weight = 0.5 } }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimilarityInit {
    /// `S = I`. With the row-normalised form this switches MASP off for good: `S = I` is a
    /// fixed point of its meta-gradient (docs/method.md, section 3). Never the default.
    Identity,
    /// Every off-diagonal entry is `s`, in `[0, 1]`. Each row's self-weight in `P(S)` is then
    /// `1 / (1 + s (A - 1))`: mind that it shrinks as the pool grows.
    Uniform(f64),
    /// A uniform off-diagonal `s` chosen from the pool size so that every row's self-weight
    /// in `P(S)` is `w`, in `(0, 1]`: `s = (1/w - 1) / (A - 1)`, clipped to 1. `w = 0.5`
    /// gives docs/method.md's `s = 1 / (A - 1)`.
    SelfWeight(f64),
    /// A structural prior that the caller computes and passes in (the macro-actions crate
    /// computes edit distance, shared prefix and overlap similarities). `measure` names it
    /// for the record. Its off-diagonal part is scaled by one factor so that a row with the
    /// average off-diagonal sum has self-weight `self_weight` (default 0.5; docs/method.md's
    /// pitfall: a raw prior over hundreds of macros makes `P` nearly uniform), then
    /// projected onto `[0, 1]`.
    Prior {
        measure: String,
        #[serde(default = "half")]
        self_weight: f64,
    },
}

fn half() -> f64 {
    0.5
}

impl Default for SimilarityInit {
    fn default() -> Self {
        SimilarityInit::SelfWeight(0.5)
    }
}

/// The lookahead step `theta' = theta - alpha * step` (docs/method.md, section 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookahead {
    /// `step = grad`, a plain SGD step. docs/method.md's default (section 5).
    #[default]
    Sgd,
    /// `step = D . grad` with `D = 1 / (sqrt(v_hat) + eps)` from the agent's Adam state
    /// ([`crate::MetaModel::preconditioner`]), held constant: theta' is then about the
    /// agent's own next step. The JVP direction becomes `D . g`.
    AdamPreconditioned,
}

/// The TD target of the meta loss `L_TD(theta'; B')` when `B' = B`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaTarget {
    /// The update's own target distribution, double-Q's `a*` chosen at `theta`: no online
    /// pass at `theta'` on the next states. The target is a constant of the loss, so the
    /// meta-gradient differs from MASP.md's only where some `a*` differs between `theta`
    /// and `theta'`. A deviation from MASP.md (docs/method.md, section 3), the default since
    /// it agreed with the exact meta-gradient and gave the same toy scores.
    #[default]
    Update,
    /// `a*` chosen at `theta'`: the meta loss exactly at `theta'`, MASP.md's.
    Lookahead,
}

/// How the meta step differences `u = J g`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difference {
    /// `(Q(theta + s g) - Q(theta - s g)) / 2s`: two network passes, error of order `s^2`.
    /// MASP.md's JVP.
    Central,
    /// `(Q(theta + s g) - Q(theta)) / s` with the update's own `Q(theta)`: one network pass,
    /// error of order `s`. A deviation from MASP.md (issue 14's cheaper meta step), the
    /// default since the toy comparison found no change beyond seed noise (docs/method.md,
    /// section 3).
    #[default]
    OneSided,
}

/// How the meta-gradient moves `S`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaOptimizer {
    /// `S <- project(S - beta * grad)`, candle's SGD step. The raw meta-gradient carries the
    /// factor `alpha` and is tiny, so `beta` must be large.
    Plain,
    /// Adam (betas 0.9, 0.999, eps 1e-8, no weight decay: candle's AdamW step, with its
    /// state saved in checkpoints) with learning rate `beta`, then the projection.
    /// Scale-free, so docs/method.md recommends it (section 3).
    #[default]
    Adam,
}

/// Everything MASP needs to know. `Default` holds docs/method.md's choices (section 5);
/// fields the paper does not fix say so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaspConfig {
    /// Penalty weight `eta`, >= 0 (0 turns the penalty off, and with it the meta-gradient,
    /// which is proportional to `eta`: `S` then stays at its initialisation).
    /// Default 1.0. The paper gives no value; docs/method.md (section 5) asks for a sweep,
    /// and the ratio of the penalty to the TD loss ([`crate::MetaReport::penalty_td_ratio`]) is the number
    /// to watch.
    pub eta: f64,
    /// Row-normalised (the paper's, default) or pairwise.
    pub form: Form,
    /// Initial `S`. Default `self_weight = 0.5`, i.e. uniform `s = 1/(A-1)` (docs/method.md's
    /// advice: off the identity, with a substantial self-weight).
    pub init: SimilarityInit,
    /// Start from a saved `S` (see [`crate::SavedSimilarity`]), aligned on action
    /// identities; actions the file lacks keep `init`. Default none.
    pub init_file: Option<PathBuf>,
    /// Learn `S` by the meta-gradient. `false` keeps `S` at its initialisation: the
    /// fixed-prior ablation. Default true.
    pub meta_learning: bool,
    /// Agent updates between meta steps, >= 1 (counted by [`crate::Masp::record_update`]).
    /// Default 1, the method as written (S and theta learned jointly); 4 is the cheaper
    /// setting the benchmark targets.
    pub meta_interval: u64,
    /// Lookahead step size `alpha`, > 0. Default 6.25e-5, Rainbow's learning rate (Hessel
    /// et al. 2018), so that with `lookahead = adam_preconditioned` theta' is the agent's
    /// own next step. The meta-gradient is linear in `alpha` to first order; under the Adam
    /// meta-optimiser only its second-order effect (how far theta' looks) remains.
    pub alpha: f64,
    /// Plain SGD (default, docs/method.md section 5) or Adam-preconditioned lookahead.
    pub lookahead: Lookahead,
    /// Meta learning rate `beta`, > 0. Default 1e-4: under Adam each meta step moves an
    /// entry by about `beta`, so keep it well below the initial off-diagonal level
    /// (`1/(A-1)`, 1e-3 at A = 1042). Not given by the paper; sweep it.
    pub beta: f64,
    /// Adam (default, docs/method.md section 5) or plain steps on `S`.
    pub meta_optimizer: MetaOptimizer,
    /// Length of the parameter step of the finite-difference JVP, > 0: `u` is computed
    /// at `theta + eps g / |g|` (and `theta - eps g / |g|` if central; so `eps` does not
    /// depend on the scale of `g`). Default
    /// 1e-2, DARTS's choice (Liu et al. 2019) for f32; use about 1e-6 in f64.
    pub eps: f64,
    /// Draw the meta batch `B'` fresh from replay (`true`, MASP.md's); `false` (default, a
    /// deviation from MASP.md, see [`Difference::OneSided`]) reuses the update's batch `B`,
    /// and on the learner's path its target-network pass too.
    pub fresh_batch: bool,
    /// How `u` is differenced. Default one-sided (central is MASP.md's).
    pub difference: Difference,
    /// The meta loss's TD target with `B' = B`: the update's (default) or one chosen at
    /// `theta'` (MASP.md's). A fresh `B'` has no update target and always takes the latter,
    /// whatever this says.
    pub meta_target: MetaTarget,
}

impl Default for MaspConfig {
    fn default() -> Self {
        Self {
            eta: 1.0,
            form: Form::RowNormalised,
            init: SimilarityInit::default(),
            init_file: None,
            meta_learning: true,
            meta_interval: 1,
            alpha: 6.25e-5,
            lookahead: Lookahead::Sgd,
            beta: 1e-4,
            meta_optimizer: MetaOptimizer::Adam,
            eps: 1e-2,
            fresh_batch: false,
            difference: Difference::OneSided,
            meta_target: MetaTarget::Update,
        }
    }
}

impl MaspConfig {
    /// The meta loss's target a meta step takes: `meta_target` with `B' = B`; a fresh `B'`
    /// has no update target, so it is always chosen at `theta'` there.
    pub fn meta_target_in_effect(&self) -> MetaTarget {
        if self.fresh_batch {
            MetaTarget::Lookahead
        } else {
            self.meta_target
        }
    }

    /// Checks every field; the error names the first bad field and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: &dyn std::fmt::Debug, fix: &str| {
            Err(Error::config("MaspConfig", field, value, fix))
        };
        if !(self.eta.is_finite() && self.eta >= 0.0) {
            return bad("eta", &self.eta, "use a penalty weight >= 0, e.g. 1.0 (sweep it)");
        }
        if self.meta_interval == 0 {
            return bad(
                "meta_interval",
                &self.meta_interval,
                "run a meta step every >= 1 updates, e.g. 1 or 4",
            );
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad("alpha", &self.alpha, "use a positive lookahead step, e.g. 6.25e-5");
        }
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return bad("beta", &self.beta, "use a positive meta learning rate, e.g. 1e-4 with Adam");
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", &self.eps, "use a positive JVP step length, e.g. 1e-2 in f32 or 1e-6 in f64");
        }
        if let Some(path) = &self.init_file {
            if path.as_os_str().is_empty() {
                return bad(
                    "init_file",
                    path,
                    "name a similarity file written by Similarity::save, or leave it out",
                );
            }
        }
        self.init.validate()
    }
}

impl SimilarityInit {
    /// Checks the initialisation's own numbers (as `MaspConfig.init`).
    pub fn validate(&self) -> Result<()> {
        let bad =
            |value: &dyn std::fmt::Debug, fix: &str| Err(Error::config("MaspConfig", "init", value, fix));
        match self {
            SimilarityInit::Identity => Ok(()),
            SimilarityInit::Uniform(s) if !(0.0..=1.0).contains(s) => {
                bad(self, "use an off-diagonal similarity in [0, 1], e.g. { uniform = 0.01 }")
            }
            SimilarityInit::SelfWeight(w) if !(*w > 0.0 && *w <= 1.0) => {
                bad(self, "use a self-weight in (0, 1], e.g. { self_weight = 0.5 }")
            }
            SimilarityInit::Prior { measure, .. } if measure.trim().is_empty() => {
                bad(self, "name the structural measure, e.g. measure = \"edit_distance\"")
            }
            SimilarityInit::Prior { self_weight, .. } if !(*self_weight > 0.0 && *self_weight <= 1.0) => {
                bad(self, "use a self-weight in (0, 1], e.g. self_weight = 0.5")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_method_md() {
        let c = MaspConfig::default();
        c.validate().unwrap();
        assert_eq!(c.init, SimilarityInit::SelfWeight(0.5), "off the identity, self-weight 1/2");
        assert_eq!(
            (c.form, c.lookahead, c.meta_optimizer),
            (Form::RowNormalised, Lookahead::Sgd, MetaOptimizer::Adam)
        );
        assert!(c.meta_learning);
        // The cheaper meta step (issue 14, section 4): B' = B, one-sided JVP.
        assert_eq!((c.fresh_batch, c.difference), (false, Difference::OneSided));
        assert_eq!(c.meta_target, MetaTarget::Update);
        assert_eq!(c.meta_target_in_effect(), MetaTarget::Update);
        let fresh = MaspConfig { fresh_batch: true, ..c };
        assert_eq!(fresh.meta_target_in_effect(), MetaTarget::Lookahead, "no update target for a fresh B'");
    }

    #[test]
    fn toml_spells_every_choice() {
        let c: MaspConfig = toml::from_str(
            r#"
            eta = 0.1
            form = "pairwise"
            init = { prior = { measure = "edit_distance" } }
            init_file = "runs/breakout/similarity.json"
            lookahead = "adam_preconditioned"
            meta_optimizer = "plain"
            fresh_batch = false
            meta_target = "lookahead"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.init, SimilarityInit::Prior { measure: "edit_distance".into(), self_weight: 0.5 });
        assert_eq!(c.lookahead, Lookahead::AdamPreconditioned);
        let c: MaspConfig = toml::from_str("init = \"identity\"").unwrap();
        assert_eq!(c.init, SimilarityInit::Identity);
        let c: MaspConfig = toml::from_str("init = { self_weight = 0.25 }").unwrap();
        assert_eq!(c.init, SimilarityInit::SelfWeight(0.25));
        let err = toml::from_str::<MaspConfig>("etta = 1.0").unwrap_err().to_string();
        assert!(err.contains("unknown field `etta`"), "{err}");
    }

    #[test]
    fn validate_names_each_bad_field() {
        let cases: [(MaspConfig, &str); 9] = [
            (MaspConfig { eta: -1.0, ..Default::default() }, "eta"),
            (MaspConfig { eta: f64::NAN, ..Default::default() }, "eta"),
            (MaspConfig { meta_interval: 0, ..Default::default() }, "meta_interval"),
            (MaspConfig { alpha: 0.0, ..Default::default() }, "alpha"),
            (MaspConfig { beta: 0.0, ..Default::default() }, "beta"),
            (MaspConfig { eps: 0.0, ..Default::default() }, "eps"),
            (MaspConfig { init: SimilarityInit::Uniform(1.5), ..Default::default() }, "init"),
            (MaspConfig { init: SimilarityInit::SelfWeight(0.0), ..Default::default() }, "init"),
            (MaspConfig { init_file: Some(PathBuf::new()), ..Default::default() }, "init_file"),
        ];
        for (config, field) in cases {
            match config.validate() {
                Err(Error::InvalidConfig { field: f, fix, .. }) => {
                    assert_eq!(f, field);
                    assert!(!fix.is_empty());
                }
                other => panic!("{field}: expected an InvalidConfig error, got {other:?}"),
            }
        }
        let prior = SimilarityInit::Prior { measure: " ".into(), self_weight: 0.5 };
        assert!(prior.validate().is_err());
        assert!(SimilarityInit::Identity.validate().is_ok());
    }
}
