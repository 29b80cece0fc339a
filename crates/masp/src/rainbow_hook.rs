//! [`MaspRegularizer`]: MASP plugged into the `rainbow` crate's learner through its
//! [`rainbow::Regularizer`] hook (cargo feature `rainbow`, on by default).
//!
//! One learner update with MASP (docs/method.md, sections 2 and 3):
//!
//! ```text
//! penalty(Q)                   Q = sum_z z p_z (batch, actions), from the update's own
//!                              forward pass: Masp::penalty, added to the C51 loss
//! before_step(access, grad)    every meta_interval updates, before the learner's Adam step,
//!                              a meta step with
//!                              B  = access.last_batch()                (the update's batch)
//!                              B' = B (default) or access.sample_batch() (fresh_batch = true)
//!                              the lookahead = the update's own gradient of L_TD + L_MASP
//!   lookahead = sgd:           access.lookahead_jvp(alpha, B', eps), then
//!                              Masp::meta_step_from_jvp
//!   lookahead =                Masp::meta_step_from_lookahead through `access` seen as a
//!     adam_preconditioned:     MetaModel (type Batch = DeviceBatch)
//! ```
//!
//! The lookahead's gradient is exactly the one the learner has just computed (same
//! parameters, batch, noise and `S`), so the meta step does not recompute it: it costs one
//! forward and backward pass at `theta'` on `B'`, one forward pass for the one-sided JVP
//! (two for the central one), and the surrogate. With the SGD lookahead (the default) the
//! learner does the network's part itself (rainbow's `learner/lookahead.rs`): the head's
//! gradients stay as their batch factors, the update's own effective weights serve every
//! pass, and no parameter is written: none of the generic path's network-sized copies, nor
//! its weight gradients at `theta'` (the figures are in docs/benchmarks.md). For that it
//! records each head layer's input and output gradient in the update that ends in a meta
//! step ([`Regularizer::wants_lookahead_jvp`]). With `lookahead = adam_preconditioned`, the
//! preconditioner is Adam's before this update's step, and a meta step due at the first
//! update (no Adam statistics yet) is skipped.
//!
//! The learner's [`rainbow::MetaAccess`] already keeps MASP's contract: its `td_loss` and
//! `q_values` use the current variables and the current noise sample, which nothing
//! resamples during the meta step, so `Q(theta + eps g)`, `Q(theta - eps g)` and the
//! update's own `Q(theta)` see the same noise; `vars` and `adam_preconditioner` share one
//! order. The meta step leaves the online parameters bit-identical (the generic path
//! restores them from a copy; the learner's never writes them).
//!
//! With the S-embedding on the learner's networks (rainbow's `SEmbeddingConfig`), the hook
//! hands them `P(S)` as their context after every meta step (and, through
//! [`MaspRegularizer::install_action_context`], at the start and after loading a checkpoint),
//! and every meta step takes the path through the variables: the learner's factored
//! lookahead does not cover the embedding's parameters. Within a meta step the context is
//! held constant, so `S` reaches `L_meta` only through the penalty, as without it.
//!
//! The latest [`MetaReport`] and the current [`SimilarityStats`] are kept for logging;
//! [`MaspRegularizer::set_profiling`] times the meta step's stages ([`MetaTimings`]).
//!
//! ```
//! use candle_core::{DType, Device};
//! use masp::{MaspConfig, MaspRegularizer};
//! use rainbow::{Learner, LearnerConfig, NStepConfig, NetworkConfig, PrioritizedReplay, ReplayConfig, Transition};
//! use rl_env::{Obs, ObsSpec};
//!
//! let spec = ObsSpec::Vector { len: 2 };
//! let replay = PrioritizedReplay::new(&ReplayConfig { capacity: 100, ..Default::default() }, &NStepConfig::default(), &spec, 1)?;
//! let config = LearnerConfig { batch_size: 4, ..LearnerConfig::rainbow() };
//! let mut learner = Learner::new(&config, &NetworkConfig::mlp(16), replay, 3, DType::F32, &Device::Cpu, 0)?;
//! learner.replay_mut().start_episode(0, Obs::Vector(&[0.0, 0.0]))?;
//! for t in 0..8 {
//!     let step = Transition::primitive(t % 3, 1.0, 0.99, t == 7, false);
//!     learner.replay_mut().add(0, &step, Obs::Vector(&[t as f32, 1.0]))?;
//! }
//! // The actions' identities, in the network's output order.
//! let ids = ["NOOP", "LEFT", "LEFT+LEFT"].map(String::from);
//! let masp_config = MaspConfig { meta_interval: 2, ..Default::default() };
//! let (mut masp, _) = MaspRegularizer::for_learner(masp_config, &ids, None, &learner)?;
//! for step in 0..4 {
//!     let stats = learner.update(step, &mut masp)?;
//!     assert!(stats.penalty.is_some());
//! }
//! let report = masp.last_report().expect("two meta steps ran");
//! println!("penalty/TD {:.3}, |dL/dS| {:.2e}", report.penalty_td_ratio, report.meta_grad_norm);
//! println!("{:?}", masp.similarity_stats()?);
//! assert_eq!(masp.masp().meta_steps(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use candle_core::{Tensor, Var};
use rainbow::{
    DeviceBatch, Learner, LookaheadJvp, LookaheadRequest, MetaAccess, Regularizer, StageClock, UpdateGradient,
};

