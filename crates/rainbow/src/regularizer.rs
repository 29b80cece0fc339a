//! The regulariser hook: how MASP (or any penalty on Q-values with a meta step) plugs into
//! the learner without Rainbow knowing anything about it.
//!
//! One learner update is:
//!
//! ```text
//! log p = online(obs)                        (batch, actions, atoms)   one forward pass
//! L     = L_TD(log p, target) + penalty(Q)   Q = sum_z z p_z, (batch, actions), same pass
//! backward                                   grad_theta L, unclipped
//! before_step(access, gradient)              the regulariser's own step (MASP: the meta step)
//! clip the gradient norm, Adam step
//! ```
//!
//! [`Regularizer::penalty`] sees the online network's expected Q-values of the batch's
//! states, from the same forward pass (and noise sample) as the TD loss and differentiable
//! with respect to the online parameters; the scalar it returns is added to the TD loss.
//! [`Regularizer::before_step`] runs at the parameters the update's gradient was taken at,
//! so a one-step meta-gradient (MASP design, section 4) can use that gradient as its
//! lookahead instead of recomputing it. It gets the [`UpdateGradient`] and a
//! [`MetaAccess`]: exactly what such a meta step needs, and nothing of the learner's
//! internals:
//!
//! * [`MetaAccess::vars`]: the online parameters, in a fixed order; a regulariser may
//!   `Var::set` them for a lookahead, and must restore them before returning;
//! * [`MetaAccess::last_batch`], [`MetaAccess::sample_batch`]: B and a fresh B';
//! * [`MetaAccess::td_loss`], [`MetaAccess::q_values`]: the loss and the Q-values at the
//!   *current* values of those variables and the *current* noise sample (so `Q(theta + eps
//!   g)` and `Q(theta - eps g)` see the same noise); [`MetaAccess::td_loss_and_q_values`]
//!   both from one forward pass;
//! * [`MetaAccess::adam_preconditioner`]: for the Adam-lookahead option;
//! * [`MetaAccess::set_action_context`]: the S-embedding's context, for the updates after
//!   this one;
//! * [`MetaAccess::lookahead_jvp`]: the network work of a one-step meta-gradient with a
//!   plain SGD lookahead, done by the learner with the structure of its gradients
//!   (`lookahead.rs`), when [`Regularizer::wants_lookahead_jvp`] asked for it before the
//!   update.
//!
//! [`NoRegularizer`] (also `()`) adds nothing.
//!
//! ```
//! use candle_core::Tensor;
//! use rainbow::{MetaAccess, Regularizer, UpdateGradient};
//!
//! /// eta * mean_s ||Q_s||^2: pulls Q-values towards 0.
//! struct L2 { eta: f64 }
//! impl Regularizer for L2 {
//!     fn penalty(&mut self, q: &Tensor) -> candle_core::Result<Option<Tensor>> {
//!         let per_state = q.sqr()?.sum(1)?; // (batch,)
//!         Ok(Some((per_state.mean_all()? * self.eta)?))
//!     }
//!     fn before_step(&mut self, _: &mut dyn MetaAccess, _: &UpdateGradient) -> candle_core::Result<()> {
//!         Ok(())
//!     }
//! }
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use candle_core::{Result, Tensor, Var};

use crate::device_batch::DeviceBatch;

/// A penalty on the batch's Q-values plus an optional step of its own after each update.
pub trait Regularizer {
    /// The penalty for the online Q-values `q` `(batch, actions)` of the batch's states; a
    /// scalar added to the TD loss, or `None` for no penalty this update.
    fn penalty(&mut self, q: &Tensor) -> Result<Option<Tensor>>;

    /// Runs after the update's backward pass and before its optimiser step, with the
    /// parameters still those the gradient was taken at: a meta step, logging, etc.
    /// Variables changed through `access` must be restored before returning.
    fn before_step(&mut self, access: &mut dyn MetaAccess, gradient: &UpdateGradient) -> Result<()>;

    /// Whether the learner should compute `q` and call [`Regularizer::penalty`] at all;
    /// `false` saves the expected-value computation over every action and atom. Default
    /// `true`.
    fn uses_penalty(&self) -> bool {
        true
    }

    /// Whether the coming update's [`Regularizer::before_step`] will call
    /// [`MetaAccess::lookahead_jvp`]. Asked before the update's forward pass: the learner then
    /// keeps each head layer's input and output gradient from its backward pass (a few MB;
    /// without them `lookahead_jvp` returns `None`). Default `false`.
    fn wants_lookahead_jvp(&self) -> bool {
        false
    }
}

