//! The state one media worker owns: its endpoints, the demultiplexer, the forwarding table, the
//! timer heap and the counters, and what happens to each on a datagram, a timer or a command.
//!
//! Runs on its worker thread only, and is sans-IO in time: every call takes `now`, nothing here
//! reads a clock, and the seed of every choice it makes comes in [`WorkerSetup`], so the
//! simulation (`tests/sim`) drives the very code the server runs, on a virtual clock.
//! Invariants: an endpoint is in `slots`, `demux` and `router` together or in none; every
//! mutation of an endpoint is followed by a poll in the same loop turn (directly, or through
//! the `dirty` list and the turn's forwarded `writes`, both drained by `flush_players`; see
//! the endpoint module for the one named exception); notifications to control never block and
//! are never lost (`notify.rs`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::commands::{Command, EndpointAdd, EndpointSpec, Notification, PeerFailure, PeerRole};
use super::commands::{BYE_GRACE, DTLS_HANDSHAKE_TIMEOUT};
use super::counters::{CounterTable, DropReason, WorkerCounter};
use super::demux::Demux;
use super::endpoint::{Endpoint, Ingest, PollEffects, Received, RecorderTap, Slot, WebRtcPeer};
use super::io::{DatagramIo, IoStats};
use super::notify::Notifier;
use crate::forward::rewrite::TrackStart;
use crate::forward::{ForwardFault, IncomingRtp, PlayerWrite, RouteError, Router};
use crate::ids::{PeerId, WorkerId};

/// How often every endpoint is checked for silence; the timeout itself is configured (30 s
/// default), so a one-second sweep makes it exact to within a second.
const SILENCE_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a worker sleeps without a reason, so a lost wakeup costs at most this.
const IDLE_WAIT_MAX: Duration = Duration::from_millis(500);
/// How soon a worker tries again to hand over notifications that found control's queue full.
const NOTIFICATION_RETRY_INTERVAL: Duration = Duration::from_millis(10);
/// Data-path warnings (unroutable datagrams, I/O errors) are logged at most this often.
const DATA_PATH_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What a worker is given at its start.
#[derive(Debug, Clone)]
pub struct WorkerSetup {
    pub id: WorkerId,
    /// The address announced in this worker's ICE candidates.
    pub candidate: SocketAddr,
    /// An endpoint silent this long (no datagram; a publisher: no RTP) is ended.
    pub peer_timeout: Duration,
    /// Seeds the worker's own choices (players' sequence and timestamp starts).
    pub seed: u64,
}

/// What a test watches inside a worker (the server never sets one).
pub trait WorkerProbe: Send {
    /// A publisher's packet was decrypted and handed to forwarding.
    fn accepted(&mut self, publisher: PeerId, packet: &IncomingRtp);
}

pub struct WorkerState {
    pub id: WorkerId,
    candidate: SocketAddr,
    peer_timeout: Duration,
    notifier: Notifier,
    pub(super) counters: Arc<CounterTable>,
    pub(super) slots: HashMap<PeerId, Slot>,
    pub(super) demux: Demux,
    pub(super) router: Router,
    pub(super) timers: BinaryHeap<Reverse<(Instant, PeerId)>>,
    pub(super) dirty: Vec<PeerId>,
    /// Forwarded packets of this loop turn, applied player by player in `flush_players`.
    pub(super) writes: Vec<PlayerWrite>,
    /// Scratch for grouping `writes` by player: (player, index into `writes`).
    pub(super) write_order: Vec<(PeerId, u32)>,
    pub(super) effects: PollEffects,
    pub(super) probe: Option<Box<dyn WorkerProbe>>,
    next_sweep: Instant,
    seed: u64,
    last_data_path_log: Option<Instant>,
}

impl WorkerState {
    pub fn new(setup: WorkerSetup, notifier: Notifier, counters: Arc<CounterTable>, now: Instant) -> Self {
        WorkerState {
            id: setup.id,
            candidate: setup.candidate,
            peer_timeout: setup.peer_timeout,
            notifier,
            counters,
            slots: HashMap::new(),
            demux: Demux::default(),
            router: Router::default(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            writes: Vec::new(),
            write_order: Vec::new(),
            effects: PollEffects::default(),
            probe: None,
            next_sweep: now + SILENCE_SWEEP_INTERVAL,
            seed: setup.seed | 1,
            last_data_path_log: None,
        }
    }

    /// Watch accepted packets (tests).
    pub fn set_probe(&mut self, probe: Box<dyn WorkerProbe>) {
        self.probe = Some(probe);
    }

    /// Break forwarding on purpose (the simulation's own check that it catches a broken
    /// fan-out). Never called by the server.
    pub fn inject_fault(&mut self, fault: Option<ForwardFault>) {
        self.router.set_fault(fault);
    }

    pub fn counters(&self) -> &CounterTable {
        &self.counters
    }

    /// The endpoints this worker holds, in no particular order.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.slots.keys().copied()
    }

