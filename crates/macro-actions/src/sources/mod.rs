//! Where macros come from: random sequences, frequent n-grams of recorded play, an explicit
//! list, and corruption of an existing pool. Each source is seeded (or deterministic) so a
//! pool can be rebuilt from its config alone.
//!
//! The random and corruption sources share the sampler below, so that "a random macro"
//! means the same thing in both.

pub(crate) mod corruption;
pub(crate) mod explicit;
pub(crate) mod ngram;
pub(crate) mod random;

use std::collections::HashSet;

use rand::Rng;

use crate::error::{Error, Result};
use crate::macro_action::{ActionRef, Macro};

/// The primitive indices `refs` name (all of `primitive_names` for `None`), deduplicated, in
/// the order written; `what` names the config in errors.
pub(crate) fn alphabet(
    what: &'static str,
    refs: Option<&[ActionRef]>,
    primitive_names: &[String],
) -> Result<Vec<usize>> {
    let Some(refs) = refs else { return Ok((0..primitive_names.len()).collect()) };
    if refs.is_empty() {
        return Err(Error::config(
            what,
            "primitives",
            refs,
            "list at least one action, or leave it out for all",
        ));
    }
    let mut alphabet = Vec::with_capacity(refs.len());
    for (i, r) in refs.iter().enumerate() {
        let a = r.resolve(primitive_names, &format!("{what}.primitives[{i}]"))?;
        if !alphabet.contains(&a) {
            alphabet.push(a);
        }
    }
    Ok(alphabet)
}

/// Draws distinct sequences: a length uniform in `min_len..=max_len`, then each step
/// uniform over `alphabet`.
pub(crate) struct SequenceSampler<'a> {
    pub alphabet: &'a [usize],
    pub min_len: usize,
    pub max_len: usize,
}

impl SequenceSampler<'_> {
    /// How many distinct sequences the lengths and alphabet allow (saturating).
    pub fn space(&self) -> u128 {
        let n = self.alphabet.len() as u128;
        (self.min_len..=self.max_len)
            .map(|len| n.checked_pow(len as u32).unwrap_or(u128::MAX))
            .fold(0u128, u128::saturating_add)
    }

    /// `count` sequences, distinct from each other and from everything in `exclude`, by
    /// rejection. Fails up front when too few exist, so it never loops forever.
    pub fn draw_distinct(
        &self,
        count: usize,
        exclude: &HashSet<Vec<usize>>,
        rng: &mut impl Rng,
    ) -> Result<Vec<Macro>> {
        let excluded = exclude
            .iter()
            .filter(|s| {
                (self.min_len..=self.max_len).contains(&s.len())
                    && s.iter().all(|a| self.alphabet.contains(a))
            })
            .count();
        let available = self.space().saturating_sub(excluded as u128);
        if (count as u128) > available {
            return Err(Error::NotEnoughSequences {
                requested: count,
                available,
                excluded,
                min_len: self.min_len,
                max_len: self.max_len,
                alphabet: self.alphabet.len(),
            });
        }
        let mut seen = HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let len = rng.random_range(self.min_len..=self.max_len);
            let seq: Vec<usize> =
                (0..len).map(|_| self.alphabet[rng.random_range(0..self.alphabet.len())]).collect();
            if !exclude.contains(&seq) && seen.insert(seq.clone()) {
                out.push(Macro::new(seq));
            }
        }
        Ok(out)
    }
}

/// The longest macro a random source draws. The paper's macros are 3 to 8 steps; the cap
/// keeps a mistyped length (say `1e9`) an error instead of a hang or an allocation abort.
pub const MAX_MACRO_LEN: usize = 64;

/// Checks a length range shared by the random-sequence configs.
pub(crate) fn validate_lengths(config: &'static str, min_len: usize, max_len: usize) -> Result<()> {
    if min_len < 2 {
        return Err(Error::config(
            config,
            "min_len",
            min_len,
            "use at least 2: a one-step macro is a primitive",
        ));
    }
    if max_len < min_len {
        return Err(Error::config(config, "max_len", max_len, format!("use at least min_len = {min_len}")));
    }
    if max_len > MAX_MACRO_LEN {
        return Err(Error::config(
            config,
            "max_len",
            max_len,
            format!("use at most {MAX_MACRO_LEN} (macros in the paper are 3 to 8 steps)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn absurd_lengths_are_config_errors_not_hangs() {
        let err = validate_lengths("RandomConfig", 3, 1_000_000_000_000).unwrap_err().to_string();
        assert!(err.contains("max_len") && err.contains("at most 64"), "{err}");
        validate_lengths("RandomConfig", 3, MAX_MACRO_LEN).unwrap();
    }

    #[test]
    fn space_counts_all_lengths_and_saturates() {
        let s = SequenceSampler { alphabet: &[0, 1, 2], min_len: 2, max_len: 3 };
        assert_eq!(s.space(), 9 + 27);
        let huge = SequenceSampler { alphabet: &[0; 18], min_len: 2, max_len: 200 };
        assert_eq!(huge.space(), u128::MAX);
    }

    #[test]
    fn draws_can_exhaust_a_small_space_exactly() {
        let s = SequenceSampler { alphabet: &[4, 7], min_len: 2, max_len: 2 };
        let exclude: HashSet<Vec<usize>> = [vec![4, 4]].into();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut got: Vec<_> =
            s.draw_distinct(3, &exclude, &mut rng).unwrap().into_iter().map(Macro::into_actions).collect();
        got.sort();
        assert_eq!(got, [vec![4, 7], vec![7, 4], vec![7, 7]]);
        match s.draw_distinct(4, &exclude, &mut rng).unwrap_err() {
            Error::NotEnoughSequences { requested: 4, available: 3, excluded: 1, .. } => {}
            e => panic!("unexpected {e}"),
        }
    }
}
