//! The drain: what happens between SIGTERM (or a first SIGINT, or `POST
//! /rest-api/server/drain`) and the process's exit.
//!
//! 1. systemd hears `STOPPING=1`; readiness answers 503; the directory refuses new sessions,
//!    joins and publishes with "Server is shutting down"; the webhooks get `server_draining`.
//! 2. Calls in progress go on until every session has gone or `--drain-timeout` passes (a
//!    second signal cuts this short).
//! 3. Every stream ends (`UNPUBLISHED`/`STOPPED`), every participant leaves (`LEFT`), every
//!    WebSocket is closed with 1001 "Going Away" after its queued frames.
//! 4. Recordings are finished on their writers (systemd's stop timeout is extended while they
//!    are), and the webhooks still queued are delivered, each within its bound.
//!
//! The caller then stops the workers and the recorder (which closes any file still open) and
//! the process exits 0. Control thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{systemd, Lifecycle};
use crate::control::admission::Admission;
use crate::control::hub::{lock, SharedHub};
use crate::control::webhooks::{WebhookEvent, Webhooks};

/// After the sessions were told to go, how long their close frames have to be written.
pub const DRAIN_CLOSE_WRITE_MAX: Duration = Duration::from_secs(2);
/// How long the drain waits for recordings to be finished on their writers (each is a last
/// fragment and an index: well under a second, unless the disk is stalled).
pub const DRAIN_RECORDINGS_MAX: Duration = Duration::from_secs(30);
/// How long queued webhooks may take to go out after the sessions ended, when the drain
/// timeout has already passed (otherwise they have until it).
pub const DRAIN_WEBHOOKS_GRACE: Duration = Duration::from_secs(2);
/// How often the drain looks whether it is done.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// What systemd's stop timeout is extended by, each time, while recordings finish.
const EXTEND_BY: Duration = Duration::from_secs(10);

pub struct DrainContext {
    pub hub: SharedHub,
    pub lifecycle: Arc<Lifecycle>,
    pub admission: Arc<Admission>,
    pub webhooks: Option<Webhooks>,
    pub timeout: Duration,
}

/// What the drain did, for the log.
#[derive(Debug, Default)]
pub struct DrainReport {
    pub sessions_at_start: usize,
    pub sessions_ended: usize,
    pub waited: Duration,
    pub total: Duration,
}

/// Run the drain to its end (see the module header).
pub async fn run(context: DrainContext) -> DrainReport {
    let DrainContext {
        hub,
        lifecycle,
        admission,
        webhooks,
        timeout,
    } = context;
    let started = Instant::now();
    let deadline = started + timeout;
    let sessions_at_start = lock(&hub).directory().counts().sessions;
    tracing::info!(
        sessions = sessions_at_start,
        timeout_s = timeout.as_secs_f64(),
        "draining: new sessions, joins and publishes are refused; calls go on until they end or the timeout"
    );
    systemd::stopping(&format!("draining: {sessions_at_start} sessions"));
    lock(&hub).begin_drain();
    let deadline_unix_ms = crate::auth::now_unix()
        .saturating_mul(1000)
        .saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
    if let Some(webhooks) = &webhooks {
        webhooks.emit(WebhookEvent::ServerDraining { deadline_unix_ms });
    }
    wait_until(&lifecycle, deadline, || {
        lock(&hub).directory().counts().sessions == 0
    })
    .await;
    let waited = started.elapsed();
    let sessions_ended = lock(&hub).directory().counts().sessions;
    lock(&hub).end_all_sessions();
    // Even hurried, the close frames get their moment: a 1001 instead of a reset.
    let closes = Instant::now() + DRAIN_CLOSE_WRITE_MAX;
    while admission.sessions() > 0 && Instant::now() < closes {
        tokio::time::sleep(DRAIN_POLL / 5).await;
    }
    finish_recordings(&hub, &lifecycle).await;
    if let (Some(webhooks), false) = (&webhooks, lifecycle.hurried()) {
        let until = deadline.max(Instant::now() + DRAIN_WEBHOOKS_GRACE);
        let flushed = tokio::select! {
            report = webhooks.flush(tokio::time::Instant::from_std(until)) => Some(report),
            _ = lifecycle.hurry_asked() => None,
        };
        if let Some(report) = flushed {
            tracing::info!(?report, "webhooks flushed");
        }
    }
    let report = DrainReport {
        sessions_at_start,
        sessions_ended,
        waited,
        total: started.elapsed(),
    };
    tracing::info!(
        sessions_at_start,
        sessions_ended,
        waited_ms = report.waited.as_millis() as u64,
        total_ms = report.total.as_millis() as u64,
        "drained"
    );
    report
}

/// Wait (polling) until `done`, the deadline, or a hurry.
async fn wait_until(lifecycle: &Lifecycle, deadline: Instant, mut done: impl FnMut() -> bool) {
    while !done() && Instant::now() < deadline && !lifecycle.hurried() {
        tokio::select! {
            _ = tokio::time::sleep(DRAIN_POLL) => {}
            _ = lifecycle.hurry_asked() => {}
        }
    }
}

/// Wait for the writers to report every recording finished, extending systemd's stop timeout
/// meanwhile. Hurried, it does not wait: the recorder's shutdown closes the files.
async fn finish_recordings(hub: &SharedHub, lifecycle: &Lifecycle) {
    let open = lock(hub).open_recordings();
    if open == 0 || lifecycle.hurried() {
        return;
    }
    tracing::info!(recordings = open, "finishing recordings");
    let started = Instant::now();
    let mut extended: Option<Instant> = None;
    while lock(hub).open_recordings() > 0 && started.elapsed() < DRAIN_RECORDINGS_MAX && !lifecycle.hurried()
    {
        if extended.is_none_or(|at| at.elapsed() >= EXTEND_BY / 2) {
            systemd::extend_timeout(EXTEND_BY);
            extended = Some(Instant::now());
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}
