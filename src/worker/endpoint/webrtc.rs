//! One peer's `Rtc` as a worker holds it, with every call into str0m guarded so that a panic ends
//! this peer only.
//!
//! Driving contract (str0m's): after any `handle_input` or `write_rtp` the `Rtc` must be polled
//! until it yields a timeout; [`PeerSlot::poll`] does exactly that and the worker calls it after
//! every mutation (`receive`, `advance`, `write`). A slot that returned an error is dead: the
//! worker removes it and never calls it again. A player's slot also sizes its `Rtc`'s
//! retransmission history from the round trip its send statistics report.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Ssrc, StreamTx};
use str0m::stats::MediaEgressStats;
use str0m::{Event, Input, Output, Rtc};

use super::commands::{PeerFailure, PeerId, PeerRole};
use super::demux::Demux;
use super::io::DatagramIo;
use crate::peer::negotiate::set_rtx_history;
use crate::peer::rtx_history::RtxHistory;
use crate::room::{IncomingRtp, OutgoingRtp};

/// Where a peer's outgoing datagrams go.
pub trait TransmitSink {
    fn transmit(&mut self, peer: PeerId, destination: SocketAddr, datagram: &[u8]);

    /// `peer` now sends to `destination` (called when it changes, before the first datagram
    /// there).
    fn learn_destination(&mut self, _peer: PeerId, _destination: SocketAddr) {}
}

/// The worker's sink: queue on the socket, and route the destination's replies back to this
/// peer (str0m only sends to an address whose check it validated).
pub struct SocketSink<'a> {
    pub io: &'a mut dyn DatagramIo,
    pub demux: &'a mut Demux,
}

impl TransmitSink for SocketSink<'_> {
    fn transmit(&mut self, _peer: PeerId, destination: SocketAddr, datagram: &[u8]) {
        self.io.queue_send(destination, datagram);
    }

    fn learn_destination(&mut self, peer: PeerId, destination: SocketAddr) {
        self.demux.learn_addr(peer, destination);
    }
}

/// Feed a player's video round trip to its history sizing, and resize str0m's history when the
/// window changes (audio has no history; its reports are skipped).
fn resize_rtx_history(rtc: &mut Rtc, history: &mut RtxHistory, stats: &MediaEgressStats) {
    let Some(rtt) = stats.rtt else {
        return;
    };
    let has_history = rtc
        .direct_api()
        .stream_tx_by_mid(stats.mid, None)
        .is_some_and(|stream| stream.rtx().is_some());
    if !has_history {
        return;
    }
    if let Some(window) = history.on_rtt(rtt) {
        tracing::debug!(
            rtt_ms = rtt.as_millis(),
            window_ms = window.as_millis(),
            "retransmission history resized"
        );
        set_rtx_history(rtc, stats.mid, window);
    }
}

/// A player's outgoing track as str0m knows it, found once: str0m's lookup by mid walks every
/// send stream of the peer (cold memory on each forwarded packet), its lookup by SSRC hashes.
#[derive(Debug, Clone, Copy)]
struct TxTrack {
    ssrc: Ssrc,
    /// Video with an RTX stream to resend on (str0m panics on a nackable write without one).
    nackable: bool,
}

/// Output of one poll that the worker acts on after the slot's borrow ends.
#[derive(Default)]
pub struct PollEffects {
    /// A publisher's received packets, to forward.
    pub rtp: Vec<IncomingRtp>,
    /// A player asked for a keyframe (PLI or FIR).
    pub keyframe_requested: bool,
    /// The peer finished ICE and DTLS in this poll.
    pub connected: bool,
}

impl PollEffects {
    pub fn clear(&mut self) {
        self.rtp.clear();
        self.keyframe_requested = false;
        self.connected = false;
    }
}

pub struct PeerSlot {
    pub id: PeerId,
    pub role: PeerRole,
    rtc: Rtc,
    /// Last datagram that reached this peer: the silence timeout counts from here.
    pub last_rx: Instant,
    /// Last RTP packet a publisher sent (creation time until the first).
    pub last_rtp: Instant,
    pub connected: bool,
    /// The `Rtc`'s next wanted wakeup.
    pub next_timeout: Instant,
    /// A timer-heap entry for `next_timeout` is pending.
    pub timer_armed: bool,
    /// Queued on the worker's dirty list, to be advanced and polled this loop turn.
    pub dirty: bool,
    /// Where the `Rtc` last sent: the demultiplexer learns an address once, not per datagram.
    sent_to: Option<SocketAddr>,
    /// A player's video retransmission history length, from its round trip.
    rtx_history: RtxHistory,
    /// Outgoing tracks written so far, by kind (a player has at most a video and an audio
    /// one). Inline, not behind a pointer: it is read on every forwarded packet.
    tx_tracks: [Option<TxTrack>; 2],
}

impl PeerSlot {
    pub fn new(id: PeerId, role: PeerRole, rtc: Rtc, now: Instant) -> Self {
        PeerSlot {
            id,
            role,
            rtc,
            last_rx: now,
            last_rtp: now,
            connected: false,
            next_timeout: now,
            timer_armed: false,
            dirty: false,
            sent_to: None,
            rtx_history: RtxHistory::default(),
            tx_tracks: [None; 2],
        }
    }

