//! Recorded primitive-action trajectories with their returns: the input of n-gram mining.
//!
//! The file format is documented on [`TrajectorySet`].
//!
//! ```
//! use macro_actions::{TrajectorySet, TrajectoryWriter};
//! let names = ["NOOP", "FIRE", "UP"].map(String::from).to_vec();
//! let mut writer = TrajectoryWriter::new(Vec::new(), &names)?;
//! writer.extend(&[2, 2, 1]);
//! writer.push(0);
//! writer.end_episode(3.0)?;
//! let bytes = writer.finish()?;
//! let set = TrajectorySet::read(bytes.as_slice())?;
//! assert_eq!(set.episodes[0].actions, [2, 2, 1, 0]);
//! assert_eq!(set.episodes[0].episode_return, 3.0);
//! # Ok::<(), macro_actions::Error>(())
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The trajectory file format version this build writes and reads.
pub const TRAJECTORY_FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "macro-actions/trajectories";

/// One finished episode: its primitive actions in order and its return.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trajectory {
    #[serde(rename = "return")]
    pub episode_return: f64,
    pub actions: Vec<usize>,
}

/// A whole trajectory file: the action names it was recorded with, and its episodes.
///
/// The file is JSON lines. The first line is a header naming the format, its version and
/// the primitive action names; every further line is one finished episode:
///
/// ```text
/// {"format":"macro-actions/trajectories","version":1,"action_names":["NOOP","FIRE","UP"]}
/// {"return":3.0,"actions":[2,2,1,0]}
/// {"return":-1.0,"actions":[0,1]}
/// ```
///
/// One line per episode means an agent can append as it plays (a crash loses at most the
/// episode in progress), and a reader can say which line is wrong. `return` is whatever the
/// writer reports; the game score (`StepInfo::episode_score`) is the natural choice.
/// An agent that plays macros records the primitives actually executed: the first
/// `outcome.steps` of `pool.actions(a)`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrajectorySet {
    pub action_names: Vec<String>,
    pub episodes: Vec<Trajectory>,
}

/// A [`Trajectory`] line written from borrowed actions, so the writer reuses its buffer.
#[derive(Serialize)]
struct RecordRef<'a> {
    #[serde(rename = "return")]
    episode_return: f64,
    actions: &'a [usize],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    action_names: Vec<String>,
}

impl TrajectorySet {
    /// Reads the format from any buffered reader. Blank lines are skipped; errors give
    /// the line number (from 1).
    pub fn read(reader: impl BufRead) -> Result<Self> {
        let mut lines = reader.lines().enumerate().map(|(i, l)| (i + 1, l));
        let mut next_line = || -> Result<Option<(usize, String)>> {
            for (n, line) in lines.by_ref() {
                let line = line.map_err(Error::stream)?;
                if !line.trim().is_empty() {
                    return Ok(Some((n, line)));
                }
            }
            Ok(None)
        };
        let (n, line) = next_line()?
            .ok_or(Error::Trajectory { line: 1, reason: "the file is empty: expected a header".into() })?;
        let header = parse_header(n, &line)?;
        let num_actions = header.action_names.len();
        let mut episodes = Vec::new();
        while let Some((n, line)) = next_line()? {
            let t: Trajectory = serde_json::from_str(&line)
                .map_err(|e| Error::Trajectory { line: n, reason: format!("not an episode record: {e}") })?;
            if let Some(position) = t.actions.iter().position(|&a| a >= num_actions) {
                return Err(Error::Trajectory {
                    line: n,
                    reason: format!(
                        "action {} at position {position} is not one of the header's {num_actions} actions",
                        t.actions[position]
                    ),
                });
            }
            episodes.push(t);
        }
        Ok(Self { action_names: header.action_names, episodes })
    }

