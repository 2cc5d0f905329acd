//! The server's life as an operator sees it: starting (listeners being bound), serving, and
//! draining (SIGTERM, a first SIGINT, `POST /rest-api/server/drain`) until the process exits;
//! the signals that move it along (`signals.rs`), the drain itself (`drain.rs`), systemd's
//! notifications (`systemd.rs`), the workers' heartbeats behind readiness and the watchdog
//! (`watch.rs`) and the SIGHUP reload (`reload.rs`).
//!
//! Control thread. Invariants: the phase only moves forward (starting → serving → draining);
//! a drain asked for twice is one drain, and a second signal during it only hurries it
//! ([`Lifecycle::hurry`]); readiness is true only while serving with every worker beating.

pub mod drain;
pub mod reload;
pub mod signals;
pub mod systemd;
pub mod watch;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Binding listeners; not ready.
    Starting = 0,
    Serving = 1,
    /// Refusing new sessions, joins and publishes; calls in progress go on until the drain ends.
    Draining = 2,
}

/// Shared by the HTTP handlers (readiness, the drain route), the signal task and the drain.
pub struct Lifecycle {
    phase: AtomicU8,
    drain_asked: Notify,
    hurry_asked: AtomicBool,
    hurry: Notify,
    started: Instant,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            phase: AtomicU8::new(Phase::Starting as u8),
            drain_asked: Notify::new(),
            hurry_asked: AtomicBool::new(false),
            hurry: Notify::new(),
            started: Instant::now(),
        }
    }
}

impl Lifecycle {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// Every listener is bound: serving (unless a drain already began).
    pub fn serving(&self) {
        let _ = self.phase.compare_exchange(
            Phase::Starting as u8,
            Phase::Serving as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Ask for a drain; true the first time (the caller's request started it).
    pub fn drain(&self) -> bool {
        let before = self.phase.swap(Phase::Draining as u8, Ordering::Relaxed);
        if before == Phase::Draining as u8 {
            return false;
        }
        self.drain_asked.notify_one();
        true
    }

    /// Resolves once a drain was asked for.
    pub async fn drain_asked(&self) {
        if self.phase() == Phase::Draining {
            return;
        }
        self.drain_asked.notified().await;
    }

    /// End the drain now (a second SIGTERM or SIGINT): no more waiting for calls or webhooks.
    pub fn hurry(&self) {
        self.hurry_asked.store(true, Ordering::Relaxed);
        self.hurry.notify_waiters();
        self.hurry.notify_one();
    }

    pub fn hurried(&self) -> bool {
        self.hurry_asked.load(Ordering::Relaxed)
    }

    /// Resolves once the drain was told to hurry.
    pub async fn hurry_asked(&self) {
        if self.hurried() {
            return;
        }
        self.hurry.notified().await;
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}