    fn guarded<R>(&mut self, f: impl FnOnce(&mut Rtc) -> R) -> Result<R, PeerFailure> {
        catch_unwind(AssertUnwindSafe(|| f(&mut self.rtc))).map_err(|_| {
            tracing::error!(peer = %self.id, "peer connection panicked; ending this peer only");
            PeerFailure::Internal
        })
    }

    /// Feed one datagram. `destination` is the worker's announced candidate address.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), PeerFailure> {
        let Ok(contents) = bytes.try_into() else {
            return Ok(()); // Not STUN, DTLS, RTP or RTCP: str0m would refuse it; dropped.
        };
        self.last_rx = now;
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        match self.guarded(|rtc| rtc.handle_input(input))? {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::debug!(peer = %self.id, %error, "input refused");
                Ok(())
            }
        }
    }

    /// Move the peer's clock forward (timers, queued writes).
    pub fn advance(&mut self, now: Instant) -> Result<(), PeerFailure> {
        match self.guarded(|rtc| rtc.handle_input(Input::Timeout(now)))? {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::debug!(peer = %self.id, %error, "timeout refused");
                Err(PeerFailure::Disconnected)
            }
        }
    }

    /// Write one forwarded packet on the outgoing track of its kind.
    pub fn write(&mut self, mid: Mid, kind: MediaKind, rtp: OutgoingRtp) -> Result<(), PeerFailure> {
        self.write_batch(std::iter::once((mid, kind, rtp)))
    }

    /// Write forwarded packets, in order, each on the outgoing track of its kind: one unwind
    /// guard for the batch and one send-stream lookup (a hash probe into cold memory) per run
    /// of packets of one kind, not per packet; a frame's packets come in a run.
    pub fn write_batch(
        &mut self,
        writes: impl IntoIterator<Item = (Mid, MediaKind, OutgoingRtp)>,
    ) -> Result<(), PeerFailure> {
        let mut tracks = self.tx_tracks;
        self.guarded(|rtc| {
            let mut api = rtc.direct_api();
            // The stream the previous packet went to: (kind index, stream, nackable).
            let mut current: Option<(usize, &mut StreamTx, bool)> = None;
            for (mid, kind, rtp) in writes {
                let kind_index = usize::from(kind == MediaKind::Video);
                if current.as_ref().map(|c| c.0) != Some(kind_index) {
                    let track = tracks.get(kind_index).copied().flatten().or_else(|| {
                        let stream = api.stream_tx_by_mid(mid, None)?;
                        Some(TxTrack {
                            ssrc: stream.ssrc(),
                            nackable: kind == MediaKind::Video && stream.rtx().is_some(),
                        })
                    });
                    if let Some(slot) = tracks.get_mut(kind_index) {
                        *slot = track;
                    }
                    current = track.and_then(|t| {
                        let stream = api.stream_tx(&t.ssrc)?;
                        Some((kind_index, stream, t.nackable))
                    });
                }
                if let Some((_, stream, nackable)) = current.as_mut() {
                    stream.write_rtp(rtp.into_write().nackable(*nackable));
                }
            }
        })?;
        self.tx_tracks = tracks;
        Ok(())
    }

    pub fn request_keyframe(&mut self, mid: Mid) -> Result<(), PeerFailure> {
        self.guarded(|rtc| {
            if let Some(stream) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                stream.request_keyframe(KeyframeRequestKind::Pli);
            }
        })
    }

    /// Poll until the `Rtc` yields its next timeout: transmits go to `sink`, events into `effects`.
    pub fn poll(
        &mut self,
        sink: &mut dyn TransmitSink,
        effects: &mut PollEffects,
    ) -> Result<(), PeerFailure> {
        let id = self.id;
        let mut connected = self.connected;
        let mut sent_to = self.sent_to;
        let mut rtx_history = std::mem::take(&mut self.rtx_history);
        let result = self.guarded(|rtc| loop {
            if !rtc.is_alive() {
                return Err(PeerFailure::Disconnected);
            }
            match rtc.poll_output() {
                Ok(Output::Timeout(at)) => return Ok(at),
                Ok(Output::Transmit(transmit)) => {
                    if sent_to != Some(transmit.destination) {
                        sent_to = Some(transmit.destination);
                        sink.learn_destination(id, transmit.destination);
                    }
                    sink.transmit(id, transmit.destination, &transmit.contents)
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => {
                        connected = true;
                        effects.connected = true;
                    }
                    Event::RtpPacket(packet) => effects.rtp.push(IncomingRtp::from(&packet)),
                    Event::KeyframeRequest(_) => effects.keyframe_requested = true,
                    Event::MediaEgressStats(stats) => resize_rtx_history(rtc, &mut rtx_history, &stats),
                    _ => {}
                },
                Err(error) => {
                    tracing::debug!(peer = %id, %error, "peer connection ended");
                    return Err(PeerFailure::Disconnected);
                }
            }
        });
        self.rtx_history = rtx_history;
        let result = result?;
        self.connected = connected;
        self.sent_to = sent_to;
        self.next_timeout = result?;
        Ok(())
    }
}