    /// Reads a trajectory file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Self::read(BufReader::new(file)).map_err(|e| match e {
            Error::Io { path: None, error } => Error::io(path, error),
            e => e.in_file(path),
        })
    }

    /// Writes the whole set in the file format.
    pub fn write(&self, out: impl Write) -> Result<()> {
        let mut writer = TrajectoryWriter::new(out, &self.action_names)?;
        for t in &self.episodes {
            writer.extend(&t.actions);
            writer.end_episode(t.episode_return)?;
        }
        writer.finish().map(|_| ())
    }

    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        self.write(BufWriter::new(file)).map_err(|e| match e {
            Error::Io { path: None, error } => Error::io(path, error),
            e => e.in_file(path),
        })
    }
}

fn parse_header(line_no: usize, line: &str) -> Result<Header> {
    let bad = |reason: String| Error::Trajectory { line: line_no, reason };
    // Check the format and version before the fields, so another version's header is
    // reported as such.
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| bad(format!("not a JSON header: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
        return Err(bad(format!(
            "the header must have \"format\": \"{FORMAT_NAME}\"; is this a trajectory file?"
        )));
    }
    match value.get("version") {
        Some(v) if v.as_u64() == Some(u64::from(TRAJECTORY_FORMAT_VERSION)) => {}
        found => {
            return Err(Error::UnsupportedVersion {
                what: "trajectory file",
                found: found.map_or("(none)".into(), |v| v.to_string()),
                supported: TRAJECTORY_FORMAT_VERSION,
            })
        }
    }
    serde_json::from_value(value).map_err(|e| bad(format!("bad header: {e}")))
}

/// Writes a trajectory file while an agent plays: [`push`](Self::push) each primitive,
/// then [`end_episode`](Self::end_episode) with the return, which writes the episode's line.
pub struct TrajectoryWriter<W: Write> {
    out: W,
    num_actions: usize,
    episode: Vec<usize>,
    /// Lines written so far (the header is line 1), for error messages.
    lines: usize,
}

impl TrajectoryWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes the header.
    pub fn create(path: impl AsRef<Path>, action_names: &[String]) -> Result<Self> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Self::new(BufWriter::new(file), action_names).map_err(|e| match e {
            Error::Io { path: None, error } => Error::io(path, error),
            e => e,
        })
    }
}

impl<W: Write> TrajectoryWriter<W> {
    /// Writes the header for `action_names` to `out`.
    pub fn new(mut out: W, action_names: &[String]) -> Result<Self> {
        let header = Header {
            format: FORMAT_NAME.into(),
            version: TRAJECTORY_FORMAT_VERSION,
            action_names: action_names.to_vec(),
        };
        let line = serde_json::to_string(&header).expect("a header always serialises");
        writeln!(out, "{line}").map_err(Error::stream)?;
        Ok(Self { out, num_actions: action_names.len(), episode: Vec::new(), lines: 1 })
    }

    /// Records one primitive action of the episode in progress. Panics if `action` is not
    /// one of the header's actions, like stepping an environment with it would.
    pub fn push(&mut self, action: usize) {
        assert!(
            action < self.num_actions,
            "action {action} is out of range: the file has {} actions",
            self.num_actions
        );
        self.episode.push(action);
    }

    /// Records several primitive actions, e.g. the executed part of a macro.
    pub fn extend(&mut self, actions: &[usize]) {
        for &a in actions {
            self.push(a);
        }
    }

    /// Actions recorded in the episode in progress.
    pub fn episode_len(&self) -> usize {
        self.episode.len()
    }

    /// Writes the episode in progress with its return and starts a new one. A non-finite
    /// return is refused (JSON cannot hold it) and the episode is kept.
    pub fn end_episode(&mut self, episode_return: f64) -> Result<()> {
        if !episode_return.is_finite() {
            return Err(Error::Trajectory {
                line: self.lines + 1,
                reason: format!("the episode return {episode_return} is not finite"),
            });
        }
        let record = RecordRef { episode_return, actions: &self.episode };
        let line = serde_json::to_string(&record).expect("an episode always serialises");
        self.episode.clear();
        writeln!(self.out, "{line}").map_err(Error::stream)?;
        self.lines += 1;
        Ok(())
    }

