//! Whether every media worker is alive: each one stamps its counter table's heartbeat at the
//! end of every turn (an idle worker still turns every 500 ms), and a stamp older than
//! [`WORKER_HEARTBEAT_STALE`] means that worker is wedged. Readiness and the systemd watchdog
//! both ask here; the task in this file pings the watchdog only while all are fresh and keeps
//! systemd's `STATUS=` line current.
//!
//! Control thread. Invariant: `WATCHDOG=1` is never sent while a worker's heartbeat is stale,
//! so systemd restarts a service whose worker stopped turning (`WatchdogSec=`).

use std::time::{Duration, Instant};

use super::{systemd, Lifecycle, Phase};
use crate::control::hub::{lock, SharedHub};
use crate::worker::commands::WorkerHandle;
use crate::worker::counters::{beat_ms, WorkerCounter};

/// A worker whose last turn ended longer ago than this is stalled. Twenty idle turns: far past
/// any turn's work (milliseconds), well inside systemd's `WatchdogSec=10`.
pub const WORKER_HEARTBEAT_STALE: Duration = Duration::from_secs(3);
/// How often the `STATUS=` line is refreshed, and the watchdog pinged when systemd does not
/// say how often it wants it.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);

/// The workers whose heartbeat is stale at `now`, by index.
pub fn stalled_workers(workers: &[WorkerHandle], now: Instant) -> Vec<usize> {
    let now_ms = beat_ms(now);
    let stale_ms = u64::try_from(WORKER_HEARTBEAT_STALE.as_millis()).unwrap_or(u64::MAX);
    workers
        .iter()
        .enumerate()
        .filter(|(_, worker)| {
            let beat = worker.counters.get(WorkerCounter::Heartbeat);
            now_ms.saturating_sub(beat) > stale_ms
        })
        .map(|(index, _)| index)
        .collect()
}

/// Why the server is not ready, if it is not: `GET /health/ready`'s 503 reason.
pub fn not_ready(lifecycle: &Lifecycle, workers: &[WorkerHandle]) -> Option<String> {
    match lifecycle.phase() {
        Phase::Starting => return Some("starting".to_owned()),
        Phase::Draining => return Some("draining".to_owned()),
        Phase::Serving => {}
    }
    let stalled = stalled_workers(workers, Instant::now());
    (!stalled.is_empty()).then(|| format!("media workers not turning: {stalled:?}"))
}

/// The `STATUS=` line.
fn status_line(hub: &SharedHub, lifecycle: &Lifecycle) -> String {
    let counts = lock(hub).directory().counts();
    let phase = match lifecycle.phase() {
        Phase::Starting => "starting",
        Phase::Serving => "serving",
        Phase::Draining => "draining",
    };
    format!(
        "{phase}: {} sessions, {} rooms, {} streams, {} peers",
        counts.sessions, counts.rooms, counts.published, counts.peers
    )
}

/// Ping systemd's watchdog while every worker beats, and keep `STATUS=` current.
pub async fn watch(hub: SharedHub, lifecycle: std::sync::Arc<Lifecycle>) {
    let interval =
        systemd::watchdog_interval().map_or(STATUS_INTERVAL, |every| (every / 2).min(STATUS_INTERVAL));
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
    let mut last_status = String::new();
    let mut stalled_before: Vec<usize> = Vec::new();
    loop {
        tick.tick().await;
        let stalled = {
            let hub = lock(&hub);
            stalled_workers(hub.workers(), Instant::now())
        };
        if stalled.is_empty() {
            systemd::watchdog();
        } else if stalled != stalled_before {
            tracing::error!(workers = ?stalled, "media workers stopped turning; the watchdog is not pinged");
        }
        if stalled.is_empty() && !stalled_before.is_empty() {
            tracing::info!("every media worker turns again");
        }
        stalled_before = stalled;
        let status = status_line(&hub, &lifecycle);
        if status != last_status {
            systemd::status(&status);
            last_status = status;
        }
    }
}