use crate::config::{Difference, Lookahead, MaspConfig, MetaTarget};
use crate::error::{Error, Result};
use crate::learned_similarity::SimilarityStats;
use crate::masp::Masp;
use crate::meta_gradient::{Jvp, LookaheadGradient, MetaModel, MetaReport};
use crate::transfer::Alignment;

/// [`Masp`] as a [`rainbow::Regularizer`]; see the module docs.
#[derive(Debug)]
pub struct MaspRegularizer {
    masp: Masp,
    /// The learner's update number and the report of the latest meta step.
    last: Option<(u64, MetaReport)>,
    /// [`SimilarityStats`] of the current `S`, computed when first asked for after a step on
    /// `S` (a pass over `A^2` entries that a log every few thousand updates does not need
    /// after every meta step).
    stats: OnceCell<SimilarityStats>,
    profile: bool,
    timings: MetaTimings,
    paths: MetaPaths,
    /// Whether the learner's networks have the S-embedding, whose context is `P(S)`.
    s_embedding: bool,
}

/// How many meta steps took each path: the learner's own [`MetaAccess::lookahead_jvp`]
/// (the SGD lookahead) or the generic one through [`MetaModel`] (the Adam-preconditioned
/// lookahead). Not saved in checkpoints: it counts this process's steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaPaths {
    pub learner: u64,
    pub generic: u64,
}

/// Wall time of the stages of the latest meta step, when profiling is on
/// ([`MaspRegularizer::set_profiling`]); the device is synchronised at every boundary. On
/// the generic path the stages are told apart by the order in which
/// [`crate::meta_gradient`] calls the learner: its forward passes are timed, the gaps
/// between them are the backward passes and parameter writes. On the learner's own path
/// ([`rainbow::MetaAccess::lookahead_jvp`]) they are the learner's stages, timed only
/// while the learner's profiling is on too ([`rainbow::Learner::set_profiling`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetaTimings {
    /// Drawing `B'` from the replay and copying it to the device.
    pub fresh_batch: Duration,
    /// Copying `theta`, reading Adam's preconditioner and writing `theta'` (and, when the
    /// update had no penalty, computing `Q(theta; B)`); on the learner's path, building the
    /// torso at `theta'`.
    pub save: Duration,
    /// `L_TD(theta'; B')`: the forward pass of `g`.
    pub meta_forward: Duration,
    /// `g`'s backward pass and writing `theta` back (on the learner's path: and `|g|`).
    pub meta_backward: Duration,
    /// `Q(theta + eps g/|g|; B)` (and `theta - eps g/|g|` if central): the JVP's forward
    /// passes and parameter writes.
    pub jvp: Duration,
    /// Restoring `theta`, the surrogate and its backward in `S`, the step on `S`, the
    /// projection and the new penalty operator (on the learner's path also `Q(theta; B)`
    /// when the update had no penalty).
    pub surrogate_and_step: Duration,
}

impl MetaTimings {
    pub fn total(&self) -> Duration {
        self.fresh_batch
            + self.save
            + self.meta_forward
            + self.meta_backward
            + self.jvp
            + self.surrogate_and_step
    }
}

