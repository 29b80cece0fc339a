//! `PrioritizedReplay`: prioritised experience replay (Schaul et al. 2016) with n-step
//! returns over per-transition discounts and frames stored once, as Rainbow uses it.
//!
//! * Sampling: transition `i` with probability `P(i) = p_i^alpha / sum_k p_k^alpha`,
//!   stratified: the priority mass is cut into `B` equal segments and one transition is
//!   drawn from each, which lowers the variance of a batch against iid draws while keeping
//!   every marginal `P(i)` (Schaul et al., appendix B.2.1).
//! * Importance sampling: `w_i = (N P(i))^-beta / max_k (N P(k))^-beta`
//!   `= (p_i^alpha / min_k p_k^alpha)^-beta`, normalised by the largest weight in the
//!   whole buffer (from the min tree) as in Schaul et al. and baselines (Dopamine
//!   normalises by the batch's). `beta` follows [`ReplayConfig::beta`].
//! * Priorities: `p = |x| + eps` from the learner's per-transition `x` (Rainbow: the
//!   cross-entropy loss); a new transition enters at the largest `p` seen so far (1 at
//!   first), so it is sampled at least once soon.
//! * A transition becomes sampleable when its n-step return is complete (`n` transitions
//!   follow it, or its episode ended; see [`crate::n_step_return`]) and stops being
//!   sampleable when the ring overwrites its stack.
//!
//! Memory ([`PrioritizedReplay::bytes_for`]): per slot, one frame (`H * W` bytes; `4 * len`
//! for vectors) + 13 bytes of metadata + 32 to 64 bytes of sum and min tree (two `f64`
//! trees of `2 * next_pow2(capacity)` nodes). A slot holds one primitive transition; a
//! macro transition takes `min(L, C)` slots; each episode takes `C` more (its first
//! stack's older frames and its final state), so 1M slots hold 1M primitive transitions
//! less 4 per episode (under 0.5 % for Atari episodes of 1000+ decisions). A 1M-slot Atari
//! buffer (4x84x84) takes 7.10e9 bytes (6.61 GiB): 7.06e9 of frames, 0.01e9 of metadata,
//! 0.03e9 of trees.
//!
//! Nothing allocates after construction: `add` writes into the ring and `sample` into the
//! caller's [`Batch`].
//!
//! ```
//! use rainbow::{Batch, NStepConfig, PrioritizedReplay, ReplayConfig, Transition};
//! use rand::SeedableRng;
//! use rl_env::{Obs, ObsSpec};
//!
//! let spec = ObsSpec::Vector { len: 2 };
//! let config = ReplayConfig { capacity: 1_000, ..ReplayConfig::default() };
//! let mut replay = PrioritizedReplay::new(&config, &NStepConfig { n: 3, gamma: 0.9 }, &spec, 1)?;
//! replay.start_episode(0, Obs::Vector(&[0.0, 0.0]))?;
//! for t in 1..=4 {
//!     let last = t == 4;
//!     let step = Transition::primitive(1, 1.0, 0.9, last, false);
//!     replay.add(0, &step, Obs::Vector(&[t as f32, 0.0]))?;
//! }
//! assert_eq!(replay.len(), 4); // the terminal completed every return
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let mut batch = Batch::new(8, &spec);
//! replay.sample(&mut rng, 0, &mut batch)?;
//! assert!(batch.weights().iter().all(|&w| w == 1.0)); // equal priorities, equal weights
//! let first = batch.returns().iter().zip(batch.discounts()).find(|(_, &d)| d > 0.0).unwrap();
//! assert!((first.0 - (1.0 + 0.9 + 0.81)).abs() < 1e-6 && (first.1 - 0.729).abs() < 1e-6);
//! replay.update_priorities(batch.indices(), &[0.5; 8])?;
//! # Ok::<(), rainbow::Error>(())
//! ```

use rand::Rng;
use rl_env::{Obs, ObsSpec};

use crate::config::{NStepConfig, ReplayConfig, WeightNormalisation};
use crate::error::{Error, Result};
use crate::nstep::Pending;
use crate::replay::batch::{Batch, ObsBuf};
use crate::replay::snapshot::{corrupt, Reader, Writer, MAGIC, VERSION};
use crate::replay::storage::{Element, Slot, Storage};
use crate::replay::sum_tree::{MinTree, SumTree};
use crate::transition::Transition;

/// The priority trees and their bookkeeping.
#[derive(Debug)]
struct Priorities {
    /// `p_i^alpha` per slot; 0 for a slot that cannot be sampled.
    sum: SumTree,
    /// `p_i^alpha` per sampleable slot, `INFINITY` elsewhere.
    min: MinTree,
    alpha: f64,
    eps: f64,
    /// The largest `p = |x| + eps` seen, before the exponent; new transitions enter at it.
    max_priority: f64,
    /// Sampleable slots.
    live: usize,
}

impl Priorities {
    fn is_live(&self, slot: usize) -> bool {
        self.sum.get(slot) > 0.0
    }

    /// `p^alpha`, kept positive: a 0 leaf means "not sampleable", so an underflow (a tiny
    /// priority under a large exponent) must not turn a transition into a hole.
    fn leaf(&self, p: f64) -> f64 {
        p.powf(self.alpha).max(f64::MIN_POSITIVE)
    }

    fn set(&mut self, slot: usize, p: f64) {
        if !self.is_live(slot) {
            self.live += 1;
        }
        let leaf = self.leaf(p);
        self.sum.set(slot, leaf);
        self.min.set(slot, leaf);
    }

    fn insert(&mut self, slot: usize) {
        self.set(slot, self.max_priority);
    }

