//! `Macro`: a fixed, open-loop sequence of primitive action indices, and the ways to write
//! one down in a file ([`MacroSpec`], [`ActionRef`]).
//!
//! Identity and naming are documented on [`Macro`].
//!
//! ```
//! use macro_actions::{Macro, MacroSpec};
//! let names: Vec<String> = ["NOOP", "FIRE", "UP"].map(String::from).to_vec();
//! let m = Macro::new(vec![2, 2, 1]);
//! assert_eq!(m.name(&names), "UP+UP+FIRE");
//! let spec: MacroSpec = serde_json::from_str(r#""UP + UP+FIRE""#).unwrap();
//! assert_eq!(spec.resolve(0, &names).unwrap(), m);
//! ```

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The separator between primitive names in a macro's name.
pub const NAME_SEPARATOR: char = '+';

/// A macro-action: primitive action indices, executed in order.
///
/// A macro's identity is its sequence: two macros are the same macro exactly when their
/// sequences are equal. Its readable name joins the primitives' names with `+`
/// (`UP+UP+FIRE`), which, because primitive names are unique and never contain `+`, is an
/// equally good identity, and one that survives a change of primitive numbering (ALE's
/// minimal action sets number `FIRE` differently from game to game).
///
/// Ordering (`Ord`) is lexicographic on the sequence; sources use it to break ties
/// reproducibly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Macro {
    actions: Vec<usize>,
}

impl Macro {
    /// A macro from its sequence. Nothing is checked here: a pool checks its macros against
    /// its primitives when it is built, and names the offending entry.
    pub fn new(actions: impl Into<Vec<usize>>) -> Self {
        Self { actions: actions.into() }
    }

    /// The primitive action indices, in execution order; this is the macro's identity.
    pub fn actions(&self) -> &[usize] {
        &self.actions
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn into_actions(self) -> Vec<usize> {
        self.actions
    }

    /// The readable name, e.g. `UP+UP+FIRE`; an index with no name is written `#index`.
    pub fn name(&self, primitive_names: &[String]) -> String {
        join_names(self.actions.iter().map(|&a| a as i64), primitive_names)
    }
}

impl From<Vec<usize>> for Macro {
    fn from(actions: Vec<usize>) -> Self {
        Self::new(actions)
    }
}

impl From<&[usize]> for Macro {
    fn from(actions: &[usize]) -> Self {
        Self::new(actions)
    }
}

/// Joins names with `+`; indices without a name (negative or too large) show as `#index`,
/// so an error message can still show the whole macro.
pub(crate) fn join_names(actions: impl Iterator<Item = i64>, names: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in actions.enumerate() {
        if i > 0 {
            out.push(NAME_SEPARATOR);
        }
        match usize::try_from(a).ok().and_then(|a| names.get(a)) {
            Some(name) => out.push_str(name),
            None => out.push_str(&format!("#{a}")),
        }
    }
    out
}

/// One primitive action as written in a file: its index or its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionRef {
    Index(usize),
    Name(String),
}

impl ActionRef {
    /// The action's index among `primitive_names`; `context` says where it was written,
    /// for the error.
    pub fn resolve(&self, primitive_names: &[String], context: &str) -> Result<usize> {
        match self {
            ActionRef::Index(i) if *i < primitive_names.len() => Ok(*i),
            ActionRef::Index(i) => Err(Error::UnknownActionName {
                context: context.to_string(),
                name: format!("#{i}"),
                suggestion: None,
                valid: index_list(primitive_names),
            }),
            ActionRef::Name(name) => find_name(name, primitive_names, context),
        }
    }
}

/// `0 (NOOP)`, `1 (FIRE)`, ...: what an out-of-range index could have been.
fn index_list(names: &[String]) -> Vec<String> {
    names.iter().enumerate().map(|(i, n)| format!("{i} ({n})")).collect()
}

fn find_name(name: &str, names: &[String], context: &str) -> Result<usize> {
    names.iter().position(|n| n == name).ok_or_else(|| Error::unknown_name(context, name, names))
}

