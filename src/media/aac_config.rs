//! The MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) an FLV AAC sequence header
//! carries: parsed from what an RTMP publisher sends, written for what the bridge sends.
//!
//! Pure functions, run on a transcoder thread (never a media worker). Invariants: every field
//! is read through a bounds-checked bit reader, so a short or hostile config returns an error
//! and never panics; a parsed config always has 1-7 channels, a non-zero sample rate and a
//! frame of 1024 or 960 samples; `to_bytes` of a parsed LC config gives back the bytes that
//! matter (object type, rate, channels, frame length).

use super::bits::BitReader;
use super::transcode::TranscodeError;

/// AAC-LC, the one profile every decoder has and the bridge's encoder writes.
pub const AAC_LC: u8 = 2;
/// HE-AAC v1 (SBR): decoded too, since rusty_aac reconstructs SBR.
pub const AAC_HE: u8 = 5;
/// HE-AAC v2 (SBR + parametric stereo): decoded too.
pub const AAC_HE_V2: u8 = 29;

/// The 13 rates a 4-bit sampling-frequency index can name (ISO/IEC 14496-3 Table 1.18).
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];
/// The index value that means "a 24-bit rate follows".
const EXPLICIT_RATE: u32 = 15;

/// What the bridge needs to know of an AAC stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The audio object type: 2 = LC, 5 = HE-AAC (SBR), 29 = HE-AAC v2 (PS).
    pub object_type: u8,
    /// The core (AAC) sample rate; HE-AAC decodes to twice this.
    pub sample_rate: u32,
    /// The channel configuration, 1-7 (7 is 7.1).
    pub channels: u8,
    /// Samples per channel in one access unit at the core rate: 1024 or 960.
    pub frame_samples: u16,
}

impl AudioSpecificConfig {
    /// An AAC-LC config (what [`super::opus_to_aac::OpusToAac`] produces).
    pub fn lc(sample_rate: u32, channels: u8) -> Self {
        AudioSpecificConfig {
            object_type: AAC_LC,
            sample_rate,
            channels,
            frame_samples: 1024,
        }
    }

    /// Parse the config bytes of an FLV AAC sequence header (AACPacketType 0). Accepts only
    /// the profiles the bridge decodes: LC, and HE-AAC v1/v2 (whose `object_type` stays 5/29
    /// and whose `sample_rate` is the core rate).
    pub fn parse(bytes: &[u8]) -> Result<Self, TranscodeError> {
        let truncated = || TranscodeError::InvalidConfig("AudioSpecificConfig is truncated".into());
        let mut reader = BitReader::new(bytes);
        let object_type = read_object_type(&mut reader).ok_or_else(truncated)?;
        let sample_rate = read_sample_rate(&mut reader).ok_or_else(truncated)??;
        let channels = reader.bits(4).ok_or_else(truncated)? as u8;
        let core_type = if object_type == AAC_HE || object_type == AAC_HE_V2 {
            // The extension (SBR output) rate, then the core object type.
            read_sample_rate(&mut reader).ok_or_else(truncated)??;
            read_object_type(&mut reader).ok_or_else(truncated)?
        } else {
            object_type
        };
        if core_type != AAC_LC {
            return Err(unsupported_profile(core_type));
        }
        if channels == 0 || channels > 7 {
            return Err(TranscodeError::UnsupportedChannels(channels));
        }
        // GASpecificConfig: frameLengthFlag first.
        let frame_samples = if reader.bit().ok_or_else(truncated)? {
            960
        } else {
            1024
        };
        Ok(AudioSpecificConfig {
            object_type,
            sample_rate,
            channels,
            frame_samples,
        })
    }

