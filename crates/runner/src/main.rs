//! `masp`: train and evaluate Rainbow agents with macro-actions and MASP.
//!
//! `main` only runs [`masp_runner::cli`] and reports its error; what stays here is what only a
//! program may choose, the allocator and how long it keeps freed memory. The workspace's
//! `tests/` builds this same file as its own binary, so keep it to what `masp-runner`,
//! `cpu-kernels` and `mimalloc` provide.

#![forbid(unsafe_code)]

/// candle allocates and frees tensors of many MB in every learner update; glibc's malloc
/// serves each from fresh mmap'd pages, and the page faults made up about a third of an
/// update (docs/benchmarks.md). mimalloc keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    cpu_kernels::allocator::hold_freed_memory();
    if let Err(err) = masp_runner::cli::run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
