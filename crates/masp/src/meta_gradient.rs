//! The one-step meta-gradient `dL_meta/dS` in closed form, for any candle Q-network that
//! implements [`MetaModel`] (docs/method.md, section 3). No second-order autodiff: one backward
//! pass at the looked-ahead parameters, one forward pass for the one-sided JVP (two for the
//! central one), and a first-order backward through a small surrogate in `S` alone.
//!
//! Shapes: `Q` and `u` are `(n, A)` for a batch of `n` states; `S` and the returned
//! gradient are `(A, A)`.
//!
//! # Derivation
//!
//! ```text
//! theta'  = theta - alpha * D . grad_theta [ L_TD(theta; B) + L_MASP(theta, S; B) ]
//! L_meta  = L_TD(theta'; B')
//! ```
//!
//! (`D = 1` for the SGD lookahead; Adam's `1 / (sqrt(v_hat) + eps)` for the preconditioned
//! one, held constant.) `L_TD(theta; B)` does not depend on `S`, so by the chain rule
//! through `theta'`, with `g = grad_theta' L_TD(theta'; B')`:
//!
//! ```text
//! dL_meta/dS = g . dtheta'/dS = -alpha d/dS [ (D . g) . grad_theta L_MASP(theta, S; B) ]
//! ```
//!
//! with `g` held constant. `L_MASP` reaches `theta` only through `Q_s(theta)`, so
//! `(D . g) . grad_theta L_MASP = sum_s <dL_MASP/dQ_s, u_s>` with `u_s = J_s (D . g)`, the
//! change of `Q_s` along `D . g`. Both penalties are quadratic in `Q`, so `dL_MASP/dQ_s` is
//! linear in `Q_s` and an explicit function of `S`:
//!
//! * row-normalised, `L = eta/n sum_s ||M Q_s||^2`, `M = I - P(S)`:
//!   `dL/dQ_s = (2 eta/n) M^T M Q_s`, so
//!   `surrogate = -alpha (2 eta/n) sum_s (M u_s) . (M Q_s)`. Quadratic in `M`, hence its
//!   gradient vanishes at `M = 0`: `S = I` is a fixed point (docs/method.md, section 3).
//! * pairwise, `L = eta/n sum_s sum_ab S_ab (Q_sa - Q_sb)^2 = eta/n sum_s Q_s^T K Q_s`,
//!   `K = D_r + D_c - S - S^T` (`= 2 L_S`, twice the graph Laplacian, for symmetric `S`):
//!   `dL/dQ_s = (2 eta/n) K Q_s`, so
//!   `surrogate = -alpha (2 eta/n) sum_s sum_ab S_ab (u_sa - u_sb)(Q_sa - Q_sb)`. Linear in
//!   `S`: `dL_meta/dS_ab = -alpha (2 eta/n) sum_s (u_sa - u_sb)(Q_sa - Q_sb)`, non-zero at
//!   `S = I` whenever following `g` would move two actions' values apart or together.
//!
//! In both, `dL_meta/dS = d surrogate / dS` with `Q_s` and `u_s` detached, which is
//! candle's ordinary backward ([`crate::directional`] builds the
//! surrogate). `u` comes from two forward passes at `theta +- eps g/|g|` (central
//! differences along the unit direction, scaled back by `|g|`), or with
//! `difference = "one_sided"` from one at `theta + eps g/|g|` and the caller's own
//! `Q(theta; B)`, with the network's noise unchanged between them.
//!
//! # Parametrisation of `S`
//!
//! [`meta_gradient`] returns the **full-matrix** gradient: every one of the `A^2` entries
//! treated as a free parameter, the penalty evaluated with `P(S)` normalising the rows of
//! that (possibly non-symmetric) matrix. That is what a finite difference of a single
//! entry measures, so the tests compare it entry by entry. `S`'s actual free parameters are
//! the off-diagonal pairs `S_ab = S_ba`, `a < b` (the diagonal is fixed at 1): the
//! derivative along such a pair is `G_ab + G_ba`. The step on `S` uses
//! [`crate::Similarity::tangent`], `(G + G^T)/2` with a zero diagonal, which is that
//! derivative halved: the gradient with respect to the symmetric matrix under the
//! Frobenius inner product, so that a plain step `S - beta * tangent` followed by the
//! projection equals the projection of `S - beta * G`.
//!
//! ```
//! use candle_core::{DType, Device, Tensor, Var};
//! use masp::{meta_gradient, MaspConfig, MetaModel, Similarity};
//!
//! /// A linear Q-network, Q = x W^T, with a regression loss standing in for TD.
//! struct Linear { w: Var }
//! struct Batch { x: Tensor, target: Tensor }
//! impl MetaModel for Linear {
//!     type Batch = Batch;
//!     fn vars(&self) -> Vec<Var> { vec![self.w.clone()] }
//!     fn q_values(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
//!         b.x.matmul(&self.w.t()?)
//!     }
//!     fn td_loss(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
//!         (self.q_values(b)? - &b.target)?.sqr()?.mean_all()
//!     }
//! }
//!
//! let dev = Device::Cpu;
//! let mut model = Linear { w: Var::rand(-1f64, 1., (4, 3), &dev)? }; // A = 4 actions
//! let b = Batch { x: Tensor::rand(-1f64, 1., (5, 3), &dev)?, target: Tensor::rand(-1f64, 1., (5, 4), &dev)? };
//! let s = Similarity::half_self_weight(4, DType::F64, &dev)?;
//! let config = MaspConfig { alpha: 0.1, eps: 1e-6, ..Default::default() };
//! let before = model.w.to_vec2::<f64>()?;
//! let meta = meta_gradient(&mut model, &s, &config, &b, &b)?;
//! assert_eq!(meta.grad.dims(), [4, 4]);
//! assert!(meta.report.meta_grad_norm > 0.0);
//! assert_eq!(model.w.to_vec2::<f64>()?, before); // theta restored exactly
//! # Ok::<(), masp::Error>(())
//! ```

