//! The WebRTC endpoint kind: one peer's str0m `Rtc` as a worker holds it, with every call into
//! str0m guarded so that a panic ends this peer only.
//!
//! Runs on the worker that owns the peer. Driving contract: str0m's rule is that after any
//! `handle_input` or write the `Rtc` is polled until it yields a timeout, and this type keeps
//! it with one named exception, [`WRITES_BEFORE_POLL_MAX`]: up to that many direct-API calls
//! that only queue (forwarded RTP writes, keyframe requests) may precede one `handle_input`
//! (a receive or an advance), after which the poll must come before anything else. Debug
//! builds check the contract on every call ([`PollDebt`]). A peer that returned an error is
//! dead: the worker removes it and never calls it again. A player also sizes its `Rtc`'s
//! retransmission history from the round trip its send statistics report.
//!
//! How a peer ends is named from what str0m reported ([`failure_of`]): a DTLS error on
//! receive before the handshake completed, a fatal alert at any time, or an error on a timer
//! (a refused certificate or CertificateVerify, dimpl's own handshake timeout) is `DtlsError`;
//! a certificate that does not match the SDP's fingerprint `DtlsFingerprint`; an `Rtc` that
//! stopped being alive without an error (the peer's close_notify, drained) an ordinary
//! `Closed`. After the handshake a datagram dimpl cannot read is junk: dropped and counted.
//! Each ending is logged once at info (the peer is removed after it). An RTCP BYE is only
//! reported (`PollEffects::remote_goodbye`): the worker decides whether it was a close.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Ssrc, StreamTx};
use str0m::stats::MediaEgressStats;
use str0m::{Event, IceConnectionState, Input, Output, Rtc, RtcError};

use super::{FeedbackTally, PollEffects, Received, TransmitSink};
use crate::forward::{IncomingRtp, OutgoingRtp};
use crate::ids::PeerId;
use crate::sdp::rtx_history::RtxHistory;
use crate::sdp::set_rtx_history;
use crate::worker::commands::PeerFailure;

/// Queuing calls (RTP writes, keyframe requests) an `Rtc` may take before the `handle_input`
/// and poll that follow them: the worker writes a player's forwarded packets in chunks of this
/// many, then advances and polls once, so the player's cold `Rtc` is pulled into cache once
/// per chunk instead of once per packet. Not more: str0m's send queue keeps the capacity of
/// its largest backlog for the life of the peer (about 1 KiB per subscriber with 8× keyframes
/// and the fork's boxed slots), and 8 still takes a whole ordinary frame (6 packets at
/// 1.5 Mbit/s and 30 fps, plus audio) in one poll.
pub const WRITES_BEFORE_POLL_MAX: usize = 8;

/// What was done to the `Rtc` since its last poll, to check the driving contract.
#[derive(Debug, Default, Clone, Copy)]
struct PollDebt {
    /// Queuing calls since the last poll.
    writes: usize,
    /// A `handle_input` since the last poll: only the poll may come next.
    input: bool,
}

impl PollDebt {
    fn input(&mut self, what: &str) {
        debug_assert!(!self.input, "{what} after a handle_input that was not polled");
        self.input = true;
    }

