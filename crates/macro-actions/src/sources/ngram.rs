//! Mined macros: the most frequent n-grams of recorded primitive-action trajectories
//! (MASP section 2: "frequent n-grams mined from recorded action trajectories, ranked by
//! count, deduplicated").
//!
//! The method is documented on [`mine_ngrams`].
//!
//! ```
//! use macro_actions::{mine_ngrams, NgramConfig, Trajectory};
//! let episodes = vec![
//!     Trajectory { episode_return: 1.0, actions: vec![0, 1, 2, 3, 0, 1, 2, 3, 3, 1] },
//!     Trajectory { episode_return: 0.0, actions: vec![2, 0, 1, 2, 3, 1] },
//! ];
//! let config = NgramConfig { min_n: 3, max_n: 5, top_k: 1, ..Default::default() };
//! let mined = mine_ngrams(&episodes, &config)?;
//! assert_eq!(mined[0].sequence.actions(), [0, 1, 2, 3]);
//! assert_eq!(mined[0].count, 3);
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::macro_action::Macro;
use crate::trajectory::Trajectory;

/// The knobs of n-gram mining.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NgramConfig {
    /// Shortest n-gram, at least 2. Default 3 (MASP section 2's macro lengths).
    pub min_n: usize,
    /// Longest n-gram. Default 8 (MASP section 2).
    pub max_n: usize,
    /// How many to keep. Default 64, as the random source.
    pub top_k: usize,
    /// Weight each occurrence by its episode's return, rescaled to `[0, 1]`. Default
    /// false: plain counts, as the paper ranks.
    pub weight_by_return: bool,
    /// Drop an n-gram in favour of a one-longer n-gram containing it whose score beyond
    /// chance is at least this fraction of its own; above 1 switches this off. Default 0.9
    /// (our choice, not the paper's: up to a tenth of a piece's structured occurrences may
    /// lie outside the longer pattern).
    pub extension_ratio: f64,
}

impl Default for NgramConfig {
    fn default() -> Self {
        Self { min_n: 3, max_n: 8, top_k: 64, weight_by_return: false, extension_ratio: 0.9 }
    }
}

impl NgramConfig {
    pub fn validate(&self) -> Result<()> {
        const NAME: &str = "NgramConfig";
        if self.min_n < 2 {
            return Err(Error::config(
                NAME,
                "min_n",
                self.min_n,
                "use at least 2: a one-step macro is a primitive",
            ));
        }
        if self.max_n < self.min_n {
            return Err(Error::config(
                NAME,
                "max_n",
                self.max_n,
                format!("use at least min_n = {}", self.min_n),
            ));
        }
        if !(self.extension_ratio > 0.0 && self.extension_ratio.is_finite()) {
            return Err(Error::config(
                NAME,
                "extension_ratio",
                self.extension_ratio,
                "use a positive number, e.g. 0.9",
            ));
        }
        Ok(())
    }
}

/// A mined n-gram with the numbers it was ranked by.
#[derive(Clone, Debug, PartialEq)]
pub struct MinedMacro {
    pub sequence: Macro,
    /// Occurrences in the data, overlapping ones included.
    pub count: usize,
    /// What it was ranked by: `count`, or the return-weighted count.
    pub score: f64,
}