/// What [`MetaAccess::lookahead_jvp`] returns: the network's part of a one-step
/// meta-gradient with a plain SGD lookahead (docs/method.md, section 3).
#[derive(Clone, Debug)]
pub struct LookaheadJvp {
    /// `L_TD(theta'; B')`, `theta' = theta - alpha grad` with `grad` the update's gradient.
    pub meta_loss: f64,
    /// `|g|`, `g = grad_theta' L_TD(theta'; B')` over every parameter. Not checked: a
    /// loss that diverged at `theta'` makes it infinite or NaN (and `u` zeros).
    pub direction_norm: f64,
    /// `u = J_B g`, `(batch, actions)`: the change of the expected Q-values of
    /// [`MetaAccess::last_batch`] along `g`, by the request's [`Difference`] with
    /// `s = eps / |g|` and the update's noise; zeros when `|g|` is 0 or not finite.
    pub u: Tensor,
    /// Wall time of its stages, when the learner's profiling is on.
    pub timings: LookaheadTimings,
}

/// The stages of [`MetaAccess::lookahead_jvp`] (zero unless profiling is on).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LookaheadTimings {
    /// Building the torso at `theta'` and the update's head layers.
    pub setup: std::time::Duration,
    /// The network passes of `L_TD(theta'; B')` (three; two when `B' = B` reuses the
    /// target pass, one when it reuses the update's whole target).
    pub forward: std::time::Duration,
    /// Its backward pass, and `|g|`.
    pub backward: std::time::Duration,
    /// The difference's forward passes (two central, one one-sided) and `u`.
    pub jvp: std::time::Duration,
}

/// What [`Regularizer::before_step`] gets of the update: its gradient and the values it was
/// computed from.
#[derive(Clone, Copy, Debug)]
pub struct UpdateGradient<'a> {
    /// The update's number, 1-based.
    pub update: u64,
    /// `grad_theta [L_TD + penalty]` on [`MetaAccess::last_batch`] at the current
    /// parameters, one per [`MetaAccess::vars`] (zeros where the loss does not reach a
    /// variable), before clipping.
    pub grads: &'a [Tensor],
    /// The expected Q-values `(batch, actions)` the penalty was computed on; `None` when
    /// [`Regularizer::uses_penalty`] is false.
    pub q: Option<&'a Tensor>,
    /// The update's TD loss `mean_i w_i CE_i`.
    pub td_loss: f32,
    /// The penalty's value, if there was one.
    pub penalty: Option<f32>,
}

/// What the learner lends a regulariser during each update; see the module docs.
pub trait MetaAccess {
    /// The online network's trainable parameters, in a fixed order (the order of
    /// [`crate::RainbowNet::named_vars`] and of [`MetaAccess::adam_preconditioner`]).
    fn vars(&self) -> Vec<Var>;

    /// The batch of the update (B).
    fn last_batch(&self) -> &DeviceBatch;

    /// A fresh batch from the replay (B'), with importance weights for the current step.
    fn sample_batch(&mut self) -> Result<DeviceBatch>;

    /// The scalar importance-weighted C51 loss of `batch` at the current values of
    /// [`MetaAccess::vars`] and the current noise, with the target distribution from the
    /// target network (double-Q as configured); differentiable w.r.t. the online variables.
    fn td_loss(&self, batch: &DeviceBatch) -> Result<Tensor>;

    /// The loss of [`MetaAccess::td_loss`] on [`MetaAccess::last_batch`] at the current
    /// variables and noise, against the update's own target distribution (computed at the
    /// update's parameters; see [`LookaheadRequest::update_target`]). `None` where the
    /// access keeps no update target (the default).
    fn td_loss_on_update_target(&self) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// The online expected Q-values `(batch, actions)` of `batch`'s states at the current
    /// variables and noise.
    fn q_values(&self, batch: &DeviceBatch) -> Result<Tensor>;

    /// [`MetaAccess::td_loss`] and [`MetaAccess::q_values`] of the same `batch` from one
    /// online forward pass, so that a loss built from both backpropagates through the
    /// network once. The default calls the two methods.
    fn td_loss_and_q_values(&self, batch: &DeviceBatch) -> Result<(Tensor, Tensor)> {
        Ok((self.td_loss(batch)?, self.q_values(batch)?))
    }

    /// Adam's diagonal preconditioner `1 / (sqrt(v_hat) + eps)` per variable, aligned with
    /// [`MetaAccess::vars`]; `None` before the first step (so in the first update's
    /// [`Regularizer::before_step`]).
    fn adam_preconditioner(&self) -> Option<Vec<Tensor>>;

