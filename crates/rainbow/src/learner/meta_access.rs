//! What the learner lends its regulariser's `before_step` ([`MetaAccess`]): its
//! variables, the update's batch and a fresh one, the TD loss and Q-values at the current
//! parameters, Adam's preconditioner, and its own lookahead (`lookahead.rs`).

use candle_core::{Tensor, Var};

use super::lookahead::UpdateGradients;
use super::Learner;
use crate::device_batch::DeviceBatch;
use crate::network::NetLayers;
use crate::regularizer::{LookaheadJvp, LookaheadRequest, MetaAccess};

/// What the update in progress lends its regulariser's `before_step`.
pub(super) struct InProgress {
    /// The target network as built for the update (its parameters and noise do not change
    /// until the update ends, so rebuilding it, 27M weights at 1042 actions, would only
    /// repeat the same work).
    pub(super) target: NetLayers,
    /// The update's projected target distribution `(batch, atoms)`, detached: the meta
    /// loss's target with [`LookaheadRequest::update_target`].
    pub(super) target_m: Tensor,
    /// The update's gradients in the form `lookahead_jvp` starts from, when the regulariser
    /// asked for them ([`Regularizer::wants_lookahead_jvp`]).
    pub(super) gradients: Option<UpdateGradients>,
}

impl Learner {
    /// [`MetaAccess::td_loss`] and the online log-probabilities `(batch, actions, atoms)` of
    /// the same forward pass.
    fn td_loss_and_log_probs(&self, batch: &DeviceBatch) -> candle_core::Result<(Tensor, Tensor)> {
        let online = self.online.build().map_err(candle_core::Error::wrap)?;
        let built;
        let target = match &self.in_progress {
            Some(update) => &update.target,
            None => {
                built = self.target.build().map_err(candle_core::Error::wrap)?.detach();
                &built
            }
        };
        let detached = online.detach();
        let (target_m, _) = self.target_distribution(&|obs| detached.forward(obs), target, batch)?;
        let log_probs = online.forward(batch.obs())?;
        Ok((self.weighted_loss(&log_probs, &target_m, batch)?.1, log_probs))
    }
}

impl MetaAccess for Learner {
    fn vars(&self) -> Vec<Var> {
        self.adam.vars().to_vec()
    }

    fn last_batch(&self) -> &DeviceBatch {
        self.last_batch.as_ref().expect("MetaAccess is lent only after an update, which sets the batch")
    }

    fn sample_batch(&mut self) -> candle_core::Result<DeviceBatch> {
        self.replay
            .sample(&mut self.sample_rng, self.step, &mut self.meta_batch)
            .map_err(candle_core::Error::wrap)?;
        DeviceBatch::from_batch(&self.meta_batch, self.dtype, &self.device).map_err(candle_core::Error::wrap)
    }

    fn td_loss(&self, batch: &DeviceBatch) -> candle_core::Result<Tensor> {
        Ok(self.td_loss_and_log_probs(batch)?.0)
    }

    fn td_loss_on_update_target(&self) -> candle_core::Result<Option<Tensor>> {
        let Some(update) = &self.in_progress else { return Ok(None) };
        let online = self.online.build().map_err(candle_core::Error::wrap)?;
        let batch = self.last_batch();
        let log_probs = online.forward(batch.obs())?;
        Ok(Some(self.weighted_loss(&log_probs, &update.target_m, batch)?.1))
    }

    fn td_loss_and_q_values(&self, batch: &DeviceBatch) -> candle_core::Result<(Tensor, Tensor)> {
        let (loss, log_probs) = self.td_loss_and_log_probs(batch)?;
        Ok((loss, self.support.expected_q(&log_probs)?))
    }

    fn q_values(&self, batch: &DeviceBatch) -> candle_core::Result<Tensor> {
        let online = self.online.build().map_err(candle_core::Error::wrap)?;
        self.support.expected_q(&online.forward(batch.obs())?)
    }

    fn adam_preconditioner(&self) -> Option<Vec<Tensor>> {
        self.adam.preconditioner()
    }

    fn set_action_context(&mut self, context: &Tensor) -> candle_core::Result<()> {
        Learner::set_action_context(self, context).map_err(candle_core::Error::wrap)
    }

    fn lookahead_jvp(&self, request: &LookaheadRequest<'_>) -> candle_core::Result<Option<LookaheadJvp>> {
        let Some(InProgress { target, target_m, gradients: Some(gradients) }) = &self.in_progress else {
            return Ok(None);
        };
        // The factored lookahead moves the head's four layers only; it would leave the
        // S-embedding's parameters at theta.
        if gradients.layers.has_s_embedding() {
            candle_core::bail!(
                "the learner's SGD lookahead does not cover the S-embedding's parameters: \
                 take the meta step through MetaAccess::vars (a regulariser must not ask \
                 for Regularizer::wants_lookahead_jvp with the S-embedding on)"
            );
        }
        let jvp = self.lookahead_jvp_from(gradients, (target, target_m), self.last_batch(), request)?;
        Ok(Some(jvp))
    }
}