impl MaspRegularizer {
    pub fn new(masp: Masp) -> Self {
        Self {
            masp,
            last: None,
            stats: OnceCell::new(),
            profile: false,
            timings: MetaTimings::default(),
            paths: MetaPaths::default(),
            s_embedding: false,
        }
    }

    /// MASP for `learner`'s network: `S` over the actions `ids` (their identities, in the
    /// network's output order), in the learner's dtype and on its device, built as
    /// [`Masp::from_config`] does. Fails if `ids` does not have one entry per action.
    pub fn for_learner(
        config: MaspConfig,
        ids: &[String],
        prior: Option<&Tensor>,
        learner: &Learner,
    ) -> Result<(Self, Option<Alignment>)> {
        let actions = learner.online().actions();
        if ids.len() != actions {
            return Err(Error::Shape {
                what: "the action identities".into(),
                expected: format!("({actions},), one per action of the learner's network"),
                got: vec![ids.len()],
            });
        }
        let s_embedding = learner.online().action_context().is_some();
        let (masp, alignment) = Masp::from_config(config, ids, prior, learner.dtype(), learner.device())?;
        Ok((Self { s_embedding, ..Self::new(masp) }, alignment))
    }

    /// Hands `learner`'s networks the current `P(S)` as their S-embedding's context, if they
    /// have one: at the start of a run and after loading MASP's state (after each meta step
    /// [`Regularizer::before_step`] does it itself).
    pub fn install_action_context(&self, learner: &mut Learner) -> Result<()> {
        if self.s_embedding {
            learner
                .set_action_context(&self.masp.similarity().row_normalised()?)
                .map_err(|e| Error::Model { reason: format!("could not take P(S) as its context: {e}") })?;
        }
        Ok(())
    }

    pub fn masp(&self) -> &Masp {
        &self.masp
    }

    /// The inner [`Masp`], e.g. to replace `S` after loading a checkpoint.
    pub fn masp_mut(&mut self) -> &mut Masp {
        self.stats.take();
        &mut self.masp
    }

    pub fn into_inner(self) -> Masp {
        self.masp
    }

    /// The report of the latest meta step, if one has run.
    pub fn last_report(&self) -> Option<&MetaReport> {
        self.last.as_ref().map(|(_, r)| r)
    }

    /// How many of this process's meta steps took each path.
    pub fn meta_paths(&self) -> MetaPaths {
        self.paths
    }

    /// The learner's update number after which the latest meta step ran.
    pub fn last_meta_update(&self) -> Option<u64> {
        self.last.as_ref().map(|(u, _)| *u)
    }

    /// [`SimilarityStats`] of the current `S` (computed once per step on `S`).
    pub fn similarity_stats(&self) -> Result<SimilarityStats> {
        if let Some(stats) = self.stats.get() {
            return Ok(*stats);
        }
        let stats = self.masp.similarity().stats()?;
        // A `&self` cache: `set` only fails if another call filled it first, with the same value.
        let _ = self.stats.set(stats);
        Ok(stats)
    }