use candle_core::{Tensor, Var};

#[cfg(test)]
use crate::config::Form;
use crate::config::{Difference, Lookahead, MaspConfig};
use crate::error::{Error, Result};
use crate::learned_similarity::{scalar, Similarity};
use crate::penalty::{directional, PenaltyOperator};
use cpu_kernels::{sum_squares, write_axpy, write_copy};

/// What MASP needs from a Q-network: its parameters, its TD loss and its Q-values on a
/// batch, and (for the preconditioned lookahead) Adam's preconditioner.
///
/// Contract: within one meta step the methods must be deterministic functions of the
/// variables' current values. A noisy network keeps its current noise sample (resample it
/// before or after the meta step, never inside these methods), so that `Q(theta + eps g)`,
/// `Q(theta - eps g)` and the caller's own `Q(theta)` (the one-sided difference's base) see
/// the same noise.
pub trait MetaModel {
    /// Whatever the network needs to compute its loss: states, actions, targets, weights.
    type Batch;

    /// The trainable parameters `theta`, in a fixed order. MASP saves and restores them
    /// (bit for bit) and perturbs them along `g`; parameters the losses do not reach are
    /// left alone.
    fn vars(&self) -> Vec<Var>;

    /// The TD loss on `batch`, a scalar (rank 0 or one element), differentiable in
    /// [`vars`](Self::vars). Rainbow: the importance-weighted C51 cross-entropy.
    fn td_loss(&mut self, batch: &Self::Batch) -> candle_core::Result<Tensor>;

    /// The online network's (expected) Q-values on `batch`'s states, `(n, A)`,
    /// differentiable in [`vars`](Self::vars). Distributional agents: `sum_z z p_z(s, a)`.
    fn q_values(&mut self, batch: &Self::Batch) -> candle_core::Result<Tensor>;

    /// Both at once, for a network that gets them from one forward pass (Rainbow's TD loss
    /// and expected Q-values share the distribution). The default calls the two methods.
    fn td_loss_and_q_values(&mut self, batch: &Self::Batch) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((self.td_loss(batch)?, self.q_values(batch)?))
    }

    /// Adam's current preconditioner `1 / (sqrt(v_hat) + eps)`, one tensor per variable in
    /// [`vars`](Self::vars)' order and shape, for `lookahead = adam_preconditioned`.
    fn preconditioner(&self) -> Option<Vec<Tensor>> {
        None
    }
}

