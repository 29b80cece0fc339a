//! n-step returns over transitions that each carry their own discount, so macro-actions
//! (semi-MDP transitions, MASP design section 2) and episode ends need no special case.
//!
//! For transition `t` with reward `R_t` and discount `d_t` (`r` and `gamma` for a primitive
//! action; `sum_{i<L} gamma^i r_i` and `gamma^L` for a macro that ran `L` steps; `d = 0`
//! for a terminal transition):
//!
//! ```text
//! G_t = R_t + d_t R_{t+1} + d_t d_{t+1} R_{t+2} + ...   over k <= n transitions
//! D_t = d_t d_{t+1} ... d_{t+k-1}                       the bootstrap discount
//! target = G_t + D_t * V(s_{t+k})
//! ```
//!
//! The sum stops after `n` transitions or at the episode's last transition, whichever
//! comes first. A terminal transition makes `D = 0`; a truncated one (time limit) keeps
//! `D > 0`, and `s_{t+k}` is then the state the episode was cut off in.
//!
//! # Where the returns are computed, and why
//! At sampling time, from the per-transition `(R, d)` the replay stores (Dopamine's
//! choice), not by an accumulator that emits finished n-step transitions:
//! * frames are stored once, and the bootstrap state `s_{t+k}` is just the stack of a later
//!   slot of the same env copy, so there is nothing to copy; an accumulator that emits
//!   `(s_t, a_t, G, D, s_{t+k})` would have to store `s_{t+k}` a second time or re-derive
//!   the link the storage already has;
//! * each stored transition keeps its raw `(R, d)`, so `n` is a sampling-time choice
//!   (e.g. for a study of `n`) and checkpoints do not bake it in;
//! * the work is at most `n` multiply-adds per sampled transition.
//!
//! What an accumulator would do (hold a transition back until its return is complete) is
//! still needed: a transition may be sampled only once `n` transitions follow it or its
//! episode has ended. The replay keeps, per env copy, the slots of the last `n` states
//! still waiting (`Pending`, indices only), and releases them in order as later states
//! arrive or the episode ends; env copies are independent, so a vector env feeds one
//! queue per copy.
//!
//! ```
//! use rainbow::n_step_return;
//! // A primitive step (r = 1, gamma = 0.9), a 2-step macro (R = 0 + 0.9 * 2, gamma^2),
//! // then a terminal step: with n = 3 the return stops at the terminal, and D = 0.
//! let steps = [(1.0, 0.9), (1.8, 0.81), (5.0, 0.0)];
//! let g = n_step_return(steps, 3);
//! assert!((g.ret - (1.0 + 0.9 * 1.8 + 0.9 * 0.81 * 5.0)).abs() < 1e-6);
//! assert_eq!((g.discount, g.transitions), (0.0, 3));
//! ```

use crate::replay::snapshot::{corrupt, Reader, Writer};

/// The n-step return of one transition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NStepReturn {
    /// `G = sum_k (prod_{j<k} d_j) R_k`.
    pub ret: f64,
    /// `D = prod_k d_k`, the discount of the bootstrap value (0 past a terminal).
    pub discount: f64,
    /// `k`, the transitions summed: `n`, or fewer when the episode ended first.
    pub transitions: usize,
}

/// The n-step return of the transitions `(R, d)` that follow a state, in order: the first
/// `n` of them, or all of them if fewer (the caller ends the sequence at the episode's
/// end). Sums in `f64`.
pub fn n_step_return(transitions: impl IntoIterator<Item = (f32, f32)>, n: usize) -> NStepReturn {
    let mut out = NStepReturn { ret: 0.0, discount: 1.0, transitions: 0 };
    for (reward, discount) in transitions.into_iter().take(n) {
        out.ret += out.discount * reward as f64;
        out.discount *= discount as f64;
        out.transitions += 1;
    }
    out
}

/// Per env copy, the slots of the states whose n-step return is not complete yet, oldest
/// first: at most `n` of them, in a fixed ring (no allocation after construction).
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    n: usize,
    /// `num_envs * n` slots; copy `e` owns `slots[e * n..(e + 1) * n]`.
    slots: Vec<usize>,
    head: Vec<usize>,
    len: Vec<usize>,
}

impl Pending {
    pub(crate) fn new(num_envs: usize, n: usize) -> Self {
        assert!(n >= 1);
        Self { n, slots: vec![0; num_envs * n], head: vec![0; num_envs], len: vec![0; num_envs] }
    }

    /// A new non-final state `slot` of copy `env`: the state `n` states back now has `n`
    /// transitions after it, so it is released to `ready`; then `slot` waits.
    pub(crate) fn push(&mut self, env: usize, slot: usize, ready: &mut impl FnMut(usize)) {
        let base = env * self.n;
        if self.len[env] == self.n {
            ready(self.slots[base + self.head[env]]);
            self.head[env] = (self.head[env] + 1) % self.n;
            self.len[env] -= 1;
        }
        let tail = (self.head[env] + self.len[env]) % self.n;
        self.slots[base + tail] = slot;
        self.len[env] += 1;
    }

    /// Copy `env`'s episode ended: every waiting state's return is complete (it stops at
    /// the end), so all are released, oldest first.
    pub(crate) fn end_episode(&mut self, env: usize, ready: &mut impl FnMut(usize)) {
        let base = env * self.n;
        for k in 0..self.len[env] {
            ready(self.slots[base + (self.head[env] + k) % self.n]);
        }
        self.head[env] = 0;
        self.len[env] = 0;
    }

