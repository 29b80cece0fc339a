//! stable-retro's game integrations: `data.json` (RAM variables), `scenario.json` (reward and
//! done rules, crop), `metadata.json` (default state), `rom.sha` (the ROM's sha1), and the
//! `.state` files (gzip of the core's serialised state).
//!
//! Only the variable-based rules are implemented; a scenario that needs stable-retro's Lua
//! interpreter fails to load with [`Error::LuaScenario`].
//!
//! ```no_run
//! let game = retro_env::Integration::load("Airstriker-Genesis-v0")?;
//! assert_eq!(game.default_state.as_deref(), Some("Level1"));
//! # Ok::<(), retro_env::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{io, Error, Result};
use crate::variable::Variable;

/// The folder of stable-retro's "stable" integrations in the pinned sdist.
pub fn integrations_dir() -> PathBuf {
    Path::new(retro_sys::SOURCE_DIR).join("stable_retro/data/stable")
}

/// The names of all integrations (`Airstriker-Genesis-v0`, ...), sorted.
pub fn available_games() -> Result<Vec<String>> {
    let dir = integrations_dir();
    let mut games: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("rom.sha").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    games.sort();
    Ok(games)
}

/// How a scenario combines its done conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// Done when any condition holds (stable-retro's default).
    Any,
    /// Done when all conditions hold.
    All,
}

/// A comparison of a variable's value, as `scenario.json` writes it (`"op": "equal"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Equal(i64),
    NotEqual(i64),
    LessThan(i64),
    GreaterThan(i64),
    LessOrEqual(i64),
    GreaterOrEqual(i64),
    Zero,
    Nonzero,
    Negative,
    Positive,
}

impl Op {
    pub fn holds(self, v: i64) -> bool {
        match self {
            Op::Equal(r) => v == r,
            Op::NotEqual(r) => v != r,
            Op::LessThan(r) => v < r,
            Op::GreaterThan(r) => v > r,
            Op::LessOrEqual(r) => v <= r,
            Op::GreaterOrEqual(r) => v >= r,
            Op::Zero => v == 0,
            Op::Nonzero => v != 0,
            Op::Negative => v < 0,
            Op::Positive => v > 0,
        }
    }
}

/// One reward rule: the change of a variable since the last step, times `reward` when it
/// grew and `penalty` when it shrank.
#[derive(Clone, Debug, PartialEq)]
pub struct RewardRule {
    pub variable: String,
    pub reward: f64,
    pub penalty: f64,
}

/// The variable-based part of `scenario.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub reward: Vec<RewardRule>,
    pub done: Vec<(String, Op)>,
    pub combine: Combine,
    /// `[x, y, width, height]` of the screen to keep, if the scenario crops.
    pub crop: Option<[usize; 4]>,
}

/// One game's integration, loaded and checked.
#[derive(Clone, Debug)]
pub struct Integration {
    /// The folder name, e.g. `Airstriker-Genesis-v0`.
    pub name: String,
    pub dir: PathBuf,
    /// `data.json`'s `info`, by name.
    pub variables: BTreeMap<String, Variable>,
    pub scenario: Scenario,
    /// `metadata.json`'s `default_state`, the state a reset starts from.
    pub default_state: Option<String>,
    /// The ROM's sha1 from `rom.sha`, lower case.
    pub rom_sha1: String,
}

impl Integration {
    /// Loads `name` from [`integrations_dir`]; an unknown name lists the closest ones.
    pub fn load(name: &str) -> Result<Integration> {
        let dir = integrations_dir().join(name);
        if !dir.join("rom.sha").is_file() {
            return Err(unknown_game(name));
        }
        Integration::load_from(&dir)
    }