/// One meta step's numbers, for logging.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetaReport {
    /// `L_TD(theta; B)`.
    pub td_loss: f64,
    /// `L_MASP(theta, S; B)`.
    pub penalty: f64,
    /// `penalty / |td_loss|`: docs/method.md asks to watch it (section 5) (a penalty that dwarfs the TD loss
    /// stops learning). Infinite when the TD loss is 0.
    pub penalty_td_ratio: f64,
    /// `L_meta = L_TD(theta'; B')`.
    pub meta_loss: f64,
    /// Frobenius norm of the step's gradient, [`Similarity::tangent`] of `dL_meta/dS`.
    pub meta_grad_norm: f64,
    /// `|D . g|`, the norm of the JVP direction.
    pub direction_norm: f64,
    /// Frobenius norm of `u = J (D . g)`, `(n, A)`.
    pub jvp_norm: f64,
}

/// The meta-gradient and its report.
#[derive(Clone, Debug)]
pub struct MetaGradient {
    /// `dL_meta/dS`, `(A, A)`, every entry a free parameter (see the module docs for how
    /// it maps to the symmetric parametrisation).
    pub grad: Tensor,
    pub report: MetaReport,
}

/// `dL_meta/dS` at the model's current parameters, for the update batch `batch` (`B`) and
/// the meta batch `fresh` (`B'`; pass `batch` again for `B' = B`). Uses `config`'s `eta`,
/// `form`, `alpha`, `lookahead` and `eps`.
///
/// The model's variables are restored bit for bit before this returns, also when it fails.
pub fn meta_gradient<M: MetaModel>(
    model: &mut M,
    similarity: &Similarity,
    config: &MaspConfig,
    batch: &M::Batch,
    fresh: &M::Batch,
) -> Result<MetaGradient> {
    meta_gradient_with(&mut SavedTheta::default(), model, similarity, config, batch, fresh, None)
}

/// [`meta_gradient`] (`lookahead = None`: step (1) computed here) or the same from a
/// given lookahead gradient (`Masp::meta_step_from_lookahead`), saving theta into `saved` (allocated on first use,
/// then reused: an agent that takes a meta step every few updates keeps one, see
/// [`crate::Masp`]). Validates `config`, reads the preconditioner if the lookahead uses
/// one, and restores theta if a step fails (every successful path has written theta back
/// already; a failed one may have left theta' or theta +- eps g in the network).
pub(crate) fn meta_gradient_with<M: MetaModel>(
    saved: &mut SavedTheta,
    model: &mut M,
    similarity: &Similarity,
    config: &MaspConfig,
    batch: &M::Batch,
    fresh: &M::Batch,
    lookahead: Option<&LookaheadGradient>,
) -> Result<MetaGradient> {
    config.validate()?;
    let vars = model.vars();
    if vars.is_empty() {
        return Err(Error::model("returned no variables from vars()"));
    }
    let preconditioner = match config.lookahead {
        Lookahead::Sgd => None,
        Lookahead::AdamPreconditioned => Some(checked_preconditioner(model, &vars)?),
    };
    let theta = saved.save(&vars)?;
    let step =
        Step { vars: &vars, theta: &theta, preconditioner: preconditioner.as_deref(), similarity, config };
    let result = match lookahead {
        Some(lookahead) => step.after_lookahead(model, batch, fresh, lookahead),
        None => step.lookahead(model, batch).and_then(|own| {
            let lookahead = LookaheadGradient { q: &own.0, grads: &own.1, td_loss: own.2, penalty: own.3 };
            step.after_lookahead(model, batch, fresh, &lookahead)
        }),
    };
    if result.is_err() {
        restore(&vars, &theta)?;
    }
    result
}

/// What the stages of one meta step share: the variables, their saved values, the
/// lookahead's preconditioner, `S` and the config.
#[derive(Clone, Copy)]
struct Step<'a> {
    vars: &'a [Var],
    theta: &'a [Tensor],
    preconditioner: Option<&'a [Tensor]>,
    similarity: &'a Similarity,
    config: &'a MaspConfig,
}

/// A copy of theta in storage of its own, so that restoring it is a memcpy (bit-exact).
/// Kept between meta steps, so that the copy does not allocate (and, for a network of
/// hundreds of MB, page-fault) every time.
#[derive(Debug, Default)]
pub(crate) struct SavedTheta {
    buffers: Vec<Var>,
}

