//! MASP's update and meta step do not depend on the number of threads, bit for bit (the
//! meta step runs passes side by side): the Atari campaign runs two runs at once on one
//! thread each (docs/benchmarks.md), and a resumed run gets its machine's thread count.
#![cfg(feature = "rainbow")]

use candle_core::{Device, Tensor};
use masp::{MaspConfig, MaspRegularizer};
use rainbow::bench::LearnerBench;

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
}

/// The online parameters and `S` after `updates` MASP updates (a meta step on every one)
/// of the Atari learner (18 actions, batch 32) on `threads` threads: a rayon pool of that
/// size for our kernels and `RAYON_NUM_THREADS` for candle's own products, which read it at
/// every call (as `masp experiment` sets it for each run).
fn state_after(threads: usize, updates: usize) -> (Vec<Vec<u32>>, Vec<u32>) {
    // This binary's only test: no other thread reads the variable meanwhile.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let LearnerBench { mut learner, batch } = LearnerBench::atari(18, 32, 0, &Device::Cpu, 5).unwrap();
        let ids: Vec<String> = (0..18).map(|a| format!("action{a}")).collect();
        let config = MaspConfig { meta_interval: 1, ..MaspConfig::default() };
        let (mut masp, _) = MaspRegularizer::for_learner(config, &ids, None, &learner).unwrap();
        for _ in 0..updates {
            learner.learn(&batch, &mut masp).unwrap();
        }
        let online = learner.online().named_vars().into_iter().map(|(_, v)| bits(v.as_tensor())).collect();
        (online, bits(&masp.masp().similarity().tensor()))
    })
}

#[test]
fn masp_updates_are_bit_identical_on_one_two_and_three_threads() {
    let one = state_after(1, 2);
    assert_eq!(one, state_after(2, 2), "1 vs 2 threads");
    assert_eq!(one, state_after(3, 2), "1 vs 3 threads");
    // What is compared moved: the network and `S` both changed.
    let start = state_after(1, 0);
    assert_ne!(one.0, start.0);
    assert_ne!(one.1, start.1);
}