    /// Loads the integration in `dir` (the folder holding `data.json`).
    pub fn load_from(dir: &Path) -> Result<Integration> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let data: DataJson = read_json(&dir.join("data.json"))?;
        let mut variables = BTreeMap::new();
        for (var_name, spec) in data.info {
            let variable = Variable::new(spec.address, &spec.ty).map_err(|message| Error::Integration {
                path: dir.join("data.json"),
                message: format!("variable `{var_name}`: {message}"),
            })?;
            variables.insert(var_name, variable);
        }
        let scenario_path = dir.join("scenario.json");
        let scenario = parse_scenario(&name, &scenario_path, &read_json(&scenario_path)?, &variables)?;
        let metadata_path = dir.join("metadata.json");
        let default_state =
            if metadata_path.is_file() { read_json::<Metadata>(&metadata_path)?.default_state } else { None };
        let sha_path = dir.join("rom.sha");
        let rom_sha1 = std::fs::read_to_string(&sha_path)
            .map_err(io(&sha_path))?
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(Integration { name, dir: dir.to_path_buf(), variables, scenario, default_state, rom_sha1 })
    }

    /// The serialised core state of `state` (`Level1`, `Champion.Level1.RyuVsGuile`): the
    /// `<state>.state` file, un-gzipped.
    pub fn state(&self, state: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(format!("{state}.state"));
        if !path.is_file() {
            return Err(Error::Integration {
                path,
                message: format!(
                    "{} has no state `{state}`; it has: {}",
                    self.name,
                    self.states().join(", ")
                ),
            });
        }
        let file = std::fs::File::open(&path).map_err(io(&path))?;
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(file).read_to_end(&mut raw).map_err(io(&path))?;
        Ok(raw)
    }

    /// The names of the `.state` files, sorted.
    pub fn states(&self) -> Vec<String> {
        let mut states: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".state").map(str::to_owned))
            .collect();
        states.sort();
        states
    }

    /// The variable named `name`, or an error naming the game's variables.
    pub fn variable(&self, name: &str) -> Result<&Variable> {
        self.variables.get(name).ok_or_else(|| Error::Integration {
            path: self.dir.join("data.json"),
            message: format!(
                "{} has no variable `{name}`; it has: {}",
                self.name,
                self.variables.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

fn unknown_game(name: &str) -> Error {
    let wanted = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, String)> = available_games()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| {
            let lower = g.to_ascii_lowercase();
            // Prefix words shared, a cheap closeness that needs no edit-distance crate.
            let common = lower.chars().zip(wanted.chars()).take_while(|(a, b)| a == b).count();
            (common >= 4 || lower.contains(&wanted)).then_some((usize::MAX - common, g))
        })
        .collect();
    scored.sort();
    Error::UnknownGame {
        name: name.to_owned(),
        suggestions: scored.into_iter().take(5).map(|(_, g)| g).collect(),
        dir: integrations_dir(),
    }
}

#[derive(Deserialize)]
struct DataJson {
    info: BTreeMap<String, VarSpec>,
}

#[derive(Deserialize)]
struct VarSpec {
    address: u64,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Deserialize)]
struct Metadata {
    default_state: Option<String>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Integration { path: path.to_path_buf(), message: e.to_string() })
}

/// The variable-based reading of a scenario; anything scripted is refused by name.
fn parse_scenario(
    game: &str,
    path: &Path,
    json: &Value,
    variables: &BTreeMap<String, Variable>,
) -> Result<Scenario> {
    let bad = |message: String| Error::Integration { path: path.to_path_buf(), message };
    let lua = |what: &str| Error::LuaScenario {
        game: game.to_owned(),
        path: path.to_path_buf(),
        what: what.into(),
    };
    if json.get("scripts").is_some() {
        return Err(lua("top-level `scripts`"));
    }
    let known = |name: &str| {
        if variables.contains_key(name) {
            Ok(())
        } else {
            Err(bad(format!("the scenario uses `{name}`, which data.json does not define")))
        }
    };

    let mut reward = Vec::new();
    if let Some(r) = json.get("reward") {
        if r.get("script").is_some() {
            return Err(lua(&format!("reward script {}", r["script"])));
        }
        for (name, rule) in r.get("variables").and_then(Value::as_object).into_iter().flatten() {
            known(name)?;
            let number = |key: &str| rule.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            reward.push(RewardRule {
                variable: name.clone(),
                reward: number("reward"),
                penalty: number("penalty"),
            });
        }
    }

    let mut done = Vec::new();
    let mut combine = Combine::Any;
    if let Some(d) = json.get("done") {
        if d.get("script").is_some() {
            return Err(lua(&format!("done script {}", d["script"])));
        }
        combine = match d.get("condition").and_then(Value::as_str) {
            None | Some("any") => Combine::Any,
            Some("all") => Combine::All,
            Some(other) => return Err(bad(format!("unknown done condition `{other}` (any, all)"))),
        };
        for (name, rule) in d.get("variables").and_then(Value::as_object).into_iter().flatten() {
            known(name)?;
            let op = rule.get("op").and_then(Value::as_str).unwrap_or("equal");
            let reference = rule.get("reference").and_then(Value::as_i64);
            done.push((name.clone(), parse_op(op, reference).map_err(|m| bad(format!("`{name}`: {m}")))?));
        }
    }

    let crop = match json.get("crop") {
        None => None,
        Some(v) => {
            let nums: Option<Vec<usize>> =
                v.as_array().map(|a| a.iter().filter_map(|x| x.as_u64().map(|x| x as usize)).collect());
            match nums.as_deref() {
                Some(&[x, y, w, h]) if w > 0 && h > 0 => Some([x, y, w, h]),
                _ => return Err(bad(format!("crop must be [x, y, width, height], got {v}"))),
            }
        }
    };
    Ok(Scenario { reward, done, combine, crop })
}

