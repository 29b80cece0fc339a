//! Config sources (files, `--set key.path=value`), their deep merge, and errors that name the
//! source and the full key and suggest the closest valid one.
//!
//! ```
//! use masp_runner::overrides::{did_you_mean, Source};
//! let s = Source::from_set("agent.learner.lr=1e-4").unwrap();
//! assert_eq!(s.table["agent"]["learner"]["lr"].as_float(), Some(1e-4));
//! // A value that is not TOML is a string: `--set env.game=breakout`.
//! let s = Source::from_set("env.game=breakout").unwrap();
//! assert_eq!(s.table["env"]["game"].as_str(), Some("breakout"));
//! assert_eq!(did_you_mean("lerning_starts", &["lr", "learning_starts"]), "; did you mean `learning_starts`?");
//! ```

use anyhow::{bail, Result};

/// One layer of configuration: a file, the built-in default, or one `--set`.
#[derive(Clone, Debug)]
pub struct Source {
    /// How errors name it: the file's path, or `--set key=value`.
    pub name: String,
    pub table: toml::Table,
}

impl Source {
    /// A TOML document; a syntax error names `name`.
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        match text.parse::<toml::Table>() {
            Ok(table) => Ok(Self { name: name.into(), table }),
            Err(e) => bail!("{name}: not valid TOML: {e}"),
        }
    }

    /// `key.path=value`: the value is parsed as TOML (`3`, `1e-4`, `true`, `"x"`, `[1, 2]`,
    /// `{ kind = "none" }`), and taken as a plain string when it is not TOML (`breakout`).
    pub fn from_set(set: &str) -> Result<Self> {
        let name = format!("--set {set}");
        let Some((path, value)) = set.split_once('=') else {
            bail!("{name}: expected key.path=value, e.g. --set run.frames=400000");
        };
        let path = path.trim();
        let keys: Vec<&str> = path.split('.').map(str::trim).collect();
        if keys.iter().any(|k| k.is_empty()) {
            bail!("{name}: `{path}` is not a key path; write the keys joined by dots, e.g. agent.learner.lr");
        }
        let value = parse_value(value.trim());
        let mut table = toml::Table::new();
        let mut leaf = &mut table;
        for key in &keys[..keys.len() - 1] {
            leaf = leaf
                .entry(key.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("just inserted a table");
        }
        leaf.insert(keys[keys.len() - 1].to_string(), value);
        Ok(Self { name, table })
    }
}

