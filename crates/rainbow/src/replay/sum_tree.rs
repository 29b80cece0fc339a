//! Segment trees over transition priorities: [`SumTree`] samples a leaf in proportion to
//! its value in `O(log n)`, and [`MinTree`] gives the smallest value, which normalises the
//! importance-sampling weights.
//!
//! Both are one complete binary tree over an associative operation, stored as an array of
//! `2 * leaves` `f64`s (`leaves` = the capacity rounded up to a power of two; node `i` has
//! children `2i` and `2i + 1`, the root is node 1). An update rewrites one leaf and
//! recomputes its `log2(leaves)` ancestors from their children, so sums never drift the way
//! incrementally patched ones do. `f64` keeps a 1M-leaf sum exact enough that a leaf of
//! priority `1e-10` next to leaves of priority 1 still gets its share.
//!
//! ```
//! use rainbow::{MinTree, SumTree};
//! let mut sum = SumTree::new(4);
//! let mut min = MinTree::new(4);
//! for (i, p) in [1.0, 0.0, 3.0, 4.0].into_iter().enumerate() {
//!     sum.set(i, p);
//!     min.set(i, if p > 0.0 { p } else { f64::INFINITY });
//! }
//! assert_eq!((sum.total(), min.min()), (8.0, 1.0));
//! // Prefixes [0, 1) -> leaf 0, [1, 4) -> leaf 2, [4, 8) -> leaf 3; leaf 1 (0) never.
//! assert_eq!([0.5, 1.0, 3.9, 4.0, 7.9].map(|u| sum.find(u)), [0, 2, 2, 3, 3]);
//! ```

use std::ops::Range;

use crate::replay::snapshot::{Reader, Writer};

/// An associative operation with an identity: what the internal nodes hold.
trait Op {
    const IDENTITY: f64;
    fn combine(a: f64, b: f64) -> f64;
}

#[derive(Clone, Debug)]
struct Add;

impl Op for Add {
    const IDENTITY: f64 = 0.0;
    fn combine(a: f64, b: f64) -> f64 {
        a + b
    }
}

#[derive(Clone, Debug)]
struct Min;

impl Op for Min {
    const IDENTITY: f64 = f64::INFINITY;
    fn combine(a: f64, b: f64) -> f64 {
        a.min(b)
    }
}

#[derive(Clone, Debug)]
struct SegmentTree<O> {
    len: usize,
    /// Leaf count, a power of two >= `len`; leaves past `len` hold the identity.
    leaves: usize,
    /// `nodes[1]` is the root, leaf `i` is `nodes[leaves + i]`; `nodes[0]` is unused.
    nodes: Vec<f64>,
    op: std::marker::PhantomData<O>,
}

impl<O: Op> SegmentTree<O> {
    fn new(len: usize) -> Self {
        let leaves = len.max(1).next_power_of_two();
        Self { len, leaves, nodes: vec![O::IDENTITY; 2 * leaves], op: std::marker::PhantomData }
    }

    fn set(&mut self, index: usize, value: f64) {
        assert!(index < self.len, "leaf {index} is out of range for a tree of {} leaves", self.len);
        let mut node = self.leaves + index;
        self.nodes[node] = value;
        while node > 1 {
            node /= 2;
            self.nodes[node] = O::combine(self.nodes[2 * node], self.nodes[2 * node + 1]);
        }
    }

    fn get(&self, index: usize) -> f64 {
        assert!(index < self.len, "leaf {index} is out of range for a tree of {} leaves", self.len);
        self.nodes[self.leaves + index]
    }

    fn root(&self) -> f64 {
        self.nodes[1]
    }

    fn bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<f64>()
    }

    /// The leaves in `ranges`: the rest hold the identity (a replay's unfilled slots), and
    /// every inner node is a function of its children, so these rebuild the tree exactly.
    fn write_snapshot(&self, w: &mut Writer<'_>, ranges: &[Range<usize>]) -> std::io::Result<()> {
        for r in ranges {
            w.f64s(&self.nodes[self.leaves + r.start..self.leaves + r.end])?;
        }
        Ok(())
    }

    /// Reads [`SegmentTree::write_snapshot`]'s leaves into a new tree and rebuilds it.
    fn read_snapshot(
        &mut self,
        r: &mut Reader<'_>,
        what: &str,
        ranges: &[Range<usize>],
    ) -> crate::error::Result<()> {
        self.nodes.fill(O::IDENTITY);
        for range in ranges {
            if range.end > self.len {
                return Err(crate::error::Error::ShapeMismatch {
                    what: what.into(),
                    expected: format!("leaves below {}", self.len),
                    found: format!("{range:?}"),
                });
            }
            r.f64s(what, &mut self.nodes[self.leaves + range.start..self.leaves + range.end])?;
        }
        for node in (1..self.leaves).rev() {
            self.nodes[node] = O::combine(self.nodes[2 * node], self.nodes[2 * node + 1]);
        }
        Ok(())
    }
}

