//! The Atari 100k reference figures, `data/atari100k.csv`: per game the random and human
//! scores that human-normalised scores (HNS) need, and data-efficient Rainbow's (DER)
//! published score after 400k frames, for `masp report` and `masp plot`.
//!
//! ```text
//! HNS = (score - random) / (human - random)
//! ```
//!
//! Games match by [`game_key`], so ALE's `ms_pacman`, `MsPacman` and `ms-pacman` are one
//! game, as the ROM lookup takes them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// `game,random,human,der` per Atari 100k game, `#` lines are comments; see its header.
const ATARI100K: &str = include_str!("../data/atari100k.csv");

/// A game's reference figures, raw game scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reference {
    pub random: f64,
    pub human: f64,
    /// DER's published score after 100k agent steps (400k frames); `None` where the table
    /// has none.
    pub der: Option<f64>,
}

impl Reference {
    /// The human-normalised `score`: 0 plays as uniformly random actions do, 1 as the human.
    pub fn normalise(&self, score: f64) -> f64 {
        (score - self.random) / (self.human - self.random)
    }
}

/// Lower-case letters and digits only: the key games match by.
pub fn game_key(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// `game`'s reference figures, if it is one of the table's games.
pub fn reference(game: &str) -> Option<Reference> {
    table().get(&game_key(game)).copied()
}

/// The table by [`game_key`], parsed once.
fn table() -> &'static BTreeMap<String, Reference> {
    static TABLE: OnceLock<BTreeMap<String, Reference>> = OnceLock::new();
    TABLE.get_or_init(|| parse(ATARI100K))
}

/// Parses the csv `text`; it is compiled in, so a malformed table is a bug, not an input
/// error.
fn parse(text: &str) -> BTreeMap<String, Reference> {
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("the table has a header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (game, random, human) = (
        col("game").expect("a game column"),
        col("random").expect("a random column"),
        col("human").expect("a human column"),
    );
    let der = col("der");
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').map(str::trim).collect();
            let number = |i: usize| cells[i].parse::<f64>().expect("the table holds numbers");
            let der = der
                .and_then(|i| cells.get(i))
                .filter(|c| !c.is_empty())
                .map(|c| c.parse::<f64>().expect("the der column holds numbers or nothing"));
            (game_key(cells[game]), Reference { random: number(random), human: number(human), der })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Aggregate;

    #[test]
    fn the_table_has_the_atari_100k_games_under_ale_names() {
        assert_eq!(table().len(), 26);
        assert_eq!(reference("pong"), Some(Reference { random: -20.7, human: 14.6, der: Some(-19.3) }));
        assert_eq!(reference("MsPacman"), reference("ms_pacman"));
        assert!(reference("private_eye").is_some() && reference("up_n_down").is_some());
        assert_eq!(reference("space_invaders"), None, "not one of the 26");
    }

    #[test]
    fn der_aggregates_match_the_published_summary() {
        // shared/reference/README.md: DER's mean HNS over the 26 games is 0.285, its median 0.161.
        let der: Vec<Vec<f64>> = table().values().map(|r| vec![r.normalise(r.der.unwrap())]).collect();
        assert!((Aggregate::Mean.of(&der) - 0.285).abs() < 5e-4, "{}", Aggregate::Mean.of(&der));
        assert!((Aggregate::Median.of(&der) - 0.161).abs() < 5e-4, "{}", Aggregate::Median.of(&der));
    }

    #[test]
    fn der_scores_are_optional_and_normalised_against_random_and_human() {
        let t = parse("# comment\ngame,random,human,der\na,10,110,60\nb,0,1,\n");
        assert_eq!(t["a"].der, Some(60.0));
        assert_eq!(t["a"].normalise(60.0), 0.5);
        assert_eq!(t["b"].der, None);
        assert_eq!(
            parse("game,random,human\nc,0,2\n")["c"],
            Reference { random: 0.0, human: 2.0, der: None }
        );
    }
}