    /// The config's bytes: two for LC at a standard rate, more for an explicit rate or HE-AAC
    /// (written in the explicit, hierarchical form with an LC core).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut writer = Bits::default();
        write_object_type(&mut writer, self.object_type);
        write_sample_rate(&mut writer, self.sample_rate);
        writer.put(4, u32::from(self.channels));
        if self.object_type == AAC_HE || self.object_type == AAC_HE_V2 {
            write_sample_rate(&mut writer, self.sample_rate.saturating_mul(2));
            write_object_type(&mut writer, AAC_LC);
        }
        // frameLengthFlag, dependsOnCoreCoder = 0, extensionFlag = 0.
        writer.put(1, u32::from(self.frame_samples == 960));
        writer.put(2, 0);
        writer.finish()
    }

    /// The sample rate the decoder outputs: twice the core rate for HE-AAC.
    pub fn output_rate(&self) -> u32 {
        match self.object_type {
            AAC_HE | AAC_HE_V2 => self.sample_rate.saturating_mul(2),
            _ => self.sample_rate,
        }
    }

    /// The channels the decoder outputs: parametric stereo makes mono stereo.
    pub fn output_channels(&self) -> u8 {
        if self.object_type == AAC_HE_V2 && self.channels == 1 {
            2
        } else {
            self.channels
        }
    }
}

/// The refusal of an AAC object type the bridge does not decode.
pub fn unsupported_profile(object_type: u8) -> TranscodeError {
    let name = match object_type {
        1 => "Main",
        3 => "SSR",
        4 => "LTP",
        6 => "Scalable",
        17 => "ER AAC-LC",
        19 => "ER AAC-LTP",
        23 => "ER AAC-LD",
        39 => "ER AAC-ELD",
        42 => "xHE-AAC (USAC)",
        _ => "other",
    };
    TranscodeError::UnsupportedProfile { object_type, name }
}

/// A 5-bit object type, or 32 + 6 bits after the escape value 31.
fn read_object_type(reader: &mut BitReader<'_>) -> Option<u8> {
    let object_type = reader.bits(5)?;
    let object_type = if object_type == 31 {
        32 + reader.bits(6)?
    } else {
        object_type
    };
    u8::try_from(object_type).ok()
}

/// A 4-bit frequency index, or a 24-bit explicit rate after index 15. The outer `Option` is
/// "truncated", the inner result "a reserved index or a zero rate".
fn read_sample_rate(reader: &mut BitReader<'_>) -> Option<Result<u32, TranscodeError>> {
    let index = reader.bits(4)?;
    let rate = if index == EXPLICIT_RATE {
        reader.bits(24)?
    } else {
        SAMPLE_RATES.get(index as usize).copied().unwrap_or(0)
    };
    Some(if rate == 0 {
        Err(TranscodeError::InvalidConfig(format!(
            "sampling frequency index {index} is reserved"
        )))
    } else {
        Ok(rate)
    })
}

fn write_object_type(writer: &mut Bits, object_type: u8) {
    if object_type >= 31 {
        writer.put(5, 31);
        writer.put(6, u32::from(object_type.saturating_sub(32)));
    } else {
        writer.put(5, u32::from(object_type));
    }
}

fn write_sample_rate(writer: &mut Bits, rate: u32) {
    match SAMPLE_RATES.iter().position(|&r| r == rate) {
        Some(index) => writer.put(4, index as u32),
        None => {
            writer.put(4, EXPLICIT_RATE);
            writer.put(24, rate);
        }
    }
}

/// MSB-first bit packing into whole bytes (zero-padded).
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    accumulator: u64,
    pending: u32,
}

