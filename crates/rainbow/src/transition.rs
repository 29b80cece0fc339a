//! `Transition`: one decision's outcome as the replay takes it, a primitive step or a
//! whole macro-action (a semi-MDP step).
//!
//! ```
//! use rainbow::Transition;
//! // A primitive step with gamma = 0.99 that did not end the episode.
//! let t = Transition::primitive(3, 1.0, 0.99, false, false);
//! assert_eq!((t.discount, t.done()), (0.99, false));
//! // A terminal one has discount 0, whatever gamma is.
//! assert_eq!(Transition::primitive(3, 1.0, 0.99, true, false).discount, 0.0);
//! // A 3-step macro: R = r0 + gamma r1 + gamma^2 r2, discount gamma^3 (as the executor
//! // in `macro-actions` reports them).
//! let m = Transition { action: 21, reward: 1.5, discount: 0.99f32.powi(3), terminated: false, truncated: false };
//! assert!(!m.done());
//! ```

/// The outcome of one action, primitive or macro.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// The action's index in the agent's action set (primitives, then macros).
    pub action: usize,
    /// `R`: the reward, or for a macro of `L` steps `sum_{i<L} gamma^i r_i`.
    pub reward: f32,
    /// `d`: `gamma` for a primitive, `gamma^L` for a macro, in `[0, 1]`. The replay uses 0
    /// when `terminated`, whatever this says.
    pub discount: f32,
    /// The episode ended by the MDP's rules: nothing is bootstrapped past this transition.
    pub terminated: bool,
    /// The episode was cut off from outside (time limit): the next observation is the
    /// state to bootstrap from, with the discounts so far.
    pub truncated: bool,
}

impl Transition {
    /// A primitive step: discount `gamma`, or 0 if it terminated.
    pub fn primitive(action: usize, reward: f32, gamma: f64, terminated: bool, truncated: bool) -> Self {
        let discount = if terminated { 0.0 } else { gamma as f32 };
        Self { action, reward, discount, terminated, truncated }
    }

    /// The episode is over (for either reason): the next call for this env copy is
    /// `start_episode`.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}
