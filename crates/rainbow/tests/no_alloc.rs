//! After construction, adding transitions, sampling into a reused batch and updating
//! priorities never allocate: counted by a global allocator, on this thread only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rainbow::{Batch, NStepConfig, PrioritizedReplay, ReplayConfig, Transition};
use rand::SeedableRng;
use rl_env::{Obs, ObsSpec};

struct Counting;

thread_local! {
    // `const` and `Cell<usize>` need no destructor, so the allocator may touch them.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(|a| a.get())
}

#[test]
fn add_sample_and_update_do_not_allocate() {
    let spec = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
    let config = ReplayConfig { capacity: 3_000, ..ReplayConfig::default() };
    let mut replay = PrioritizedReplay::new(&config, &NStepConfig::default(), &spec, 3).unwrap();
    let mut batch = Batch::new(32, &spec);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut stacks = vec![vec![0u8; spec.len()]; 3];
    let losses = vec![0.25f32; 32];

    let before = allocations();
    for (env, stack) in stacks.iter().enumerate() {
        replay.start_episode(env, Obs::Pixels(stack)).unwrap();
    }
    // 5000 decisions over 3 copies wrap each 1000-slot stream several times; macros of up
    // to 6 steps and episode ends exercise every path of `add`.
    for t in 0..5_000usize {
        let env = t % 3;
        let steps = 1 + t % 6;
        let stack = &mut stacks[env];
        for s in 0..steps {
            stack.copy_within(84 * 84.., 0);
            stack[3 * 84 * 84..].fill((t * 7 + s) as u8);
        }
        let end = t % 97 == 0;
        let step =
            Transition { action: t % 18, reward: 1.0, discount: 0.9, terminated: end, truncated: false };
        replay.add(env, &step, Obs::Pixels(stack)).unwrap();
        if end {
            replay.start_episode(env, Obs::Pixels(stack)).unwrap();
        }
        if t > 100 && t % 4 == 0 {
            replay.sample(&mut rng, t as u64, &mut batch).unwrap();
            replay.update_priorities(batch.indices(), &losses).unwrap();
        }
    }
    assert_eq!(allocations() - before, 0, "the training-loop calls allocated");
    // Macros of 1..=6 steps take 2.8 slots on average (min(L, 4)), so about 1000 decisions
    // fit in the 3000 slots.
    assert!(replay.len() > 900, "{}", replay.len());
}
