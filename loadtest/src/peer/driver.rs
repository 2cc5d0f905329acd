//! Runs one [`PeerCore`] on its own OS thread with its own UDP socket.
//!
//! Owns the thread, the socket and the shared snapshot the async handles read. The thread
//! loop follows the core's driving contract: drain commands, poll output (sending every
//! datagram) until a timeout, publish a snapshot, wait for a datagram or the timeout, feed
//! it. Invariants:
//! - the thread owns the core; handles talk to it only through commands, and wake it
//!   with an empty datagram sent to its own socket (a datagram from the local address is
//!   never fed to the core);
//! - a panic inside str0m ends this peer only (`catch_unwind`), reported as `Failed`;
//! - dropping the last handle closes the peer gracefully (bounded to [`CLOSE_DRAIN`]);
//! - the received-packet log kept for readers is capped at `log_max` entries.

use std::net::{SocketAddr, UdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::core::{PeerCore, PeerOutput, PeerState};
use super::recorder::{PeerStats, ReceivedPacket};
use crate::error::{Error, Result};
use crate::media::VideoCodec;

/// Longest time a closing peer keeps draining its close output.
pub const CLOSE_DRAIN: Duration = Duration::from_millis(500);
const WAIT_MAX: Duration = Duration::from_millis(50);

/// Commands from handles to the peer thread.
#[derive(Debug)]
pub(crate) enum Command {
    RequestKeyframe(bool, tokio::sync::oneshot::Sender<bool>),
    ForceKeyframe,
    SetSending(bool),
    Close,
    /// Stop at once without a word: no DTLS close_notify, no RTCP BYE (a crashed client, a
    /// lost network).
    Vanish,
}

/// What the thread publishes after each loop turn.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub state: PeerState,
    pub stats: PeerStats,
    pub received: Vec<ReceivedPacket>,
    pub video_codec: Option<VideoCodec>,
    pub ended: bool,
    shared_dropped: u64,
}

#[derive(Debug)]
pub(crate) struct PeerShared {
    inner: Mutex<Snapshot>,
    pub changed: Notify,
}

impl PeerShared {
    pub fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to a peer thread.
#[derive(Debug)]
pub(crate) struct PeerDriver {
    cmd: Sender<Command>,
    waker: UdpSocket,
    local: SocketAddr,
    pub shared: Arc<PeerShared>,
}

impl PeerDriver {
    /// Starts the thread. `socket` must be the one `core`'s candidate names.
    pub fn spawn(socket: UdpSocket, core: PeerCore, log_max: usize) -> Result<Self> {
        let local = socket.local_addr()?;
        let waker = socket.try_clone()?;
        let (cmd, rx) = mpsc::channel();
        let shared = Arc::new(PeerShared {
            inner: Mutex::new(Snapshot {
                state: core.state().clone(),
                stats: PeerStats::default(),
                received: Vec::new(),
                video_codec: core.video_codec(),
                ended: false,
                shared_dropped: 0,
            }),
            changed: Notify::new(),
        });
        let sh = shared.clone();
        std::thread::Builder::new()
            .name(format!("peer-{}", local.port()))
            .spawn(move || {
                let res = catch_unwind(AssertUnwindSafe(|| run(&socket, core, &rx, &sh, log_max)));
                let mut snap = sh.lock();
                if let Err(panic) = res {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    snap.state = PeerState::Failed(format!("panic: {why}"));
                }
                snap.ended = true;
                drop(snap);
                sh.changed.notify_waiters();
            })?;
        Ok(PeerDriver {
            cmd,
            waker,
            local,
            shared,
        })
    }

    pub fn send(&self, c: Command) -> Result<()> {
        self.cmd.send(c).map_err(|_| Error::PeerGone)?;
        let _ = self.waker.send_to(&[], self.local);
        Ok(())
    }

    /// Waits until `f` yields on the snapshot, or `timeout` passes.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&mut Snapshot) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut snap = self.shared.lock();
                if let Some(v) = f(&mut snap) {
                    return Ok(v);
                }
                if snap.ended {
                    return Err(Error::PeerGone);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::timeout(what, timeout));
            }
        }
    }
}

impl Drop for PeerDriver {
    fn drop(&mut self) {
        let _ = self.send(Command::Close);
    }
}

fn run(socket: &UdpSocket, mut core: PeerCore, rx: &Receiver<Command>, shared: &PeerShared, log_max: usize) {
    let local = core.local_addr();
    let mut buf = vec![0u8; 2048];
    let mut closing: Option<Instant> = None;
    loop {
        loop {
            match rx.try_recv() {
                Ok(Command::RequestKeyframe(fir, reply)) => {
                    let _ = reply.send(core.request_keyframe(fir));
                }
                Ok(Command::ForceKeyframe) => core.force_keyframe(),
                Ok(Command::SetSending(on)) => core.set_sending(on),
                Ok(Command::Vanish) => return,
                Ok(Command::Close) | Err(TryRecvError::Disconnected) => {
                    if closing.is_none() {
                        closing = Some(Instant::now());
                        core.close();
                    }
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        let deadline = loop {
            match core.poll_output() {
                Ok(PeerOutput::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Ok(PeerOutput::Timeout(t)) => break t,
                Err(_) => break Instant::now(),
            }
        };
        publish(shared, &mut core, log_max);
        let drained = closing.is_some_and(|t| t.elapsed() > CLOSE_DRAIN);
        if !core.is_alive() || drained || matches!(core.state(), PeerState::Failed(_)) {
            return;
        }
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), WAIT_MAX);
        if socket.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match socket.recv_from(&mut buf) {
            Ok((_, src)) if src == local => {}
            Ok((n, src)) => {
                if let Some(data) = buf.get(..n) {
                    let _ = core.handle_receive(Instant::now(), src, data);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
        let _ = core.handle_timeout(Instant::now());
    }
}

fn publish(shared: &PeerShared, core: &mut PeerCore, log_max: usize) {
    let received = core.take_received();
    let mut snap = shared.lock();
    let room = log_max.saturating_sub(snap.received.len());
    snap.shared_dropped += received.len().saturating_sub(room) as u64;
    snap.received.extend(received.into_iter().take(room));
    snap.state = core.state().clone();
    snap.stats = core.stats().clone();
    snap.stats.log_dropped += snap.shared_dropped;
    snap.video_codec = core.video_codec();
    drop(snap);
    shared.changed.notify_waiters();
}
