//! TensorBoard event files: scalars written as TensorBoard's `Event` protocol buffers in
//! TFRecord framing, so `tensorboard --logdir runs/` shows a run's metrics.
//!
//! A file holds records, each
//!
//! ```text
//! u64 length (little-endian) | u32 masked_crc32c(length bytes) | data[length] | u32 masked_crc32c(data)
//! masked_crc32c(x) = rotate_right(crc32c(x), 15) + 0xa282ead8   (wrapping)
//! ```
//!
//! and each record is one `Event` (tensorflow/core/util/event.proto): `wall_time` (field 1,
//! double), `step` (2, int64), then `file_version` (3, string; the first record,
//! `brain.Event:2`) or `summary` (5): `Summary { repeated Value value = 1 }`,
//! `Value { string tag = 1; float simple_value = 2 }`. Only these fields are written, encoded
//! by hand: a protobuf code generator would be a larger dependency than the format.
//!
//! ```no_run
//! use masp_runner::EventWriter;
//! let mut tb = EventWriter::create(std::path::Path::new("runs/x/tb"))?;
//! tb.scalars(1000, &[("episode_score", -20.5), ("loss", 0.25)])?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// TensorBoard's event file version, the first record of every file.
const FILE_VERSION: &str = "brain.Event:2";

/// TFRecord's CRC mask: CRCs of data that holds CRCs are themselves weak, so TFRecord
/// stores them rotated and offset.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// `masked_crc32c` of TFRecord framing.
fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data).rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Appends events to one file `events.out.tfevents.{unix time}.{host}` in a folder.
/// Every session (a new run, each resume) opens a new file beside the earlier ones, which
/// TensorBoard reads together.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, starting with the file version.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let path = dir.join(format!("events.out.tfevents.{now}.{}", hostname()));
        // Append: two sessions started in the same second share a file instead of one
        // erasing the other's events.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut writer = Self { path, out: BufWriter::new(file) };
        let mut event = event_header(0);
        field_bytes(&mut event, 3, FILE_VERSION.as_bytes());
        writer.record(&event)?;
        writer.flush()?;
        Ok(writer)
    }

    /// The event file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one event at `step` holding the scalars `(tag, value)`, and flushes, so
    /// TensorBoard sees it while the run goes on.
    pub fn scalars(&mut self, step: u64, scalars: &[(&str, f64)]) -> Result<()> {
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            let mut v = Vec::with_capacity(tag.len() + 8);
            field_bytes(&mut v, 1, tag.as_bytes());
            // simple_value is a float: TensorBoard's scalars are f32.
            key(&mut v, 2, WIRE_FIXED32);
            v.extend_from_slice(&(*value as f32).to_le_bytes());
            field_bytes(&mut summary, 1, &v);
        }
        let mut event = event_header(step);
        field_bytes(&mut event, 5, &summary);
        self.record(&event)?;
        self.flush()
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let write = |out: &mut BufWriter<File>| -> std::io::Result<()> {
            out.write_all(&len)?;
            out.write_all(&masked_crc32c(&len).to_le_bytes())?;
            out.write_all(data)?;
            out.write_all(&masked_crc32c(data).to_le_bytes())
        };
        write(&mut self.out).with_context(|| format!("writing {}", self.path.display()))
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Cuts every event file in `dir` back to the events of steps up to `step` (the file
/// version's step is 0, so it stays), dropping a record torn by a kill; see
/// [`crate::metrics::rewind`]. A missing `dir` is nothing to cut.
pub fn rewind(dir: &Path, step: u64) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("events.out.tfevents.")) {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let kept = records_up_to(&bytes, step);
        if kept.len() < bytes.len() {
            crate::run_dir::replace_file(&path, &kept)?;
        }
    }
    Ok(())
}