/// Sums of non-negative leaf values, with sampling in proportion to them.
#[derive(Clone)]
pub struct SumTree(SegmentTree<Add>);

/// A summary: a replay's tree has millions of nodes.
impl std::fmt::Debug for SumTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SumTree").field("len", &self.len()).field("total", &self.total()).finish()
    }
}

impl SumTree {
    /// A tree of `len` leaves, all 0.
    pub fn new(len: usize) -> Self {
        Self(SegmentTree::new(len))
    }

    pub fn len(&self) -> usize {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Sets leaf `index` to `value` (finite and >= 0). Panics if `index >= len`.
    pub fn set(&mut self, index: usize, value: f64) {
        debug_assert!(value.is_finite() && value >= 0.0, "sum-tree leaf {index} set to {value}");
        self.0.set(index, value)
    }

    pub fn get(&self, index: usize) -> f64 {
        self.0.get(index)
    }

    /// The sum of all leaves.
    pub fn total(&self) -> f64 {
        self.0.root()
    }

    /// The leaf `i` whose prefix interval `[sum_{j<i} v_j, sum_{j<=i} v_j)` holds `prefix`:
    /// for `prefix` uniform in `[0, total)`, leaf `i` comes out with probability
    /// `v_i / total`.
    ///
    /// Always returns a leaf with a positive value when `total() > 0`, even if rounding
    /// puts `prefix` at or past the total (it then returns the last positive leaf): a
    /// zero leaf is a slot that cannot be sampled, so landing on one would be a bug, not
    /// noise. The result is unspecified when `total() == 0`.
    pub fn find(&self, prefix: f64) -> usize {
        let nodes = &self.0.nodes;
        let mut value = prefix.max(0.0);
        let mut node = 1;
        while node < self.0.leaves {
            let left = 2 * node;
            // Invariant: the subtree at `node` sums to > 0. Go left when the prefix falls
            // there, or when the right subtree is empty (the prefix overshot by rounding).
            if value < nodes[left] || nodes[left + 1] <= 0.0 {
                node = left;
            } else {
                value -= nodes[left];
                node = left + 1;
            }
        }
        node - self.0.leaves
    }

    /// Heap bytes held: `2 * leaves * 8`.
    pub fn bytes(&self) -> usize {
        self.0.bytes()
    }

    /// Every node, so a loaded tree is the saved one bit for bit.
    /// The leaves in `ranges` (the others are 0), for checkpoints.
    pub(crate) fn write_snapshot(&self, w: &mut Writer<'_>, ranges: &[Range<usize>]) -> std::io::Result<()> {
        self.0.write_snapshot(w, ranges)
    }

    pub(crate) fn read_snapshot(
        &mut self,
        r: &mut Reader<'_>,
        ranges: &[Range<usize>],
    ) -> crate::error::Result<()> {
        self.0.read_snapshot(r, "sum tree", ranges)
    }
}

/// Minima of leaf values; empty leaves hold `f64::INFINITY`.
#[derive(Clone)]
pub struct MinTree(SegmentTree<Min>);

/// A summary: a replay's tree has millions of nodes.
impl std::fmt::Debug for MinTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinTree").field("len", &self.len()).field("min", &self.min()).finish()
    }
}

impl MinTree {
    /// A tree of `len` leaves, all `INFINITY`.
    pub fn new(len: usize) -> Self {
        Self(SegmentTree::new(len))
    }

