//! The load engine: one thread driving every emulated peer's [`PeerCore`] over one shared
//! UDP socket ([`PeerSocket`], demultiplexed by each peer's own loopback address).
//!
//! The signalling side makes each peer (offer, answer), then hands it over with
//! [`EngineHandle::add`]; from then on the engine thread owns it. One loop turn: take
//! commands, wait for a datagram or the earliest timer, read batches (measuring each
//! subscriber datagram, feeding the `Rtc` what it needs), fire due timers (str0m timers and
//! publishers' media clocks), poll every touched peer to its next timeout (queueing its
//! datagrams), send the batch. Invariants: every peer mutated in a turn is polled in that
//! turn (str0m's driving contract); a peer that fails or closes is dropped from routing but
//! its counters stay for the report; timer-heap entries whose instant no longer matches the
//! peer's are stale and skipped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::slot::{PtMap, Role, Slot};
use super::stats::{histogram, EngineStats, Totals};
use super::udp::{PeerSocket, Received};
use crate::error::{Error, Result};
use crate::peer::{PeerCore, PeerOutput, PeerState};

/// First peer address: 127.1.0.1, then upwards.
const PEER_ADDR_BASE: u32 = u32::from_be_bytes([127, 1, 0, 1]);
/// Longest sleep of an idle loop (commands are picked up at least this often).
const IDLE_WAIT: Duration = Duration::from_millis(2);
/// Receive batches read per turn before timers get their turn.
const RECV_BATCHES_PER_TURN: usize = 16;

/// A peer ready to run: answer applied, candidate = its assigned address.
pub struct NewPeer {
    /// The peer.
    pub core: PeerCore,
    /// Publisher or subscriber.
    pub role: Role,
    /// Its assigned local address (from [`EngineHandle::next_addr`]).
    pub local: SocketAddr,
    /// When its signalling began (join time counts from here).
    pub started: Instant,
    /// Payload numbering of its offer.
    pub pts: PtMap,
    /// A subscriber's publisher, by its local address (see [`Measure::publisher`]).
    pub plays: Option<std::net::Ipv4Addr>,
}

enum Command {
    Add(Box<NewPeer>),
    ResetWindow,
    Collect(Sender<EngineStats>),
    Stop,
}

/// Handle to the engine thread; dropping it stops the thread.
pub struct EngineHandle {
    tx: Sender<Command>,
    port: u16,
    next: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Binds the shared socket and starts the thread.
    pub fn start() -> Result<Self> {
        let socket = PeerSocket::bind(0)?;
        let port = socket.port();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("load-engine".into())
            .spawn(move || Engine::new(socket, rx).run())?;
        Ok(EngineHandle {
            tx,
            port,
            next: Arc::new(AtomicU32::new(0)),
            thread: Some(thread),
        })
    }

    /// A fresh peer address on the shared port.
    pub fn next_addr(&self) -> SocketAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        SocketAddr::from((Ipv4Addr::from(PEER_ADDR_BASE.wrapping_add(i)), self.port))
    }

    /// Hands a peer to the engine.
    pub fn add(&self, peer: NewPeer) -> Result<()> {
        self.tx
            .send(Command::Add(Box::new(peer)))
            .map_err(|_| Error::PeerGone)
    }

    /// Starts the measurement window: window counters start from here.
    pub fn reset_window(&self) -> Result<()> {
        self.tx.send(Command::ResetWindow).map_err(|_| Error::PeerGone)
    }

    /// The counters of the window so far.
    pub fn collect(&self) -> Result<EngineStats> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Command::Collect(tx)).map_err(|_| Error::PeerGone)?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| Error::PeerGone)
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Engine {
    socket: PeerSocket,
    rx: Receiver<Command>,
    slots: Vec<Slot>,
    by_addr: HashMap<Ipv4Addr, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    dirty: Vec<usize>,
    staging: Staging,
    latency_us: Histogram<u64>,
    lag_us: Histogram<u64>,
    base: Totals,
    window_start: Instant,
    cpu_start: Duration,
    unroutable: u64,
    peers_failed: u64,
}

impl Engine {
    fn new(socket: PeerSocket, rx: Receiver<Command>) -> Self {
        Engine {
            socket,
            rx,
            slots: Vec::new(),
            by_addr: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            staging: Staging::default(),
            latency_us: histogram(),
            lag_us: histogram(),
            base: Totals::default(),
            window_start: Instant::now(),
            cpu_start: super::procstat::thread_cpu(),
            unroutable: 0,
            peers_failed: 0,
        }
    }

    fn run(mut self) {
        loop {
            while let Ok(c) = self.rx.try_recv() {
                match c {
                    Command::Add(p) => self.add(*p),
                    Command::ResetWindow => self.reset_window(),
                    Command::Collect(reply) => {
                        let _ = reply.send(self.collect());
                    }
                    Command::Stop => return,
                }
            }
            let now = Instant::now();
            let next = self.timers.peek().map_or(now + IDLE_WAIT, |Reverse((at, _))| *at);
            let wait = next.saturating_duration_since(now).min(IDLE_WAIT);
            match self.socket.wait(wait) {
                Ok(true) => self.receive(),
                Ok(false) => {}
                Err(_) => std::thread::sleep(IDLE_WAIT),
            }
            self.fire_timers();
            self.poll_dirty();
            self.socket.flush();
        }
    }