    /// Drops the episode in progress without writing it (e.g. one cut off by the end of a
    /// run, whose return is not known).
    pub fn discard_episode(&mut self) {
        self.episode.clear();
    }

    /// Flushes and returns the writer; an unfinished episode is not written.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(Error::stream)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["NOOP", "FIRE", "UP"].map(String::from).to_vec()
    }

    fn read(text: &str) -> Result<TrajectorySet> {
        TrajectorySet::read(text.as_bytes())
    }

    const HEADER: &str =
        r#"{"format":"macro-actions/trajectories","version":1,"action_names":["NOOP","FIRE","UP"]}"#;

    #[test]
    fn writer_output_is_the_documented_format() {
        let mut w = TrajectoryWriter::new(Vec::new(), &names()).unwrap();
        w.extend(&[2, 2, 1, 0]);
        w.end_episode(3.0).unwrap();
        w.extend(&[0, 1]);
        w.end_episode(-1.0).unwrap();
        w.push(2);
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            format!(
                "{HEADER}\n{{\"return\":3.0,\"actions\":[2,2,1,0]}}\n{{\"return\":-1.0,\"actions\":[0,1]}}\n"
            )
        );
    }

    #[test]
    fn files_round_trip() {
        let set = TrajectorySet {
            action_names: names(),
            episodes: vec![
                Trajectory { episode_return: 0.5, actions: vec![] },
                Trajectory { episode_return: 1e9, actions: vec![2, 1, 0, 0, 2] },
            ],
        };
        let path = std::env::temp_dir().join(format!("macro-actions-traj-{}.jsonl", std::process::id()));
        set.save(&path).unwrap();
        assert_eq!(TrajectorySet::load(&path).unwrap(), set);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn malformed_files_name_the_line() {
        let line_of = |text: &str| match read(text).unwrap_err() {
            Error::Trajectory { line, reason } => (line, reason),
            e => panic!("unexpected {e}"),
        };
        assert_eq!(line_of("").0, 1);
        assert!(line_of("{\"actions\":[1]}").1.contains("is this a trajectory file?"));
        assert!(line_of("not json").1.contains("not a JSON header"));
        let (line, reason) = line_of(&format!("{HEADER}\n\n{{\"return\":1,\"actions\":[0,3]}}"));
        assert_eq!(line, 3);
        assert!(reason.contains("action 3 at position 1"), "{reason}");
        let (line, reason) =
            line_of(&format!("{HEADER}\n{{\"return\":1,\"actions\":[0]}}\n{{\"actions\":[0]}}"));
        assert_eq!(line, 3);
        assert!(reason.contains("missing field `return`"), "{reason}");
        assert_eq!(line_of(&format!("{HEADER}\n{{\"return\":1,\"actions\":[-1]}}")).0, 2);
        assert_eq!(line_of(&format!("{HEADER}\n{{\"return\":1,\"actions\":[0]")).0, 2, "a cut-off last line");
        let other = HEADER.replace("\"version\":1", "\"version\":2");
        assert!(matches!(read(&other), Err(Error::UnsupportedVersion { what: "trajectory file", .. })));
    }

    #[test]
    fn non_finite_returns_are_refused_and_the_episode_kept() {
        let mut w = TrajectoryWriter::new(Vec::new(), &names()).unwrap();
        w.extend(&[1, 2]);
        assert!(matches!(w.end_episode(f64::NAN), Err(Error::Trajectory { line: 2, .. })));
        assert_eq!(w.episode_len(), 2);
        w.end_episode(1.0).unwrap();
        assert_eq!(w.episode_len(), 0);
    }

    #[test]
    #[should_panic(expected = "action 3 is out of range")]
    fn pushing_an_unknown_action_panics() {
        TrajectoryWriter::new(Vec::new(), &names()).unwrap().push(3);
    }
}
