//! Explicit macros: a hand-written list, e.g. a fighting game's combos, each a `+`-joined
//! name string or a list of action names and indices.
//!
//! ```
//! use macro_actions::{explicit_macros, ActionPool, ExplicitConfig};
//! let names = ["NOOP", "FIRE", "DOWN", "DOWNRIGHT", "RIGHT"].map(String::from).to_vec();
//! let config: ExplicitConfig = toml::from_str(r#"macros = ["DOWN+DOWNRIGHT+RIGHT+FIRE", ["FIRE", 1]]"#).unwrap();
//! let macros = explicit_macros(&config, &names)?;
//! let pool = ActionPool::new(names, macros)?;
//! assert_eq!(pool.names()[5..], ["DOWN+DOWNRIGHT+RIGHT+FIRE", "FIRE+FIRE"]);
//! # Ok::<(), macro_actions::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::macro_action::{Macro, MacroSpec};

/// The explicit source's list. There is no default list: an empty one gives no macros.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplicitConfig {
    pub macros: Vec<MacroSpec>,
}

/// The listed macros over `primitive_names`, in list order. An unknown name is an error
/// naming its entry and listing the valid names; whether the macros are long enough and
/// distinct is checked when they go into an [`ActionPool`](crate::ActionPool), whose errors
/// use the same entry numbers.
pub fn explicit_macros(config: &ExplicitConfig, primitive_names: &[String]) -> Result<Vec<Macro>> {
    config.macros.iter().enumerate().map(|(entry, spec)| spec.resolve(entry, primitive_names)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let names: Vec<String> = ["NOOP", "FIRE", "UP"].map(String::from).to_vec();
        let config = ExplicitConfig {
            macros: vec![MacroSpec::Name("UP+UP".into()), MacroSpec::Name("UP+FIRE+JUMP".into())],
        };
        let err = explicit_macros(&config, &names).unwrap_err();
        assert_eq!(err.to_string(), "macros[1]: unknown action name `JUMP`; valid names: NOOP, FIRE, UP");
        assert!(matches!(err, Error::UnknownActionName { ref context, .. } if context == "macros[1]"));
    }

    #[test]
    fn list_order_is_kept() {
        let names: Vec<String> = ["A", "B"].map(String::from).to_vec();
        let config: ExplicitConfig =
            serde_json::from_str(r#"{"macros": ["B+A", [0, 0, 1], "A+B"]}"#).unwrap();
        let got: Vec<Vec<usize>> =
            explicit_macros(&config, &names).unwrap().into_iter().map(Macro::into_actions).collect();
        assert_eq!(got, [vec![1, 0], vec![0, 0, 1], vec![0, 1]]);
    }
}
