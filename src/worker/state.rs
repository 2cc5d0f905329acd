//! The state one media worker owns: its peers, the demultiplexer, the forwarding table and the
//! timer heap, and what happens to each on a datagram, a timer or a command.
//!
//! Runs on its worker thread only. Invariants: a peer is in `peers`, `demux` and `router`
//! together or in none; every mutation of a peer is followed by a poll (directly, or through the
//! `dirty` list and the turn's forwarded `writes`, both drained by `flush_players` in the same
//! loop turn); notifications to control never block.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::Notify;

use super::commands::{Command, Notification, PeerAdd, PeerFailure, PeerId, PeerRole, WorkerId, WorkerStats};
use super::demux::Demux;
use super::io::DatagramIo;
use super::io::IoStats;
use super::peer_slot::{PeerSlot, PollEffects, SocketSink};
use crate::room::{PlayerWrite, Router};
use std::sync::atomic::Ordering;

/// How often every peer is checked for silence; the timeout itself is configured (30 s default),
/// so a one-second sweep makes it exact to within a second.
const SILENCE_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a worker sleeps without a reason, so a lost wakeup costs at most this.
const IDLE_WAIT_MAX: Duration = Duration::from_millis(500);
/// Data-path warnings (unroutable datagrams, I/O errors) are logged at most this often.
const DATA_PATH_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Packets written into one player's `Rtc` before it is advanced and polled. str0m's send
/// queue keeps the capacity of its largest backlog for the life of the peer, so a turn that
/// queued a keyframe burst for every player would leave each holding it: 24 KiB per
/// subscriber with 8× keyframes in upstream str0m (400-byte slots), about 1 KiB with the fork
/// in `vendor/str0m` (boxed packets, pointer slots). 8 still takes a whole ordinary frame
/// (6 packets at 1.5 Mbit/s and 30 fps, plus audio) in one poll.
const PLAYER_WRITES_PER_POLL_MAX: usize = 8;

#[derive(Default, Debug, Clone, Copy)]
pub struct WorkerCounters {
    pub datagrams_unroutable: u64,
    pub peers_failed: u64,
    pub notifications_dropped: u64,
    pub io_errors: u64,
}

pub struct WorkerState {
    pub id: WorkerId,
    candidate: SocketAddr,
    silence_timeout: Duration,
    notifications: Sender<Notification>,
    control_wakeup: Arc<Notify>,
    /// Boxed: a slot holds a whole str0m `Rtc` (kilobytes), and the table keeps spare buckets.
    peers: HashMap<PeerId, Box<PeerSlot>>,
    demux: Demux,
    router: Router,
    timers: BinaryHeap<Reverse<(Instant, PeerId)>>,
    dirty: Vec<PeerId>,
    /// Forwarded packets of this loop turn, applied player by player in `flush_players`.
    writes: Vec<PlayerWrite>,
    /// Scratch for grouping `writes` by player: (player, index into `writes`).
    write_order: Vec<(PeerId, u32)>,
    effects: PollEffects,
    next_sweep: Instant,
    seed: u64,
    pub counters: WorkerCounters,
    last_data_path_log: Option<Instant>,
    stats: Arc<WorkerStats>,
}