/// The top `config.top_k` deduplicated n-grams of `episodes`, best first. Deterministic:
/// the same episodes give the same list.
///
/// The steps:
/// 1. Count every n-gram, `min_n <= n <= max_n`, at every position of every episode
///    (overlapping occurrences count; `RRRR` holds `RRR` twice). With `weight_by_return`,
///    an occurrence counts its episode's return rescaled to `[0, 1]` over the data set
///    (the worst episode counts 0, the best 1); otherwise it counts 1. That sum is the score.
/// 2. Prefer the longer pattern. Counting alone always ranks the 3-step pieces of a
///    frequent 6-step pattern above the pattern, so an n-gram is dropped when a
///    one-step-longer n-gram containing it accounts for at least `extension_ratio` of its
///    score beyond chance: then the shorter is, almost always, a piece of the longer.
///    Chance is the score the n-gram would have if actions were drawn independently with
///    their observed frequencies; it is subtracted because the pieces of a pattern also
///    occur at random, and with few primitives often enough to hide the pattern.
/// 3. Rank by score (ties: longer first, then the smaller sequence), and walk down the
///    ranking keeping an n-gram unless it duplicates one already kept: it contains it, is
///    contained in it, or overlaps it end to start by all but one step of the shorter of
///    the two (`ABC` and `BCD`, the same stretch of play seen one step later).
/// 4. Stop at `top_k`. Fewer come back when every remaining n-gram is folded or a
///    duplicate: with few primitives the end-to-start rule rules out most candidates
///    (in one trial, 4 primitives and 100 000 uniform random actions gave 22 of the
///    default 64).
pub fn mine_ngrams(episodes: &[Trajectory], config: &NgramConfig) -> Result<Vec<MinedMacro>> {
    config.validate()?;
    let weights = episode_weights(episodes, config.weight_by_return);

    // 1. Count. Keys borrow from the episodes, so counting copies no sequences.
    let mut stats: HashMap<&[usize], (usize, f64)> = HashMap::new();
    for (t, &w) in episodes.iter().zip(&weights) {
        for n in config.min_n..=config.max_n.min(t.actions.len()) {
            for window in t.actions.windows(n) {
                let s = stats.entry(window).or_insert((0, 0.0));
                s.0 += 1;
                s.1 += w;
            }
        }
    }

    // 2 and 3, lazily: pop candidates best first and decide about each as it comes up, so
    //    only the few thousand that get near the top are checked, not every n-gram seen (a
    //    million random actions hold millions of distinct n-grams).
    let chance = Chance::new(episodes, &weights, config.max_n);
    let mut heap: BinaryHeap<Ranked> = stats
        .iter()
        .filter(|(_, &(_, score))| score > 0.0)
        .map(|(&seq, &(count, score))| Ranked { seq, count, score })
        .collect();
    let mut kept = Kept::default();
    let mut out = Vec::with_capacity(config.top_k.min(heap.len()));
    let mut scratch = Vec::new();
    while out.len() < config.top_k {
        let Some(Ranked { seq, count, score }) = heap.pop() else { break };
        if !chance.folds_into_extension(seq, score, &stats, config, &mut scratch) && !kept.duplicates(seq) {
            kept.insert(seq);
            out.push(MinedMacro { sequence: Macro::new(seq), count, score });
        }
    }
    Ok(out)
}

/// 1 per episode, or the return rescaled so the worst episode weighs 0 and the best 1
/// (all 1 when every return is the same, since then the returns say nothing). A
/// non-finite return, which a trajectory file cannot hold, weighs 0.
fn episode_weights(episodes: &[Trajectory], by_return: bool) -> Vec<f64> {
    let returns = episodes.iter().map(|t| t.episode_return).filter(|r| r.is_finite());
    let lo = returns.clone().fold(f64::INFINITY, f64::min);
    let spread = returns.fold(f64::NEG_INFINITY, f64::max) - lo;
    if !(by_return && spread.is_finite() && spread > 0.0) {
        return vec![1.0; episodes.len()];
    }
    episodes
        .iter()
        .map(|t| if t.episode_return.is_finite() { (t.episode_return - lo) / spread } else { 0.0 })
        .collect()
}

/// The score an n-gram would have if every action were drawn independently with its
/// observed (weighted) frequency: `windows(n) * prod_i freq(a_i)`.
struct Chance {
    /// Weighted frequency of each primitive among all actions.
    freq: Vec<f64>,
    /// `windows[n]`: weighted number of positions where an n-gram fits.
    windows: Vec<f64>,
}

