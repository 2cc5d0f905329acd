//! Browser audio to RTMP player audio: Opus packets (48 kHz RTP) to raw AAC-LC access units
//! (no ADTS) for FLV, with the AudioSpecificConfig of the FLV AAC sequence header.
//!
//! rusty_aac's encoder is a batch encoder (it codes what it was given when told to finish), so
//! the stream is coded in short segments: each segment re-codes [`HISTORY_BLOCKS`] blocks of the
//! previous one and looks [`LOOKAHEAD_BLOCKS`] ahead, and only its middle [`SEGMENT_BLOCKS`]
//! access units are kept. Every AAC frame is a function of its own two blocks and the window
//! decisions of its neighbours, so the kept units are the ones a whole-stream encode would give;
//! a window-sequence seam the two segments disagree on is counted ([`OpusToAac::window_seams`]).
//! Only the first two units may differ: the first segment may code a transient in frame 0
//! with short blocks, which a whole-stream encode never does; both are valid.
//!
//! Sans-IO, on a transcoder thread (never a media worker). Invariants: a segment is at most 14
//! blocks, so rusty_aac never spawns its worker threads (it does from 16); every access unit is
//! 1024 samples and its pts comes from the samples emitted ([`Timeline`]); a lost packet (an
//! RTP timestamp jump up to 100 ms) is concealed in place; a broken Opus packet returns an
//! error and leaves the transcoder usable; the PCM held between calls is bounded by
//! one segment plus one Opus packet.

use rusty_aac::{AacEncoder, AacEncoderConfig};

use super::aac_config::AudioSpecificConfig;
use super::opus_encoder::OpusDecoder;
use super::resample::Resampler;
use super::transcode::{Timeline, TranscodeError};

/// Samples per channel in one AAC-LC access unit.
pub const AAC_FRAME_SAMPLES: usize = 1024;
/// Blocks of the previous segment re-coded for the transient detector's memory.
pub const HISTORY_BLOCKS: usize = 4;
/// Access units kept from each segment.
pub const SEGMENT_BLOCKS: usize = 8;
/// Blocks after the kept ones, so their window sequences see what follows.
pub const LOOKAHEAD_BLOCKS: usize = 2;
const SPAN_BLOCKS: usize = HISTORY_BLOCKS + SEGMENT_BLOCKS + LOOKAHEAD_BLOCKS;
// rusty_aac codes `blocks + 1` frames and fans out to threads from 16.
const _: () = assert!(SPAN_BLOCKS + 1 < 16);
/// The longest loss concealed (100 ms at 48 kHz); a longer jump re-anchors the timeline.
pub const CONCEAL_MAX_SAMPLES: i64 = 4_800;
/// The MDCT's priming: the decoded audio of access unit `k` is the input of block `k - 1`.
pub const ENCODER_DELAY_SAMPLES: u32 = AAC_FRAME_SAMPLES as u32;

/// One raw AAC access unit and its presentation time (FLV milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacOut {
    pub data: Vec<u8>,
    pub pts_ms: u32,
}

/// Decodes a browser's Opus and re-encodes it as AAC-LC.
pub struct OpusToAac {
    decoder: OpusDecoder,
    resampler: Resampler,
    config: AudioSpecificConfig,
    encoder_config: AacEncoderConfig,
    channels: usize,
    /// Interleaved PCM at the output rate: the current segment's history, then what follows.
    buffer: Vec<f32>,
    resampled: Vec<f32>,
    timeline: Timeline,
    last_sequence: Option<u8>,
    window_seams: u64,
    /// Where the next packet should start if none is lost.
    next_ts48: Option<u32>,
    concealed_samples: u64,
}

