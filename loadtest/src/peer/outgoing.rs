//! The publisher's media clock: which RTP packet to write into str0m, and when.
//!
//! Owns the RTP state of each outgoing track (payload type, extended sequence number,
//! timestamp base) and the real-time schedule: video at [`VIDEO_FPS`] with a keyframe on
//! the first frame, every keyframe interval ([`KEYFRAME_INTERVAL`] by default; `None`
//! means only on request, like a browser) and on the next frame after a PLI/FIR (from a
//! real clip: the clip starts over from its keyframe, and its own keyframes pass through);
//! audio one packet per 20 ms. Time comes in as arguments (sans-IO). Invariants:
//! - RTP timestamps derive from the frame/packet index, so they advance exactly with the
//!   schedule; after a stall (> [`MAX_LAG`]) the schedule skips ahead instead of bursting;
//! - sequence numbers start below 2^15 (no SRTP rollover signalling needed) and never
//!   repeat;
//! - video packets are nackable only when the negotiated payload type has RTX.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{Mid, Pt};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::Rtc;

use super::codecs::{from_str0m, MediaCodec};
use super::pacer::VideoPacer;
use super::recorder::PeerStats;
use crate::error::{Error, Result};
use crate::media::encode::Clips;
use crate::media::send_log::SendLog;
use crate::media::{audio, stamp, AudioCodec, VideoCodec, VideoSource, VIDEO_CLOCK_RATE, VIDEO_FPS};

/// Default longest gap between keyframes when nobody asks for one.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);
/// Largest keyframe, in delta frames (a 1.5 Mbit/s keyframe of 32 frames is 200 kB).
pub const KEYFRAME_FACTOR_MAX: u32 = 32;
/// A schedule further behind than this skips ahead.
pub const MAX_LAG: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct Track {
    mid: Mid,
    pt: Option<Pt>,
    nackable: bool,
    seq: u64,
    ts_base: u32,
    index: u64,
    period: Duration,
}

impl Track {
    fn new(mid: Mid, seed: u64, period: Duration) -> Self {
        Track {
            mid,
            pt: None,
            nackable: false,
            seq: seed % 30_000 + 1,
            ts_base: (seed >> 16) as u32,
            index: 0,
            period,
        }
    }

    /// Index of the next packet due at `now`, skipping ahead after a stall.
    fn due(&mut self, started: Instant, now: Instant) -> bool {
        let at = started + self.period.saturating_mul(self.index as u32);
        if at > now {
            return false;
        }
        if now.duration_since(at) > MAX_LAG {
            let elapsed = now.duration_since(started).as_nanos();
            self.index = (elapsed / self.period.as_nanos().max(1)) as u64;
        }
        true
    }

    fn next_at(&self, started: Instant) -> Instant {
        started + self.period.saturating_mul(self.index as u32)
    }

    fn write(&mut self, rtc: &mut Rtc, ts: u32, now: Instant, payload: Vec<u8>, marker: bool) -> Result<()> {
        let pt = self
            .pt
            .ok_or_else(|| Error::Rtc("track has no negotiated payload type".into()))?;
        let mut api = rtc.direct_api();
        let tx = api
            .stream_tx_by_mid(self.mid, None)
            .ok_or_else(|| Error::Rtc(format!("no send stream for mid {}", self.mid)))?;
        let w = RtpWrite::new(pt, SeqNo::from(self.seq), ts, now, payload)
            .marker(marker)
            .nackable(self.nackable);
        tx.write_rtp(w);
        self.seq += 1;
        Ok(())
    }
}