    /// A one-step lookahead and the change of the Q-values along the gradient found there:
    /// `theta' = theta - alpha grad` (`grad` the update's unclipped gradient,
    /// [`UpdateGradient::grads`]), `g = grad L_TD(theta'; B')` with the current noise and
    /// target network, and `u = J g` on [`MetaAccess::last_batch`] by a difference with
    /// step `eps` along `g / |g|` ([`LookaheadRequest`], [`LookaheadJvp`]). The same numbers,
    /// up to float rounding, as setting the variables to `theta'`, calling
    /// [`MetaAccess::td_loss`] and its backward pass, then [`MetaAccess::q_values`] at
    /// `theta + s g` (and `theta - s g`, or `theta` itself); but the variables are never
    /// written. `None` where this access cannot (the default, and a learner whose regulariser
    /// did not ask with [`Regularizer::wants_lookahead_jvp`]): do it through the other
    /// methods then.
    fn lookahead_jvp(&self, request: &LookaheadRequest<'_>) -> Result<Option<LookaheadJvp>> {
        let _ = request;
        Ok(None)
    }

    /// Hands the online and target networks a new action context `(actions, actions)`, the
    /// constant input of their S-embedding ([`crate::SEmbeddingConfig`]), for the updates
    /// and actions that follow. The default is an error: an access without such networks.
    fn set_action_context(&mut self, context: &Tensor) -> Result<()> {
        let _ = context;
        candle_core::bail!("this MetaAccess holds no network with an S-embedding")
    }
}

/// How [`MetaAccess::lookahead_jvp`] differences `u = J g` along `g / |g|`, `s = eps / |g|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Difference {
    /// `(Q(theta + s g) - Q(theta - s g)) / 2s`: error of order `s^2`, two network passes.
    #[default]
    Central,
    /// `(Q(theta + s g) - Q(theta)) / s` with the update's own `Q(theta)`: error of order
    /// `s`, one network pass.
    OneSided,
}

/// What [`MetaAccess::lookahead_jvp`] computes.
#[derive(Clone, Copy, Debug)]
pub struct LookaheadRequest<'a> {
    /// The lookahead's step, `theta' = theta - alpha grad`.
    pub alpha: f64,
    /// The meta batch `B'`; `None`: the update's own batch, whose target-network pass on the
    /// next states (unchanged at `theta'`) is then reused.
    pub meta_batch: Option<&'a DeviceBatch>,
    /// With `meta_batch = None`, `true` takes the update's own target distribution as the
    /// loss's target: double-Q's `a*` chosen at `theta`, not `theta'`, which saves the
    /// online pass at `theta'` on the next states (the target is a constant of the loss, so
    /// this changes `g` only where some `a*` differs between the two). `false` chooses
    /// `a*` at `theta'`. A fresh batch has no update target: `true` with one is an error.
    pub update_target: bool,
    /// The difference's step length in parameter space.
    pub eps: f64,
    pub difference: Difference,
}

/// No penalty and no meta step: plain Rainbow.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRegularizer;

impl Regularizer for NoRegularizer {
    fn penalty(&mut self, _q: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }

    fn before_step(&mut self, _access: &mut dyn MetaAccess, _gradient: &UpdateGradient) -> Result<()> {
        Ok(())
    }

    fn uses_penalty(&self) -> bool {
        false
    }
}

/// A regulariser shared with its owner (who reads its state for logging and checkpoints
/// while the agent holds it): every method is forwarded, so the learner asks the inner
/// regulariser itself, [`Regularizer::wants_lookahead_jvp`] included.
impl<R: Regularizer + ?Sized> Regularizer for Rc<RefCell<R>> {
    fn penalty(&mut self, q: &Tensor) -> Result<Option<Tensor>> {
        self.borrow_mut().penalty(q)
    }

    fn before_step(&mut self, access: &mut dyn MetaAccess, gradient: &UpdateGradient) -> Result<()> {
        self.borrow_mut().before_step(access, gradient)
    }

    fn uses_penalty(&self) -> bool {
        self.borrow().uses_penalty()
    }

    fn wants_lookahead_jvp(&self) -> bool {
        self.borrow().wants_lookahead_jvp()
    }
}

/// `()` is [`NoRegularizer`].
impl Regularizer for () {
    fn penalty(&mut self, q: &Tensor) -> Result<Option<Tensor>> {
        NoRegularizer.penalty(q)
    }

    fn before_step(&mut self, access: &mut dyn MetaAccess, gradient: &UpdateGradient) -> Result<()> {
        NoRegularizer.before_step(access, gradient)
    }

    fn uses_penalty(&self) -> bool {
        false
    }
}
