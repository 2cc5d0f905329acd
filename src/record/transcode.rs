//! G.711 to Opus for a recording: decode, upsample to 48 kHz, cut into 20 ms frames and
//! encode with libopus, keeping each frame's RTP time (in 48 kHz ticks) and sender report.
//!
//! Runs on a writer thread, one per G.711 recording (audio transcoding never runs on a
//! worker). Invariants: output frames are exactly 20 ms apart in RTP time; a jump in the
//! input's timestamps drops the partial frame and starts again there, so timing never
//! drifts; without libopus the frames are Opus silence, so the file's timing still holds.

use std::sync::Arc;

use super::frame::{FramePayload, TapFrame};
use super::muxer::OPUS_SILENCE;
use crate::media::clock::SenderClock;
use crate::media::g711::{decode, Upsampler};
use crate::media::opus_encoder::{OpusEncoder, OPUS_FRAME_SAMPLES};

/// 48 kHz ticks per 8 kHz tick.
const UPSAMPLE: u32 = 6;

pub struct G711ToOpus {
    upsampler: Upsampler,
    /// Upsampled samples waiting for a whole frame.
    pcm: Vec<i16>,
    /// The 48 kHz RTP time of `pcm[0]`.
    next_ts: Option<u32>,
    encoder: Option<OpusEncoder>,
    scratch: Vec<i16>,
}

impl Default for G711ToOpus {
    fn default() -> Self {
        G711ToOpus {
            upsampler: Upsampler::default(),
            pcm: Vec::new(),
            next_ts: None,
            encoder: OpusEncoder::narrowband(),
            scratch: Vec::new(),
        }
    }
}

impl G711ToOpus {
    /// Whether libopus is there (else the frames are silence).
    pub fn encodes(&self) -> bool {
        self.encoder.is_some()
    }

    /// One G.711 frame in, the Opus frames it completes out (other frames pass through).
    pub fn push(&mut self, frame: TapFrame, out: &mut Vec<TapFrame>) {
        let FramePayload::G711 { law, data } = &frame.payload else {
            out.push(frame);
            return;
        };
        let ts = frame.rtp_ts.wrapping_mul(UPSAMPLE);
        let buffered = u32::try_from(self.pcm.len()).unwrap_or(u32::MAX);
        let expected = self.next_ts.map(|t| t.wrapping_add(buffered));
        if expected != Some(ts) {
            self.pcm.clear();
            self.next_ts = Some(ts);
        }
        self.scratch.clear();
        self.scratch.extend(data.iter().map(|b| decode(*law, *b)));
        self.upsampler.push(&self.scratch, &mut self.pcm);
        let sender = frame.sender.map(|s| SenderClock {
            ntp: s.ntp,
            rtp: s.rtp.wrapping_mul(UPSAMPLE),
        });
        while self.pcm.len() >= OPUS_FRAME_SAMPLES {
            let Some(start) = self.next_ts else {
                return;
            };
            let packet = self
                .encoder
                .as_mut()
                .and_then(|e| e.encode(self.pcm.get(..OPUS_FRAME_SAMPLES).unwrap_or_default()))
                .unwrap_or_else(|| OPUS_SILENCE.to_vec());
            self.pcm.drain(..OPUS_FRAME_SAMPLES);
            self.next_ts = Some(start.wrapping_add(OPUS_FRAME_SAMPLES as u32));
            out.push(TapFrame {
                rtp_ts: start,
                arrival: frame.arrival,
                sender,
                keyframe: true,
                payload: FramePayload::Opus(Arc::from(packet)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::media::g711::Law;

    #[test]
    fn twenty_ms_of_pcmu_makes_one_opus_frame_at_six_times_its_clock() {
        let mut t = G711ToOpus::default();
        assert!(t.encodes(), "libopus.so.0 comes with ffmpeg");
        let mut out = Vec::new();
        let now = Instant::now();
        for i in 0..5u32 {
            let frame = TapFrame {
                rtp_ts: 1000 + i * 160,
                arrival: now,
                sender: None,
                keyframe: true,
                payload: FramePayload::G711 {
                    law: Law::Mu,
                    data: Arc::from(vec![0x10u8; 160]),
                },
            };
            t.push(frame, &mut out);
        }
        assert_eq!(out.len(), 5);
        for (i, frame) in out.iter().enumerate() {
            assert_eq!(frame.rtp_ts, 6000 + i as u32 * 960);
            assert!(matches!(&frame.payload, FramePayload::Opus(p) if !p.is_empty()));
        }
        // A jump starts again at the new time.
        let frame = TapFrame {
            rtp_ts: 50_000,
            arrival: now,
            sender: None,
            keyframe: true,
            payload: FramePayload::G711 {
                law: Law::A,
                data: Arc::from(vec![0xd5u8; 80]),
            },
        };
        t.push(frame, &mut out);
        assert_eq!(out.len(), 5, "half a frame waits");
    }
}
