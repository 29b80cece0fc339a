//! `sum_i x_i^2` in f64, deterministic: the gradient norm of the learner's clipping and the
//! norm of the meta step's direction.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use crate::slices::{with_contiguous, Float, CHUNK};

/// `sum_i x_i^2` in f64. On the CPU with contiguous f32 or f64 data: fixed chunks of
/// [`CHUNK`], each summed in 8 lanes, the chunk sums added in order, so the result does not
/// depend on the number of threads. Anything else takes candle's ops (in `x`'s dtype, then
/// f64).
pub fn sum_squares(x: &Tensor) -> Result<f64> {
    if let Some(sum) =
        with_contiguous::<f32, _>(x, sum_squares_of).or_else(|| with_contiguous::<f64, _>(x, sum_squares_of))
    {
        return Ok(sum);
    }
    x.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()
}

fn sum_squares_of<T: Float>(x: &[T]) -> f64 {
    let chunk_sum = |c: &[T]| {
        let mut lanes = [0f64; 8];
        let mut it = c.chunks_exact(8);
        for c8 in &mut it {
            for (l, &v) in lanes.iter_mut().zip(c8) {
                *l += v.to_f64() * v.to_f64();
            }
        }
        let tail: f64 = it.remainder().iter().map(|&v| v.to_f64() * v.to_f64()).sum();
        lanes.iter().sum::<f64>() + tail
    };
    let partial: Vec<f64> = x.par_chunks(CHUNK).map(chunk_sum).collect();
    partial.iter().sum()
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::testing::values;

    #[test]
    fn matches_candle_and_does_not_depend_on_the_thread_count() {
        let x = Tensor::from_vec(values(2 * CHUNK + 5, 1, 3.0), 2 * CHUNK + 5, &Device::Cpu).unwrap();
        let reference =
            x.to_dtype(DType::F64).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        let sum = sum_squares(&x).unwrap();
        assert!((sum - reference).abs() < 1e-9 * reference);
        let x64 = x.to_dtype(DType::F64).unwrap();
        assert_eq!(sum_squares(&x64).unwrap(), sum, "f32 squares are exact in f64");
        let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one_thread.install(|| sum_squares(&x).unwrap()), sum);
        // A strided tensor takes candle's path.
        let strided = Tensor::new(&[[1f64, 2.], [3., 4.]], &Device::Cpu).unwrap().t().unwrap();
        assert_eq!(sum_squares(&strided).unwrap(), 30.0);
    }
}