    fn remove(&mut self, slot: usize) {
        if self.is_live(slot) {
            self.live -= 1;
            self.sum.set(slot, 0.0);
            self.min.set(slot, f64::INFINITY);
        }
    }
}

/// Prioritised replay over one or more env copies; see the module docs.
///
/// Protocol, per env copy `e`: `start_episode(e, first_obs)`, then `add(e, transition,
/// next_obs)` for each step, until a transition that is `terminated` or `truncated`; then
/// `start_episode` again. With a [`rl_env::VecEnv`] (same-step autoreset), the `next_obs`
/// of a finished episode is `final_obs(e)` and the next episode's first observation is row
/// `e` of `obs()`.
pub struct PrioritizedReplay {
    config: ReplayConfig,
    n: usize,
    spec: ObsSpec,
    num_envs: usize,
    storage: Storage,
    pending: Pending,
    priorities: Priorities,
}

/// A summary: the buffer itself can be gigabytes.
impl std::fmt::Debug for PrioritizedReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrioritizedReplay")
            .field("config", &self.config)
            .field("n", &self.n)
            .field("obs", &self.spec)
            .field("num_envs", &self.num_envs)
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("max_priority", &self.priorities.max_priority)
            .finish_non_exhaustive()
    }
}

impl PrioritizedReplay {
    /// A buffer for `num_envs` env copies with observations of `obs`. The capacity is split
    /// evenly between the copies (`capacity / num_envs` slots each; the remainder is unused).
    pub fn new(config: &ReplayConfig, n_step: &NStepConfig, obs: &ObsSpec, num_envs: usize) -> Result<Self> {
        config.validate()?;
        n_step.validate()?;
        if num_envs == 0 {
            return Err(Error::config(
                "PrioritizedReplay",
                "num_envs",
                num_envs,
                "use at least one env copy",
            ));
        }
        if obs.is_empty() {
            return Err(Error::ObsMismatch {
                what: "PrioritizedReplay::new".into(),
                expected: "an observation spec with at least one element".into(),
                found: format!("{obs:?}"),
            });
        }
        let per_env = config.capacity / num_envs;
        let min = Self::min_slots_per_env(n_step.n, obs);
        if per_env < min {
            return Err(Error::config(
                "ReplayConfig",
                "capacity",
                config.capacity,
                format!(
                    "hold at least {min} slots per env copy (n = {}, stack of {}, so n + 2 stacks): \
                     capacity >= {} for {num_envs} copies",
                    n_step.n,
                    Storage::geometry(obs).0,
                    min * num_envs
                ),
            ));
        }
        let capacity = per_env * num_envs;
        Ok(Self {
            config: config.clone(),
            n: n_step.n,
            spec: obs.clone(),
            num_envs,
            storage: Storage::new(obs, num_envs, per_env),
            pending: Pending::new(num_envs, n_step.n),
            priorities: Priorities {
                sum: SumTree::new(capacity),
                min: MinTree::new(capacity),
                alpha: config.alpha,
                eps: config.eps,
                max_priority: 1.0,
                live: 0,
            },
        })
    }

    /// The fewest slots an env copy's stream needs: the states still waiting for their
    /// return (`n`, each up to `C` slots apart), their stacks, and the next observation's
    /// `C` frames must all fit without the ring overwriting them.
    fn min_slots_per_env(n: usize, obs: &ObsSpec) -> usize {
        (n + 2) * Storage::geometry(obs).0
    }

    /// Heap bytes that [`PrioritizedReplay::new`] would allocate for this config, without
    /// allocating: frames, per-slot metadata, both priority trees and the per-copy queues.
    pub fn bytes_for(config: &ReplayConfig, n_step: &NStepConfig, obs: &ObsSpec, num_envs: usize) -> usize {
        let num_envs = num_envs.max(1);
        let per_env = config.capacity / num_envs;
        let tree = 2 * (per_env * num_envs).max(1).next_power_of_two() * std::mem::size_of::<f64>();
        Storage::bytes_for(obs, num_envs, per_env) + 2 * tree + Pending::bytes_for(num_envs, n_step.n)
    }

    /// Heap bytes held now (the frames are committed by the OS only as they are written).
    pub fn bytes(&self) -> usize {
        self.storage.bytes()
            + self.priorities.sum.bytes()
            + self.priorities.min.bytes()
            + self.pending.bytes()
    }

    /// Slots in the ring, all copies together.
    pub fn capacity(&self) -> usize {
        self.storage.capacity()
    }

    /// Sampleable transitions.
    pub fn len(&self) -> usize {
        self.priorities.live
    }

    pub fn is_empty(&self) -> bool {
        self.priorities.live == 0
    }

    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// `n`, the transitions per return.
    pub fn n(&self) -> usize {
        self.n
    }

    pub fn obs_spec(&self) -> &ObsSpec {
        &self.spec
    }

    /// The importance-sampling exponent `sample` uses at `step`.
    pub fn beta(&self, step: u64) -> f64 {
        self.config.beta(step)
    }

    /// The largest priority `|x| + eps` seen so far (1 before any update): what a new
    /// transition gets.
    pub fn max_priority(&self) -> f64 {
        self.priorities.max_priority
    }

    /// `P(i)`, the probability that one draw picks transition `index`; `None` if it is not
    /// sampleable.
    pub fn probability(&self, index: usize) -> Option<f64> {
        (index < self.capacity() && self.priorities.is_live(index))
            .then(|| self.priorities.sum.get(index) / self.priorities.sum.total())
    }

