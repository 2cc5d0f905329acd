//! RTMP publisher audio to browser audio: raw AAC access units (what FLV carries, configured
//! by the sequence header's AudioSpecificConfig) to 20 ms Opus packets at 48 kHz.
//!
//! Sans-IO: fed one access unit and its FLV timestamp, it returns the Opus packets that
//! completes. Runs on a transcoder thread (never a media worker). Invariants: a broken or
//! empty access unit returns an error and leaves the transcoder usable; the Opus stream has a
//! fixed channel count (stereo when the source decodes to two or more channels, else mono),
//! whatever the decoder later outputs; timing and framing are [`OpusFramer`]'s.

use rusty_aac::AacDecoder;

use super::aac_config::{unsupported_profile, AudioSpecificConfig, AAC_HE, AAC_HE_V2, AAC_LC};
pub use super::opus_framer::{OpusFramer, OpusOut};
use super::transcode::TranscodeError;

/// Decodes an RTMP publisher's AAC (LC, or HE-AAC v1/v2) and re-encodes it as Opus.
pub struct AacToOpus {
    decoder: AacDecoder,
    /// The config the decoder is rebuilt from after a broken frame.
    config_bytes: Vec<u8>,
    framer: OpusFramer,
    decode_errors: u64,
}

impl AacToOpus {
    pub fn new(config: &AudioSpecificConfig, opus_bitrate_bps: u32) -> Result<Self, TranscodeError> {
        if ![AAC_LC, AAC_HE, AAC_HE_V2].contains(&config.object_type) {
            return Err(unsupported_profile(config.object_type));
        }
        if config.channels == 0 || config.channels > 7 {
            return Err(TranscodeError::UnsupportedChannels(config.channels));
        }
        if !(7_350..=96_000).contains(&config.sample_rate) || ![960, 1024].contains(&config.frame_samples) {
            return Err(TranscodeError::InvalidConfig(format!(
                "{} Hz with {}-sample frames",
                config.sample_rate, config.frame_samples
            )));
        }
        let config_bytes = config.to_bytes();
        let decoder = AacDecoder::with_config_bytes(&config_bytes)
            .map_err(|error| TranscodeError::InvalidConfig(error.to_string()))?;
        let channels = if config.output_channels() >= 2 { 2 } else { 1 };
        Ok(AacToOpus {
            decoder,
            config_bytes,
            framer: OpusFramer::new(channels, opus_bitrate_bps)?,
            decode_errors: 0,
        })
    }

    /// Decode one raw access unit stamped `pts_ms` (the FLV tag's timestamp) and return the
    /// Opus packets it completes (often none or one; two when a frame straddles).
    pub fn push(&mut self, aac_frame: &[u8], pts_ms: u32) -> Result<Vec<OpusOut>, TranscodeError> {
        if aac_frame.is_empty() {
            return Err(TranscodeError::EmptyPacket);
        }
        // FLV carries bare access units; an ADTS header here would silently reconfigure the
        // decoder (rusty_aac honours ADTS framing), so it is refused instead.
        if matches!(aac_frame, [0xFF, second, ..] if second & 0xF0 == 0xF0) {
            return Err(TranscodeError::Decode(
                "ADTS framing inside an FLV AAC frame".into(),
            ));
        }
        let decoded = match self.decoder.decode(aac_frame, None) {
            Ok(decoded) => decoded,
            Err(rusty_aac::Error::Again) => return Ok(Vec::new()),
            Err(error) => {
                // A broken frame can leave in-band state behind (a program config element
                // re-mapping the channels): start afresh from the sequence header's config,
                // at the cost of one frame's overlap.
                self.decode_errors = self.decode_errors.saturating_add(1);
                if let Ok(decoder) = AacDecoder::with_config_bytes(&self.config_bytes) {
                    self.decoder = decoder;
                }
                return Err(TranscodeError::Decode(error.to_string()));
            }
        };
        self.framer.push_pcm(
            &decoded.samples,
            usize::from(decoded.channels),
            decoded.sample_rate,
            pts_ms,
        )
    }

    /// The Opus stream's channel count (1 or 2).
    pub fn channels(&self) -> u8 {
        self.framer.channels() as u8
    }

    /// Timestamp re-anchors so far (input gaps and resets).
    pub fn reanchors(&self) -> u64 {
        self.framer.reanchors()
    }

    /// Access units the decoder refused so far.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors
    }
}

#[cfg(test)]
mod tests {
    use super::super::opus_encoder::OpusDecoder;
    use super::super::opus_framer::tests::{analyse, tone};
    use super::*;
    use rusty_aac::{AacEncoder, AacEncoderConfig};

    /// Raw AAC-LC access units of `pcm`, from rusty_aac's encoder.
    fn aac_frames(pcm: &[f32], channels: u16, rate: u32) -> Vec<Vec<u8>> {
        let mut encoder = AacEncoder::new(AacEncoderConfig {
            bitrate_bps: 128_000,
            ..Default::default()
        });
        encoder.push_pcm(pcm, channels, rate).unwrap();
        encoder.finish();
        std::iter::from_fn(|| encoder.next_packet().ok())
            .map(|p| p.data)
            .collect()
    }

