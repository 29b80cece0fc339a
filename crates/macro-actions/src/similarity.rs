//! Structural similarity between actions, for MASP's prior on `S` and for analysis, and
//! the `A x A` matrix type that carries action identities so it can be re-aligned to
//! another pool.
//!
//! The measures are documented on [`Structural`].
//!
//! ```
//! use macro_actions::{ActionPool, Macro, SimilarityMatrix, Structural};
//! let names = ["LEFT", "RIGHT"].map(String::from).to_vec();
//! let pool = ActionPool::new(names, vec![Macro::new(vec![1, 1, 0]), Macro::new(vec![1, 0, 1])])?;
//! let s = SimilarityMatrix::structural(&pool, Structural::EditDistance);
//! assert_eq!(s.len(), 4); // (A, A) with A = 4
//! assert_eq!(s.get(2, 3), 1.0 - 2.0 / 3.0); // RIGHT+RIGHT+LEFT vs RIGHT+LEFT+RIGHT
//! assert_eq!(Structural::MultisetOverlap.similarity(&[1, 1, 0], &[1, 0, 1]), 1.0);
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pool::ActionPool;

/// A structural similarity measure between primitive sequences.
///
/// Each measure compares two actions' primitive sequences (a primitive is a sequence of
/// one) and lies in `[0, 1]`, 1 exactly for identical sequences (for the multiset overlap:
/// for sequences with the same primitives in any order), so every matrix is symmetric with
/// a unit diagonal:
///
/// * [`Structural::EditDistance`]: `1 - lev(a, b) / max(|a|, |b|)`, Levenshtein distance
///   over primitives;
/// * [`Structural::SharedPrefix`]: `prefix(a, b) / max(|a|, |b|)`, the common prefix length;
/// * [`Structural::MultisetOverlap`]: `|a ∩ b| / |a ∪ b|` over primitive multisets (the
///   weighted Jaccard index of the primitive counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Structural {
    EditDistance,
    SharedPrefix,
    MultisetOverlap,
}

impl Structural {
    pub const ALL: [Structural; 3] =
        [Structural::EditDistance, Structural::SharedPrefix, Structural::MultisetOverlap];

    /// The similarity of two sequences, in `[0, 1]`; two empty sequences count as identical.
    pub fn similarity(self, a: &[usize], b: &[usize]) -> f32 {
        self.similarity_with(a, b, &mut Vec::new())
    }

    /// As `similarity`, with a scratch buffer reused across calls.
    fn similarity_with(self, a: &[usize], b: &[usize], scratch: &mut Vec<usize>) -> f32 {
        let longest = a.len().max(b.len());
        if longest == 0 {
            return 1.0;
        }
        match self {
            Structural::EditDistance => 1.0 - edit_distance_with(a, b, scratch) as f32 / longest as f32,
            Structural::SharedPrefix => {
                a.iter().zip(b).take_while(|(x, y)| x == y).count() as f32 / longest as f32
            }
            Structural::MultisetOverlap => {
                let common = multiset_intersection(a, b, scratch);
                common as f32 / (a.len() + b.len() - common) as f32
            }
        }
    }
}

/// The Levenshtein distance between two primitive sequences: the fewest insertions,
/// deletions and substitutions of single primitives that turn `a` into `b`.
pub fn edit_distance(a: &[usize], b: &[usize]) -> usize {
    edit_distance_with(a, b, &mut Vec::new())
}

