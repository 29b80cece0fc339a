//! `configure_cpu_threads` flushes subnormal floats on every thread that does tensor work:
//! the caller (candle's elementwise ops) and each thread of rayon's pool (our kernels and
//! the gemm products), and keeps them where `MASP_KEEP_DENORMALS` asks.

use candle_core::{Device, Tensor};

#[test]
fn the_caller_and_every_pool_thread_flush_subnormals_unless_told_to_keep_them() {
    // This binary's only test: nothing else has built rayon's pool or read the variables.
    let flush = std::env::var_os(rainbow::KEEP_DENORMALS_ENV).is_none();
    rainbow::configure_cpu_threads(Some(3));
    assert_eq!(rayon::current_num_threads(), 3);
    assert_eq!(rayon::broadcast(|_| cpu_kernels::flushes_denormals()), vec![flush; 3]);
    assert_eq!(cpu_kernels::flushes_denormals(), flush);

    // 1e-20 squared is 1e-40, a subnormal f32: zero where flushed, else kept.
    let expected = if flush { 0.0 } else { 1e-40f32 };
    let tiny = Tensor::full(1e-20f32, (64, 64), &Device::Cpu).unwrap();
    let squares = (&tiny * &tiny).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(squares.iter().all(|&v| v == expected), "elementwise: {}", squares[0]);
    // A product, which gemm spreads over the pool, of a subnormal operand (written, not
    // computed): 256 terms of 6e-39 sum to a normal 1.5e-36 under IEEE rules, 0 where
    // subnormal operands read as zero.
    let subnormal = Tensor::full(6e-39f32, (256, 256), &Device::Cpu).unwrap();
    let ones = Tensor::ones((256, 256), candle_core::DType::F32, &Device::Cpu).unwrap();
    let product = subnormal.matmul(&ones).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let expected = if flush { 0.0 } else { 256.0 * 6e-39f32 };
    assert!(product.iter().all(|&v| (v - expected).abs() <= 1e-4 * expected), "product: {}", product[0]);
}
