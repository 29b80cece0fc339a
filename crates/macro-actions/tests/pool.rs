//! Properties of pools and their files: serialisation round-trips, re-indexing by identity
//! after a shuffle, corruption counts, and malformed input that must give errors, never
//! panics.

use std::collections::HashSet;

use macro_actions::{
    corrupt, random_macros, ActionPool, CorruptionConfig, Macro, RandomConfig, SimilarityMatrix, Structural,
    Trajectory, TrajectorySet,
};
use proptest::collection::{hash_set, vec};
use proptest::prelude::*;

/// Distinct primitive names that a pool accepts: ALE-like upper-case words.
fn names_strategy() -> impl Strategy<Value = Vec<String>> {
    hash_set("[A-Z][A-Z0-9_]{0,7}", 2..8).prop_map(|s| s.into_iter().collect())
}

/// A valid pool: distinct macros of 2 to 9 steps over the primitives.
fn pool_strategy() -> impl Strategy<Value = ActionPool> {
    names_strategy().prop_flat_map(|names| {
        let p = names.len();
        hash_set(vec(0..p, 2..10), 0..40).prop_map(move |seqs| {
            ActionPool::new(names.clone(), seqs.into_iter().map(Macro::new).collect()).unwrap()
        })
    })
}

proptest! {
    #[test]
    fn pools_round_trip_through_json_toml_and_serde(pool in pool_strategy()) {
        prop_assert_eq!(&ActionPool::from_json(&pool.to_json()).unwrap(), &pool);
        prop_assert_eq!(&ActionPool::from_toml(&pool.to_toml()).unwrap(), &pool);
        let embedded: ActionPool = serde_json::from_str(&serde_json::to_string(&pool).unwrap()).unwrap();
        prop_assert_eq!(&embedded, &pool);
        // Order and names survive too, not just equality of the parts.
        let again = ActionPool::from_toml(&pool.to_toml()).unwrap();
        prop_assert_eq!(again.names(), pool.names());
    }

    #[test]
    fn trajectory_files_round_trip(
        names in names_strategy(),
        episodes in vec((-1e6f64..1e6, vec(any::<prop::sample::Index>(), 0..50)), 0..10),
    ) {
        let episodes = episodes
            .into_iter()
            .map(|(r, idx)| Trajectory { episode_return: r, actions: idx.iter().map(|i| i.index(names.len())).collect() })
            .collect();
        let set = TrajectorySet { action_names: names, episodes };
        let mut bytes = Vec::new();
        set.write(&mut bytes).unwrap();
        prop_assert_eq!(TrajectorySet::read(bytes.as_slice()).unwrap(), set);
    }

    #[test]
    fn reindexing_by_identity_after_a_shuffle_recovers_the_same_macros(
        (pool, order) in pool_strategy().prop_flat_map(|pool| {
            let k = pool.num_macros();
            (Just(pool), Just((0..k).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        let shuffled = pool.with_macros(order.iter().map(|&i| pool.macros()[i].clone()).collect()).unwrap();
        for a in 0..pool.len() {
            let by_sequence = shuffled.index_of(pool.actions(a)).unwrap();
            let by_name = shuffled.index_of_name(pool.name(a)).unwrap();
            prop_assert_eq!(by_sequence, by_name);
            prop_assert_eq!(shuffled.actions(by_sequence), pool.actions(a));
            prop_assert_eq!(shuffled.name(by_sequence), pool.name(a));
        }
        // `align_to` is the same permutation, and a matrix moved with it is the matrix the
        // shuffled pool would compute itself.
        let map = pool.align_to(&shuffled);
        prop_assert_eq!(map.iter().flatten().collect::<HashSet<_>>().len(), pool.len());
        let s = SimilarityMatrix::structural(&pool, Structural::EditDistance);
        let moved = s.align_onto(&SimilarityMatrix::identity(&shuffled));
        prop_assert_eq!(moved, SimilarityMatrix::structural(&shuffled, Structural::EditDistance));
    }

    #[test]
    fn corruption_replaces_exactly_round_p_times_k(k in 0usize..80, fraction in 0.0f64..=1.0, seed: u64) {
        let names: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
        let pool = ActionPool::new(names.clone(), random_macros(&RandomConfig { count: k, ..Default::default() }, &names, seed).unwrap()).unwrap();
        let c = corrupt(&pool, &CorruptionConfig { fraction, ..Default::default() }, seed ^ 1).unwrap();
        let expected = (fraction * k as f64).round() as usize;
        prop_assert_eq!(c.replaced.len(), expected);
        let changed: Vec<usize> = (0..pool.len()).filter(|&a| pool.actions(a) != c.pool.actions(a)).collect();
        prop_assert_eq!(&changed, &c.replaced, "exactly the reported actions changed");
        prop_assert!(c.replaced.iter().all(|&a| a >= pool.num_primitives()), "primitives are never replaced");
        prop_assert!(c.pool.macros().iter().all(|m| (3..=8).contains(&m.len())));
    }

    #[test]
    fn structural_matrices_are_symmetric_bounded_with_unit_diagonal(pool in pool_strategy()) {
        for measure in Structural::ALL {
            let s = SimilarityMatrix::structural(&pool, measure);
            for i in 0..pool.len() {
                prop_assert_eq!(s.get(i, i), 1.0);
                for j in 0..i {
                    prop_assert_eq!(s.get(i, j), s.get(j, i));
                    prop_assert!((0.0..=1.0).contains(&s.get(i, j)));
                    // Distinct actions are never fully similar by order-aware measures.
                    if measure != Structural::MultisetOverlap {
                        prop_assert!(s.get(i, j) < 1.0);
                    }
                }
            }
        }
    }

    /// Arbitrary text: an error or a pool, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = ActionPool::from_json(&text);
        let _ = ActionPool::from_toml(&text);
        let _ = TrajectorySet::read(text.as_bytes());
    }

    /// Valid files with one span cut out or replaced: still never a panic, and anything
    /// that loads is a valid pool.
    #[test]
    fn damaged_pool_files_never_panic(
        pool in pool_strategy(),
        toml: bool,
        cut in any::<prop::sample::Index>(),
        len in 0usize..12,
        insert in "[\\[\\]\",=+#0-9A-Z \n-]{0,6}",
    ) {
        let text = if toml { pool.to_toml() } else { pool.to_json() };
        let mut chars: Vec<char> = text.chars().collect();
        let start = cut.index(chars.len());
        let end = (start + len).min(chars.len());
        chars.splice(start..end, insert.chars());
        let damaged: String = chars.into_iter().collect();
        let loaded = if toml { ActionPool::from_toml(&damaged) } else { ActionPool::from_json(&damaged) };
        if let Ok(p) = loaded {
            prop_assert_eq!(ActionPool::new(p.primitive_names().to_vec(), p.macros().to_vec()).unwrap(), p);
        }
    }
}
