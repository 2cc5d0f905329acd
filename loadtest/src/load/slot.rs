//! One emulated peer inside the load engine: its [`PeerCore`] plus what it measures.
//!
//! Owned by the engine thread. A subscriber measures every RTP datagram from its clear
//! header (loss before NACK, reordering, RFC 3550 jitter, first-packet time); a decrypting
//! subscriber also feeds RTP to its `Rtc` and reads the tap afterwards: packets str0m
//! delivered (after RTX repair) give the loss after NACK, payload stamps (or, for real
//! clips, the publisher's send log) give one-way delay.
//! A non-decrypting subscriber hands only STUN, DTLS and RTCP to its `Rtc`, which keeps ICE
//! consent alive at a fraction of the cost (what lets one core emulate thousands).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::rxstats::{extend_seq, rtp_head, Jitter, SeqWindow};
use crate::media::send_log::SendLog;
use crate::media::{audio, stamp, AudioCodec, Kind, VIDEO_CLOCK_RATE};
use crate::peer::{PayloadTypes, PeerCore};

/// How a subscriber measures what it receives.
#[derive(Debug, Clone, Default)]
pub struct Measure {
    /// Decrypt and measure delay and repaired loss (see [`Role::Subscriber`]).
    pub decrypt: bool,
    /// The send log of the publisher played, for payloads without a stamp (real clips).
    pub send_log: Option<Arc<SendLog>>,
    /// The local address of the publisher played (its engine peer): loss is counted against
    /// what it sent. None when unknown (a Janus feed).
    pub publisher: Option<std::net::Ipv4Addr>,
}

/// What a peer does in the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends media.
    Publisher,
    /// Receives media; `decrypt`: feed RTP to str0m (latency, NACK, loss after NACK).
    Subscriber {
        /// Decrypt and measure delay and repaired loss.
        decrypt: bool,
    },
}

/// How a subscriber reads payload types off the wire: kind, clock rate and whether each
/// number is a retransmission (RTX) format.
#[derive(Debug, Clone, Default)]
pub struct PtMap {
    pts: Vec<(u8, Kind, u32, bool)>,
}

impl PtMap {
    /// The map of an offer numbered with `pts` (this client's own offers).
    pub fn new(pts: PayloadTypes) -> Self {
        let v = (Kind::Video, VIDEO_CLOCK_RATE);
        let opus = audio::clock_rate(AudioCodec::Opus);
        let g711 = audio::clock_rate(AudioCodec::Pcmu);
        PtMap {
            pts: vec![
                (pts.vp8.0, v.0, v.1, false),
                (pts.h264.0, v.0, v.1, false),
                (pts.vp8.1, v.0, v.1, true),
                (pts.h264.1, v.0, v.1, true),
                (pts.opus, Kind::Audio, opus, false),
                (pts.pcmu, Kind::Audio, g711, false),
                (pts.pcma, Kind::Audio, g711, false),
            ],
        }
    }

    /// The map of the `a=rtpmap` lines of an SDP (a server's offer).
    pub fn from_sdp(sdp: &str) -> Self {
        let mut kind = Kind::Video;
        let mut pts = Vec::new();
        for line in sdp.lines() {
            if let Some(m) = line.strip_prefix("m=") {
                kind = if m.starts_with("audio") {
                    Kind::Audio
                } else {
                    Kind::Video
                };
            } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
                let mut it = map.split([' ', '/']);
                let (Some(pt), Some(name), Some(rate)) = (it.next(), it.next(), it.next()) else {
                    continue;
                };
                if let (Ok(pt), Ok(rate)) = (pt.parse::<u8>(), rate.trim().parse::<u32>()) {
                    pts.push((pt, kind, rate, name.eq_ignore_ascii_case("rtx")));
                }
            }
        }
        PtMap { pts }
    }

    /// Kind, clock rate and whether it is a retransmission.
    pub fn classify(&self, pt: u8) -> Option<(Kind, u32, bool)> {
        self.pts
            .iter()
            .find(|(p, ..)| *p == pt)
            .map(|(_, k, r, rtx)| (*k, *r, *rtx))
    }
}

