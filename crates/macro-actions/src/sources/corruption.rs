//! Corruption, for robustness studies: replace exactly `round(p * k)` of a pool's `k`
//! macros with random sequences, in place, and report which (MASP section 6: p = 0.25,
//! 0.5, 0.75).
//!
//! The rules are documented on [`corrupt`].
//!
//! ```
//! use macro_actions::{corrupt, random_macros, ActionPool, CorruptionConfig, RandomConfig};
//! let names = ["LEFT", "RIGHT", "NOOP", "BACK"].map(String::from).to_vec();
//! let macros = random_macros(&RandomConfig { count: 8, ..Default::default() }, &names, 0)?;
//! let pool = ActionPool::new(names, macros)?;
//! let c = corrupt(&pool, &CorruptionConfig { fraction: 0.25, ..Default::default() }, 1)?;
//! assert_eq!(c.replaced.len(), 2);
//! for a in 0..pool.len() {
//!     assert_eq!(pool.actions(a) == c.pool.actions(a), !c.replaced.contains(&a));
//! }
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{alphabet, validate_lengths, SequenceSampler};
use crate::error::{Error, Result};
use crate::macro_action::{ActionRef, Macro};
use crate::pool::ActionPool;

/// The knobs of corruption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorruptionConfig {
    /// The fraction p of macros to replace, in `[0, 1]`; `round(p * k)` are replaced,
    /// rounding halves away from zero. Default 0.25, the first of the paper's sweep.
    pub fraction: f64,
    /// Shortest replacement, at least 2. Default 3, as the random source.
    pub min_len: usize,
    /// Longest replacement. Default 8, as the random source.
    pub max_len: usize,
    /// The primitives replacements are drawn over, by name or index. Default `None`: all of
    /// them. A pool drawn over fewer (`RandomConfig::primitives`) is corrupted like itself
    /// by passing its own list, so that a replacement is uninformative, not harmful.
    pub primitives: Option<Vec<ActionRef>>,
}

impl Default for CorruptionConfig {
    fn default() -> Self {
        Self { fraction: 0.25, min_len: 3, max_len: 8, primitives: None }
    }
}

impl CorruptionConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.fraction) {
            return Err(Error::config(
                "CorruptionConfig",
                "fraction",
                self.fraction,
                "use a fraction in [0, 1]",
            ));
        }
        validate_lengths("CorruptionConfig", self.min_len, self.max_len)
    }

    /// `round(p * k)`: how many of `k` macros get replaced.
    pub fn replaced_count(&self, k: usize) -> usize {
        (self.fraction * k as f64).round() as usize
    }
}

/// A corrupted pool and what changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Corruption {
    pub pool: ActionPool,
    /// Pool action indices (not macro positions) of the replaced macros, ascending.
    pub replaced: Vec<usize>,
    /// The macros that were there before, in the order of `replaced`.
    pub originals: Vec<Macro>,
}

