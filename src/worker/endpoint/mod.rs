//! The endpoints a worker owns, one [`Slot`] each: what every kind shares (its id, role,
//! liveness and timer bookkeeping) and the [`Endpoint`] itself, one variant per kind.
//!
//! Runs on the worker that owns the endpoint. Kinds: a WebRTC peer ([`WebRtcPeer`]); a tap (a
//! player whose frames go to a recording's writer thread or to the RTMP bridge,
//! [`RecorderTap`]); an ingest (a publisher whose packets come from the RTMP bridge on the
//! control thread, [`Ingest`]). The
//! forwarding table sees only `PeerId`s and roles, so forwarding has no case for any kind;
//! the worker asks the slot, and the slot asks its kind.
//!
//! Invariants: `next_timeout` is what the endpoint's last poll asked for; `timer_armed` says a
//! heap entry for it is pending; `dirty` says the endpoint is on the worker's list to be
//! advanced and polled this turn.

mod ingest;
mod recorder;
mod webrtc;

use std::net::SocketAddr;
use std::time::Instant;

use str0m::media::{MediaKind, Mid};

pub use ingest::{Ingest, GOP_CACHE_BYTES_MAX};
pub use recorder::{BridgeTapSpec, RecorderSpec, RecorderTap};
pub use webrtc::{WebRtcPeer, WRITES_BEFORE_POLL_MAX};

use super::commands::{PeerFailure, PeerRole};
use crate::forward::{IncomingRtp, OutgoingRtp};
use crate::ids::PeerId;

/// Where an endpoint's outgoing datagrams go.
pub trait TransmitSink {
    fn transmit(&mut self, peer: PeerId, destination: SocketAddr, datagram: &[u8]);

    /// `peer` now sends to `destination` (called when it changes, before the first datagram
    /// there).
    fn learn_destination(&mut self, _peer: PeerId, _destination: SocketAddr) {}
}

/// Output of one poll that the worker acts on after the slot's borrow ends.
#[derive(Default)]
pub struct PollEffects {
    /// A publisher's received packets, to forward.
    pub rtp: Vec<IncomingRtp>,
    /// A player asked for a keyframe (PLI or FIR).
    pub keyframe_requested: bool,
    /// The endpoint finished connecting (ICE and DTLS) in this poll.
    pub connected: bool,
    /// ICE connected in this poll (DTLS may still be handshaking).
    pub ice_connected: bool,
    /// The remote sent RTCP BYE for one of its streams in this poll.
    pub remote_goodbye: bool,
    /// Feedback a player sent since its last stats event, for the worker's counters.
    pub feedback: FeedbackTally,
}

/// RTCP feedback from a player, counted since the last report: NACKs, the packets resent for
/// them, PLIs and FIRs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackTally {
    pub nacks: u64,
    pub resent: u64,
    pub plis: u64,
    pub firs: u64,
}

impl FeedbackTally {
    pub fn is_empty(&self) -> bool {
        *self == FeedbackTally::default()
    }
}

impl PollEffects {
    pub fn clear(&mut self) {
        self.rtp.clear();
        self.keyframe_requested = false;
        self.connected = false;
        self.ice_connected = false;
        self.remote_goodbye = false;
        self.feedback = FeedbackTally::default();
    }
}

/// What became of one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Taken: poll the endpoint.
    Accepted,
    /// Not STUN, DTLS, RTP or RTCP: dropped unseen.
    NotWebRtc,
    /// The endpoint refused it (integrity, authentication, replay): dropped; poll anyway.
    Refused,
}

/// One endpoint, by kind.
pub enum Endpoint {
    WebRtc(Box<WebRtcPeer>),
    /// A player whose frames go to a recording or the RTMP bridge (see `recorder.rs`).
    Recorder(Box<RecorderTap>),
    /// A publisher fed by the RTMP bridge (see `ingest.rs`).
    Ingest(Box<Ingest>),
}

