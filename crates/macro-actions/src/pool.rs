//! `ActionPool`: the agent's action set, primitives first, then macros, with lookup by
//! index and by identity, validation, and a versioned JSON/TOML file format.
//!
//! The layout, the invariants and the file format are documented on [`ActionPool`].
//!
//! ```
//! use macro_actions::{ActionPool, Macro};
//! let names = ["NOOP", "FIRE", "UP"].map(String::from).to_vec();
//! let pool = ActionPool::new(names, vec![Macro::new(vec![2, 2, 1])])?;
//! assert_eq!(pool.len(), 4);
//! assert_eq!(pool.name(3), "UP+UP+FIRE");
//! assert_eq!(pool.index_of(&[2, 2, 1]), Some(3));
//! assert_eq!(pool.index_of_name("FIRE"), Some(1));
//! let again = ActionPool::from_toml(&pool.to_toml())?;
//! assert_eq!(again, pool);
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::macro_action::{Macro, MacroSpec, NAME_SEPARATOR};

/// The pool file format version this build writes and reads.
pub const POOL_FORMAT_VERSION: u32 = 1;

/// Primitive actions followed by macro-actions, each with a stable identity.
///
/// Action `a` of a pool with `P` primitives is primitive `a` when `a < P` and macro
/// `a - P` otherwise; [`ActionPool::actions`] gives its primitive sequence either way (a
/// primitive is a sequence of one), so an executor treats both alike.
///
/// The file format, version 1 (TOML shown; JSON has the same fields):
///
/// ```toml
/// version = 1
/// primitives = ["NOOP", "FIRE", "UP", "DOWN"]
/// macros = ["UP+UP+FIRE", [3, 3, "FIRE"]]   # names joined by `+`, or lists of names/indices
/// ```
///
/// Built only through validating constructors, so every pool satisfies: at least one
/// primitive; primitive names non-empty, unique and free of `+` and surrounding spaces;
/// every macro non-empty, longer than one step, over valid primitive indices, and distinct
/// from every other macro.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "PoolFile", into = "PoolFile")]
pub struct ActionPool {
    primitives: Vec<String>,
    macros: Vec<Macro>,
    /// Every action's sequence, flattened: action `a` is `flat[offsets[a]..offsets[a + 1]]`.
    /// One contiguous buffer keeps the executor's lookup a pair of loads.
    flat: Vec<usize>,
    offsets: Vec<usize>,
    names: Vec<String>,
    by_sequence: HashMap<Vec<usize>, usize>,
    by_name: HashMap<String, usize>,
}

impl ActionPool {
    /// A pool of `primitive_names` (the environment's actions, in its order) and `macros`.
    /// The error names the first offending primitive or macro entry.
    pub fn new(primitive_names: Vec<String>, macros: Vec<Macro>) -> Result<Self> {
        validate_primitives(&primitive_names)?;
        let p = primitive_names.len();
        let mut by_sequence: HashMap<Vec<usize>, usize> = (0..p).map(|a| (vec![a], a)).collect();
        for (entry, m) in macros.iter().enumerate() {
            let name = || m.name(&primitive_names);
            if m.is_empty() {
                return Err(Error::EmptyMacro { entry });
            }
            if let Some(position) = m.actions().iter().position(|&a| a >= p) {
                return Err(Error::ActionOutOfRange {
                    entry,
                    name: name(),
                    position,
                    action: m.actions()[position] as i64,
                    num_primitives: p,
                });
            }
            if m.len() == 1 {
                return Err(Error::MacroIsPrimitive { entry, name: name(), primitive: m.actions()[0] });
            }
            if let Some(&first) = by_sequence.get(m.actions()) {
                return Err(Error::DuplicateMacro { entry, first: first - p, name: name() });
            }
            by_sequence.insert(m.actions().to_vec(), p + entry);
        }

        let mut flat = Vec::with_capacity(p + macros.iter().map(Macro::len).sum::<usize>());
        let mut offsets = Vec::with_capacity(p + macros.len() + 1);
        offsets.push(0);
        flat.extend(0..p);
        offsets.extend(1..=p);
        for m in &macros {
            flat.extend_from_slice(m.actions());
            offsets.push(flat.len());
        }
        let names: Vec<String> =
            primitive_names.iter().cloned().chain(macros.iter().map(|m| m.name(&primitive_names))).collect();
        let by_name = names.iter().enumerate().map(|(a, n)| (n.clone(), a)).collect();
        Ok(Self { primitives: primitive_names, macros, flat, offsets, names, by_sequence, by_name })
    }

