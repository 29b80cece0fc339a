//! Transition storage with every frame stored once: observation stacks `(C, H, W)` are
//! rebuilt from a ring of single frames at sampling time.
//!
//! # Layout
//! The ring has `capacity` slots, split into one contiguous stream of `per_env =
//! capacity / num_envs` slots per env copy (so a stack's frames and an n-step lookahead
//! are consecutive slots of one stream, whatever order the copies are added in; SB3's
//! vector-env replay likewise gives each copy its own column). A slot holds one frame (`H * W` `u8`s for pixels;
//! the whole `f32` vector for vector observations, where `C = 1`) and a kind:
//!
//! * `State`: an observation the agent acted in; its stack is the `C` slots ending here,
//!   and the slot holds the action, reward `R` and discount `d` of the transition that
//!   left it;
//! * `Final`: an episode's last observation (terminal, or the truncated state to bootstrap
//!   from); no action;
//! * `Frame`: a frame that is no state's newest: the older frames of an episode's first
//!   stack, and the frames a macro-action passed through.
//!
//! A new observation writes only the frames that are not already the newest slots: the
//! smallest `k` in `1..=C` such that its oldest `C - k` frames equal the previous state's
//! newest `C - k`. One primitive step writes 1 slot; a macro of `L` steps writes
//! `min(L, C)`. Because a frame is reused only when its bytes are equal, a rebuilt stack is
//! always byte-identical to the observation that was added, whatever the env does.
//!
//! # Episode boundaries
//! An episode's first observation is written whole (`C` slots), so a stack never reaches
//! into the previous episode: every stack is the observation the env returned. With
//! `ale-env`, whose reset fills the stack with the first frame, the first states of an
//! episode repeat that frame (the convention of baselines' `FrameStack`; Dopamine pads
//! with zeros instead). Each episode costs `C - 1` extra slots for that, plus its `Final`.
//!
//! # Wrap-around
//! Writing slot `w` of a stream overwrites its oldest slot, which breaks the stacks of the
//! states at `w..w + C` (their oldest frame was `w`): the caller is told, and stops sampling
//! them. A lookahead only moves towards newer slots, so it is never broken first.
//!
//! # Memory
//! Per slot: one frame (`H * W` bytes, or `4 * len` for vectors) plus 13 bytes (kind,
//! `u32` action, `f32` reward and discount). For Atari (84x84) that is 7069 bytes a slot:
//! 1M slots take 7.07e9 bytes (6.58 GiB). Nothing is allocated after construction.
//!
//! ```text
//! stream:  [F F F S] [S] [S] [F S] [S] [Fi] [F F F S] ...
//!           ^ first stack     ^ a 2-step macro     ^ next episode
//! ```

use rl_env::{Obs, ObsSpec};

use crate::nstep::{n_step_return, NStepReturn};
use crate::replay::snapshot::{Reader, Writer};

/// What a slot holds (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Slot {
    Empty,
    Frame,
    State,
    Final,
}

#[derive(Debug)]
pub(crate) enum FrameBuf {
    Pixels(Vec<u8>),
    Vector(Vec<f32>),
}

/// A frame element type; lets one generic routine serve both buffers.
pub(crate) trait Element: Copy + PartialEq {
    fn of(buf: &FrameBuf) -> &[Self];
    fn of_mut(buf: &mut FrameBuf) -> &mut [Self];
}

impl Element for u8 {
    fn of(buf: &FrameBuf) -> &[u8] {
        match buf {
            FrameBuf::Pixels(p) => p,
            FrameBuf::Vector(_) => unreachable!("the caller checked the observation kind"),
        }
    }
    fn of_mut(buf: &mut FrameBuf) -> &mut [u8] {
        match buf {
            FrameBuf::Pixels(p) => p,
            FrameBuf::Vector(_) => unreachable!("the caller checked the observation kind"),
        }
    }
}

