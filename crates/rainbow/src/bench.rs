//! The set-up of `cargo xtask bench learner`, shared by the programs that time a learner
//! update: rainbow's `learner_step` example (plain Rainbow) and masp's `learner_step_masp`
//! (Rainbow + MASP), so that both time the same network on the same inputs.
//!
//! The work is that of `../shared/bench/torch_rainbow_step.py`: the Atari network (Nature
//! CNN on `u8 (batch, 4, 84, 84)`, 512 hidden units, 51 atoms, noisy dueling heads with
//! sigma0 0.5), Rainbow's learner config, and one fixed batch of random inputs: `obs` and
//! `next_obs` uniform bytes, uniform actions, standard-normal returns, discount `0.99^3`,
//! uniform importance weights.
//!
//! ```
//! use candle_core::Device;
//! use rainbow::bench::LearnerBench;
//! let mut bench = LearnerBench::atari(4, 2, 8, &Device::Cpu, 0)?; // 4 actions, batch 2
//! assert_eq!(bench.batch.obs().dims(), &[2, 4, 84, 84]);
//! let stats = bench.learner.learn(&bench.batch, &mut ())?;
//! assert!(stats.loss.is_finite());
//! # Ok::<(), rainbow::Error>(())
//! ```

use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rl_env::{Obs, ObsSpec};

use crate::config::{NStepConfig, ReplayConfig};
use crate::device_batch::DeviceBatch;
use crate::error::Result;
use crate::learner::{Learner, LearnerConfig, UpdateTimings};
use crate::network::NetworkConfig;
use crate::replay::prioritized::PrioritizedReplay;
use crate::transition::Transition;

/// A learner on the Atari network and a fixed random batch to time its updates on.
#[derive(Debug)]
pub struct LearnerBench {
    pub learner: Learner,
    /// `batch_size` random transitions on the learner's device (no replay indices).
    pub batch: DeviceBatch,
}

impl LearnerBench {
    /// The Atari learner for `actions` actions with `batch_size` transitions per update, in
    /// f32 on `device`, and its fixed batch; every random draw comes from `seed`. The
    /// learner's replay holds `replay_transitions` random transitions (one truncated
    /// episode), for a regulariser whose meta step samples a second batch there; with 0 it
    /// is empty and only `learn` on the fixed batch works.
    pub fn atari(
        actions: usize,
        batch_size: usize,
        replay_transitions: usize,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let spec = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
        let n_step = NStepConfig::rainbow();
        // The smallest ring the spec allows (64 slots), or room for every transition.
        let capacity = 64.max(replay_transitions + (n_step.n + 2) * 4);
        let replay =
            PrioritizedReplay::new(&ReplayConfig { capacity, ..ReplayConfig::rainbow() }, &n_step, &spec, 1)?;
        let config = LearnerConfig { batch_size, ..LearnerConfig::rainbow() };
        let mut learner =
            Learner::new(&config, &NetworkConfig::rainbow(), replay, actions, DType::F32, device, seed)?;

        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let b = batch_size;
        let mut bytes = |n: usize| (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
        let (obs, next_obs) = (bytes(b * spec.len()), bytes(b * spec.len()));
        let actions_taken: Vec<u32> = (0..b).map(|_| rng.random_range(0..actions as u32)).collect();
        let returns: Vec<f32> = (0..b).map(|_| rng.sample(StandardNormal)).collect();
        let weights: Vec<f32> = (0..b).map(|_| rng.random::<f32>()).collect();
        let discounts = vec![0.99f32.powi(3); b];
        let shape = (b, 4, 84, 84);
        let batch = DeviceBatch::from_tensors(
            Tensor::from_vec(obs, shape, device)?,
            Tensor::from_vec(next_obs, shape, device)?,
            Tensor::from_vec(actions_taken, b, device)?,
            Tensor::from_vec(returns, b, device)?,
            Tensor::from_vec(discounts, b, device)?,
            Tensor::from_vec(weights, b, device)?,
        )?;

        if replay_transitions > 0 {
            let frame = 84 * 84;
            let mut stack: Vec<u8> = (0..spec.len()).map(|_| rng.random()).collect();
            let replay = learner.replay_mut();
            replay.start_episode(0, Obs::Pixels(&stack))?;
            for t in 0..replay_transitions {
                stack.copy_within(frame.., 0); // the env pushes one new frame
                stack[3 * frame..].iter_mut().for_each(|p| *p = rng.random());
                let action = rng.random_range(0..actions);
                let step = Transition::primitive(
                    action,
                    rng.sample(StandardNormal),
                    n_step.gamma,
                    false,
                    t + 1 == replay_transitions,
                );
                replay.add(0, &step, Obs::Pixels(&stack))?;
            }
        }
        Ok(Self { learner, batch })
    }
}

/// The per-stage medians of profiled updates ([`Learner::set_profiling`]), in the update's
/// order, named for printing. Medians of each stage: they need not add up to the median
/// update.
pub fn stage_medians(timings: &[UpdateTimings]) -> Vec<(&'static str, Duration)> {
    let stage = |f: fn(&UpdateTimings) -> Duration| {
        let mut xs: Vec<Duration> = timings.iter().map(f).collect();
        xs.sort();
        xs.get(xs.len() / 2).copied().unwrap_or_default()
    };
    vec![
        ("noise + weights (mu + sigma eps)", stage(|t| t.noise)),
        ("forward next (online + target; CPU: + online)", stage(|t| t.forward_next)),
        ("projection", stage(|t| t.projection)),
        ("forward online", stage(|t| t.forward_online)),
        ("loss", stage(|t| t.loss)),
        ("backward", stage(|t| t.backward)),
        ("clip", stage(|t| t.clip)),
        ("readback", stage(|t| t.readback)),
        ("regularizer (MASP: meta step)", stage(|t| t.regularizer)),
        ("adam", stage(|t| t.adam)),
    ]
}