impl SavedTheta {
    /// Copies the variables' current values in, and returns them as tensors (sharing the
    /// buffers' storage: read them before the next `save`).
    fn save(&mut self, vars: &[Var]) -> Result<Vec<Tensor>> {
        let fits = self.buffers.len() == vars.len()
            && self.buffers.iter().zip(vars).all(|(b, v)| {
                b.dims() == v.dims() && b.dtype() == v.dtype() && b.device().same_device(v.device())
            });
        if fits {
            for (b, v) in self.buffers.iter().zip(vars) {
                write_copy(b, v.as_tensor())?;
            }
        } else {
            self.buffers = vars
                .iter()
                .map(|v| Var::from_tensor(&v.as_tensor().detach().copy()?))
                .collect::<candle_core::Result<_>>()?;
        }
        Ok(self.buffers.iter().map(|b| b.as_tensor().clone()).collect())
    }
}

/// Step (1), the lookahead's ingredients at `theta` on `B`: what an agent already has after
/// the backward pass of its own update on `B`, with `S` as it is now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LookaheadGradient<'a> {
    /// `Q(theta; B)`, `(n, A)`, the Q-values the penalty was computed on.
    pub q: &'a Tensor,
    /// `grad_theta [L_TD(theta; B) + L_MASP(theta, S; B)]`, one entry per
    /// [`MetaModel::vars`] (`None` where the loss does not reach a variable); unclipped.
    pub grads: &'a [Option<Tensor>],
    /// `L_TD(theta; B)` and `L_MASP(theta, S; B)`, for the report.
    pub td_loss: f64,
    pub penalty: f64,
}

impl Step<'_> {
    /// Step (1), the lookahead on B with S held fixed: `Q(theta; B)`, the gradient of
    /// `L_TD + L_MASP` at theta, and the two losses.
    #[allow(clippy::type_complexity)] // LookaheadGradient's fields, owned
    fn lookahead<M: MetaModel>(
        &self,
        model: &mut M,
        batch: &M::Batch,
    ) -> Result<(Tensor, Vec<Option<Tensor>>, f64, f64)> {
        let fixed = PenaltyOperator::new(&self.similarity.tensor(), self.config.form, self.config.eta)?;
        let (td, q) = model.td_loss_and_q_values(batch)?;
        let td_loss = loss_value(&td, "td_loss(B)")?;
        let td = td.reshape(())?; // a one-element loss of any rank, added to the rank-0 penalty
        let penalty = fixed.penalty(&q)?;
        let penalty_value = scalar(&penalty)?;
        let grads = (td + penalty)?.backward()?;
        let grads = self.vars.iter().map(|v| grads.get(v).cloned()).collect();
        Ok((q, grads, td_loss, penalty_value))
    }
}

impl Step<'_> {
    /// Steps (2) to (5), from the lookahead's gradient: `theta'`, `g` at `theta'` on `B'`,
    /// the JVP and the surrogate's gradient in `S`.
    fn after_lookahead<M: MetaModel>(
        &self,
        model: &mut M,
        batch: &M::Batch,
        fresh: &M::Batch,
        lookahead: &LookaheadGradient,
    ) -> Result<MetaGradient> {
        let Step { vars, theta, preconditioner, similarity, config } = *self;
        if lookahead.grads.len() != vars.len() {
            return Err(Error::model(format!(
                "has {} variables, but the lookahead gradient has {} entries",
                vars.len(),
                lookahead.grads.len()
            )));
        }
        let precondition = |i: usize, g: &Tensor| -> candle_core::Result<Tensor> {
            match preconditioner {
                Some(d) => g * &d[i],
                None => Ok(g.clone()),
            }
        };
        // theta' = theta - alpha D (grad L_TD + grad L_MASP).
        for (i, (var, g)) in vars.iter().zip(lookahead.grads).enumerate() {
            if let Some(g) = g {
                write_axpy(var, &theta[i], -config.alpha, &precondition(i, g)?)?;
            }
        }
        // (2) g = grad L_TD(theta'; B'): an ordinary backward pass at theta'.
        let meta = model.td_loss(fresh)?;
        let meta_loss = loss_value(&meta, "td_loss(B')")?;
        let grads = meta.backward()?;
        let direction = vars
            .iter()
            .enumerate()
            .map(|(i, var)| grads.get(var).map(|g| precondition(i, g)).transpose())
            .collect::<candle_core::Result<Vec<_>>>()?;
        // (3) Back to theta before anything else reads the network: here only the variables the
        // loss does not reach; `differences` writes theta +- eps g over the others from
        // `theta` itself (a full copy of the network saved).
        for ((var, t), d) in vars.iter().zip(theta).zip(&direction) {
            if d.is_none() {
                write_copy(var, t)?;
            }
        }
        let (u, direction_norm) = differences(model, vars, theta, &direction, config, (batch, lookahead.q))?;
        let u = u.map_or_else(|| lookahead.q.zeros_like(), Ok)?;
        let jvp = Jvp {
            q: lookahead.q,
            u: &u,
            td_loss: lookahead.td_loss,
            penalty: lookahead.penalty,
            meta_loss,
            direction_norm,
        };
        meta_gradient_from_jvp(similarity, config, &jvp)
    }
}