impl Chance {
    fn new(episodes: &[Trajectory], weights: &[f64], max_n: usize) -> Self {
        let num_actions = episodes.iter().flat_map(|t| t.actions.iter()).max().map_or(0, |&a| a + 1);
        let mut freq = vec![0.0; num_actions];
        // No n-gram is longer than the longest episode, so `max_n` (a config value, which
        // may be huge) does not size anything.
        let longest = episodes.iter().map(|t| t.actions.len()).max().unwrap_or(0);
        let mut windows = vec![0.0; max_n.min(longest) + 1];
        for (t, &w) in episodes.iter().zip(weights) {
            for &a in &t.actions {
                freq[a] += w;
            }
            for (n, slot) in windows.iter_mut().enumerate().skip(1) {
                *slot += w * t.actions.len().saturating_sub(n - 1) as f64;
            }
        }
        let total: f64 = freq.iter().sum();
        if total > 0.0 {
            freq.iter_mut().for_each(|f| *f /= total);
        }
        Self { freq, windows }
    }

    fn expected(&self, seq: &[usize]) -> f64 {
        self.windows[seq.len()] * seq.iter().map(|&a| self.freq[a]).product::<f64>()
    }

    /// Step 2 of [`mine_ngrams`]: whether a one-longer n-gram `d` containing `seq` (as its
    /// prefix or its suffix) has at least `extension_ratio` of `seq`'s score beyond chance.
    /// Every occurrence of `d` holds one of `seq`, so `d` never scores more; only an n-gram
    /// seen more often than chance has anything to fold into `d`.
    fn folds_into_extension(
        &self,
        seq: &[usize],
        score: f64,
        stats: &HashMap<&[usize], (usize, f64)>,
        config: &NgramConfig,
        d: &mut Vec<usize>,
    ) -> bool {
        // Above 1 is off, as documented: the comparison below cannot be relied on for that, as
        // a longer n-gram's chance score is smaller, so its score beyond chance can exceed
        // the shorter's.
        if config.extension_ratio > 1.0 || seq.len() >= config.max_n {
            return false;
        }
        let shorter = score - self.expected(seq);
        if shorter <= 0.0 {
            return false;
        }
        let folds = |d: &[usize]| {
            stats.get(d).is_some_and(|&(_, s)| s - self.expected(d) >= config.extension_ratio * shorter)
        };
        (0..self.freq.len()).any(|a| {
            d.clear();
            d.extend_from_slice(seq);
            d.push(a);
            if folds(d) {
                return true;
            }
            d.clear();
            d.push(a);
            d.extend_from_slice(seq);
            folds(d)
        })
    }
}

/// A candidate in ranking order: higher score first, then longer, then the smaller sequence.
struct Ranked<'a> {
    seq: &'a [usize],
    count: usize,
    score: f64,
}

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.seq.len().cmp(&other.seq.len()))
            .then(other.seq.cmp(self.seq))
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked<'_> {}

/// What the kept n-grams rule out, indexed so that checking a candidate costs
/// `O(len^2)` hash lookups however many are kept.
#[derive(Default)]
struct Kept<'a> {
    kept: HashSet<&'a [usize]>,
    /// Every contiguous piece of every kept n-gram, themselves included.
    pieces: HashSet<&'a [usize]>,
    /// Proper prefixes (suffixes) of kept n-grams, with the shortest kept length having it.
    prefixes: HashMap<&'a [usize], usize>,
    suffixes: HashMap<&'a [usize], usize>,
}

impl<'a> Kept<'a> {
    fn insert(&mut self, seq: &'a [usize]) {
        let n = seq.len();
        self.kept.insert(seq);
        for i in 0..n {
            for j in i + 1..=n {
                self.pieces.insert(&seq[i..j]);
            }
        }
        for l in 1..n {
            let p = self.prefixes.entry(&seq[..l]).or_insert(n);
            *p = (*p).min(n);
            let s = self.suffixes.entry(&seq[n - l..]).or_insert(n);
            *s = (*s).min(n);
        }
    }

