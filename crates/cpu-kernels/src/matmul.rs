//! Matrix products through the `gemm` crate on strided operands, so that a transpose is a
//! view, never a copy: the products of the convolution and the noisy layer.

use gemm::Parallelism;

/// A row-major matrix borrowed from a slice, or its transpose (a view: strides swapped).
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    /// The row-major shape of `data`.
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> Mat<'a> {
    /// `data` as a row-major matrix of `cols` columns. Panics if `data.len()` is not a
    /// multiple of `cols`.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        assert!(cols > 0 && data.len() % cols == 0, "{} entries do not make rows of {cols}", data.len());
        Self { data, rows: data.len() / cols, cols, transposed: false }
    }

    /// The same entries, transposed.
    pub fn t(self) -> Self {
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
pub fn matmul_into(dst: &mut [f32], lhs: Mat, rhs: Mat) {
    let ((m, k), (k2, n)) = (lhs.shape(), rhs.shape());
    assert!(k == k2 && dst.len() == m * n, "({m}, {k}) . ({k2}, {n}) into {} entries", dst.len());
    let parallelism = match rayon::current_num_threads() {
        1 => Parallelism::None,
        threads => Parallelism::Rayon(threads),
    };
    let ((lhs_rs, lhs_cs), (rhs_rs, rhs_cs)) = (lhs.strides(), rhs.strides());
    // SAFETY: each `Mat` covers exactly its slice with its strides, the shapes chain as
    // checked above, and `dst` is a distinct, exclusively borrowed slice of m * n entries.
    #[allow(unsafe_code)]
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

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::testing::{rel, values};

    /// Every orientation of both operands against candle's `matmul` on materialised
    /// transposes.
    #[test]
    fn matches_candle_matmul_in_every_orientation() {
        let (m, k, n) = (37, 300, 21);
        let a = values(m * k, 1, 1.0);
        let b = values(k * n, 2, 1.0);
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        let dev = Device::Cpu;
        let reference = Tensor::from_slice(&a, (m, k), &dev)
            .unwrap()
            .matmul(&Tensor::from_slice(&b, (k, n), &dev).unwrap())
            .unwrap();
        let cases = [
            (Mat::rows(&a, k), Mat::rows(&b, n)),
            (Mat::rows(&at, m).t(), Mat::rows(&b, n)),
            (Mat::rows(&a, k), Mat::rows(&bt, k).t()),
            (Mat::rows(&at, m).t(), Mat::rows(&bt, k).t()),
        ];
        for (i, (lhs, rhs)) in cases.into_iter().enumerate() {
            let mut dst = vec![0f32; m * n];
            matmul_into(&mut dst, lhs, rhs);
            let ours = Tensor::from_vec(dst, (m, n), &dev).unwrap();
            assert!(rel(&ours, &reference) <= 1e-5, "case {i}: {}", rel(&ours, &reference));
        }
    }

    #[test]
    #[should_panic(expected = "do not make rows")]
    fn rejects_a_slice_that_is_not_whole_rows() {
        Mat::rows(&[0.0; 7], 2);
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols).flat_map(|c| (0..rows).map(move |r| x[r * cols + c])).collect()
    }
}
