//! TensorBoard event files read back by a reader written from the format's description
//! (TFRecord framing with masked CRC-32C, `Event` / `Summary` protocol buffers), so a wrong
//! length, CRC or field number fails here: the writer's own and a training run's, across
//! a resume.

use std::path::{Path, PathBuf};
use std::process::Command;

use masp_runner::EventWriter;

mod common;
use common::fresh_dir;

/// One decoded `Event`.
#[derive(Debug, Default, PartialEq)]
struct Event {
    wall_time: f64,
    step: u64,
    file_version: Option<String>,
    /// The summary's `(tag, simple_value)` pairs.
    scalars: Vec<(String, f32)>,
}

/// TFRecord: `crc32c` rotated right by 15 bits plus 0xa282ead8.
fn masked(data: &[u8]) -> u32 {
    crc32c::crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A protobuf field: its number and its payload (varint and fixed values as little-endian
/// bytes, length-delimited ones as their bytes).
fn fields(mut data: &[u8]) -> Vec<(u64, Vec<u8>)> {
    fn varint(data: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (b, rest) = data.split_first().expect("a truncated varint");
            *data = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("a varint longer than 10 bytes")
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data);
        let payload = match key & 7 {
            0 => varint(&mut data).to_le_bytes().to_vec(),
            1 => {
                let (v, rest) = data.split_at(8);
                data = rest;
                v.to_vec()
            }
            2 => {
                let len = varint(&mut data) as usize;
                let (v, rest) = data.split_at(len);
                data = rest;
                v.to_vec()
            }
            5 => {
                let (v, rest) = data.split_at(4);
                data = rest;
                v.to_vec()
            }
            wire => panic!("wire type {wire} is not written by TensorBoard writers"),
        };
        out.push((key >> 3, payload));
    }
    out
}

fn decode_event(data: &[u8]) -> Event {
    let mut e = Event::default();
    for (field, payload) in fields(data) {
        match field {
            1 => e.wall_time = f64::from_le_bytes(payload.try_into().unwrap()),
            2 => e.step = u64::from_le_bytes(payload.try_into().unwrap()),
            3 => e.file_version = Some(String::from_utf8(payload).unwrap()),
            5 => {
                for (f, value) in fields(&payload) {
                    assert_eq!(f, 1, "Summary has only `value`s");
                    let (mut tag, mut v) = (String::new(), None);
                    for (f, x) in fields(&value) {
                        match f {
                            1 => tag = String::from_utf8(x).unwrap(),
                            2 => v = Some(f32::from_le_bytes(x.try_into().unwrap())),
                            f => panic!("Summary.Value field {f}"),
                        }
                    }
                    e.scalars.push((tag, v.expect("a simple_value")));
                }
            }
            f => panic!("Event field {f}"),
        }
    }
    e
}

/// Reads a TFRecord file of events, checking every length and both CRCs.
fn read_events(path: &Path) -> Result<Vec<Event>, String> {
    let bytes = std::fs::read(path).unwrap();
    let mut rest = &bytes[..];
    let mut events = Vec::new();
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        if rest.len() < 12 {
            return Err(format!("a truncated record header at byte {at}"));
        }
        let (len_bytes, tail) = rest.split_at(8);
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(tail[..4].try_into().unwrap());
        if crc != masked(len_bytes) {
            return Err(format!("the length CRC at byte {at} is wrong"));
        }
        let tail = &tail[4..];
        if tail.len() < len + 4 {
            return Err(format!("the record at byte {at} is cut off"));
        }
        let (data, tail) = tail.split_at(len);
        if u32::from_le_bytes(tail[..4].try_into().unwrap()) != masked(data) {
            return Err(format!("the data CRC of the record at byte {at} is wrong"));
        }
        events.push(decode_event(data));
        rest = &tail[4..];
    }
    Ok(events)
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn written_events_read_back_with_valid_framing() {
    let dir = fresh_dir("tensorboard", "writer");
    let mut w = EventWriter::create(&dir).unwrap();
    w.scalars(1000, &[("episode_score", -20.5), ("loss", 0.25)]).unwrap();
    w.scalars(300_000_000_000, &[("fps", 1234.5)]).unwrap();
    let path = w.path().to_path_buf();
    drop(w);
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("events.out.tfevents.") && name.split('.').count() >= 5, "{name}");

    let events = read_events(&path).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(events.iter().all(|e| (now - e.wall_time).abs() < 60.0), "wall times are now: {events:?}");
    assert_eq!(events[1].step, 1000);
    assert_eq!(events[1].scalars, [("episode_score".to_string(), -20.5), ("loss".to_string(), 0.25)]);
    assert_eq!(
        (events[2].step, &events[2].scalars[..]),
        (300_000_000_000, &[("fps".to_string(), 1234.5)][..])
    );

    // The reader is strict: any flipped byte of the data or the length is caught.
    let good = std::fs::read(&path).unwrap();
    for (at, what) in [(20, "data CRC"), (2, "length CRC")] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        let err = read_events(&path).unwrap_err();
        assert!(err.contains(what), "byte {at}: {err}");
    }
}

