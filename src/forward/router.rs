//! The forwarding table of one worker: which players hang off each publisher, and how each
//! player's tracks are rewritten. Sans-IO: fed a publisher's RTP packets and keyframe requests,
//! it produces the writes for the players' `Rtc`s and says when to ask the publisher for a
//! keyframe.
//!
//! Owned by exactly one worker thread. Invariants: a player is listed under exactly one
//! publisher and is removed from it when either goes; the payload of a packet is shared (`Arc`)
//! by every write made from it, never copied per player; keyframe requests to a publisher are
//! at least `KEYFRAME_REQUEST_INTERVAL_MIN` apart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use std::sync::Arc;
use str0m::format::{detect_h264_keyframe, detect_h264_nalu, detect_vp8_keyframe};
use str0m::media::Pt;
use str0m::media::{MediaKind, Mid};
use str0m::rtp::{RtpPacket, RtpWrite};

use super::rewrite::{Rewritten, TrackRewriter, TrackStart};
use crate::ids::PeerId;
use crate::media::clock::SenderClock;
use crate::sdp::{StreamTracks, TrackCodec};

/// Browsers answer a PLI with a full keyframe (tens of packets); asking more often than this only
/// burns the publisher's uplink. Players that join in a burst share one request.
pub const KEYFRAME_REQUEST_INTERVAL_MIN: Duration = Duration::from_millis(500);
/// Players one publisher feeds: a room of 16 plus recorders and RTMP outputs, with room to spare
/// for a 1→N livestream.
pub const PLAYERS_PER_PUBLISHER_MAX: usize = 4096;

const H264_NALU_SPS: u8 = 7;

struct PublisherRoute {
    tracks: StreamTracks,
    players: Vec<PeerId>,
    last_keyframe_request: Option<Instant>,
    /// A player asked while requests were throttled: send one when the interval has passed.
    keyframe_deferred: bool,
    /// Players whose video still waits for its first keyframe (kept as a count so the check on
    /// every publisher packet does not walk the players).
    players_awaiting_keyframe: usize,
    /// Kinds a moderator muted: not forwarded to any player (the admin API's `mute`).
    muted_audio: bool,
    muted_video: bool,
}

struct PlayerRoute {
    publisher: PeerId,
    video: Option<(Mid, TrackRewriter)>,
    audio: Option<(Mid, TrackRewriter)>,
}

/// The parts of a publisher's RTP packet that forwarding reads (cloning shares the payload).
#[derive(Clone)]
pub struct IncomingRtp {
    pub pt: Pt,
    /// Extended (rollover-free) sequence number.
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    pub arrival: Instant,
    pub payload: Arc<[u8]>,
    /// The publisher's last sender report on this stream (the recorder's clock).
    pub sender: Option<SenderClock>,
}

impl From<&RtpPacket> for IncomingRtp {
    fn from(packet: &RtpPacket) -> Self {
        IncomingRtp {
            pt: packet.header.payload_type,
            seq: *packet.seq_no,
            ts: packet.header.timestamp,
            marker: packet.header.marker,
            arrival: packet.timestamp,
            payload: packet.payload.clone(),
            sender: packet.last_sender_info.map(|info| SenderClock {
                ntp: info.ntp_time,
                rtp: info.rtp_time.numer() as u32,
            }),
        }
    }
}

/// One packet to write on one player's outgoing track. Kept small (the payload is shared):
/// str0m's `RtpWrite` is several hundred bytes, so it is built only where it is consumed.
pub struct PlayerWrite {
    pub player: PeerId,
    pub mid: Mid,
    pub kind: MediaKind,
    pub rtp: OutgoingRtp,
}

/// A forwarded packet with the player's own header values.
#[derive(Debug, Clone)]
pub struct OutgoingRtp {
    pub header: Rewritten,
    pub marker: bool,
    /// When the publisher's packet arrived (str0m's wallclock for sender reports).
    pub arrival: Instant,
    pub payload: Arc<[u8]>,
    pub sender: Option<SenderClock>,
}

impl OutgoingRtp {
    pub fn into_write(self) -> RtpWrite {
        RtpWrite::new(
            self.header.pt,
            self.header.seq.into(),
            self.header.ts,
            self.arrival,
            self.payload,
        )
        .marker(self.marker)
    }
}