/// Steps (1) to (4) done by the caller, as numbers: what [`meta_gradient_from_jvp`] needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jvp<'a> {
    /// `Q(theta; B)`, `(n, A)`, the Q-values the penalty was computed on.
    pub q: &'a Tensor,
    /// `u = J_B (D . g)`, `(n, A)`.
    pub u: &'a Tensor,
    /// `L_TD(theta; B)` and `L_MASP(theta, S; B)`, for the report.
    pub td_loss: f64,
    pub penalty: f64,
    /// `L_meta = L_TD(theta'; B')`.
    pub meta_loss: f64,
    /// `|D . g|`.
    pub direction_norm: f64,
}

/// `dL_meta/dS` for a caller that did the network's part of the meta step itself (steps 1
/// to 4: the lookahead, `g` and `u = J g`), e.g. rainbow's learner through
/// `MetaAccess::lookahead_jvp`, which never writes the parameters: only the surrogate's
/// gradient in `S` (step 5) is left. With the numbers the generic path
/// computes, the two return the same.
pub(crate) fn meta_gradient_from_jvp(
    similarity: &Similarity,
    config: &MaspConfig,
    jvp: &Jvp,
) -> Result<MetaGradient> {
    config.validate()?;
    finite_loss(jvp.meta_loss, "td_loss(B')")?;
    let along = surrogate_gradient(similarity, config, jvp.q, jvp.u, jvp.direction_norm)?;
    Ok(MetaGradient {
        grad: along.grad,
        report: MetaReport {
            td_loss: jvp.td_loss,
            penalty: jvp.penalty,
            penalty_td_ratio: jvp.penalty / jvp.td_loss.abs(),
            meta_loss: jvp.meta_loss,
            meta_grad_norm: along.meta_grad_norm,
            direction_norm: along.direction_norm,
            jvp_norm: along.jvp_norm,
        },
    })
}

/// [`surrogate_gradient`]'s result: `dL_meta/dS` and the norms behind it.
#[derive(Clone, Debug)]
pub(crate) struct SurrogateGradient {
    /// `d surrogate / dS`, `(A, A)`, full matrix as [`MetaGradient::grad`].
    pub grad: Tensor,
    /// Frobenius norm of [`Similarity::tangent`] of `grad`.
    pub meta_grad_norm: f64,
    /// `|direction|`.
    pub direction_norm: f64,
    /// Frobenius norm of `u = J direction`.
    pub jvp_norm: f64,
}

/// Steps (4) and (5) alone, for a caller that already has the JVP direction `D . g`
/// (one entry per [`MetaModel::vars`], `None` where the loss does not reach a variable)
/// and `q = Q(theta; B)`, `(n, A)`, at the model's current `theta`: the JVP's forward
/// passes and the surrogate's backward, no lookahead. With the direction
/// [`meta_gradient`] computes, the two agree.
///
/// `g` must be the gradient of the TD loss alone. The gradient an agent steps along is that
/// of `L_TD + L_MASP`: passed here, its penalty part adds
/// `-alpha d/dS sum_s <dL_MASP/dQ_s(B), J_s D grad L_MASP(B')>` to the result, a term of
/// order `eta` (not a higher order in `alpha`) that is no part of `L_meta` and rewards `S`
/// for making the penalty's own gradient large. An agent's own next gradient is therefore
/// not a drop-in `g`, unless it computes its TD gradient apart from the penalty's (a second
/// backward pass); clipping only rescales `g`, which the Adam step on `S` ignores.
///
/// The model's variables are restored bit for bit before this returns, also when it fails.
#[cfg(test)]
pub(crate) fn meta_gradient_from_direction<M: MetaModel>(
    model: &mut M,
    similarity: &Similarity,
    config: &MaspConfig,
    batch: &M::Batch,
    q: &Tensor,
    direction: &[Option<Tensor>],
) -> Result<SurrogateGradient> {
    config.validate()?;
    let vars = model.vars();
    if direction.len() != vars.len() {
        return Err(Error::model(format!(
            "has {} variables, but the direction has {} entries",
            vars.len(),
            direction.len()
        )));
    }
    for (i, (d, v)) in direction.iter().zip(&vars).enumerate() {
        if let Some(d) = d.as_ref().filter(|d| d.dims() != v.dims()) {
            return Err(Error::model(format!(
                "variable {i} has shape {:?}, but its direction has shape {:?}",
                v.dims(),
                d.dims()
            )));
        }
    }
    let theta = SavedTheta::default().save(&vars)?;
    let result = differences(model, &vars, &theta, direction, config, (batch, q));
    match result {
        Ok((u, direction_norm)) => {
            let u = u.map_or_else(|| q.zeros_like(), Ok)?;
            surrogate_gradient(similarity, config, q, &u, direction_norm)
        }
        Err(e) => {
            restore(&vars, &theta)?; // a successful `differences` has restored theta
            Err(e)
        }
    }
}

