//! RTMP publisher MP3 (FLV SoundFormat 2) to 20 ms Opus packets at 48 kHz, with Symphonia's
//! pure-Rust MPEG audio decoder (Layer III only).
//!
//! FLV tags usually hold one MP3 frame each, but nothing forces a publisher to: the bytes are
//! re-framed here from the MP3 frame headers, which also give the true sample rate and
//! channel mode (FLV's rate flag cannot say 48 kHz). Sans-IO, on a transcoder thread (never a
//! media worker). Invariants: at most one partial MP3 frame (< [`FRAME_BYTES_MAX`]) is held;
//! bytes that are not a Layer III frame are skipped up to the next sync word and counted; the
//! Opus stream's channel count is fixed at construction; timestamps as in
//! [`OpusFramer`].

use symphonia_bundle_mp3::MpaDecoder;
use symphonia_core::codecs::audio::well_known::CODEC_ID_MP3;
use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia_core::packet::PacketRef;
use symphonia_core::units::{Duration, Timestamp};

use super::opus_framer::{OpusFramer, OpusOut};
use super::transcode::TranscodeError;

/// The longest Layer III frame: 320 kbit/s at 32 kHz with padding is 1441 bytes.
pub const FRAME_BYTES_MAX: usize = 1441;
/// Bit rates (kbit/s) by index: MPEG-1 Layer III, then MPEG-2/2.5 Layer III.
const BITRATES_V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const BITRATES_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
const RATES_V1: [u32; 3] = [44_100, 48_000, 32_000];

/// What a Layer III frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3Header {
    pub sample_rate: u32,
    pub channels: u8,
    /// The whole frame, header included.
    pub frame_bytes: usize,
    /// Samples per channel: 1152 (MPEG-1) or 576 (MPEG-2/2.5).
    pub samples: u32,
}

/// Parse the 4-byte header at the start of `bytes`: `None` unless it is a valid Layer III
/// header (free-format bit rate is not supported).
pub fn parse_header(bytes: &[u8]) -> Option<Mp3Header> {
    let [0xFF, b1, b2, b3, ..] = *bytes else {
        return None;
    };
    if b1 & 0xE0 != 0xE0 || (b1 >> 1) & 0x03 != 0x01 {
        return None; // no sync, or not Layer III
    }
    let version = (b1 >> 3) & 0x03; // 0 = 2.5, 2 = 2, 3 = 1
    let (bitrates, divisor, samples) = match version {
        3 => (&BITRATES_V1, 1, 1152),
        2 => (&BITRATES_V2, 2, 576),
        0 => (&BITRATES_V2, 4, 576),
        _ => return None,
    };
    let kbps = *bitrates.get(usize::from(b2 >> 4))?;
    let sample_rate = *RATES_V1.get(usize::from((b2 >> 2) & 0x03))? / divisor;
    if kbps == 0 {
        return None;
    }
    let padding = usize::from((b2 >> 1) & 1);
    let slot_factor = if version == 3 { 144 } else { 72 };
    let frame_bytes = (slot_factor * kbps * 1000 / sample_rate) as usize + padding;
    let channels = if b3 >> 6 == 0x03 { 1 } else { 2 };
    Some(Mp3Header {
        sample_rate,
        channels,
        frame_bytes,
        samples,
    })
}

/// Decodes an RTMP publisher's MP3 and re-encodes it as Opus.
pub struct Mp3ToOpus {
    decoder: MpaDecoder,
    framer: OpusFramer,
    /// Bytes of a frame not yet complete.
    pending: Vec<u8>,
    /// The pts of the first byte in `pending` and the samples decoded since it.
    pending_pts: u32,
    skipped_bytes: u64,
    decode_errors: u64,
}