    /// The indices of all sampleable transitions, in slot order (a scan of the ring; for
    /// tests and diagnostics, not the training loop).
    pub fn sampleable(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.capacity()).filter(|&i| self.priorities.is_live(i))
    }

    fn check_env(&self, env: usize) -> Result<()> {
        if env >= self.num_envs {
            return Err(Error::EnvOutOfRange { env, num_envs: self.num_envs });
        }
        Ok(())
    }

    fn check_obs(&self, obs: Obs<'_>, what: impl FnOnce() -> String) -> Result<()> {
        let kind_ok = matches!(
            (&self.spec, obs),
            (ObsSpec::Pixels { .. }, Obs::Pixels(_)) | (ObsSpec::Vector { .. }, Obs::Vector(_))
        );
        if !kind_ok || obs.len() != self.spec.len() {
            let (kind, found) = match obs {
                Obs::Pixels(p) => ("u8 pixels", p.len()),
                Obs::Vector(v) => ("an f32 vector", v.len()),
            };
            return Err(Error::ObsMismatch {
                what: what(),
                expected: format!("{:?} ({} elements)", self.spec, self.spec.len()),
                found: format!("{kind} of {found} elements"),
            });
        }
        Ok(())
    }

    /// Starts an episode of copy `env` with its first observation (the full stack the env
    /// returned at reset).
    pub fn start_episode(&mut self, env: usize, obs: Obs<'_>) -> Result<()> {
        self.check_env(env)?;
        if self.storage.current(env).is_some() {
            return Err(Error::EpisodeInProgress { env });
        }
        self.check_obs(obs, || format!("start_episode(env {env})"))?;
        let priorities = &mut self.priorities;
        let slot = self.storage.begin(env, obs, &mut |s| priorities.remove(s));
        debug_assert_eq!(self.pending.len(env), 0);
        self.pending.push(env, slot, &mut |_| unreachable!("a new episode has nothing waiting"));
        Ok(())
    }

    /// Adds the transition that left copy `env`'s current state, and `next_obs`, the
    /// observation it led to (at a truncation, the state to bootstrap from). Transitions
    /// whose n-step return this completes become sampleable at the maximum priority.
    pub fn add(&mut self, env: usize, transition: &Transition, next_obs: Obs<'_>) -> Result<()> {
        self.check_env(env)?;
        if self.storage.current(env).is_none() {
            return Err(Error::NoEpisode { env });
        }
        self.check_obs(next_obs, || format!("add(env {env}) next_obs"))?;
        let invalid = |field, value: String, fix| Err(Error::InvalidTransition { env, field, value, fix });
        let action = match u32::try_from(transition.action) {
            Ok(a) => a,
            Err(_) => return invalid("action", transition.action.to_string(), "use an index below 2^32"),
        };
        if !transition.reward.is_finite() {
            return invalid("reward", transition.reward.to_string(), "rewards must be finite");
        }
        if !(0.0..=1.0).contains(&transition.discount) {
            return invalid("discount", transition.discount.to_string(), "use gamma^L in [0, 1]");
        }
        let last = transition.done();
        let discount = if transition.terminated { 0.0 } else { transition.discount };
        let priorities = &mut self.priorities;
        let slot = self
            .storage
            .append(env, action, transition.reward, discount, next_obs, last, &mut |s| priorities.remove(s));
        let storage = &self.storage;
        let mut ready = |s| {
            // The capacity floor keeps every waiting state's stack in the ring.
            debug_assert_eq!(storage.kind(s), Slot::State);
            priorities.insert(s)
        };
        if last {
            self.pending.end_episode(env, &mut ready);
        } else {
            self.pending.push(env, slot, &mut ready);
        }
        Ok(())
    }

    /// Ends copy `env`'s episode in progress at its current state, as if the last
    /// transition added had been a truncation: that state becomes the episode's last
    /// observation (bootstrapped from) and the returns waiting on it complete. Does nothing
    /// between episodes. For a run resumed from a checkpoint: the env's own state is not
    /// saved, so its episode restarts and the replay's cannot go on.
    pub fn truncate_episode(&mut self, env: usize) -> Result<()> {
        self.check_env(env)?;
        let Some(current) = self.storage.truncate(env) else {
            return Ok(());
        };
        // The current state waits for a transition that will never come.
        let withdrawn = self.pending.pop_newest(env);
        debug_assert_eq!(withdrawn, Some(current), "the current state is the newest waiting one");
        let priorities = &mut self.priorities;
        self.pending.end_episode(env, &mut |s| priorities.insert(s));
        Ok(())
    }

    /// Draws `batch.len()` transitions in proportion to their priorities (stratified) and
    /// writes them, with importance weights for `beta(step)`, into `batch`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, step: u64, batch: &mut Batch) -> Result<()> {
        self.check_batch(batch, batch.len())?;
        if self.is_empty() {
            return Err(Error::Empty);
        }
        let total = self.priorities.sum.total();
        let segment = total / batch.len() as f64;
        for (k, index) in batch.indices.iter_mut().enumerate() {
            let prefix = (k as f64 + rng.random::<f64>()) * segment;
            *index = self.priorities.sum.find(prefix);
        }
        self.fill(step, batch);
        Ok(())
    }

    /// Writes the transitions `indices` (sampleable ones, e.g. a previous batch's) into
    /// `batch`, as `sample` would have; `batch.len()` must equal `indices.len()`.
    pub fn gather(&self, indices: &[usize], step: u64, batch: &mut Batch) -> Result<()> {
        self.check_batch(batch, indices.len())?;
        for &index in indices {
            if index >= self.capacity() || !self.priorities.is_live(index) {
                return Err(Error::NotSampleable { index, capacity: self.capacity() });
            }
        }
        batch.indices.copy_from_slice(indices);
        self.fill(step, batch);
        Ok(())
    }

    fn check_batch(&self, batch: &Batch, expected: usize) -> Result<()> {
        if batch.spec != self.spec {
            return Err(Error::ObsMismatch {
                what: "Batch".into(),
                expected: format!("{:?}", self.spec),
                found: format!("{:?}", batch.spec),
            });
        }
        if batch.len() != expected {
            return Err(Error::LengthMismatch { what: "Batch", expected, found: batch.len() });
        }
        Ok(())
    }

    /// Fills every field of `batch` from its `indices`.
    fn fill(&self, step: u64, batch: &mut Batch) {
        let beta = self.config.beta(step);
        // The largest weight is the smallest priority's.
        let min_leaf = match self.config.weight_normalisation {
            WeightNormalisation::BufferMax => self.priorities.min.min(),
            WeightNormalisation::BatchMax => {
                batch.indices.iter().map(|&slot| self.priorities.sum.get(slot)).fold(f64::INFINITY, f64::min)
            }
        };
        for k in 0..batch.len() {
            let slot = batch.indices[k];
            debug_assert_eq!(self.storage.kind(slot), Slot::State);
            let (ret, bootstrap) = self.storage.n_step(slot, self.n);
            match (&mut batch.obs, &mut batch.next_obs) {
                (ObsBuf::Pixels(o), ObsBuf::Pixels(n)) => self.copy_pair(k, slot, bootstrap, o, n),
                (ObsBuf::Vector(o), ObsBuf::Vector(n)) => self.copy_pair(k, slot, bootstrap, o, n),
                _ => unreachable!("check_batch compared the specs"),
            }
            batch.actions[k] = self.storage.action(slot);
            batch.returns[k] = ret.ret as f32;
            batch.discounts[k] = ret.discount as f32;
            let ratio = self.priorities.sum.get(slot) / min_leaf;
            batch.weights[k] = ratio.powf(-beta) as f32;
        }
    }

    fn copy_pair<T: Element>(&self, k: usize, slot: usize, bootstrap: usize, obs: &mut [T], next: &mut [T]) {
        let len = self.spec.len();
        self.storage.copy_stack(slot, &mut obs[k * len..(k + 1) * len]);
        self.storage.copy_stack(bootstrap, &mut next[k * len..(k + 1) * len]);
    }

    /// Sets the priorities of transitions `indices` to `|x| + eps` for the learner's
    /// per-transition values `x` (Rainbow: the loss). Indices the ring has overwritten since
    /// they were sampled are skipped.
    pub fn update_priorities(&mut self, indices: &[usize], values: &[f32]) -> Result<()> {
        if indices.len() != values.len() {
            return Err(Error::LengthMismatch {
                what: "update_priorities values",
                expected: indices.len(),
                found: values.len(),
            });
        }
        // Check everything first, so a bad entry leaves the trees untouched.
        for (&index, &value) in indices.iter().zip(values) {
            if index >= self.capacity() {
                return Err(Error::NotSampleable { index, capacity: self.capacity() });
            }
            if !value.is_finite() {
                return Err(Error::InvalidPriority { index, value });
            }
        }
        for (&index, &value) in indices.iter().zip(values) {
            if self.priorities.is_live(index) {
                let p = value.abs() as f64 + self.priorities.eps;
                self.priorities.max_priority = self.priorities.max_priority.max(p);
                self.priorities.set(index, p);
            }
        }
        Ok(())
    }
}