    fn duplicates(&self, c: &[usize]) -> bool {
        let n = c.len();
        if self.pieces.contains(c) {
            return true;
        }
        if (0..n).any(|i| (i + 1..=n).any(|j| self.kept.contains(&c[i..j]))) {
            return true;
        }
        // An end-to-start overlap of `l` steps with a kept n-gram of length `m` is a
        // duplicate when `l >= min(n, m) - 1`; the shortest such `m` is the easiest to meet.
        (1..n).any(|l| {
            let close = |m: usize| l + 1 >= n.min(m);
            self.prefixes.get(&c[n - l..]).is_some_and(|&m| close(m))
                || self.suffixes.get(&c[..l]).is_some_and(|&m| close(m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(actions: &[usize], episode_return: f64) -> Trajectory {
        Trajectory { episode_return, actions: actions.to_vec() }
    }

    fn mined(episodes: &[Trajectory], config: &NgramConfig) -> Vec<Vec<usize>> {
        mine_ngrams(episodes, config).unwrap().into_iter().map(|m| m.sequence.into_actions()).collect()
    }

    #[test]
    fn config_defaults_are_documented_and_files_are_strict() {
        let c = NgramConfig::default();
        assert_eq!(
            (c.min_n, c.max_n, c.top_k, c.weight_by_return, c.extension_ratio),
            (3, 8, 64, false, 0.9)
        );
        assert_eq!(toml::from_str::<NgramConfig>("top_k = 64").unwrap(), c);
        assert!(toml::from_str::<NgramConfig>("topk = 64").is_err());
    }

    #[test]
    fn counts_overlapping_occurrences() {
        let config = NgramConfig { min_n: 3, max_n: 3, top_k: 10, ..Default::default() };
        let m = mine_ngrams(&[ep(&[1, 1, 1, 1, 1], 0.0)], &config).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].sequence.actions(), m[0].count, m[0].score), (&[1, 1, 1][..], 3, 3.0));
    }

    #[test]
    fn ties_go_to_the_longer_then_the_smaller_sequence() {
        let e = [ep(&[4, 5, 6], 0.0), ep(&[1, 2, 3], 0.0), ep(&[7, 8, 9, 9], 0.0)];
        let config = NgramConfig { min_n: 3, max_n: 4, top_k: 3, extension_ratio: 2.0, ..Default::default() };
        assert_eq!(mined(&e, &config), [vec![7, 8, 9, 9], vec![1, 2, 3], vec![4, 5, 6]]);
    }

    #[test]
    fn contained_and_shifted_duplicates_are_removed() {
        fn kept<'a>(seqs: &[&'a [usize]]) -> Kept<'a> {
            let mut k = Kept::default();
            for s in seqs {
                k.insert(s);
            }
            k
        }
        let k = kept(&[&[1, 2, 3, 4]]);
        assert!(k.duplicates(&[2, 3, 4]), "contained");
        assert!(k.duplicates(&[0, 1, 2, 3, 4]), "contains");
        assert!(k.duplicates(&[2, 3, 4, 5]), "shifted one step later");
        assert!(k.duplicates(&[0, 1, 2, 3]), "shifted one step earlier");
        assert!(k.duplicates(&[3, 4, 5]), "overlap 2 of a 3-gram");
        assert!(!k.duplicates(&[3, 4, 5, 6]), "overlap 2 of 4: a different stretch");
        assert!(k.duplicates(&[4, 1, 2]), "its end [1, 2] starts the kept one: overlap 2 of 3");
        assert!(!k.duplicates(&[4, 9, 1]), "overlap 1 of 3 at either end");
        assert!(!k.duplicates(&[2, 4, 3]));
    }

    #[test]
    fn extension_keeps_the_whole_pattern_not_its_pieces() {
        // [5, 6, 7, 8] three times; its pieces [5, 6, 7] and [6, 7, 8] also three times.
        let e = [ep(&[5, 6, 7, 8, 0, 5, 6, 7, 8, 1, 5, 6, 7, 8], 0.0)];
        let config = NgramConfig { min_n: 3, max_n: 6, top_k: 1, ..Default::default() };
        assert_eq!(mined(&e, &config), [vec![5, 6, 7, 8]]);
        // One stray [5, 6, 7] makes the piece the most frequent n-gram (4 against 3): the
        // default ratio keeps it (3 < 0.9 * 4), a looser one folds it into the pattern.
        let e = [ep(&[5, 6, 7, 8, 0, 5, 6, 7, 8, 1, 5, 6, 7, 8, 2, 5, 6, 7], 0.0)];
        assert_eq!(mined(&e, &config), [vec![5, 6, 7]]);
        assert_eq!(mined(&e, &NgramConfig { extension_ratio: 0.7, ..config.clone() }), [vec![5, 6, 7, 8]]);
        // Above 1 it is off, and plain counts tie the pattern with its pieces: the tie
        // goes to the longer.
        let e = [ep(&[5, 6, 7, 8, 0, 5, 6, 7, 8, 1, 5, 6, 7, 8], 0.0)];
        assert_eq!(mined(&e, &NgramConfig { extension_ratio: 2.0, ..config }), [vec![5, 6, 7, 8]]);
    }

    #[test]
    fn return_weighting_prefers_what_good_episodes_do() {
        let good = ep(&[1, 2, 3, 0, 1, 2, 3], 10.0);
        let bad = ep(&[4, 5, 6, 0, 4, 5, 6, 0, 4, 5, 6], -5.0);
        let config = NgramConfig { min_n: 3, max_n: 3, top_k: 1, ..Default::default() };
        assert_eq!(mined(&[good.clone(), bad.clone()], &config), [vec![4, 5, 6]], "more frequent");
        let weighted = NgramConfig { weight_by_return: true, ..config };
        let m = mine_ngrams(&[good, bad], &weighted).unwrap();
        assert_eq!((m[0].sequence.actions(), m[0].count, m[0].score), (&[1, 2, 3][..], 2, 2.0));
    }

    #[test]
    fn a_ratio_above_one_switches_folding_off() {
        // Three primitives: chance is large, so a one-longer n-gram can have more score
        // beyond chance than the n-gram itself, and a ratio of 1.5 would still fold.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut actions = Vec::new();
        for i in 0..20_000 {
            if i % 50 == 0 {
                actions.extend_from_slice(&[0, 0, 1, 1, 0, 1]);
            }
            actions.push(rng.random_range(0..3));
        }
        let e = [ep(&actions, 0.0)];
        let config =
            |extension_ratio| NgramConfig { max_n: 6, top_k: 12, extension_ratio, ..Default::default() };
        let off = mined(&e, &config(1e300));
        assert_ne!(mined(&e, &config(0.9)), off, "the data must make folding matter");
        assert_eq!(mined(&e, &config(1.5)), off);
        assert_eq!(mined(&e, &config(1.0 + f64::EPSILON)), off);
    }

    #[test]
    fn a_huge_max_n_costs_only_what_the_episodes_need() {
        // Nothing is sized by max_n: a config asking for any length is answered, not aborted.
        let e = [ep(&[1, 2, 3, 1, 2, 3, 1, 2, 3], 0.0)];
        let m = mined(&e, &NgramConfig { max_n: usize::MAX, top_k: 3, ..Default::default() });
        assert_eq!(m, mined(&e, &NgramConfig { max_n: 9, top_k: 3, ..Default::default() }));
        assert_eq!(m[0], [1, 2, 3]);
    }

    #[test]
    fn top_k_zero_short_episodes_and_bad_configs() {
        let e = [ep(&[1, 2], 0.0), ep(&[], 1.0)];
        assert!(mined(&e, &NgramConfig::default()).is_empty());
        assert!(mined(&[ep(&[1, 2, 3], 0.0)], &NgramConfig { top_k: 0, ..Default::default() }).is_empty());
        let field = |c: NgramConfig| match mine_ngrams(&e, &c).unwrap_err() {
            Error::InvalidConfig { field, .. } => field,
            e => panic!("unexpected {e}"),
        };
        assert_eq!(field(NgramConfig { min_n: 1, ..Default::default() }), "min_n");
        assert_eq!(field(NgramConfig { max_n: 2, ..Default::default() }), "max_n");
        assert_eq!(field(NgramConfig { extension_ratio: 0.0, ..Default::default() }), "extension_ratio");
        assert_eq!(field(NgramConfig { extension_ratio: f64::NAN, ..Default::default() }), "extension_ratio");
    }
}