    /// Where a player's track started (see `Router::player_track_start`).
    pub fn player_track_start(&self, player: PeerId, kind: str0m::media::MediaKind) -> Option<TrackStart> {
        self.router.player_track_start(player, kind)
    }

    /// The earliest instant something is due: at most [`IDLE_WAIT_MAX`] after `now`, or
    /// [`NOTIFICATION_RETRY_INTERVAL`] while notifications wait in the backlog.
    pub fn next_deadline(&self, now: Instant) -> Instant {
        let idle = if self.notifier.backlog() > 0 {
            now + NOTIFICATION_RETRY_INTERVAL
        } else {
            now + IDLE_WAIT_MAX
        };
        let timer = self.timers.peek().map(|Reverse((at, _))| *at).unwrap_or(idle);
        timer.min(self.next_sweep).min(idle)
    }

    /// Returns false on `Shutdown`.
    pub fn handle_command(&mut self, io: &mut dyn DatagramIo, command: Command, now: Instant) -> bool {
        match command {
            Command::EndpointAdd(add) => self.add_endpoint(io, *add, now),
            Command::PeerRemove { peer } => self.remove_endpoint(peer),
            Command::IngestRtp {
                peer,
                keyframe,
                video,
                packets,
            } => self.ingest(peer, keyframe, video, packets, now),
            Command::SetMuted {
                publisher,
                kind,
                muted,
            } => {
                self.router.set_muted(publisher, kind, muted);
                if !muted && kind == str0m::media::MediaKind::Video {
                    self.request_keyframe_now(publisher, now);
                }
            }
            Command::Stall(duration) => {
                tracing::warn!(
                    worker = self.id.0,
                    ?duration,
                    "fault injection: stalling this worker"
                );
                std::thread::sleep(duration);
            }
            Command::Shutdown => return false,
        }
        true
    }

    fn add_endpoint(&mut self, io: &mut dyn DatagramIo, add: EndpointAdd, now: Instant) {
        let EndpointAdd {
            peer,
            role,
            tracks,
            spec,
            meter,
        } = add;
        match role {
            PeerRole::Publisher => self.router.add_publisher(peer, tracks),
            PeerRole::Player { publisher } => {
                // A recorder keeps the publisher's own RTP timestamps (its sender reports
                // speak of them); only a network player needs a start of its own.
                let seed = match spec {
                    EndpointSpec::Recorder(_) => 0,
                    _ => self.next_seed(),
                };
                if let Err(error) = self.router.add_player(peer, publisher, &tracks, seed) {
                    tracing::debug!(%peer, %error, "player refused");
                    let failure = match error {
                        RouteError::NoPublisher => PeerFailure::PublisherGone,
                        RouteError::TooManyPlayers => PeerFailure::Internal,
                    };
                    self.notify(Notification::PeerFailed { peer, failure });
                    if let EndpointSpec::Recorder(spec) = spec {
                        spec.abandon(); // the writer must not wait for a tap that never was
                    }
                    return;
                }
            }
        }
        let endpoint = match spec {
            EndpointSpec::WebRtc { rtc, local_ufrag } => {
                self.demux.add_peer(peer, &local_ufrag);
                Endpoint::WebRtc(Box::new(WebRtcPeer::new(peer, rtc)))
            }
            EndpointSpec::Recorder(spec) => Endpoint::Recorder(Box::new(RecorderTap::new(*spec, now))),
            EndpointSpec::BridgeTap(spec) => Endpoint::Recorder(Box::new(RecorderTap::bridge(*spec, now))),
            EndpointSpec::Ingest => Endpoint::Ingest(Box::new(Ingest::new(now))),
        };
        let mut slot = Slot::new(peer, role, endpoint, now);
        slot.meter = meter.map(|meter| (meter, 0));
        self.slots.insert(peer, slot);
        if let PeerRole::Player { publisher } = role {
            self.replay_cached_gop(publisher, peer);
        }
        self.counters.set(WorkerCounter::Peers, self.slots.len() as u64);
        self.mark_dirty(peer);
        self.flush_players(io, now);
    }

