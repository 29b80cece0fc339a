//! What the CPU custom ops (`conv.rs`, `noisy_linear.rs`) share: matrix products through the
//! `gemm` crate on strided operands (so that transposes are views, never copies), and
//! access to the f32 data of CPU storage.

use candle_core::{CpuStorage, Layout, Tensor};
use gemm::Parallelism;

/// A row-major `rows x cols` matrix at `ptr`, or its transpose (strides swapped).
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    ptr: *const f32,
    row_stride: isize,
    col_stride: isize,
}

impl Mat {
    /// The row-major matrix with `cols` columns starting at `ptr`.
    pub(crate) fn rows(ptr: *const f32, cols: usize) -> Self {
        Self { ptr, row_stride: cols as isize, col_stride: 1 }
    }

    /// The same entries, transposed.
    pub(crate) fn t(self) -> Self {
        Self { ptr: self.ptr, row_stride: self.col_stride, col_stride: self.row_stride }
    }
}

/// `dst (m, n), row-major, := lhs (m, k) . rhs (k, n)`, on every rayon thread.
///
/// # Safety
/// `dst` must hold `m * n` writable entries and `lhs`, `rhs` the entries their strides
/// reach; none may overlap `dst`.
pub(crate) unsafe fn gemm_into(dst: &mut [f32], m: usize, n: usize, k: usize, lhs: Mat, rhs: Mat) {
    debug_assert_eq!(dst.len(), m * n);
    let parallelism = match rayon::current_num_threads() {
        1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    };
    gemm::gemm(
        m,
        n,
        k,
        dst.as_mut_ptr(),
        1,
        n as isize,
        false,
        lhs.ptr,
        lhs.col_stride,
        lhs.row_stride,
        rhs.ptr,
        rhs.col_stride,
        rhs.row_stride,
        0.0,
        1.0,
        false,
        false,
        false,
        parallelism,
    );
}

/// The f32 data of a CPU tensor, in row-major order (a copy).
pub(crate) fn f32_data(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Runs `f` on the f32 data of a contiguous CPU tensor, in place (no copy).
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => Ok(f(&v[a..b])),
        _ => candle_core::bail!("expected a contiguous f32 CPU tensor, got {:?} {:?}", t.dtype(), t.device()),
    }
}

/// The f32 slice behind a custom op's contiguous CPU operand; `op` names the op in the
/// error.
pub(crate) fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op}: expected a contiguous f32 CPU operand"),
    }
}
