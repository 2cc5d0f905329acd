//! Media workers: one pinned thread per core, each the only owner of one UDP socket and of every
//! endpoint of the rooms assigned to it. The loop (`turn.rs`): take commands, wait for
//! datagrams (or a timer, or a wakeup), feed each datagram to its endpoint, fire due timers,
//! push forwarded packets out of the players, flush the batched sends.
//!
//! Folders and files: `io/` is the only socket code (io_uring, `recvmmsg`/`sendmmsg`, and the
//! in-memory `SimIo`); `demux.rs` finds a datagram's endpoint; `endpoint/` holds the endpoint
//! kinds; `state.rs` and `flush.rs` are the worker's state and what each event does to it;
//! `commands.rs` and `notify.rs` are the typed queues to and from the control thread;
//! `counters.rs` is the counter table `/health` reads.
//!
//! Invariants: nothing here blocks except the I/O wait; every endpoint is polled to its
//! timeout after each mutation; an endpoint's failure (or panic) removes that endpoint only and
//! is reported to control.

pub mod commands;
pub mod counters;
pub mod demux;
pub mod endpoint;
mod flush;
pub mod io;
pub mod notify;
pub mod state;
pub mod turn;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use tokio::sync::Notify;

use self::commands::{Command, Notification, WorkerHandle, WORKER_COMMAND_QUEUE_DEPTH};
use self::counters::CounterTable;
use self::io::{DatagramIo, IoConfig};
use self::notify::{ChannelSink, Notifier};
use self::state::{WorkerSetup, WorkerState};
use crate::config::Config;
use crate::ids::WorkerId;

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
        let port = config.worker_port(index);
        let io = open_media_socket(config, port)
            .map_err(|e| std::io::Error::new(e.kind(), format!("worker {index}: UDP port {port}: {e}")))?;
        let (command_tx, command_rx) = bounded(WORKER_COMMAND_QUEUE_DEPTH);
        let id = WorkerId(index);
        let counters = Arc::new(CounterTable::default());
        let handle = WorkerHandle {
            id,
            commands: command_tx,
            waker: io.waker(),
            counters: counters.clone(),
        };
        tracing::info!(worker = index, port, backend = ?io.kind(), "media worker listening");
        let setup = WorkerSetup {
            id,
            candidate: SocketAddr::new(config.media_ip, port),
            peer_timeout: config.peer_timeout,
            seed: uuid::Uuid::new_v4().as_u64_pair().0,
        };
        let core = cores.get(index % cores.len().max(1)).copied();
        let sink = ChannelSink {
            queue: notifications.clone(),
            control_wakeup: control_wakeup.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("webcall-worker-{index}"))
            .spawn(move || {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core) {
                        tracing::warn!(worker = index, "could not pin to a core");
                    }
                }
                let notifier = Notifier::new(Box::new(sink));
                let state = WorkerState::new(setup, notifier, counters, Instant::now());
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

fn run(mut io: Box<dyn DatagramIo>, commands: Receiver<Command>, mut state: WorkerState) {
    let mut staging = turn::Staging::default();
    let clock = Instant::now;
    while turn::run_turn(
        &mut state,
        io.as_mut(),
        &mut staging,
        &clock,
        &mut commands.try_iter(),
    ) {}
}
