//! The muxer's padding: black pictures (H.264 or VP8, at the stream's size) and Opus silence
//! that fill every stretch of a track with no media of its own, and the silences reported.
//!
//! Part of the muxer (same thread, same invariants; see `mod.rs`). Padding fills whole
//! pictures and frames: a gap shorter than one is left for the next sample to close.

use super::{
    MuxEvent, Muxer, BLACK_FRAME_TICKS, BLACK_IDR_INTERVAL, OPUS_FRAME_TICKS, OPUS_SILENCE, PAD_LAG,
};
use crate::media::black_h264::BlackH264;

pub(super) enum Black {
    H264 { pictures: BlackH264, next: u32 },
    Vp8(Vec<u8>),
}

impl Muxer {
    /// Black pictures on the video track up to file tick `until`, whole slots only: what is
    /// left of a slot stays a gap (the next picture starts at the cursor), so every picture
    /// stays on the 30-a-second grid. (A remainder absorbed into the last black picture put
    /// the pictures after it off the grid; ffmpeg then guessed a frame rate just under 30 from
    /// the file's average and gave two pictures the same output time.)
    pub(super) fn fill_black(&mut self, until: i64) {
        let mut left = until - self.video.cursor;
        if left >= BLACK_FRAME_TICKS && !self.in_black {
            if let Some(Black::H264 { next, .. }) = &mut self.black {
                *next = 0;
            }
        }
        while left >= BLACK_FRAME_TICKS {
            left -= BLACK_FRAME_TICKS;
            let duration = u32::try_from(BLACK_FRAME_TICKS).unwrap_or(1);
            let (bytes, keyframe) = match &mut self.black {
                Some(Black::H264 { pictures, next }) => {
                    // An IDR each second so the padding can be seeked into.
                    let idr = *next % BLACK_IDR_INTERVAL == 0;
                    let nal = if idr {
                        pictures.idr().to_vec()
                    } else {
                        pictures.repeat(*next % BLACK_IDR_INTERVAL)
                    };
                    *next += 1;
                    let mut bytes = u32::try_from(nal.len()).unwrap_or(0).to_be_bytes().to_vec();
                    bytes.extend_from_slice(&nal);
                    (bytes, idr)
                }
                Some(Black::Vp8(frame)) => (frame.clone(), true),
                None => return,
            };
            self.video.push(duration, &bytes, keyframe);
            self.in_black = true;
        }
    }

    /// Opus silence on the audio track up to file tick `until` (as [`Muxer::fill_black`]).
    pub(super) fn fill_silence(&mut self, until: i64) {
        let from = self.audio.cursor;
        while self.audio.cursor < until {
            let duration = (until - self.audio.cursor).min(OPUS_FRAME_TICKS);
            self.audio
                .push(u32::try_from(duration).unwrap_or(1), &OPUS_SILENCE, true);
        }
        if self.audio.cursor > from {
            let ms = |ticks: i64| u64::try_from(ticks / 48).unwrap_or(0);
            let (from_ms, to_ms) = (ms(from), ms(self.audio.cursor));
            match &mut self.silence {
                Some((_, end)) if *end == from_ms => *end = to_ms,
                _ => {
                    self.report_silence();
                    self.silence = Some((from_ms, to_ms));
                }
            }
        }
    }

    pub(super) fn report_silence(&mut self) {
        if let Some((from_ms, to_ms)) = self.silence.take() {
            self.events.push_back(MuxEvent::Silence { from_ms, to_ms });
        }
    }

    /// A track with no sample of its own waiting (no video yet, no audio at all) follows the
    /// other, [`PAD_LAG`] behind, so the file never holds one track without the other.
    pub(super) fn pad_idle_tracks(&mut self) {
        let end = self
            .video
            .micros(self.video.cursor)
            .max(self.audio.micros(self.audio.cursor));
        let target = end - i64::try_from(PAD_LAG.as_micros()).unwrap_or(0);
        if self.video.pending.is_none() && self.video.real_samples == 0 {
            let until = self.video.ticks_from_micros(target);
            self.fill_black(until);
        }
        if self.audio.pending.is_none() && !self.audio.started() {
            let until = self.audio.ticks_from_micros(target);
            self.fill_silence(until);
        }
    }
}