    /// Withdraws copy `env`'s newest waiting state, if any: a state whose transition will
    /// never be taken (its episode was cut there).
    pub(crate) fn pop_newest(&mut self, env: usize) -> Option<usize> {
        if self.len[env] == 0 {
            return None;
        }
        self.len[env] -= 1;
        Some(self.slots[env * self.n + (self.head[env] + self.len[env]) % self.n])
    }

    pub(crate) fn len(&self, env: usize) -> usize {
        self.len[env]
    }

    pub(crate) fn bytes(&self) -> usize {
        (self.slots.len() + self.head.len() + self.len.len()) * std::mem::size_of::<usize>()
    }

    /// The waiting slots of every copy, for checkpoints.
    pub(crate) fn write_snapshot(&self, w: &mut Writer<'_>) -> std::io::Result<()> {
        w.u64(self.n as u64)?;
        w.usizes(&self.slots)?;
        w.usizes(&self.head)?;
        w.usizes(&self.len)
    }

    /// Reads a [`Pending::write_snapshot`]. A queue whose head or length is past `n` is
    /// refused here; whether its slots fit the buffer is the caller's check
    /// ([`Pending::waiting`]).
    pub(crate) fn read_snapshot(&mut self, r: &mut Reader<'_>) -> crate::error::Result<()> {
        r.expect("n", self.n as u64)?;
        r.usizes("pending slots", &mut self.slots)?;
        r.usizes("pending heads", &mut self.head)?;
        r.usizes("pending lengths", &mut self.len)?;
        for (env, (&head, &len)) in self.head.iter().zip(&self.len).enumerate() {
            if head >= self.n || len > self.n {
                return Err(corrupt(format!("env copy {env}'s queue at {head} with {len} of {}", self.n)));
            }
        }
        Ok(())
    }

    /// Copy `env`'s waiting slots, oldest first.
    pub(crate) fn waiting(&self, env: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.len[env]).map(move |k| self.slots[env * self.n + (self.head[env] + k) % self.n])
    }

    /// What `bytes` returns for `Pending::new(num_envs, n)`.
    pub(crate) fn bytes_for(num_envs: usize, n: usize) -> usize {
        num_envs * (n + 2) * std::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn stops_after_n_and_multiplies_each_discount() {
        let steps = [(1.0, 0.5), (2.0, 0.25), (4.0, 0.5), (100.0, 0.5)];
        // Reference: 1 + 0.5 * 2 + 0.5 * 0.25 * 4 = 2.5, D = 0.0625; the 4th is past n.
        assert_eq!(n_step_return(steps, 3), NStepReturn { ret: 2.5, discount: 0.0625, transitions: 3 });
        assert_eq!(n_step_return(steps, 1), NStepReturn { ret: 1.0, discount: 0.5, transitions: 1 });
        // An episode that ends (truncated) after two transitions: D stays non-zero.
        assert_eq!(n_step_return(steps[..2].iter().copied(), 3).discount, 0.125);
        assert_eq!(n_step_return([], 3), NStepReturn { ret: 0.0, discount: 1.0, transitions: 0 });
    }

    #[test]
    fn pending_releases_in_order_per_env() {
        let mut p = Pending::new(2, 3);
        let mut out = Vec::new();
        for s in 0..5 {
            p.push(0, s, &mut |r| out.push(r));
            p.push(1, 100 + s, &mut |r| out.push(r));
        }
        // States 0 and 1 of each copy have 3 successors after 5 pushes.
        assert_eq!(out, [0, 100, 1, 101]);
        out.clear();
        p.end_episode(1, &mut |r| out.push(r));
        assert_eq!((out.as_slice(), p.len(0), p.len(1)), ([102, 103, 104].as_slice(), 3, 0));
    }

    /// A queue restored from a snapshot is the one saved, and one whose head or length
    /// is past `n` is refused.
    #[test]
    fn snapshot_round_trips_and_refuses_queues_out_of_range() {
        let mut p = Pending::new(2, 3);
        for s in 0..4 {
            p.push(0, s, &mut |_| {});
        }
        p.push(1, 7, &mut |_| {});
        let read = |p: &Pending| {
            let mut bytes = Vec::new();
            p.write_snapshot(&mut Writer::new(&mut bytes)).unwrap();
            let mut back = Pending::new(2, 3);
            back.read_snapshot(&mut Reader::new(&mut bytes.as_slice())).map(|()| back)
        };
        let back = read(&p).unwrap();
        assert_eq!((back.slots, back.head, back.len), (p.slots.clone(), p.head.clone(), p.len.clone()));
        assert_eq!(p.waiting(0).collect::<Vec<_>>(), [1, 2, 3]);
        let mut bad = p.clone();
        bad.head[1] = 3;
        assert!(read(&bad).unwrap_err().to_string().contains("env copy 1's queue at 3"));
        let mut bad = p.clone();
        bad.len[0] = 4;
        assert!(read(&bad).is_err());
    }

    proptest! {
        #[test]
        fn matches_the_recursive_definition(
            steps in prop::collection::vec((-10.0f32..10.0, 0.0f32..=1.0), 0..12),
            n in 1usize..8,
        ) {
            // Reference: G_t = R_t + d_t * G_{t+1}, unrolled from the far end.
            let k = steps.len().min(n);
            let (mut g, mut d) = (0.0f64, 1.0f64);
            for &(r, disc) in steps[..k].iter().rev() {
                g = r as f64 + disc as f64 * g;
                d *= disc as f64;
            }
            let out = n_step_return(steps.iter().copied(), n);
            prop_assert_eq!(out.transitions, k);
            prop_assert!((out.ret - g).abs() <= 1e-9 * (1.0 + g.abs()));
            prop_assert!((out.discount - d).abs() <= 1e-12);
        }
    }
}
