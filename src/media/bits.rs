//! Bit-level reading and writing for H.264 parameter sets and slice headers: fixed-width
//! fields, Exp-Golomb codes, and the emulation prevention that turns an RBSP into a NAL unit
//! payload (and back).
//!
//! Pure functions and small state machines, used by whichever thread handles media. Every
//! read is bounds-checked and returns `None` past the end; no input can make these panic.

/// Reads bits MSB-first from an RBSP (emulation prevention already removed).
pub struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits consumed so far.
    position: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, position: 0 }
    }

    pub fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.position / 8)?;
        let bit = (byte >> (7 - (self.position % 8))) & 1;
        self.position += 1;
        Some(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned number.
    pub fn bits(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        let mut value: u32 = 0;
        for _ in 0..n {
            value = (value << 1) | u32::from(self.bit()?);
        }
        Some(value)
    }

    /// ue(v): Exp-Golomb, at most 32 leading zeros (values up to 2^32 - 2).
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        let base = (1u64 << zeros) - 1;
        u32::try_from(base + u64::from(rest)).ok()
    }

    /// se(v): signed Exp-Golomb.
    pub fn se(&mut self) -> Option<i32> {
        let code = i64::from(self.ue()?);
        let magnitude = (code + 1) / 2;
        let value = if code % 2 == 1 { magnitude } else { -magnitude };
        i32::try_from(value).ok()
    }
}

/// Writes bits MSB-first into an RBSP.
#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    pub fn bit(&mut self, bit: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if bit {
            if let Some(last) = self.bytes.last_mut() {
                *last |= 1 << (7 - self.used);
            }
        }
        self.used = (self.used + 1) % 8;
    }

    /// The low `n` bits of `value`, most significant first.
    pub fn bits(&mut self, n: u32, value: u32) {
        for i in (0..n.min(32)).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    pub fn ue(&mut self, value: u32) {
        let code = u64::from(value) + 1;
        let length = 64 - code.leading_zeros();
        for _ in 1..length {
            self.bit(false);
        }
        for i in (0..length).rev() {
            self.bit((code >> i) & 1 == 1);
        }
    }

    pub fn se(&mut self, value: i32) {
        let code = if value > 0 {
            (i64::from(value) * 2 - 1) as u32
        } else {
            (-i64::from(value) * 2) as u32
        };
        self.ue(code);
    }

    pub fn byte_aligned(&self) -> bool {
        self.used == 0
    }

    /// Zero bits up to the next byte boundary.
    pub fn align_zero(&mut self) {
        while !self.byte_aligned() {
            self.bit(false);
        }
    }

    /// A whole byte; the writer must be byte aligned (it aligns with zeros first).
    pub fn byte(&mut self, value: u8) {
        self.align_zero();
        self.bytes.push(value);
    }

    /// `rbsp_trailing_bits`: a one, then zeros to the byte boundary; returns the RBSP.
    pub fn finish_rbsp(mut self) -> Vec<u8> {
        self.bit(true);
        self.align_zero();
        self.bytes
    }
}

/// RBSP → NAL payload: a 0x03 after every two zero bytes that precede a byte ≤ 3.
pub fn add_emulation_prevention(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    let mut zeros = 0;
    for &byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// NAL payload → RBSP: drops the 0x03 of every 0x000003 sequence.
pub fn remove_emulation_prevention(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &byte in payload {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_round_trips() {
        let mut writer = BitWriter::default();
        let values = [0u32, 1, 2, 3, 7, 8, 255, 65_535, 1 << 20];
        for v in values {
            writer.ue(v);
        }
        for v in [-5i32, 0, 1, -1, 100, -100_000] {
            writer.se(v);
        }
        writer.bits(5, 0b10110);
        let rbsp = writer.finish_rbsp();
        let mut reader = BitReader::new(&rbsp);
        for v in values {
            assert_eq!(reader.ue(), Some(v));
        }
        for v in [-5i32, 0, 1, -1, 100, -100_000] {
            assert_eq!(reader.se(), Some(v));
        }
        assert_eq!(reader.bits(5), Some(0b10110));
    }

    #[test]
    fn known_codes() {
        let mut writer = BitWriter::default();
        writer.ue(0); // 1
        writer.ue(3); // 00100
        writer.se(-1); // 011
        assert_eq!(writer.finish_rbsp(), vec![0b1001_0001, 0b1100_0000]);
    }

    #[test]
    fn reading_past_the_end_or_junk_is_none() {
        assert_eq!(BitReader::new(&[]).bit(), None);
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), None);
        assert_eq!(BitReader::new(&[0xff]).bits(33), None);
        let mut reader = BitReader::new(&[0b0000_0001]);
        assert_eq!(reader.ue(), None, "the code's value bits run past the end");
    }

    #[test]
    fn emulation_prevention_round_trips() {
        let rbsp = [0, 0, 1, 0, 0, 0, 5, 0, 0, 3, 9];
        let payload = add_emulation_prevention(&rbsp);
        assert_eq!(payload, [0, 0, 3, 1, 0, 0, 3, 0, 5, 0, 0, 3, 3, 9]);
        assert_eq!(remove_emulation_prevention(&payload), rbsp);
    }
}