/// Load-generation media: pre-encoded clips (or frames sized from a bitrate), and how send
/// instants reach the subscribers (stamps in synthetic payloads, a send log for clips).
#[derive(Debug, Clone)]
pub struct LoadProfile {
    /// Video bitrate in bits per second; every delta frame gets `bitrate / 8 / fps` bytes,
    /// rounded to whole payloads.
    pub video_bitrate_bps: u32,
    /// A keyframe is this many delta frames (1: every frame the same size, so the rate is
    /// exact; browsers' keyframes are 5–10 times a delta frame).
    pub keyframe_factor: u32,
    /// Largest video RTP payload, in bytes.
    pub payload_max: usize,
    /// Write a send stamp (see `media::stamp`) into every payload that can carry one
    /// (synthetic media, whose filler a stamp may overwrite).
    pub stamp: bool,
    /// Record every payload's send instant here instead (real clips stay untouched; the
    /// subscribers of this publisher look their payloads up).
    pub send_log: Option<Arc<SendLog>>,
    /// Real media to send in a loop: the video clip (when its codec is the track's) replaces
    /// the bitrate-sized frames and the Opus clip replaces the synthetic audio packets.
    pub clips: Option<Clips>,
    /// Pace video like a browser: a frame's packets leave at this multiple of the bitrate
    /// (Chrome: [`super::pacer::BROWSER_PACING_FACTOR`]) instead of all at the frame's instant.
    pub pacing_factor: Option<f64>,
}

impl LoadProfile {
    /// Coded bytes of one delta frame.
    pub fn frame_bytes(&self) -> usize {
        let per_frame = (self.video_bitrate_bps / 8 / VIDEO_FPS) as usize;
        let payload = self.payload_max.max(64);
        per_frame.div_ceil(payload).max(1) * payload - 8
    }

    /// Coded bytes of a keyframe.
    pub fn keyframe_bytes(&self) -> usize {
        let factor = self.keyframe_factor.clamp(1, KEYFRAME_FACTOR_MAX) as usize;
        self.frame_bytes().saturating_add(8).saturating_mul(factor) - 8
    }
}

/// Outgoing media of a publisher.
#[derive(Debug)]
pub(crate) struct Outgoing {
    video: Option<(Track, VideoSource)>,
    audio: Option<(Track, AudioCodec)>,
    started: Option<Instant>,
    /// Delay from DTLS connected to the first frame, below one frame period: independent
    /// senders (cameras, microphones) tick at unrelated phases, so publishers that connect
    /// together must not send every frame at the same instant.
    phase: Duration,
    /// Video packets coded but not yet sent, when the load paces like a browser.
    pacer: Option<VideoPacer>,
    last_keyframe: Option<Instant>,
    force_keyframe: bool,
    keyframe_interval: Option<Duration>,
    pub sending: bool,
    pub load: Option<LoadProfile>,
    /// RTP timestamp ticks per video frame (90 kHz / frames per second).
    video_ts_step: u32,
}

impl Outgoing {
    pub fn new(
        video: Option<(Mid, VideoSource)>,
        audio: Option<(Mid, AudioCodec)>,
        keyframe_interval: Option<Duration>,
        seed: u64,
    ) -> Self {
        let vperiod = Duration::from_nanos(1_000_000_000 / u64::from(VIDEO_FPS));
        let aperiod = Duration::from_millis(u64::from(audio::PACKET_MS));
        Outgoing {
            video: video.map(|(mid, src)| (Track::new(mid, seed, vperiod), src)),
            audio: audio.map(|(mid, c)| (Track::new(mid, seed.rotate_left(29), aperiod), c)),
            started: None,
            phase: Duration::from_nanos(seed.rotate_left(13) % vperiod.as_nanos().max(1) as u64),
            pacer: None,
            last_keyframe: None,
            force_keyframe: false,
            keyframe_interval,
            sending: true,
            load: None,
            video_ts_step: VIDEO_CLOCK_RATE / VIDEO_FPS,
        }
    }

    /// Sends `fps` video frames a second (timestamps follow: 90 kHz / fps per frame).
    pub fn set_video_fps(&mut self, fps: u32) {
        let fps = fps.max(1);
        if let Some((track, _)) = &mut self.video {
            track.period = Duration::from_nanos(1_000_000_000 / u64::from(fps));
        }
        self.video_ts_step = VIDEO_CLOCK_RATE / fps;
    }

