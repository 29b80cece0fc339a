//! The games a training run finishes: each one's raw score and clipped return, gathered per
//! log interval and over the last few games.
//!
//! A game ends where the env says it does ([`StepInfo::game_over`]: game over or the episode
//! cap), never where lives suggest: under a life-loss-terminal protocol an episode ends at
//! every lost life, and a cap can fall on a step that also cost a life.

use std::collections::VecDeque;

use rl_env::StepInfo;

/// Games whose scores the progress bar and `run.target_score` average.
pub const RECENT_GAMES: usize = 10;

/// Per env copy, the game in progress; for the run, the games finished.
#[derive(Clone, Debug)]
pub struct Games {
    /// Sum of the learner's (clipped) rewards of each copy's game so far.
    clipped: Vec<f64>,
    interval_scores: Vec<f64>,
    interval_returns: Vec<f64>,
    recent: VecDeque<f64>,
    finished: u64,
}

/// The means over the games finished in one log interval (`None` where none finished).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IntervalGames {
    pub score: Option<f64>,
    pub clipped_return: Option<f64>,
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

impl Games {
    /// `copies` games in progress, after `finished` games whose last scores were `recent`
    /// (a resumed run's).
    pub fn new(copies: usize, recent: &[f64], finished: u64) -> Self {
        let skip = recent.len().saturating_sub(RECENT_GAMES);
        Self {
            clipped: vec![0.0; copies],
            interval_scores: Vec::new(),
            interval_returns: Vec::new(),
            recent: recent[skip..].iter().copied().collect(),
            finished,
        }
    }

    /// One step of copy `copy`: its learner reward and the env's info.
    pub fn observe(&mut self, copy: usize, reward: f32, info: &StepInfo) {
        self.clipped[copy] += f64::from(reward);
        if info.game_over {
            self.finished += 1;
            self.interval_scores.push(info.episode_score);
            self.interval_returns.push(std::mem::take(&mut self.clipped[copy]));
            if self.recent.len() == RECENT_GAMES {
                self.recent.pop_front();
            }
            self.recent.push_back(info.episode_score);
        }
    }

    /// The interval's means, and a new interval.
    pub fn take_interval(&mut self) -> IntervalGames {
        let games = IntervalGames {
            score: mean(&self.interval_scores),
            clipped_return: mean(&self.interval_returns),
        };
        self.interval_scores.clear();
        self.interval_returns.clear();
        games
    }

    /// The mean raw score of the last [`RECENT_GAMES`] games (fewer at the start).
    pub fn recent_mean(&self) -> Option<f64> {
        // Asked every loop iteration: summed in place rather than gathered into a Vec.
        (!self.recent.is_empty()).then(|| self.recent.iter().sum::<f64>() / self.recent.len() as f64)
    }

    /// Whether the last [`RECENT_GAMES`] games all count towards [`Games::recent_mean`].
    pub fn recent_is_full(&self) -> bool {
        self.recent.len() == RECENT_GAMES
    }

    pub fn recent(&self) -> Vec<f64> {
        self.recent.iter().copied().collect()
    }

    /// Games finished over the whole run.
    pub fn finished(&self) -> u64 {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(score: f64, lives: i32, life_lost: bool, game_over: bool) -> StepInfo {
        StepInfo { episode_score: score, lives, life_lost, game_over, ..Default::default() }
    }

    #[test]
    fn a_game_ends_where_the_env_says_whatever_the_lives() {
        let mut games = Games::new(2, &[], 0);
        // Copy 0 loses a life that ends an episode but not the game: nothing finishes.
        games.observe(0, 1.0, &info(10.0, 3, false, false));
        games.observe(0, -1.0, &info(10.0, 2, true, false));
        assert_eq!(games.finished(), 0);
        // Then the episode cap falls on a step that costs a life with lives left.
        games.observe(0, 1.0, &info(30.0, 1, true, true));
        // Copy 1's game ends on its last life.
        games.observe(1, 1.0, &info(5.0, 0, true, true));
        assert_eq!(games.finished(), 2);
        let interval = games.take_interval();
        assert_eq!(interval.score, Some((30.0 + 5.0) / 2.0));
        assert_eq!(interval.clipped_return, Some((1.0 + 1.0) / 2.0));
        assert_eq!(games.take_interval(), IntervalGames::default());
        // The clipped return restarts with the next game.
        games.observe(0, 1.0, &info(1.0, 3, false, true));
        assert_eq!(games.take_interval().clipped_return, Some(1.0));
    }

    #[test]
    fn recent_keeps_the_last_games_across_a_resume() {
        let before: Vec<f64> = (0..12).map(f64::from).collect();
        let mut games = Games::new(1, &before, 12);
        assert!(games.recent_is_full());
        assert_eq!(games.recent_mean(), Some((2..12).sum::<i32>() as f64 / 10.0));
        games.observe(0, 0.0, &info(100.0, 0, false, true));
        assert_eq!(games.recent().first(), Some(&3.0));
        assert_eq!(games.recent().last(), Some(&100.0));
        assert_eq!(games.finished(), 13);
    }
}
