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
    /// Endpoints ended by a DTLS alert or handshake error, or a certificate that did not match
    /// the SDP's fingerprint.
    DtlsFailures,
    /// Endpoints whose DTLS handshake had not completed 10 s after ICE connected.
    DtlsTimeouts,
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
    /// Microseconds spent in turns' work (not in the wait).
    TurnBusyMicros,
    /// When the worker last finished a turn, in [`beat_ms`] (a gauge): the service watchdog
    /// and readiness check that it is recent. An idle worker still turns every 500 ms.
    Heartbeat,
    /// Payload bytes of the datagrams received and sent.
    BytesReceived,
    BytesSent,
    /// RTCP NACKs received from players, and the packets resent for them (RTX).
    NacksReceived,
    RetransmitsSent,
    /// Keyframe requests received from players (PLI, FIR), and those sent on to publishers.
    PlisReceived,
    FirsReceived,
    KeyframeRequestsSent,
}

impl WorkerCounter {
    pub const ALL: [WorkerCounter; 25] = [
        WorkerCounter::Peers,
        WorkerCounter::DatagramsReceived,
        WorkerCounter::DatagramsSent,
        WorkerCounter::PeersFailed,
        WorkerCounter::PeerPanics,
        WorkerCounter::DtlsFailures,
        WorkerCounter::DtlsTimeouts,
        WorkerCounter::NotificationsDeferred,
        WorkerCounter::NotificationBacklog,
        WorkerCounter::IoErrors,
        WorkerCounter::CommandQueueFull,
        WorkerCounter::Syscalls,
        WorkerCounter::GsoBatches,
        WorkerCounter::GsoDatagrams,
        WorkerCounter::RecvRearms,
        WorkerCounter::LoopTurns,
        WorkerCounter::TurnBusyMicros,
        WorkerCounter::Heartbeat,
        WorkerCounter::BytesReceived,
        WorkerCounter::BytesSent,
        WorkerCounter::NacksReceived,
        WorkerCounter::RetransmitsSent,
        WorkerCounter::PlisReceived,
        WorkerCounter::FirsReceived,
        WorkerCounter::KeyframeRequestsSent,
    ];

    /// The name `/health` shows.
    pub fn name(self) -> &'static str {
        match self {
            WorkerCounter::Peers => "peers",
            WorkerCounter::DatagramsReceived => "datagrams_received",
            WorkerCounter::DatagramsSent => "datagrams_sent",
            WorkerCounter::PeersFailed => "peers_failed",
            WorkerCounter::PeerPanics => "peer_panics",
            WorkerCounter::DtlsFailures => "dtls_failures",
            WorkerCounter::DtlsTimeouts => "dtls_timeouts",
            WorkerCounter::NotificationsDeferred => "notifications_deferred",
            WorkerCounter::NotificationBacklog => "notification_backlog",
            WorkerCounter::IoErrors => "io_errors",
            WorkerCounter::CommandQueueFull => "command_queue_full",
            WorkerCounter::Syscalls => "syscalls",
            WorkerCounter::GsoBatches => "gso_batches",
            WorkerCounter::GsoDatagrams => "gso_datagrams",
            WorkerCounter::RecvRearms => "recv_rearms",
            WorkerCounter::LoopTurns => "loop_turns",
            WorkerCounter::TurnBusyMicros => "turn_busy_micros",
            WorkerCounter::Heartbeat => "heartbeat_ms",
            WorkerCounter::BytesReceived => "bytes_received",
            WorkerCounter::BytesSent => "bytes_sent",
            WorkerCounter::NacksReceived => "nacks_received",
            WorkerCounter::RetransmitsSent => "retransmits_sent",
            WorkerCounter::PlisReceived => "plis_received",
            WorkerCounter::FirsReceived => "firs_received",
            WorkerCounter::KeyframeRequestsSent => "keyframe_requests_sent",
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

/// Upper bounds of the turn-duration histogram's buckets, in microseconds (the last bucket,
/// past the largest bound, is `+Inf`). A quiet turn is a few microseconds; one that forwards a
/// burst to hundreds of players is a millisecond or two; past 50 ms media is late.
pub const TURN_BUCKET_BOUNDS_MICROS: [u64; 11] =
    [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000];

/// The process-wide instant [`beat_ms`] counts from.
static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// `now` as milliseconds since the first call (saturating at 0 for an earlier instant): the
/// unit of [`WorkerCounter::Heartbeat`], comparable across threads.
pub fn beat_ms(now: std::time::Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

/// The table. Shared (`Arc`) between the worker that writes it and control, which reads it.
#[derive(Debug)]
pub struct CounterTable {
    values: [AtomicU64; ENTRIES],
    /// Turns by duration: one count per bucket of [`TURN_BUCKET_BOUNDS_MICROS`], and `+Inf`.
    turn_buckets: [AtomicU64; TURN_BUCKET_BOUNDS_MICROS.len() + 1],
}

impl Default for CounterTable {
    fn default() -> Self {
        CounterTable {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            turn_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
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

    /// A turn's work took `micros`: counted in its bucket and in the busy total.
    pub fn turn_finished(&self, micros: u64, now: std::time::Instant) {
        let bucket = TURN_BUCKET_BOUNDS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(TURN_BUCKET_BOUNDS_MICROS.len());
        if let Some(count) = self.turn_buckets.get(bucket) {
            count.store(count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
        self.add(WorkerCounter::TurnBusyMicros, micros);
        self.set(WorkerCounter::Heartbeat, beat_ms(now));
    }

    /// Turns per bucket (not cumulative), the last one `+Inf`.
    pub fn turn_buckets(&self) -> Vec<u64> {
        self.turn_buckets
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect()
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