impl Mp3ToOpus {
    /// `sample_rate` and `channels` come from the FLV audio tag's flags: the channel count fixes
    /// the Opus stream (1 or 2); the rate is only a hint, the frame headers decide.
    pub fn new(sample_rate: u32, channels: u8, opus_bitrate_bps: u32) -> Result<Self, TranscodeError> {
        if !(1..=2).contains(&channels) {
            return Err(TranscodeError::UnsupportedChannels(channels));
        }
        if !(5_000..=48_000).contains(&sample_rate) {
            return Err(TranscodeError::UnsupportedSampleRate(sample_rate));
        }
        let mut params = AudioCodecParameters::new();
        params.codec = CODEC_ID_MP3;
        let decoder = MpaDecoder::try_new(&params, &AudioDecoderOptions::default())
            .map_err(|error| TranscodeError::InvalidConfig(error.to_string()))?;
        Ok(Mp3ToOpus {
            decoder,
            framer: OpusFramer::new(channels, opus_bitrate_bps)?,
            pending: Vec::with_capacity(2 * FRAME_BYTES_MAX),
            pending_pts: 0,
            skipped_bytes: 0,
            decode_errors: 0,
        })
    }

    /// Feed the payload of one FLV MP3 tag stamped `pts_ms`; returns the Opus packets completed.
    /// Errors only for an empty payload: broken frames are skipped and counted.
    pub fn push(&mut self, data: &[u8], pts_ms: u32) -> Result<Vec<OpusOut>, TranscodeError> {
        if data.is_empty() {
            return Err(TranscodeError::EmptyPacket);
        }
        if self.pending.is_empty() {
            self.pending_pts = pts_ms;
        }
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0usize;
        loop {
            let rest = self.pending.get(start..).unwrap_or(&[]);
            if rest.len() < 4 {
                break;
            }
            let Some(header) = parse_header(rest) else {
                // Resynchronise at the next 0xFF.
                let skip = rest
                    .iter()
                    .skip(1)
                    .position(|&b| b == 0xFF)
                    .map_or(rest.len(), |p| p + 1);
                self.skipped_bytes = self.skipped_bytes.saturating_add(skip as u64);
                start += skip;
                continue;
            };
            let Some(frame) = rest.get(..header.frame_bytes) else {
                break;
            };
            let packet = PacketRef::new(
                0,
                Timestamp::ZERO,
                Duration::new(u64::from(header.samples)),
                frame,
            );
            match self.decoder.decode_ref(&packet) {
                Ok(buffer) => {
                    let channels = buffer.spec().channels().count();
                    let rate = buffer.spec().rate();
                    let mut samples = Vec::with_capacity(buffer.frames() * channels);
                    buffer.copy_to_vec_interleaved::<f32>(&mut samples);
                    out.extend(self.framer.push_pcm(&samples, channels, rate, self.pending_pts)?);
                    // The next frame starts this many milliseconds later.
                    let ms = u64::from(header.samples) * 1000 / u64::from(header.sample_rate);
                    self.pending_pts = self.pending_pts.wrapping_add(ms as u32);
                }
                Err(_) => self.decode_errors = self.decode_errors.saturating_add(1),
            }
            start += header.frame_bytes;
        }
        self.pending.drain(..start.min(self.pending.len()));
        if self.pending.len() > FRAME_BYTES_MAX {
            // Only a header promising more than any frame holds gets here: drop it.
            self.skipped_bytes = self.skipped_bytes.saturating_add(self.pending.len() as u64);
            self.pending.clear();
        }
        Ok(out)
    }

    /// Bytes skipped as not being MP3 frames, and frames the decoder refused.
    pub fn skipped(&self) -> (u64, u64) {
        (self.skipped_bytes, self.decode_errors)
    }

    pub fn reanchors(&self) -> u64 {
        self.framer.reanchors()
    }
}

#[cfg(test)]
mod tests {
    use super::super::opus_encoder::OpusDecoder;
    use super::super::opus_framer::tests::analyse;
    use super::*;