impl OpusToAac {
    /// `channels` 1 or 2; `output_rate` 44 100 or 48 000; `aac_bitrate_bps` 16 000 - 320 000
    /// per stream.
    pub fn new(channels: u8, aac_bitrate_bps: u32, output_rate: u32) -> Result<Self, TranscodeError> {
        if ![44_100, 48_000].contains(&output_rate) {
            return Err(TranscodeError::UnsupportedSampleRate(output_rate));
        }
        if !(16_000..=320_000).contains(&aac_bitrate_bps) {
            return Err(TranscodeError::InvalidParameter(format!(
                "AAC bitrate {aac_bitrate_bps} bit/s"
            )));
        }
        let decoder = OpusDecoder::new(channels)?;
        let span = SPAN_BLOCKS * AAC_FRAME_SAMPLES * usize::from(channels);
        let mut buffer = Vec::with_capacity(span * 2);
        // Silence before the first sample, as a whole-stream encode sees it.
        buffer.resize(HISTORY_BLOCKS * AAC_FRAME_SAMPLES * usize::from(channels), 0.0);
        Ok(OpusToAac {
            decoder,
            resampler: Resampler::new(48_000, output_rate, channels)?,
            config: AudioSpecificConfig::lc(output_rate, channels),
            encoder_config: AacEncoderConfig {
                bitrate_bps: aac_bitrate_bps,
                // The absolute-threshold detector: its decisions depend only on the last few
                // blocks, not on the segment's mean level, so neighbouring segments agree.
                relative_transients: false,
                ..AacEncoderConfig::default()
            },
            channels: usize::from(channels),
            buffer,
            resampled: Vec::new(),
            timeline: Timeline::new(48_000, 1000, output_rate)?,
            last_sequence: None,
            window_seams: 0,
            next_ts48: None,
            concealed_samples: 0,
        })
    }

    /// The config for the FLV AAC sequence header (`config().to_bytes()`).
    pub fn config(&self) -> AudioSpecificConfig {
        self.config
    }

    /// Samples (at the output rate) by which decoded audio trails its pts: AAC's priming. The
    /// resampler adds none (it is centred), the segmenting only adds latency, not offset.
    pub fn encoder_delay_samples(&self) -> u32 {
        ENCODER_DELAY_SAMPLES
    }

    /// Decode one Opus packet stamped `ts48` (RTP, 48 kHz) and return the access units that
    /// completes: none most of the time, then
    /// [`SEGMENT_BLOCKS`] at once (every 171 ms at 48 kHz).
    ///
    /// Lost packets (a forward jump of `ts48` up to [`CONCEAL_MAX_SAMPLES`]) are filled with
    /// libopus's concealment first, so the AAC timeline keeps its place.
    pub fn push(&mut self, opus_packet: &[u8], ts48: u32) -> Result<Vec<AacOut>, TranscodeError> {
        let mut pcm = Vec::new();
        if let Some(expected) = self.next_ts48 {
            let missing = i64::from(ts48.wrapping_sub(expected) as i32);
            // Whole 2.5 ms steps, as libopus conceals.
            let mut missing = if (1..=CONCEAL_MAX_SAMPLES).contains(&missing) {
                missing as usize / 120 * 120
            } else {
                0
            };
            while missing > 0 {
                let chunk = missing.min(5_760);
                pcm.extend_from_slice(self.decoder.conceal(chunk)?);
                missing -= chunk;
            }
            self.concealed_samples = self
                .concealed_samples
                .saturating_add((pcm.len() / self.channels) as u64);
        }
        let start = ts48.wrapping_sub((pcm.len() / self.channels) as u32);
        pcm.extend_from_slice(self.decoder.decode(opus_packet)?);
        let frames = pcm.len() / self.channels;
        self.next_ts48 = Some(start.wrapping_add(frames as u32));
        self.timeline.on_input(start, frames as u64, 48_000);
        let floats: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32_768.0).collect();
        self.resampled.clear();
        self.resampler.process(&floats, &mut self.resampled)?;
        self.buffer.extend_from_slice(&self.resampled);

