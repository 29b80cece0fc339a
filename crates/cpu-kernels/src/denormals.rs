//! Subnormal floats flushed to zero on the threads that train.
//!
//! Some of a network's f32 values fall below `f32::MIN_POSITIVE` as a run goes on (a C51
//! head's probabilities of atoms far from the target, their gradients, products with them).
//! An x86 core takes a microcode assist for each such operand and result, and a `der` run
//! on Kangaroo slowed to about half speed once they appeared (docs/benchmarks.md, "Subnormal
//! floats"). With MXCSR's FTZ (results) and DAZ (operands) bits set the core treats them as
//! zero instead, at full speed. TensorFlow's CPU threads run so; PyTorch offers it as
//! `torch.set_flush_denormal(True)`. The bits are per thread: every thread that does tensor
//! work sets them (rainbow's `configure_cpu_threads` does it for the caller and rayon's pool).
//!
//! Numbers change only where a value would have been subnormal (magnitude below 1.2e-38),
//! so a run keeps its determinism; it differs from one without the bits as a change of
//! binary does, in rounding.

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// Sets flush-to-zero and denormals-are-zero on the calling thread. Returns whether this
/// CPU has them (x86-64; elsewhere nothing changes and subnormals keep their cost).
pub fn flush_denormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        write_mxcsr(read_mxcsr() | FTZ_DAZ);
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the calling thread flushes subnormals to zero (both bits set).
pub fn flushes_denormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        read_mxcsr() & FTZ_DAZ == FTZ_DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: `stmxcsr` stores the 4-byte control register into `csr`, a live local.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(csr: u32) {
    // SAFETY: `ldmxcsr` loads the control register from `csr`, a live local; callers only add
    // FTZ and DAZ to the value read, which keeps every exception masked as it was.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags));
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// The smallest normal f32 halved: subnormal under IEEE rules, 0 once flushed.
    fn halved_min_normal() -> f32 {
        black_box(f32::MIN_POSITIVE) * black_box(0.5)
    }

    #[test]
    fn a_subnormal_result_becomes_zero_on_the_flushing_thread_only() {
        std::thread::spawn(|| {
            assert!(!flushes_denormals());
            assert_eq!(halved_min_normal(), f32::MIN_POSITIVE / 2.0);
            assert!(halved_min_normal().is_subnormal());
            assert!(flush_denormals());
            assert!(flushes_denormals());
            assert_eq!(halved_min_normal(), 0.0);
            // DAZ: a subnormal operand reads as zero.
            let sub = black_box(f32::from_bits(1));
            assert_eq!(sub * black_box(1.0f32), 0.0);
        })
        .join()
        .unwrap();
        // Another thread that never asked keeps IEEE subnormals.
        std::thread::spawn(|| assert!(halved_min_normal().is_subnormal())).join().unwrap();
    }
}
