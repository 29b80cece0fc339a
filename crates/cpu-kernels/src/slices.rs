//! What every kernel shares: the contiguous slice behind a tensor or a custom op's operand,
//! the chunk size of the parallel passes, and the chunked loops over it.

use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};
use rayon::prelude::*;

/// Elements per rayon task: large enough that scheduling is noise, small enough that every
/// core gets work on a large layer.
pub const CHUNK: usize = 1 << 15;

/// Rows of `row_len` entries per rayon task in a row-wise pass: about [`CHUNK`] entries, at
/// least one row.
pub fn rows_per_task(row_len: usize) -> usize {
    (CHUNK / row_len.max(1)).max(1)
}

/// A float type the kernels run on: f32 or f64.
pub trait Float: Copy + Send + Sync + 'static {
    /// The entries of `storage` if it holds this type.
    fn slice(storage: &CpuStorage) -> Option<&[Self]>;
    fn slice_mut(storage: &mut CpuStorage) -> Option<&mut [Self]>;
    /// The value as an f64 (exact).
    fn to_f64(self) -> f64;
}

/// `Float` for a type and the `CpuStorage` variant that holds it.
macro_rules! float {
    ($t:ty, $variant:ident) => {
        impl Float for $t {
            fn slice(storage: &CpuStorage) -> Option<&[Self]> {
                match storage {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }

            fn slice_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
                match storage {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }

            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}

float!(f32, F32);
float!(f64, F64);

/// The `T` slice behind a custom op's contiguous CPU operand; `op` names the op in the
/// error.
pub fn contiguous<'a, T: Float>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [T]> {
    match (T::slice(s), l.contiguous_offsets()) {
        (Some(v), Some((a, b))) => Ok(&v[a..b]),
        _ => bail!("{op}: expected a contiguous {} CPU operand", std::any::type_name::<T>()),
    }
}

/// [`contiguous`] for the operand an in-place op writes.
pub fn contiguous_mut<'a, T: Float>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> Result<&'a mut [T]> {
    match (T::slice_mut(s), l.contiguous_offsets()) {
        (Some(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => bail!("{op}: expected a contiguous {} CPU operand", std::any::type_name::<T>()),
    }
}

/// Runs `f` on the `T` data of a contiguous CPU tensor, in place (no copy); `None` for any
/// other tensor (another dtype or device, strided).
pub fn with_contiguous<T: Float, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(s), Some((a, b))) => T::slice(s).map(|v| f(&v[a..b])),
        _ => None,
    }
}

/// The f32 data of a tensor, in row-major order (a copy).
pub fn f32_data(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// `f(dst chunk, a chunk)` over matching chunks of [`CHUNK`] entries, one rayon task each.
pub fn for_chunks<T: Float>(dst: &mut [T], a: &[T], f: impl Fn(&mut [T], &[T]) + Sync) {
    if dst.len() <= CHUNK {
        f(dst, a);
    } else {
        dst.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK)).for_each(|(d, a)| f(d, a));
    }
}

/// `dst[i] = f(dst[i], a[i])`, chunked over the pool.
pub fn zip1<T: Float>(dst: &mut [T], a: &[T], f: impl Fn(T, T) -> T + Sync) {
    for_chunks(dst, a, |d, a| d.iter_mut().zip(a).for_each(|(d, &a)| *d = f(*d, a)));
}

/// `dst[i] = f(dst[i], a[i], b[i])`, chunked over the pool.
pub fn zip2<T: Float>(dst: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T, T) -> T + Sync) {
    let run =
        |d: &mut [T], a: &[T], b: &[T]| d.iter_mut().zip(a).zip(b).for_each(|((d, &a), &b)| *d = f(*d, a, b));
    if dst.len() <= CHUNK {
        run(dst, a, b);
    } else {
        dst.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .zip(b.par_chunks(CHUNK))
            .for_each(|((d, a), b)| run(d, a, b));
    }
}
