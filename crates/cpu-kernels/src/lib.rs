//! The CPU fast paths of the `rainbow` and `masp` crates, as candle custom ops: each does
//! on contiguous f32 (or f64) CPU storage what a few of candle's ops do, in one
//! multi-threaded pass, and each sits beside its test against candle's own ops.
//!
//! * [`conv2d_relu`] ([`ConvInput`]): a convolution layer with bias and ReLU as im2col plus
//!   one `gemm` product for the whole batch, forward and backward (the Nature CNN).
//! * [`NoisyMatmul`] and [`FrozenNoisyMatmul`]: `x (batch, in) . w^T` for a factorised noisy
//!   layer's weight `w = mu_w + sigma_w * eps_w (out, in)`; the first's backward writes each
//!   of `dx`, `d mu_w` and `d sigma_w` once, the second's only `dx`.
//! * [`AdamMoment`] and [`AdamTheta`]: Adam's three in-place passes, op for op candle's
//!   `AdamW` (bit-identical).
//! * [`write_axpy`] and [`write_copy`]: `dst <- base + c * d` and `dst <- src` into a
//!   variable's own storage, f32 or f64.
//! * [`sum_squares`]: `sum_i x_i^2` in f64, the same bits for any number of threads.
//! * [`ExpectedValue`]: `sum_j z_j exp(x_j)` over the last axis, a C51 head's Q-values from
//!   its log-probabilities, forward and backward in one pass each.
//! * [`LogSoftmax`]: `log_softmax` over the last axis, the head's log-probabilities from its
//!   logits, forward and backward in one pass each; [`DuelingLogSoftmax`], the dueling
//!   combine `v + a - mean a` and the log-softmax in one forward pass, its backward the
//!   log-softmax's pass and two reductions.
//! * [`allocator`]: how long mimalloc, every binary's allocator, keeps freed memory; the
//!   binaries call [`allocator::hold_freed_memory`] first.
//! * [`flush_denormals`]: subnormal floats as zero on the calling thread (x86's FTZ and
//!   DAZ), which the threads that train set (a run slows to half speed without).
//!
//! What they share is in [`slices`]: the contiguous slice behind a tensor or a custom op's
//! operand, the chunk size of every parallel pass, and the chunked loops over it; and in
//! [`Mat`] / [`matmul_into`], the products through the `gemm` crate on strided operands (a
//! transpose is a view, never a copy).
//!
//! Every kernel checks its operands' shapes and storage and otherwise fails with candle's
//! error, which each caller already carries; the callers decide where a fast path applies
//! (f32 on the CPU) and keep candle's ops everywhere else (CUDA, f64).
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! let dst = Var::zeros(4, candle_core::DType::F32, &Device::Cpu)?;
//! let base = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?;
//! let d = Tensor::ones(4, candle_core::DType::F32, &Device::Cpu)?;
//! cpu_kernels::write_axpy(&dst, &base, 0.5, &d)?;
//! assert_eq!(dst.to_vec1::<f32>()?, [1.5, 2.5, 3.5, 4.5]);
//! assert_eq!(cpu_kernels::sum_squares(dst.as_tensor())?, 1.5f64.powi(2) + 2.5f64.powi(2) + 3.5f64.powi(2) + 4.5f64.powi(2));
//! # Ok::<(), candle_core::Error>(())
//! ```

// `unsafe` is allowed in three places only: the `gemm` call behind `matmul_into`, which checks
// every shape against its slices first, mimalloc's option calls in `allocator`, and the
// control-register instructions in `denormals`.
#![deny(unsafe_code)]

mod adam;
pub mod allocator;
mod axpy;
mod conv;
mod denormals;
mod dueling;
mod expectation;
mod log_softmax;
mod matmul;
mod noisy_matmul;
mod reduce;
pub mod slices;

pub use adam::{AdamMoment, AdamTheta};
pub use axpy::{write_axpy, write_copy};
pub use conv::{conv2d_relu, ConvInput};
pub use denormals::{flush_denormals, flushes_denormals};
pub use dueling::DuelingLogSoftmax;
pub use expectation::ExpectedValue;
pub use log_softmax::LogSoftmax;
pub use matmul::{matmul_into, Mat};
pub use noisy_matmul::{FrozenNoisyMatmul, NoisyMatmul};
pub use reduce::sum_squares;

/// Helpers of the tests: candle's ops are the reference of every kernel.
#[cfg(test)]
pub(crate) mod testing {
    use candle_core::Tensor;

    /// Largest `|a - b|` relative to the largest `|b|` (the products sum in another order).
    pub fn rel(a: &Tensor, b: &Tensor) -> f32 {
        let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        diff / scale
    }

    /// Deterministic pseudo-random values in about `[-scale, scale]`.
    pub fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = (i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)).wrapping_mul(2246822519);
                ((h >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// The gradient in `x` of `sum(y * weights)`: how a test reaches an op's backward.
    pub fn weighted_grad(y: &Tensor, weights: &Tensor, x: &candle_core::Var) -> Tensor {
        let grads = y.mul(weights).unwrap().sum_all().unwrap().backward().unwrap();
        grads.get(x).unwrap().clone()
    }

    /// The bits of every entry, as f64 (exact for f32 and f64).
    pub fn bits(t: &Tensor) -> Vec<u64> {
        let t = t.flatten_all().unwrap().to_dtype(candle_core::DType::F64).unwrap();
        t.to_vec1::<f64>().unwrap().iter().map(|v| v.to_bits()).collect()
    }
}