    /// The primitives alone: the action set of an agent without macros.
    pub fn primitives_only(primitive_names: Vec<String>) -> Result<Self> {
        Self::new(primitive_names, Vec::new())
    }

    /// A pool over an environment's actions.
    pub fn for_env(spec: &rl_env::EnvSpec, macros: Vec<Macro>) -> Result<Self> {
        Self::new(spec.action_names.clone(), macros)
    }

    /// The same primitives with other macros (e.g. from another source).
    pub fn with_macros(&self, macros: Vec<Macro>) -> Result<Self> {
        Self::new(self.primitives.clone(), macros)
    }

    /// `A = P + k`, the number of actions an agent chooses among.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Never true: a pool has at least one primitive.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// `P`, the number of primitive actions.
    pub fn num_primitives(&self) -> usize {
        self.primitives.len()
    }

    /// `k`, the number of macros.
    pub fn num_macros(&self) -> usize {
        self.macros.len()
    }

    pub fn is_primitive(&self, action: usize) -> bool {
        action < self.primitives.len()
    }

    pub fn primitive_names(&self) -> &[String] {
        &self.primitives
    }

    /// The macros in pool order; macro `i` is action `num_primitives() + i`.
    pub fn macros(&self) -> &[Macro] {
        &self.macros
    }

    /// The primitive sequence of action `action` (`[action]` for a primitive). Panics if
    /// `action >= len()`, like indexing.
    pub fn actions(&self, action: usize) -> &[usize] {
        &self.flat[self.offsets[action]..self.offsets[action + 1]]
    }

    /// The readable name of `action`, which is also its identity: `UP` or `UP+UP+FIRE`.
    /// Panics if `action >= len()`.
    pub fn name(&self, action: usize) -> &str {
        &self.names[action]
    }

    /// Every action's name in pool order: the identities to save next to anything indexed
    /// by action (a similarity matrix, a network's output layer).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The action whose sequence is `actions` (a primitive for a sequence of one).
    pub fn index_of(&self, actions: &[usize]) -> Option<usize> {
        self.by_sequence.get(actions).copied()
    }

    /// The action named `name` (an identity from [`ActionPool::names`]).
    pub fn index_of_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// For each of this pool's actions, the index of the action with the same identity in
    /// `other`, or `None` where `other` lacks it.
    ///
    /// Identities are compared by name, so pools over different primitive numberings (two
    /// games' ALE minimal action sets) align wherever the names agree.
    pub fn align_to(&self, other: &ActionPool) -> Vec<Option<usize>> {
        self.names.iter().map(|n| other.index_of_name(n)).collect()
    }

    /// The pool as a JSON document in the versioned file format.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&PoolFile::from(self.clone())).expect("a pool always serialises")
    }

    /// The pool as a TOML document in the versioned file format.
    pub fn to_toml(&self) -> String {
        toml::to_string(&PoolFile::from(self.clone())).expect("a pool always serialises")
    }

    /// Reads the JSON file format; errors name the offending entry.
    pub fn from_json(text: &str) -> Result<Self> {
        let parse_err = |e: serde_json::Error| Error::Parse {
            what: "action pool",
            format: "JSON",
            message: e.to_string(),
        };
        // serde would also read a struct from a JSON array, with a baffling message.
        let serde_json::Value::Object(top) = serde_json::from_str(text).map_err(parse_err)? else {
            return Err(Error::Parse {
                what: "action pool",
                format: "JSON",
                message: "expected an object with `version`, `primitives` and `macros`".into(),
            });
        };
        check_version(top.get("version").map(|v| v.to_string()), "JSON", "\"version\": 1")?;
        Self::try_from(serde_json::from_str::<PoolFile>(text).map_err(parse_err)?)
    }

    /// Reads the TOML file format; errors name the offending entry.
    pub fn from_toml(text: &str) -> Result<Self> {
        let parse_err =
            |e: toml::de::Error| Error::Parse { what: "action pool", format: "TOML", message: e.to_string() };
        let probe: VersionProbe<toml::Value> = toml::from_str(text).map_err(parse_err)?;
        check_version(probe.version.map(|v| v.to_string()), "TOML", "version = 1")?;
        Self::try_from(toml::from_str::<PoolFile>(text).map_err(parse_err)?)
    }

    /// Reads a `.json` or `.toml` pool file; errors name the file and the entry.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let format = Format::of(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        match format {
            Format::Json => Self::from_json(&text),
            Format::Toml => Self::from_toml(&text),
        }
        .map_err(|e| e.in_file(path))
    }

    /// Writes a `.json` or `.toml` pool file, chosen by the extension.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = match Format::of(path)? {
            Format::Json => self.to_json(),
            Format::Toml => self.to_toml(),
        };
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }
}

