//! What a worker's recorder tap hands a writer thread: one depacketized frame with its RTP
//! time, arrival time and the sender's last clock report, and the messages around frames.
//!
//! Made on a worker thread, consumed on a writer thread. Invariants: a video frame is
//! complete (the tap drops damaged ones and asks for a keyframe instead); audio payloads are
//! the publisher's own `Arc`, never copied.

use std::sync::Arc;
use std::time::Instant;

use crate::media::clock::SenderClock;
pub use crate::media::g711::Law;

/// The audio a recording takes from its publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedAudio {
    Opus,
    /// Decoded and encoded to Opus on the writer.
    G711(Law),
}

/// Frame payloads by codec.
#[derive(Debug, Clone)]
pub enum FramePayload {
    /// One access unit's NAL units (no start codes).
    H264(Vec<Vec<u8>>),
    /// One VP8 frame (frame tag first).
    Vp8(Vec<u8>),
    /// One Opus packet.
    Opus(Arc<[u8]>),
    /// G.711 samples (8 kHz): the writer turns them into Opus.
    G711 { law: Law, data: Arc<[u8]> },
}

#[derive(Debug, Clone)]
pub struct TapFrame {
    pub rtp_ts: u32,
    pub arrival: Instant,
    /// The publisher's last sender report on this track, if one came yet.
    pub sender: Option<SenderClock>,
    pub keyframe: bool,
    pub payload: FramePayload,
}

impl TapFrame {
    pub fn is_video(&self) -> bool {
        matches!(self.payload, FramePayload::H264(_) | FramePayload::Vp8(_))
    }

    /// Payload bytes, for the queue's and the hold's accounting.
    pub fn bytes(&self) -> usize {
        match &self.payload {
            FramePayload::H264(nals) => nals.iter().map(|n| n.len() + 4).sum(),
            FramePayload::Vp8(data) => data.len(),
            FramePayload::Opus(data) | FramePayload::G711 { data, .. } => data.len(),
        }
    }
}

/// The video codec a recording carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VideoCodec {
    H264,
    Vp8,
}

impl VideoCodec {
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H264",
            VideoCodec::Vp8 => "VP8",
        }
    }
}