    /// Resolves each track's payload type from the answer. A track the answer rejected
    /// (no payload type) is dropped; a track answered with another codec is an error.
    pub fn bind(&mut self, rtc: &Rtc) -> Result<()> {
        let resolve = |mid: Mid, want: MediaCodec| -> Result<Option<(Pt, bool)>> {
            let Some(media) = rtc.media(mid) else {
                return Ok(None);
            };
            for pt in media.remote_pts() {
                let Some(p) = rtc.codec_config().find(|p| p.pt() == *pt) else {
                    continue;
                };
                if from_str0m(p.spec().codec) == Some(want) {
                    return Ok(Some((*pt, p.resend().is_some())));
                }
            }
            match media.remote_pts().is_empty() {
                true => Ok(None),
                false => Err(Error::Sdp(format!("answer for mid {mid} lacks {want:?}"))),
            }
        };
        if let Some((t, src)) = &mut self.video {
            match resolve(t.mid, MediaCodec::Video(src.codec()))? {
                Some((pt, rtx)) => (t.pt, t.nackable) = (Some(pt), rtx),
                None => self.video = None,
            }
        }
        if let Some((t, codec)) = &mut self.audio {
            match resolve(t.mid, MediaCodec::Audio(*codec))? {
                Some((pt, _)) => t.pt = Some(pt),
                None => self.audio = None,
            }
        }
        Ok(())
    }

    /// Starts the clock (on DTLS connected), the first packet due after this publisher's
    /// phase. Idempotent.
    pub fn start(&mut self, now: Instant) {
        self.started.get_or_insert(now + self.phase);
    }

    /// Sends a keyframe as the next video frame.
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// The codec of the video track, if it survived negotiation.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        self.video.as_ref().map(|(_, s)| s.codec())
    }

    /// When the next packet is due, if the clock runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        let started = self.started.filter(|_| self.sending)?;
        let v = self.video.as_ref().map(|(t, _)| t.next_at(started));
        let a = self.audio.as_ref().map(|(t, _)| t.next_at(started));
        let paced = self.pacer.as_ref().and_then(VideoPacer::next_at);
        v.into_iter().chain(a).chain(paced).min()
    }

    /// Writes every packet due at `now`.
    pub fn tick(&mut self, rtc: &mut Rtc, now: Instant, stats: &mut PeerStats) -> Result<()> {
        let Some(started) = self.started.filter(|_| self.sending) else {
            return Ok(());
        };
        if let Some((t, src)) = &mut self.video {
            while t.due(started, now) {
                let periodic = match (self.last_keyframe, self.keyframe_interval) {
                    (None, _) => true,
                    (Some(k), Some(every)) => now.duration_since(k) >= every,
                    (Some(_), None) => false,
                };
                let keyframe = self.force_keyframe || periodic;
                let clip = self
                    .load
                    .as_ref()
                    .and_then(|p| p.clips.as_ref()?.video.as_ref())
                    .filter(|c| c.codec() == src.codec());
                let frame = match (&self.load, clip) {
                    (Some(p), Some(clip)) => {
                        // The clip answers a request by starting over, or not at all when
                        // its keyframe went out on the frame before.
                        self.force_keyframe = false;
                        src.next_clip_frame(clip, keyframe, p.payload_max)
                    }
                    (Some(p), None) => {
                        let bytes = if keyframe {
                            p.keyframe_bytes()
                        } else {
                            p.frame_bytes()
                        };
                        src.next_frame_sized(keyframe, bytes, p.payload_max)
                    }
                    (None, _) => src.next_frame(keyframe),
                };
                let ts = t
                    .ts_base
                    .wrapping_add((t.index as u32).wrapping_mul(self.video_ts_step));
                let pacing = self.load.as_ref().and_then(|p| {
                    let factor = p.pacing_factor.filter(|f| *f > 0.0)?;
                    Some(factor * f64::from(p.video_bitrate_bps))
                });
                match pacing {
                    Some(rate) => self
                        .pacer
                        .get_or_insert_with(|| VideoPacer::new(rate))
                        .push_frame(t.next_at(started), ts, frame.packets),
                    None => {
                        let last = frame.packets.len().saturating_sub(1);
                        for (i, payload) in frame.packets.into_iter().enumerate() {
                            let packet = (ts, i == last, payload);
                            send_video(t, src.codec(), self.load.as_ref(), rtc, now, packet, stats)?;
                        }
                    }
                }
                if frame.keyframe {
                    self.force_keyframe = false;
                    self.last_keyframe = Some(now);
                    stats.keyframes_sent += 1;
                }
                stats.video_frames_sent += 1;
                t.index += 1;
            }
            if let Some(pacer) = &mut self.pacer {
                while let Some(p) = pacer.pop_due(now) {
                    let packet = (p.ts, p.marker, p.payload);
                    send_video(t, src.codec(), self.load.as_ref(), rtc, now, packet, stats)?;
                }
            }
        }
        if let Some((t, codec)) = &mut self.audio {
            while t.due(started, now) {
                let step = audio::samples_per_packet(*codec);
                let ts = t.ts_base.wrapping_add((t.index as u32).wrapping_mul(step));
                let clip = self
                    .load
                    .as_ref()
                    .and_then(|p| p.clips.as_ref())
                    .filter(|_| *codec == AudioCodec::Opus);
                let mut payload = match clip {
                    Some(c) => c.audio.packet(t.index).to_vec(),
                    None => audio::packet(*codec, t.index),
                };
                if self.load.as_ref().is_some_and(|p| p.stamp) {
                    stamp::stamp_audio(&mut payload, now);
                }
                let marker = t.index == 0;
                write_logged(t, self.load.as_ref(), rtc, now, (ts, marker, payload), stats)?;
                stats.audio_packets_sent += 1;
                t.index += 1;
            }
        }
        Ok(())
    }
}