/// The textbook two-row dynamic programme; `row` is scratch space.
fn edit_distance_with(a: &[usize], b: &[usize], row: &mut Vec<usize>) -> usize {
    row.clear();
    row.extend(0..=b.len());
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(x != y);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `sum_p min(count_a(p), count_b(p))`, by merging sorted copies held in `scratch`.
fn multiset_intersection(a: &[usize], b: &[usize], scratch: &mut Vec<usize>) -> usize {
    scratch.clear();
    scratch.extend_from_slice(a);
    scratch.extend_from_slice(b);
    let (sa, sb) = scratch.split_at_mut(a.len());
    sa.sort_unstable();
    sb.sort_unstable();
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < sa.len() && j < sb.len() {
        match sa[i].cmp(&sb[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common
}

/// A square matrix indexed by action, `(A, A)` row-major, with the identity (name) of each
/// row's action so it can be moved to another pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMatrix", into = "RawMatrix")]
pub struct SimilarityMatrix {
    ids: Vec<String>,
    values: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    ids: Vec<String>,
    values: Vec<f32>,
}

impl TryFrom<RawMatrix> for SimilarityMatrix {
    type Error = Error;
    fn try_from(raw: RawMatrix) -> Result<Self> {
        SimilarityMatrix::new(raw.ids, raw.values)
    }
}

impl From<SimilarityMatrix> for RawMatrix {
    fn from(m: SimilarityMatrix) -> Self {
        RawMatrix { ids: m.ids, values: m.values }
    }
}

impl SimilarityMatrix {
    /// A matrix over actions `ids` from `values`, `(A, A)` row-major. Fails unless there
    /// are `A^2` finite values and the ids are distinct.
    pub fn new(ids: Vec<String>, values: Vec<f32>) -> Result<Self> {
        let n = ids.len();
        if values.len() != n * n {
            return Err(Error::InvalidMatrix {
                reason: format!("{} values for {n} actions: expected {n} x {n} = {}", values.len(), n * n),
            });
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidMatrix {
                reason: format!("entry ({}, {}) is {}", k / n, k % n, values[k]),
            });
        }
        let mut seen = HashMap::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            if let Some(first) = seen.insert(id.as_str(), i) {
                return Err(Error::InvalidMatrix {
                    reason: format!("action `{id}` names rows {first} and {i}"),
                });
            }
        }
        Ok(Self { ids, values })
    }

    /// `values[i][j] = f(i, j)` over the pool's actions.
    pub fn from_fn(pool: &ActionPool, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let n = pool.len();
        let values = (0..n * n).map(|k| f(k / n, k % n)).collect();
        Self { ids: pool.names().to_vec(), values }
    }

    /// The identity matrix over the pool.
    pub fn identity(pool: &ActionPool) -> Self {
        Self::from_fn(pool, |i, j| if i == j { 1.0 } else { 0.0 })
    }

    /// The structural similarity of every pair of the pool's actions; symmetric, unit
    /// diagonal, entries in `[0, 1]`. Costs `O(A^2 L^2)` for sequences of length `L`.
    pub fn structural(pool: &ActionPool, measure: Structural) -> Self {
        let n = pool.len();
        let mut values = vec![0.0; n * n];
        let mut scratch = Vec::new();
        for i in 0..n {
            values[i * n + i] = 1.0;
            for j in i + 1..n {
                let s = measure.similarity_with(pool.actions(i), pool.actions(j), &mut scratch);
                values[i * n + j] = s;
                values[j * n + i] = s;
            }
        }
        Self { ids: pool.names().to_vec(), values }
    }

    /// `A`, the number of rows (and columns).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Each row's action identity, in row order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.values[i * self.len() + j]
    }

    pub fn row(&self, i: usize) -> &[f32] {
        let n = self.len();
        &self.values[i * n..(i + 1) * n]
    }

    /// All values, `(A, A)` row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// This matrix moved onto `target`'s actions: entry `(i, j)` is this matrix's entry
    /// for the same pair of identities where both exist here, and `target`'s own entry
    /// otherwise. So `target` supplies the initialisation for actions this matrix has not
    /// seen (MASP section 5's transfer), and the result has `target`'s ids and order.
    pub fn align_onto(&self, target: &SimilarityMatrix) -> SimilarityMatrix {
        let here: HashMap<&str, usize> =
            self.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let map: Vec<Option<usize>> = target.ids.iter().map(|id| here.get(id.as_str()).copied()).collect();
        let n = target.len();
        let values = (0..n * n)
            .map(|k| match (map[k / n], map[k % n]) {
                (Some(a), Some(b)) => self.get(a, b),
                _ => target.values[k],
            })
            .collect();
        SimilarityMatrix { ids: target.ids.clone(), values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macro_action::Macro;

    /// Levenshtein distance straight from its recursive definition, as the reference.
    fn lev_reference(a: &[usize], b: &[usize]) -> usize {
        match (a.split_first(), b.split_first()) {
            (None, _) => b.len(),
            (_, None) => a.len(),
            (Some((x, ra)), Some((y, rb))) if x == y => lev_reference(ra, rb),
            (Some((_, ra)), Some((_, rb))) => {
                1 + lev_reference(ra, b).min(lev_reference(a, rb)).min(lev_reference(ra, rb))
            }
        }
    }

    #[test]
    fn edit_distance_matches_the_recursive_definition() {
        let seqs: [&[usize]; 7] =
            [&[], &[1], &[1, 2, 3], &[3, 2, 1], &[1, 1, 2, 3, 3], &[2, 3], &[0, 0, 0, 0]];
        for a in seqs {
            for b in seqs {
                assert_eq!(edit_distance(a, b), lev_reference(a, b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn measures_on_known_pairs() {
        use Structural::*;
        // Hand-computed: lev([1,1,0],[1,0,0]) = 1; common prefix 1; multisets {0,1,1} and
        // {0,0,1} share 2 of a union of 4.
        let (a, b) = (&[1, 1, 0][..], &[1, 0, 0][..]);
        assert_eq!(EditDistance.similarity(a, b), 1.0 - 1.0 / 3.0);
        assert_eq!(SharedPrefix.similarity(a, b), 1.0 / 3.0);
        assert_eq!(MultisetOverlap.similarity(a, b), 2.0 / 4.0);
        // Different lengths normalise by the longer.
        let (a, b) = (&[2][..], &[2, 2, 5, 6][..]);
        assert_eq!(EditDistance.similarity(a, b), 1.0 - 3.0 / 4.0);
        assert_eq!(SharedPrefix.similarity(a, b), 1.0 / 4.0);
        assert_eq!(MultisetOverlap.similarity(a, b), 1.0 / 4.0);
        // Nothing in common.
        for m in Structural::ALL {
            assert_eq!(m.similarity(&[1, 2], &[3, 4]), 0.0, "{m:?}");
            assert_eq!(m.similarity(&[], &[]), 1.0, "{m:?}");
        }
    }

    fn pool() -> ActionPool {
        let names: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let macros = [vec![0, 1, 2], vec![0, 1, 1, 2], vec![2, 2, 2], vec![1, 0, 2]].map(Macro::new).to_vec();
        ActionPool::new(names, macros).unwrap()
    }

    #[test]
    fn matrices_are_symmetric_bounded_with_unit_diagonal() {
        let p = pool();
        for m in Structural::ALL {
            let s = SimilarityMatrix::structural(&p, m);
            assert_eq!(s.ids(), p.names());
            for i in 0..p.len() {
                assert_eq!(s.get(i, i), 1.0);
                for j in 0..p.len() {
                    assert_eq!(s.get(i, j), s.get(j, i));
                    assert!((0.0..=1.0).contains(&s.get(i, j)));
                    assert_eq!(s.get(i, j), m.similarity(p.actions(i), p.actions(j)), "{m:?} ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn alignment_moves_known_pairs_and_keeps_the_target_elsewhere() {
        let p = pool();
        let s = SimilarityMatrix::structural(&p, Structural::EditDistance);
        // The target pool drops B, reorders, and adds an unknown macro.
        let target_pool = ActionPool::new(
            ["C", "A"].map(String::from).to_vec(),
            vec![Macro::new(vec![0, 0, 0]), Macro::new(vec![1, 1])],
        )
        .unwrap();
        let init = SimilarityMatrix::from_fn(&target_pool, |i, j| if i == j { 1.0 } else { 0.5 });
        let aligned = s.align_onto(&init);
        assert_eq!(aligned.ids(), ["C", "A", "C+C+C", "A+A"]);
        let old = |name: &str| p.index_of_name(name).unwrap();
        assert_eq!(aligned.get(0, 2), s.get(old("C"), old("C+C+C")));
        assert_eq!(aligned.get(1, 2), s.get(old("A"), old("C+C+C")));
        assert_eq!(aligned.get(3, 0), 0.5, "A+A is new");
        assert_eq!(aligned.get(3, 3), 1.0);
        // Aligning onto the same ids is the identity map.
        assert_eq!(s.align_onto(&SimilarityMatrix::identity(&p)), s);
    }

    #[test]
    fn bad_matrices_are_refused_and_serde_round_trips() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(SimilarityMatrix::new(ids(&["A", "B"]), vec![1.0; 3]).is_err());
        let e = SimilarityMatrix::new(ids(&["A", "B"]), vec![1.0, f32::NAN, 0.0, 1.0]).unwrap_err();
        assert_eq!(e.to_string(), "invalid similarity matrix: entry (0, 1) is NaN");
        assert!(SimilarityMatrix::new(ids(&["A", "A"]), vec![1.0; 4]).is_err());
        let s = SimilarityMatrix::structural(&pool(), Structural::SharedPrefix);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<SimilarityMatrix>(&text).unwrap(), s);
        assert!(serde_json::from_str::<SimilarityMatrix>(r#"{"ids": ["A"], "values": []}"#).is_err());
    }
}