impl PartialEq for ActionPool {
    /// Pools are equal when their primitives and macros are, in the same order; everything
    /// else is derived from those.
    fn eq(&self, other: &Self) -> bool {
        self.primitives == other.primitives && self.macros == other.macros
    }
}

impl Eq for ActionPool {}

impl fmt::Debug for ActionPool {
    /// Names rather than the lookup tables, which would repeat every sequence three times.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionPool")
            .field("primitives", &self.primitives)
            .field("macros", &&self.names[self.primitives.len()..])
            .finish()
    }
}

fn validate_primitives(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Err(Error::InvalidPrimitive {
            index: 0,
            name: String::new(),
            reason: "a pool needs at least one primitive action".into(),
        });
    }
    let mut seen = HashMap::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let bad = |reason: String| Err(Error::InvalidPrimitive { index, name: name.clone(), reason });
        if name.is_empty() {
            return bad("the name is empty".into());
        }
        if name.contains(NAME_SEPARATOR) {
            return bad(format!(
                "names must not contain `{NAME_SEPARATOR}`, which joins names into macro names"
            ));
        }
        if name.trim() != name {
            return bad("names must not start or end with whitespace".into());
        }
        if let Some(first) = seen.insert(name.as_str(), index) {
            return bad(format!("the name repeats primitive action {first}"));
        }
    }
    Ok(())
}

/// The pool file's fields; validated into an [`ActionPool`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    version: u32,
    primitives: Vec<String>,
    macros: Vec<MacroSpec>,
}

/// Reads only the version, so that a file from another version gets a version error
/// rather than a complaint about the fields that version changed. (JSON reads the
/// version from the parsed object instead.)
#[derive(Deserialize)]
struct VersionProbe<V> {
    version: Option<V>,
}

/// `example` is how the current version is written in `format`, for the message.
fn check_version(found: Option<String>, format: &'static str, example: &str) -> Result<()> {
    match found {
        None => Err(Error::Parse {
            what: "action pool",
            format,
            message: format!("missing field `version` (this build writes `{example}`)"),
        }),
        Some(v) if v == POOL_FORMAT_VERSION.to_string() => Ok(()),
        Some(v) => {
            Err(Error::UnsupportedVersion { what: "action pool", found: v, supported: POOL_FORMAT_VERSION })
        }
    }
}

impl TryFrom<PoolFile> for ActionPool {
    type Error = Error;

    fn try_from(file: PoolFile) -> Result<Self> {
        if file.version != POOL_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "action pool",
                found: file.version.to_string(),
                supported: POOL_FORMAT_VERSION,
            });
        }
        validate_primitives(&file.primitives)?;
        let macros = file
            .macros
            .iter()
            .enumerate()
            .map(|(entry, spec)| spec.resolve(entry, &file.primitives))
            .collect::<Result<_>>()?;
        ActionPool::new(file.primitives, macros)
    }
}

impl From<ActionPool> for PoolFile {
    fn from(pool: ActionPool) -> Self {
        let macros = pool.macros.iter().map(|m| MacroSpec::named(m, &pool.primitives)).collect();
        PoolFile { version: POOL_FORMAT_VERSION, primitives: pool.primitives, macros }
    }
}

enum Format {
    Json,
    Toml,
}

