//! A learner's updates do not depend on the number of threads, bit for bit: the Atari
//! campaign runs two runs at once on one thread each (docs/benchmarks.md) and a run resumed
//! on another machine gets that machine's thread count.

use candle_core::{Device, Tensor};
use rainbow::bench::LearnerBench;

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
}

/// The online parameters, and the target parameters with Adam's moments, after `updates`
/// updates of the Atari learner (18 actions, batch 32) on `threads` threads: a rayon pool
/// of that size for our kernels and `RAYON_NUM_THREADS` for candle's own products, which
/// read it at every call (as `masp experiment` sets it for each run).
fn state_after(threads: usize, updates: usize) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    // This binary's only test: no other thread reads the variable meanwhile.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut bench = LearnerBench::atari(18, 32, 0, &Device::Cpu, 5).unwrap();
        for _ in 0..updates {
            bench.learner.learn(&bench.batch, &mut ()).unwrap();
        }
        let l = &bench.learner;
        let vars = |net: &rainbow::RainbowNet| {
            net.named_vars().into_iter().map(|(_, v)| bits(v.as_tensor())).collect()
        };
        let online: Vec<_> = vars(l.online());
        let mut rest: Vec<_> = vars(l.target());
        let (m, v) = l.adam().moments();
        rest.extend(m.iter().chain(v).map(|t| bits(t.as_tensor())));
        (online, rest)
    })
}

#[test]
fn updates_are_bit_identical_on_one_two_and_three_threads() {
    let one = state_after(1, 2);
    assert_eq!(one, state_after(2, 2), "1 vs 2 threads");
    assert_eq!(one, state_after(3, 2), "1 vs 3 threads");
    // What is compared moved: the updates changed the online network.
    assert_ne!(one.0, state_after(1, 0).0);
}
