//! The recorder tap: a player endpoint whose "network" is a writer thread's queue. Forwarding
//! writes a publisher's packets into it like into any player (with the publisher's own
//! timestamps: its rewriter has seed 0); it joins them into frames (RFC 6184 H.264, VP8,
//! Opus as is) and queues each for the writer.
//!
//! Runs on the worker that owns the publisher; never touches the disk, never blocks.
//! Invariants: only complete frames leave it; after a frame it could not assemble it asks
//! for a keyframe and drops pictures until one comes; a full writer queue fails this
//! recording only (the tap stops, the writer reports it); dropping the tap closes the
//! recording.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};

use super::PollEffects;
use crate::forward::OutgoingRtp;
use crate::ids::RecordingId;
use crate::media::h264::H264Depacketizer;
use crate::media::vp8::Vp8Depacketizer;
use crate::record::frame::{FramePayload, RecordedAudio, TapFrame, VideoCodec};
use crate::record::{RecordingShared, WriterQueue};

/// A tap has no timers of its own: its wakeup is this far out (one constant, so the timer
/// heap gets one entry).
const TAP_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What the control thread gives a worker to add a tap.
pub struct RecorderSpec {
    pub recording: RecordingId,
    pub queue: WriterQueue,
    pub shared: Arc<RecordingShared>,
    /// The publisher's video codec, if it sends one the recorder takes.
    pub video: Option<VideoCodec>,
    /// The publisher's audio, if the recorder takes it (else the file gets silence).
    pub audio: Option<RecordedAudio>,
}

enum Depacketizer {
    H264(H264Depacketizer),
    Vp8(Vp8Depacketizer),
}

pub struct RecorderTap {
    spec: RecorderSpec,
    video: Option<Depacketizer>,
    /// A picture was lost: drop pictures until a keyframe.
    awaiting_keyframe: bool,
    /// Ask the publisher for a keyframe on the next poll.
    want_keyframe: bool,
    stopped: bool,
    timeout: Instant,
}

impl RecorderTap {
    pub fn new(spec: RecorderSpec, now: Instant) -> Self {
        let video = match spec.video {
            Some(VideoCodec::H264) => Some(Depacketizer::H264(H264Depacketizer::default())),
            Some(VideoCodec::Vp8) => Some(Depacketizer::Vp8(Vp8Depacketizer::default())),
            None => None,
        };
        RecorderTap {
            spec,
            video,
            awaiting_keyframe: false,
            want_keyframe: false,
            stopped: false,
            timeout: now + TAP_TIMEOUT,
        }
    }

    pub fn write_batch(&mut self, writes: impl IntoIterator<Item = (Mid, MediaKind, OutgoingRtp)>) {
        for (_, kind, rtp) in writes {
            if self.stopped || self.spec.shared.failed.load(Ordering::Relaxed) {
                self.stopped = true;
                return;
            }
            match kind {
                MediaKind::Audio => {
                    let payload = match self.spec.audio {
                        Some(RecordedAudio::Opus) => FramePayload::Opus(rtp.payload),
                        Some(RecordedAudio::G711(law)) => FramePayload::G711 {
                            law,
                            data: rtp.payload,
                        },
                        None => continue,
                    };
                    let frame = TapFrame {
                        rtp_ts: rtp.header.ts,
                        arrival: rtp.arrival,
                        sender: rtp.sender,
                        keyframe: true,
                        payload,
                    };
                    self.send(frame);
                }
                MediaKind::Video => self.video_packet(&rtp),
            }
        }
    }

    fn video_packet(&mut self, rtp: &OutgoingRtp) {
        let Some(depacketizer) = self.video.as_mut() else {
            return;
        };
        let (seq, ts, marker) = (rtp.header.seq, rtp.header.ts, rtp.marker);
        let mut frames = Vec::new();
        match depacketizer {
            Depacketizer::H264(d) => {
                d.push(seq, ts, marker, &rtp.payload);
                while let Some(unit) = d.pop() {
                    frames.push((
                        unit.damaged,
                        unit.keyframe,
                        unit.rtp_timestamp,
                        FramePayload::H264(unit.nals),
                    ));
                }
            }
            Depacketizer::Vp8(d) => {
                d.push(seq, ts, marker, &rtp.payload);
                while let Some(frame) = d.pop() {
                    frames.push((
                        frame.damaged,
                        frame.keyframe,
                        frame.rtp_timestamp,
                        FramePayload::Vp8(frame.data),
                    ));
                }
            }
        }
        for (damaged, keyframe, rtp_ts, payload) in frames {
            if damaged {
                self.awaiting_keyframe = true;
                self.want_keyframe = true;
                continue;
            }
            if self.awaiting_keyframe && !keyframe {
                continue;
            }
            self.awaiting_keyframe = false;
            self.send(TapFrame {
                rtp_ts,
                arrival: rtp.arrival,
                sender: rtp.sender,
                keyframe,
                payload,
            });
        }
    }

    fn send(&mut self, frame: TapFrame) {
        if self.spec.queue.frame(self.spec.recording, frame).is_err() {
            tracing::warn!(recording = %self.spec.recording, "recorder queue full; the recording stops");
            self.spec.shared.overflowed.store(true, Ordering::Relaxed);
            self.stopped = true;
        }
    }

    pub fn poll(&mut self, effects: &mut PollEffects) -> Instant {
        effects.keyframe_requested |= std::mem::take(&mut self.want_keyframe);
        self.timeout
    }
}

impl Drop for RecorderTap {
    fn drop(&mut self) {
        if !self.spec.queue.close(self.spec.recording) {
            self.spec.shared.closed.store(true, Ordering::Relaxed);
        }
    }
}
