//! The tap: a player endpoint whose "network" is a queue to another thread — a recording's
//! writer thread, or the RTMP bridge on the control thread (an RTMP player or push of a
//! browser's stream). Forwarding writes a publisher's packets into it like into any player
//! (a recorder keeps the publisher's own timestamps: its rewriter has seed 0); it joins them
//! into frames (RFC 6184 H.264, VP8, Opus and G.711 as they are) and queues each.
//!
//! Runs on the worker that owns the publisher; never touches the disk, never blocks.
//! Invariants: only complete frames leave it; after a frame it could not assemble it asks
//! for a keyframe and drops pictures until one comes; a full writer queue fails this
//! recording only (the tap stops, the writer reports it), while a full bridge queue drops
//! frames (pictures until the next keyframe, which it asks for) since the bridge's player
//! jumps to the live edge; dropping the tap closes the recording or the bridge's queue.

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
/// While the tap waits for a keyframe after a loss it asks again this often (a request can
/// be lost too).
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);

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

impl RecorderSpec {
    /// The tap was never added (its publisher is gone): close the recording as a tap's end
    /// would, so the writer finishes (or drops) it.
    pub fn abandon(self) {
        if !self.queue.close(self.recording) {
            self.shared.closed.store(true, Ordering::Relaxed);
        }
    }
}

/// What the control thread gives a worker to add a tap for the RTMP bridge.
pub struct BridgeTapSpec {
    pub frames: tokio::sync::mpsc::Sender<TapFrame>,
    pub video: Option<VideoCodec>,
    pub audio: Option<RecordedAudio>,
    /// Frames dropped because the bridge's queue was full (the bridge's counter, in `/health`).
    pub dropped: Arc<std::sync::atomic::AtomicU64>,
}

/// Where a tap's frames go.
enum TapSink {
    Recording(RecorderSpec),
    Bridge(BridgeTapSpec),
}

enum Depacketizer {
    H264(H264Depacketizer),
    Vp8(Vp8Depacketizer),
}

impl Depacketizer {
    fn push(&mut self, rtp: &OutgoingRtp) {
        let (seq, ts, marker) = (rtp.header.seq, rtp.header.ts, rtp.marker);
        match self {
            Depacketizer::H264(d) => d.push(seq, ts, marker, &rtp.payload),
            Depacketizer::Vp8(d) => d.push(seq, ts, marker, &rtp.payload),
        }
    }

    /// The next finished frame: (damaged, keyframe, RTP time, payload).
    fn pop(&mut self) -> Option<(bool, bool, u32, FramePayload)> {
        match self {
            Depacketizer::H264(d) => d
                .pop()
                .map(|u| (u.damaged, u.keyframe, u.rtp_timestamp, FramePayload::H264(u.nals))),
            Depacketizer::Vp8(d) => d
                .pop()
                .map(|f| (f.damaged, f.keyframe, f.rtp_timestamp, FramePayload::Vp8(f.data))),
        }
    }
}

pub struct RecorderTap {
    sink: TapSink,
    video: Option<Depacketizer>,
    audio: Option<RecordedAudio>,
    /// A picture was lost: drop pictures until a keyframe.
    awaiting_keyframe: bool,
    /// Ask the publisher for a keyframe on the next poll.
    want_keyframe: bool,
    /// When the tap last asked (it asks again each [`KEYFRAME_RETRY`] while it waits).
    last_request: Option<Instant>,
    stopped: bool,
    timeout: Instant,
}

impl RecorderTap {
    pub fn new(spec: RecorderSpec, now: Instant) -> Self {
        let (video, audio) = (spec.video, spec.audio);
        Self::with_sink(TapSink::Recording(spec), video, audio, now)
    }

    /// A tap feeding the RTMP bridge.
    pub fn bridge(spec: BridgeTapSpec, now: Instant) -> Self {
        let (video, audio) = (spec.video, spec.audio);
        Self::with_sink(TapSink::Bridge(spec), video, audio, now)
    }

    fn with_sink(
        sink: TapSink,
        video: Option<VideoCodec>,
        audio: Option<RecordedAudio>,
        now: Instant,
    ) -> Self {
        let video = match video {
            Some(VideoCodec::H264) => Some(Depacketizer::H264(H264Depacketizer::default())),
            Some(VideoCodec::Vp8) => Some(Depacketizer::Vp8(Vp8Depacketizer::default())),
            None => None,
        };
        RecorderTap {
            sink,
            video,
            audio,
            awaiting_keyframe: false,
            want_keyframe: false,
            last_request: None,
            stopped: false,
            timeout: now + TAP_TIMEOUT,
        }
    }

