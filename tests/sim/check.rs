//! The forwarding invariant, checked at the server's own edge after every worker turn: every
//! packet a worker accepted from a publisher leaves that turn, exactly once, towards every
//! connected player of the stream whose track has started, with the player's own sequence
//! numbers continuous (the output is the input shifted by one constant per track, so the
//! only gaps are the publisher's). Resends (on the RTX payload type) are counted apart.
//!
//! The model knows on its own when a track must start (audio: the first packet after the
//! player was added; video: the first keyframe after that) and compares with where the
//! worker's rewriter says it started, so a fan-out that leaves a player out is caught even
//! though that player then receives nothing at all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use str0m::format::detect_vp8_keyframe;
use str0m::media::MediaKind;
use webcall::ids::PeerId;
use webcall::worker::state::WorkerState;

/// Payload types of the simulation's media (Chromium's numbering, which every peer offers).
pub const VP8_PT: u8 = 96;
pub const VP8_RTX_PT: u8 = 97;
pub const OPUS_PT: u8 = 111;

/// One publisher packet the worker accepted.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub publisher: PeerId,
    pub pt: u8,
    pub seq: u64,
    pub keyframe: bool,
}

impl Accepted {
    pub fn from_packet(publisher: PeerId, packet: &webcall::forward::IncomingRtp) -> Self {
        Accepted {
            publisher,
            pt: *packet.pt,
            seq: packet.seq,
            keyframe: detect_vp8_keyframe(&packet.payload),
        }
    }
}

#[derive(Default)]
struct Track {
    /// The input sequence number the track must start at, by the model.
    in_first: Option<u64>,
    /// Expected this turn: input sequence numbers.
    expected: BTreeSet<u64>,
    /// Input sequence numbers already seen leaving (the last few thousand).
    delivered: BTreeSet<u64>,
    /// Accepted while the player was not connected yet: may leave later, once.
    early: BTreeSet<u64>,
    /// The last output sequence number seen, extended (for the 16-bit wrap).
    last_out: Option<u64>,
}

struct Player {
    worker: usize,
    publisher: PeerId,
    connected: bool,
    video: Track,
    audio: Track,
}

impl Player {
    fn track(&mut self, kind: MediaKind) -> &mut Track {
        match kind {
            MediaKind::Video => &mut self.video,
            MediaKind::Audio => &mut self.audio,
        }
    }
}

/// Checked totals, for the report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub forwarded: u64,
    pub resent: u64,
    pub accepted: u64,
    pub unmapped: u64,
    pub unmodelled: u64,
}

#[derive(Default)]
pub struct Checker {
    players: BTreeMap<PeerId, Player>,
    /// Where each player's client receives (learned from the signaling: its answer's stream).
    player_addrs: BTreeMap<SocketAddr, PeerId>,
    pub totals: Totals,
}

const DELIVERED_KEPT: usize = 4096;

fn kind_of(pt: u8) -> Option<MediaKind> {
    match pt {
        VP8_PT => Some(MediaKind::Video),
        OPUS_PT => Some(MediaKind::Audio),
        _ => None,
    }
}

impl Checker {
    /// Worker `worker` took a player's add in this turn.
    pub fn player_added(&mut self, worker: usize, player: PeerId, publisher: PeerId) {
        let model = Player {
            worker,
            publisher,
            connected: false,
            video: Track::default(),
            audio: Track::default(),
        };
        self.players.insert(player, model);
    }

    pub fn player_at(&mut self, addr: SocketAddr, player: PeerId) {
        self.player_addrs.insert(addr, player);
    }

    /// The endpoint is gone from the worker (removed, failed, or its publisher went).
    pub fn removed(&mut self, peer: PeerId) {
        self.players.remove(&peer);
        self.players.retain(|_, p| p.publisher != peer);
        self.player_addrs.retain(|_, p| *p != peer);
    }

    pub fn connected(&mut self, peer: PeerId) {
        if let Some(player) = self.players.get_mut(&peer) {
            player.connected = true;
        }
    }

