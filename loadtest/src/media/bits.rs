//! Bit-level writing and reading for H.264 parameter sets and slice headers.
//!
//! Owns [`BitWriter`] (MSB first, Exp-Golomb `ue(v)`/`se(v)`, RBSP trailing bits),
//! [`BitReader`] (the inverse, bounds-checked: reading past the end is an error, never a
//! panic) and the emulation-prevention transform between RBSP and NAL unit payload.

use crate::error::{Error, Result};

/// Writes bits MSB first into a byte vector.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    cur: u8,
    used: u8,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes one bit.
    pub fn bit(&mut self, b: bool) {
        self.cur = (self.cur << 1) | u8::from(b);
        self.used += 1;
        if self.used == 8 {
            self.bytes.push(self.cur);
            self.cur = 0;
            self.used = 0;
        }
    }

    /// Writes the `n` low bits of `v`, most significant first (`n` ≤ 32).
    pub fn bits(&mut self, v: u32, n: u8) {
        for i in (0..n.min(32)).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// Writes `ue(v)`.
    pub fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros() as u8; // bits in x
        for _ in 1..len {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit((x >> i) & 1 == 1);
        }
    }

    /// Writes `se(v)`.
    pub fn se(&mut self, v: i32) {
        let mapped = if v > 0 {
            (v as u32) * 2 - 1
        } else {
            v.unsigned_abs() * 2
        };
        self.ue(mapped);
    }

    /// Appends `rbsp_trailing_bits` and returns the bytes.
    pub fn finish_rbsp(mut self) -> Vec<u8> {
        self.bit(true);
        while self.used != 0 {
            self.bit(false);
        }
        self.bytes
    }
}

/// Reads bits MSB first; every read is bounds-checked.
#[derive(Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Reader over `data` (an RBSP: emulation prevention already removed).
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Reads one bit.
    pub fn bit(&mut self) -> Result<bool> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| Error::Media("bitstream ended".into()))?;
        let b = (byte >> (7 - (self.pos % 8))) & 1 == 1;
        self.pos += 1;
        Ok(b)
    }

    /// Reads `n` ≤ 32 bits.
    pub fn bits(&mut self, n: u8) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..n.min(32) {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Ok(v)
    }

    /// Reads `ue(v)` (at most 31 leading zeros).
    pub fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0u8;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(Error::Media("ue(v) too long".into()));
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// Reads `se(v)`.
    pub fn se(&mut self) -> Result<i32> {
        let k = self.ue()?;
        let mag = k.div_ceil(2) as i32;
        Ok(if k % 2 == 1 { mag } else { -mag })
    }
}

/// Inserts emulation-prevention bytes (0x03 after two zeros before a byte ≤ 3).
pub fn add_emulation_prevention(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Removes emulation-prevention bytes (the inverse of [`add_emulation_prevention`]).
pub fn remove_emulation_prevention(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_round_trip() {
        let mut w = BitWriter::new();
        let values = [0u32, 1, 2, 3, 7, 8, 39, 29, 255, 65_535, u32::MAX - 1];
        for v in values {
            w.ue(v);
        }
        for v in [-3i32, 0, 5, -100] {
            w.se(v);
        }
        w.bits(0b101, 3);
        let bytes = w.finish_rbsp();
        let mut r = BitReader::new(&bytes);
        for v in values {
            assert_eq!(r.ue().unwrap(), v);
        }
        for v in [-3i32, 0, 5, -100] {
            assert_eq!(r.se().unwrap(), v);
        }
        assert_eq!(r.bits(3).unwrap(), 0b101);
        assert!(r.bit().unwrap(), "stop bit");
    }

    #[test]
    fn known_codes() {
        let mut w = BitWriter::new();
        w.ue(0); // 1
        w.ue(1); // 010
        w.ue(2); // 011
        w.bit(true); // pad to 8 bits: 1 010 011 1
        assert_eq!(w.finish_rbsp(), vec![0b1010_0111, 0b1000_0000]);
    }

    #[test]
    fn reader_is_bounded() {
        let mut r = BitReader::new(&[0, 0, 0, 0, 0]);
        assert!(r.ue().is_err());
        let mut r = BitReader::new(&[]);
        assert!(r.bit().is_err());
    }

    #[test]
    fn emulation_prevention_round_trip() {
        let raw = [0u8, 0, 0, 1, 0, 0, 3, 0, 0, 2, 5, 0, 0];
        let nal = add_emulation_prevention(&raw);
        assert_eq!(nal, vec![0, 0, 3, 0, 1, 0, 0, 3, 3, 0, 0, 3, 2, 5, 0, 0]);
        assert_eq!(remove_emulation_prevention(&nal), raw);
    }
}