impl Format {
    fn of(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Ok(Format::Json),
            Some("toml") => Ok(Format::Toml),
            _ => Err(Error::Io {
                path: Some(path.to_path_buf()),
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "pool files end in .json or .toml, which selects the format",
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["NOOP", "FIRE", "UP", "DOWN"].map(String::from).to_vec()
    }

    fn pool() -> ActionPool {
        ActionPool::new(names(), vec![Macro::new(vec![2, 2, 1]), Macro::new(vec![3, 0])]).unwrap()
    }

    #[test]
    fn primitives_come_first_then_macros() {
        let p = pool();
        assert_eq!((p.len(), p.num_primitives(), p.num_macros()), (6, 4, 2));
        assert_eq!(p.actions(1), [1]);
        assert_eq!(p.actions(4), [2, 2, 1]);
        assert_eq!(p.actions(5), [3, 0]);
        assert_eq!(p.names(), ["NOOP", "FIRE", "UP", "DOWN", "UP+UP+FIRE", "DOWN+NOOP"]);
        assert!(p.is_primitive(3) && !p.is_primitive(4));
        assert_eq!(p.index_of(&[3, 0]), Some(5));
        assert_eq!(p.index_of(&[3]), Some(3));
        assert_eq!(p.index_of(&[3, 3]), None);
        assert_eq!(p.index_of_name("DOWN+NOOP"), Some(5));
        assert_eq!(p.index_of_name("DOWN+UP"), None);
        assert_eq!(
            format!("{p:?}"),
            r#"ActionPool { primitives: ["NOOP", "FIRE", "UP", "DOWN"], macros: ["UP+UP+FIRE", "DOWN+NOOP"] }"#
        );
    }

    #[test]
    fn every_validation_failure_names_its_entry() {
        let m = |v: &[usize]| Macro::new(v.to_vec());
        let err = |macros: Vec<Macro>| ActionPool::new(names(), macros).unwrap_err();
        assert!(matches!(err(vec![m(&[1, 2]), m(&[])]), Error::EmptyMacro { entry: 1 }));
        match err(vec![m(&[1, 2]), m(&[1, 2, 4])]) {
            Error::ActionOutOfRange { entry: 1, position: 2, action: 4, num_primitives: 4, name } => {
                assert_eq!(name, "FIRE+UP+#4")
            }
            e => panic!("unexpected {e}"),
        }
        match err(vec![m(&[1, 2]), m(&[3])]) {
            e @ Error::MacroIsPrimitive { entry: 1, primitive: 3, .. } => {
                assert_eq!(
                    e.to_string(),
                    "macros[1] (DOWN) is the primitive action 3: a macro needs at least two steps"
                )
            }
            e => panic!("unexpected {e}"),
        }
        match err(vec![m(&[1, 2]), m(&[0, 0]), m(&[1, 2])]) {
            e @ Error::DuplicateMacro { entry: 2, first: 0, .. } => {
                assert_eq!(e.to_string(), "macros[2] (FIRE+UP) repeats macros[0]")
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn bad_primitive_names_are_rejected_with_their_index() {
        let bad =
            |names: &[&str]| match ActionPool::primitives_only(names.iter().map(|s| s.to_string()).collect())
            {
                Err(Error::InvalidPrimitive { index, reason, .. }) => (index, reason),
                r => panic!("unexpected {r:?}"),
            };
        assert_eq!(bad(&[]).0, 0);
        assert_eq!(bad(&["A", ""]), (1, "the name is empty".to_string()));
        assert!(bad(&["A", "B+C"]).1.contains("must not contain `+`"));
        assert!(bad(&["A", " B"]).1.contains("whitespace"));
        assert_eq!(bad(&["A", "B", "A"]), (2, "the name repeats primitive action 0".to_string()));
    }

    #[test]
    fn json_and_toml_round_trip_and_are_readable() {
        let p = pool();
        let toml_text = p.to_toml();
        assert!(toml_text.contains("version = 1"), "{toml_text}");
        assert!(toml_text.contains("\"UP+UP+FIRE\""), "{toml_text}");
        assert_eq!(ActionPool::from_toml(&toml_text).unwrap(), p);
        let json_text = p.to_json();
        assert!(json_text.contains("\"DOWN+NOOP\""), "{json_text}");
        assert_eq!(ActionPool::from_json(&json_text).unwrap(), p);
        // The serde impls agree with the file format, so a pool can sit inside a checkpoint.
        let embedded: ActionPool = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(embedded, p);
    }

    #[test]
    fn hand_written_files_may_use_indices_and_names() {
        let p = ActionPool::from_toml(
            r#"
            version = 1
            primitives = ["NOOP", "FIRE", "UP", "DOWN"]
            macros = ["UP + UP + FIRE", [3, "NOOP"]]
            "#,
        )
        .unwrap();
        assert_eq!(p, pool());
    }

    #[test]
    fn malformed_files_give_clear_errors() {
        let toml_err = |text: &str| ActionPool::from_toml(text).unwrap_err();
        let json_err = |text: &str| ActionPool::from_json(text).unwrap_err();
        // Not TOML at all.
        assert!(matches!(toml_err("version = "), Error::Parse { format: "TOML", .. }));
        assert!(matches!(json_err("{"), Error::Parse { format: "JSON", .. }));
        let e = json_err("[1, [\"A\"], []]");
        assert!(
            e.to_string().ends_with("expected an object with `version`, `primitives` and `macros`"),
            "{e}"
        );
        // Version: missing, another, or the wrong type.
        let e = toml_err("primitives = [\"A\"]\nmacros = []");
        assert!(e.to_string().contains("missing field `version`"), "{e}");
        let e = json_err(r#"{"primitives": ["A"], "macros": []}"#);
        assert!(e.to_string().contains("\"version\": 1"), "{e}");
        assert!(matches!(
            toml_err("version = 2\nfuture_field = true"),
            Error::UnsupportedVersion { ref found, supported: 1, .. } if found == "2"
        ));
        assert!(matches!(json_err(r#"{"version": "1"}"#), Error::UnsupportedVersion { .. }));
        // Unknown and missing fields.
        let e = toml_err("version = 1\nprimitives = [\"A\"]\nmacros = []\nmacro = []");
        assert!(e.to_string().contains("unknown field `macro`"), "{e}");
        let e = json_err(r#"{"version": 1, "primitives": ["A", "B"]}"#);
        assert!(e.to_string().contains("missing field `macros`"), "{e}");
        // Entries: a bad name, an index out of range, a negative index, a wrong type.
        let file = |macros: &str| format!("version = 1\nprimitives = [\"L\", \"R\"]\nmacros = [{macros}]");
        match toml_err(&file(r#""L+R", "R+X""#)) {
            Error::UnknownActionName { context, name, .. } => {
                assert_eq!((context.as_str(), name.as_str()), ("macros[1]", "X"))
            }
            e => panic!("unexpected {e}"),
        }
        assert!(matches!(
            toml_err(&file("[0, 1], [1, 5]")),
            Error::ActionOutOfRange { entry: 1, action: 5, .. }
        ));
        let e = toml_err(&file("[0, -1]"));
        assert!(e.to_string().contains("negative"), "{e}");
        let e = toml_err(&file("true"));
        assert!(e.to_string().contains("a string such as \"UP+UP+FIRE\""), "{e}");
        assert!(matches!(toml_err(&file(r#""""#)), Error::EmptyMacro { entry: 0 }));
        assert!(matches!(toml_err(&file(r#""L""#)), Error::MacroIsPrimitive { entry: 0, primitive: 0, .. }));
        assert!(matches!(
            toml_err(&file(r#""L+R", [0, "R"]"#)),
            Error::DuplicateMacro { entry: 1, first: 0, .. }
        ));
        // Primitives checked before macros are resolved against them.
        let e = toml_err("version = 1\nprimitives = [\"A\", \"A\"]\nmacros = []");
        assert!(matches!(e, Error::InvalidPrimitive { index: 1, .. }));
    }

    #[test]
    fn files_name_their_path_and_pick_format_by_extension() {
        let dir = std::env::temp_dir().join(format!("macro-actions-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = pool();
        for ext in ["json", "toml", "TOML"] {
            let path = dir.join(format!("pool.{ext}"));
            p.save(&path).unwrap();
            assert_eq!(ActionPool::load(&path).unwrap(), p, "{ext}");
        }
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "version = 1\nprimitives = [\"A\"]\nmacros = [\"A+B\"]").unwrap();
        let e = ActionPool::load(&bad).unwrap_err();
        assert!(
            matches!(&e, Error::File { error, .. } if matches!(**error, Error::UnknownActionName { .. }))
        );
        assert!(
            e.to_string().starts_with(&format!("{}: macros[0]: unknown action name `B`", bad.display())),
            "{e}"
        );
        assert!(matches!(ActionPool::load(dir.join("missing.json")), Err(Error::Io { .. })));
        assert!(matches!(p.save(dir.join("pool.yaml")), Err(Error::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn alignment_follows_names() {
        let a = pool();
        // The same actions numbered differently, as in another game's minimal action set.
        let b = ActionPool::new(
            ["FIRE", "DOWN", "UP", "NOOP"].map(String::from).to_vec(),
            vec![Macro::new(vec![1, 3]), Macro::new(vec![1, 1])],
        )
        .unwrap();
        assert_eq!(a.align_to(&b), [Some(3), Some(0), Some(2), Some(1), None, Some(4)]);
    }
}
