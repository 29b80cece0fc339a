//! `device = "cpu" | "cuda:N"`: the one place a config string becomes a candle [`Device`].
//!
//! A build without the `cuda` feature refuses `cuda:N` with [`Error::CudaNotCompiled`],
//! which names the feature and `cargo xtask build-cuda`, instead of candle's generic
//! "not compiled with cuda support".
//!
//! ```
//! use rainbow::{parse_device, Error};
//! assert!(parse_device("cpu")?.is_cpu());
//! assert!(matches!(parse_device("gpu"), Err(Error::InvalidDevice { .. })));
//! # #[cfg(not(feature = "cuda"))]
//! assert!(matches!(parse_device("cuda:0"), Err(Error::CudaNotCompiled { .. })));
//! # Ok::<(), rainbow::Error>(())
//! ```

use candle_core::Device;

use crate::error::{Error, Result};

/// What a device string asks for, before any device is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda` (= `cuda:0`) or `cuda:N`, case-insensitively.
    pub fn parse(spec: &str) -> Result<Self> {
        let lower = spec.trim().to_ascii_lowercase();
        let invalid = || Error::InvalidDevice { spec: spec.to_string() };
        match lower.as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => {
                let ordinal = other.strip_prefix("cuda:").ok_or_else(invalid)?;
                ordinal.parse().map(DeviceSpec::Cuda).map_err(|_| invalid())
            }
        }
    }

    /// Opens the device.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => open_cuda(ordinal),
        }
    }
}

/// Parses a device string and opens the device.
pub fn parse_device(spec: &str) -> Result<Device> {
    DeviceSpec::parse(spec)?.open()
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Ok(Device::new_cuda(ordinal)?)
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(Error::CudaNotCompiled { spec: format!("cuda:{ordinal}") })
}

/// How the CPU work of an update is spread, for a process about to start: rayon's pool,
/// which runs the custom ops and gemm products, gets `threads` threads (`None`: the
/// `RAYON_NUM_THREADS` already set, else all cores), and candle's own elementwise kernels
/// run on the calling thread. candle 0.11's pool for those spins at a barrier per op and
/// costs more than it saves on this network's tensors (docs/benchmarks.md has the
/// measurement). A `CANDLE_NUM_THREADS` the user has set is kept.
///
/// The calling thread and every thread of rayon's pool also flush subnormal floats to zero
/// ([`cpu_kernels::flush_denormals`]: without it a long run slowed to half speed), unless
/// [`KEEP_DENORMALS_ENV`] is set, which keeps IEEE subnormals as builds before this one did.
///
/// Both libraries read these once, at their first use: call this before any tensor work,
/// while the process has no other thread. A later call changes nothing of a pool already
/// built.
pub fn configure_cpu_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    if std::env::var_os(KEEP_DENORMALS_ENV).is_none() {
        cpu_kernels::flush_denormals();
        // The builder reads RAYON_NUM_THREADS, as rayon's default pool would. An error means
        // the pool exists already (a second call): it keeps the threads it has.
        let _ = rayon::ThreadPoolBuilder::new()
            .start_handler(|_| {
                cpu_kernels::flush_denormals();
            })
            .build_global();
    }
}

/// The environment variable that keeps IEEE subnormals (any value): for a bit-exact rerun of
/// a run made before subnormals were flushed.
pub const KEEP_DENORMALS_ENV: &str = "MASP_KEEP_DENORMALS";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_cuda_ordinals() {
        assert_eq!(DeviceSpec::parse("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(DeviceSpec::parse(" CPU ").unwrap(), DeviceSpec::Cpu);
        assert_eq!(DeviceSpec::parse("cuda").unwrap(), DeviceSpec::Cuda(0));
        assert_eq!(DeviceSpec::parse("cuda:3").unwrap(), DeviceSpec::Cuda(3));
        for bad in ["", "gpu", "cuda:", "cuda:x", "cuda:-1", "metal"] {
            let err = DeviceSpec::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidDevice { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("\"cuda:N\""), "{err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_the_feature_and_the_build_command() {
        let err = parse_device("cuda:1").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::CudaNotCompiled { .. }));
        assert!(text.contains("`cuda` feature") && text.contains("cargo xtask build-cuda"), "{text}");
    }
}
