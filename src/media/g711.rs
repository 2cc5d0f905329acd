//! G.711 (ITU-T G.711 µ-law and A-law) to 16-bit PCM, and the 8 kHz → 48 kHz step that Opus
//! needs, for recording G.711 publishers (MP4 players do not take G.711).
//!
//! Pure code, run on a recorder writer thread (never a worker). Invariants: every byte value
//! decodes (a table of 256); the upsampler keeps its last sample across calls, so packet
//! boundaries leave no click.

/// The two laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// PCMU.
    Mu,
    /// PCMA.
    A,
}

/// One G.711 byte as linear PCM.
pub fn decode(law: Law, byte: u8) -> i16 {
    match law {
        Law::Mu => {
            let u = !byte;
            let exponent = (u >> 4) & 0x07;
            let mantissa = i32::from(u & 0x0f);
            let magnitude = ((mantissa << 3) + 0x84) << exponent;
            let value = magnitude - 0x84;
            (if u & 0x80 != 0 { -value } else { value }) as i16
        }
        Law::A => {
            let a = byte ^ 0x55;
            let exponent = (a >> 4) & 0x07;
            let mantissa = i32::from(a & 0x0f);
            let magnitude = match exponent {
                0 => (mantissa << 4) + 8,
                e => ((mantissa << 4) + 0x108) << (e - 1),
            };
            (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
        }
    }
}

/// 8 kHz to 48 kHz by linear interpolation (the Opus encoder is told the signal is
/// narrowband, so it low-passes the images away).
#[derive(Debug, Default)]
pub struct Upsampler {
    last: i16,
}

impl Upsampler {
    /// Append six output samples per input sample to `out`.
    pub fn push(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(input.len() * 6);
        for &sample in input {
            let (from, to) = (i32::from(self.last), i32::from(sample));
            for step in 1..=6 {
                out.push((from + (to - from) * step / 6) as i16);
            }
            self.last = sample;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_decode() {
        // µ-law: 0xff and 0x7f are the two zeros, 0x00 the most negative, 0x80 the most positive.
        assert_eq!(decode(Law::Mu, 0xff), 0);
        assert_eq!(decode(Law::Mu, 0x7f), 0);
        assert_eq!(decode(Law::Mu, 0x00), -32124);
        assert_eq!(decode(Law::Mu, 0x80), 32124);
        // A-law: 0xd5 and 0x55 are the smallest magnitudes, 0xaa / 0x2a the largest.
        assert_eq!(decode(Law::A, 0xd5), 8);
        assert_eq!(decode(Law::A, 0x55), -8);
        assert_eq!(decode(Law::A, 0xaa), 32256);
        assert_eq!(decode(Law::A, 0x2a), -32256);
    }

    #[test]
    fn decoding_is_monotonic_in_magnitude() {
        for law in [Law::Mu, Law::A] {
            let mut values: Vec<i16> = (0..=255u8).map(|b| decode(law, b)).collect();
            values.sort_unstable();
            values.dedup();
            assert!(values.len() >= 254, "{law:?}: {} distinct values", values.len());
        }
    }

    #[test]
    fn upsampling_interpolates_across_calls() {
        let mut up = Upsampler::default();
        let mut out = Vec::new();
        up.push(&[600], &mut out);
        up.push(&[0], &mut out);
        assert_eq!(out, [100, 200, 300, 400, 500, 600, 500, 400, 300, 200, 100, 0]);
    }
}