/// Step (4): `u = J d` by finite differences along the unit direction, same noise (`None`
/// for `d = 0`), and `|d|`: central, or one-sided from `q = Q(theta; batch)` (the caller's,
/// same parameters and noise) with `config.difference`. Variables without a direction must
/// hold `theta`; the others may hold anything (they are written from `theta`), and all hold
/// `theta` again when this returns `Ok`.
fn differences<M: MetaModel>(
    model: &mut M,
    vars: &[Var],
    theta: &[Tensor],
    direction: &[Option<Tensor>],
    config: &MaspConfig,
    (batch, q): (&M::Batch, &Tensor),
) -> Result<(Option<Tensor>, f64)> {
    let mut norm_sq = 0.0;
    for d in direction.iter().flatten() {
        norm_sq += sum_squares(d)?;
    }
    let direction_norm = norm_sq.sqrt();
    check_direction_norm(direction_norm)?;
    let u = if direction_norm > 0.0 {
        let step = config.eps / direction_norm;
        let mut at = |sign: f64| -> Result<Tensor> {
            for ((var, t), d) in vars.iter().zip(theta).zip(direction) {
                if let Some(d) = d {
                    write_axpy(var, t, sign * step, d)?;
                }
            }
            Ok(model.q_values(batch)?.detach())
        };
        let plus = at(1.0)?;
        let u = match config.difference {
            Difference::Central => ((plus - at(-1.0)?)? * (1.0 / (2.0 * step)))?,
            Difference::OneSided => ((plus - q.detach())? * (1.0 / step))?,
        };
        restore(vars, theta)?;
        Some(u)
    } else {
        restore(vars, theta)?;
        None
    };
    Ok((u, direction_norm))
}

fn check_direction_norm(direction_norm: f64) -> Result<()> {
    if direction_norm.is_finite() {
        return Ok(());
    }
    Err(Error::NonFinite {
        what: "the meta-gradient direction |g|".into(),
        value: direction_norm,
        hint: "the TD loss at the looked-ahead parameters diverged: lower alpha",
    })
}

/// Step (5): the surrogate `-alpha sum_s <dL_MASP/dQ_s, u_s>`, differentiated in S alone.
fn surrogate_gradient(
    similarity: &Similarity,
    config: &MaspConfig,
    q: &Tensor,
    u: &Tensor,
    direction_norm: f64,
) -> Result<SurrogateGradient> {
    check_direction_norm(direction_norm)?;
    if u.dims() != q.dims() {
        return Err(Error::model(format!("gave u of shape {:?} for Q of shape {:?}", u.dims(), q.dims())));
    }
    let (q, u) = (q.detach(), u.detach());
    let jvp_norm = scalar(&u.sqr()?.sum_all()?)?.sqrt();
    let s = similarity.var();
    let surrogate = (directional(s.as_tensor(), config.form, config.eta, &q, &u)? * -config.alpha)?;
    let grad = match surrogate.backward()?.remove(s.as_tensor()) {
        Some(g) => g,
        None => s.as_tensor().zeros_like()?,
    };
    let meta_grad_norm = scalar(&similarity.tangent(&grad)?.sqr()?.sum_all()?)?.sqrt();
    if !meta_grad_norm.is_finite() {
        return Err(Error::NonFinite {
            what: "dL_meta/dS".into(),
            value: meta_grad_norm,
            hint: "check the Q-values and the JVP step eps",
        });
    }
    Ok(SurrogateGradient { grad, meta_grad_norm, direction_norm, jvp_norm })
}