        let block = AAC_FRAME_SAMPLES * self.channels;
        let mut out = Vec::new();
        while self.buffer.len() >= SPAN_BLOCKS * block {
            self.encode_segment(&mut out)?;
            self.buffer.drain(..SEGMENT_BLOCKS * block);
        }
        Ok(out)
    }

    fn encode_segment(&mut self, out: &mut Vec<AacOut>) -> Result<(), TranscodeError> {
        let span = self
            .buffer
            .get(..SPAN_BLOCKS * AAC_FRAME_SAMPLES * self.channels)
            .unwrap_or(&[]);
        let mut encoder = AacEncoder::new(self.encoder_config);
        encoder
            .push_pcm(span, self.channels as u16, self.config.sample_rate)
            .map_err(|error| TranscodeError::Encode(error.to_string()))?;
        encoder.finish();
        // Unit k of the segment codes blocks k-1 and k; units HISTORY.. are this segment's own.
        let units = std::iter::from_fn(|| encoder.next_packet().ok());
        for unit in units.skip(HISTORY_BLOCKS).take(SEGMENT_BLOCKS) {
            let sequence = window_sequence(&unit.data);
            if let (Some(previous), Some(current)) = (self.last_sequence, sequence) {
                if !follows(previous, current) {
                    self.window_seams = self.window_seams.saturating_add(1);
                }
            }
            self.last_sequence = sequence;
            let pts_ms = self.timeline.next_output(AAC_FRAME_SAMPLES as u32);
            out.push(AacOut {
                data: unit.data,
                pts_ms,
            });
        }
        Ok(())
    }

    /// Samples (48 kHz, per channel) of lost packets filled in by concealment.
    pub fn concealed_samples(&self) -> u64 {
        self.concealed_samples
    }

    /// Window-sequence transitions a decoder cannot overlap cleanly (should stay 0).
    pub fn window_seams(&self) -> u64 {
        self.window_seams
    }

    pub fn reanchors(&self) -> u64 {
        self.timeline.reanchors()
    }
}

/// The window_sequence of an access unit's first element (SCE, or CPE with a common window).
pub fn window_sequence(unit: &[u8]) -> Option<u8> {
    let bit = |n: usize| unit.get(n / 8).map(|byte| (byte >> (7 - n % 8)) & 1);
    let field = |at: usize, bits: usize| (at..at + bits).try_fold(0u8, |v, n| Some(v << 1 | bit(n)?));
    // id_syn_ele (3), element_instance_tag (4), then for an SCE global_gain (8) before ics_info,
    // for a CPE common_window (1); ics_info starts with a reserved bit.
    match field(0, 3)? {
        0 => field(16, 2),
        1 if field(7, 1)? == 1 => field(9, 2),
        _ => None,
    }
}