    fn round_trip(rate: u32, channels: u8) {
        let pcm = tone(rate, usize::from(channels), 440.0, 2.0);
        let frames = aac_frames(&pcm, u16::from(channels), rate);
        let config = AudioSpecificConfig::lc(rate, channels);
        let mut transcoder = AacToOpus::new(&config, 64_000).unwrap();
        assert_eq!(usize::from(transcoder.channels()), usize::from(channels));
        let mut decoder = OpusDecoder::new(channels).unwrap();
        let (mut decoded, mut stamps) = (Vec::new(), Vec::new());
        for (i, frame) in frames.iter().enumerate() {
            let pts = 5_000 + (i as u64 * 1024 * 1000 / u64::from(rate)) as u32;
            for packet in transcoder.push(frame, pts).unwrap() {
                stamps.push(packet.ts48);
                decoded.extend(
                    decoder
                        .decode(&packet.data)
                        .unwrap()
                        .iter()
                        .map(|&s| f32::from(s) / 32_768.0),
                );
            }
        }
        assert_eq!(stamps[0], 5_000 * 48, "anchored at the first pts");
        assert!(
            stamps.windows(2).all(|w| w[1] == w[0] + 960),
            "continuous RTP timestamps"
        );
        let expected = frames.len() * 1024 * 48_000 / rate as usize / 960;
        assert!(
            stamps.len() + 1 >= expected,
            "{} packets for {expected}",
            stamps.len()
        );
        // Skip the codecs' start-up (AAC priming, Opus warm-up).
        let (hz, rms) = analyse(&decoded[decoded.len() / 4..], usize::from(channels), 48_000);
        assert!((hz - 440.0).abs() < 1.0, "{rate} Hz {channels} ch: {hz} Hz");
        let level_db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
        assert!(level_db.abs() < 2.0, "level off by {level_db:.2} dB");
    }

    #[test]
    fn a_tone_survives_aac_to_opus() {
        round_trip(44_100, 2);
        round_trip(48_000, 1);
        round_trip(22_050, 1);
    }

    #[test]
    fn gaps_and_resets_keep_timestamps_increasing() {
        let pcm = tone(48_000, 1, 440.0, 1.0);
        let frames = aac_frames(&pcm, 1, 48_000);
        let mut transcoder = AacToOpus::new(&AudioSpecificConfig::lc(48_000, 1), 32_000).unwrap();
        let mut stamps = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let ms = (i * 1024 / 48) as u32;
            // A one-second gap after frame 10, a reset to 0 after frame 30.
            let pts = match i {
                0..=10 => 100 + ms,
                11..=30 => 1100 + ms,
                _ => ms - 30 * 1024 / 48,
            };
            stamps.extend(transcoder.push(frame, pts).unwrap().iter().map(|p| p.ts48));
        }
        assert!(stamps.windows(2).all(|w| w[1] > w[0]), "{stamps:?}");
        let biggest = stamps.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!((48_000..49_920).contains(&biggest), "the gap shows: {biggest}");
        assert_eq!(transcoder.reanchors(), 2);
    }

    #[test]
    fn garbage_and_empty_frames_are_refused_without_panicking() {
        let config = AudioSpecificConfig::lc(44_100, 2);
        let mut transcoder = AacToOpus::new(&config, 64_000).unwrap();
        assert_eq!(transcoder.push(&[], 0).unwrap_err(), TranscodeError::EmptyPacket);
        assert!(transcoder
            .push(&[0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC], 0)
            .is_err());
        let mut state = 0x1234_5678u32;
        for n in 0..3000 {
            let frame: Vec<u8> = (0..1 + n % 300)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = transcoder.push(&frame, n as u32 * 23);
        }
        // Still usable afterwards.
        let frames = aac_frames(&tone(44_100, 2, 440.0, 0.5), 2, 44_100);
        let out: usize = frames
            .iter()
            .map(|f| transcoder.push(f, 80_000).map_or(0, |p| p.len()))
            .sum();
        assert!(out > 15, "{out} packets after the garbage");
    }

    #[test]
    fn refuses_bad_configs() {
        let zero = AudioSpecificConfig {
            channels: 0,
            ..AudioSpecificConfig::lc(48_000, 2)
        };
        assert_eq!(
            AacToOpus::new(&zero, 64_000).err(),
            Some(TranscodeError::UnsupportedChannels(0))
        );
        let main = AudioSpecificConfig {
            object_type: 1,
            ..AudioSpecificConfig::lc(48_000, 2)
        };
        assert!(matches!(
            AacToOpus::new(&main, 64_000),
            Err(TranscodeError::UnsupportedProfile { .. })
        ));
        assert!(
            AacToOpus::new(&AudioSpecificConfig::lc(48_000, 2), 1).is_err(),
            "bitrate"
        );
        assert!(
            AacToOpus::new(&AudioSpecificConfig::lc(1, 2), 64_000).is_err(),
            "rate"
        );
    }
}
