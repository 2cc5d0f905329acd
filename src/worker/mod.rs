//! Media workers: one pinned thread per core, each the only owner of one UDP socket and of every
//! peer of the rooms assigned to it. The loop: take commands, wait for datagrams (or a timer, or
//! a wakeup), feed each datagram to its peer, fire due timers, push forwarded packets out of the
//! players, flush the batched sends.
//!
//! Invariants: nothing here blocks except the I/O wait; every peer is polled to its timeout after
//! each mutation; a peer's failure (or panic) removes that peer only and is reported to control.

pub mod commands;
pub mod demux;
pub mod io;
pub mod peer_slot;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use tokio::sync::Notify;

use self::commands::{
    Command, Notification, WorkerHandle, WorkerId, WorkerStats, WORKER_COMMAND_QUEUE_DEPTH,
};
use self::io::{DatagramIo, IoConfig};
use crate::config::Config;

/// Datagram bytes a worker stages per receive batch before processing: the backends hand over
/// at most this many datagrams per call, each at most `DATAGRAM_BYTES_MAX`.
const STAGING_BYTES: usize = io::RECV_BATCH_DATAGRAMS_MAX * io::DATAGRAM_BYTES_MAX;

/// Pause after a failed receive, so a persistent error costs a core nothing.
const IO_ERROR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);

/// Open every worker's socket (so a port in use fails start-up) and start the threads.
pub fn spawn_workers(
    config: &Config,
    notifications: Sender<Notification>,
    control_wakeup: Arc<Notify>,
) -> std::io::Result<(Vec<WorkerHandle>, Vec<JoinHandle<()>>)> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::with_capacity(config.workers);
    let mut threads = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let port = config.media_port(index);
        let io = open_media_socket(config, port)
            .map_err(|e| std::io::Error::new(e.kind(), format!("worker {index}: UDP port {port}: {e}")))?;
        let (command_tx, command_rx) = bounded(WORKER_COMMAND_QUEUE_DEPTH);
        let id = WorkerId(index);
        let handle = WorkerHandle {
            id,
            commands: command_tx,
            waker: io.waker(),
            stats: Arc::new(WorkerStats::default()),
        };
        tracing::info!(worker = index, port, backend = ?io.kind(), "media worker listening");
        let candidate = SocketAddr::new(config.media_ip, port);
        let core = cores.get(index % cores.len().max(1)).copied();
        let silence_timeout = config.peer_silence_timeout;
        let stats = handle.stats.clone();
        let notifications = notifications.clone();
        let control_wakeup = control_wakeup.clone();
        let thread = std::thread::Builder::new()
            .name(format!("webcall-worker-{index}"))
            .spawn(move || {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core) {
                        tracing::warn!(worker = index, "could not pin to a core");
                    }
                }
                let state = state::WorkerState::new(
                    id,
                    candidate,
                    silence_timeout,
                    notifications,
                    control_wakeup,
                    stats,
                );
                run(io, command_rx, state);
            })?;
        handles.push(handle);
        threads.push(thread);
    }
    Ok((handles, threads))
}

/// Bind to the announced media address when it is one of this host's, so every reply leaves
/// from the address peers were told (a check that arrives on 127.0.0.1 from the host's own LAN
/// address must be answered from 127.0.0.1, or the browser drops the answer). When the
/// announced address is not local (a public address in front of NAT), bind the wildcard and
/// let routing pick the source.
fn open_media_socket(config: &Config, port: u16) -> std::io::Result<Box<dyn DatagramIo>> {
    let announced = SocketAddr::new(config.media_ip, port);
    match io::open(config.io, &IoConfig::new(announced)) {
        Err(error) if error.kind() == std::io::ErrorKind::AddrNotAvailable => {
            tracing::info!(%announced, "media address is not local; binding the wildcard address");
            let wildcard = match config.media_ip {
                std::net::IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            };
            io::open(config.io, &IoConfig::new(SocketAddr::new(wildcard, port)))
        }
        other => other,
    }
}

fn run(mut io: Box<dyn DatagramIo>, commands: Receiver<Command>, mut state: state::WorkerState) {
    let mut staging = Staging::default();
    loop {
        let wait = state
            .next_deadline()
            .saturating_duration_since(std::time::Instant::now());
        staging.clear();
        let received = io.receive(Some(wait), &mut |meta, bytes| staging.push(meta.source, bytes));
        if let Err(error) = received {
            state.io_error(&error);
            // A broken socket or ring fails every call: back off instead of spinning a core.
            std::thread::sleep(IO_ERROR_BACKOFF);
        }
        let now = std::time::Instant::now();
        // Commands go in before the datagrams: a new peer's first check often arrives in the
        // same turn as the wakeup that announced the peer.
        while let Ok(command) = commands.try_recv() {
            if !state.handle_command(io.as_mut(), command, now) {
                tracing::info!(worker = state.id.0, "media worker stopping");
                return;
            }
        }
        for (source, bytes) in staging.iter() {
            state.handle_datagram(io.as_mut(), now, source, bytes);
        }
        if state.fire_timers(now) {
            state.publish_stats(&io.stats());
        }
        state.flush_players(io.as_mut(), now);
        if let Err(error) = io.flush() {
            state.io_error(&error);
        }
    }
}

/// Received datagrams copied out of the backend's buffers so peers can be polled (which queues
/// sends on the same backend) while they are processed.
#[derive(Default)]
struct Staging {
    bytes: Vec<u8>,
    items: Vec<(SocketAddr, usize, usize)>,
}

impl Staging {
    fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
        self.bytes.reserve(STAGING_BYTES);
    }

    fn push(&mut self, source: SocketAddr, bytes: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.items.push((source, start, self.bytes.len()));
    }

    fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.items
            .iter()
            .filter_map(|(source, start, end)| Some((*source, self.bytes.get(*start..*end)?)))
    }
}