    fn writes(&mut self, n: usize) {
        debug_assert!(!self.input, "a write after a handle_input that was not polled");
        self.writes = self.writes.saturating_add(n);
        debug_assert!(
            self.writes <= WRITES_BEFORE_POLL_MAX,
            "{} writes before a poll (at most {WRITES_BEFORE_POLL_MAX})",
            self.writes
        );
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

pub struct WebRtcPeer {
    id: PeerId,
    rtc: Rtc,
    debt: PollDebt,
    /// Where the `Rtc` last sent: the demultiplexer learns an address once, not per datagram.
    sent_to: Option<SocketAddr>,
    /// A player's video retransmission history length, from its round trip.
    rtx_history: RtxHistory,
    /// Outgoing tracks written so far, by kind (a player has at most a video and an audio
    /// one). Inline, not behind a pointer: it is read on every forwarded packet.
    tx_tracks: [Option<TxTrack>; 2],
    /// The feedback totals of each sending mid at its last stats event (str0m reports totals;
    /// the worker counts the change).
    feedback_seen: Vec<(Mid, FeedbackTally)>,
    /// DTLS (and ICE) completed: from now on a DTLS record the peer's stack refuses is junk,
    /// but a fatal alert still ends the peer.
    connected: bool,
    /// An RTCP datagram arrived since the last poll: the poll asks str0m for RTCP BYEs (only
    /// then, so the hot path of players never does).
    rtcp_since_poll: bool,
}

/// Whether a datagram is RTCP by its first two bytes (RFC 5761 §4: version 2, packet type
/// 192 to 223).
fn looks_like_rtcp(bytes: &[u8]) -> bool {
    matches!(bytes, [first, second, ..] if (128..=191).contains(first) && (192..=223).contains(second))
}

/// Add what `stats` counted since the last event of its mid to `tally`.
fn tally_feedback(seen: &mut Vec<(Mid, FeedbackTally)>, stats: &MediaEgressStats, tally: &mut FeedbackTally) {
    let now = FeedbackTally {
        nacks: stats.nacks,
        resent: stats.packets_resent,
        plis: stats.plis,
        firs: stats.firs,
    };
    let before = match seen.iter_mut().find(|(mid, _)| *mid == stats.mid) {
        Some((_, before)) => std::mem::replace(before, now),
        None => {
            seen.push((stats.mid, now));
            FeedbackTally::default()
        }
    };
    tally.nacks = tally.nacks.saturating_add(now.nacks.saturating_sub(before.nacks));
    tally.resent = tally
        .resent
        .saturating_add(now.resent.saturating_sub(before.resent));
    tally.plis = tally.plis.saturating_add(now.plis.saturating_sub(before.plis));
    tally.firs = tally.firs.saturating_add(now.firs.saturating_sub(before.firs));
}

/// The failure an error from str0m that ends the peer means (which errors end it: see
/// [`WebRtcPeer::receive`], [`WebRtcPeer::advance`] and [`WebRtcPeer::poll`]).
fn failure_of(error: &RtcError) -> PeerFailure {
    match error {
        RtcError::RemoteSdp(message) if message.contains("fingerprint") => PeerFailure::DtlsFingerprint,
        _ => PeerFailure::DtlsError,
    }
}

/// Whether a DTLS error is the peer's fatal alert (dimpl's `SecurityError::FatalAlert`, which
/// str0m passes on as text).
fn is_fatal_alert(error: &RtcError) -> bool {
    matches!(error, RtcError::Dtls(_)) && error.to_string().contains("received fatal alert")
}

/// Log a peer's end once, at info (the peer is removed after it, so this is once per peer).
fn log_failure(peer: PeerId, failure: PeerFailure, error: &RtcError) {
    tracing::info!(%peer, reason = failure.info(), %error, "peer connection failed");
}

impl WebRtcPeer {
    pub fn new(id: PeerId, rtc: Rtc) -> Self {
        WebRtcPeer {
            id,
            rtc,
            debt: PollDebt::default(),
            sent_to: None,
            rtx_history: RtxHistory::default(),
            tx_tracks: [None; 2],
            feedback_seen: Vec::new(),
            connected: false,
            rtcp_since_poll: false,
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
    ) -> Result<Received, PeerFailure> {
        let Ok(contents) = bytes.try_into() else {
            return Ok(Received::NotWebRtc); // Not STUN, DTLS, RTP or RTCP: str0m would refuse it.
        };
        self.debt.input("a receive");
        self.rtcp_since_poll |= looks_like_rtcp(bytes);
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
            Ok(()) => Ok(Received::Accepted),
            // A DTLS error during the handshake (a fatal alert, a refused certificate or
            // signature) ends it for good: dimpl keeps no state to go on from. Once connected,
            // only a fatal alert (encrypted: dimpl drops epoch-0 alerts by then) does.
            Err(error @ RtcError::Dtls(_)) if !self.connected || is_fatal_alert(&error) => {
                let failure = failure_of(&error);
                log_failure(self.id, failure, &error);
                Err(failure)
            }
            Err(error) => {
                tracing::trace!(peer = %self.id, %error, "input refused");
                Ok(Received::Refused)
            }
        }
    }

    /// Move the peer's clock forward (timers, queued writes).
    pub fn advance(&mut self, now: Instant) -> Result<(), PeerFailure> {
        self.debt.input("an advance");
        match self.guarded(|rtc| rtc.handle_input(Input::Timeout(now)))? {
            Ok(()) => Ok(()),
            Err(error) => {
                let failure = failure_of(&error);
                log_failure(self.id, failure, &error);
                Err(failure)
            }
        }
    }

    /// Write forwarded packets, in order, each on the outgoing track of its kind: one unwind
    /// guard for the batch and one send-stream lookup (a hash probe into cold memory) per run
    /// of packets of one kind, not per packet; a frame's packets come in a run. At most
    /// [`WRITES_BEFORE_POLL_MAX`] packets between two polls.
    pub fn write_batch(
        &mut self,
        writes: impl IntoIterator<Item = (Mid, MediaKind, OutgoingRtp)>,
    ) -> Result<(), PeerFailure> {
        let mut tracks = self.tx_tracks;
        let WebRtcPeer { id, rtc, debt, .. } = self;
        catch_unwind(AssertUnwindSafe(|| {
            let mut api = rtc.direct_api();
            // The stream the previous packet went to: (kind index, stream, nackable).
            let mut current: Option<(usize, &mut StreamTx, bool)> = None;
            for (mid, kind, rtp) in writes {
                debt.writes(1);
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
        }))
        .map_err(|_| {
            tracing::error!(peer = %id, "peer connection panicked; ending this peer only");
            PeerFailure::Internal
        })?;
        self.tx_tracks = tracks;
        Ok(())
    }

    /// Ask the remote for a keyframe on the incoming video at `mid` (queued until the poll).
    pub fn request_keyframe(&mut self, mid: Mid) -> Result<(), PeerFailure> {
        self.debt.writes(1);
        self.guarded(|rtc| {
            if let Some(stream) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                stream.request_keyframe(KeyframeRequestKind::Pli);
            }
        })
    }

    /// Poll until the `Rtc` yields its next timeout, which is returned: transmits go to
    /// `sink`, events into `effects`.
    pub fn poll(
        &mut self,
        sink: &mut dyn TransmitSink,
        effects: &mut PollEffects,
    ) -> Result<Instant, PeerFailure> {
        self.debt = PollDebt::default();
        let id = self.id;
        let mut sent_to = self.sent_to;
        let mut rtx_history = std::mem::take(&mut self.rtx_history);
        let mut feedback_seen = std::mem::take(&mut self.feedback_seen);
        let mut connected = self.connected;
        if std::mem::take(&mut self.rtcp_since_poll) {
            let goodbyes = self.guarded(|rtc| rtc.direct_api().take_remote_goodbyes())?;
            if !goodbyes.is_empty() {
                tracing::debug!(peer = %id, ?goodbyes, "RTCP BYE");
                effects.remote_goodbye = true;
            }
        }
        let result = self.guarded(|rtc| loop {
            if !rtc.is_alive() {
                // Every error path reported its error before; this is a clean close drained.
                tracing::info!(peer = %id, "peer connection closed by the peer");
                return Err(PeerFailure::Closed);
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
                        effects.connected = true;
                        connected = true;
                    }
                    Event::IceConnectionStateChange(
                        IceConnectionState::Connected | IceConnectionState::Completed,
                    ) => effects.ice_connected = true,
                    Event::RtpPacket(packet) => effects.rtp.push(IncomingRtp::from(&packet)),
                    Event::KeyframeRequest(_) => effects.keyframe_requested = true,
                    Event::MediaEgressStats(stats) => {
                        tally_feedback(&mut feedback_seen, &stats, &mut effects.feedback);
                        resize_rtx_history(rtc, &mut rtx_history, &stats)
                    }
                    _ => {}
                },
                Err(error) => {
                    let failure = failure_of(&error);
                    log_failure(id, failure, &error);
                    return Err(failure);
                }
            }
        });
        self.rtx_history = rtx_history;
        self.feedback_seen = feedback_seen;
        self.connected = connected;
        let next_timeout = result??;
        self.sent_to = sent_to;
        Ok(next_timeout)
    }
}