/// Writes one video packet (RTP timestamp, marker, payload) now, stamped or logged as the
/// load wants.
fn send_video(
    t: &mut Track,
    codec: VideoCodec,
    load: Option<&LoadProfile>,
    rtc: &mut Rtc,
    now: Instant,
    (ts, marker, mut payload): (u32, bool, Vec<u8>),
    stats: &mut PeerStats,
) -> Result<()> {
    if load.is_some_and(|p| p.stamp) {
        stamp::stamp_video(codec, &mut payload, now);
    }
    write_logged(t, load, rtc, now, (ts, marker, payload), stats)?;
    stats.video_packets_sent += 1;
    Ok(())
}

/// Writes one packet (of either kind) now, after recording its send in the load's send log.
fn write_logged(
    t: &mut Track,
    load: Option<&LoadProfile>,
    rtc: &mut Rtc,
    now: Instant,
    (ts, marker, payload): (u32, bool, Vec<u8>),
    stats: &mut PeerStats,
) -> Result<()> {
    if let Some(log) = load.and_then(|p| p.send_log.as_deref()) {
        log.record(&payload, now);
    }
    stats.payload_bytes_sent += payload.len() as u64;
    t.write(rtc, ts, now, payload, marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishers_start_at_their_own_phase_within_a_frame() {
        let now = Instant::now();
        let frame = Duration::from_nanos(1_000_000_000 / u64::from(VIDEO_FPS));
        let first_packet = |seed: u64| {
            let mut out = Outgoing::new(None, Some((Mid::from("0"), AudioCodec::Opus)), None, seed);
            assert_eq!(out.next_deadline(), None, "no clock before DTLS");
            out.start(now);
            out.start(now + Duration::from_secs(1));
            out.next_deadline().unwrap().duration_since(now)
        };
        let phases: Vec<Duration> = (1..=8u64)
            .map(|s| first_packet(s.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert!(phases.iter().all(|p| *p < frame), "{phases:?}");
        let mut distinct = phases.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 4, "publishers do not tick together: {phases:?}");
    }

    #[test]
    fn keyframes_are_whole_multiples_of_a_delta_frame() {
        let profile = |keyframe_factor| LoadProfile {
            video_bitrate_bps: 1_500_000,
            keyframe_factor,
            payload_max: 1150,
            stamp: false,
            send_log: None,
            clips: None,
            pacing_factor: None,
        };
        // 1.5 Mbit/s at 30 fps: 6250 bytes, six 1150-byte payloads (the last 8 bytes short).
        assert_eq!(profile(1).frame_bytes(), 6 * 1150 - 8);
        assert_eq!(profile(1).keyframe_bytes(), profile(1).frame_bytes());
        assert_eq!(profile(8).keyframe_bytes(), 48 * 1150 - 8);
        assert_eq!(
            profile(u32::MAX).keyframe_bytes(),
            profile(KEYFRAME_FACTOR_MAX).keyframe_bytes(),
            "clamped"
        );
    }
}
