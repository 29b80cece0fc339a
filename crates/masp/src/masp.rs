//! [`Masp`]: the regulariser an agent holds. It owns `S`, its optimiser and the penalty
//! operator, adds the penalty to each update's loss, and runs a meta step every
//! `meta_interval` updates (docs/method.md, sections 2 and 3).
//!
//! Per update the agent calls [`Masp::penalty`] on the batch's expected Q-values, `(n, A)`,
//! and adds the scalar to its TD loss; after its optimiser step it calls
//! [`Masp::record_update`], and when that says a meta step is due, [`Masp::meta_step`] with
//! the update's batch and (if `fresh_batch`) a second one from replay.
//!
//! ```
//! use candle_core::{DType, Device, Tensor, Var};
//! use masp::{Masp, MaspConfig, MetaModel};
//!
//! struct Linear { w: Var } // Q = x W^T, A = 3 actions
//! impl MetaModel for Linear {
//!     type Batch = (Tensor, Tensor); // (states, regression targets)
//!     fn vars(&self) -> Vec<Var> { vec![self.w.clone()] }
//!     fn q_values(&mut self, b: &Self::Batch) -> candle_core::Result<Tensor> { b.0.matmul(&self.w.t()?) }
//!     fn td_loss(&mut self, b: &Self::Batch) -> candle_core::Result<Tensor> {
//!         (self.q_values(b)? - &b.1)?.sqr()?.mean_all()
//!     }
//! }
//!
//! let dev = Device::Cpu;
//! let mut model = Linear { w: Var::rand(-1f32, 1., (3, 2), &dev)? };
//! let config = MaspConfig { meta_interval: 2, ..Default::default() };
//! let (mut masp, _) = Masp::from_config(config, &["NOOP", "LEFT", "RIGHT"].map(String::from), None, DType::F32, &dev)?;
//! let batch = (Tensor::rand(-1f32, 1., (8, 2), &dev)?, Tensor::rand(-1f32, 1., (8, 3), &dev)?);
//! for update in 1..=4 {
//!     let q = model.q_values(&batch)?;
//!     let loss = (model.td_loss(&batch)? + masp.penalty(&q)?)?;
//!     // ... the agent's backward pass and optimiser step on `loss` go here ...
//!     if masp.record_update() {
//!         let report = masp.meta_step(&mut model, &batch, &batch)?;
//!         assert!(report.penalty_td_ratio.is_finite());
//!     }
//! }
//! assert_eq!((masp.updates(), masp.meta_steps()), (4, 2));
//! # Ok::<(), masp::Error>(())
//! ```

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::config::{MaspConfig, MetaOptimizer};
use crate::error::{Error, Result};
use crate::learned_similarity::Similarity;
use crate::meta_gradient::{
    meta_gradient_from_jvp, meta_gradient_with, Jvp, LookaheadGradient, MetaGradient, MetaModel, MetaReport,
    SavedTheta,
};
use crate::optimizer::SimilarityOptimizer;
use crate::penalty::PenaltyOperator;
use crate::signal::{EffectReference, MetaSignal, SignalWindow};
use crate::state::{self, Counters};
use crate::transfer::{Alignment, SavedSimilarity};

/// MASP for one agent: `S`, the optimiser that moves it, and the update count.
#[derive(Debug)]
pub struct Masp {
    config: MaspConfig,
    similarity: Similarity,
    /// The penalty with the current `S` folded in, detached: rebuilt after every step on S.
    operator: PenaltyOperator,
    optimizer: SimilarityOptimizer,
    updates: u64,
    meta_steps: u64,
    /// The meta step's copy of theta, kept between steps (one network's worth of memory).
    saved: SavedTheta,
    /// The tangents since the last [`Masp::take_signal`].
    signal: MetaSignal,
}

impl Masp {
    /// MASP with `similarity` as the starting `S`.
    pub fn new(config: MaspConfig, similarity: Similarity) -> Result<Self> {
        config.validate()?;
        let operator = PenaltyOperator::new(&similarity.tensor(), config.form, config.eta)?;
        let optimizer = SimilarityOptimizer::new(&config, similarity.var())?;
        let mut signal = MetaSignal::default();
        signal.open(&similarity)?;
        Ok(Self {
            config,
            similarity,
            operator,
            optimizer,
            updates: 0,
            meta_steps: 0,
            saved: SavedTheta::default(),
            signal,
        })
    }

