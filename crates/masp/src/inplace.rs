//! In-place parameter writes and a fused sum of squares for the meta step, on the CPU.
//!
//! The meta step writes the whole parameter vector several times (`theta'`, `theta +- eps
//! g/|g|`) and takes `|g|`. With candle ops each write allocates two temporaries the size of
//! the network (`c * d`, then `base + c * d`) before copying into the variable; at 1042
//! actions that is 244 MB a temporary, and in a VM a fresh allocation of that size costs
//! more in page faults than the arithmetic. Here, on the CPU with contiguous f32 or f64
//! tensors, a write is one pass into the variable's own storage (candle's `InplaceOp3`,
//! chunked over rayon's pool) and the norm one reading pass; every other case (CUDA,
//! strided tensors) takes the candle-ops path.
//!
//! Both paths compute `base + c * d` element by element in the tensors' dtype, with `c`
//! rounded to that dtype first, which is exactly what candle's `base + (d * c)` does, so
//! the two give the same bits (tested below).

use candle_core::{bail, CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::error::Result;

/// Elements per rayon task: large enough that scheduling is noise, small enough that every
/// core gets work on a large layer.
const CHUNK: usize = 1 << 15;

/// `dst <- base + c * d`, in place. `base` and `d` have `dst`'s shape and dtype.
pub(crate) fn write_axpy(dst: &Var, base: &Tensor, c: f64, d: &Tensor) -> Result<()> {
    if fused_applies(dst, &[base, d]) {
        dst.as_tensor().inplace_op3(base, d, &Axpy { c })?;
    } else {
        dst.set(&(base + (d * c)?)?)?;
    }
    Ok(())
}

/// `dst <- src`, in place: [`write_axpy`]'s fused path for a plain copy (candle's
/// `Var::set` copies on candle's own thread pool, which the learner runs on one thread).
pub(crate) fn write_copy(dst: &Var, src: &Tensor) -> Result<()> {
    if fused_applies(dst, &[src]) {
        dst.as_tensor().inplace_op2(src, &CopyFrom)?;
    } else {
        dst.set(src)?;
    }
    Ok(())
}

/// Whether a write into `dst` from `operands` can take the fused CPU path: f32 or f64 on
/// the CPU, the operands of `dst`'s dtype and shape, all contiguous, none sharing `dst`'s
/// storage.
fn fused_applies(dst: &Var, operands: &[&Tensor]) -> bool {
    dst.device().is_cpu()
        && matches!(dst.dtype(), DType::F32 | DType::F64)
        && dst.is_contiguous()
        && operands.iter().all(|t| {
            t.dtype() == dst.dtype()
                && t.dims() == dst.dims()
                && t.is_contiguous()
                && !shares_storage(dst.as_tensor(), t)
        })
}

/// Whether two tensors are views of one allocation (candle's own check is crate-private).
fn shares_storage(a: &Tensor, b: &Tensor) -> bool {
    let key = |t: &Tensor| &*t.storage_and_layout().0 as *const candle_core::Storage;
    std::ptr::eq(key(a), key(b))
}

/// `sum_i x_i^2` in f64. On the CPU: fixed chunks summed in order, so the result does not
/// depend on the number of threads.
pub(crate) fn sum_squares(x: &Tensor) -> Result<f64> {
    if x.device().is_cpu() && x.is_contiguous() {
        let (storage, layout) = x.storage_and_layout();
        if let (candle_core::Storage::Cpu(s), Some((a, b))) = (&*storage, layout.contiguous_offsets()) {
            match s {
                CpuStorage::F32(v) => return Ok(chunked_sum(&v[a..b], |x| x as f64 * x as f64)),
                CpuStorage::F64(v) => return Ok(chunked_sum(&v[a..b], |x| x * x)),
                _ => {}
            }
        }
    }
    Ok(x.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

fn chunked_sum<T: Copy + Sync>(x: &[T], f: impl Fn(T) -> f64 + Sync) -> f64 {
    let partial: Vec<f64> = x.par_chunks(CHUNK).map(|c| c.iter().map(|&v| f(v)).sum::<f64>()).collect();
    partial.iter().sum()
}

/// `dst = base + c * d`.
struct Axpy {
    c: f64,
}

fn slices<'a, T>(
    base: &'a [T],
    lb: &Layout,
    d: &'a [T],
    ld: &Layout,
    n: usize,
) -> candle_core::Result<(&'a [T], &'a [T])> {
    match (lb.contiguous_offsets(), ld.contiguous_offsets()) {
        (Some((b0, b1)), Some((d0, d1))) if b1 - b0 == n && d1 - d0 == n => Ok((&base[b0..b1], &d[d0..d1])),
        _ => bail!("axpy: expected contiguous operands of {n} elements"),
    }
}

fn axpy<T: Copy + Send + Sync + std::ops::Add<Output = T> + std::ops::Mul<Output = T>>(
    dst: &mut [T],
    base: &[T],
    c: T,
    d: &[T],
) {
    let run = |dst: &mut [T], base: &[T], d: &[T]| {
        dst.iter_mut().zip(base).zip(d).for_each(|((y, &b), &x)| *y = b + x * c);
    };
    dst.par_chunks_mut(CHUNK)
        .zip(base.par_chunks(CHUNK))
        .zip(d.par_chunks(CHUNK))
        .for_each(|((y, b), x)| run(y, b, x));
}

/// `dst = src`.
struct CopyFrom;

fn par_copy<T: Copy + Send + Sync>(dst: &mut [T], src: &[T]) {
    dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| d.copy_from_slice(s));
}

impl InplaceOp2 for CopyFrom {
    fn name(&self) -> &'static str {
        "masp-copy"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((y0, y1)), Some((x0, x1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            bail!("copy: expected contiguous operands")
        };
        if y1 - y0 != x1 - x0 {
            bail!("copy: {} elements into {}", x1 - x0, y1 - y0)
        }
        match (s1, s2) {
            (CpuStorage::F32(y), CpuStorage::F32(x)) => par_copy(&mut y[y0..y1], &x[x0..x1]),
            (CpuStorage::F64(y), CpuStorage::F64(x)) => par_copy(&mut y[y0..y1], &x[x0..x1]),
            _ => bail!("copy: expected two f32 or two f64 tensors"),
        }
        Ok(())
    }
}

impl InplaceOp3 for Axpy {
    fn name(&self) -> &'static str {
        "masp-axpy"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        let Some((y0, y1)) = l1.contiguous_offsets() else {
            bail!("axpy: expected a contiguous destination")
        };
        match (s1, s2, s3) {
            (CpuStorage::F32(y), CpuStorage::F32(b), CpuStorage::F32(d)) => {
                let (b, d) = slices(b, l2, d, l3, y1 - y0)?;
                axpy(&mut y[y0..y1], b, self.c as f32, d);
            }
            (CpuStorage::F64(y), CpuStorage::F64(b), CpuStorage::F64(d)) => {
                let (b, d) = slices(b, l2, d, l3, y1 - y0)?;
                axpy(&mut y[y0..y1], b, self.c, d);
            }
            _ => bail!("axpy: expected three f32 or three f64 tensors"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn fused_copy_copies_every_element_and_falls_back_for_strided_sources() {
        for dtype in [DType::F32, DType::F64] {
            let n = 3 * CHUNK + 17;
            let src = Tensor::randn(0f32, 1., n, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let dst = Var::zeros(n, dtype, &Device::Cpu).unwrap();
            write_copy(&dst, &src).unwrap();
            let v = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
            assert_eq!(v(dst.as_tensor()), v(&src), "{dtype:?}");
            // A transposed (strided) source takes candle's path, with the same result.
            let m = Tensor::randn(0f32, 1., (5, 7), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let dst = Var::zeros((7, 5), dtype, &Device::Cpu).unwrap();
            write_copy(&dst, &m.t().unwrap()).unwrap();
            assert_eq!(
                dst.as_tensor().to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap(),
                m.t().unwrap().to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
            );
        }
    }

    #[test]
    fn fused_write_gives_the_bits_of_candle_ops() {
        for dtype in [DType::F32, DType::F64] {
            // More than one chunk, and a tail.
            let n = 3 * CHUNK + 17;
            let base = Tensor::randn(0f32, 1., n, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let d = Tensor::randn(0f32, 1., n, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let dst = Var::zeros(n, dtype, &Device::Cpu).unwrap();
            for c in [-6.25e-5, 1.0 / 3.0, 0.0] {
                write_axpy(&dst, &base, c, &d).unwrap();
                let reference = (&base + (&d * c).unwrap()).unwrap();
                let bits = |t: &Tensor| -> Vec<u64> {
                    t.to_dtype(DType::F64)
                        .unwrap()
                        .to_vec1::<f64>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                };
                assert_eq!(bits(dst.as_tensor()), bits(&reference), "{dtype:?}, c = {c}");
            }
        }
    }

    #[test]
    fn strided_or_aliased_operands_take_the_candle_path() {
        let base = Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu).unwrap().t().unwrap();
        let d = Tensor::ones((2, 2), DType::F32, &Device::Cpu).unwrap();
        let dst = Var::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        write_axpy(&dst, &base, 2.0, &d).unwrap();
        assert_eq!(dst.to_vec2::<f32>().unwrap(), [[3., 5.], [4., 6.]]);
        // dst as its own base: x <- x + 1.
        write_axpy(&dst, &dst.as_tensor().clone(), 1.0, &d).unwrap();
        assert_eq!(dst.to_vec2::<f32>().unwrap(), [[4., 6.], [5., 7.]]);
    }

    #[test]
    fn sum_of_squares_matches_candle() {
        let x = Tensor::randn(0f32, 1., 2 * CHUNK + 5, &Device::Cpu).unwrap();
        let reference =
            x.to_dtype(DType::F64).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        assert!((sum_squares(&x).unwrap() - reference).abs() < 1e-9 * reference);
        let strided = Tensor::new(&[[1f64, 2.], [3., 4.]], &Device::Cpu).unwrap().t().unwrap();
        assert_eq!(sum_squares(&strided).unwrap(), 30.0);
    }
}