    /// What the worker accepted this turn, in order.
    pub fn accepted(&mut self, packets: &[Accepted]) {
        for packet in packets {
            self.totals.accepted += 1;
            let Some(kind) = kind_of(packet.pt) else {
                continue;
            };
            for player in self
                .players
                .values_mut()
                .filter(|p| p.publisher == packet.publisher)
            {
                let connected = player.connected;
                let track = player.track(kind);
                if track.in_first.is_none() && (kind == MediaKind::Audio || packet.keyframe) {
                    track.in_first = Some(packet.seq);
                }
                match track.in_first {
                    Some(first) if packet.seq >= first && connected => {
                        track.expected.insert(packet.seq);
                    }
                    Some(first) if packet.seq >= first => {
                        track.early.insert(packet.seq);
                    }
                    _ => {}
                }
            }
        }
    }

    /// What the worker sent this turn; `failed` are the endpoints it ended in the turn (their
    /// expectations are void). Returns the first broken invariant.
    pub fn egress(
        &mut self,
        worker: &WorkerState,
        sent: &[(SocketAddr, Vec<u8>)],
        failed: &BTreeSet<PeerId>,
    ) -> Result<(), String> {
        for (destination, bytes) in sent {
            let Some((pt, seq16)) = rtp_header(bytes) else {
                continue;
            };
            let Some(&player) = self.player_addrs.get(destination) else {
                self.totals.unmapped += 1;
                continue;
            };
            if pt == VP8_RTX_PT {
                self.totals.resent += 1;
                continue;
            }
            let Some(kind) = kind_of(pt) else {
                return Err(format!("{player} was sent payload type {pt}"));
            };
            let Some(start) = worker.player_track_start(player, kind) else {
                return Err(format!("{player} was sent {kind:?} before its track started"));
            };
            let Some(model) = self.players.get_mut(&player) else {
                self.totals.unmodelled += 1;
                continue;
            };
            let track = model.track(kind);
            let out = extend(track.last_out, seq16);
            track.last_out = Some(track.last_out.map_or(out, |last| last.max(out)));
            let Some(offset) = out.checked_sub(start.out_seq_first) else {
                return Err(format!(
                    "{player} {kind:?}: sequence {out} is before the track's first"
                ));
            };
            let input = start.in_seq_first + offset;
            if !track.delivered.insert(input) {
                return Err(format!(
                    "{player} {kind:?}: input {input} (output {out}) sent twice"
                ));
            }
            if track.delivered.len() > DELIVERED_KEPT {
                track.delivered.pop_first();
            }
            if !track.expected.remove(&input) && !track.early.remove(&input) {
                return Err(format!(
                    "{player} {kind:?}: output {out} maps to input {input}, which the publisher never sent"
                ));
            }
            self.totals.forwarded += 1;
        }
        for (player, model) in self.players.iter_mut().filter(|(_, p)| p.worker == worker.id.0) {
            for kind in [MediaKind::Video, MediaKind::Audio] {
                let started = worker.player_track_start(*player, kind).map(|s| s.in_seq_first);
                let track = model.track(kind);
                let missing = std::mem::take(&mut track.expected);
                if failed.contains(player) {
                    continue;
                }
                if track.in_first.is_some() && started != track.in_first {
                    return Err(format!(
                        "{player} {kind:?}: the track should start at input {:?}, the worker says {started:?}",
                        track.in_first
                    ));
                }
                if let Some(input) = missing.first() {
                    return Err(format!(
                        "{player} {kind:?}: input {input} of {} was accepted but not sent ({} missing)",
                        model.publisher,
                        missing.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Payload type and sequence number of an RTP datagram (SRTP leaves the header clear); None
/// for STUN, DTLS and RTCP.
fn rtp_header(bytes: &[u8]) -> Option<(u8, u16)> {
    let first = *bytes.first()?;
    let second = *bytes.get(1)?;
    if first >> 6 != 2 || bytes.len() < 12 {
        return None;
    }
    if (192..=223).contains(&second) {
        return None; // RTCP: packet types 192-223 (RFC 5761)
    }
    let pt = second & 0x7f;
    Some((pt, u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])))
}

/// The 64-bit sequence number nearest `last` that ends in `seq16`.
fn extend(last: Option<u64>, seq16: u16) -> u64 {
    let Some(last) = last else {
        return u64::from(seq16);
    };
    let base = last & !0xffff;
    let candidates = [base.wrapping_sub(0x1_0000), base, base + 0x1_0000];
    candidates
        .into_iter()
        .map(|b| b + u64::from(seq16))
        .min_by_key(|c| c.abs_diff(last))
        .unwrap_or(u64::from(seq16))
}