impl Serialize for ActionRef {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ActionRef::Index(i) => s.serialize_u64(*i as u64),
            ActionRef::Name(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for ActionRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct RefVisitor;
        impl Visitor<'_> for RefVisitor {
            type Value = ActionRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a primitive action: its index (0, 1, ...) or its name (\"UP\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<ActionRef, E> {
                usize::try_from(v)
                    .map(ActionRef::Index)
                    .map_err(|_| E::custom(format!("action index {v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<ActionRef, E> {
                usize::try_from(v)
                    .map(ActionRef::Index)
                    .map_err(|_| E::custom(format!("action index {v} is negative: indices count from 0")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<ActionRef, E> {
                Ok(ActionRef::Name(v.to_string()))
            }
        }
        d.deserialize_any(RefVisitor)
    }
}

/// A macro as written in a pool file or a config: a `+`-joined name string
/// (`"UP+UP+FIRE"`, spaces around `+` allowed) or a list of action indices and names
/// (`[2, "UP", 1]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacroSpec {
    Name(String),
    Actions(Vec<ActionRef>),
}

impl MacroSpec {
    /// The spec of `m`, written with names: what pool files hold.
    pub fn named(m: &Macro, primitive_names: &[String]) -> Self {
        MacroSpec::Name(m.name(primitive_names))
    }

    /// The macro this spec denotes over `primitive_names`. `entry` is its position in its
    /// list, for the error. Checks that every name and index exists; whether the macro is
    /// long enough and distinct from the others is the pool's check.
    pub fn resolve(&self, entry: usize, primitive_names: &[String]) -> Result<Macro> {
        let context = format!("macros[{entry}]");
        let actions = match self {
            MacroSpec::Name(s) if s.trim().is_empty() => Vec::new(),
            MacroSpec::Name(s) => s
                .split(NAME_SEPARATOR)
                .map(|part| find_name(part.trim(), primitive_names, &context))
                .collect::<Result<_>>()?,
            MacroSpec::Actions(refs) => {
                let mut actions = Vec::with_capacity(refs.len());
                for (position, r) in refs.iter().enumerate() {
                    actions.push(match r {
                        ActionRef::Index(i) if *i >= primitive_names.len() => {
                            let written = refs.iter().map(|r| match r {
                                ActionRef::Index(i) => *i as i64,
                                ActionRef::Name(n) => {
                                    primitive_names.iter().position(|p| p == n).map_or(-1, |p| p as i64)
                                }
                            });
                            return Err(Error::ActionOutOfRange {
                                entry,
                                name: join_names(written, primitive_names),
                                position,
                                action: *i as i64,
                                num_primitives: primitive_names.len(),
                            });
                        }
                        r => r.resolve(primitive_names, &context)?,
                    });
                }
                actions
            }
        };
        Ok(Macro::new(actions))
    }
}

impl Serialize for MacroSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            MacroSpec::Name(n) => s.serialize_str(n),
            MacroSpec::Actions(a) => a.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MacroSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = MacroSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a macro: a string such as \"UP+UP+FIRE\" or a list of action indices or names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<MacroSpec, E> {
                Ok(MacroSpec::Name(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<MacroSpec, A::Error> {
                let mut refs = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(r) = seq.next_element()? {
                    refs.push(r);
                }
                Ok(MacroSpec::Actions(refs))
            }
        }
        d.deserialize_any(SpecVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["NOOP", "FIRE", "UP", "UPFIRE"].map(String::from).to_vec()
    }

    #[test]
    fn names_join_with_plus_and_mark_unknown_indices() {
        assert_eq!(Macro::new(vec![2, 3, 1]).name(&names()), "UP+UPFIRE+FIRE");
        assert_eq!(Macro::new(vec![0, 9]).name(&names()), "NOOP+#9");
        assert_eq!(Macro::new(Vec::new()).name(&names()), "");
    }

    #[test]
    fn specs_resolve_from_names_indices_and_mixtures() {
        let n = names();
        let want = Macro::new(vec![2, 2, 3]);
        for text in [r#""UP+UP+UPFIRE""#, r#"" UP + UP +UPFIRE ""#, r#"[2, 2, 3]"#, r#"["UP", 2, "UPFIRE"]"#]
        {
            let spec: MacroSpec = serde_json::from_str(text).unwrap();
            assert_eq!(spec.resolve(0, &n).unwrap(), want, "{text}");
        }
        let empty: MacroSpec = serde_json::from_str(r#""""#).unwrap();
        assert!(empty.resolve(0, &n).unwrap().is_empty(), "empty is the pool's error to report");
    }

    #[test]
    fn bad_specs_name_the_entry_and_what_is_wrong() {
        let n = names();
        let spec: MacroSpec = serde_json::from_str(r#""UP+JUMP""#).unwrap();
        match spec.resolve(4, &n).unwrap_err() {
            Error::UnknownActionName { context, name, valid, .. } => {
                assert_eq!((context.as_str(), name.as_str()), ("macros[4]", "JUMP"));
                assert_eq!(valid, n);
            }
            e => panic!("unexpected {e}"),
        }
        // A doubled separator leaves an empty name between the pluses.
        let spec: MacroSpec = serde_json::from_str(r#""UP++FIRE""#).unwrap();
        assert!(matches!(spec.resolve(0, &n), Err(Error::UnknownActionName { name, .. }) if name.is_empty()));
        let spec: MacroSpec = serde_json::from_str(r#"["UP", 7, 1]"#).unwrap();
        match spec.resolve(2, &n).unwrap_err() {
            e @ Error::ActionOutOfRange { .. } => {
                let Error::ActionOutOfRange { entry, ref name, position, action, num_primitives } = e else {
                    unreachable!()
                };
                assert_eq!(
                    (entry, name.as_str(), position, action, num_primitives),
                    (2, "UP+#7+FIRE", 1, 7, 4)
                );
                assert!(e.to_string().contains("valid indices: 0..4"), "{e}");
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn malformed_specs_are_parse_errors_not_panics() {
        for text in ["3", "[-1]", "[1.5]", "{\"a\": 1}", "[[1]]", "null"] {
            let err = serde_json::from_str::<MacroSpec>(text).unwrap_err().to_string();
            assert!(err.contains("macro") || err.contains("action"), "{text}: {err}");
        }
        assert!(serde_json::from_str::<MacroSpec>("[-1]").unwrap_err().to_string().contains("negative"));
    }

    #[test]
    fn action_ref_out_of_range_lists_indices() {
        let err = ActionRef::Index(9).resolve(&names(), "RandomConfig.primitives[0]").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`#9`") && text.contains("0 (NOOP), 1 (FIRE)"), "{text}");
    }
}
