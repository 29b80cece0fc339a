//! MASP, the Macro-Action Similarity Penalty (Hosu, Rebedea, Pascanu; NeurIPS 2025): a
//! meta-learned similarity matrix `S` over an agent's actions that ties the Q-values of
//! similar actions together. The method and its derivation are in docs/method.md.
//!
//! * [`Similarity`]: `S`, `(A, A)`, symmetric with entries in `[0, 1]` and a unit diagonal,
//!   in the Q-network's dtype and on its device; initialisations and [`SimilarityStats`].
//! * [`penalty`] and [`PenaltyOperator`]: `eta/n sum_s ||(I - P(S)) Q_s||^2` or the
//!   pairwise form on a batch's expected Q-values `(n, A)`; [`directional`], its
//!   derivative along a change of `Q`, as a function of `S` (the meta-gradient's
//!   surrogate).
//! * [`meta_gradient`]: `dL_meta/dS` in closed form (no second-order autodiff) for any
//!   Q-network behind the [`MetaModel`] trait.
//! * [`Masp`]: what an agent holds; the penalty for each update, a projected meta step on
//!   `S` every `meta_interval` updates ([`Masp::meta_step`]), a [`MetaReport`] to log.
//!
//! A meta step has two public ways in: [`Masp::meta_step`] for any candle Q-network, and
//! `MaspRegularizer` for the `rainbow` crate's learner, which hands over what its update
//! already computed (docs/method.md, section 4, walks both in call order).
//! * Transfer: [`Similarity::save`] with the actions' identities, [`SavedSimilarity`]
//!   aligned onto another pool by identity ([`Alignment`]).
//! * Checkpoints: [`Masp::save_state`] and [`Masp::load_state`], `S` with its optimiser's
//!   state and the counters, so that a resumed agent's MASP goes on as if never stopped.
//! * Analysis: [`spearman`] against a distance, [`top_pairs`], [`heatmap_png`].
//! * [`MaspConfig`]: every knob, with docs/method.md's defaults (section 5); [`Error`] names what to fix.
//! * `MaspRegularizer` (cargo feature `rainbow`, on by default): [`Masp`] as the `rainbow`
//!   crate's `Regularizer`.
//!
//! masp's core knows nothing of Atari, replay buffers or Rainbow: it sees a Q-network only
//! through [`MetaModel`]. The one exception is the optional adapter `rainbow_hook.rs`,
//! which depends on the `rainbow` crate's public hook (never the other way round).
//!
//! # Using MASP with rainbow
//!
//! With the `rainbow` feature, `MaspRegularizer` plugs MASP into `rainbow::Learner`: build
//! it with `MaspRegularizer::for_learner(config, &action_ids, prior, &learner)` (`S` in the
//! learner's dtype and on its device, one row per action in the network's output order)
//! and pass it to every `learner.update(step, &mut regularizer)`. Per update it adds
//! [`Masp::penalty`] on the expected Q-values of the update's own forward pass; every
//! `meta_interval` updates, between the update's backward pass and its Adam step, it runs a
//! meta step with `B` = the update's batch, `B'` = `B` again (the default) or a fresh batch
//! from the learner's replay (`fresh_batch = true`), and the update's own gradient as the
//! lookahead's, which it therefore does not recompute. With the SGD lookahead (the default)
//! the learner does the network's part itself (`rainbow::MetaAccess::lookahead_jvp`, which
//! never writes a parameter) and `S` steps from that; with the Adam-preconditioned one, or
//! a network with the S-embedding, the generic path runs through the learner.
//! `last_report()` and `similarity_stats()` are there for logging, and `masp()` gives `S`
//! for saving. The example is in the `MaspRegularizer` docs.
//!
//! # Using MASP with your own Q-network
//!
//! Implement [`MetaModel`] for your network (or a thin wrapper around it):
//!
//! 1. `type Batch`: whatever your loss needs (states, actions, targets, weights);
//! 2. `vars()`: the trainable [`candle_core::Var`]s, in a fixed order;
//! 3. `td_loss(batch)`: your TD loss, one number, differentiable in those variables;
//! 4. `q_values(batch)`: the (expected) Q-values, `(n, A)`, in the order of the actions'
//!    identities;
//! 5. optionally `td_loss_and_q_values` (one forward pass for both) and `preconditioner`
//!    (Adam's `1 / (sqrt(v_hat) + eps)` per variable, for `lookahead =
//!    adam_preconditioned`).
//!
//! Keep any noise fixed inside these calls (see the trait's contract). Then, per update:
//! add [`Masp::penalty`]`(q)` to the TD loss before your optimiser step; call
//! [`Masp::record_update`] after it, and when it returns true,
//! [`Masp::meta_step`]`(model, B, B')` with the update's batch and the meta batch (the
//! same batch again, as the rainbow hook's default `fresh_batch = false` does, or a fresh
//! one).
//!
//! ```
//! use candle_core::{DType, Device, Tensor, Var};
//! use candle_nn::{Optimizer, SGD};
//! use masp::{Masp, MaspConfig, MetaModel};
//!
//! /// Q(x) = tanh(x W1^T) W2^T: 2 inputs, 4 hidden units, A = 3 actions.
//! struct Net { w1: Var, w2: Var }
//! /// States, the actions taken (one-hot, (n, A)) and their regression targets.
//! struct Batch { x: Tensor, taken: Tensor, y: Tensor }
//!
//! impl MetaModel for Net {
//!     type Batch = Batch;
//!     fn vars(&self) -> Vec<Var> { vec![self.w1.clone(), self.w2.clone()] }
//!     fn q_values(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
//!         b.x.matmul(&self.w1.t()?)?.tanh()?.matmul(&self.w2.t()?)
//!     }
//!     fn td_loss(&mut self, b: &Batch) -> candle_core::Result<Tensor> {
//!         let q_taken = (self.q_values(b)? * &b.taken)?.sum(1)?;
//!         (q_taken - &b.y)?.sqr()?.mean_all()
//!     }
//! }
//!
//! let dev = Device::Cpu;
//! let mut net = Net { w1: Var::rand(-1f32, 1., (4, 2), &dev)?, w2: Var::rand(-1f32, 1., (3, 4), &dev)? };
//! let batch = || -> candle_core::Result<Batch> {
//!     let x = Tensor::rand(-1f32, 1., (16, 2), &dev)?;
//!     let actions = Tensor::from_vec((0..16u32).map(|i| i % 3).collect(), 16, &dev)?;
//!     let taken = candle_nn::encoding::one_hot(actions, 3, 1f32, 0f32)?;
//!     Ok(Batch { y: x.sum(1)?, x, taken })
//! };
//! let ids = ["NOOP", "LEFT", "LEFT+LEFT"].map(String::from);
//! let (mut masp, _) = Masp::from_config(MaspConfig::default(), &ids, None, DType::F32, &dev)?;
//! let mut sgd = SGD::new(net.vars(), 0.05)?;
//! for _ in 0..3 {
//!     let b = batch()?;
//!     let loss = (net.td_loss(&b)? + masp.penalty(&net.q_values(&b)?)?)?;
//!     sgd.backward_step(&loss)?;
//!     if masp.record_update() {
//!         let report = masp.meta_step(&mut net, &b, &batch()?)?;
//!         println!("penalty/TD {:.3}, |dL/dS| {:.2e}", report.penalty_td_ratio, report.meta_grad_norm);
//!     }
//! }
//! println!("{:?}", masp.similarity().stats()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod analysis;
mod config;
mod error;
mod learned_similarity;
mod masp;
mod meta_gradient;
mod optimizer;
mod penalty;
#[cfg(feature = "rainbow")]
mod rainbow_hook;
mod signal;
mod state;
mod transfer;

pub use analysis::{
    group_separation, heatmap_png, spearman, top_pairs, ActionGroup, AxisLabels, GroupSeparation,
    HeatmapLayout, HeatmapStyle, SimilarPair, NAMED_ACTIONS,
};
pub use config::{Difference, Form, Lookahead, MaspConfig, MetaOptimizer, MetaTarget, SimilarityInit};
pub use error::{Error, Result};
pub use learned_similarity::{Similarity, SimilarityStats};
pub use masp::Masp;
pub use meta_gradient::{meta_gradient, MetaGradient, MetaModel, MetaReport};
pub use penalty::{directional, penalty, PenaltyOperator};
#[cfg(feature = "rainbow")]
pub use rainbow_hook::{MaspRegularizer, MetaPaths, MetaTimings};
pub use signal::{EffectReference, MetaSignal, SignalWindow};
pub use state::{MASP_STATE_FILE, MASP_STATE_FORMAT, MASP_STATE_FORMAT_VERSION, STATE_SIMILARITY_FILE};
pub use transfer::{Alignment, SavedSimilarity, SIMILARITY_FORMAT, SIMILARITY_FORMAT_VERSION};
