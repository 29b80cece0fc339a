//! Discrete action sets for the Genesis pad, as stable-retro offers them, with readable names.
//!
//! Buttons are genesis.json's `buttons` (B, A, MODE, START, UP, DOWN, LEFT, RIGHT, C, Y, X,
//! Z); bit `i` of a mask is `buttons[i]`, which is libretro's joypad id `i`.
//!
//! * [`ActionSet::Discrete`]: stable-retro's `Actions.DISCRETE`, every choice of one entry
//!   from each of genesis.json's `actions` groups (vertical x horizontal x buttons: 3 x 3 x
//!   14 = 126), decoded with the first group as the fastest-changing digit and each group's
//!   combinations in the order of their masks, as stable-retro does (its `valid_actions` is a
//!   sorted set), so action ids mean the same buttons in both. Action 0 is `NOOP`; names
//!   join the pressed buttons with `_`: `DOWN_RIGHT_A`
//!   (not `+`, which the macro tools use to join primitive names into macro names).
//! * [`ActionSet::Buttons`]: stable-retro's filtered button set as single presses: `NOOP` and
//!   each of the 12 buttons alone.
//!
//! ```no_run
//! let pad = retro_env::Pad::genesis()?;
//! let actions = pad.actions(retro_env::ActionSet::Discrete);
//! assert_eq!(actions.len(), 126);
//! assert_eq!(actions[0].name, "NOOP");
//! # Ok::<(), retro_env::Error>(())
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};

/// Which discrete action set an env offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionSet {
    /// The product of genesis.json's allowed combinations (126 for the Genesis).
    #[default]
    Discrete,
    /// No-op and each button alone.
    Buttons,
}

/// One discrete action: the buttons it holds and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub name: String,
    pub mask: u16,
}

/// A console's pad as `cores/<system>.json` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pad {
    /// Button names by bit; `None` where the pad has no button at that id.
    pub buttons: Vec<Option<String>>,
    /// The allowed combinations, per group (each a list of button-name lists).
    pub groups: Vec<Vec<Vec<String>>>,
}

#[derive(Deserialize)]
struct SystemJson {
    buttons: Vec<Option<String>>,
    actions: Vec<Vec<Vec<String>>>,
}

impl Pad {
    /// The Genesis pad from the sdist's `cores/genesis.json`.
    pub fn genesis() -> Result<Pad> {
        Pad::load(&Path::new(retro_sys::SOURCE_DIR).join("cores/genesis.json"), "Genesis")
    }

    /// The pad of `system` in a `cores/*.json` file.
    pub fn load(path: &Path, system: &str) -> Result<Pad> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let bad = |message: String| Error::Integration { path: PathBuf::from(path), message };
        let mut all: std::collections::BTreeMap<String, SystemJson> =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let sys = all.remove(system).ok_or_else(|| bad(format!("no system `{system}`")))?;
        if sys.buttons.len() > 16 {
            return Err(bad(format!("{} buttons; a mask holds 16", sys.buttons.len())));
        }
        let pad = Pad { buttons: sys.buttons, groups: sys.actions };
        for group in &pad.groups {
            for combo in group {
                pad.mask(combo.iter().map(String::as_str)).map_err(bad)?;
            }
        }
        Ok(pad)
    }

    /// The mask of the named buttons; an unknown name is an error listing the pad's buttons.
    pub fn mask<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> std::result::Result<u16, String> {
        let mut mask = 0u16;
        for name in names {
            let bit = self.buttons.iter().position(|b| b.as_deref() == Some(name)).ok_or_else(|| {
                let known: Vec<&str> = self.buttons.iter().flatten().map(String::as_str).collect();
                format!("no button `{name}` (buttons: {})", known.join(", "))
            })?;
            mask |= 1 << bit;
        }
        Ok(mask)
    }

    /// The actions of `set`, index = action id.
    pub fn actions(&self, set: ActionSet) -> Vec<Action> {
        match set {
            ActionSet::Discrete => self.discrete(),
            ActionSet::Buttons => std::iter::once(Action { name: "NOOP".into(), mask: 0 })
                .chain(
                    self.buttons
                        .iter()
                        .enumerate()
                        .filter_map(|(bit, b)| Some(Action { name: b.clone()?, mask: 1 << bit })),
                )
                .collect(),
        }
    }

    fn discrete(&self) -> Vec<Action> {
        // Each group's combinations as (mask, names), sorted by mask.
        let groups: Vec<Vec<(u16, &[String])>> = self
            .groups
            .iter()
            .map(|group| {
                let mut combos: Vec<(u16, &[String])> = group
                    .iter()
                    .map(|c| {
                        let mask = self
                            .mask(c.iter().map(String::as_str))
                            .expect("combinations were checked in load");
                        (mask, c.as_slice())
                    })
                    .collect();
                combos.sort_by_key(|&(mask, _)| mask);
                combos
            })
            .collect();
        let total: usize = groups.iter().map(Vec::len).product();
        (0..total)
            .map(|mut a| {
                let (mut mask, mut names) = (0u16, Vec::new());
                for group in &groups {
                    let (m, n) = group[a % group.len()];
                    mask |= m;
                    names.extend(n.iter().map(String::as_str));
                    a /= group.len();
                }
                let name = if names.is_empty() { "NOOP".to_owned() } else { names.join("_") };
                Action { name, mask }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad() -> Pad {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Pad {
            buttons: ["B", "A", "MODE", "START", "UP", "DOWN", "LEFT", "RIGHT", "C", "Y", "X", "Z"]
                .map(|b| Some(b.to_string()))
                .to_vec(),
            groups: vec![
                vec![s(&[]), s(&["UP"]), s(&["DOWN"])],
                vec![s(&[]), s(&["LEFT"]), s(&["RIGHT"])],
                // Out of mask order: B (bit 0) sorts before A (bit 1).
                vec![s(&[]), s(&["A"]), s(&["B"])],
            ],
        }
    }

    #[test]
    fn discrete_decodes_the_first_group_fastest() {
        let actions = pad().actions(ActionSet::Discrete);
        assert_eq!(actions.len(), 27);
        assert_eq!(actions[0], Action { name: "NOOP".into(), mask: 0 });
        assert_eq!(actions[1].name, "UP");
        assert_eq!(actions[3].name, "LEFT");
        // 2 (DOWN) + 3 * 2 (RIGHT) + 9 * 1 (the smallest mask after none: B).
        assert_eq!(actions[17], Action { name: "DOWN_RIGHT_B".into(), mask: (1 << 5) | (1 << 7) | 1 });
        assert_eq!(actions[26], Action { name: "DOWN_RIGHT_A".into(), mask: (1 << 5) | (1 << 7) | (1 << 1) });
    }

    #[test]
    fn buttons_are_noop_and_each_button_alone() {
        let actions = pad().actions(ActionSet::Buttons);
        assert_eq!(actions.len(), 13);
        assert_eq!(actions[1], Action { name: "B".into(), mask: 1 });
        assert_eq!(actions[12], Action { name: "Z".into(), mask: 1 << 11 });
    }

    #[test]
    fn unknown_buttons_are_named() {
        let err = pad().mask(["A", "TURBO"]).unwrap_err();
        assert!(err.contains("TURBO") && err.contains("START"), "{err}");
    }
}
