//! Random macros: `count` distinct sequences with lengths uniform in `min_len..=max_len`
//! and steps uniform over a subset of the primitives (MASP section 2: "random sequences
//! over the primitive set", lengths 3 to 8).
//!
//! ```
//! use macro_actions::{random_macros, ActionRef, RandomConfig};
//! let names = ["LEFT", "RIGHT", "NOOP", "BACK"].map(String::from).to_vec();
//! let config = RandomConfig {
//!     count: 10,
//!     primitives: Some(vec![ActionRef::Name("LEFT".into()), ActionRef::Index(1)]),
//!     ..Default::default()
//! };
//! let macros = random_macros(&config, &names, 7)?;
//! assert_eq!(macros.len(), 10);
//! assert!(macros.iter().all(|m| (3..=8).contains(&m.len()) && m.actions().iter().all(|&a| a < 2)));
//! assert_eq!(macros, random_macros(&config, &names, 7)?, "same seed, same macros");
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{alphabet, validate_lengths, SequenceSampler};
use crate::error::Result;
use crate::macro_action::{ActionRef, Macro};

/// The knobs of the random source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomConfig {
    /// How many macros. Default 64, the smallest count of the paper's main sweep
    /// (64 to 1024); the paper gives no single default.
    pub count: usize,
    /// Shortest macro, at least 2. Default 3 (MASP section 2).
    pub min_len: usize,
    /// Longest macro. Default 8 (MASP section 2).
    pub max_len: usize,
    /// The primitives macros are drawn over, by name or index, e.g. to leave out `NOOP`.
    /// Default `None`: all of them.
    pub primitives: Option<Vec<ActionRef>>,
}

impl Default for RandomConfig {
    fn default() -> Self {
        Self { count: 64, min_len: 3, max_len: 8, primitives: None }
    }
}

impl RandomConfig {
    /// Checks every field against the primitive set; the error names the first bad one.
    pub fn validate(&self, primitive_names: &[String]) -> Result<()> {
        validate_lengths("RandomConfig", self.min_len, self.max_len)?;
        self.alphabet(primitive_names).map(|_| ())
    }

    /// The primitive indices to draw from, deduplicated, in the order written.
    fn alphabet(&self, primitive_names: &[String]) -> Result<Vec<usize>> {
        alphabet("RandomConfig", self.primitives.as_deref(), primitive_names)
    }
}

/// `config.count` distinct random macros over `primitive_names`, reproducible from `seed`
/// (ChaCha8). Fails if the config is invalid or asks for more distinct sequences than
/// exist.
pub fn random_macros(config: &RandomConfig, primitive_names: &[String], seed: u64) -> Result<Vec<Macro>> {
    config.validate(primitive_names)?;
    let alphabet = config.alphabet(primitive_names)?;
    let sampler = SequenceSampler { alphabet: &alphabet, min_len: config.min_len, max_len: config.max_len };
    sampler.draw_distinct(config.count, &HashSet::new(), &mut ChaCha8Rng::seed_from_u64(seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn names() -> Vec<String> {
        ["NOOP", "FIRE", "UP", "DOWN"].map(String::from).to_vec()
    }

    #[test]
    fn defaults_are_the_documented_values() {
        let c = RandomConfig::default();
        assert_eq!((c.count, c.min_len, c.max_len, &c.primitives), (64, 3, 8, &None));
        let parsed: RandomConfig = toml::from_str("count = 64").unwrap();
        assert_eq!(parsed, c, "missing fields take the defaults");
    }

    #[test]
    fn macros_are_distinct_in_range_and_seeded() {
        let config = RandomConfig { count: 300, ..Default::default() };
        let a = random_macros(&config, &names(), 1).unwrap();
        assert_eq!(a.len(), 300);
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 300);
        assert!(a.iter().all(|m| (3..=8).contains(&m.len())));
        assert_eq!(a, random_macros(&config, &names(), 1).unwrap());
        assert_ne!(a, random_macros(&config, &names(), 2).unwrap());
        // Every length and every primitive turns up (300 draws over 6 lengths, 4 actions).
        let lengths: HashSet<usize> = a.iter().map(Macro::len).collect();
        assert_eq!(lengths.len(), 6);
        let used: HashSet<usize> = a.iter().flat_map(|m| m.actions().to_vec()).collect();
        assert_eq!(used.len(), 4);
    }

    #[test]
    fn subset_restricts_the_alphabet() {
        let config = RandomConfig {
            count: 20,
            primitives: Some(vec![
                ActionRef::Name("UP".into()),
                ActionRef::Index(3),
                ActionRef::Name("UP".into()),
            ]),
            ..Default::default()
        };
        let m = random_macros(&config, &names(), 0).unwrap();
        assert!(m.iter().all(|m| m.actions().iter().all(|&a| a == 2 || a == 3)));
    }

    #[test]
    fn bad_configs_name_the_field_or_the_name() {
        let field = |c: RandomConfig| match random_macros(&c, &names(), 0).unwrap_err() {
            Error::InvalidConfig { field, .. } => field,
            e => panic!("unexpected {e}"),
        };
        assert_eq!(field(RandomConfig { min_len: 1, ..Default::default() }), "min_len");
        assert_eq!(field(RandomConfig { min_len: 5, max_len: 4, ..Default::default() }), "max_len");
        assert_eq!(field(RandomConfig { primitives: Some(vec![]), ..Default::default() }), "primitives");
        let bad_name =
            RandomConfig { primitives: Some(vec![ActionRef::Name("FIER".into())]), ..Default::default() };
        match random_macros(&bad_name, &names(), 0).unwrap_err() {
            Error::UnknownActionName { context, suggestion, .. } => {
                assert_eq!(context, "RandomConfig.primitives[0]");
                assert_eq!(suggestion.as_deref(), Some("FIRE"));
            }
            e => panic!("unexpected {e}"),
        }
        let too_many = RandomConfig {
            count: 5,
            min_len: 2,
            max_len: 2,
            primitives: Some(vec![ActionRef::Index(0), ActionRef::Index(1)]),
        };
        assert!(matches!(
            random_macros(&too_many, &names(), 0),
            Err(Error::NotEnoughSequences { available: 4, .. })
        ));
        assert!(toml::from_str::<RandomConfig>("cout = 3").is_err(), "unknown fields are rejected");
    }
}