impl PrioritizedReplay {
    /// Writes the buffer's whole state (see `replay/snapshot.rs` for the format): what a
    /// checkpoint needs so that a resumed run samples exactly what an uninterrupted one
    /// would. Only the slots written so far are stored, so the size grows with the
    /// transitions held, up to about [`PrioritizedReplay::bytes`] bytes when full.
    pub fn save_snapshot(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut w = Writer::new(w);
        w.raw(MAGIC)?;
        w.u64(VERSION)?;
        self.storage.write_snapshot(&mut w)?;
        self.pending.write_snapshot(&mut w)?;
        let p = &self.priorities;
        w.f64(p.alpha)?;
        w.f64(p.eps)?;
        w.f64(p.max_priority)?;
        w.u64(p.live as u64)?;
        let filled = self.storage.filled();
        p.sum.write_snapshot(&mut w, &filled)?;
        p.min.write_snapshot(&mut w, &filled)
    }

    /// Whether every copy's waiting states agree with its stream, as `add` and
    /// `start_episode` keep them: none without an episode in progress; with one, states of
    /// the copy's own slots, the newest its current state. A snapshot that disagrees would
    /// panic at the first step after a resume.
    fn check_pending(&self) -> Result<()> {
        for env in 0..self.num_envs {
            let waiting: Vec<usize> = self.pending.waiting(env).collect();
            let (current, own) = (self.storage.current(env), self.storage.slots_of(env));
            let stream_ok = match current {
                None => waiting.is_empty(),
                Some(c) => waiting.last() == Some(&c),
            };
            let slots_ok = waiting.iter().all(|&s| own.contains(&s) && self.storage.kind(s) == Slot::State);
            if !(stream_ok && slots_ok) {
                return Err(corrupt(format!(
                    "env copy {env} waits on slots {waiting:?}, with its current state {current:?} and slots {own:?}"
                )));
            }
        }
        Ok(())
    }