    /// MASP over the actions `ids` (their identities, e.g. `UP+UP+FIRE`, in the Q-network's
    /// output order), with `S` built as `config.init` says (`prior`, `(A, A)`, is needed for
    /// `init = prior`), then overwritten from `config.init_file` where that file knows both
    /// actions. Returns how the file's rows matched, if there was one.
    pub fn from_config(
        config: MaspConfig,
        ids: &[String],
        prior: Option<&Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<(Self, Option<Alignment>)> {
        config.validate()?;
        let base = Similarity::from_init(&config.init, ids.len(), prior, dtype, device)?;
        let (similarity, alignment) = match &config.init_file {
            Some(path) => {
                let (s, a) = SavedSimilarity::load(path, device)?.align_onto(ids, &base)?;
                (s, Some(a))
            }
            None => (base, None),
        };
        Ok((Self::new(config, similarity)?, alignment))
    }

    /// The penalty `L_MASP` on `q`, `(n, A)`, a scalar to add to the TD loss. Differentiable
    /// in `q` only: `S` moves by the meta-gradient, never by the agent's loss.
    pub fn penalty(&self, q: &Tensor) -> Result<Tensor> {
        self.operator.penalty(q)
    }

    /// Counts one agent update; true when a meta step is due (every `meta_interval`
    /// updates, never with `meta_learning = false`).
    pub fn record_update(&mut self) -> bool {
        let due = self.meta_step_due_next();
        self.updates += 1;
        due
    }

    /// Whether the next [`Masp::record_update`] will say a meta step is due (an agent that
    /// prepares for the meta step during its update asks before it).
    pub fn meta_step_due_next(&self) -> bool {
        self.config.meta_learning && (self.updates + 1) % self.config.meta_interval == 0
    }

    /// One meta step: the closed-form `dL_meta/dS` ([`crate::meta_gradient`]) on the update batch
    /// `batch` (`B`) and the meta batch `fresh` (`B'`), then a projected step on `S` with
    /// `beta` (plain or Adam). The model's parameters are left bit-identical. On an error
    /// `S` is unchanged. The copy of theta it needs is kept for the next meta step (memory:
    /// one copy of the network's parameters).
    pub fn meta_step<M: MetaModel>(
        &mut self,
        model: &mut M,
        batch: &M::Batch,
        fresh: &M::Batch,
    ) -> Result<MetaReport> {
        let meta =
            meta_gradient_with(&mut self.saved, model, &self.similarity, &self.config, batch, fresh, None)?;
        self.step_on_similarity(meta)
    }

    /// [`Masp::meta_step`] for an agent that hands over the lookahead's gradient from its
    /// own update on `batch` at the model's current parameters: the same step on `S`
    /// without redoing the lookahead's forward and backward pass (rainbow's learner with
    /// the Adam-preconditioned lookahead).
    pub(crate) fn meta_step_from_lookahead<M: MetaModel>(
        &mut self,
        model: &mut M,
        batch: &M::Batch,
        fresh: &M::Batch,
        lookahead: &LookaheadGradient,
    ) -> Result<MetaReport> {
        let meta = meta_gradient_with(
            &mut self.saved,
            model,
            &self.similarity,
            &self.config,
            batch,
            fresh,
            Some(lookahead),
        )?;
        self.step_on_similarity(meta)
    }

    /// [`Masp::meta_step`] for an agent that did the network's part of the meta step itself
    /// ([`meta_gradient_from_jvp`]): the projected step on `S` from `u = J g` (rainbow's
    /// learner with the SGD lookahead).
    pub(crate) fn meta_step_from_jvp(&mut self, jvp: &Jvp) -> Result<MetaReport> {
        let meta = meta_gradient_from_jvp(&self.similarity, &self.config, jvp)?;
        self.step_on_similarity(meta)
    }

    /// The projected step on `S` along `meta`'s gradient, and the new penalty operator.
    fn step_on_similarity(&mut self, meta: MetaGradient) -> Result<MetaReport> {
        let tangent = self.similarity.tangent(&meta.grad)?;
        self.signal.record(&tangent)?;
        self.optimizer.step(self.similarity.var(), &tangent)?;
        self.similarity.project()?;
        self.operator = PenaltyOperator::new(&self.similarity.tensor(), self.config.form, self.config.eta)?;
        self.meta_steps += 1;
        Ok(meta.report)
    }

    /// Where the meta-gradient went since the last call ([`SignalWindow`]), scored against
    /// `reference` where the env knows its actions' effects; `None` if no meta step ran.
    pub fn take_signal(&mut self, reference: Option<EffectReference>) -> Result<Option<SignalWindow>> {
        self.signal.take(&self.similarity, reference)
    }

    /// Replaces `S` (e.g. after loading a checkpoint); the optimiser's state starts afresh.
    pub fn set_similarity(&mut self, similarity: Similarity) -> Result<()> {
        if similarity.num_actions() != self.similarity.num_actions() {
            return Err(Error::Shape {
                what: "the new similarity matrix".into(),
                expected: format!("({0}, {0})", self.similarity.num_actions()),
                got: similarity.tensor().dims().to_vec(),
            });
        }
        *self = Self {
            updates: self.updates,
            meta_steps: self.meta_steps,
            ..Self::new(self.config.clone(), similarity)?
        };
        Ok(())
    }

    /// Saves MASP's whole state into `dir`: `S` with its rows' identities `ids` (the
    /// actions in the Q-network's output order), the optimiser's state and the counters
    /// (the files: `src/state.rs`'s docs). Every file is written in full before
    /// [`crate::MASP_STATE_FILE`], which names the rest.
    pub fn save_state(&self, ids: &[String], dir: impl AsRef<Path>) -> Result<()> {
        let counters = Counters { updates: self.updates, meta_steps: self.meta_steps };
        state::save(dir.as_ref(), ids, &self.similarity, self.optimizer.adam_state(), &counters)
    }

    /// Restores the state [`Masp::save_state`] wrote into `dir`, for the same actions `ids`
    /// in the same order: `S`, the optimiser's state and the counters. The config stays this
    /// one's, but its `meta_optimizer` must be the saved one (Adam's moments mean nothing to
    /// plain descent, and a plain state has none to give Adam). On an error `self` is
    /// unchanged.
    pub fn load_state(&mut self, ids: &[String], dir: impl AsRef<Path>) -> Result<()> {
        let loaded = state::load(dir.as_ref(), ids, self.similarity.dtype(), self.similarity.device())?;
        let mut restored = Self::new(self.config.clone(), loaded.similarity)?;
        match (restored.optimizer.adam_state_mut(), loaded.adam) {
            (Some(adam), Some(saved)) => *adam = saved,
            (None, None) => {}
            (_, saved) => {
                let saved = if saved.is_some() { MetaOptimizer::Adam } else { MetaOptimizer::Plain };
                return Err(Error::config(
                    "MaspConfig",
                    "meta_optimizer",
                    self.config.meta_optimizer,
                    format!(
                        "the state in {} was saved with meta_optimizer = {saved:?}; resume with the run's own \
                         config",
                        dir.as_ref().display()
                    ),
                ));
            }
        }
        restored.updates = loaded.counters.updates;
        restored.meta_steps = loaded.counters.meta_steps;
        *self = restored;
        Ok(())
    }

    /// Adam's moments of `S`, `(m, v)`, each `(A, A)`, and its step count; `None` with
    /// plain descent. For tests and checks of a restored state.
    pub fn adam_state(&self) -> Option<(&Tensor, &Tensor, u64)> {
        self.optimizer.adam_state().map(|a| (&a.m, &a.v, a.step))
    }

    pub fn similarity(&self) -> &Similarity {
        &self.similarity
    }

    pub fn config(&self) -> &MaspConfig {
        &self.config
    }

    /// Agent updates counted so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Meta steps taken so far.
    pub fn meta_steps(&self) -> u64 {
        self.meta_steps
    }
}