    /// A new player of an ingest starts on the ingest's cached group of pictures.
    fn replay_cached_gop(&mut self, publisher: PeerId, player: PeerId) {
        let Some(ingest) = self.slots.get_mut(&publisher).and_then(Slot::ingest_mut) else {
            return;
        };
        for packet in ingest.cached_gop() {
            self.router
                .forward_to(publisher, player, packet, &mut self.writes);
        }
    }

    /// A batch from the RTMP bridge for one of its ingests (one that is gone is ignored: its
    /// removal passed the batch in the queue).
    fn ingest(&mut self, peer: PeerId, keyframe: bool, video: bool, packets: Vec<IncomingRtp>, now: Instant) {
        let Some(slot) = self.slots.get_mut(&peer) else {
            return;
        };
        let Some(ingest) = slot.ingest_mut() else {
            return;
        };
        ingest.push(keyframe, video, packets);
        slot.last_rx = now;
        self.mark_dirty(peer);
    }

    fn remove_endpoint(&mut self, peer: PeerId) {
        self.slots.remove(&peer);
        self.demux.remove_peer(peer);
        self.router.remove(peer);
        self.counters.set(WorkerCounter::Peers, self.slots.len() as u64);
    }

    pub(super) fn fail_peer(&mut self, peer: PeerId, failure: PeerFailure) {
        if self.slots.contains_key(&peer) {
            if !failure.is_ordinary() {
                self.counters.add(WorkerCounter::PeersFailed, 1);
            }
            match failure {
                PeerFailure::Internal => self.counters.add(WorkerCounter::PeerPanics, 1),
                PeerFailure::DtlsError | PeerFailure::DtlsFingerprint => {
                    self.counters.add(WorkerCounter::DtlsFailures, 1)
                }
                PeerFailure::DtlsTimeout => self.counters.add(WorkerCounter::DtlsTimeouts, 1),
                _ => {}
            }
            self.remove_endpoint(peer);
            self.notify(Notification::PeerFailed { peer, failure });
        }
    }

    pub(super) fn notify(&mut self, notification: Notification) {
        self.notifier.send(notification, &self.counters);
    }

    /// Retry notifications that found control's queue full (each turn).
    pub fn flush_notifications(&mut self) {
        self.notifier.flush(&self.counters);
    }

    pub fn handle_datagram(
        &mut self,
        io: &mut dyn DatagramIo,
        now: Instant,
        source: SocketAddr,
        bytes: &[u8],
    ) {
        self.counters
            .add(WorkerCounter::BytesReceived, bytes.len() as u64);
        let Some(peer) = self.demux.route(source, bytes) else {
            self.counters.dropped(DropReason::Unroutable);
            self.log_data_path(now, |counters| {
                let unroutable = counters.get_dropped(DropReason::Unroutable);
                tracing::debug!(unroutable, %source, "datagram for no peer dropped")
            });
            return;
        };
        let Some(slot) = self.slots.get_mut(&peer) else {
            return;
        };
        slot.bytes_received = slot.bytes_received.wrapping_add(bytes.len() as u64);
        match slot.receive(now, source, self.candidate, bytes) {
            Ok(Received::Accepted) => self.poll_peer(io, peer, now),
            Ok(Received::Refused) => {
                self.counters.dropped(DropReason::RefusedByPeer);
                self.poll_peer(io, peer, now);
            }
            Ok(Received::NotWebRtc) => self.counters.dropped(DropReason::NotWebRtc),
            Err(failure) => self.fail_peer(peer, failure),
        }
    }

    /// Fire due timers; returns true when this call also ran the once-a-second sweep.
    pub fn fire_timers(&mut self, now: Instant) -> bool {
        while let Some(Reverse((at, peer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(slot) = self.slots.get_mut(&peer).filter(|slot| slot.next_timeout == at) {
                slot.timer_armed = false;
                self.mark_dirty(peer);
            }
        }
        if now >= self.next_sweep {
            self.next_sweep = now + SILENCE_SWEEP_INTERVAL;
            self.sweep_silent_peers(now);
            self.report_meters();
            self.compact_timers();
            return true;
        }
        false
    }

    /// Copy the I/O backend's own counts into the table (once a second).
    pub fn publish_io_stats(&self, io: &IoStats) {
        let table = &self.counters;
        table.set(WorkerCounter::DatagramsReceived, io.datagrams_received);
        table.set(WorkerCounter::DatagramsSent, io.datagrams_sent);
        table.set(WorkerCounter::Syscalls, io.syscalls);
        table.set(WorkerCounter::GsoBatches, io.gso_batches);
        table.set(WorkerCounter::GsoDatagrams, io.gso_datagrams);
        table.set(WorkerCounter::RecvRearms, io.recv_rearms);
        table.set_dropped(DropReason::Truncated, io.datagrams_truncated);
        table.set_dropped(DropReason::ReceiveError, io.recv_errors);
        table.set_dropped(DropReason::SendQueueFull, io.send_dropped);
        table.set_dropped(DropReason::SendRefused, io.send_errors);
    }

    pub(super) fn mark_dirty(&mut self, peer: PeerId) {
        if let Some(slot) = self.slots.get_mut(&peer) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(peer);
            }
        }
    }

