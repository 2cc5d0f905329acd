//! One worker's counters: a single table, indexed by [`WorkerCounter`] and, for every datagram
//! the data plane drops, by [`DropReason`]. `/health` (and any later exporter) reads it.
//!
//! Written by exactly one thread per entry: the worker for everything but
//! [`WorkerCounter::CommandQueueFull`], which the control thread counts when the worker's
//! command queue is full. With one writer an increment is a relaxed load and store (plain
//! moves on x86, no locked instruction), so the data path pays what a local `u64` costs.
//! Readers on other threads see each value tear-free but not a consistent snapshot across
//! entries.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a worker counts, besides drops. Units: events unless the name says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerCounter {
    /// Endpoints the worker holds now (a gauge).
    Peers,
    DatagramsReceived,
    DatagramsSent,
    /// Endpoints the worker ended on its own (silence, DTLS/ICE end, a panic).
    PeersFailed,
    /// str0m panicked on an endpoint's input; only that endpoint ended.
    PeerPanics,
    /// Notifications that found control's queue full and waited in the worker's backlog
    /// (none is ever dropped: see `notify.rs`).
    NotificationsDeferred,
    /// Notifications in the backlog now (a gauge).
    NotificationBacklog,
    /// Receive or flush calls that failed as a whole (a broken socket or ring).
    IoErrors,
    /// Commands that found this worker's queue full (written by control, which fails a new
    /// stream's add and keeps a removal to send again).
    CommandQueueFull,
    /// Socket syscalls and ring submissions, receive and send.
    Syscalls,
    /// UDP GSO super-datagrams sent, and the datagrams they carried.
    GsoBatches,
    GsoDatagrams,
    /// Times the io_uring multishot receive was re-armed after its buffers ran out.
    RecvRearms,
    /// Loop turns run (each a wait for datagrams, a timer or a wakeup, and its work).
    LoopTurns,
}

impl WorkerCounter {
    pub const ALL: [WorkerCounter; 14] = [
        WorkerCounter::Peers,
        WorkerCounter::DatagramsReceived,
        WorkerCounter::DatagramsSent,
        WorkerCounter::PeersFailed,
        WorkerCounter::PeerPanics,
        WorkerCounter::NotificationsDeferred,
        WorkerCounter::NotificationBacklog,
        WorkerCounter::IoErrors,
        WorkerCounter::CommandQueueFull,
        WorkerCounter::Syscalls,
        WorkerCounter::GsoBatches,
        WorkerCounter::GsoDatagrams,
        WorkerCounter::RecvRearms,
        WorkerCounter::LoopTurns,
    ];

    /// The name `/health` shows.
    pub fn name(self) -> &'static str {
        match self {
            WorkerCounter::Peers => "peers",
            WorkerCounter::DatagramsReceived => "datagrams_received",
            WorkerCounter::DatagramsSent => "datagrams_sent",
            WorkerCounter::PeersFailed => "peers_failed",
            WorkerCounter::PeerPanics => "peer_panics",
            WorkerCounter::NotificationsDeferred => "notifications_deferred",
            WorkerCounter::NotificationBacklog => "notification_backlog",
            WorkerCounter::IoErrors => "io_errors",
            WorkerCounter::CommandQueueFull => "command_queue_full",
            WorkerCounter::Syscalls => "syscalls",
            WorkerCounter::GsoBatches => "gso_batches",
            WorkerCounter::GsoDatagrams => "gso_datagrams",
            WorkerCounter::RecvRearms => "recv_rearms",
            WorkerCounter::LoopTurns => "loop_turns",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why the data plane dropped a datagram (it is never logged one by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// From an address and ufrag no endpoint owns: junk, probes, packets of ended peers.
    Unroutable,
    /// Routed to a peer but not STUN, DTLS, RTP or RTCP.
    NotWebRtc,
    /// The peer's `Rtc` refused it: failed integrity or SRTP authentication, replay, bad
    /// DTLS record.
    RefusedByPeer,
    /// Bigger than the receive buffer: truncated by the kernel.
    Truncated,
    /// Failed to be received (unparsable source address, a transient socket error).
    ReceiveError,
    /// No room to send: full send queue or socket buffer.
    SendQueueFull,
    /// The kernel refused the destination (unreachable, refused, wrong family).
    SendRefused,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::Unroutable,
        DropReason::NotWebRtc,
        DropReason::RefusedByPeer,
        DropReason::Truncated,
        DropReason::ReceiveError,
        DropReason::SendQueueFull,
        DropReason::SendRefused,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Unroutable => "unroutable",
            DropReason::NotWebRtc => "not_webrtc",
            DropReason::RefusedByPeer => "refused_by_peer",
            DropReason::Truncated => "truncated",
            DropReason::ReceiveError => "receive_error",
            DropReason::SendQueueFull => "send_queue_full",
            DropReason::SendRefused => "send_refused",
        }
    }