fn parse_op(op: &str, reference: Option<i64>) -> std::result::Result<Op, String> {
    let r = || reference.ok_or_else(|| format!("op `{op}` needs a `reference`"));
    Ok(match op {
        "equal" => Op::Equal(r()?),
        "not-equal" => Op::NotEqual(r()?),
        "less-than" => Op::LessThan(r()?),
        "greater-than" => Op::GreaterThan(r()?),
        "less-or-equal" => Op::LessOrEqual(r()?),
        "greater-or-equal" => Op::GreaterOrEqual(r()?),
        "zero" => Op::Zero,
        "nonzero" => Op::Nonzero,
        "negative" => Op::Negative,
        "positive" => Op::Positive,
        other => return Err(format!("unsupported op `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(names: &[&str]) -> BTreeMap<String, Variable> {
        names.iter().map(|n| (n.to_string(), Variable::new(0xFF0000, "|u1").unwrap())).collect()
    }

    #[test]
    fn scenario_rules_parse() {
        let json = json!({
            "done": {"condition": "all", "variables": {
                "gameover": {"op": "equal", "reference": 1}, "lives": {"op": "zero"}}},
            "reward": {"variables": {"score": {"reward": 1.0, "penalty": 0.5}}},
            "crop": [0, 16, 256, 200]
        });
        let s =
            parse_scenario("G", Path::new("s.json"), &json, &vars(&["gameover", "lives", "score"])).unwrap();
        assert_eq!(s.combine, Combine::All);
        assert_eq!(s.done, vec![("gameover".into(), Op::Equal(1)), ("lives".into(), Op::Zero)]);
        assert_eq!(s.reward, vec![RewardRule { variable: "score".into(), reward: 1.0, penalty: 0.5 }]);
        assert_eq!(s.crop, Some([0, 16, 256, 200]));
    }

    #[test]
    fn lua_scenarios_are_refused_by_name() {
        let json = json!({"reward": {"script": "lua:reward"}, "scripts": []});
        let err = parse_scenario("Lua-Genesis-v0", Path::new("s.json"), &json, &vars(&[])).unwrap_err();
        assert!(matches!(err, Error::LuaScenario { .. }), "{err}");
        let json = json!({"done": {"script": "lua:isdone"}});
        let err = parse_scenario("Lua-Genesis-v0", Path::new("s.json"), &json, &vars(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Lua-Genesis-v0") && msg.contains("lua:isdone"), "{msg}");
    }

    #[test]
    fn unknown_variables_and_ops_are_errors() {
        let json = json!({"reward": {"variables": {"nope": {"reward": 1.0}}}});
        let err = parse_scenario("G", Path::new("s.json"), &json, &vars(&[])).unwrap_err().to_string();
        assert!(err.contains("`nope`"), "{err}");
        let json = json!({"done": {"variables": {"a": {"op": "sideways"}}}});
        let err = parse_scenario("G", Path::new("s.json"), &json, &vars(&["a"])).unwrap_err().to_string();
        assert!(err.contains("sideways"), "{err}");
    }

    #[test]
    fn ops_compare_as_named() {
        assert!(Op::Equal(10).holds(10) && !Op::Equal(10).holds(9));
        assert!(Op::Zero.holds(0) && !Op::Nonzero.holds(0));
        assert!(Op::LessThan(0).holds(-1) && Op::GreaterOrEqual(3).holds(3));
    }
}
