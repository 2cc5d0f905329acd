//! The typed messages between the control thread and the media workers, and the handle control
//! keeps for each worker.
//!
//! Control → worker: [`Command`] on a bounded crossbeam queue per worker, followed by a wakeup
//! of the worker's blocking wait. Worker → control: [`Notification`] on one bounded queue
//! shared by all workers, followed by a `tokio::sync::Notify` (see `notify.rs`).
//!
//! Invariants: a worker never blocks on control, and no notification is lost: one that finds
//! the queue full waits in the worker's backlog and goes first on a later turn. Control never
//! loses a command that frees state either: a `PeerRemove` that finds the worker's queue full
//! is kept by the hub and sent again (a `PeerAdd` that does not fit fails its stream at once).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use str0m::Rtc;

use super::counters::{CounterTable, WorkerCounter};
use super::io::Waker;
use crate::ids::{PeerId, WorkerId};
use crate::sdp::StreamTracks;

/// Commands waiting for one worker. Each is one endpoint to add or remove; 4096 covers a burst
/// of a whole room of 16 joining with 16 streams each, many times over.
pub const WORKER_COMMAND_QUEUE_DEPTH: usize = 4096;
/// Notifications waiting for the control thread from all workers together.
pub const NOTIFICATION_QUEUE_DEPTH: usize = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Publisher,
    Player { publisher: PeerId },
}

/// What kind of endpoint to add, with what only that kind needs. It travels once, inside the
/// boxed [`EndpointAdd`], so the `Rtc`'s size is no cost to the other kinds.
#[allow(clippy::large_enum_variant)]
pub enum EndpointSpec {
    /// A browser's (or any WebRTC client's) peer connection, negotiated by control.
    WebRtc {
        rtc: Rtc,
        /// Our ICE ufrag: the demultiplexer routes the client's first checks by it.
        local_ufrag: String,
    },
    /// A recorder tap: a player whose packets go to a writer thread.
    Recorder(Box<super::endpoint::RecorderSpec>),
    /// A tap whose frames go to the RTMP bridge (an RTMP player or push of this stream).
    BridgeTap(Box<super::endpoint::BridgeTapSpec>),
    /// A publisher fed by the RTMP bridge with [`Command::IngestRtp`].
    Ingest,
}

pub struct EndpointAdd {
    pub peer: PeerId,
    pub role: PeerRole,
    /// The tracks this endpoint negotiated (a publisher's incoming, a player's outgoing).
    pub tracks: StreamTracks,
    pub spec: EndpointSpec,
    /// Where the worker reports the endpoint's received bitrate (a publisher's, for the admin
    /// API); None when nobody asks.
    pub meter: Option<Arc<PeerMeter>>,
}

/// An endpoint's received bytes and bitrate over the last second, written by its worker at
/// the once-a-second sweep and read by control. Relaxed atomics: a reading may be a second old.
#[derive(Debug, Default)]
pub struct PeerMeter {
    pub bytes_received: AtomicU64,
    pub bitrate_bps: AtomicU64,
}

pub enum Command {
    EndpointAdd(Box<EndpointAdd>),
    /// Free the endpoint; a publisher's players are removed by their own commands.
    PeerRemove {
        peer: PeerId,
    },
    /// One picture's (or audio frame's) packets for an ingest endpoint, in order. A batch that
    /// finds the queue full is dropped and counted (media, not state: the bridge's next
    /// keyframe repairs it).
    IngestRtp {
        peer: PeerId,
        /// The batch starts a keyframe.
        keyframe: bool,
        video: bool,
        packets: Vec<crate::forward::IncomingRtp>,
    },
    /// Stop (or resume) forwarding one kind of a publisher's media to every player.
    SetMuted {
        publisher: PeerId,
        kind: str0m::media::MediaKind,
        muted: bool,
    },
    /// Fault injection for tests of the service watchdog: the worker sleeps this long in its
    /// turn, as a wedged worker would. Sent only when `WEBCALL_FAULT_INJECTION=1`.
    Stall(std::time::Duration),
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
    /// A DTLS alert or handshake error (a certificate the handshake refused, a bad
    /// CertificateVerify, a fatal alert from the peer).
    DtlsError,
    /// The peer's DTLS certificate does not match the fingerprint of its SDP.
    DtlsFingerprint,
    /// ICE connected but the DTLS handshake had not completed [`DTLS_HANDSHAKE_TIMEOUT`] later.
    DtlsTimeout,
    /// The peer closed its connection cleanly (DTLS close_notify, or RTCP BYE with no RTP
    /// after it): an ordinary end.
    Closed,
    /// The publisher this player was attached to was already gone on the worker.
    PublisherGone,
    /// str0m panicked on this peer's input; only this peer ends.
    Internal,
}

/// How long a DTLS handshake may take once ICE has connected before the peer fails with
/// [`PeerFailure::DtlsTimeout`]: a handshake is a few round trips (well under a second on any
/// path a call can use), and dimpl's own retransmissions give up after about 40 s, which a
/// user waiting for video would not.
pub const DTLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long after a peer's RTCP BYE it must have sent no RTP to count as closed: Firefox's
/// `close()` sends BYE for each of its streams and nothing more (no close_notify), while a
/// client that stopped one track only goes on sending the other.
pub const BYE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl PeerFailure {
    /// An ordinary end (`UNPUBLISHED`/`STOPPED` with [`info`](Self::info)), not a failure.
    pub fn is_ordinary(self) -> bool {
        self == PeerFailure::Closed
    }

    pub fn info(self) -> &'static str {
        match self {
            PeerFailure::IceTimeout => "Failed by ICE timeout",
            PeerFailure::Silence => "Failed by ICE keep alive",
            PeerFailure::NoMedia => "Failed by RTP activity",
            PeerFailure::DtlsError => "Failed by DTLS error",
            PeerFailure::DtlsFingerprint => "Failed by DTLS fingerprint error",
            PeerFailure::DtlsTimeout => "Failed by DTLS timeout",
            PeerFailure::Closed => "Stopped by user",
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

/// What control holds for one worker.
#[derive(Clone)]
pub struct WorkerHandle {
    pub id: WorkerId,
    pub commands: Sender<Command>,
    pub waker: Waker,
    pub counters: Arc<CounterTable>,
}

impl WorkerHandle {
    /// Queue a command and wake the worker. A full queue means the worker is far behind: the
    /// command comes back to the caller, counted, to be failed or kept and sent again.
    pub fn send(&self, command: Command) -> Result<(), Command> {
        let result = match self.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(command)) | Err(TrySendError::Disconnected(command)) => {
                // Control is this entry's only writer (see `counters.rs`).
                self.counters.add(WorkerCounter::CommandQueueFull, 1);
                Err(command)
            }
        };
        self.waker.wake();
        result
    }
}