    fn index(self) -> usize {
        WorkerCounter::ALL.len() + self as usize
    }
}

const ENTRIES: usize = WorkerCounter::ALL.len() + DropReason::ALL.len();

/// The table. Shared (`Arc`) between the worker that writes it and control, which reads it.
#[derive(Debug)]
pub struct CounterTable {
    values: [AtomicU64; ENTRIES],
}

impl Default for CounterTable {
    fn default() -> Self {
        CounterTable {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl CounterTable {
    fn slot(&self, index: usize) -> Option<&AtomicU64> {
        self.values.get(index)
    }

    /// Add to a counter. Only the entry's one writer calls this (see the module header).
    pub fn add(&self, counter: WorkerCounter, n: u64) {
        if let Some(value) = self.slot(counter.index()) {
            value.store(value.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    /// Set a gauge, or a total kept elsewhere (the I/O backend's own counts).
    pub fn set(&self, counter: WorkerCounter, n: u64) {
        if let Some(value) = self.slot(counter.index()) {
            value.store(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, counter: WorkerCounter) -> u64 {
        self.slot(counter.index())
            .map_or(0, |value| value.load(Ordering::Relaxed))
    }

    /// Count one dropped datagram.
    pub fn dropped(&self, reason: DropReason) {
        self.add_dropped(reason, 1);
    }

    pub fn add_dropped(&self, reason: DropReason, n: u64) {
        if let Some(value) = self.slot(reason.index()) {
            value.store(value.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    pub fn set_dropped(&self, reason: DropReason, n: u64) {
        if let Some(value) = self.slot(reason.index()) {
            value.store(n, Ordering::Relaxed);
        }
    }

    pub fn get_dropped(&self, reason: DropReason) -> u64 {
        self.slot(reason.index())
            .map_or(0, |value| value.load(Ordering::Relaxed))
    }

    /// The table as `/health` shows it: every counter by name, and the drops by reason.
    pub fn snapshot(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for counter in WorkerCounter::ALL {
            object.insert(counter.name().to_owned(), self.get(counter).into());
        }
        let mut dropped = serde_json::Map::new();
        for reason in DropReason::ALL {
            dropped.insert(reason.name().to_owned(), self.get_dropped(reason).into());
        }
        object.insert("datagrams_dropped".to_owned(), dropped.into());
        object.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_its_own_slot() {
        let table = CounterTable::default();
        for (i, counter) in WorkerCounter::ALL.into_iter().enumerate() {
            assert_eq!(counter.index(), i, "ALL lists counters in declaration order");
            table.add(counter, i as u64 + 1);
        }
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            table.add_dropped(reason, 100 + i as u64);
        }
        for (i, counter) in WorkerCounter::ALL.into_iter().enumerate() {
            assert_eq!(table.get(counter), i as u64 + 1);
        }
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(table.get_dropped(reason), 100 + i as u64);
        }
        let snapshot = table.snapshot();
        assert_eq!(snapshot["datagrams_dropped"]["unroutable"], 100);
        assert_eq!(snapshot["peers"], 1);
    }
}
