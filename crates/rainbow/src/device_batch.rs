//! `DeviceBatch`: a replay minibatch as tensors on the learner's device.
//!
//! Shapes, with `B` the batch size:
//! * `obs`, `next_obs`: `u8 (B, C, H, W)` pixels (scaled to `[0, 1]` inside the network) or
//!   float `(B, len)` vectors;
//! * `actions`: `u32 (B,)`;
//! * `returns` `G`, `discounts` `D`, importance `weights`: `(B,)` in the learner's dtype;
//! * `indices`: the replay slots, on the host, for the priority update (empty for a batch
//!   that did not come from a replay).
//!
//! Cloning is cheap (tensors are shared). A regulariser gets these from
//! [`crate::MetaAccess`] and passes them back; it need not look inside.
//!
//! ```
//! use candle_core::{DType, Device};
//! use rainbow::{Batch, DeviceBatch};
//! use rl_env::ObsSpec;
//! let batch = Batch::new(4, &ObsSpec::Vector { len: 3 });
//! let on_device = DeviceBatch::from_batch(&batch, DType::F32, &Device::Cpu)?;
//! assert_eq!((on_device.len(), on_device.obs().dims()), (4, &[4usize, 3][..]));
//! # Ok::<(), rainbow::Error>(())
//! ```

use candle_core::{DType, Device, Tensor};
use rl_env::Obs;

use crate::error::{Error, Result};
use crate::replay::batch::Batch;

/// A minibatch on the device; see the module docs.
#[derive(Clone, Debug)]
pub struct DeviceBatch {
    obs: Tensor,
    next_obs: Tensor,
    actions: Tensor,
    returns: Tensor,
    discounts: Tensor,
    weights: Tensor,
    indices: Vec<usize>,
}

/// Observations as a device tensor: `u8` pixels stay `u8`, vectors take `dtype`.
pub(crate) fn obs_tensor(obs: Obs<'_>, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
    Ok(match obs {
        Obs::Pixels(p) => Tensor::from_slice(p, shape, device)?,
        Obs::Vector(v) => Tensor::from_slice(v, shape, device)?.to_dtype(dtype)?,
    })
}

impl DeviceBatch {
    /// Copies a sampled [`Batch`] to `device`, with float fields in `dtype`.
    pub fn from_batch(batch: &Batch, dtype: DType, device: &Device) -> Result<Self> {
        let b = batch.len();
        let shape = batch.obs_shape();
        let floats = |x: &[f32]| -> Result<Tensor> { Ok(Tensor::from_slice(x, b, device)?.to_dtype(dtype)?) };
        Ok(Self {
            obs: obs_tensor(batch.obs(), shape, dtype, device)?,
            next_obs: obs_tensor(batch.next_obs(), shape, dtype, device)?,
            actions: Tensor::from_slice(batch.actions(), b, device)?,
            returns: floats(batch.returns())?,
            discounts: floats(batch.discounts())?,
            weights: floats(batch.weights())?,
            indices: batch.indices().to_vec(),
        })
    }

    /// A batch from tensors already on a device (benchmarks, tests): observations `u8 (B, C,
    /// H, W)` or float `(B, len)`, `u32` actions and float returns, discounts and weights, all
    /// `(B,)`. It has no replay indices.
    pub fn from_tensors(
        obs: Tensor,
        next_obs: Tensor,
        actions: Tensor,
        returns: Tensor,
        discounts: Tensor,
        weights: Tensor,
    ) -> Result<Self> {
        let b = obs.dim(0)?;
        let ok = obs.shape() == next_obs.shape()
            && obs.dtype() == next_obs.dtype()
            && actions.dtype() == DType::U32
            && [&actions, &returns, &discounts, &weights].iter().all(|t| t.dims() == [b]);
        if !ok {
            return Err(Error::ShapeMismatch {
                what: "DeviceBatch::from_tensors".into(),
                expected: format!("obs and next_obs of one shape, u32 actions and (B,) = ({b},) vectors"),
                found: format!(
                    "obs {:?}, next_obs {:?}, actions {:?} {:?}, returns {:?}, discounts {:?}, weights {:?}",
                    obs.dims(),
                    next_obs.dims(),
                    actions.dtype(),
                    actions.dims(),
                    returns.dims(),
                    discounts.dims(),
                    weights.dims()
                ),
            });
        }
        Ok(Self { obs, next_obs, actions, returns, discounts, weights, indices: Vec::new() })
    }

    /// `B`.
    pub fn len(&self) -> usize {
        self.actions.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(B, ...)` the states acted in.
    pub fn obs(&self) -> &Tensor {
        &self.obs
    }

    /// `(B, ...)` the states to bootstrap from.
    pub fn next_obs(&self) -> &Tensor {
        &self.next_obs
    }

    /// `u32 (B,)`.
    pub fn actions(&self) -> &Tensor {
        &self.actions
    }

    /// `(B,)` n-step returns `G`.
    pub fn returns(&self) -> &Tensor {
        &self.returns
    }

    /// `(B,)` bootstrap discounts `D` (0 past a terminal).
    pub fn discounts(&self) -> &Tensor {
        &self.discounts
    }

    /// `(B,)` importance-sampling weights.
    pub fn weights(&self) -> &Tensor {
        &self.weights
    }

    /// The replay slots of the samples (empty if the batch did not come from a replay).
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}