#[derive(Default)]
pub struct Router {
    publishers: HashMap<PeerId, PublisherRoute>,
    players: HashMap<PeerId, PlayerRoute>,
    fault: Option<ForwardFault>,
}

/// A deliberate defect, for the simulation to prove that it notices a broken fan-out. The
/// server never sets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardFault {
    /// Forward nothing to this player.
    SkipPlayer(PeerId),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("publisher not found on this worker")]
    NoPublisher,
    #[error("publisher already has {PLAYERS_PER_PUBLISHER_MAX} players")]
    TooManyPlayers,
}

impl Router {
    pub fn add_publisher(&mut self, publisher: PeerId, tracks: StreamTracks) {
        self.publishers.insert(
            publisher,
            PublisherRoute {
                tracks,
                players: Vec::new(),
                last_keyframe_request: None,
                keyframe_deferred: false,
                players_awaiting_keyframe: 0,
                muted_audio: false,
                muted_video: false,
            },
        );
    }

    /// Attach a player. `seed` randomises its sequence and timestamp starts.
    pub fn add_player(
        &mut self,
        player: PeerId,
        publisher: PeerId,
        tracks: &StreamTracks,
        seed: u64,
    ) -> Result<(), RouteError> {
        let route = self
            .publishers
            .get_mut(&publisher)
            .ok_or(RouteError::NoPublisher)?;
        if route.players.len() >= PLAYERS_PER_PUBLISHER_MAX {
            return Err(RouteError::TooManyPlayers);
        }
        route.players.push(player);
        if tracks.video.is_some() {
            route.players_awaiting_keyframe += 1;
        }
        let rewriter = |track: &Option<TrackCodec>, gate: bool, seed: u64| {
            track
                .as_ref()
                .map(|t| (t.mid, TrackRewriter::new(t.pt, gate, seed)))
        };
        self.players.insert(
            player,
            PlayerRoute {
                publisher,
                video: rewriter(&tracks.video, true, seed),
                audio: rewriter(&tracks.audio, false, seed.rotate_left(17)),
            },
        );
        Ok(())
    }

    pub fn set_fault(&mut self, fault: Option<ForwardFault>) {
        self.fault = fault;
    }

    /// Remove a peer of either role. Returns the players a removed publisher still fed.
    pub fn remove(&mut self, peer: PeerId) -> Vec<PeerId> {
        if let Some(route) = self.players.remove(&peer) {
            if let Some(publisher) = self.publishers.get_mut(&route.publisher) {
                publisher.players.retain(|p| *p != peer);
                if route
                    .video
                    .as_ref()
                    .is_some_and(|(_, rewriter)| rewriter.waiting_for_keyframe())
                {
                    publisher.players_awaiting_keyframe =
                        publisher.players_awaiting_keyframe.saturating_sub(1);
                }
            }
        }
        match self.publishers.remove(&peer) {
            Some(route) => {
                for player in &route.players {
                    self.players.remove(player);
                }
                route.players
            }
            None => Vec::new(),
        }
    }

    /// Where a player's track of `kind` started, once it forwarded its first packet (the
    /// simulation's checks map what players receive back to what publishers sent with it).
    pub fn player_track_start(&self, player: PeerId, kind: MediaKind) -> Option<TrackStart> {
        let route = self.players.get(&player)?;
        let track = match kind {
            MediaKind::Video => route.video.as_ref(),
            MediaKind::Audio => route.audio.as_ref(),
        };
        track?.1.start()
    }

    /// The publisher's video m-line, where keyframe requests go.
    pub fn publisher_video_mid(&self, publisher: PeerId) -> Option<Mid> {
        self.publishers
            .get(&publisher)?
            .tracks
            .video
            .as_ref()
            .map(|t| t.mid)
    }

    /// Fan one publisher packet out to its players, appending to `out`.
    /// Stop or resume forwarding `kind` of `publisher`'s media.
    pub fn set_muted(&mut self, publisher: PeerId, kind: MediaKind, muted: bool) {
        if let Some(route) = self.publishers.get_mut(&publisher) {
            match kind {
                MediaKind::Audio => route.muted_audio = muted,
                MediaKind::Video => route.muted_video = muted,
            }
        }
    }