    /// Turns per-stage timing of the meta step on or off (on costs a device
    /// synchronisation per stage).
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on;
    }

    /// The stage timings of the latest meta step (zero unless profiling is on).
    pub fn timings(&self) -> &MetaTimings {
        &self.timings
    }

    /// One meta step: by the learner's [`MetaAccess::lookahead_jvp`] with the SGD lookahead
    /// (an error if the learner did not record for it), through the learner seen as a
    /// [`MetaModel`] with the Adam-preconditioned one.
    fn meta_step(&mut self, access: &mut dyn MetaAccess, gradient: &UpdateGradient) -> Result<MetaReport> {
        let device = self.masp.similarity().device().clone();
        let clock = StageClock::start(&device, self.profile)?;
        let t0 = clock.now()?;
        let batch = access.last_batch().clone(); // tensors are shared: a cheap clone
        let fresh = if self.masp.config().fresh_batch { Some(access.sample_batch()?) } else { None };
        let t1 = clock.now()?;
        let q = match gradient.q {
            Some(q) => q.clone(),
            None => access.q_values(&batch)?, // eta = 0: no penalty pass to reuse (and a zero step on S)
        };
        let losses = (gradient.td_loss.into(), gradient.penalty.unwrap_or(0.0).into());
        let config = self.masp.config();
        let update_target = config.meta_target_in_effect() == MetaTarget::Update;
        // The S-embedding's parameters are outside the learner's factored lookahead: its meta
        // step goes through the variables, the same method at more cost.
        let (report, timings) = match config.lookahead {
            Lookahead::Sgd if !self.s_embedding => {
                // No silent fallback to the generic path: it is the same method at about
                // twice the cost, so a learner that did not record is a bug to surface.
                let request = LookaheadRequest {
                    alpha: config.alpha,
                    meta_batch: fresh.as_ref(),
                    update_target,
                    eps: config.eps,
                    difference: match config.difference {
                        Difference::Central => rainbow::Difference::Central,
                        Difference::OneSided => rainbow::Difference::OneSided,
                    },
                };
                let jvp = access.lookahead_jvp(&request)?.ok_or_else(|| Error::Model {
                    reason: "did not record the update's head gradients for the SGD lookahead's \
                                 meta step (Regularizer::wants_lookahead_jvp was not forwarded to the \
                                 learner?); set masp.lookahead = \"adam_preconditioned\" to take the \
                                 generic path on purpose"
                        .into(),
                })?;
                self.paths.learner += 1;
                self.meta_step_from_learner(&jvp, &q, losses, (clock, t1))?
            }
            Lookahead::Sgd | Lookahead::AdamPreconditioned => {
                self.paths.generic += 1;
                let fresh = fresh.as_ref().unwrap_or(&batch);
                let model = AccessModel { access, update_target, clock, calls: Vec::new() };
                self.meta_step_through_model(model, gradient, &q, losses, (&batch, fresh), t1)?
            }
        };
        if self.profile {
            self.timings = MetaTimings { fresh_batch: t1 - t0, ..timings };
        }
        Ok(report)
    }

    /// The meta step from the learner's [`LookaheadJvp`]: only the step on `S` is left. Its
    /// network stages are the learner's own timings.
    fn meta_step_from_learner(
        &mut self,
        jvp: &LookaheadJvp,
        q: &Tensor,
        (td_loss, penalty): (f64, f64),
        (clock, t1): (StageClock, Instant),
    ) -> Result<(MetaReport, MetaTimings)> {
        let (u, meta_loss, direction_norm) = (&jvp.u, jvp.meta_loss, jvp.direction_norm);
        let report =
            self.masp.meta_step_from_jvp(&Jvp { q, u, td_loss, penalty, meta_loss, direction_norm })?;
        let t = &jvp.timings;
        let network = t.setup + t.forward + t.backward + t.jvp;
        let timings = MetaTimings {
            save: t.setup,
            meta_forward: t.forward,
            meta_backward: t.backward,
            jvp: t.jvp,
            surrogate_and_step: (clock.now()? - t1).saturating_sub(network),
            ..Default::default()
        };
        Ok((report, timings))
    }

    /// The meta step through the learner seen as a [`MetaModel`]: the parameters written at
    /// `theta'` and `theta + eps g` (and `theta - eps g` if central), and restored.
    fn meta_step_through_model(
        &mut self,
        mut model: AccessModel,
        gradient: &UpdateGradient,
        q: &Tensor,
        (td_loss, penalty): (f64, f64),
        (batch, fresh): (&DeviceBatch, &DeviceBatch),
        t1: Instant,
    ) -> Result<(MetaReport, MetaTimings)> {
        let grads: Vec<Option<Tensor>> = gradient.grads.iter().cloned().map(Some).collect();
        let lookahead = LookaheadGradient { q, grads: &grads, td_loss, penalty };
        let report = self.masp.meta_step_from_lookahead(&mut model, batch, fresh, &lookahead)?;
        let t2 = model.clock.now()?;
        Ok((report, stage_timings(t1, &model.calls, t2)))
    }
}