/// Runs `masp train ARGS`; the run folder.
fn train(args: &[&str]) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_masp"))
        .arg("train")
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "masp train {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim())
}

#[test]
fn training_logs_metrics_to_tensorboard_and_a_resume_keeps_them() {
    let out = fresh_dir("tensorboard", "train");
    let toy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/toy.toml");
    let toy = toy.to_str().unwrap();
    // An unreachable target so that each session runs to its budget.
    let common =
        ["--set", "run.target_score=2.0", "--set", "run.eval_episodes=0", "--set", "run.log_interval=200"];
    let mut args = vec!["--config", toy, "--out", out.to_str().unwrap(), "--set", "run.frames=600"];
    args.extend_from_slice(&common);
    let run = train(&args);
    let tb = run.join("tb");
    let first: Vec<Event> = event_files(&tb).iter().flat_map(|f| read_events(f).unwrap()).collect();
    let steps = |events: &[Event]| {
        events.iter().filter(|e| e.file_version.is_none()).map(|e| e.step).collect::<Vec<_>>()
    };
    let first_steps = steps(&first);

    // The same rows as metrics.csv, every non-empty cell but frames.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(first_steps, rows.iter().map(|r| r[0].parse::<u64>().unwrap()).collect::<Vec<_>>());
    for (event, row) in first.iter().filter(|e| e.file_version.is_none()).zip(&rows) {
        let expected: Vec<(String, f32)> = header
            .iter()
            .zip(row)
            .skip(1)
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.to_string(), v.parse::<f64>().unwrap() as f32))
            .collect();
        assert_eq!(event.scalars.len(), expected.len());
        for ((tag, value), (column, cell)) in event.scalars.iter().zip(&expected) {
            assert_eq!(tag, column);
            // metrics.csv rounds fps to one decimal.
            let tolerance = if tag == "fps" { 0.05 + 1e-3 * cell.abs() } else { 0.0 };
            assert!((value - cell).abs() <= tolerance, "{tag}: {value} against {cell} in metrics.csv");
        }
    }
    assert!(first.iter().any(|e| e.scalars.iter().any(|(t, _)| t == "loss")), "the toy updates by frame 600");

    let resumed = train(&["--resume", run.to_str().unwrap(), "--set", "run.frames=1200"]);
    assert_eq!(resumed, run);
    let all: Vec<Event> = event_files(&tb).iter().flat_map(|f| read_events(f).unwrap()).collect();
    let all_steps = steps(&all);
    // Files sort by their start time (a session started in the same second appends).
    assert!(all_steps.starts_with(&first_steps), "earlier events kept: {all_steps:?}");
    assert!(all_steps.iter().any(|&s| s > 1000), "the resumed session logs too: {all_steps:?}");
}
