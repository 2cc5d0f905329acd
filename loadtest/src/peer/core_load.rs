//! The parts of [`PeerCore`] only the load generator uses: bitrate-sized frames and send
//! stamps for publishers, the received-packet tap for subscribers, and the answering side of
//! an offer/answer (servers such as Janus offer to their subscribers).
//!
//! A child module of `core`, so it extends `PeerCore` without widening its fields; the
//! driving contract of `core` applies unchanged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::media::{MediaKind, Mid};

use super::{build, PeerCore, PeerState, PeerStats, Recorder};
use crate::error::{Error, Result};
use crate::media::send_log::SendLog;
use crate::peer::codecs::{PayloadTypes, PlayCodecs};
use crate::peer::outgoing::LoadProfile;
use crate::peer::recorder::TapPacket;

/// The m-lines of an SDP: (kind, mid), in order.
pub fn sdp_mids(sdp: &str) -> Vec<(MediaKind, Mid)> {
    let mut kind = None;
    let mut out = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            kind = match m.split(' ').next() {
                Some("audio") => Some(MediaKind::Audio),
                Some("video") => Some(MediaKind::Video),
                _ => None,
            };
        } else if let (Some(mid), Some(k)) = (line.strip_prefix("a=mid:"), kind) {
            out.push((k, Mid::from(mid.trim())));
        }
    }
    out
}

impl PeerCore {
    /// Publisher: bitrate-sized frames and send stamps (load generation).
    pub fn set_load_profile(&mut self, profile: LoadProfile) {
        if let Some(out) = &mut self.outgoing {
            out.load = Some(profile);
        }
    }

    /// Publisher: send `fps` video frames a second instead of [`crate::media::VIDEO_FPS`]
    /// (simulations keep their packet rate low). Call before the peer connects.
    pub fn set_video_fps(&mut self, fps: u32) {
        if let Some(out) = &mut self.outgoing {
            out.set_video_fps(fps);
        }
    }

    /// Player: where to find send instants of payloads that carry no stamp (the send log of
    /// the publisher this peer plays).
    pub fn set_send_log(&mut self, log: Option<Arc<SendLog>>) {
        self.recorder.send_log = log;
    }

    /// Player: keep a [`TapPacket`] for every received RTP packet until [`Self::drain_tap`].
    pub fn enable_tap(&mut self) {
        self.recorder.tap.get_or_insert_with(Vec::new);
    }

    /// Player: hands every tapped packet to `f` and empties the tap.
    pub fn drain_tap(&mut self, mut f: impl FnMut(&TapPacket)) {
        if let Some(tap) = &mut self.recorder.tap {
            tap.drain(..).for_each(|p| f(&p));
        }
    }

    /// A receiving peer that answers the server's `offer`, accepting the codecs of
    /// `accept`; returns the answer (with its host candidate). The peer starts in
    /// [`PeerState::Connecting`].
    pub fn answerer(
        local: SocketAddr,
        offer: &str,
        accept: &PlayCodecs,
        log_max: usize,
        now: Instant,
    ) -> Result<(Self, String)> {
        let mut rtc = build(local, &accept.video, &accept.audio, &PayloadTypes::default(), now)?;
        let parsed = SdpOffer::from_sdp_string(offer).map_err(|e| Error::Sdp(e.to_string()))?;
        let answer = rtc.sdp_api().accept_offer(parsed)?;
        let mut recorder = Recorder::new(log_max);
        let mut video_mid = None;
        for (kind, mid) in sdp_mids(offer) {
            recorder.add_mid(mid, kind);
            if kind == MediaKind::Video {
                video_mid.get_or_insert(mid);
            }
        }
        let core = PeerCore {
            rtc,
            local,
            pending: None,
            state: PeerState::Connecting,
            outgoing: None,
            recorder,
            video_mid,
            stats: PeerStats::default(),
            now,
            injected_loss: None,
        };
        Ok((core, answer.to_sdp_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mids_by_kind() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v1\r\n";
        assert_eq!(
            sdp_mids(sdp),
            vec![
                (MediaKind::Audio, Mid::from("a0")),
                (MediaKind::Video, Mid::from("v1"))
            ]
        );
    }
}
