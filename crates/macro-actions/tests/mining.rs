//! N-gram mining recovers patterns planted in random play, in the order of their planted
//! frequency, through the trajectory file format, and reweights them by return.

use macro_actions::{
    mine_ngrams, ActionPool, Macro, NgramConfig, Trajectory, TrajectorySet, TrajectoryWriter,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PRIMITIVES: usize = 12;

/// Episodes of uniform random actions with `plants[i].0` inserted `plants[i].1` times each
/// at random places, cut into `episodes` episodes at pattern boundaries. The pattern of an
/// occurrence's episode decides its return: `returns[i]` for episodes holding pattern `i`
/// most often.
fn planted(plants: &[(&[usize], usize)], background: usize, episodes: usize, seed: u64) -> Vec<Trajectory> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Tokens: a whole pattern or one random action, shuffled so patterns land anywhere.
    let mut tokens: Vec<Vec<usize>> =
        plants.iter().flat_map(|&(p, n)| std::iter::repeat_n(p.to_vec(), n)).collect();
    tokens.extend((0..background).map(|_| vec![rng.random_range(0..PRIMITIVES)]));
    tokens.shuffle(&mut rng);
    let per_episode = tokens.len().div_ceil(episodes);
    tokens
        .chunks(per_episode)
        .map(|chunk| Trajectory { episode_return: 0.0, actions: chunk.concat() })
        .collect()
}

const P1: &[usize] = &[0, 1, 2, 3, 4];
const P2: &[usize] = &[5, 5, 1, 0];
const P3: &[usize] = &[3, 3, 2, 2, 7, 7];

#[test]
fn mining_recovers_planted_ngrams_in_order_of_frequency() {
    // 150, 100 and 60 occurrences in about 9 000 random actions over 12 primitives, where a
    // given random 3-gram turns up about 5 times (9000 / 12^3).
    let episodes = planted(&[(P1, 150), (P2, 100), (P3, 60)], 9000, 40, 7);
    let config = NgramConfig { min_n: 3, max_n: 8, top_k: 3, ..Default::default() };
    let mined = mine_ngrams(&episodes, &config).unwrap();
    let got: Vec<&[usize]> = mined.iter().map(|m| m.sequence.actions()).collect();
    assert_eq!(got, [P1, P2, P3]);
    // Counts: at least the planted number (chance adds a few), far below for anything else.
    for (m, planted) in mined.iter().zip([150, 100, 60]) {
        assert!(
            (planted..planted + 5).contains(&m.count),
            "{:?}: {} for {planted} planted",
            m.sequence,
            m.count
        );
        assert_eq!(m.score, m.count as f64);
    }
    // Further down, nothing repeats a planted pattern or a piece of one.
    let more = mine_ngrams(&episodes, &NgramConfig { top_k: 30, ..config }).unwrap();
    assert_eq!(more.len(), 30);
    for m in &more[3..] {
        let s = m.sequence.actions();
        for p in [P1, P2, P3] {
            assert!(!p.windows(s.len()).any(|w| w == s), "{s:?} is a piece of {p:?}");
            assert!(!s.windows(p.len()).any(|w| w == p), "{s:?} contains {p:?}");
        }
        assert!(m.count < 60);
    }
}

#[test]
fn mined_macros_make_a_valid_pool_after_a_trip_through_the_file_format() {
    let names: Vec<String> = (0..PRIMITIVES).map(|a| format!("A{a}")).collect();
    let mut writer = TrajectoryWriter::new(Vec::new(), &names).unwrap();
    for t in planted(&[(P1, 150), (P2, 100), (P3, 60)], 9000, 40, 8) {
        writer.extend(&t.actions);
        writer.end_episode(t.episode_return).unwrap();
    }
    let set = TrajectorySet::read(writer.finish().unwrap().as_slice()).unwrap();
    assert_eq!(set.episodes.len(), 40);
    let mined = mine_ngrams(&set.episodes, &NgramConfig { top_k: 20, ..Default::default() }).unwrap();
    let pool = ActionPool::new(set.action_names, mined.into_iter().map(|m| m.sequence).collect()).unwrap();
    assert_eq!(pool.num_macros(), 20);
    assert_eq!(pool.index_of(P1), Some(PRIMITIVES));
    assert_eq!(pool.name(PRIMITIVES), "A0+A1+A2+A3+A4");
}

#[test]
fn return_weighting_ranks_what_good_episodes_do_first() {
    // P3 is rarest overall but planted only in episodes with the best return.
    let mut episodes = planted(&[(P1, 150), (P2, 100)], 6000, 30, 9);
    for t in &mut episodes {
        t.episode_return = 0.0;
    }
    let mut good = planted(&[(P3, 60)], 3000, 10, 10);
    for t in &mut good {
        t.episode_return = 100.0;
    }
    episodes.extend(good);
    let plain = NgramConfig { top_k: 3, ..Default::default() };
    let order = |config: &NgramConfig| -> Vec<Vec<usize>> {
        mine_ngrams(&episodes, config).unwrap().into_iter().map(|m| m.sequence.into_actions()).collect()
    };
    assert_eq!(order(&plain), [P1, P2, P3]);
    let weighted = order(&NgramConfig { weight_by_return: true, ..plain });
    assert_eq!(weighted[0], P3, "only P3 is in episodes with a return above the worst");
}

#[test]
fn mining_is_deterministic() {
    let episodes = planted(&[(P1, 50)], 5000, 20, 11);
    let config = NgramConfig::default();
    let a = mine_ngrams(&episodes, &config).unwrap();
    let b = mine_ngrams(&episodes, &config).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
    assert_eq!(a[0].sequence, Macro::new(P1.to_vec()));
}
