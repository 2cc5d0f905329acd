//! The typed messages between the control thread and the media workers, and the handle control
//! keeps for each worker.
//!
//! Control → worker: [`Command`] on a bounded crossbeam queue, followed by a wakeup of the
//! worker's blocking wait. Worker → control: [`Notification`] on one bounded queue shared by all
//! workers, followed by a `tokio::sync::Notify`. A worker never blocks on control: when the
//! notification queue is full the notification is counted and dropped (control's periodic
//! sweep recovers the state).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use str0m::Rtc;

use super::io::Waker;
use crate::peer::StreamTracks;

/// Commands waiting for one worker. Each is one peer to add or remove; 4096 covers a burst of a
/// whole room of 16 joining with 16 streams each, many times over.
pub const WORKER_COMMAND_QUEUE_DEPTH: usize = 4096;
/// Notifications waiting for the control thread from all workers together.
pub const NOTIFICATION_QUEUE_DEPTH: usize = 16384;

/// A peer connection, unique in the process; assigned by the control thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

/// A media worker thread's index (worker i listens on UDP port BASE+i).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Publisher,
    Player { publisher: PeerId },
}

pub struct PeerAdd {
    pub peer: PeerId,
    pub role: PeerRole,
    pub rtc: Rtc,
    pub local_ufrag: String,
    /// The tracks this peer negotiated (a publisher's incoming, a player's outgoing).
    pub tracks: StreamTracks,
}

pub enum Command {
    PeerAdd(Box<PeerAdd>),
    /// Free the peer; a publisher's players are removed by their own commands.
    PeerRemove {
        peer: PeerId,
    },
    Shutdown,
}

/// Why a worker ended a peer. `info` gives the WCS status text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFailure {
    /// No ICE check ever validated within the silence timeout.
    IceTimeout,
    /// Connected once, then nothing (no consent check, no media) for the silence timeout.
    Silence,
    /// A publisher kept its connection alive but sent no RTP for the silence timeout.
    NoMedia,
    /// DTLS or ICE ended the connection.
    Disconnected,
    /// The publisher this player was attached to was already gone on the worker.
    PublisherGone,
    /// str0m panicked on this peer's input; only this peer ends.
    Internal,
}

impl PeerFailure {
    pub fn info(self) -> &'static str {
        match self {
            PeerFailure::IceTimeout => "Failed by ICE timeout",
            PeerFailure::Silence => "Failed by ICE keep alive",
            PeerFailure::NoMedia => "Failed by RTP activity",
            PeerFailure::Disconnected => "Failed by DTLS error",
            PeerFailure::PublisherGone => "Stopped by publisher stop",
            PeerFailure::Internal => "Failed by error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    PeerConnected { peer: PeerId },
    PeerFailed { peer: PeerId, failure: PeerFailure },
}

/// A worker's counters, published by the worker about once a second and read by control
/// (`/health`). Data-plane junk is dropped and counted here, never logged per packet.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub peers: AtomicU64,
    pub datagrams_received: AtomicU64,
    pub datagrams_sent: AtomicU64,
    /// Datagrams from an address and ufrag no peer owns: junk, probes, late packets.
    pub datagrams_unroutable: AtomicU64,
    /// Sends the kernel refused or that found the queue full.
    pub datagrams_send_dropped: AtomicU64,
    pub peers_failed: AtomicU64,
    pub notifications_dropped: AtomicU64,
    pub io_errors: AtomicU64,
    /// Commands control could not queue because the worker was behind.
    pub commands_dropped: AtomicU64,
    /// Socket syscalls / ring submissions (receive and send): datagrams per syscall is the
    /// batching the load reaches.
    pub syscalls: AtomicU64,
    /// UDP GSO super-datagrams sent, and the datagrams they carried.
    pub gso_batches: AtomicU64,
    pub gso_datagrams: AtomicU64,
}

impl WorkerStats {
    pub fn snapshot(&self) -> serde_json::Value {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        serde_json::json!({
            "peers": get(&self.peers),
            "datagrams_received": get(&self.datagrams_received),
            "datagrams_sent": get(&self.datagrams_sent),
            "datagrams_unroutable": get(&self.datagrams_unroutable),
            "datagrams_send_dropped": get(&self.datagrams_send_dropped),
            "peers_failed": get(&self.peers_failed),
            "notifications_dropped": get(&self.notifications_dropped),
            "io_errors": get(&self.io_errors),
            "commands_dropped": get(&self.commands_dropped),
            "syscalls": get(&self.syscalls),
            "gso_batches": get(&self.gso_batches),
            "gso_datagrams": get(&self.gso_datagrams),
        })
    }
}

/// What control holds for one worker.
#[derive(Clone)]
pub struct WorkerHandle {
    pub id: WorkerId,
    pub commands: Sender<Command>,
    pub waker: Waker,
    pub stats: Arc<WorkerStats>,
}

impl WorkerHandle {
    /// Queue a command and wake the worker. A full queue means the worker is hopelessly behind:
    /// the command is dropped and counted, and the caller fails the operation.
    pub fn send(&self, command: Command) -> bool {
        let sent = match self.commands.try_send(command) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.commands_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        };
        self.waker.wake();
        sent
    }
}