/// Replaces `round(config.fraction * k)` of `pool`'s macros with random sequences,
/// reproducibly from `seed`. Primitives are never replaced.
///
/// The replaced macros are a uniform random subset; each replacement is drawn like the
/// random source's (length uniform in `min_len..=max_len`, steps uniform over
/// `config.primitives`, all by default) and differs from every macro of the original pool,
/// so the new pool is valid and every replaced position really changed. Positions are
/// kept, so anything indexed by action still lines up for the untouched macros.
pub fn corrupt(pool: &ActionPool, config: &CorruptionConfig, seed: u64) -> Result<Corruption> {
    config.validate()?;
    let k = pool.num_macros();
    let p = pool.num_primitives();
    let m = config.replaced_count(k);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut positions = rand::seq::index::sample(&mut rng, k, m).into_vec();
    positions.sort_unstable();

    let alphabet = alphabet("CorruptionConfig", config.primitives.as_deref(), pool.primitive_names())?;
    let sampler = SequenceSampler { alphabet: &alphabet, min_len: config.min_len, max_len: config.max_len };
    let in_use: HashSet<Vec<usize>> = pool.macros().iter().map(|m| m.actions().to_vec()).collect();
    let fresh = sampler.draw_distinct(m, &in_use, &mut rng)?;

    let mut macros = pool.macros().to_vec();
    let mut originals = Vec::with_capacity(m);
    for (&i, new) in positions.iter().zip(fresh) {
        originals.push(std::mem::replace(&mut macros[i], new));
    }
    Ok(Corruption {
        pool: pool.with_macros(macros)?,
        replaced: positions.iter().map(|i| p + i).collect(),
        originals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::random::{random_macros, RandomConfig};

    fn pool(k: usize) -> ActionPool {
        let names: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        ActionPool::new(
            names.clone(),
            random_macros(&RandomConfig { count: k, ..Default::default() }, &names, 3).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        let d = CorruptionConfig::default();
        assert_eq!((d.fraction, d.min_len, d.max_len), (0.25, 3, 8), "documented defaults");
        assert_eq!(toml::from_str::<CorruptionConfig>("min_len = 3").unwrap(), d);
        assert!(toml::from_str::<CorruptionConfig>("p = 0.5").is_err());
        let c = |fraction| CorruptionConfig { fraction, ..Default::default() };
        assert_eq!(c(0.5).replaced_count(3), 2);
        assert_eq!(c(0.25).replaced_count(10), 3);
        assert_eq!(c(0.75).replaced_count(10), 8);
        assert_eq!(c(0.0).replaced_count(10), 0);
        assert_eq!(c(1.0).replaced_count(10), 10);
    }

    #[test]
    fn replaced_positions_change_and_the_rest_do_not() {
        let before = pool(40);
        let c = corrupt(&before, &CorruptionConfig { fraction: 0.5, ..Default::default() }, 9).unwrap();
        assert_eq!(c.replaced.len(), 20);
        assert!(c.replaced.windows(2).all(|w| w[0] < w[1]));
        for a in 0..before.len() {
            let changed = before.actions(a) != c.pool.actions(a);
            assert_eq!(changed, c.replaced.contains(&a), "action {a}");
        }
        for (&a, orig) in c.replaced.iter().zip(&c.originals) {
            assert_eq!(before.actions(a), orig.actions());
            assert_eq!(before.index_of(c.pool.actions(a)), None, "replacements are new sequences");
        }
        assert_eq!(
            c,
            corrupt(&before, &CorruptionConfig { fraction: 0.5, ..Default::default() }, 9).unwrap()
        );
    }

    #[test]
    fn invalid_fraction_is_named() {
        for fraction in [-0.1, 1.5, f64::NAN] {
            match corrupt(&pool(4), &CorruptionConfig { fraction, ..Default::default() }, 0).unwrap_err() {
                Error::InvalidConfig { field: "fraction", .. } => {}
                e => panic!("unexpected {e}"),
            }
        }
    }

    /// A pool drawn over some primitives, corrupted over the same ones, keeps to them; over
    /// all (the default) the others turn up.
    #[test]
    fn replacements_keep_to_the_given_primitives() {
        let names: Vec<String> = ["LEFT", "RIGHT", "NOOP", "BACK"].map(String::from).to_vec();
        let own: Vec<ActionRef> = ["LEFT", "RIGHT", "NOOP"].map(|n| ActionRef::Name(n.into())).to_vec();
        let random = RandomConfig { count: 64, primitives: Some(own.clone()), ..Default::default() };
        let pool = ActionPool::new(names.clone(), random_macros(&random, &names, 0).unwrap()).unwrap();
        let uses_back =
            |c: &Corruption| c.replaced.iter().filter(|&&a| c.pool.actions(a).contains(&3)).count();
        let like = CorruptionConfig { fraction: 0.75, primitives: Some(own), ..Default::default() };
        let kept = corrupt(&pool, &like, 1).unwrap();
        assert_eq!((kept.replaced.len(), uses_back(&kept)), (48, 0));
        let all = corrupt(&pool, &CorruptionConfig { fraction: 0.75, ..Default::default() }, 1).unwrap();
        assert!(uses_back(&all) > 24, "{} of 48 with BACK", uses_back(&all));
        let unknown = CorruptionConfig { primitives: Some(vec![ActionRef::Name("JUMP".into())]), ..like };
        assert!(corrupt(&pool, &unknown, 1).is_err());
    }

    #[test]
    fn a_pool_without_macros_is_left_alone() {
        let c = corrupt(&pool(0), &CorruptionConfig { fraction: 1.0, ..Default::default() }, 0).unwrap();
        assert_eq!((c.pool, c.replaced), (pool(0), vec![]));
    }
}
