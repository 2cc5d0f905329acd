//! Synthetic audio payloads: Opus (48 kHz) and G.711 (8 kHz), one packet per 20 ms.
//!
//! Owns the payload bytes only. Opus packets start with a real TOC byte (config 15:
//! hybrid fullband 20 ms, mono, one frame) so code that reads the TOC is satisfied;
//! G.711 packets are 160 samples of a quiet square wave in the codec's companding.

use super::AudioCodec;

/// Opus TOC byte used: config 15 (hybrid FB, 20 ms), mono, code 0.
pub const OPUS_TOC: u8 = 15 << 3;

/// Packet duration, in milliseconds.
pub const PACKET_MS: u32 = 20;

/// RTP clock rate of `codec`.
pub fn clock_rate(codec: AudioCodec) -> u32 {
    match codec {
        AudioCodec::Opus => 48_000,
        AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
    }
}

/// RTP timestamp increment per packet.
pub fn samples_per_packet(codec: AudioCodec) -> u32 {
    clock_rate(codec) / 1000 * PACKET_MS
}

/// The payload of packet number `n`.
pub fn packet(codec: AudioCodec, n: u64) -> Vec<u8> {
    match codec {
        AudioCodec::Opus => {
            let mut p = vec![OPUS_TOC];
            let len = 60 + (n % 20) as usize;
            p.extend((0..len).map(|i| (i as u64).wrapping_mul(31).wrapping_add(n) as u8));
            p
        }
        AudioCodec::Pcmu | AudioCodec::Pcma => {
            // Quiet square wave, 200 Hz: 20 samples high, 20 low.
            let (hi, lo) = if codec == AudioCodec::Pcmu {
                (0xf0, 0x70)
            } else {
                (0xc5, 0x45)
            };
            (0..160)
                .map(|i| if (i / 20) % 2 == 0 { hi } else { lo })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_clock() {
        assert_eq!(samples_per_packet(AudioCodec::Opus), 960);
        assert_eq!(samples_per_packet(AudioCodec::Pcmu), 160);
        assert_eq!(packet(AudioCodec::Opus, 3)[0], OPUS_TOC);
        assert_eq!(packet(AudioCodec::Pcma, 0).len(), 160);
        assert_ne!(packet(AudioCodec::Pcmu, 0), packet(AudioCodec::Pcma, 0));
    }
}
