//! In-place writes of a whole variable, f32 or f64: `dst <- base + c * d` and `dst <- src`
//! (MASP's meta step writes the parameters `theta'` and `theta +- h d` this way).
//!
//! With candle's ops each write allocates two temporaries the size of the network (`c *
//! d`, then `base + c * d`) before copying into the variable (see docs/benchmarks.md for
//! what that costs at 1042 actions). Here, on the CPU with contiguous tensors, a write is
//! one pass into the variable's own storage, chunked over rayon's pool; every other case
//! (CUDA, strided or aliased operands) takes candle's ops.
//!
//! Both paths compute `base + c * d` element by element in the tensors' dtype, with `c`
//! rounded to that dtype first, which is exactly what candle's `base + (d * c)` does, so
//! the two give the same bits (tested below).

use candle_core::{bail, CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Tensor, Var};

use crate::slices::{contiguous, contiguous_mut, for_chunks, zip2, Float};

/// `dst <- base + c * d`, in place. `base` and `d` have `dst`'s shape and dtype.
pub fn write_axpy(dst: &Var, base: &Tensor, c: f64, d: &Tensor) -> Result<()> {
    if fused_applies(dst, &[base, d]) {
        dst.as_tensor().inplace_op3(base, d, &Axpy { c })
    } else {
        dst.set(&(base + (d * c)?)?)
    }
}

/// `dst <- src`, in place: [`write_axpy`]'s fused path for a plain copy (candle's
/// `Var::set` copies on candle's own thread pool, which the learner runs on one thread).
pub fn write_copy(dst: &Var, src: &Tensor) -> Result<()> {
    if fused_applies(dst, &[src]) {
        dst.as_tensor().inplace_op2(src, &CopyFrom)
    } else {
        dst.set(src)
    }
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

/// `dst = base + c * d`.
struct Axpy {
    c: f64,
}

impl Axpy {
    fn run<T: Float + std::ops::Add<Output = T> + std::ops::Mul<Output = T>>(
        &self,
        c: T,
        (s1, l1): (&mut CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        (s3, l3): (&CpuStorage, &Layout),
    ) -> Result<()> {
        let dst = contiguous_mut::<T>(s1, l1, "axpy")?;
        let (base, d) = (contiguous::<T>(s2, l2, "axpy")?, contiguous::<T>(s3, l3, "axpy")?);
        if base.len() != dst.len() || d.len() != dst.len() {
            bail!("axpy: {} and {} elements into {}", base.len(), d.len(), dst.len());
        }
        zip2(dst, base, d, |_, b, x| b + x * c);
        Ok(())
    }
}

impl InplaceOp3 for Axpy {
    fn name(&self) -> &'static str {
        "axpy"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        match s1 {
            CpuStorage::F32(_) => self.run(self.c as f32, (s1, l1), (s2, l2), (s3, l3)),
            _ => self.run(self.c, (s1, l1), (s2, l2), (s3, l3)),
        }
    }
}

/// `dst = src`.
struct CopyFrom;

fn copy<T: Float>(s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
    let (dst, src) = (contiguous_mut::<T>(s1, l1, "copy")?, contiguous::<T>(s2, l2, "copy")?);
    if dst.len() != src.len() {
        bail!("copy: {} elements into {}", src.len(), dst.len())
    }
    for_chunks(dst, src, |d, s| d.copy_from_slice(s));
    Ok(())
}

impl InplaceOp2 for CopyFrom {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        match s1 {
            CpuStorage::F32(_) => copy::<f32>(s1, l1, s2, l2),
            _ => copy::<f64>(s1, l1, s2, l2),
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::slices::CHUNK;
    use crate::testing::bits;

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
}