impl Element for f32 {
    fn of(buf: &FrameBuf) -> &[f32] {
        match buf {
            FrameBuf::Vector(v) => v,
            FrameBuf::Pixels(_) => unreachable!("the caller checked the observation kind"),
        }
    }
    fn of_mut(buf: &mut FrameBuf) -> &mut [f32] {
        match buf {
            FrameBuf::Vector(v) => v,
            FrameBuf::Pixels(_) => unreachable!("the caller checked the observation kind"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Stream {
    /// Local index of the next slot to write.
    cursor: usize,
    /// Global slot of the state awaiting its action; `None` between episodes.
    current: Option<usize>,
}

/// Bytes of per-slot metadata: kind, action, reward, discount.
pub(crate) const META_BYTES: usize = 1 + 4 + 4 + 4;

#[derive(Debug)]
pub(crate) struct Storage {
    /// `C`: frames per observation.
    stack: usize,
    /// Elements per frame.
    frame_len: usize,
    num_envs: usize,
    per_env: usize,
    /// Slot `s` (global: `env * per_env + local`) is `frames[s * frame_len..][..frame_len]`.
    frames: FrameBuf,
    kinds: Vec<Slot>,
    actions: Vec<u32>,
    rewards: Vec<f32>,
    discounts: Vec<f32>,
    streams: Vec<Stream>,
}

impl Storage {
    /// `(stack, frame_len)` for an observation spec: pixel stacks are `C` frames of
    /// `H * W`; a vector is one frame.
    pub(crate) fn geometry(spec: &ObsSpec) -> (usize, usize) {
        match *spec {
            ObsSpec::Pixels { channels, height, width } => (channels, height * width),
            ObsSpec::Vector { len } => (1, len),
        }
    }

    /// Heap bytes of a storage for observations of `spec`, without building it.
    pub(crate) fn bytes_for(spec: &ObsSpec, num_envs: usize, per_env: usize) -> usize {
        let (_, frame_len) = Self::geometry(spec);
        let elem = match spec {
            ObsSpec::Pixels { .. } => 1,
            ObsSpec::Vector { .. } => 4,
        };
        num_envs * per_env * (frame_len * elem + META_BYTES) + num_envs * std::mem::size_of::<Stream>()
    }

    pub(crate) fn new(spec: &ObsSpec, num_envs: usize, per_env: usize) -> Self {
        let (stack, frame_len) = Self::geometry(spec);
        let slots = num_envs * per_env;
        // Zeroed allocations come from the OS untouched, so a large ring costs memory only
        // as it fills.
        let frames = match spec {
            ObsSpec::Pixels { .. } => FrameBuf::Pixels(vec![0; slots * frame_len]),
            ObsSpec::Vector { .. } => FrameBuf::Vector(vec![0.0; slots * frame_len]),
        };
        Self {
            stack,
            frame_len,
            num_envs,
            per_env,
            frames,
            kinds: vec![Slot::Empty; slots],
            actions: vec![0; slots],
            rewards: vec![0.0; slots],
            discounts: vec![0.0; slots],
            streams: vec![Stream::default(); num_envs],
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.num_envs * self.per_env
    }

    /// The slots of copy `env`'s stream.
    pub(crate) fn slots_of(&self, env: usize) -> std::ops::Range<usize> {
        env * self.per_env..(env + 1) * self.per_env
    }

    pub(crate) fn kind(&self, slot: usize) -> Slot {
        self.kinds[slot]
    }

    pub(crate) fn action(&self, slot: usize) -> u32 {
        self.actions[slot]
    }

    /// The state of copy `env` that awaits its action, if an episode is in progress.
    pub(crate) fn current(&self, env: usize) -> Option<usize> {
        self.streams[env].current
    }

    pub(crate) fn bytes(&self) -> usize {
        let frames = match &self.frames {
            FrameBuf::Pixels(p) => p.len(),
            FrameBuf::Vector(v) => 4 * v.len(),
        };
        frames + self.capacity() * META_BYTES + self.streams.len() * std::mem::size_of::<Stream>()
    }

    /// The global slots of each stream written so far: a stream fills from its first slot
    /// on and, once it has wrapped, stays full (nothing empties a slot).
    pub(crate) fn filled(&self) -> Vec<std::ops::Range<usize>> {
        (0..self.num_envs)
            .map(|env| {
                let base = env * self.per_env;
                let wrapped = self.per_env > 0 && self.kinds[base + self.per_env - 1] != Slot::Empty;
                base..base + if wrapped { self.per_env } else { self.streams[env].cursor }
            })
            .collect()
    }

    /// Stream positions, then the frames and metadata of the filled slots alone, for
    /// checkpoints: a snapshot's size grows with what the ring holds.
    pub(crate) fn write_snapshot(&self, w: &mut Writer<'_>) -> std::io::Result<()> {
        for x in [self.stack, self.frame_len, self.num_envs, self.per_env] {
            w.u64(x as u64)?;
        }
        let filled = self.filled();
        for (stream, range) in self.streams.iter().zip(&filled) {
            w.u64(stream.cursor as u64)?;
            w.u64(stream.current.map_or(u64::MAX, |c| c as u64))?;
            w.u64(range.len() as u64)?;
        }
        for range in filled {
            let frames = range.start * self.frame_len..range.end * self.frame_len;
            match &self.frames {
                FrameBuf::Pixels(p) => w.bytes(&p[frames])?,
                FrameBuf::Vector(v) => w.f32s(&v[frames])?,
            }
            let kinds: Vec<u8> = self.kinds[range.clone()].iter().map(|&k| k as u8).collect();
            w.bytes(&kinds)?;
            w.u32s(&self.actions[range.clone()])?;
            w.f32s(&self.rewards[range.clone()])?;
            w.f32s(&self.discounts[range])?;
        }
        Ok(())
    }

    /// Reads a [`Storage::write_snapshot`] into this storage, which must be new (its slots
    /// past the filled ones are left as they are: empty).
    pub(crate) fn read_snapshot(&mut self, r: &mut Reader<'_>) -> crate::error::Result<()> {
        for (what, x) in [
            ("stack", self.stack),
            ("frame length", self.frame_len),
            ("env copies", self.num_envs),
            ("slots per copy", self.per_env),
        ] {
            r.expect(what, x as u64)?;
        }
        // Slots past the filled ones must read as empty whatever this storage held before.
        self.kinds.fill(Slot::Empty);
        let mut filled = Vec::with_capacity(self.num_envs);
        for (env, stream) in self.streams.iter_mut().enumerate() {
            stream.cursor = r.u64()? as usize;
            let current = r.u64()?;
            stream.current = (current != u64::MAX).then_some(current as usize);
            let len = r.u64()? as usize;
            if len > self.per_env || stream.cursor >= self.per_env.max(1) {
                return Err(crate::error::Error::ShapeMismatch {
                    what: "replay snapshot".into(),
                    expected: format!("at most {} slots per copy", self.per_env),
                    found: format!("{len} filled, cursor {}", stream.cursor),
                });
            }
            let base = env * self.per_env;
            filled.push(base..base + len);
        }
        for range in filled {
            let frames = range.start * self.frame_len..range.end * self.frame_len;
            match &mut self.frames {
                FrameBuf::Pixels(p) => r.bytes("frames", &mut p[frames])?,
                FrameBuf::Vector(v) => r.f32s("frames", &mut v[frames])?,
            }
            let mut kinds = vec![0u8; range.len()];
            r.bytes("slot kinds", &mut kinds)?;
            for (dst, k) in self.kinds[range.clone()].iter_mut().zip(kinds) {
                *dst = match k {
                    0 => Slot::Empty,
                    1 => Slot::Frame,
                    2 => Slot::State,
                    3 => Slot::Final,
                    other => {
                        return Err(crate::error::Error::ShapeMismatch {
                            what: "replay snapshot".into(),
                            expected: "slot kinds 0..=3".into(),
                            found: other.to_string(),
                        })
                    }
                };
            }
            r.u32s("actions", &mut self.actions[range.clone()])?;
            r.f32s("rewards", &mut self.rewards[range.clone()])?;
            r.f32s("discounts", &mut self.discounts[range])?;
        }
        for (env, stream) in self.streams.iter().enumerate() {
            if let Some(current) = stream.current.filter(|&c| self.kinds.get(c) != Some(&Slot::State)) {
                return Err(crate::error::Error::ShapeMismatch {
                    what: "replay snapshot".into(),
                    expected: format!("copy {env}'s waiting state at a stored state slot"),
                    found: format!("slot {current}"),
                });
            }
        }
        Ok(())
    }

    /// Writes the first observation of copy `env`'s episode, whole; returns its state slot.
    /// `evicted(slot)` is called for every slot whose stack the writes break.
    pub(crate) fn begin(&mut self, env: usize, obs: Obs<'_>, evicted: &mut impl FnMut(usize)) -> usize {
        debug_assert!(self.streams[env].current.is_none());
        let slot = match obs {
            Obs::Pixels(o) => self.push(env, o, None, Slot::State, evicted),
            Obs::Vector(o) => self.push(env, o, None, Slot::State, evicted),
        };
        self.streams[env].current = Some(slot);
        slot
    }

    /// Records the transition that leaves copy `env`'s current state and writes the
    /// observation it led to: the next state, or the episode's `Final` when `last`. Returns
    /// the new slot.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        env: usize,
        action: u32,
        reward: f32,
        discount: f32,
        next_obs: Obs<'_>,
        last: bool,
        evicted: &mut impl FnMut(usize),
    ) -> usize {
        let current = self.streams[env].current.expect("the caller checked that an episode is in progress");
        self.actions[current] = action;
        self.rewards[current] = reward;
        self.discounts[current] = discount;
        let kind = if last { Slot::Final } else { Slot::State };
        let slot = match next_obs {
            Obs::Pixels(o) => self.push(env, o, Some(current), kind, evicted),
            Obs::Vector(o) => self.push(env, o, Some(current), kind, evicted),
        };
        self.streams[env].current = (!last).then_some(slot);
        slot
    }

    /// Ends copy `env`'s episode at its current state, which becomes the episode's `Final`
    /// (the transition into it keeps its discount: a truncation, bootstrapped from it);
    /// returns that slot, or `None` between episodes.
    pub(crate) fn truncate(&mut self, env: usize) -> Option<usize> {
        let current = self.streams[env].current.take()?;
        self.kinds[current] = Slot::Final;
        Some(current)
    }

    /// Writes the frames of `obs` that `prev`'s stack does not already end with; the
    /// newest becomes a slot of `kind`.
    fn push<T: Element>(
        &mut self,
        env: usize,
        obs: &[T],
        prev: Option<usize>,
        kind: Slot,
        evicted: &mut impl FnMut(usize),
    ) -> usize {
        let (c, f) = (self.stack, self.frame_len);
        debug_assert_eq!(obs.len(), c * f);
        let new = prev.map_or(c, |p| self.new_frames(p, obs));
        let base = env * self.per_env;
        let mut slot = base;
        for j in c - new..c {
            let local = self.streams[env].cursor;
            // Overwriting `local` breaks the stacks ending at local..local + C.
            for d in 0..c {
                evicted(base + (local + d) % self.per_env);
            }
            slot = base + local;
            T::of_mut(&mut self.frames)[slot * f..(slot + 1) * f].copy_from_slice(&obs[j * f..(j + 1) * f]);
            self.kinds[slot] = if j + 1 == c { kind } else { Slot::Frame };
            self.actions[slot] = 0;
            self.rewards[slot] = 0.0;
            self.discounts[slot] = 0.0;
            self.streams[env].cursor = (local + 1) % self.per_env;
        }
        slot
    }

    /// The smallest `k` in `1..=C` such that `obs`'s oldest `C - k` frames equal the
    /// newest `C - k` frames of `prev`'s stack: the frames `obs` adds.
    fn new_frames<T: Element>(&self, prev: usize, obs: &[T]) -> usize {
        let (c, f) = (self.stack, self.frame_len);
        let frames = T::of(&self.frames);
        let stored = |i: usize| {
            let s = self.stack_slot(prev, i);
            &frames[s * f..(s + 1) * f]
        };
        (1..c).find(|&k| (0..c - k).all(|j| obs[j * f..(j + 1) * f] == *stored(j + k))).unwrap_or(c)
    }

    /// Global slot of frame `i` (0 = oldest) of the stack that ends at `slot`.
    fn stack_slot(&self, slot: usize, i: usize) -> usize {
        let base = slot - slot % self.per_env;
        let local = slot - base;
        base + (local + self.per_env * self.stack - (self.stack - 1) + i) % self.per_env
    }

    /// The next `State` or `Final` slot after `slot` in its stream.
    fn next_state(&self, slot: usize) -> usize {
        let base = slot - slot % self.per_env;
        let mut local = slot - base;
        loop {
            local = (local + 1) % self.per_env;
            if self.kinds[base + local] != Slot::Frame {
                return base + local;
            }
        }
    }

    /// Copies the stack that ends at `slot` into `out` (`C * frame_len` elements, oldest
    /// frame first).
    pub(crate) fn copy_stack<T: Element>(&self, slot: usize, out: &mut [T]) {
        let f = self.frame_len;
        let frames = T::of(&self.frames);
        for (i, dst) in out.chunks_exact_mut(f).enumerate() {
            let s = self.stack_slot(slot, i);
            dst.copy_from_slice(&frames[s * f..(s + 1) * f]);
        }
    }

    /// The n-step return of the state at `slot`, over its stream's following transitions up
    /// to `n` or the episode's end, and the slot of the state to bootstrap from.
    ///
    /// The caller must only ask for states whose lookahead is complete.
    pub(crate) fn n_step(&self, slot: usize, n: usize) -> (NStepReturn, usize) {
        let mut cur = slot;
        let mut bootstrap = slot;
        let transitions = std::iter::from_fn(|| {
            if self.kinds[cur] != Slot::State {
                return None; // `Final`: the episode ended.
            }
            let step = (self.rewards[cur], self.discounts[cur]);
            bootstrap = self.next_state(cur);
            cur = bootstrap;
            Some(step)
        });
        let ret = n_step_return(transitions, n);
        (ret, bootstrap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIXELS: ObsSpec = ObsSpec::Pixels { channels: 3, height: 1, width: 2 };

    /// A 3-frame stack of 1x2 frames whose bytes are the given frame ids.
    fn stack(ids: [u8; 3]) -> Vec<u8> {
        ids.iter().flat_map(|&i| [i, i]).collect()
    }

    fn read(s: &Storage, slot: usize) -> Vec<u8> {
        let mut out = vec![0; 6];
        s.copy_stack(slot, &mut out);
        out
    }

    #[test]
    fn primitive_steps_write_one_frame_and_macros_up_to_c() {
        let mut s = Storage::new(&PIXELS, 1, 32);
        let none = &mut |_| {};
        let first = s.begin(0, Obs::Pixels(&stack([1, 1, 1])), none);
        assert_eq!(first, 2, "the first stack takes C slots");
        let a = s.append(0, 7, 1.0, 0.9, Obs::Pixels(&stack([1, 1, 2])), false, none);
        assert_eq!(a, 3, "a primitive step adds one frame");
        let b = s.append(0, 8, 0.5, 0.81, Obs::Pixels(&stack([2, 3, 4])), false, none);
        assert_eq!(b, 5, "a 2-step macro adds two");
        let c = s.append(0, 9, 0.0, 0.0, Obs::Pixels(&stack([5, 6, 7])), true, none);
        assert_eq!(c, 8, "a macro of >= C steps adds C");
        assert_eq!([first, a, b, c].map(|x| s.kind(x)), [Slot::State, Slot::State, Slot::State, Slot::Final]);
        assert_eq!(read(&s, a), stack([1, 1, 2]));
        assert_eq!(read(&s, b), stack([2, 3, 4]));
        assert_eq!(read(&s, c), stack([5, 6, 7]));
        let (ret, boot) = s.n_step(first, 10);
        assert_eq!((ret.transitions, boot), (3, c));
        assert!((ret.ret - (1.0 + 0.9 * 0.5)).abs() < 1e-6 && ret.discount == 0.0);
        assert_eq!(s.current(0), None);
    }

    #[test]
    fn a_new_episode_never_reuses_the_previous_episodes_frames() {
        let mut s = Storage::new(&PIXELS, 1, 32);
        let none = &mut |_| {};
        s.begin(0, Obs::Pixels(&stack([1, 1, 1])), none);
        s.append(0, 0, 0.0, 0.9, Obs::Pixels(&stack([1, 1, 2])), true, none);
        // The next episode starts with frame 2 repeated, which equals the bytes the old
        // episode ends with: it must still be written whole, as its own first stack.
        let start = s.begin(0, Obs::Pixels(&stack([2, 2, 2])), none);
        assert_eq!((start, read(&s, start)), (6, stack([2, 2, 2])));
    }

    #[test]
    fn overwriting_a_slot_evicts_the_stacks_that_end_within_c() {
        let mut s = Storage::new(&PIXELS, 2, 8);
        let mut evicted = Vec::new();
        s.begin(1, Obs::Pixels(&stack([1, 1, 1])), &mut |x| evicted.push(x));
        assert_eq!(evicted, [8, 9, 10, 9, 10, 11, 10, 11, 12], "copy 1 owns slots 8..16");
        for ids in [[1, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 6]] {
            s.append(1, 0, 0.0, 0.9, Obs::Pixels(&stack(ids)), false, &mut |_| {});
        }
        evicted.clear();
        let slot = s.append(1, 0, 0.0, 0.9, Obs::Pixels(&stack([5, 6, 7])), false, &mut |x| evicted.push(x));
        assert_eq!(slot, 8, "the ring wrapped");
        assert_eq!(evicted, [8, 9, 10]);
        assert_eq!(read(&s, slot), stack([5, 6, 7]));
    }
}