    pub fn forward(&mut self, publisher: PeerId, packet: &IncomingRtp, out: &mut Vec<PlayerWrite>) {
        self.forward_filtered(publisher, packet, out, None);
    }

    /// Forward one of the publisher's packets to one of its players only (a late player's
    /// replay of the cached group of pictures).
    pub fn forward_to(
        &mut self,
        publisher: PeerId,
        player: PeerId,
        packet: &IncomingRtp,
        out: &mut Vec<PlayerWrite>,
    ) {
        self.forward_filtered(publisher, packet, out, Some(player));
    }

    fn forward_filtered(
        &mut self,
        publisher: PeerId,
        packet: &IncomingRtp,
        out: &mut Vec<PlayerWrite>,
        only: Option<PeerId>,
    ) {
        let Some(route) = self.publishers.get(&publisher) else {
            return;
        };
        let pt = packet.pt;
        let (kind, codec) = match (&route.tracks.video, &route.tracks.audio) {
            (Some(video), _) if video.pt == pt => (MediaKind::Video, video),
            (_, Some(audio)) if audio.pt == pt => (MediaKind::Audio, audio),
            _ => return,
        };
        let muted = match kind {
            MediaKind::Audio => route.muted_audio,
            MediaKind::Video => route.muted_video,
        };
        if muted {
            return;
        }
        let starts_keyframe = kind == MediaKind::Video && starts_keyframe(codec, &packet.payload);
        let seq = packet.seq;
        let skipped = self.fault.map(|ForwardFault::SkipPlayer(player)| player);
        let mut opened = 0;
        for player in &route.players {
            if skipped == Some(*player) || only.is_some_and(|only| only != *player) {
                continue;
            }
            let Some(player_route) = self.players.get_mut(player) else {
                continue;
            };
            let track = match kind {
                MediaKind::Video => player_route.video.as_mut(),
                MediaKind::Audio => player_route.audio.as_mut(),
            };
            let Some((mid, rewriter)) = track else {
                continue;
            };
            let was_waiting = rewriter.waiting_for_keyframe();
            let Some(out_header) = rewriter.rewrite(seq, packet.ts, starts_keyframe) else {
                continue;
            };
            if was_waiting {
                opened += 1;
            }
            out.push(PlayerWrite {
                player: *player,
                mid: *mid,
                kind,
                rtp: OutgoingRtp {
                    header: out_header,
                    marker: packet.marker,
                    arrival: packet.arrival,
                    payload: packet.payload.clone(),
                    sender: packet.sender,
                },
            });
        }
        if opened > 0 {
            if let Some(route) = self.publishers.get_mut(&publisher) {
                route.players_awaiting_keyframe = route.players_awaiting_keyframe.saturating_sub(opened);
            }
        }
    }

    /// Whether to send the publisher a keyframe request now: one of its players waits for a
    /// keyframe (or asked for one with `player_asked`, now or while throttled) and the last
    /// request is old enough. The worker asks again on each of the publisher's packets, so a
    /// deferred request goes out as soon as the interval has passed.
    pub fn keyframe_request_due(&mut self, publisher: PeerId, now: Instant, player_asked: bool) -> bool {
        let Some(route) = self.publishers.get_mut(&publisher) else {
            return false;
        };
        if route.tracks.video.is_none() {
            return false;
        }
        let someone_waits = player_asked || route.keyframe_deferred || route.players_awaiting_keyframe > 0;
        let throttled = route
            .last_keyframe_request
            .is_some_and(|at| now.saturating_duration_since(at) < KEYFRAME_REQUEST_INTERVAL_MIN);
        if someone_waits && !throttled {
            route.last_keyframe_request = Some(now);
            route.keyframe_deferred = false;
            return true;
        }
        route.keyframe_deferred |= player_asked;
        false
    }
}

/// Whether a video payload starts something a decoder can start from: a VP8 keyframe, or an
/// H.264 SPS (browsers send SPS, PPS, IDR in that order) or IDR.
fn starts_keyframe(codec: &TrackCodec, payload: &[u8]) -> bool {
    match codec.name.as_str() {
        "VP8" => detect_vp8_keyframe(payload),
        "H264" => detect_h264_nalu(payload, H264_NALU_SPS) || detect_h264_keyframe(payload),
        _ => false,
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
