//! A learner's updates do not depend on the number of rayon threads, bit for bit: the
//! Atari campaign runs two runs at once on one thread each (docs/benchmarks.md) and a run
//! resumed on another machine gets that machine's thread count.

use candle_core::{Device, Tensor};
use rainbow::bench::LearnerBench;

/// The online and target parameters and Adam's moments after `updates` updates of the
/// Atari learner (18 actions, batch 32) on a rayon pool of `threads` threads.
fn state_after(threads: usize, updates: usize) -> Vec<Vec<u32>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut bench = LearnerBench::atari(18, 32, 0, &Device::Cpu, 5).unwrap();
        for _ in 0..updates {
            bench.learner.learn(&bench.batch, &mut ()).unwrap();
        }
        let bits = |t: &Tensor| -> Vec<u32> {
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
        };
        let l = &bench.learner;
        let nets = [l.online(), l.target()];
        let vars = nets.iter().flat_map(|net| net.named_vars().into_iter().map(|(_, v)| bits(v.as_tensor())));
        let (m, v) = l.adam().moments();
        vars.chain(m.iter().chain(v).map(|t| bits(t.as_tensor()))).collect()
    })
}

#[test]
fn updates_are_bit_identical_on_one_two_and_three_threads() {
    let one = state_after(1, 2);
    assert_eq!(one, state_after(2, 2), "1 vs 2 threads");
    assert_eq!(one, state_after(3, 2), "1 vs 3 threads");
    // The check compares something that moved: the updates changed the online network.
    assert_ne!(one, state_after(1, 0));
}