/// Whether `current` may follow `previous` (ISO/IEC 14496-3 window sequence rules).
fn follows(previous: u8, current: u8) -> bool {
    const ONLY_LONG: u8 = 0;
    const LONG_START: u8 = 1;
    const EIGHT_SHORT: u8 = 2;
    const LONG_STOP: u8 = 3;
    match previous {
        ONLY_LONG | LONG_STOP => matches!(current, ONLY_LONG | LONG_START),
        LONG_START | EIGHT_SHORT => matches!(current, EIGHT_SHORT | LONG_STOP),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::opus_encoder::{OpusEncoder, OPUS_FRAME_SAMPLES};
    use super::super::opus_framer::tests::{analyse, tone};
    use super::super::resample::to_i16;
    use super::*;

    /// Opus packets of `pcm` (48 kHz interleaved).
    fn opus_packets(pcm: &[f32], channels: u8) -> Vec<Vec<u8>> {
        let mut encoder = OpusEncoder::new(channels, 96_000).unwrap();
        pcm.chunks_exact(OPUS_FRAME_SAMPLES * usize::from(channels))
            .map(|frame| {
                encoder
                    .encode(&frame.iter().map(|&s| to_i16(s)).collect::<Vec<_>>())
                    .unwrap()
            })
            .collect()
    }

    fn transcode(pcm: &[f32], channels: u8, rate: u32) -> (OpusToAac, Vec<AacOut>) {
        let mut transcoder = OpusToAac::new(channels, 128_000, rate).unwrap();
        let mut units = Vec::new();
        for (i, packet) in opus_packets(pcm, channels).iter().enumerate() {
            let ts48 = 90_000u32.wrapping_add(i as u32 * 960);
            units.extend(transcoder.push(packet, ts48).unwrap());
        }
        (transcoder, units)
    }

    fn adts(units: &[AacOut], config: AudioSpecificConfig) -> Vec<u8> {
        let mut stream = Vec::new();
        for unit in units {
            stream.extend(rusty_aac::write_adts_header(&rusty_aac::AdtsHeader {
                object_type: 2,
                sample_rate: config.sample_rate,
                channels: u16::from(config.channels),
                frame_length: 7 + unit.data.len(),
                header_len: 7,
            }));
            stream.extend_from_slice(&unit.data);
        }
        stream
    }

    #[test]
    fn a_tone_survives_opus_to_aac() {
        for (channels, rate) in [(2u8, 48_000), (1, 44_100)] {
            let (transcoder, units) =
                transcode(&tone(48_000, usize::from(channels), 440.0, 3.0), channels, rate);
            let config = transcoder.config();
            assert_eq!(
                config.to_bytes(),
                AudioSpecificConfig::lc(rate, channels).to_bytes()
            );
            // 3 s less the segment latency, in whole segments.
            assert!(
                units.len() >= 3 * rate as usize / 1024 - 2 * SPAN_BLOCKS,
                "{} units",
                units.len()
            );
            assert_eq!(units[0].pts_ms, 90_000 / 48, "anchored at the first ts48");
            assert!(units.windows(2).all(|w| w[1].pts_ms > w[0].pts_ms));
            let last = units.len() - 1;
            let span = u64::from(units[last].pts_ms - units[0].pts_ms);
            assert_eq!(span, last as u64 * 1024 * 1000 / u64::from(rate), "no drift");

            let mut decoder = rusty_aac::AacDecoder::with_config_bytes(&config.to_bytes()).unwrap();
            let mut pcm = Vec::new();
            for unit in &units {
                pcm.extend(decoder.decode(&unit.data, None).unwrap().samples);
            }
            let (hz, rms) = analyse(&pcm[pcm.len() / 4..], usize::from(channels), rate);
            assert!((hz - 440.0).abs() < 1.0, "{channels} ch {rate} Hz: {hz} Hz");
            let level_db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
            assert!(level_db.abs() < 2.0, "level off by {level_db:.2} dB");
            assert_eq!(transcoder.window_seams(), 0);
        }
    }

    #[test]
    fn transients_keep_valid_window_sequences_across_segments() {
        // Clicks every 130 ms over a quiet tone: short blocks everywhere, at every phase of
        // the segmenting.
        let mut pcm = tone(48_000, 2, 300.0, 6.0);
        for (i, s) in pcm.iter_mut().enumerate() {
            *s *= 0.05;
            if (i / 2) % 6_240 < 64 {
                *s += 0.8;
            }
        }
        let (transcoder, units) = transcode(&pcm, 2, 48_000);
        let sequences: Vec<u8> = units.iter().filter_map(|u| window_sequence(&u.data)).collect();
        assert_eq!(sequences.len(), units.len());
        assert!(sequences.contains(&2), "short blocks were used");
        assert_eq!(transcoder.window_seams(), 0, "{sequences:?}");
    }

    #[test]
    fn segments_give_what_a_whole_stream_encode_gives() {
        let mut pcm = tone(48_000, 2, 300.0, 3.0);
        for (i, s) in pcm.iter_mut().enumerate() {
            if (i / 2) % 9_000 < 48 {
                *s += 0.6;
            }
        }
        let packets = opus_packets(&pcm, 2);
        let mut decoder = OpusDecoder::new(2).unwrap();
        let decoded: Vec<f32> = packets
            .iter()
            .flat_map(|p| {
                decoder
                    .decode(p)
                    .unwrap()
                    .iter()
                    .map(|&s| f32::from(s) / 32_768.0)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut whole = AacEncoder::new(AacEncoderConfig {
            bitrate_bps: 128_000,
            relative_transients: false,
            ..AacEncoderConfig::default()
        });
        whole.push_pcm(&decoded, 2, 48_000).unwrap();
        whole.finish();
        let reference: Vec<Vec<u8>> = std::iter::from_fn(|| whole.next_packet().ok())
            .map(|p| p.data)
            .collect();
        let (_, units) = transcode(&pcm, 2, 48_000);
        // The first two may differ: a whole-stream encode never puts short blocks in frame 0,
        // the first segment (which sees silence before it) may, and the click at sample 0 is
        // coded that way. Either is valid after a decoder's silent start.
        let same = units
            .iter()
            .zip(&reference)
            .skip(2)
            .filter(|(u, r)| &u.data == *r)
            .count();
        assert_eq!(
            same,
            units.len() - 2,
            "{same} of {} access units identical",
            units.len() - 2
        );
    }

    #[test]
    fn lost_packets_are_concealed_in_place() {
        let packets = opus_packets(&tone(48_000, 1, 440.0, 2.0), 1);
        let mut transcoder = OpusToAac::new(1, 64_000, 48_000).unwrap();
        let mut units = Vec::new();
        for (i, packet) in packets.iter().enumerate() {
            // Every tenth packet lost.
            if i % 10 != 5 {
                units.extend(transcoder.push(packet, i as u32 * 960).unwrap());
            }
        }
        assert_eq!(transcoder.concealed_samples(), 10 * 960);
        assert_eq!(transcoder.reanchors(), 0);
        // As many units, with the same timestamps, as without the losses.
        let mut lossless = OpusToAac::new(1, 64_000, 48_000).unwrap();
        let expected: Vec<u32> = packets
            .iter()
            .enumerate()
            .flat_map(|(i, p)| lossless.push(p, i as u32 * 960).unwrap())
            .map(|u| u.pts_ms)
            .collect();
        assert_eq!(units.iter().map(|u| u.pts_ms).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn ffmpeg_accepts_the_stream() {
        let ffmpeg = std::path::Path::new("/usr/bin/ffmpeg");
        if !ffmpeg.exists() {
            eprintln!("skipped: no /usr/bin/ffmpeg");
            return;
        }
        for (channels, rate) in [(2u8, 48_000), (1, 44_100)] {
            let (transcoder, units) =
                transcode(&tone(48_000, usize::from(channels), 440.0, 2.0), channels, rate);
            let path = std::env::temp_dir().join(format!(
                "opus_to_aac_{}_{channels}_{rate}.aac",
                std::process::id()
            ));
            std::fs::write(&path, adts(&units, transcoder.config())).unwrap();
            let output = std::process::Command::new(ffmpeg)
                .args(["-v", "error", "-i"])
                .arg(&path)
                .args(["-f", "null", "-"])
                .output()
                .unwrap();
            let _ = std::fs::remove_file(&path);
            assert!(output.status.success(), "ffmpeg failed");
            assert!(
                output.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    #[test]
    fn refuses_bad_parameters_and_packets() {
        assert!(OpusToAac::new(3, 128_000, 48_000).is_err());
        assert!(OpusToAac::new(2, 128_000, 32_000).is_err());
        assert!(OpusToAac::new(2, 1_000, 48_000).is_err());
        let mut transcoder = OpusToAac::new(2, 128_000, 48_000).unwrap();
        assert_eq!(transcoder.push(&[], 0).unwrap_err(), TranscodeError::EmptyPacket);
        let mut state = 0x9E37_79B9u32;
        for n in 0..2000u32 {
            let packet: Vec<u8> = (0..1 + n % 200)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = transcoder.push(&packet, n.wrapping_mul(960));
        }
        assert_eq!(window_sequence(&[]), None);
        assert_eq!(window_sequence(&[0x20]), None, "a CPE cut short");
    }
}
