//! Decoded PCM at any rate and channel count to 20 ms, 48 kHz Opus packets with continuous RTP
//! timestamps: the half of AAC→Opus and MP3→Opus that does not depend on the source codec.
//!
//! Sans-IO, on a transcoder thread (never a media worker). Invariants: the Opus channel count
//! is fixed at construction and every input is mapped to it; RTP timestamps come from the
//! samples emitted ([`Timeline`]), so they advance exactly 960 per packet except across an
//! input gap (forward by the gap) and never go back; the PCM held between calls is less than
//! one Opus frame.

use super::opus_encoder::{OpusEncoder, OPUS_FRAME_SAMPLES};
use super::resample::{to_i16, Resampler};
use super::transcode::{Timeline, TranscodeError};

const OPUS_RATE: u32 = 48_000;

/// One 20 ms Opus packet and its RTP timestamp (48 kHz clock, wrapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusOut {
    pub data: Vec<u8>,
    pub ts48: u32,
}

/// Decoded PCM (interleaved f32, any rate and channel count) to 20 ms Opus packets with
/// continuous 48 kHz timestamps.
pub struct OpusFramer {
    encoder: OpusEncoder,
    channels: usize,
    /// The resampler and the input rate it converts from; rebuilt if the decoder's rate changes.
    resampler: Option<(u32, Resampler)>,
    /// 48 kHz interleaved PCM not yet a whole Opus frame.
    pending: Vec<f32>,
    timeline: Timeline,
}

impl OpusFramer {
    pub fn new(channels: u8, opus_bitrate_bps: u32) -> Result<Self, TranscodeError> {
        let bitrate = i32::try_from(opus_bitrate_bps)
            .map_err(|_| TranscodeError::InvalidParameter(format!("Opus bitrate {opus_bitrate_bps}")))?;
        let encoder = OpusEncoder::new(channels, bitrate)?;
        Ok(OpusFramer {
            channels: encoder.channels(),
            encoder,
            resampler: None,
            pending: Vec::with_capacity(2 * OPUS_FRAME_SAMPLES * 2),
            timeline: Timeline::new(1000, OPUS_RATE, OPUS_RATE)?,
        })
    }

    /// Add `samples` (interleaved, `channels` per frame, at `rate`) that started at `pts_ms`.
    pub fn push_pcm(
        &mut self,
        samples: &[f32],
        channels: usize,
        rate: u32,
        pts_ms: u32,
    ) -> Result<Vec<OpusOut>, TranscodeError> {
        if channels == 0 || !samples.len().is_multiple_of(channels) {
            return Err(TranscodeError::Decode(format!(
                "{} samples in {channels} channels",
                samples.len()
            )));
        }
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let resampler = match &mut self.resampler {
            Some((from, resampler)) if *from == rate => resampler,
            slot => {
                &mut slot
                    .insert((rate, Resampler::new(rate, OPUS_RATE, self.channels as u8)?))
                    .1
            }
        };
        let mapped = map_channels(samples, channels, self.channels);
        self.timeline
            .on_input(pts_ms, (samples.len() / channels) as u64, rate);
        resampler.process(&mapped, &mut self.pending)?;

        let frame = OPUS_FRAME_SAMPLES * self.channels;
        let mut packets = Vec::with_capacity(self.pending.len() / frame);
        let mut pcm = Vec::with_capacity(frame);
        while self.pending.len() >= frame {
            pcm.clear();
            pcm.extend(self.pending.drain(..frame).map(to_i16));
            let data = self
                .encoder
                .encode(&pcm)
                .ok_or_else(|| TranscodeError::Encode("libopus refused a frame".into()))?;
            packets.push(OpusOut {
                data,
                ts48: self.timeline.next_output(OPUS_FRAME_SAMPLES as u32),
            });
        }
        Ok(packets)
    }

    /// The Opus stream's channel count (1 or 2).
    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn reanchors(&self) -> u64 {
        self.timeline.reanchors()
    }
}

/// Interleaved `from`-channel audio as `to` (1 or 2) channels. More than two channels (in the
/// decoder's FL, FR, FC, ... order) fold the centre into both sides.
fn map_channels(samples: &[f32], from: usize, to: usize) -> Vec<f32> {
    if from == to {
        return samples.to_vec();
    }
    let mut out = Vec::with_capacity(samples.len() / from.max(1) * to);
    for frame in samples.chunks_exact(from) {
        let (left, right) = match *frame {
            [mono] => (mono, mono),
            [left, right] => (left, right),
            [left, right, centre, ..] => {
                let centre = centre * std::f32::consts::FRAC_1_SQRT_2;
                ((left + centre) * 0.586, (right + centre) * 0.586)
            }
            [] => (0.0, 0.0),
        };
        if to == 1 {
            out.push(0.5 * (left + right));
        } else {
            out.extend([left, right]);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `seconds` of a `hz` tone at amplitude 0.5 (-6 dBFS), interleaved.
    pub fn tone(rate: u32, channels: usize, hz: f64, seconds: f64) -> Vec<f32> {
        let frames = (f64::from(rate) * seconds) as usize;
        (0..frames)
            .flat_map(|i| {
                let s = (i as f64 * hz * std::f64::consts::TAU / f64::from(rate)).sin() as f32 * 0.5;
                std::iter::repeat_n(s, channels)
            })
            .collect()
    }

    /// Frequency (upward crossings, with hysteresis against coding noise) and RMS of channel
    /// 0 of interleaved audio.
    pub fn analyse(samples: &[f32], channels: usize, rate: u32) -> (f64, f64) {
        let mono: Vec<f32> = samples.iter().step_by(channels).copied().collect();
        let (mut armed, mut crossings) = (false, Vec::new());
        for (i, &s) in mono.iter().enumerate() {
            if s < -0.1 {
                armed = true;
            } else if armed && s > 0.1 {
                armed = false;
                crossings.push(i);
            }
        }
        let (first, last) = (crossings[0], crossings[crossings.len() - 1]);
        let hz = (crossings.len() - 1) as f64 * f64::from(rate) / (last - first) as f64;
        let rms = (mono.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / mono.len() as f64).sqrt();
        (hz, rms)
    }

    #[test]
    fn multichannel_folds_to_stereo() {
        let five = [0.1, 0.2, 0.3, 0.0, 0.0];
        let stereo = map_channels(&five, 5, 2);
        assert!((stereo[0] - (0.1 + 0.3 * std::f32::consts::FRAC_1_SQRT_2) * 0.586).abs() < 1e-6);
        assert_eq!(map_channels(&[0.5], 1, 2), [0.5, 0.5]);
        assert!((map_channels(&[0.2, 0.4], 2, 1)[0] - 0.3).abs() < 1e-6);
    }
}