impl Regularizer for MaspRegularizer {
    fn penalty(&mut self, q: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.masp.penalty(q)?))
    }

    /// Counts the update in [`Masp::record_update`] (so `meta_interval` counts the updates
    /// this regulariser has seen) and runs the meta step when it is due.
    fn before_step(
        &mut self,
        access: &mut dyn MetaAccess,
        gradient: &UpdateGradient,
    ) -> candle_core::Result<()> {
        let due = self.masp.record_update();
        let preconditioned = self.masp.config().lookahead == Lookahead::AdamPreconditioned;
        if due && !(preconditioned && access.adam_preconditioner().is_none()) {
            let report = self.meta_step(access, gradient)?;
            self.last = Some((gradient.update, report));
            self.stats.take();
            if self.s_embedding {
                access.set_action_context(&self.masp.similarity().row_normalised()?)?;
            }
        }
        Ok(())
    }

    /// No penalty to compute when `eta = 0` (the meta-gradient is then zero too: `S` stays put).
    fn uses_penalty(&self) -> bool {
        self.masp.config().eta > 0.0
    }

    /// Before an update that ends in a meta step with the SGD lookahead: the learner then
    /// does that step's network work without writing its parameters
    /// ([`MetaAccess::lookahead_jvp`]).
    fn wants_lookahead_jvp(&self) -> bool {
        self.masp.meta_step_due_next() && self.masp.config().lookahead == Lookahead::Sgd && !self.s_embedding
    }
}

/// The learner's [`MetaAccess`] as a [`MetaModel`] over its device batches, recording when
/// each forward pass ran (for [`MetaTimings`]).
struct AccessModel<'a, 'c> {
    access: &'a mut dyn MetaAccess,
    /// `td_loss` on the update's batch against the update's own target
    /// ([`MetaTarget::Update`] with `B' = B`).
    update_target: bool,
    clock: StageClock<'c>,
    calls: Vec<Call>,
}

/// One forward pass through the learner: which, and when (only while profiling).
struct Call {
    td_loss: bool,
    start: Instant,
    end: Instant,
}

impl AccessModel<'_, '_> {
    fn timed<T>(
        &mut self,
        td_loss: bool,
        f: impl FnOnce(&mut dyn MetaAccess) -> candle_core::Result<T>,
    ) -> candle_core::Result<T> {
        if !self.clock.is_on() {
            return f(&mut *self.access);
        }
        let start = self.clock.now()?;
        let out = f(&mut *self.access)?;
        let end = self.clock.now()?;
        self.calls.push(Call { td_loss, start, end });
        Ok(out)
    }
}

impl MetaModel for AccessModel<'_, '_> {
    type Batch = DeviceBatch;

    fn vars(&self) -> Vec<Var> {
        self.access.vars()
    }

    fn td_loss(&mut self, batch: &DeviceBatch) -> candle_core::Result<Tensor> {
        // With the update's target `batch` is the update's own (`B' = B`): the one batch the
        // learner keeps a target for.
        match self.update_target {
            true => self.timed(true, |a| {
                a.td_loss_on_update_target()?
                    .ok_or_else(|| candle_core::Error::Msg("the learner kept no update target".into()))
            }),
            false => self.timed(true, |a| a.td_loss(batch)),
        }
    }

    fn q_values(&mut self, batch: &DeviceBatch) -> candle_core::Result<Tensor> {
        self.timed(false, |a| a.q_values(batch))
    }

    /// One online forward pass for both, so the lookahead's backward runs through the
    /// network once.
    fn td_loss_and_q_values(&mut self, batch: &DeviceBatch) -> candle_core::Result<(Tensor, Tensor)> {
        self.timed(true, |a| a.td_loss_and_q_values(batch))
    }

    fn preconditioner(&self) -> Option<Vec<Tensor>> {
        self.access.adam_preconditioner()
    }
}

/// Splits the meta step that ran from `start` to `end` into stages by its forward passes,
/// in `Masp::meta_step_from_lookahead`'s order: the TD loss on `B'`, then the JVP's
/// Q-values. An unexpected order (no JVP when `g = 0`) leaves the unattributed time in
/// `surrogate_and_step`.
fn stage_timings(start: Instant, calls: &[Call], end: Instant) -> MetaTimings {
    let Some(meta) = calls.iter().position(|c| c.td_loss) else {
        return MetaTimings { surrogate_and_step: end - start, ..Default::default() };
    };
    let (meta_call, jvp) = (&calls[meta], &calls[meta + 1..]);
    let mut t = MetaTimings {
        save: meta_call.start - start,
        meta_forward: meta_call.end - meta_call.start,
        ..Default::default()
    };
    match (jvp.first(), jvp.last()) {
        (Some(a), Some(b)) => {
            t.meta_backward = a.start - meta_call.end;
            t.jvp = b.end - a.start;
            t.surrogate_and_step = end - b.end;
        }
        _ => t.surrogate_and_step = end - meta_call.end,
    }
    t
}