    /// Each metered endpoint's bytes and bitrate over the last sweep interval, for control.
    fn report_meters(&mut self) {
        let interval_ms = u64::try_from(SILENCE_SWEEP_INTERVAL.as_millis())
            .unwrap_or(1000)
            .max(1);
        for slot in self.slots.values_mut() {
            let total = slot.bytes_received;
            if let Some((meter, last)) = slot.meter.as_mut() {
                let bits = total.wrapping_sub(*last).saturating_mul(8);
                *last = total;
                meter.bytes_received.store(total, Ordering::Relaxed);
                meter
                    .bitrate_bps
                    .store(bits.saturating_mul(1000) / interval_ms, Ordering::Relaxed);
            }
        }
    }

    fn sweep_silent_peers(&mut self, now: Instant) {
        let peer_timeout = self.peer_timeout;
        let mut ending: Vec<(PeerId, PeerFailure)> = self
            .slots
            .values()
            .filter(|slot| slot.is_network())
            .filter_map(|slot| Some((slot.id, overdue(slot, now, peer_timeout)?)))
            .collect();
        // Ended in id order, so the notifications' order does not depend on the map's.
        ending.sort_unstable_by_key(|(peer, _)| *peer);
        for (peer, failure) in ending {
            tracing::info!(%peer, reason = failure.info(), "peer ended");
            self.fail_peer(peer, failure);
        }
    }

    /// Stale heap entries (an endpoint's timeout moved) are skipped when popped; rebuild when
    /// they outnumber live ones so the heap stays proportional to the endpoints.
    fn compact_timers(&mut self) {
        if self.timers.len() > 4 * self.slots.len() + 1024 {
            self.timers = self
                .slots
                .values()
                .map(|slot| Reverse((slot.next_timeout, slot.id)))
                .collect();
        }
    }

    pub(super) fn next_seed(&mut self) -> u64 {
        // xorshift64: player sequence/timestamp starts need to differ, not to be secret.
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        x
    }

    pub fn io_error(&mut self, error: &std::io::Error, now: Instant) {
        self.counters.add(WorkerCounter::IoErrors, 1);
        self.log_data_path(now, |counters| {
            let errors = counters.get(WorkerCounter::IoErrors);
            tracing::warn!(errors, %error, "worker I/O error")
        });
    }

    fn log_data_path(&mut self, now: Instant, log: impl FnOnce(&CounterTable)) {
        if self
            .last_data_path_log
            .is_none_or(|at| now.saturating_duration_since(at) >= DATA_PATH_LOG_INTERVAL)
        {
            self.last_data_path_log = Some(now);
            log(&self.counters);
        }
    }
}

/// Why the sweep ends a network endpoint now, if it does: nothing received for the peer
/// timeout (never connected: ICE; connected: keep-alive), a DTLS handshake not done
/// [`DTLS_HANDSHAKE_TIMEOUT`] after ICE connected, an RTCP BYE with no RTP for [`BYE_GRACE`]
/// after it (a close), or a connected publisher that sends no media for the peer timeout.
fn overdue(slot: &Slot, now: Instant, peer_timeout: Duration) -> Option<PeerFailure> {
    let since = |at: Instant| now.saturating_duration_since(at);
    if since(slot.last_rx) >= peer_timeout {
        return Some(if slot.connected {
            PeerFailure::Silence
        } else {
            PeerFailure::IceTimeout
        });
    }
    if !slot.connected
        && slot
            .ice_connected_at
            .is_some_and(|at| since(at) >= DTLS_HANDSHAKE_TIMEOUT)
    {
        return Some(PeerFailure::DtlsTimeout);
    }
    if slot
        .goodbye_at
        .is_some_and(|at| since(at) >= BYE_GRACE && slot.last_rtp <= at)
    {
        return Some(PeerFailure::Closed);
    }
    if slot.connected && slot.role == PeerRole::Publisher && since(slot.last_rtp) >= peer_timeout {
        return Some(PeerFailure::NoMedia);
    }
    None
}
