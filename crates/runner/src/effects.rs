//! What a toy env knows of its actions' effects beyond their names, for judging a learned
//! `S` (`masp analyze`) and the meta-gradient's direction (`masp train`'s signal columns,
//! [`masp::MetaSignal`]): the grouped bandit's hidden groups, the corridor's effect distance.

use anyhow::{anyhow, Context, Result};
use macro_actions::ActionPool;
use masp::EffectReference;
use rl_env::Corridor;

use crate::config::EnvConfig;

/// What the env knows of its actions' effects, in the pool's order.
pub enum EnvReference {
    /// The grouped bandit's hidden group of each action (a macro has none).
    Groups(Vec<Option<usize>>),
    /// The corridor's [`effect_distance`] matrix, `(A, A)` row-major, and each action's net
    /// move from the corridor's middle.
    Corridor { distance: Vec<f32>, moves: Vec<i64> },
}

impl EnvReference {
    /// The reference of `env` over `pool`'s actions: `None` for an env without one (Atari,
    /// Genesis, key-door).
    pub fn of(env: &EnvConfig, pool: &ActionPool) -> Result<Option<Self>> {
        let mismatch = |env_actions: usize| {
            anyhow!(
                "the env has {env_actions} actions, S {} primitives: is this S from another run?",
                pool.num_primitives()
            )
        };
        match env {
            EnvConfig::GroupedBandit(section) => {
                let env = rl_env::GroupedBandit::try_new(section.clone()).context("[env]")?;
                if env.groups().len() != pool.num_primitives() {
                    return Err(mismatch(env.groups().len()));
                }
                let mut groups: Vec<Option<usize>> = env.groups().iter().copied().map(Some).collect();
                groups.resize(pool.len(), None);
                Ok(Some(Self::Groups(groups)))
            }
            EnvConfig::Corridor(section) => {
                let env = Corridor::try_new(section.clone()).context("[env]")?;
                if pool.primitive_names() != Corridor::ACTION_NAMES {
                    return Err(mismatch(Corridor::ACTION_NAMES.len()));
                }
                let middle = (env.config().length - 1) / 2;
                let moves = (0..pool.len())
                    .map(|i| env.walk(middle, pool.actions(i)) as i64 - middle as i64)
                    .collect();
                Ok(Some(Self::Corridor { distance: effect_distance(&env, pool), moves }))
            }
            _ => Ok(None),
        }
    }

    /// The part a [`masp::MetaSignal`] scores against.
    pub fn effects(&self) -> EffectReference<'_> {
        match self {
            Self::Groups(groups) => EffectReference::Groups(groups),
            Self::Corridor { distance, .. } => EffectReference::Distance(distance),
        }
    }
}

/// How differently each pair of actions moves the agent in `env`: the mean, over the cells
/// an episode can be in (all but the goal), of how many cells apart the two end
/// ([`Corridor::walk`], no slip); `(A, A)` row-major. 0 for two macros that end in the same
/// cell from everywhere (`RIGHT+LEFT+RIGHT` and `NOOP+RIGHT`, say), whatever their spelling.
pub fn effect_distance(env: &Corridor, pool: &ActionPool) -> Vec<f32> {
    let starts = env.config().length - 1;
    let ends: Vec<Vec<usize>> =
        (0..pool.len()).map(|i| (0..starts).map(|s| env.walk(s, pool.actions(i))).collect()).collect();
    let a = pool.len();
    let mut distance = vec![0f32; a * a];
    for i in 0..a {
        for j in 0..a {
            let sum: usize = ends[i].iter().zip(&ends[j]).map(|(x, y)| x.abs_diff(*y)).sum();
            distance[i * a + j] = (sum as f64 / starts as f64) as f32;
        }
    }
    distance
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::pool_of;
    use rl_env::CorridorConfig;

    #[test]
    fn effect_distance_counts_cells_apart_from_every_start() {
        let env = Corridor::new(CorridorConfig { length: 10, ..Default::default() });
        let ids = ["LEFT", "RIGHT", "NOOP", "BACK", "RIGHT+LEFT+RIGHT", "NOOP+RIGHT", "RIGHT+BACK"]
            .map(String::from);
        let pool = pool_of(&ids).unwrap();
        let d = effect_distance(&env, &pool);
        let at = |i: usize, j: usize| d[i * 7 + j];
        // LEFT vs RIGHT from starts 0..9: 1 cell apart at 0 (the wall), 2 elsewhere.
        assert_eq!(at(0, 1), (1.0 + 8.0 * 2.0) / 9.0);
        assert_eq!(at(1, 0), at(0, 1), "symmetric");
        assert_eq!(at(4, 5), 0.0, "two spellings of one step right");
        assert_eq!(at(4, 1), 0.0);
        // NOOP vs BACK: start s ends s cells apart; mean of 0..9.
        assert_eq!(at(2, 3), 36.0 / 9.0);
        // RIGHT+BACK ends in 0 except from 8, where RIGHT enters the goal and ends the walk.
        assert_eq!(at(6, 3), 9.0 / 9.0);
        assert!((0..7).all(|i| at(i, i) == 0.0));
    }
}