    /// Restores a [`PrioritizedReplay::save_snapshot`] into this buffer, which must be new
    /// and built with the same configuration, observation spec and env copies. On error
    /// the buffer may be partly overwritten: build a fresh one.
    pub fn load_snapshot(&mut self, r: &mut dyn std::io::Read) -> Result<()> {
        let mut r = Reader::new(r);
        let mut magic = [0u8; 8];
        r.raw(&mut magic)?;
        if &magic != MAGIC {
            return Err(Error::ShapeMismatch {
                what: "replay snapshot".into(),
                expected: "a file starting with RBREPLAY".into(),
                found: format!("{magic:?}"),
            });
        }
        r.expect("format version", VERSION)?;
        self.storage.read_snapshot(&mut r)?;
        self.pending.read_snapshot(&mut r)?;
        self.check_pending()?;
        let p = &mut self.priorities;
        r.expect("alpha (bits)", p.alpha.to_bits())?;
        r.expect("eps (bits)", p.eps.to_bits())?;
        p.max_priority = r.f64()?;
        p.live = r.u64()? as usize;
        let filled = self.storage.filled();
        p.sum.read_snapshot(&mut r, &filled)?;
        p.min.read_snapshot(&mut r, &filled)?;
        // The count of sampleable slots is implied by the leaves: a file that disagrees is
        // corrupt, and a wrong count would underflow at the next removal.
        let leaves = filled.iter().flat_map(|range| range.clone()).map(|slot| p.sum.get(slot));
        let (mut live, mut valid) = (0usize, true);
        for leaf in leaves {
            valid &= leaf.is_finite() && leaf >= 0.0;
            live += usize::from(leaf > 0.0);
        }
        if !valid || live != p.live {
            return Err(Error::ShapeMismatch {
                what: "replay snapshot".into(),
                expected: format!("{} sampleable slots with finite priorities", p.live),
                found: format!(
                    "{live} positive leaves{}",
                    if valid { "" } else { ", some not finite or negative" }
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::replay::sum_tree::tests::chi_squared;

    const VEC2: ObsSpec = ObsSpec::Vector { len: 2 };

    fn replay(capacity: usize, n: usize, num_envs: usize) -> PrioritizedReplay {
        let config = ReplayConfig { capacity, ..ReplayConfig::default() };
        PrioritizedReplay::new(&config, &NStepConfig { n, gamma: 0.9 }, &VEC2, num_envs).unwrap()
    }

    /// One episode of `len` primitive steps on copy `env`, whose observations are `[id, t]`.
    fn episode(r: &mut PrioritizedReplay, env: usize, id: f32, len: usize, terminal: bool) {
        r.start_episode(env, Obs::Vector(&[id, 0.0])).unwrap();
        for t in 1..=len {
            let last = t == len;
            let step = Transition::primitive(t, t as f32, 0.9, last && terminal, last && !terminal);
            r.add(env, &step, Obs::Vector(&[id, t as f32])).unwrap();
        }
    }

    #[test]
    fn a_transition_is_sampleable_once_its_return_is_complete() {
        let mut r = replay(100, 3, 1);
        r.start_episode(0, Obs::Vector(&[0.0, 0.0])).unwrap();
        for t in 1..=5 {
            r.add(0, &Transition::primitive(0, 0.0, 0.9, false, false), Obs::Vector(&[0.0, t as f32]))
                .unwrap();
            // After t transitions, the states with 3 transitions after them: t - 2.
            assert_eq!(r.len(), (t as usize).saturating_sub(2));
        }
        r.add(0, &Transition::primitive(0, 0.0, 0.9, false, true), Obs::Vector(&[0.0, 6.0])).unwrap();
        assert_eq!(r.len(), 6, "the truncation completed the last returns");
    }

    /// The reference is the same episode whose last transition was added as a truncation:
    /// the same transitions become sampleable, with the same n-step returns and bootstrap
    /// states, and the copy can start its next episode.
    #[test]
    fn truncating_an_episode_in_progress_equals_a_truncated_last_transition() {
        let (mut cut, mut reference) = (replay(100, 3, 2), replay(100, 3, 2));
        episode(&mut cut, 1, 1.0, 3, true);
        episode(&mut reference, 1, 1.0, 3, true);
        cut.start_episode(0, Obs::Vector(&[0.0, 0.0])).unwrap();
        for t in 1..=5 {
            cut.add(0, &Transition::primitive(t, t as f32, 0.9, false, false), Obs::Vector(&[0.0, t as f32]))
                .unwrap();
        }
        episode(&mut reference, 0, 0.0, 5, false);
        assert_eq!(cut.len(), 3 + 3, "before: only the returns with 3 transitions after them");
        cut.truncate_episode(0).unwrap();
        cut.truncate_episode(0).unwrap(); // between episodes: nothing to do
        let indices: Vec<usize> = reference.sampleable().collect();
        assert_eq!(cut.sampleable().collect::<Vec<_>>(), indices);
        let (mut a, mut b) = (Batch::new(indices.len(), &VEC2), Batch::new(indices.len(), &VEC2));
        cut.gather(&indices, 0, &mut a).unwrap();
        reference.gather(&indices, 0, &mut b).unwrap();
        assert_eq!((a.returns(), a.discounts(), a.next_obs()), (b.returns(), b.discounts(), b.next_obs()));
        cut.start_episode(0, Obs::Vector(&[2.0, 0.0])).unwrap();
        // An episode cut at its first state has no transition to release.
        cut.truncate_episode(0).unwrap();
        assert_eq!(cut.len(), indices.len());
    }

    #[test]
    fn stratified_sampling_passes_chi_squared_against_the_priorities() {
        // 32 transitions with priorities 1..=32 (alpha = 1, so P(i) is proportional to the
        // priority); 4000 batches of 32 from a fixed seed. The statistic has 31 degrees of
        // freedom: chi2.ppf(0.999, 31) = 61.098. Stratification lowers the variance, which
        // only makes a correct sampler pass more easily; a sampler that ignores priorities
        // scores in the thousands here.
        let config = ReplayConfig { capacity: 100, alpha: 1.0, eps: 1e-10, ..ReplayConfig::default() };
        let mut r = PrioritizedReplay::new(&config, &NStepConfig { n: 1, gamma: 0.9 }, &VEC2, 1).unwrap();
        episode(&mut r, 0, 0.0, 32, true);
        let indices: Vec<usize> = r.sampleable().collect();
        assert_eq!(indices.len(), 32);
        let values: Vec<f32> = (1..=32).map(|p| p as f32).collect();
        r.update_priorities(&indices, &values).unwrap();
        let mut counts = vec![0u64; 32];
        let mut batch = Batch::new(32, &VEC2);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..4000 {
            r.sample(&mut rng, 0, &mut batch).unwrap();
            for &i in batch.indices() {
                counts[indices.iter().position(|&j| j == i).unwrap()] += 1;
            }
        }
        let probs: Vec<f64> = (1..=32).map(|p| p as f64 / 528.0).collect();
        let stat = chi_squared(&counts, &probs);
        assert!(stat < 61.098, "chi-squared {stat:.1} over 31 df rejects P(i) = p_i / sum p");
    }

    #[test]
    fn importance_weights_match_a_brute_force_computation() {
        // Reference: the definition, in f64, w_i = (N P(i))^-beta / max_k (N P(k))^-beta with
        // P(i) = p_i^alpha / sum_k p_k^alpha and k over the batch or the whole buffer. The
        // batch is every third transition, so the two maxima differ.
        for norm in [WeightNormalisation::BatchMax, WeightNormalisation::BufferMax] {
            let config = ReplayConfig {
                capacity: 200,
                alpha: 0.6,
                beta0: 0.4,
                beta_steps: 1000,
                eps: 1e-6,
                weight_normalisation: norm,
            };
            let mut r = PrioritizedReplay::new(&config, &NStepConfig { n: 3, gamma: 0.9 }, &VEC2, 2).unwrap();
            episode(&mut r, 0, 0.0, 20, true);
            episode(&mut r, 1, 1.0, 17, false);
            let indices: Vec<usize> = r.sampleable().collect();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut values: Vec<f32> = indices.iter().map(|_| rng.random_range(0.1..5.0)).collect();
            values[1] = 0.0; // the buffer's largest weight, outside the batch
            r.update_priorities(&indices, &values).unwrap();
            let p: Vec<f64> = values.iter().map(|&x| (x.abs() as f64 + 1e-6).powf(0.6)).collect();
            let total: f64 = p.iter().sum();
            let n = p.len() as f64;
            let picked: Vec<usize> = (0..indices.len()).step_by(3).collect();
            let batch_indices: Vec<usize> = picked.iter().map(|&k| indices[k]).collect();
            for step in [0, 500, 2000] {
                let beta = config.beta(step);
                let raw = |pi: f64| (n * pi / total).powf(-beta);
                let over = match norm {
                    WeightNormalisation::BatchMax => picked.clone(),
                    WeightNormalisation::BufferMax => (0..p.len()).collect(),
                };
                let max_w = over.iter().map(|&k| raw(p[k])).fold(0.0, f64::max);
                let mut batch = Batch::new(batch_indices.len(), &VEC2);
                r.gather(&batch_indices, step, &mut batch).unwrap();
                for (j, &k) in picked.iter().enumerate() {
                    let expected = raw(p[k]) / max_w;
                    let got = batch.weights()[j] as f64;
                    assert!(
                        (got - expected).abs() < 1e-6 * expected,
                        "{norm:?} step {step}, k {k}: {got} vs {expected}"
                    );
                    assert!((r.probability(indices[k]).unwrap() - p[k] / total).abs() < 1e-12);
                }
                let top = batch.weights().iter().copied().fold(0.0f32, f32::max);
                assert_eq!(top == 1.0, norm == WeightNormalisation::BatchMax, "{norm:?}: batch max {top}");
            }
        }
    }

    #[test]
    fn new_transitions_enter_at_the_largest_priority_seen() {
        let mut r = replay(100, 1, 1);
        episode(&mut r, 0, 0.0, 3, true);
        let first: Vec<usize> = r.sampleable().collect();
        r.update_priorities(&first, &[4.0, 0.5, 2.0]).unwrap();
        assert!((r.max_priority() - (4.0 + 1e-10)).abs() < 1e-12);
        episode(&mut r, 0, 1.0, 1, true);
        let newest = r.sampleable().find(|i| !first.contains(i)).unwrap();
        let p = |i| r.probability(i).unwrap();
        assert!((p(newest) - p(first[0])).abs() < 1e-15, "alpha applies to both");
        // A later, smaller maximum does not lower it.
        r.update_priorities(&first, &[0.1, 0.1, 0.1]).unwrap();
        assert!(r.max_priority() > 4.0);
    }

    #[test]
    fn wrap_around_keeps_the_newest_and_never_exceeds_the_capacity() {
        // 20 slots, n = 1, vectors (C = 1): every step takes one slot, every episode one more
        // for its final observation.
        let mut r = replay(20, 1, 1);
        for e in 0..10 {
            episode(&mut r, 0, e as f32, 5, e % 2 == 0);
            assert!(r.len() <= 20);
        }
        // 60 slots written into 20: the ring holds the last 20, the newest episodes' states.
        let mut batch = Batch::new(r.len(), &VEC2);
        let indices: Vec<usize> = r.sampleable().collect();
        r.gather(&indices, 0, &mut batch).unwrap();
        let Obs::Vector(obs) = batch.obs() else { unreachable!() };
        let episodes: Vec<f32> = obs.chunks(2).map(|o| o[0]).collect();
        assert!(episodes.iter().all(|&e| e >= 6.0), "old episodes survived: {episodes:?}");
        // Each episode wrote 6 slots (5 states, 1 final), 60 in all; the ring keeps slots
        // 40..60: episode 6's last state and final, and episodes 7, 8, 9 whole. Sampleable:
        // 1 + 3 * 5 states.
        assert_eq!(r.len(), 16);
        assert_eq!(episodes.iter().filter(|&&e| e == 6.0).count(), 1);
        assert_eq!(r.capacity(), 20);
    }

    #[test]
    fn capacity_splits_between_env_copies_and_has_a_floor() {
        let r = replay(103, 3, 4);
        assert_eq!(r.capacity(), 100, "25 slots per copy; the remainder is unused");
        // n = 3 and 4-frame stacks need (3 + 2) * 4 = 20 slots per copy.
        let config = ReplayConfig { capacity: 39, ..ReplayConfig::default() };
        let pixels = ObsSpec::Pixels { channels: 4, height: 2, width: 2 };
        let err = PrioritizedReplay::new(&config, &NStepConfig::default(), &pixels, 2).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { field: "capacity", .. }), "{err}");
        assert!(err.to_string().contains("capacity >= 40 for 2 copies"), "{err}");
        let ok = ReplayConfig { capacity: 40, ..config };
        assert!(PrioritizedReplay::new(&ok, &NStepConfig::default(), &pixels, 2).is_ok());
    }

    #[test]
    fn memory_of_a_1m_atari_buffer_is_about_7_gib() {
        let atari = ObsSpec::Pixels { channels: 4, height: 84, width: 84 };
        let bytes =
            PrioritizedReplay::bytes_for(&ReplayConfig::default(), &NStepConfig::default(), &atari, 1);
        // Frames 1e6 * 7056 = 7.056e9; metadata 13 B a slot; trees 2 * 2 * 2^20 * 8 B.
        // Plus a few dozen bytes of per-copy cursors and queues.
        let expected = 1_000_000 * (84 * 84 + 13) + 4 * (1 << 20) * 8;
        assert!(bytes - expected < 100, "{bytes} vs {expected}");
        assert!(bytes < 7_200_000_000 && (bytes as f64) < 6.7 * (1u64 << 30) as f64);
        // A small buffer reports what it holds the same way.
        let r = replay(64, 3, 1);
        assert_eq!(r.bytes(), PrioritizedReplay::bytes_for(r.config(), &NStepConfig::default(), &VEC2, 1));
    }

    #[test]
    fn protocol_errors_name_the_fix() {
        let mut r = replay(100, 3, 2);
        let obs = Obs::Vector(&[0.0, 0.0]);
        let step = Transition::primitive(0, 0.0, 0.9, false, false);
        assert!(matches!(r.add(0, &step, obs), Err(Error::NoEpisode { env: 0 })));
        assert!(matches!(r.start_episode(2, obs), Err(Error::EnvOutOfRange { env: 2, num_envs: 2 })));
        r.start_episode(0, obs).unwrap();
        assert!(matches!(r.start_episode(0, obs), Err(Error::EpisodeInProgress { env: 0 })));
        let e = r.add(0, &step, Obs::Vector(&[0.0])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add(env 0) next_obs: expected Vector { len: 2 } (2 elements), got an f32 vector of 1 elements"
        );
        let bad = Transition { discount: 1.5, ..step };
        assert!(matches!(r.add(0, &bad, obs), Err(Error::InvalidTransition { field: "discount", .. })));
        let bad = Transition { reward: f32::NAN, ..step };
        assert!(matches!(r.add(0, &bad, obs), Err(Error::InvalidTransition { field: "reward", .. })));
        let mut batch = Batch::new(4, &VEC2);
        assert!(matches!(r.sample(&mut ChaCha8Rng::seed_from_u64(0), 0, &mut batch), Err(Error::Empty)));
        let mut wrong = Batch::new(4, &ObsSpec::Vector { len: 3 });
        assert!(matches!(r.gather(&[0; 4], 0, &mut wrong), Err(Error::ObsMismatch { .. })));
        assert!(matches!(r.gather(&[0; 3], 0, &mut batch), Err(Error::LengthMismatch { .. })));
        assert!(matches!(r.gather(&[0; 4], 0, &mut batch), Err(Error::NotSampleable { index: 0, .. })));
        assert!(matches!(r.update_priorities(&[0], &[f32::NAN]), Err(Error::InvalidPriority { .. })));
        assert!(matches!(r.update_priorities(&[1000], &[1.0]), Err(Error::NotSampleable { .. })));
    }

    #[test]
    fn stale_indices_are_skipped_by_priority_updates() {
        let mut r = replay(20, 1, 1);
        episode(&mut r, 0, 0.0, 5, true);
        let old: Vec<usize> = r.sampleable().collect();
        for e in 1..5 {
            episode(&mut r, 0, e as f32, 5, true);
        }
        let live_before = r.len();
        // Some of `old` now hold other episodes' frames or states; none may be revived.
        r.update_priorities(&old, &[1.0; 5]).unwrap();
        assert_eq!(r.len(), live_before);
    }

    #[test]
    fn snapshot_round_trip_samples_identically() {
        let mut a = replay(40, 3, 2);
        for e in 0..5 {
            episode(&mut a, e % 2, e as f32, 6 + e, e % 3 != 0);
        }
        // An episode in progress on copy 1, so the waiting queue is part of the state.
        a.start_episode(1, Obs::Vector(&[9.0, 0.0])).unwrap();
        a.add(1, &Transition::primitive(2, 0.5, 0.9, false, false), Obs::Vector(&[9.0, 1.0])).unwrap();
        let indices: Vec<usize> = a.sampleable().take(3).collect();
        a.update_priorities(&indices, &[0.3, 2.0, 7.0]).unwrap();
        let mut bytes = Vec::new();
        a.save_snapshot(&mut bytes).unwrap();
        let mut b = replay(40, 3, 2);
        b.load_snapshot(&mut bytes.as_slice()).unwrap();
        assert_eq!((a.len(), a.max_priority()), (b.len(), b.max_priority()));
        // Both continue identically: the same add, then the same samples.
        for r in [&mut a, &mut b] {
            r.add(1, &Transition::primitive(1, 1.0, 0.9, true, false), Obs::Vector(&[9.0, 2.0])).unwrap();
        }
        let (mut ba, mut bb) = (Batch::new(16, &VEC2), Batch::new(16, &VEC2));
        a.sample(&mut ChaCha8Rng::seed_from_u64(5), 7, &mut ba).unwrap();
        b.sample(&mut ChaCha8Rng::seed_from_u64(5), 7, &mut bb).unwrap();
        assert_eq!(ba.indices(), bb.indices());
        assert_eq!(ba.obs(), bb.obs());
        assert_eq!(ba.next_obs(), bb.next_obs());
        assert_eq!(
            (ba.returns(), ba.discounts(), ba.weights()),
            (bb.returns(), bb.discounts(), bb.weights())
        );
        // A buffer of another shape refuses the snapshot.
        let mut other = replay(60, 3, 2);
        let err = other.load_snapshot(&mut bytes.as_slice()).unwrap_err();
        assert!(err.to_string().contains("slots per copy"), "{err}");
        assert!(b.load_snapshot(&mut &bytes[..100]).is_err(), "truncated");
    }

    /// A waiting queue that disagrees with its stream (a state waiting on a copy with no
    /// episode in progress, another copy's slot, a newest state that is not the current
    /// one) is refused, as `load_snapshot` refuses it, instead of panicking at the next step.
    #[test]
    fn waiting_states_must_agree_with_their_stream() {
        // Copy 0 between episodes, copy 1 one step into one.
        let setup = || {
            let mut r = replay(40, 3, 2);
            episode(&mut r, 0, 0.0, 4, true);
            r.start_episode(1, Obs::Vector(&[1.0, 0.0])).unwrap();
            r.add(1, &Transition::primitive(0, 0.0, 0.9, false, false), Obs::Vector(&[1.0, 1.0])).unwrap();
            r.check_pending().unwrap();
            r
        };
        let mut idle = setup();
        idle.pending.push(0, 0, &mut |_| {});
        assert!(idle.check_pending().unwrap_err().to_string().contains("env copy 0 waits on slots [0]"));
        let mut foreign = setup();
        foreign.pending.push(1, 0, &mut |_| {});
        assert!(foreign.check_pending().is_err(), "copy 0's slot, and not the current state");
        let mut stale = setup();
        let current = stale.storage.current(1).unwrap();
        stale.pending.pop_newest(1);
        stale.pending.push(1, current - 1, &mut |_| {});
        assert!(stale.check_pending().is_err(), "the newest waiting state is not the current one");
    }

    #[test]
    fn a_snapshot_grows_with_the_transitions_held() {
        let spec = ObsSpec::Pixels { channels: 4, height: 8, width: 8 };
        let config = ReplayConfig { capacity: 1000, ..ReplayConfig::default() };
        let n_step = NStepConfig { n: 3, gamma: 0.9 };
        let new = || PrioritizedReplay::new(&config, &n_step, &spec, 1).unwrap();
        let snapshot = |r: &PrioritizedReplay| {
            let mut bytes = Vec::new();
            r.save_snapshot(&mut bytes).unwrap();
            bytes
        };
        // One long episode whose stacks shift by one distinct frame a step: 4 slots for
        // the first stack, then one a step.
        let stack = |t: usize| -> Vec<u8> { (0..4).flat_map(|k| [((t + k) % 251) as u8; 64]).collect() };
        let mut r = new();
        let empty = snapshot(&r).len();
        r.start_episode(0, Obs::Pixels(&stack(0))).unwrap();
        let step = |r: &mut PrioritizedReplay, t: usize| {
            let transition = Transition::primitive(t % 3, 1.0, 0.9, false, false);
            r.add(0, &transition, Obs::Pixels(&stack(t))).unwrap();
        };
        for t in 1..=96 {
            step(&mut r, t);
        }
        let tenth = snapshot(&r);
        for t in 97..=2500 {
            step(&mut r, t);
        }
        let full = snapshot(&r).len();
        assert!(empty * 100 < full, "empty {empty} B, full {full} B");
        let per_slot = (full - empty) as f64 / 1000.0;
        let tenth_slots = (tenth.len() - empty) as f64 / per_slot;
        assert!((tenth_slots - 100.0).abs() < 2.0, "a tenth full stores {tenth_slots:.1} slots' worth");
        // A partly filled snapshot loads into a new buffer and saves back byte for byte.
        let mut back = new();
        back.load_snapshot(&mut tenth.as_slice()).unwrap();
        assert_eq!(snapshot(&back), tenth);
        // So does a used, wrapped one: nothing of what it held survives the load.
        r.load_snapshot(&mut tenth.as_slice()).unwrap();
        assert_eq!((snapshot(&r), r.len()), (tenth.clone(), back.len()));
    }
}
