//! Counters of a peer and the log of received RTP packets.
//!
//! Owns [`PeerStats`] (plain counters, both roles) and [`Recorder`], which turns each
//! `Event::RtpPacket` into a [`ReceivedPacket`]: kind (from the stream's mid), codec
//! (from the payload type), the clear RTP header fields, arrival time, size and the first
//! [`HEAD_LEN`] payload bytes, plus a keyframe flag from our own detector. The log is
//! drained by the driver; it keeps at most `log_max` entries between drains so a peer
//! nobody reads cannot grow without bound (counters keep counting).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use str0m::media::{MediaKind, Mid};
use str0m::rtp::RtpPacket;
use str0m::Rtc;

use super::codecs::{from_str0m, MediaCodec};
use crate::media::send_log::SendLog;
use crate::media::{detect, stamp, Kind};

/// Payload bytes kept per received packet.
pub const HEAD_LEN: usize = 32;

/// Counters of one peer. Publisher fields stay zero on a player and vice versa.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Video RTP packets written (publisher).
    pub video_packets_sent: u64,
    /// Audio RTP packets written (publisher).
    pub audio_packets_sent: u64,
    /// Video frames written (publisher).
    pub video_frames_sent: u64,
    /// Keyframes written (publisher).
    pub keyframes_sent: u64,
    /// RTP payload bytes written (publisher).
    pub payload_bytes_sent: u64,
    /// PLI received (publisher).
    pub pli_received: u64,
    /// FIR received (publisher).
    pub fir_received: u64,
    /// Video RTP packets received (player).
    pub video_packets_received: u64,
    /// Audio RTP packets received (player).
    pub audio_packets_received: u64,
    /// Keyframes received: distinct RTP timestamps among packets that start a keyframe
    /// (an SPS packet and the IDR's first FU-A of one frame count once) (player).
    pub keyframes_received: u64,
    /// RTP payload bytes received (player).
    pub payload_bytes_received: u64,
    /// PLI requested through `request_keyframe` (player).
    pub pli_sent: u64,
    /// FIR requested through `request_fir` (player).
    pub fir_sent: u64,
    /// Received packets dropped from the log because nobody drained it.
    pub log_dropped: u64,
    /// Incoming video datagrams dropped on purpose ([`PlayOptions::drop_video_every`]) (player).
    ///
    /// [`PlayOptions::drop_video_every`]: crate::PlayOptions
    pub video_datagrams_dropped_on_purpose: u64,
}

/// One received RTP packet, as the player saw it after SRTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPacket {
    /// Audio or video (from the m-line the SSRC belongs to).
    pub kind: Kind,
    /// Codec of the payload type, if it is one this client knows.
    pub codec: Option<MediaCodec>,
    /// Payload type.
    pub pt: u8,
    /// SSRC.
    pub ssrc: u32,
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub rtp_time: u32,
    /// Marker bit.
    pub marker: bool,
    /// When str0m received it.
    pub arrival: Instant,
    /// Payload length.
    pub payload_len: usize,
    /// The first [`HEAD_LEN`] payload bytes.
    pub head: Vec<u8>,
    /// Whether the payload starts a keyframe (video only).
    pub keyframe: bool,
}

/// The few fields of a received (decrypted, possibly repaired) packet a load generator
/// reads, kept when the tap is on (see `PeerCore::enable_tap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapPacket {
    /// Audio or video.
    pub kind: Kind,
    /// SSRC.
    pub ssrc: u32,
    /// Extended sequence number (RTX repairs arrive with the original one).
    pub seq: u64,
    /// When str0m received it.
    pub arrival: Instant,
    /// The publisher's send instant from the payload stamp or the publisher's send log,
    /// relative to `stamp::epoch`.
    pub sent: Option<std::time::Duration>,
}

/// Converts incoming RTP events into log entries and counters.
#[derive(Debug)]
pub(crate) struct Recorder {
    mids: HashMap<Mid, Kind>,
    log: Vec<ReceivedPacket>,
    log_max: usize,
    last_keyframe: Option<(u32, u32)>,
    pub tap: Option<Vec<TapPacket>>,
    /// The publisher's send log, for payloads without a stamp (real clips).
    pub send_log: Option<Arc<SendLog>>,
}

impl Recorder {
    pub fn new(log_max: usize) -> Self {
        Recorder {
            mids: HashMap::new(),
            log: Vec::new(),
            log_max,
            last_keyframe: None,
            tap: None,
            send_log: None,
        }
    }

    /// Declares the kind of a local m-line.
    pub fn add_mid(&mut self, mid: Mid, kind: MediaKind) {
        let kind = if kind.is_audio() { Kind::Audio } else { Kind::Video };
        self.mids.insert(mid, kind);
    }

    pub fn on_packet(&mut self, rtc: &mut Rtc, p: RtpPacket, stats: &mut PeerStats) {
        let ssrc = p.header.ssrc;
        let pt = p.header.payload_type;
        let codec = rtc
            .codec_config()
            .find(|c| c.pt() == pt)
            .and_then(|c| from_str0m(c.spec().codec));
        let by_mid = rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| s.mid())
            .and_then(|mid| self.mids.get(&mid).copied());
        let kind = by_mid.unwrap_or(match codec {
            Some(MediaCodec::Audio(_)) => Kind::Audio,
            _ => Kind::Video,
        });
        let payload: &[u8] = &p.payload;
        let keyframe = match codec {
            Some(MediaCodec::Video(v)) => detect::is_keyframe(v, payload),
            _ => false,
        };
        match kind {
            Kind::Audio => stats.audio_packets_received += 1,
            Kind::Video => stats.video_packets_received += 1,
        }
        let frame = (*ssrc, p.header.timestamp);
        if keyframe && self.last_keyframe != Some(frame) {
            self.last_keyframe = Some(frame);
            stats.keyframes_received += 1;
        }
        stats.payload_bytes_received += payload.len() as u64;
        if let Some(tap) = &mut self.tap {
            tap.push(TapPacket {
                kind,
                ssrc: *ssrc,
                seq: *p.seq_no,
                arrival: p.timestamp,
                sent: stamp::read(payload)
                    .or_else(|| self.send_log.as_ref().and_then(|log| log.sent(payload))),
            });
        }
        if self.log.len() >= self.log_max {
            stats.log_dropped += 1;
            return;
        }
        self.log.push(ReceivedPacket {
            kind,
            codec,
            pt: *pt,
            ssrc: *ssrc,
            seq: *p.seq_no,
            rtp_time: p.header.timestamp,
            marker: p.header.marker,
            arrival: p.timestamp,
            payload_len: payload.len(),
            head: payload.iter().take(HEAD_LEN).copied().collect(),
            keyframe,
        });
    }

    /// Takes the packets logged since the last call.
    pub fn take(&mut self) -> Vec<ReceivedPacket> {
        std::mem::take(&mut self.log)
    }
}
