//! What the CPU custom ops (`conv.rs`, `noisy_linear.rs`) share: matrix products through the
//! `gemm` crate on strided operands (so that transposes are views, never copies), and
//! access to the f32 data of CPU storage.

use candle_core::{CpuStorage, Layout, Tensor};
use gemm::Parallelism;

/// A row-major matrix borrowed from a slice, or its transpose (a view: strides swapped).
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    /// The row-major shape of `data`.
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> Mat<'a> {
    /// `data` as a row-major matrix of `cols` columns. Panics if `data.len()` is not a
    /// multiple of `cols`.
    pub(crate) fn rows(data: &'a [f32], cols: usize) -> Self {
        assert!(cols > 0 && data.len() % cols == 0, "{} entries do not make rows of {cols}", data.len());
        Self { data, rows: data.len() / cols, cols, transposed: false }
    }

    /// The same entries, transposed.
    pub(crate) fn t(self) -> Self {
        Self { transposed: !self.transposed, ..self }
    }

    /// `(rows, cols)` as seen, after any transpose.
    fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// `(row stride, column stride)` as seen.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.cols as isize)
        } else {
            (self.cols as isize, 1)
        }
    }
}

/// `dst (m, n), row-major, := lhs (m, k) . rhs (k, n)`, on every rayon thread. Panics if
/// the shapes do not chain or `dst` does not hold `m * n` entries.
pub(crate) fn matmul_into(dst: &mut [f32], lhs: Mat, rhs: Mat) {
    let ((m, k), (k2, n)) = (lhs.shape(), rhs.shape());
    assert!(k == k2 && dst.len() == m * n, "({m}, {k}) . ({k2}, {n}) into {} entries", dst.len());
    let parallelism = match rayon::current_num_threads() {
        1 => Parallelism::None,
        threads => Parallelism::Rayon(threads),
    };
    let ((lhs_rs, lhs_cs), (rhs_rs, rhs_cs)) = (lhs.strides(), rhs.strides());
    // SAFETY: each `Mat` covers exactly its slice with its strides, the shapes chain as
    // checked above, and `dst` is a distinct, exclusively borrowed slice of m * n entries.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
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