pub struct Slot {
    pub id: PeerId,
    pub role: PeerRole,
    /// Last datagram that reached this endpoint: the silence timeout counts from here.
    pub last_rx: Instant,
    /// Last RTP packet a publisher sent (creation time until the first).
    pub last_rtp: Instant,
    pub connected: bool,
    /// When ICE first connected: the DTLS handshake must complete within
    /// [`DTLS_HANDSHAKE_TIMEOUT`](crate::worker::commands::DTLS_HANDSHAKE_TIMEOUT) of it.
    pub ice_connected_at: Option<Instant>,
    /// When the remote first sent RTCP BYE: with no RTP from it after, it closed (see
    /// [`BYE_GRACE`](crate::worker::commands::BYE_GRACE)).
    pub goodbye_at: Option<Instant>,
    /// The endpoint's next wanted wakeup.
    pub next_timeout: Instant,
    /// A timer-heap entry for `next_timeout` is pending.
    pub timer_armed: bool,
    /// Queued on the worker's dirty list, to be advanced and polled this loop turn.
    pub dirty: bool,
    /// Bytes of every datagram routed here.
    pub bytes_received: u64,
    /// Where the bitrate is reported, with `bytes_received` at the last report.
    pub meter: Option<(std::sync::Arc<crate::worker::commands::PeerMeter>, u64)>,
    endpoint: Endpoint,
}

impl Slot {
    pub fn new(id: PeerId, role: PeerRole, endpoint: Endpoint, now: Instant) -> Self {
        Slot {
            id,
            role,
            last_rx: now,
            last_rtp: now,
            connected: false,
            ice_connected_at: None,
            goodbye_at: None,
            next_timeout: now,
            timer_armed: false,
            dirty: false,
            bytes_received: 0,
            meter: None,
            endpoint,
        }
    }

    /// Whether the endpoint talks to the network (and so can fall silent). A recorder tap
    /// lives as long as its publisher or until control removes it.
    pub fn is_network(&self) -> bool {
        matches!(self.endpoint, Endpoint::WebRtc(_))
    }

    /// The ingest this slot holds, if it is one.
    pub fn ingest_mut(&mut self) -> Option<&mut Ingest> {
        match &mut self.endpoint {
            Endpoint::Ingest(ingest) => Some(ingest),
            _ => None,
        }
    }

    /// Feed one datagram from the network. `destination` is the worker's announced address.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) -> Result<Received, PeerFailure> {
        let received = match &mut self.endpoint {
            Endpoint::WebRtc(peer) => peer.receive(now, source, destination, bytes)?,
            Endpoint::Recorder(_) | Endpoint::Ingest(_) => Received::NotWebRtc,
        };
        if received != Received::NotWebRtc {
            self.last_rx = now;
        }
        Ok(received)
    }

    /// Move the endpoint's clock forward (timers, queued writes).
    pub fn advance(&mut self, now: Instant) -> Result<(), PeerFailure> {
        match &mut self.endpoint {
            Endpoint::WebRtc(peer) => peer.advance(now),
            Endpoint::Recorder(_) | Endpoint::Ingest(_) => Ok(()),
        }
    }

    /// Write forwarded packets, in order, each on the outgoing track of its kind (at most
    /// [`WRITES_BEFORE_POLL_MAX`] before the next advance and poll).
    pub fn write_batch(
        &mut self,
        writes: impl IntoIterator<Item = (Mid, MediaKind, OutgoingRtp)>,
    ) -> Result<(), PeerFailure> {
        match &mut self.endpoint {
            Endpoint::WebRtc(peer) => peer.write_batch(writes),
            Endpoint::Recorder(tap) => {
                tap.write_batch(writes);
                Ok(())
            }
            Endpoint::Ingest(_) => Ok(()), // a publisher: nothing is forwarded to it
        }
    }

    /// Ask a publisher for a keyframe on its video at `mid`.
    pub fn request_keyframe(&mut self, mid: Mid) -> Result<(), PeerFailure> {
        match &mut self.endpoint {
            Endpoint::WebRtc(peer) => peer.request_keyframe(mid),
            // An RTMP encoder cannot be asked: late players get the cached group instead.
            Endpoint::Recorder(_) | Endpoint::Ingest(_) => Ok(()),
        }
    }

    /// Poll the endpoint to its next timeout: transmits to `sink`, events into `effects`.
    pub fn poll(
        &mut self,
        sink: &mut dyn TransmitSink,
        effects: &mut PollEffects,
        now: Instant,
    ) -> Result<(), PeerFailure> {
        let next_timeout = match &mut self.endpoint {
            Endpoint::WebRtc(peer) => peer.poll(sink, effects)?,
            Endpoint::Recorder(tap) => tap.poll(effects),
            Endpoint::Ingest(ingest) => ingest.poll(effects),
        };
        self.next_timeout = next_timeout;
        self.connected |= effects.connected;
        if effects.ice_connected && self.ice_connected_at.is_none() {
            self.ice_connected_at = Some(now);
        }
        if effects.remote_goodbye && self.goodbye_at.is_none() {
            self.goodbye_at = Some(now);
        }
        Ok(())
    }
}
