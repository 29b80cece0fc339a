//! A replay buffer's complete state as a byte stream, for checkpoints: frames, per-slot
//! metadata, each env copy's stream position and waiting states, and both priority trees.
//!
//! Format: the magic `RBREPLAY`, a version, the buffer's geometry (checked on load), then
//! each array as a little-endian `u64` length followed by its elements, little-endian. A
//! snapshot is read back into a buffer built with the same configuration, observation spec
//! and number of env copies, so nothing is allocated or resized on load; any mismatch is an
//! error naming what differs. Only each stream's filled slots are stored (a snapshot grows
//! with the transitions held), with their priority-tree leaves; the trees' inner nodes are
//! rebuilt from the leaves, which gives them bit for bit (each node is a function of its
//! children), so sampling after a load is bit-identical to sampling before the save.

use std::io::{Read, Write};

use crate::error::{Error, Result};

pub(crate) const MAGIC: &[u8; 8] = b"RBREPLAY";
/// 2: only the filled slots and their tree leaves (1 held the whole ring and every node).
pub(crate) const VERSION: u64 = 2;

/// Writes the snapshot primitives.
pub(crate) struct Writer<'a> {
    w: &'a mut dyn Write,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(w: &'a mut dyn Write) -> Self {
        Self { w }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.write_all(bytes)
    }

    pub(crate) fn u64(&mut self, x: u64) -> std::io::Result<()> {
        self.w.write_all(&x.to_le_bytes())
    }

    pub(crate) fn f64(&mut self, x: f64) -> std::io::Result<()> {
        self.w.write_all(&x.to_le_bytes())
    }

    pub(crate) fn bytes(&mut self, xs: &[u8]) -> std::io::Result<()> {
        self.u64(xs.len() as u64)?;
        self.w.write_all(xs)
    }

    /// An array of fixed-size elements, converted in chunks to keep the writes large.
    fn array<T: Copy, const N: usize>(&mut self, xs: &[T], le: impl Fn(T) -> [u8; N]) -> std::io::Result<()> {
        self.u64(xs.len() as u64)?;
        let mut buf = Vec::with_capacity(N * 8192);
        for chunk in xs.chunks(8192) {
            buf.clear();
            for &x in chunk {
                buf.extend_from_slice(&le(x));
            }
            self.w.write_all(&buf)?;
        }
        Ok(())
    }

    pub(crate) fn f32s(&mut self, xs: &[f32]) -> std::io::Result<()> {
        self.array(xs, f32::to_le_bytes)
    }

    pub(crate) fn f64s(&mut self, xs: &[f64]) -> std::io::Result<()> {
        self.array(xs, f64::to_le_bytes)
    }

    pub(crate) fn u32s(&mut self, xs: &[u32]) -> std::io::Result<()> {
        self.array(xs, u32::to_le_bytes)
    }

    pub(crate) fn usizes(&mut self, xs: &[usize]) -> std::io::Result<()> {
        self.array(xs, |x| (x as u64).to_le_bytes())
    }
}

/// Reads what [`Writer`] wrote into existing buffers of the right lengths.
pub(crate) struct Reader<'a> {
    r: &'a mut dyn Read,
}

pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    Error::ShapeMismatch {
        what: "replay snapshot".into(),
        expected: "a snapshot of this buffer".into(),
        found: what.into(),
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(r: &'a mut dyn Read) -> Self {
        Self { r }
    }

    fn io(&mut self, buf: &mut [u8]) -> Result<()> {
        self.r.read_exact(buf).map_err(|e| corrupt(format!("truncated or unreadable: {e}")))
    }

    pub(crate) fn raw(&mut self, buf: &mut [u8]) -> Result<()> {
        self.io(buf)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let mut b = [0; 8];
        self.io(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// Reads a header value and checks it against what this buffer has.
    pub(crate) fn expect(&mut self, what: &str, expected: u64) -> Result<()> {
        let found = self.u64()?;
        if found != expected {
            return Err(corrupt(format!("{what} {found}, but this buffer has {expected}")));
        }
        Ok(())
    }

    fn len(&mut self, what: &str, expected: usize) -> Result<()> {
        self.expect(&format!("{what} length"), expected as u64)
    }

    pub(crate) fn bytes(&mut self, what: &str, out: &mut [u8]) -> Result<()> {
        self.len(what, out.len())?;
        self.io(out)
    }

    fn array<T, const N: usize>(
        &mut self,
        what: &str,
        out: &mut [T],
        from: impl Fn([u8; N]) -> T,
    ) -> Result<()> {
        self.len(what, out.len())?;
        let mut buf = vec![0u8; N * 8192];
        for chunk in out.chunks_mut(8192) {
            let bytes = &mut buf[..chunk.len() * N];
            self.io(bytes)?;
            for (x, b) in chunk.iter_mut().zip(bytes.chunks_exact(N)) {
                *x = from(b.try_into().expect("chunks_exact gives N bytes"));
            }
        }
        Ok(())
    }

    pub(crate) fn f32s(&mut self, what: &str, out: &mut [f32]) -> Result<()> {
        self.array(what, out, f32::from_le_bytes)
    }

    pub(crate) fn f64s(&mut self, what: &str, out: &mut [f64]) -> Result<()> {
        self.array(what, out, f64::from_le_bytes)
    }

    pub(crate) fn u32s(&mut self, what: &str, out: &mut [u32]) -> Result<()> {
        self.array(what, out, u32::from_le_bytes)
    }

    pub(crate) fn usizes(&mut self, what: &str, out: &mut [usize]) -> Result<()> {
        self.array(what, out, |b| u64::from_le_bytes(b) as usize)
    }
}