    /// A silent MPEG-1 Layer III frame: 128 kbit/s, 44.1 kHz, joint stereo, all-zero side info.
    fn silent_frame() -> Vec<u8> {
        let mut frame = vec![0u8; 417];
        frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x40]);
        frame
    }

    #[test]
    fn parses_headers() {
        let header = parse_header(&silent_frame()).unwrap();
        assert_eq!(
            header,
            Mp3Header {
                sample_rate: 44_100,
                channels: 2,
                frame_bytes: 417,
                samples: 1152
            }
        );
        // MPEG-2, 64 kbit/s, 22.05 kHz, mono, padded.
        let header = parse_header(&[0xFF, 0xF3, 0x82, 0xC0]).unwrap();
        assert_eq!(
            (header.sample_rate, header.channels, header.frame_bytes),
            (22_050, 1, 209)
        );
        assert_eq!(parse_header(&[0xFF, 0xFD, 0x90, 0x40]), None, "Layer II");
        assert_eq!(parse_header(&[0xFF, 0xFB, 0xF0, 0x40]), None, "bad bit rate");
        assert_eq!(parse_header(&[0xFF, 0xFB]), None);
    }

    #[test]
    fn frames_split_across_tags_decode_to_the_right_length() {
        let mut transcoder = Mp3ToOpus::new(44_100, 2, 64_000).unwrap();
        let stream: Vec<u8> = (0..50).flat_map(|_| silent_frame()).collect();
        let mut packets = Vec::new();
        for (i, chunk) in stream.chunks(300).enumerate() {
            packets.extend(transcoder.push(chunk, 1000 + i as u32 * 7).unwrap());
        }
        // 50 × 1152 samples at 44.1 kHz is 62 700 at 48 kHz: 65 whole Opus frames.
        assert!((64..=65).contains(&packets.len()), "{} packets", packets.len());
        assert_eq!(packets[0].ts48, 48_000);
        assert!(packets.windows(2).all(|w| w[1].ts48 == w[0].ts48 + 960));
        assert_eq!(transcoder.skipped(), (0, 0));
    }

    #[test]
    fn garbage_is_skipped_without_panicking() {
        let mut transcoder = Mp3ToOpus::new(44_100, 1, 32_000).unwrap();
        assert_eq!(transcoder.push(&[], 0).unwrap_err(), TranscodeError::EmptyPacket);
        let mut state = 0xDEAD_BEEFu32;
        for n in 0..2000u32 {
            let data: Vec<u8> = (0..1 + n % 700)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    // Plenty of plausible sync words.
                    if i % 97 == 0 {
                        0xFF
                    } else {
                        state as u8
                    }
                })
                .collect();
            assert!(transcoder.push(&data, n * 26).is_ok());
        }
        assert!(transcoder.skipped().0 > 0);
        assert!(Mp3ToOpus::new(44_100, 3, 32_000).is_err());
    }

    #[test]
    fn a_tone_survives_mp3_to_opus_when_ffmpeg_can_make_one() {
        let ffmpeg = std::path::Path::new("/usr/bin/ffmpeg");
        if !ffmpeg.exists() {
            eprintln!("skipped: no /usr/bin/ffmpeg to encode MP3");
            return;
        }
        let output = std::process::Command::new(ffmpeg)
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100:duration=2",
            ])
            .args(["-af", "volume=4"])
            .args(["-ac", "1", "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "-"])
            .output()
            .unwrap();
        if !output.status.success() {
            eprintln!("skipped: ffmpeg has no MP3 encoder");
            return;
        }
        let mut transcoder = Mp3ToOpus::new(44_100, 1, 64_000).unwrap();
        let mut decoder = OpusDecoder::new(1).unwrap();
        let mut pcm = Vec::new();
        // An ID3 or Xing header ahead of the first frame is skipped or decodes to silence.
        for chunk in output.stdout.chunks(418) {
            for packet in transcoder.push(chunk, 0).unwrap() {
                pcm.extend(
                    decoder
                        .decode(&packet.data)
                        .unwrap()
                        .iter()
                        .map(|&s| f32::from(s) / 32_768.0),
                );
            }
        }
        assert!(pcm.len() > 80_000, "{} samples", pcm.len());
        let (hz, rms) = analyse(&pcm[pcm.len() / 4..pcm.len() * 3 / 4], 1, 48_000);
        assert!((hz - 440.0).abs() < 1.0, "{hz} Hz");
        // ffmpeg's sine source is at 1/8 full scale, times 4.
        let level_db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
        assert!(level_db.abs() < 2.0, "level off by {level_db:.2} dB");
    }
}
