//! [`Variable`]: one `data.json` RAM variable and its decoding.
//!
//! Types are numpy-like strings: an endianness (`>` big, `<` little, `|` or `=` single
//! byte / native), a kind (`u` unsigned, `i` signed, `d` binary-coded decimal with two digits
//! a byte, `n` one decimal digit a byte) and a size in bytes: `>i2`, `|u1`, `>d4`.
//!
//! Addresses are the 68000's: Genesis work RAM is 64 KiB at 0xFF0000. The core stores it as
//! native 16-bit words, so on a little-endian host the byte at `addr` is
//! `ram[(addr - 0xFF0000) ^ 1]` (stable-retro's `overlay` rule for the Genesis).
//!
//! ```
//! let score = retro_env::Variable::new(0xFF0000, ">d2").unwrap();
//! // The Genesis bytes 0x12 0x34 (BCD for 1234), as the core stores them on little-endian.
//! assert_eq!(score.read(&[0x34, 0x12]), 1234);
//! ```

/// Where Genesis work RAM starts in the 68000's address space (genesis.json's `rambase`).
pub const GENESIS_RAM_BASE: u64 = 0xFF_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unsigned,
    Signed,
    /// Two decimal digits a byte.
    Bcd,
    /// One decimal digit a byte (its low nibble).
    Nibble,
}

/// A typed value at a RAM address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variable {
    /// Offset into work RAM (address minus [`GENESIS_RAM_BASE`]).
    offset: usize,
    size: usize,
    big_endian: bool,
    kind: Kind,
}

impl Variable {
    /// Parses a `data.json` entry; the error says what is wrong with it.
    pub fn new(address: u64, ty: &str) -> Result<Variable, String> {
        let bad = || format!("unsupported type `{ty}` (expected e.g. `>i2`, `|u1`, `>d4`)");
        let mut chars = ty.chars();
        let big_endian = match chars.next() {
            Some('>') => true,
            Some('<' | '|' | '=') => false,
            _ => return Err(bad()),
        };
        let kind = match chars.next() {
            Some('u') => Kind::Unsigned,
            Some('i') => Kind::Signed,
            Some('d') => Kind::Bcd,
            Some('n') => Kind::Nibble,
            _ => return Err(bad()),
        };
        let size: usize = chars.as_str().parse().map_err(|_| bad())?;
        if !(1..=8).contains(&size) {
            return Err(bad());
        }
        let offset =
            address.checked_sub(GENESIS_RAM_BASE).filter(|o| o + size as u64 <= 0x1_0000).ok_or_else(
                || format!("address {address:#x} is outside Genesis work RAM (0xFF0000..0x1000000)"),
            )? as usize;
        Ok(Variable { offset, size, big_endian, kind })
    }

    /// The value in `ram`, the core's work RAM. Panics if `ram` is too short, which a loaded
    /// Genesis game's 64 KiB never is.
    pub fn read(&self, ram: &[u8]) -> i64 {
        let byte = |i: usize| {
            let k = if self.big_endian { i } else { self.size - 1 - i };
            ram[genesis_index(self.offset + k)]
        };
        // Most significant byte first.
        let bytes = (0..self.size).map(byte);
        match self.kind {
            Kind::Unsigned | Kind::Signed => {
                let raw = bytes.fold(0u64, |acc, b| (acc << 8) | u64::from(b));
                if self.kind == Kind::Signed && self.size < 8 {
                    let shift = 64 - 8 * self.size as u32;
                    ((raw << shift) as i64) >> shift
                } else {
                    raw as i64
                }
            }
            Kind::Bcd => bytes.fold(0i64, |acc, b| acc * 100 + i64::from(b >> 4) * 10 + i64::from(b & 0xf)),
            Kind::Nibble => bytes.fold(0i64, |acc, b| acc * 10 + i64::from(b & 0xf)),
        }
    }
}

/// Where the byte at RAM offset `offset` lives in the core's word-swapped buffer.
#[inline]
fn genesis_index(offset: usize) -> usize {
    if cfg!(target_endian = "little") {
        offset ^ 1
    } else {
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 68000 bytes `genesis` laid out as the core stores them on this host.
    fn core_ram(genesis: &[u8]) -> Vec<u8> {
        let mut ram = vec![0u8; genesis.len()];
        for (i, &b) in genesis.iter().enumerate() {
            ram[genesis_index(i)] = b;
        }
        ram
    }

    #[test]
    fn types_decode_like_numpy() {
        let ram = core_ram(&[0xff, 0xfe, 0x12, 0x34, 0x00, 0x03, 0x07, 0x09]);
        let v = |addr: u64, ty: &str| Variable::new(GENESIS_RAM_BASE + addr, ty).unwrap().read(&ram);
        assert_eq!(v(0, ">i2"), -2);
        assert_eq!(v(0, ">u2"), 0xfffe);
        assert_eq!(v(0, "<u2"), 0xfeff);
        assert_eq!(v(1, "|u1"), 0xfe);
        assert_eq!(v(1, "|i1"), -2);
        assert_eq!(v(2, ">d2"), 1234);
        assert_eq!(v(2, "<d2"), 3412);
        assert_eq!(v(4, ">u4"), 0x0003_0709);
        assert_eq!(v(6, ">n2"), 79);
        assert_eq!(v(0, ">i8"), i64::from_be_bytes([0xff, 0xfe, 0x12, 0x34, 0x00, 0x03, 0x07, 0x09]));
    }

    #[test]
    fn odd_addresses_read_the_other_half_of_the_word() {
        // The core's buffer holds the word 0xABCD at offset 0 in host order.
        let ram = 0xABCDu16.to_ne_bytes();
        assert_eq!(Variable::new(GENESIS_RAM_BASE, "|u1").unwrap().read(&ram), 0xAB);
        assert_eq!(Variable::new(GENESIS_RAM_BASE + 1, "|u1").unwrap().read(&ram), 0xCD);
        assert_eq!(Variable::new(GENESIS_RAM_BASE, ">u2").unwrap().read(&ram), 0xABCD);
    }

    #[test]
    fn bad_types_and_addresses_are_refused() {
        for ty in ["i2", ">x2", ">u0", ">u9", ">u", ""] {
            assert!(Variable::new(GENESIS_RAM_BASE, ty).is_err(), "{ty}");
        }
        let err = Variable::new(0x1234, ">u2").unwrap_err();
        assert!(err.contains("0x1234"), "{err}");
        assert!(Variable::new(GENESIS_RAM_BASE + 0xFFFF, ">u2").is_err());
    }
}