    pub fn len(&self) -> usize {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Sets leaf `index` to `value`; `INFINITY` removes it from the minimum. Panics if
    /// `index >= len`.
    pub fn set(&mut self, index: usize, value: f64) {
        self.0.set(index, value)
    }

    pub fn get(&self, index: usize) -> f64 {
        self.0.get(index)
    }

    /// The smallest leaf (`INFINITY` when all are empty).
    pub fn min(&self) -> f64 {
        self.0.root()
    }

    /// Heap bytes held: `2 * leaves * 8`.
    pub fn bytes(&self) -> usize {
        self.0.bytes()
    }

    /// The leaves in `ranges` (the others are `INFINITY`), for checkpoints.
    pub(crate) fn write_snapshot(&self, w: &mut Writer<'_>, ranges: &[Range<usize>]) -> std::io::Result<()> {
        self.0.write_snapshot(w, ranges)
    }

    pub(crate) fn read_snapshot(
        &mut self,
        r: &mut Reader<'_>,
        ranges: &[Range<usize>],
    ) -> crate::error::Result<()> {
        self.0.read_snapshot(r, "min tree", ranges)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The chi-squared statistic of observed counts against expected probabilities.
    pub(crate) fn chi_squared(counts: &[u64], probs: &[f64]) -> f64 {
        let n: u64 = counts.iter().sum();
        counts
            .iter()
            .zip(probs)
            .map(|(&o, &p)| {
                let e = p * n as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum()
    }

    /// Upper 0.001 quantile of the chi-squared distribution with 15 degrees of freedom:
    /// `scipy.stats.chi2.ppf(0.999, 15)` = 37.697 (also any printed table; recomputed here
    /// by bisection on the regularised incomplete gamma series).
    pub(crate) const CHI2_999_DF15: f64 = 37.697;

    #[test]
    fn sampling_frequencies_pass_chi_squared_against_the_priorities() {
        // 16 leaves with uneven priorities, 200k iid prefix draws, fixed seed. Under
        // proportional sampling the statistic is chi-squared with 15 degrees of freedom, so
        // a correct tree exceeds the critical value with probability 0.001 (and with this
        // seed, never). An off-by-one in `find` or a stale ancestor shifts whole subtrees'
        // worth of mass and lands far beyond it.
        let priorities = [3.0, 0.5, 0.05, 1.0, 7.5, 0.25, 2.0, 2.0, 0.4, 9.0, 4.0, 0.1, 1.5, 6.0, 0.75, 3.3];
        let mut tree = SumTree::new(priorities.len());
        for (i, &p) in priorities.iter().enumerate() {
            tree.set(i, p);
        }
        let total: f64 = priorities.iter().sum();
        let probs: Vec<f64> = priorities.iter().map(|p| p / total).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(20_180_201);
        let mut counts = [0u64; 16];
        for _ in 0..200_000 {
            counts[tree.find(rng.random::<f64>() * tree.total())] += 1;
        }
        let stat = chi_squared(&counts, &probs);
        assert!(stat < CHI2_999_DF15, "chi-squared {stat:.2} over 15 df rejects proportional sampling");
    }

    #[test]
    fn chi_squared_detects_a_wrong_distribution() {
        // The test above can fail: the same statistic, for counts drawn uniformly instead
        // of in proportion, is far past the critical value.
        let probs: Vec<f64> = (1..=16).map(|i| i as f64 / 136.0).collect();
        let uniform = [12_500u64; 16];
        assert!(chi_squared(&uniform, &probs) > CHI2_999_DF15);
    }

    #[test]
    fn find_never_returns_an_empty_leaf_even_past_the_total() {
        let mut tree = SumTree::new(5);
        tree.set(1, 2.0);
        tree.set(3, 1e-10);
        for u in [0.0, 1.999, 2.0, 2.0 + 1e-10, 3.0, f64::MAX, -1.0] {
            let leaf = tree.find(u);
            assert!(tree.get(leaf) > 0.0, "prefix {u} landed on empty leaf {leaf}");
        }
        assert_eq!(tree.find(2.0 + 5e-11), 3);
    }

    #[test]
    fn non_power_of_two_lengths_pad_with_the_identity() {
        let mut sum = SumTree::new(3);
        let mut min = MinTree::new(3);
        assert_eq!((sum.total(), min.min()), (0.0, f64::INFINITY));
        sum.set(2, 5.0);
        min.set(2, 5.0);
        assert_eq!((sum.total(), min.min(), sum.find(4.0)), (5.0, 5.0, 2));
        assert_eq!(sum.bytes(), 2 * 4 * 8);
    }

    fn leaf_updates() -> impl Strategy<Value = (usize, Vec<(usize, f64)>)> {
        (1usize..70).prop_flat_map(|len| {
            let value = prop_oneof![1 => Just(0.0), 6 => 0.0f64..100.0, 1 => 1e-12f64..1e-6];
            (Just(len), prop::collection::vec((0..len, value), 1..200))
        })
    }

    proptest! {
        #[test]
        fn min_tree_matches_brute_force_under_updates((len, updates) in leaf_updates()) {
            let mut tree = MinTree::new(len);
            let mut leaves = vec![f64::INFINITY; len];
            for (i, v) in updates {
                // 0 stands for "remove", as the replay does when a slot is overwritten.
                let v = if v == 0.0 { f64::INFINITY } else { v };
                tree.set(i, v);
                leaves[i] = v;
                let brute = leaves.iter().copied().fold(f64::INFINITY, f64::min);
                prop_assert_eq!(tree.min(), brute);
            }
        }

        #[test]
        fn sum_tree_matches_brute_force_prefix_search((len, updates) in leaf_updates(), u in 0.0f64..1.0) {
            let mut tree = SumTree::new(len);
            let mut leaves = vec![0.0; len];
            for (i, v) in updates {
                tree.set(i, v);
                leaves[i] = v;
            }
            let brute_total: f64 = leaves.iter().sum();
            prop_assert!((tree.total() - brute_total).abs() <= 1e-9 * brute_total.max(1.0));
            prop_assume!(brute_total > 0.0);
            // Brute force: the first positive leaf whose running sum passes the prefix.
            let prefix = u * tree.total();
            let leaf = tree.find(prefix);
            prop_assert!(leaves[leaf] > 0.0);
            let before: f64 = leaves[..leaf].iter().sum();
            let tol = 1e-9 * brute_total;
            prop_assert!(before <= prefix + tol && prefix < before + leaves[leaf] + tol,
                "prefix {} fell on leaf {} spanning [{}, {})", prefix, leaf, before, before + leaves[leaf]);
        }
    }
}