    fn add(&mut self, p: NewPeer) {
        let SocketAddr::V4(local) = p.local else {
            self.peers_failed += 1;
            return;
        };
        let idx = self.slots.len();
        self.by_addr.insert(*local.ip(), idx);
        let mut slot = Slot::new(p.core, p.role, *local.ip(), p.started, p.pts);
        slot.plays = p.plays;
        self.slots.push(slot);
        self.dirty.push(idx);
        let now = Instant::now();
        if let Some(s) = self.slots.get_mut(idx) {
            let _ = s.core.handle_timeout(now);
        }
    }

    fn receive(&mut self) {
        for _ in 0..RECV_BATCHES_PER_TURN {
            let now = Instant::now();
            let staging = &mut self.staging;
            staging.clear();
            let got = self.socket.recv_batch(|d| staging.push(d));
            let staging = std::mem::take(&mut self.staging);
            for (source, local, at, data) in staging.iter() {
                // Kernel arrival time: delay and jitter exclude this process's queueing.
                let at = at.filter(|t| *t <= now).unwrap_or(now);
                let Some(idx) = self.by_addr.get(&local).copied() else {
                    self.unroutable += 1;
                    continue;
                };
                let Some(slot) = self.slots.get_mut(idx) else {
                    continue;
                };
                if slot.measure(at, data) {
                    // str0m's contract: poll after every input, before the next one.
                    let _ = slot.core.handle_receive(at, SocketAddr::V4(source), data);
                    self.poll(idx);
                }
            }
            self.staging = staging;
            match got {
                Ok(n) if n == super::udp::BATCH => continue,
                _ => break,
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, idx))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slots.get_mut(idx) else {
                continue;
            };
            if !slot.alive || !slot.armed || slot.timer != at {
                continue;
            }
            slot.armed = false;
            let late = now.saturating_duration_since(at.max(slot.armed_at));
            let _ = self.lag_us.record((late.as_micros() as u64).max(1));
            let _ = slot.core.handle_timeout(now);
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(idx);
            }
        }
    }

    fn poll_dirty(&mut self) {
        while let Some(idx) = self.dirty.pop() {
            if let Some(slot) = self.slots.get_mut(idx) {
                slot.dirty = false;
            }
            self.poll(idx);
        }
    }

    /// Polls one peer to its next timeout, queueing its datagrams and re-arming its timer.
    fn poll(&mut self, idx: usize) {
        let Some(slot) = self.slots.get_mut(idx) else {
            return;
        };
        if !slot.alive {
            return;
        }
        let next = loop {
            match slot.core.poll_output() {
                Ok(PeerOutput::Transmit(t)) => {
                    if let SocketAddr::V4(to) = t.destination {
                        self.socket.queue(slot.local, to, &t.contents);
                    }
                }
                Ok(PeerOutput::Timeout(at)) => break Some(at),
                Err(_) => break None,
            }
        };
        if slot.role == (Role::Subscriber { decrypt: true }) {
            slot.drain_tap(&mut self.latency_us);
        }
        let ended = matches!(slot.core.state(), PeerState::Failed(_) | PeerState::Closed);
        match next {
            Some(at) if !ended && slot.core.is_alive() => {
                if at != slot.timer || !slot.armed {
                    (slot.timer, slot.armed, slot.armed_at) = (at, true, Instant::now());
                    self.timers.push(Reverse((at, idx)));
                }
            }
            _ => {
                slot.alive = false;
                self.peers_failed += 1;
                self.by_addr.remove(&slot.local);
            }
        }
    }

    fn reset_window(&mut self) {
        self.base = Totals::of(&self.slots, self.socket.rx_dropped, self.socket.tx_failed);
        for slot in &mut self.slots {
            slot.received_at_window = slot.media_received();
        }
        self.latency_us.reset();
        self.lag_us.reset();
        self.window_start = Instant::now();
        self.cpu_start = super::procstat::thread_cpu();
    }

    fn collect(&self) -> EngineStats {
        EngineStats::new(
            &self.slots,
            Totals::of(&self.slots, self.socket.rx_dropped, self.socket.tx_failed).minus(&self.base),
            self.window_start.elapsed(),
            super::procstat::thread_cpu().saturating_sub(self.cpu_start),
            &self.latency_us,
            &self.lag_us,
            self.unroutable,
            self.peers_failed,
        )
    }
}

/// Datagrams copied out of the socket's buffers, so peers can be polled (queueing sends on
/// the same socket) while they are processed.
#[derive(Default)]
struct Staging {
    bytes: Vec<u8>,
    items: Vec<(std::net::SocketAddrV4, Ipv4Addr, Option<Instant>, usize, usize)>,
}

impl Staging {
    fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    fn push(&mut self, d: Received<'_>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(d.data);
        self.items
            .push((d.source, d.local, d.at, start, self.bytes.len()));
    }

    fn iter(&self) -> impl Iterator<Item = (std::net::SocketAddrV4, Ipv4Addr, Option<Instant>, &[u8])> {
        self.items
            .iter()
            .filter_map(|(s, l, t, a, b)| Some((*s, *l, *t, self.bytes.get(*a..*b)?)))
    }
}