impl Bits {
    fn put(&mut self, n: u32, value: u32) {
        let n = n.min(32);
        let mask = if n == 32 {
            u64::from(u32::MAX)
        } else {
            (1u64 << n) - 1
        };
        self.accumulator = (self.accumulator << n) | (u64::from(value) & mask);
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.accumulator >> self.pending) as u8);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            self.bytes.push((self.accumulator << (8 - self.pending)) as u8);
        }
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lc(rate: u32, channels: u8) -> AudioSpecificConfig {
        AudioSpecificConfig::lc(rate, channels)
    }

    #[test]
    fn parses_known_lc_configs() {
        let known: [([u8; 2], u32, u8); 5] = [
            ([0x12, 0x10], 44_100, 2),
            ([0x11, 0x90], 48_000, 2),
            ([0x11, 0x88], 48_000, 1),
            ([0x13, 0x88], 22_050, 1),
            ([0x15, 0x88], 8_000, 1),
        ];
        for (bytes, rate, channels) in known {
            let config = AudioSpecificConfig::parse(&bytes).unwrap();
            assert_eq!(config, lc(rate, channels), "{bytes:02x?}");
            assert_eq!(config.to_bytes(), bytes, "{rate} Hz {channels} ch round trip");
        }
        assert_eq!(lc(22_050, 2).to_bytes(), [0x13, 0x90]);
    }

    #[test]
    fn reads_the_960_sample_flag_and_explicit_rates() {
        let config = AudioSpecificConfig::parse(&[0x11, 0x94]).unwrap();
        assert_eq!(config.frame_samples, 960);
        assert_eq!(config.to_bytes(), [0x11, 0x94]);

        let odd = lc(44_056, 2);
        let bytes = odd.to_bytes();
        assert_eq!(bytes.len(), 5, "5 + 4 + 24 + 4 + 3 bits");
        assert_eq!(AudioSpecificConfig::parse(&bytes).unwrap(), odd);
    }

    #[test]
    fn accepts_he_aac_and_reports_its_output() {
        // HE-AAC v1: object type 5, 24 kHz core, stereo, 48 kHz extension, LC core.
        let he = AudioSpecificConfig {
            object_type: AAC_HE,
            ..lc(24_000, 2)
        };
        let parsed = AudioSpecificConfig::parse(&he.to_bytes()).unwrap();
        assert_eq!(parsed, he);
        assert_eq!((parsed.output_rate(), parsed.output_channels()), (48_000, 2));
        // The common real-world HE-AAC v2 config: 0xEB escape is not used; 29 fits in 5 bits.
        let v2 = AudioSpecificConfig {
            object_type: AAC_HE_V2,
            ..lc(22_050, 1)
        };
        let parsed = AudioSpecificConfig::parse(&v2.to_bytes()).unwrap();
        assert_eq!((parsed.output_rate(), parsed.output_channels()), (44_100, 2));
    }

    #[test]
    fn rejects_other_profiles_with_a_clear_error() {
        // Main (1) at 44.1 kHz stereo.
        let error = AudioSpecificConfig::parse(&[0x0A, 0x10]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "AAC profile Main (object type 1) is not supported: use AAC-LC"
        );
        // LTP (4).
        let ltp = AudioSpecificConfig {
            object_type: 4,
            ..lc(44_100, 2)
        }
        .to_bytes();
        assert!(matches!(
            AudioSpecificConfig::parse(&ltp),
            Err(TranscodeError::UnsupportedProfile {
                object_type: 4,
                name: "LTP"
            })
        ));
        // ELD via the escape (31, then 39 - 32 = 7).
        let eld = AudioSpecificConfig {
            object_type: 39,
            ..lc(48_000, 1)
        }
        .to_bytes();
        assert!(matches!(
            AudioSpecificConfig::parse(&eld),
            Err(TranscodeError::UnsupportedProfile { object_type: 39, .. })
        ));
    }

    #[test]
    fn rejects_broken_configs_without_panicking() {
        let zero_channels = AudioSpecificConfig::parse(&[0x12, 0x00]).unwrap_err();
        assert_eq!(zero_channels.to_string(), "unsupported channel configuration 0");
        assert!(AudioSpecificConfig::parse(&[]).is_err());
        assert!(AudioSpecificConfig::parse(&[0x12]).is_err());
        // Reserved frequency index 13.
        assert!(AudioSpecificConfig::parse(&[0x16, 0x90]).is_err());
        // Explicit rate cut short.
        assert!(AudioSpecificConfig::parse(&[0x17, 0x80, 0x00]).is_err());
        for seed in 0u32..2000 {
            let bytes: Vec<u8> = (0..(seed % 7))
                .map(|i| (seed.wrapping_mul(2_654_435_761) >> i) as u8)
                .collect();
            let _ = AudioSpecificConfig::parse(&bytes);
        }
    }
}