impl WorkerState {
    pub fn new(
        id: WorkerId,
        candidate: SocketAddr,
        silence_timeout: Duration,
        notifications: Sender<Notification>,
        control_wakeup: Arc<Notify>,
        stats: Arc<WorkerStats>,
    ) -> Self {
        let now = Instant::now();
        WorkerState {
            id,
            candidate,
            silence_timeout,
            notifications,
            control_wakeup,
            peers: HashMap::new(),
            demux: Demux::default(),
            router: Router::default(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            writes: Vec::new(),
            write_order: Vec::new(),
            effects: PollEffects::default(),
            next_sweep: now + SILENCE_SWEEP_INTERVAL,
            seed: uuid::Uuid::new_v4().as_u64_pair().0 | 1,
            counters: WorkerCounters::default(),
            last_data_path_log: None,
            stats,
        }
    }

    /// The earliest instant something is due.
    pub fn next_deadline(&self) -> Instant {
        let idle = Instant::now() + IDLE_WAIT_MAX;
        let timer = self.timers.peek().map(|Reverse((at, _))| *at).unwrap_or(idle);
        timer.min(self.next_sweep).min(idle)
    }

    /// Returns false on `Shutdown`.
    pub fn handle_command(&mut self, io: &mut dyn DatagramIo, command: Command, now: Instant) -> bool {
        match command {
            Command::PeerAdd(add) => self.add_peer(io, *add, now),
            Command::PeerRemove { peer } => self.remove_peer(peer),
            Command::Shutdown => return false,
        }
        true
    }

    fn add_peer(&mut self, io: &mut dyn DatagramIo, add: PeerAdd, now: Instant) {
        let PeerAdd {
            peer,
            role,
            rtc,
            local_ufrag,
            tracks,
        } = add;
        match role {
            PeerRole::Publisher => self.router.add_publisher(peer, tracks.clone()),
            PeerRole::Player { publisher } => {
                let seed = self.next_seed();
                if let Err(error) = self.router.add_player(peer, publisher, &tracks, seed) {
                    tracing::debug!(%peer, %error, "player refused");
                    self.notify(Notification::PeerFailed {
                        peer,
                        failure: PeerFailure::Disconnected,
                    });
                    return;
                }
            }
        }
        self.demux.add_peer(peer, &local_ufrag);
        self.peers
            .insert(peer, Box::new(PeerSlot::new(peer, role, rtc, now)));
        self.mark_dirty(peer);
        self.flush_players(io, now);
    }

    fn remove_peer(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
        self.demux.remove_peer(peer);
        self.router.remove(peer);
    }

    fn fail_peer(&mut self, peer: PeerId, failure: PeerFailure) {
        if self.peers.contains_key(&peer) {
            self.counters.peers_failed += 1;
            self.remove_peer(peer);
            self.notify(Notification::PeerFailed { peer, failure });
        }
    }

    fn notify(&mut self, notification: Notification) {
        match self.notifications.try_send(notification) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.notifications_dropped += 1
            }
        }
        self.control_wakeup.notify_one();
    }

    pub fn handle_datagram(
        &mut self,
        io: &mut dyn DatagramIo,
        now: Instant,
        source: SocketAddr,
        bytes: &[u8],
    ) {
        let Some(peer) = self.demux.route(source, bytes) else {
            self.counters.datagrams_unroutable += 1;
            self.log_data_path(|c| tracing::debug!(unroutable = c.datagrams_unroutable, %source, "datagram for no peer dropped"));
            return;
        };
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        match slot.receive(now, source, self.candidate, bytes) {
            Ok(()) => self.poll_peer(io, peer, now),
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
            if let Some(slot) = self.peers.get_mut(&peer).filter(|slot| slot.next_timeout == at) {
                slot.timer_armed = false;
                self.mark_dirty(peer);
            }
        }
        if now >= self.next_sweep {
            self.next_sweep = now + SILENCE_SWEEP_INTERVAL;
            self.sweep_silent_peers(now);
            self.compact_timers();
            return true;
        }
        false
    }

    /// Publish the counters for control to read.
    pub fn publish_stats(&self, io: &IoStats) {
        let set =
            |counter: &std::sync::atomic::AtomicU64, value: u64| counter.store(value, Ordering::Relaxed);
        set(&self.stats.peers, self.peers.len() as u64);
        set(&self.stats.datagrams_received, io.datagrams_received);
        set(&self.stats.datagrams_sent, io.datagrams_sent);
        set(
            &self.stats.datagrams_send_dropped,
            io.send_dropped.saturating_add(io.send_errors),
        );
        set(
            &self.stats.datagrams_unroutable,
            self.counters.datagrams_unroutable,
        );
        set(&self.stats.peers_failed, self.counters.peers_failed);
        set(
            &self.stats.notifications_dropped,
            self.counters.notifications_dropped,
        );
        set(&self.stats.io_errors, self.counters.io_errors);
        set(&self.stats.syscalls, io.syscalls);
        set(&self.stats.gso_batches, io.gso_batches);
        set(&self.stats.gso_datagrams, io.gso_datagrams);
    }

    /// Apply this turn's forwarded writes, then advance and poll every peer marked dirty
    /// (keyframe requests, timers), until nothing is left.
    pub fn flush_players(&mut self, io: &mut dyn DatagramIo, now: Instant) {
        loop {
            if !self.writes.is_empty() {
                self.apply_writes(io, now);
                continue;
            }
            let Some(peer) = self.dirty.pop() else {
                break;
            };
            let Some(slot) = self.peers.get_mut(&peer).filter(|slot| slot.dirty) else {
                continue; // Gone, or already advanced and polled with its writes.
            };
            slot.dirty = false;
            match slot.advance(now) {
                Ok(()) => self.poll_peer(io, peer, now),
                Err(failure) => self.fail_peer(peer, failure),
            }
        }
    }

    fn mark_dirty(&mut self, peer: PeerId) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(peer);
            }
        }
    }

    fn poll_peer(&mut self, io: &mut dyn DatagramIo, peer: PeerId, now: Instant) {
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        let mut effects = std::mem::take(&mut self.effects);
        let before = slot.next_timeout;
        let result = slot.poll(
            &mut SocketSink {
                io,
                demux: &mut self.demux,
            },
            &mut effects,
        );
        let (after, role) = (slot.next_timeout, slot.role);
        if after != before || !slot.timer_armed {
            slot.timer_armed = true;
            self.timers.push(Reverse((after, peer)));
        }
        if let Err(failure) = result {
            effects.clear();
            self.effects = effects;
            self.fail_peer(peer, failure);
            return;
        }
        if effects.connected {
            self.notify(Notification::PeerConnected { peer });
        }
        match role {
            PeerRole::Publisher => {
                let had_rtp = !effects.rtp.is_empty();
                if had_rtp {
                    if let Some(slot) = self.peers.get_mut(&peer) {
                        slot.last_rtp = now;
                    }
                }
                for packet in effects.rtp.drain(..) {
                    self.router.forward(peer, &packet, &mut self.writes);
                }
                if had_rtp {
                    self.request_keyframe_if_due(peer, now, false);
                }
            }
            PeerRole::Player { publisher } => {
                if effects.keyframe_requested || effects.connected {
                    self.request_keyframe_if_due(publisher, now, effects.keyframe_requested);
                }
            }
        }
        effects.clear();
        self.effects = effects;
    }

    /// Every forwarded write queued this turn, grouped by player: each player's packets are
    /// written, its clock advanced and its output polled in one go (in chunks of
    /// [`PLAYER_WRITES_PER_POLL_MAX`]), so its `Rtc` (cold: one of hundreds) is pulled into
    /// cache once per turn rather than once to write each packet and again to send them.
    /// Order among one player's packets is kept.
    fn apply_writes(&mut self, io: &mut dyn DatagramIo, now: Instant) {
        let writes = std::mem::take(&mut self.writes);
        let mut order = std::mem::take(&mut self.write_order);
        order.clear();
        order.extend((0u32..).zip(&writes).map(|(index, write)| (write.player, index)));
        order.sort_unstable();
        for group in order.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(player, _)) = group.first() else {
                continue;
            };
            for chunk in group.chunks(PLAYER_WRITES_PER_POLL_MAX) {
                let Some(slot) = self.peers.get_mut(&player) else {
                    break; // Failed on an earlier chunk.
                };
                let written = slot.write_batch(
                    chunk
                        .iter()
                        .filter_map(|&(_, index)| writes.get(index as usize))
                        .map(|write| (write.mid, write.kind, write.rtp.clone())),
                );
                slot.dirty = false;
                match written.and_then(|()| slot.advance(now)) {
                    Ok(()) => self.poll_peer(io, player, now),
                    Err(failure) => self.fail_peer(player, failure),
                }
            }
        }
        let mut writes = writes;
        writes.clear();
        writes.append(&mut self.writes); // none expected: players do not forward
        self.writes = writes;
        self.write_order = order;
    }

    fn request_keyframe_if_due(&mut self, publisher: PeerId, now: Instant, player_asked: bool) {
        if !self.router.keyframe_request_due(publisher, now, player_asked) {
            return;
        }
        let Some(mid) = self.router.publisher_video_mid(publisher) else {
            return;
        };
        let Some(slot) = self.peers.get_mut(&publisher) else {
            return;
        };
        match slot.request_keyframe(mid) {
            Ok(()) => self.mark_dirty(publisher),
            Err(failure) => self.fail_peer(publisher, failure),
        }
    }

    fn sweep_silent_peers(&mut self, now: Instant) {
        let quiet = |since: Instant| now.saturating_duration_since(since) >= self.silence_timeout;
        let silent: Vec<(PeerId, PeerFailure)> = self
            .peers
            .values()
            .filter_map(|slot| {
                if quiet(slot.last_rx) {
                    let failure = if slot.connected {
                        PeerFailure::Silence
                    } else {
                        PeerFailure::IceTimeout
                    };
                    Some((slot.id, failure))
                } else if slot.connected && slot.role == PeerRole::Publisher && quiet(slot.last_rtp) {
                    Some((slot.id, PeerFailure::NoMedia))
                } else {
                    None
                }
            })
            .collect();
        for (peer, failure) in silent {
            tracing::info!(%peer, info = failure.info(), "peer silent; ending it");
            self.fail_peer(peer, failure);
        }
    }

    /// Stale heap entries (a peer's timeout moved) are skipped when popped; rebuild when they
    /// outnumber live ones so the heap stays proportional to the peers.
    fn compact_timers(&mut self) {
        if self.timers.len() > 4 * self.peers.len() + 1024 {
            self.timers = self
                .peers
                .values()
                .map(|slot| Reverse((slot.next_timeout, slot.id)))
                .collect();
        }
    }

    fn next_seed(&mut self) -> u64 {
        // xorshift64: player sequence/timestamp starts need to differ, not to be secret.
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        x
    }

    pub fn io_error(&mut self, error: &std::io::Error) {
        self.counters.io_errors += 1;
        self.log_data_path(|c| tracing::warn!(errors = c.io_errors, %error, "worker I/O error"));
    }

    fn log_data_path(&mut self, log: impl FnOnce(&WorkerCounters)) {
        let now = Instant::now();
        if self
            .last_data_path_log
            .is_none_or(|at| now.saturating_duration_since(at) >= DATA_PATH_LOG_INTERVAL)
        {
            self.last_data_path_log = Some(now);
            log(&self.counters);
        }
    }
}