/// The whole, intact records of a TFRecord file whose event's step is at most `step`, in order.
fn records_up_to(bytes: &[u8], step: u64) -> Vec<u8> {
    let mut kept = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while rest.len() >= 12 {
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
        let Some(total) = len.checked_add(16).filter(|&t| t <= rest.len()) else { break };
        let data = &rest[12..12 + len];
        let crc = u32::from_le_bytes(rest[12 + len..total].try_into().expect("4 bytes"));
        if masked_crc32c(data) != crc {
            break;
        }
        if event_step(data).is_some_and(|s| s <= step) {
            kept.extend_from_slice(&rest[..total]);
        }
        rest = &rest[total..];
    }
    kept
}

/// The `step` (field 2) of an encoded `Event`, as [`event_header`] writes it first after
/// `wall_time`; 0 when absent, as protobuf reads a missing field.
fn event_step(data: &[u8]) -> Option<u64> {
    let mut rest = data;
    let read_varint = |rest: &mut &[u8]| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, tail) = rest.split_first()?;
            *rest = tail;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    };
    while !rest.is_empty() {
        let key = read_varint(&mut rest)?;
        match (key >> 3, (key & 7) as u8) {
            (2, WIRE_VARINT) => return read_varint(&mut rest),
            (_, WIRE_VARINT) => drop(read_varint(&mut rest)?),
            (_, WIRE_FIXED64) => rest = rest.get(8..)?,
            (_, WIRE_FIXED32) => rest = rest.get(4..)?,
            (_, WIRE_LEN) => {
                let n = usize::try_from(read_varint(&mut rest)?).ok()?;
                rest = rest.get(n..)?;
            }
            _ => return None,
        }
    }
    Some(0)
}

/// Protobuf wire types used here.
const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, WIRE_LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An `Event`'s `wall_time` (now, seconds) and `step`.
fn event_header(step: u64) -> Vec<u8> {
    let wall_time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut event = Vec::with_capacity(64);
    key(&mut event, 1, WIRE_FIXED64);
    event.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut event, 2, WIRE_VARINT);
    varint(&mut event, step);
    event
}

/// The machine's name for the file name, as TensorBoard's writers do (Linux; else
/// `$HOSTNAME`, else `localhost`).
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    // It is part of a file name.
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // crc32c("123456789") = 0xe3069283 (the CRC-32C check value, RFC 3720 B.4).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // Published masked values: the tfrecord_slow package's test vector, and the bytes
        // a3 7f 4b 22 that follow the 8-byte length 24 at the start of every TensorFlow
        // event file (the masked CRC of that length).
        assert_eq!(masked_crc32c(b"1234567890asdfghjkl"), 4_134_599_430);
        assert_eq!(masked_crc32c(&24u64.to_le_bytes()).to_le_bytes(), [0xa3, 0x7f, 0x4b, 0x22]);
    }

    /// The steps of a file's intact records, through the same framing reader.
    fn steps(bytes: &[u8]) -> Vec<u64> {
        let mut steps = Vec::new();
        let mut rest = records_up_to(bytes, u64::MAX);
        while !rest.is_empty() {
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            steps.push(event_step(&rest[12..12 + len]).unwrap());
            rest = rest.split_off(16 + len);
        }
        steps
    }

    #[test]
    fn rewinding_keeps_the_events_up_to_the_step_and_drops_a_torn_record() {
        let dir = std::env::temp_dir().join(format!("masp-tb-rewind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut w = EventWriter::create(&dir).unwrap();
        for step in [100, 200, 300, 1 << 40] {
            w.scalars(step, &[("loss", 0.5)]).unwrap();
        }
        let path = w.path().to_path_buf();
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        assert_eq!(steps(&bytes), [0, 100, 200, 300, 1 << 40]);
        // A kill in the middle of a record leaves its first bytes.
        let whole = bytes.clone();
        bytes.extend_from_slice(&whole[whole.len() - 30..whole.len() - 10]);
        std::fs::write(&path, &bytes).unwrap();
        rewind(&dir, 200).unwrap();
        let kept = std::fs::read(&path).unwrap();
        assert_eq!(steps(&kept), [0, 100, 200]);
        assert!(whole.starts_with(&kept), "kept records are byte-identical");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn varints_are_little_endian_base_128() {
        let enc = |v| {
            let mut out = Vec::new();
            varint(&mut out, v);
            out
        };
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
    }
}