    pub fn write_batch(&mut self, writes: impl IntoIterator<Item = (Mid, MediaKind, OutgoingRtp)>) {
        for (_, kind, rtp) in writes {
            if self.stopped || self.sink_failed() {
                self.stopped = true;
                return;
            }
            match kind {
                MediaKind::Audio => {
                    let payload = match self.audio {
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
        depacketizer.push(rtp);
        while let Some((damaged, keyframe, rtp_ts, payload)) = self.video.as_mut().and_then(Depacketizer::pop)
        {
            if damaged || (self.awaiting_keyframe && !keyframe) {
                if let TapSink::Recording(spec) = &self.sink {
                    spec.shared.frames_damaged.fetch_add(1, Ordering::Relaxed);
                }
                self.awaiting_keyframe = true;
                let due = self
                    .last_request
                    .is_none_or(|at| rtp.arrival.saturating_duration_since(at) >= KEYFRAME_RETRY);
                if damaged || due {
                    self.want_keyframe = true;
                    self.last_request = Some(rtp.arrival);
                }
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

    fn sink_failed(&self) -> bool {
        match &self.sink {
            TapSink::Recording(spec) => spec.shared.failed.load(Ordering::Relaxed),
            TapSink::Bridge(spec) => spec.frames.is_closed(),
        }
    }

    fn send(&mut self, frame: TapFrame) {
        match &self.sink {
            TapSink::Recording(spec) => {
                if spec.queue.frame(spec.recording, frame).is_err() {
                    tracing::warn!(recording = %spec.recording, "recorder queue full; the recording stops");
                    spec.shared.overflowed.store(true, Ordering::Relaxed);
                    self.stopped = true;
                }
            }
            TapSink::Bridge(spec) => {
                let video = frame.is_video();
                match spec.frames.try_send(frame) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                        spec.dropped.fetch_add(1, Ordering::Relaxed);
                        if video {
                            // The pictures after this one need it: start again at a keyframe.
                            self.awaiting_keyframe = true;
                            self.want_keyframe = true;
                        }
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => self.stopped = true,
                }
            }
        }
    }

    pub fn poll(&mut self, effects: &mut PollEffects) -> Instant {
        effects.keyframe_requested |= std::mem::take(&mut self.want_keyframe);
        self.timeout
    }
}

impl Drop for RecorderTap {
    fn drop(&mut self) {
        if let TapSink::Recording(spec) = &self.sink {
            if !spec.queue.close(spec.recording) {
                spec.shared.closed.store(true, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use str0m::media::Pt;

    use super::*;
    use crate::forward::rewrite::Rewritten;
    use crate::record::queue::WriterInput;

    fn packet(
        seq: u64,
        ts: u32,
        marker: bool,
        payload: &[u8],
        now: Instant,
    ) -> (Mid, MediaKind, OutgoingRtp) {
        let rtp = OutgoingRtp {
            header: Rewritten {
                pt: Pt::from(102),
                seq,
                ts,
            },
            marker,
            arrival: now,
            payload: Arc::from(payload),
            sender: None,
        };
        (Mid::from("1"), MediaKind::Video, rtp)
    }

    /// A picture in two FU-A packets.
    fn picture(seq: u64, ts: u32, key: bool, now: Instant) -> [(Mid, MediaKind, OutgoingRtp); 2] {
        let kind = if key { 5 } else { 1 };
        [
            packet(seq, ts, false, &[0x7c, 0x80 | kind, 1, 2, 3], now),
            packet(seq + 1, ts, true, &[0x7c, 0x40 | kind, 4, 5, 6], now),
        ]
    }

    fn tap(
        depth: usize,
    ) -> (
        RecorderTap,
        crossbeam_channel::Receiver<WriterInput>,
        Arc<RecordingShared>,
    ) {
        let (tx, rx) = crossbeam_channel::bounded(depth);
        let shared = Arc::new(RecordingShared::default());
        let spec = RecorderSpec {
            recording: RecordingId(1),
            queue: WriterQueue::new(tx, Arc::new(AtomicUsize::new(0))),
            shared: shared.clone(),
            video: Some(VideoCodec::H264),
            audio: Some(crate::record::frame::RecordedAudio::Opus),
        };
        (RecorderTap::new(spec, Instant::now()), rx, shared)
    }

    #[test]
    fn a_lost_packet_drops_pictures_until_a_keyframe_and_asks_for_one() {
        let (mut tap, rx, shared) = tap(64);
        let now = Instant::now();
        tap.write_batch(picture(1, 0, true, now));
        // The second picture loses its first packet; the third is a delta, the fourth a key.
        let [_, tail] = picture(3, 3000, false, now);
        tap.write_batch([tail]);
        tap.write_batch(picture(5, 6000, false, now));
        let mut effects = PollEffects::default();
        tap.poll(&mut effects);
        assert!(effects.keyframe_requested, "a keyframe was asked for");
        tap.write_batch(picture(7, 9000, true, now));
        let frames: Vec<(u32, bool)> = rx
            .try_iter()
            .filter_map(|input| match input {
                WriterInput::Frame(_, f) => Some((f.rtp_ts, f.keyframe)),
                _ => None,
            })
            .collect();
        assert_eq!(
            frames,
            [(0, true), (9000, true)],
            "only whole pictures, from a keyframe on"
        );
        assert!(shared.frames_damaged.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn a_full_queue_stops_the_tap_and_flags_the_recording() {
        let (mut tap, rx, shared) = tap(1);
        let now = Instant::now();
        tap.write_batch(picture(1, 0, true, now));
        tap.write_batch(picture(3, 3000, false, now));
        assert!(shared.overflowed.load(Ordering::Relaxed));
        assert_eq!(rx.len(), 1);
        drop(tap);
        assert!(
            shared.closed.load(Ordering::Relaxed),
            "the close found the queue full too"
        );
    }

    #[test]
    fn a_tap_never_added_still_closes_its_recording() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let spec = RecorderSpec {
            recording: RecordingId(9),
            queue: WriterQueue::new(tx, Arc::new(AtomicUsize::new(0))),
            shared: Arc::new(RecordingShared::default()),
            video: None,
            audio: None,
        };
        spec.abandon();
        assert!(matches!(rx.try_recv(), Ok(WriterInput::Close(RecordingId(9)))));
    }
}
