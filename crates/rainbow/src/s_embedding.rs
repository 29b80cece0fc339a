//! `SEmbedding`: per-action features from an action-similarity context, entering the
//! advantage stream of the [`crate::Head`] beside its output layer; and its
//! [`SEmbeddingConfig`]. The project's own reading of the context embedding that MASP's
//! authors describe without details (docs/method.md, section 5).
//!
//! The network is handed a constant context `P (A, A)`, a row-stochastic matrix whose row `a`
//! says which actions `a` resembles (MASP's row-normalised `S`; the identity until one is
//! handed over). With `h_A = relu(A1(h))` the advantage stream's hidden units:
//!
//! ```text
//! E         = P R                        (actions, dims)      R learned, (actions, dims)
//! C         = L_c(h_A)                   (batch, atoms, dims)  L_c a plain linear layer
//! advantage = A2(h_A) + E C              (batch, actions, atoms)
//! ```
//!
//! With `P = I` the term is a learned low-rank advantage; as `P` spreads, similar actions get
//! similar features and so move together. `P` is an input, not a parameter: no gradient
//! reaches it, and it changes only when its owner hands over a new one.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use rainbow::{Head, SEmbeddingConfig};
//! use rand::SeedableRng;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let head = Head::new(8, 16, 5, 11, true, Some(0.5), DType::F32, &Device::Cpu, &mut rng)?
//!     .with_s_embedding(&SEmbeddingConfig::default(), &mut rng)?;
//! let h = Tensor::zeros((3, 8), DType::F32, &Device::Cpu)?;
//! assert_eq!(head.forward(&h)?.dims(), &[3, 5, 11]); // (batch, actions, atoms)
//! # Ok::<(), candle_core::Error>(())
//! ```

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::noisy_linear::{uniform_var, BuiltLinear, NoisyLinear};

/// The S-embedding's knobs (`[agent.network] s_embedding = { dims = 8 }`); off unless given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SEmbeddingConfig {
    /// Features per action, the columns of `R`. Default 8: a low-rank term beside the
    /// advantage layer's own outputs.
    pub dims: usize,
    /// `R`'s entries start uniform in `[-init_scale, init_scale]`, so that the term starts
    /// small beside the advantage layer and the agent starts as plain Rainbow. Default 0.01.
    pub init_scale: f64,
}

impl Default for SEmbeddingConfig {
    fn default() -> Self {
        Self { dims: 8, init_scale: 0.01 }
    }
}

/// The term's parameters and the current context; see the module docs.
#[derive(Debug)]
pub(crate) struct SEmbedding {
    atoms: usize,
    dims: usize,
    /// `R`, `(actions, dims)`.
    features: Var,
    /// `L_c`: `hidden -> atoms * dims`, plain. The noisy layers' noise already reaches `C`
    /// through `h_A`, and a term meant to tie actions together has no use for noise of its own.
    coefficients: NoisyLinear,
    /// `P`, `(actions, actions)`.
    context: Tensor,
}

/// The term at fixed parameters and context, built once per update.
#[derive(Clone)]
pub(crate) struct BuiltSEmbedding {
    atoms: usize,
    dims: usize,
    /// `E = P R`, `(actions, dims)`.
    features: Tensor,
    coefficients: BuiltLinear,
}

impl SEmbedding {
    pub(crate) fn new<R: Rng + ?Sized>(
        config: &SEmbeddingConfig,
        (hidden, actions, atoms): (usize, usize, usize),
        dtype: DType,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        let coefficients = NoisyLinear::new(hidden, atoms * config.dims, None, dtype, device, &mut *rng)?;
        let features = uniform_var(&[actions, config.dims], config.init_scale, dtype, device, rng)?;
        let context = Tensor::eye(actions, dtype, device)?;
        Ok(Self { atoms, dims: config.dims, features, coefficients, context })
    }

    /// `R`, then `L_c`'s weight and bias, named `features`, `coefficients.weight_mu`, ...
    pub(crate) fn named_vars(&self) -> Vec<(String, Var)> {
        let layer = self.coefficients.named_vars().into_iter().map(|(n, v)| (format!("coefficients.{n}"), v));
        std::iter::once(("features".to_string(), self.features.clone())).chain(layer).collect()
    }

    pub(crate) fn context(&self) -> &Tensor {
        &self.context
    }

    /// Replaces `P`; the caller has checked its shape.
    pub(crate) fn set_context(&mut self, context: &Tensor) -> Result<()> {
        let (dtype, device) = (self.features.dtype(), self.features.device());
        self.context = context.detach().to_dtype(dtype)?.to_device(device)?.contiguous()?;
        Ok(())
    }

    pub(crate) fn build(&self) -> Result<BuiltSEmbedding> {
        Ok(BuiltSEmbedding {
            atoms: self.atoms,
            dims: self.dims,
            features: self.context.matmul(self.features.as_tensor())?,
            coefficients: self.coefficients.build()?,
        })
    }
}

impl BuiltSEmbedding {
    pub(crate) fn detach(&self) -> Self {
        Self { features: self.features.detach(), coefficients: self.coefficients.detach(), ..*self }
    }

    /// `E C` for the advantage stream's hidden units `h_a (batch, hidden)`: `(batch, actions,
    /// atoms)`. Two-dimensional products only, so every device runs it as one plain gemm.
    pub(crate) fn term(&self, h_a: &Tensor) -> Result<Tensor> {
        let batch = h_a.dim(0)?;
        let actions = self.features.dim(0)?;
        // (batch, atoms * dims) -> (batch * atoms, dims)
        let c = self.coefficients.forward(h_a)?.reshape((batch * self.atoms, self.dims))?;
        // (batch * atoms, actions) -> (batch, atoms, actions) -> (batch, actions, atoms)
        c.matmul(&self.features.t()?)?.reshape((batch, self.atoms, actions))?.transpose(1, 2)
    }
}
