//! Send-time stamps carried inside RTP payloads, for one-way delay measurement.
//!
//! Owns the stamp format: the last [`STAMP_LEN`] bytes of a payload are the magic
//! [`STAMP_MAGIC`] followed by the send instant as big-endian nanoseconds since this
//! process's [`epoch`]. Publisher and subscriber live in one process, so one clock serves
//! both ends. The SFU forwards payloads untouched, so the stamp survives forwarding.
//! Invariants: a stamp never touches the bytes a depacketizer or keyframe detector reads
//! (the H.264 NAL/FU headers, the VP8 descriptor and frame tag, the Opus TOC): payloads too
//! short or of a kind where the tail matters (STAP-A) are left unstamped. Only synthetic
//! payloads are stamped (the bytes overwritten are filler); real clips stay untouched and
//! their delay comes from the publisher's `send_log`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{h264, VideoCodec};

/// Magic bytes that open a stamp.
pub const STAMP_MAGIC: [u8; 4] = *b"WcLt";
/// Bytes a stamp occupies at the end of a payload.
pub const STAMP_LEN: usize = 12;
/// Shortest video payload that gets a stamp (headers stay clear of it).
const VIDEO_STAMP_MIN_LEN: usize = 48;

/// The process-wide reference instant of stamps (fixed at first use).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn encode(at: Instant) -> [u8; STAMP_LEN] {
    let ns = at.saturating_duration_since(epoch()).as_nanos() as u64;
    let mut out = [0u8; STAMP_LEN];
    out[..4].copy_from_slice(&STAMP_MAGIC);
    out[4..].copy_from_slice(&ns.to_be_bytes());
    out
}

/// Overwrites the tail of a video payload with a stamp when that is harmless; returns
/// whether it did.
pub fn stamp_video(codec: VideoCodec, payload: &mut [u8], at: Instant) -> bool {
    if payload.len() < VIDEO_STAMP_MIN_LEN {
        return false;
    }
    let harmless = match codec {
        VideoCodec::Vp8 => true,
        VideoCodec::H264 => matches!(
            payload.first().map(|b| b & 0x1f),
            Some(h264::NAL_FU_A | h264::NAL_SLICE | h264::NAL_IDR)
        ),
    };
    if !harmless {
        return false;
    }
    let at_tail = payload.len() - STAMP_LEN;
    match payload.get_mut(at_tail..) {
        Some(tail) => {
            tail.copy_from_slice(&encode(at));
            true
        }
        None => false,
    }
}

/// Appends a stamp to an audio payload (Opus and G.711 tolerate any length).
pub fn stamp_audio(payload: &mut Vec<u8>, at: Instant) {
    payload.extend_from_slice(&encode(at));
}

/// The send instant of a stamped payload, relative to [`epoch`].
pub fn read(payload: &[u8]) -> Option<Duration> {
    let start = payload.len().checked_sub(STAMP_LEN)?;
    let tail = payload.get(start..)?;
    let (magic, ns) = tail.split_at_checked(4)?;
    if magic != STAMP_MAGIC {
        return None;
    }
    let ns: [u8; 8] = ns.try_into().ok()?;
    Some(Duration::from_nanos(u64::from_be_bytes(ns)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::VideoSource;

    #[test]
    fn stamps_round_trip_and_spare_headers() {
        let at = epoch() + Duration::from_millis(1234);
        let mut src = VideoSource::new(VideoCodec::H264, 640, 480);
        let frame = src.next_frame_sized(true, 6000, 1150);
        let mut stamped = 0;
        for mut p in frame.packets {
            let head = p.get(..2).map(<[u8]>::to_vec);
            if stamp_video(VideoCodec::H264, &mut p, at) {
                stamped += 1;
                assert_eq!(read(&p), Some(Duration::from_millis(1234)));
            } else {
                assert_eq!(read(&p), None);
            }
            assert_eq!(p.get(..2).map(<[u8]>::to_vec), head);
        }
        assert!(stamped >= 5, "FU-A fragments carry stamps");
        let mut audio = vec![0x78, 1, 2, 3];
        stamp_audio(&mut audio, at);
        assert_eq!(audio.len(), 4 + STAMP_LEN);
        assert_eq!(read(&audio), Some(Duration::from_millis(1234)));
        assert_eq!(read(b"short"), None);
    }
}
