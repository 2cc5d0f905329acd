//! One turn of a worker's loop, the same code whether the worker runs on its pinned thread
//! with a real socket and clock, in the simulation with `SimIo` and a virtual clock, or in the
//! forwarding bench.
//!
//! A turn: wait for datagrams (until the next timer at most, or a wakeup), copy them out of the
//! backend's buffers, take the commands waiting, feed each datagram to its endpoint, fire due
//! timers, write and poll what the turn produced, and flush the queued sends. Invariant: sends
//! are flushed before the turn returns, so nothing queued waits for the next wakeup.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::commands::Command;
use super::counters::WorkerCounter;
use super::io::{self, DatagramIo};
use super::state::WorkerState;

/// Datagram bytes a worker stages per receive batch before processing: the backends hand over
/// at most this many datagrams per call, each at most `DATAGRAM_BYTES_MAX`.
const STAGING_BYTES: usize = io::RECV_BATCH_DATAGRAMS_MAX * io::DATAGRAM_BYTES_MAX;

/// Pause after a failed receive, so a persistent error costs a core nothing.
const IO_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Received datagrams copied out of the backend's buffers so endpoints can be polled (which
/// queues sends on the same backend) while they are processed.
#[derive(Default)]
pub struct Staging {
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

/// Run one turn. `clock` reads the time; `commands` yields what control queued. Returns false
/// once a `Shutdown` command was taken (the rest of the turn is skipped).
pub fn run_turn(
    state: &mut WorkerState,
    io: &mut dyn DatagramIo,
    staging: &mut Staging,
    clock: &dyn Fn() -> Instant,
    commands: &mut dyn Iterator<Item = Command>,
) -> bool {
    let before_wait = clock();
    let wait = state
        .next_deadline(before_wait)
        .saturating_duration_since(before_wait);
    staging.clear();
    let received = io.receive(Some(wait), &mut |meta, bytes| staging.push(meta.source, bytes));
    if let Err(error) = received {
        state.io_error(&error, clock());
        // A broken socket or ring fails every call: back off instead of spinning a core.
        if io.kind() != io::IoBackendKind::Sim {
            std::thread::sleep(IO_ERROR_BACKOFF);
        }
    }
    let now = clock();
    state.counters().add(WorkerCounter::LoopTurns, 1);
    // Commands go in before the datagrams: a new peer's first check often arrives in the same
    // turn as the wakeup that announced the peer.
    for command in commands {
        if !state.handle_command(io, command, now) {
            tracing::info!(worker = state.id.0, "media worker stopping");
            return false;
        }
    }
    for (source, bytes) in staging.iter() {
        state.handle_datagram(io, now, source, bytes);
    }
    if state.fire_timers(now) {
        state.publish_io_stats(&io.stats());
    }
    state.flush_players(io, now);
    state.flush_notifications();
    if let Err(error) = io.flush() {
        state.io_error(&error, now);
    }
    let done = clock();
    let busy = u64::try_from(done.saturating_duration_since(now).as_micros()).unwrap_or(u64::MAX);
    state.counters().turn_finished(busy, done);
    true
}