/// One received stream, measured from clear headers.
#[derive(Debug, Clone)]
pub struct RxStream {
    /// SSRC.
    pub ssrc: u32,
    /// Audio or video.
    pub kind: Kind,
    /// RTP clock rate.
    pub rate: u32,
    /// Loss before NACK.
    pub seq: SeqWindow,
    /// Interarrival jitter.
    pub jitter: Jitter,
}

/// A peer and its measurements.
pub struct Slot {
    pub core: PeerCore,
    pub role: Role,
    pub local: Ipv4Addr,
    pub started: Instant,
    pub first_rtp: Option<Instant>,
    pub timer: Instant,
    /// A heap entry for `timer` is pending.
    pub armed: bool,
    /// When that entry was pushed (a timer set in the past is not late).
    pub armed_at: Instant,
    pub dirty: bool,
    pub alive: bool,
    pub pts: PtMap,
    pub streams: Vec<RxStream>,
    /// Streams as str0m delivered them (decrypting subscribers): loss after NACK.
    pub repaired: Vec<(u32, SeqWindow)>,
    pub rtp: u64,
    pub rtx: u64,
    pub unknown_pt: u64,
    /// A subscriber's publisher (its local address), for loss against what it sent.
    pub plays: Option<Ipv4Addr>,
    /// Media packets received when the window began (a subscriber silent since is named).
    pub received_at_window: u64,
}

impl Slot {
    /// Media packets received on every stream so far (not retransmissions).
    pub fn media_received(&self) -> u64 {
        self.streams.iter().map(|st| st.seq.received).sum()
    }

    pub fn new(core: PeerCore, role: Role, local: Ipv4Addr, started: Instant, pts: PtMap) -> Self {
        let mut core = core;
        if role == (Role::Subscriber { decrypt: true }) {
            core.enable_tap();
        }
        Slot {
            core,
            role,
            local,
            started,
            first_rtp: None,
            timer: started,
            armed: false,
            armed_at: started,
            dirty: true,
            alive: true,
            pts,
            streams: Vec::new(),
            repaired: Vec::new(),
            rtp: 0,
            rtx: 0,
            unknown_pt: 0,
            plays: None,
            received_at_window: 0,
        }
    }

    /// Measures a subscriber's datagram; returns whether it must also go to the `Rtc`.
    pub fn measure(&mut self, now: Instant, data: &[u8]) -> bool {
        let Role::Subscriber { decrypt } = self.role else {
            return true;
        };
        let Some(head) = rtp_head(data) else {
            return true; // STUN, DTLS, RTCP
        };
        self.first_rtp.get_or_insert(now);
        let Some((kind, rate, rtx)) = self.pts.classify(head.pt) else {
            self.unknown_pt += 1;
            return decrypt;
        };
        if rtx {
            self.rtx += 1;
            return decrypt;
        }
        self.rtp += 1;
        let idx = match self.streams.iter().position(|s| s.ssrc == head.ssrc) {
            Some(i) => i,
            None => {
                self.streams.push(RxStream {
                    ssrc: head.ssrc,
                    kind,
                    rate,
                    seq: SeqWindow::default(),
                    jitter: Jitter::default(),
                });
                self.streams.len() - 1
            }
        };
        if let Some(s) = self.streams.get_mut(idx) {
            let e = extend_seq(s.seq.highest(), head.seq);
            s.seq.push(e);
            s.jitter.push(now, head.ts, rate);
        }
        decrypt
    }

    /// Reads what str0m delivered since the last call (decrypting subscribers).
    pub fn drain_tap(&mut self, latency_us: &mut Histogram<u64>) {
        let repaired = &mut self.repaired;
        let epoch = stamp::epoch();
        self.core.drain_tap(|p| {
            let w = match repaired.iter_mut().find(|(s, _)| *s == p.ssrc) {
                Some((_, w)) => w,
                None => {
                    repaired.push((p.ssrc, SeqWindow::default()));
                    match repaired.last_mut() {
                        Some((_, w)) => w,
                        None => return,
                    }
                }
            };
            w.push(p.seq);
            if let Some(sent) = p.sent {
                let arrived = p.arrival.saturating_duration_since(epoch);
                if let Some(d) = arrived.checked_sub(sent) {
                    let _ = latency_us.record((d.as_micros() as u64).max(1));
                }
            }
        });
    }
}