/// A `--set` value: TOML if it parses as a TOML value, else the text as a string.
pub fn parse_value(text: &str) -> toml::Value {
    match format!("v = {text}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("parsed a table with key v"),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

/// Merges `top` into `base`: tables key by key, anything else replaced. A table that
/// changes `kind` (an env or a macro source of another kind) replaces the old one whole,
/// so the old kind's keys do not leak into the new one.
pub fn deep_merge(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => {
                let kind_changes = matches!((b.get("kind"), t.get("kind")), (Some(x), Some(y)) if x != y);
                if kind_changes {
                    *b = t;
                } else {
                    deep_merge(b, t);
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The last source that sets `path` (dotted), or all of them joined.
pub fn source_of(sources: &[Source], path: &str) -> String {
    for s in sources.iter().rev() {
        if get_path(&s.table, path).is_some() {
            return s.name.clone();
        }
    }
    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    if names.is_empty() {
        "config".into()
    } else {
        names.join(" + ")
    }
}

fn get_path<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut keys = path.split('.');
    let mut value = table.get(keys.next()?)?;
    for key in keys {
        value = value.as_table()?.get(key)?;
    }
    Some(value)
}

/// The dotted path of the first string value equal to `name` under `table`.
fn find_string(table: &toml::Table, name: &str, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::String(s) if s == name => return Some(path),
            toml::Value::Table(t) => {
                if let Some(found) = find_string(t, name, &path) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

/// The candidate closest to `name` (Jaro-Winkler; normalised Damerau-Levenshtein breaks
/// near ties), if any is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let score = |c: &str| {
        let prefix = name.contains(c) || c.contains(name);
        let s = strsim::jaro_winkler(name, c).max(strsim::normalized_damerau_levenshtein(name, c));
        if prefix && !c.is_empty() {
            s.max(0.8)
        } else {
            s
        }
    };
    candidates
        .iter()
        .map(|c| (score(c), *c))
        .filter(|(s, _)| *s >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"`, or nothing when no candidate is close.
pub fn did_you_mean(name: &str, candidates: &[&str]) -> String {
    closest(name, candidates).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

/// serde's `expected `a`, `b`` list from a message, in order.
fn expected_list(message: &str) -> Vec<String> {
    let Some(at) = message.find("expected") else { return Vec::new() };
    message[at..].split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The first back-quoted word of `message` (serde's unknown field or variant).
fn first_quoted(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// Rewrites a deserialisation error of the merged config: the source, the full key, and for
/// an unknown key or name the closest valid one.
pub fn explain(err: &toml::de::Error, sources: &[Source]) -> anyhow::Error {
    let message = err.message().to_string();
    // toml's Display ends with "in `a.b`" (the table holding the bad key) when it knows it.
    let shown = err.to_string();
    let at = shown
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("in `").and_then(|l| l.strip_suffix('`')))
        .unwrap_or("")
        .to_string();
    let join = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { format!("{a}.{b}") };
    if message.starts_with("unknown field") {
        let field = first_quoted(&message).unwrap_or("?").to_string();
        let key = join(&at, &field);
        let valid = expected_list(&message);
        let valid_refs: Vec<&str> = valid.iter().map(String::as_str).collect();
        let hint = match closest(&field, &valid_refs) {
            Some(c) => format!("; did you mean `{}`?", join(&at, c)),
            None => String::new(),
        };
        let table = if at.is_empty() { "the top level".to_string() } else { format!("[{at}]") };
        return anyhow::anyhow!(
            "{}: unknown key `{key}`{hint} (valid keys in {table}: {})",
            source_of(sources, &key),
            valid.join(", ")
        );
    }
    if message.starts_with("unknown variant") {
        let name = first_quoted(&message).unwrap_or("?").to_string();
        // serde may only know the enclosing table; find the key that holds the name.
        let at = sources
            .iter()
            .rev()
            .find_map(|s| find_string(&s.table, &name, ""))
            .filter(|path| path.starts_with(at.as_str()))
            .unwrap_or(at);
        let valid = expected_list(&message);
        let valid_refs: Vec<&str> = valid.iter().map(String::as_str).collect();
        return anyhow::anyhow!(
            "{}: unknown value `{name}`{}{}; valid values: {}",
            source_of(sources, &at),
            if at.is_empty() { String::new() } else { format!(" in `{at}`") },
            did_you_mean(&name, &valid_refs),
            valid.join(", ")
        );
    }
    if at.is_empty() {
        anyhow::anyhow!("{}: {message}", source_of(sources, ""))
    } else {
        anyhow::anyhow!("{}: `{at}`: {message}", source_of(sources, &at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_parse_as_toml_or_string() {
        assert_eq!(parse_value("3"), toml::Value::Integer(3));
        assert_eq!(parse_value("1e-4"), toml::Value::Float(1e-4));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("\"a b\""), toml::Value::String("a b".into()));
        assert_eq!(parse_value("space_invaders"), toml::Value::String("space_invaders".into()));
        assert_eq!(parse_value("[1, 2]").as_array().map(Vec::len), Some(2));
        assert_eq!(parse_value("{ kind = \"none\" }")["kind"].as_str(), Some("none"));
    }

    #[test]
    fn set_builds_nested_tables_and_rejects_bad_paths() {
        let s = Source::from_set("a.b.c = 5").unwrap();
        assert_eq!(s.table["a"]["b"]["c"].as_integer(), Some(5));
        assert!(Source::from_set("no_equals").is_err());
        assert!(Source::from_set("a..b=1").is_err());
        assert!(Source::from_set("=1").is_err());
    }

    #[test]
    fn merge_is_deep_and_kind_changes_replace() {
        let mut base =
            Source::parse("a", "[env]\nkind = \"atari\"\ngame = \"pong\"\n[run]\nseed = 1\nframes = 9")
                .unwrap()
                .table;
        deep_merge(&mut base, Source::from_set("run.seed=2").unwrap().table);
        assert_eq!(base["run"]["seed"].as_integer(), Some(2));
        assert_eq!(base["run"]["frames"].as_integer(), Some(9));
        deep_merge(&mut base, Source::from_set("env.game=breakout").unwrap().table);
        assert_eq!(base["env"]["kind"].as_str(), Some("atari"));
        deep_merge(&mut base, Source::parse("b", "[env]\nkind = \"corridor\"\nlength = 5").unwrap().table);
        assert!(base["env"].get("game").is_none(), "the atari keys went with the kind");
    }

    #[test]
    fn closest_key_suggestions() {
        let keys = ["batch_size", "lr", "adam_eps", "max_grad_norm", "v_min", "v_max", "learning_starts"];
        assert_eq!(closest("learning_start", &keys), Some("learning_starts"));
        assert_eq!(closest("batchsize", &keys), Some("batch_size"));
        assert_eq!(closest("vmin", &keys), Some("v_min"));
        assert_eq!(closest("adam_epsilon", &keys), Some("adam_eps"));
        assert_eq!(closest("zzzzzzzz", &keys), None);
        assert_eq!(did_you_mean("rainbw", &["rainbow", "der", "toy"]), "; did you mean `rainbow`?");
    }

    #[test]
    fn expected_lists_from_serde_messages() {
        assert_eq!(expected_list("unknown field `x`, expected `a` or `b`"), ["a", "b"]);
        assert_eq!(expected_list("unknown field `x`, expected one of `a`, `b`, `c`"), ["a", "b", "c"]);
        assert_eq!(expected_list("unknown field `x`, there are no fields"), Vec::<String>::new());
    }

    #[test]
    fn explain_names_source_key_and_suggestion() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            learning_starts: u64,
            lr: f64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Outer {
            learner: Inner,
        }
        use serde::Deserialize;
        let sources = vec![
            Source::parse("my.toml", "[learner]\nlr = 1.0\nlearning_start = 3").unwrap(),
            Source::from_set("learner.lr=2.0").unwrap(),
        ];
        let mut table = toml::Table::new();
        for s in &sources {
            deep_merge(&mut table, s.table.clone());
        }
        let err = Outer::deserialize(toml::Value::Table(table)).unwrap_err();
        let msg = explain(&err, &sources).to_string();
        assert!(msg.starts_with("my.toml: unknown key `learner.learning_start`"), "{msg}");
        assert!(msg.contains("did you mean `learner.learning_starts`?"), "{msg}");
    }
}