/// Writes the saved values back into every variable.
fn restore(vars: &[Var], theta: &[Tensor]) -> Result<()> {
    for (var, t) in vars.iter().zip(theta) {
        write_copy(var, t)?;
    }
    Ok(())
}

/// A loss's value, after checking it is one finite number.
fn loss_value(loss: &Tensor, what: &str) -> Result<f64> {
    if loss.elem_count() != 1 {
        return Err(Error::model(format!(
            "{what} returned shape {:?}: a loss must be one number",
            loss.dims()
        )));
    }
    finite_loss(scalar(&loss.flatten_all()?.get(0)?)?, what)
}

fn finite_loss(value: f64, what: &str) -> Result<f64> {
    if !value.is_finite() {
        return Err(Error::NonFinite { what: what.into(), value, hint: "the agent's loss diverged" });
    }
    Ok(value)
}

/// The model's preconditioner, one tensor per variable of the same shape.
fn checked_preconditioner<M: MetaModel>(model: &M, vars: &[Var]) -> Result<Vec<Tensor>> {
    let d = model.preconditioner().ok_or_else(|| {
        Error::model(
            "has no preconditioner, but MaspConfig.lookahead = adam_preconditioned needs one: \
             implement MetaModel::preconditioner or use lookahead = sgd",
        )
    })?;
    if d.len() != vars.len() {
        return Err(Error::model(format!(
            "returned {} preconditioner tensors for {} variables",
            d.len(),
            vars.len()
        )));
    }
    for (i, (d, v)) in d.iter().zip(vars).enumerate() {
        if d.dims() != v.dims() {
            return Err(Error::model(format!(
                "returned a preconditioner of shape {:?} for variable {i} of shape {:?}",
                d.dims(),
                v.dims()
            )));
        }
    }
    Ok(d)
}

#[cfg(test)]
#[path = "../tests/common/mlp.rs"]
mod mlp;

#[cfg(test)]
mod tests {
    use candle_core::Tensor;

    use super::mlp::*;
    use super::*;

    /// [`meta_gradient_from_direction`] with the direction `D g` computed by hand agrees with
    /// [`meta_gradient`].
    #[test]
    fn along_a_given_direction_agrees_with_the_full_meta_gradient() {
        let mut rng = Lcg(11);
        let mut model = Mlp::new(&mut rng);
        model.preconditioner = Some(model.vars().iter().map(|v| rng.tensor(v.dims(), 0.5, 2.0)).collect());
        let (b, b2) = (model.batch(&mut rng, 10), model.batch(&mut rng, 12));
        let cfg = config(Form::RowNormalised, Lookahead::AdamPreconditioned);
        let s = Similarity::from_tensor(&Tensor::new(random_s(&mut rng), &CPU).unwrap()).unwrap();
        let full = meta_gradient(&mut model, &s, &cfg, &b, &b2).unwrap();

        // The direction D g, by hand: lookahead, backward at theta', restore.
        let vars = model.vars();
        let theta: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy().unwrap().detach()).collect();
        let d = model.preconditioner.clone().unwrap();
        let q = model.q_values(&b).unwrap();
        let loss = (model.td_loss(&b).unwrap() + brute_penalty(&q, &s.tensor(), cfg.form, cfg.eta)).unwrap();
        let grads = loss.backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let step = (grads.get(v).unwrap() * &d[i]).unwrap();
            v.set(&(&theta[i] - (step * cfg.alpha).unwrap()).unwrap()).unwrap();
        }
        let grads = model.td_loss(&b2).unwrap().backward().unwrap();
        let direction: Vec<Option<Tensor>> =
            vars.iter().enumerate().map(|(i, v)| Some((grads.get(v).unwrap() * &d[i]).unwrap())).collect();
        for (v, t) in vars.iter().zip(&theta) {
            v.set(t).unwrap();
        }

        let before = model.params();
        let along = meta_gradient_from_direction(&mut model, &s, &cfg, &b, &q, &direction).unwrap();
        assert_eq!(model.params(), before);
        let err = rel_err(
            &along.grad.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            &full.grad.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        );
        assert!(err < 1e-8, "{err:e}");
        assert!(
            (along.direction_norm - full.report.direction_norm).abs() < 1e-12 * full.report.direction_norm
        );
        assert!(meta_gradient_from_direction(&mut model, &s, &cfg, &b, &q, &direction[..2]).is_err());
    }
}
