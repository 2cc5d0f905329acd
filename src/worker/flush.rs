//! The second half of a worker turn: polling endpoints, forwarding what publishers received,
//! and writing the turn's forwarded packets into the players, player by player.
//!
//! Runs on the worker thread, as part of [`WorkerState`]. Invariants: `flush_players` returns
//! only when the dirty list and the turn's writes are both empty, so every endpoint touched
//! in the turn has been polled; a player's writes are applied in the order forwarding made
//! them, in chunks of at most [`WRITES_BEFORE_POLL_MAX`], each followed by one advance and
//! one poll (the endpoint's driving contract).

use std::cmp::Reverse;
use std::time::Instant;

use super::commands::{Notification, PeerRole};
use super::counters::{CounterTable, WorkerCounter};
use super::demux::Demux;
use super::endpoint::{TransmitSink, WRITES_BEFORE_POLL_MAX};
use super::io::DatagramIo;
use super::state::WorkerState;
use crate::ids::PeerId;

/// The worker's sink: queue on the socket, and route the destination's replies back to this
/// endpoint (str0m only sends to an address whose check it validated).
struct SocketSink<'a> {
    io: &'a mut dyn DatagramIo,
    demux: &'a mut Demux,
    counters: &'a CounterTable,
}

impl TransmitSink for SocketSink<'_> {
    fn transmit(&mut self, _peer: PeerId, destination: std::net::SocketAddr, datagram: &[u8]) {
        self.io.queue_send(destination, datagram);
        self.counters.add(WorkerCounter::BytesSent, datagram.len() as u64);
    }

    fn learn_destination(&mut self, peer: PeerId, destination: std::net::SocketAddr) {
        self.demux.learn_addr(peer, destination);
    }
}

impl WorkerState {
    /// Apply this turn's forwarded writes, then advance and poll every endpoint marked dirty
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
            let Some(slot) = self.slots.get_mut(&peer).filter(|slot| slot.dirty) else {
                continue; // Gone, or already advanced and polled with its writes.
            };
            slot.dirty = false;
            match slot.advance(now) {
                Ok(()) => self.poll_peer(io, peer, now),
                Err(failure) => self.fail_peer(peer, failure),
            }
        }
    }

    pub(super) fn poll_peer(&mut self, io: &mut dyn DatagramIo, peer: PeerId, now: Instant) {
        let Some(slot) = self.slots.get_mut(&peer) else {
            return;
        };
        let mut effects = std::mem::take(&mut self.effects);
        let before = slot.next_timeout;
        let result = slot.poll(
            &mut SocketSink {
                io,
                demux: &mut self.demux,
                counters: &self.counters,
            },
            &mut effects,
            now,
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
                    if let Some(slot) = self.slots.get_mut(&peer) {
                        slot.last_rtp = now;
                    }
                }
                for packet in effects.rtp.drain(..) {
                    if let Some(probe) = self.probe.as_mut() {
                        probe.accepted(peer, &packet);
                    }
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
        if !effects.feedback.is_empty() {
            let feedback = effects.feedback;
            self.counters.add(WorkerCounter::NacksReceived, feedback.nacks);
            self.counters.add(WorkerCounter::RetransmitsSent, feedback.resent);
            self.counters.add(WorkerCounter::PlisReceived, feedback.plis);
            self.counters.add(WorkerCounter::FirsReceived, feedback.firs);
        }
        effects.clear();
        self.effects = effects;
    }

    /// Every forwarded write queued this turn, grouped by player: each player's packets are
    /// written, its clock advanced and its output polled in one go (in chunks of
    /// [`WRITES_BEFORE_POLL_MAX`]), so its `Rtc` (cold: one of hundreds) is pulled into
    /// cache once per chunk rather than once to write each packet and again to send them.
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
            for chunk in group.chunks(WRITES_BEFORE_POLL_MAX) {
                let Some(slot) = self.slots.get_mut(&player) else {
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
        self.request_keyframe_now(publisher, now);
    }

    /// Ask the publisher for a keyframe now (its video was unmuted, a player waits).
    pub(super) fn request_keyframe_now(&mut self, publisher: PeerId, _now: Instant) {
        let Some(mid) = self.router.publisher_video_mid(publisher) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(&publisher) else {
            return;
        };
        match slot.request_keyframe(mid) {
            Ok(()) => {
                self.counters.add(WorkerCounter::KeyframeRequestsSent, 1);
                self.mark_dirty(publisher)
            }
            Err(failure) => self.fail_peer(publisher, failure),
        }
    }
}
