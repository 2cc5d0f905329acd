//! `GET /metrics`: the server in the Prometheus text format — sessions, rooms, participants,
//! streams by role and codec, recordings, RTMP connections, admission and hook counters; per
//! worker every entry of its counter table (the same table `/health` shows), drops by reason
//! and the turn-duration histogram; the join latency histogram; and `process_*`.
//!
//! Control thread, at each scrape (under the admin rule, like every operator route).
//! Invariants: every name is `webcall_*` (or the standard `process_*`) with its unit last;
//! labels come from bounded sets (worker index, codec, drop reason, outcome), never a room,
//! stream or login.

mod process;
pub mod text;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use self::text::{Exposition, Kind};
use super::http::AppState;
use super::hub::lock;
use crate::worker::counters::{beat_ms, DropReason, WorkerCounter, TURN_BUCKET_BOUNDS_MICROS};

/// Upper bounds of the join latency histogram, in seconds: a join without hooks takes
/// microseconds; with the application's hook, its round trip.
pub const JOIN_LATENCY_BOUNDS_SECONDS: [f64; 10] =
    [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Durations counted into [`JOIN_LATENCY_BOUNDS_SECONDS`]; control thread only.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: [u64; JOIN_LATENCY_BOUNDS_SECONDS.len() + 1],
    sum_seconds: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: [0; JOIN_LATENCY_BOUNDS_SECONDS.len() + 1],
            sum_seconds: 0.0,
        }
    }
}

impl LatencyHistogram {
    pub fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = JOIN_LATENCY_BOUNDS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(JOIN_LATENCY_BOUNDS_SECONDS.len());
        if let Some(count) = self.counts.get_mut(bucket) {
            *count = count.saturating_add(1);
        }
        self.sum_seconds += seconds;
    }
}

/// Help text and kind of each worker counter, as `webcall_worker_<name>`.
fn worker_family(counter: WorkerCounter) -> Option<(&'static str, Kind, &'static str)> {
    use WorkerCounter as C;
    Some(match counter {
        C::Peers => ("peers", Kind::Gauge, "Endpoints the worker holds."),
        C::DatagramsReceived => (
            "received_datagrams_total",
            Kind::Counter,
            "UDP datagrams received.",
        ),
        C::DatagramsSent => (
            "sent_datagrams_total",
            Kind::Counter,
            "UDP datagrams the kernel accepted.",
        ),
        C::PeersFailed => (
            "peers_failed_total",
            Kind::Counter,
            "Endpoints the worker ended on its own.",
        ),
        C::PeerPanics => (
            "peer_panics_total",
            Kind::Counter,
            "Endpoints ended by a panic in their stack.",
        ),
        C::DtlsFailures => (
            "dtls_failures_total",
            Kind::Counter,
            "Endpoints ended by a DTLS alert, handshake error or fingerprint mismatch.",
        ),
        C::DtlsTimeouts => (
            "dtls_timeouts_total",
            Kind::Counter,
            "Endpoints whose DTLS handshake did not complete 10 s after ICE connected.",
        ),
        C::NotificationsDeferred => (
            "notifications_deferred_total",
            Kind::Counter,
            "Notifications that waited for room in control's queue.",
        ),
        C::NotificationBacklog => ("notification_backlog", Kind::Gauge, "Notifications waiting now."),
        C::IoErrors => (
            "io_errors_total",
            Kind::Counter,
            "Receive or flush calls that failed.",
        ),
        C::CommandQueueFull => (
            "command_queue_full_total",
            Kind::Counter,
            "Commands that found the worker's queue full.",
        ),
        C::Syscalls => (
            "syscalls_total",
            Kind::Counter,
            "Socket syscalls and ring submissions.",
        ),
        C::GsoBatches => (
            "gso_batches_total",
            Kind::Counter,
            "UDP GSO super-datagrams sent.",
        ),
        C::GsoDatagrams => (
            "gso_datagrams_total",
            Kind::Counter,
            "Datagrams sent inside GSO batches.",
        ),
        C::RecvRearms => (
            "recv_rearms_total",
            Kind::Counter,
            "io_uring multishot receives re-armed.",
        ),
        C::LoopTurns => ("loop_turns_total", Kind::Counter, "Loop turns run."),
        C::BytesReceived => (
            "received_bytes_total",
            Kind::Counter,
            "UDP payload bytes received.",
        ),
        C::BytesSent => ("sent_bytes_total", Kind::Counter, "UDP payload bytes sent."),
        C::NacksReceived => (
            "nacks_received_total",
            Kind::Counter,
            "RTCP NACKs received from players.",
        ),
        C::RetransmitsSent => (
            "retransmits_sent_total",
            Kind::Counter,
            "Packets resent (RTX) for NACKs.",
        ),
        C::PlisReceived => (
            "plis_received_total",
            Kind::Counter,
            "RTCP PLIs received from players.",
        ),
        C::FirsReceived => (
            "firs_received_total",
            Kind::Counter,
            "RTCP FIRs received from players.",
        ),
        C::KeyframeRequestsSent => (
            "keyframe_requests_sent_total",
            Kind::Counter,
            "Keyframe requests sent on to publishers.",
        ),
        // Shown as the histogram's sum and as the heartbeat's age.
        C::TurnBusyMicros | C::Heartbeat => return None,
    })
}

/// The whole exposition.
pub fn render(state: &AppState) -> String {
    let mut e = Exposition::default();
    let hub = lock(&state.hub);
    let directory = hub.directory();
    let counts = directory.counts();
    let metric = directory.metric_counts();
    e.single(
        "webcall_sessions",
        Kind::Gauge,
        "Sessions (WebSocket and RTMP).",
        counts.sessions as f64,
    );
    e.single("webcall_rooms", Kind::Gauge, "Rooms.", counts.rooms as f64);
    e.single(
        "webcall_participants",
        Kind::Gauge,
        "Participants in all rooms.",
        metric.participants as f64,
    );
    e.single(
        "webcall_peers",
        Kind::Gauge,
        "Media endpoints.",
        counts.peers as f64,
    );
    e.family(
        "webcall_streams",
        Kind::Gauge,
        "Streams by role and codec (a stream counts once per codec).",
    );
    for ((published, codec), n) in &metric.streams_by_codec {
        let role = if *published { "published" } else { "played" };
        e.sample("webcall_streams", &[("role", role), ("codec", codec)], *n as f64);
    }
    e.single(
        "webcall_recordings_active",
        Kind::Gauge,
        "Recordings running.",
        metric.recordings_active as f64,
    );
    e.single(
        "webcall_recordings_failed_total",
        Kind::Counter,
        "Recordings that failed to open or to write.",
        hub.recordings_failed() as f64,
    );
    e.single(
        "webcall_draining",
        Kind::Gauge,
        "1 while a drain runs.",
        f64::from(u8::from(
            state.lifecycle.phase() == super::lifecycle::Phase::Draining,
        )),
    );
    let joins = hub.join_latency().clone();
    e.family(
        "webcall_join_latency_seconds",
        Kind::Histogram,
        "Time from a join's arrival to its answer.",
    );
    e.histogram(
        "webcall_join_latency_seconds",
        &[],
        &JOIN_LATENCY_BOUNDS_SECONDS,
        &joins.counts,
        joins.sum_seconds,
    );
    write_workers(&mut e, hub.workers());
    let webhooks = hub.webhooks().map(super::webhooks::Webhooks::counts);
    drop(hub);
    if let Some(counts) = webhooks {
        write_webhooks(&mut e, counts);
    }
    e.single(
        "webcall_rtmp_connections",
        Kind::Gauge,
        "RTMP and RTMPS connections open.",
        state.bridge.connections_open() as f64,
    );
    let admission = &state.admission.counters;
    e.family(
        "webcall_sessions_refused_total",
        Kind::Counter,
        "Sessions and connections refused, by reason.",
    );
    for (reason, counter) in [
        ("server_full", &admission.sessions_over_cap),
        ("address_cap", &admission.sessions_over_ip_cap),
        ("origin", &admission.origins_refused),
        ("output_cap", &admission.sessions_over_output_cap),
        ("write_stalled", &admission.sessions_write_stalled),
    ] {
        e.sample(
            "webcall_sessions_refused_total",
            &[("reason", reason)],
            counter.load(Ordering::Relaxed) as f64,
        );
    }
    if let Some(hooks) = state.hooks.get().as_ref() {
        let snapshot = hooks.counters();
        e.family(
            "webcall_hook_calls_total",
            Kind::Counter,
            "Calls to the application's hooks, by outcome.",
        );
        for (outcome, n) in [
            ("allowed", snapshot.allowed),
            ("refused", snapshot.refused),
            ("failed", snapshot.failed),
        ] {
            e.sample("webcall_hook_calls_total", &[("outcome", outcome)], n as f64);
        }
    }
    process::write(&mut e);
    e.finish()
}

fn write_webhooks(e: &mut Exposition, counts: super::webhooks::OutboxCounts) {
    e.single(
        "webcall_webhook_events_queued",
        Kind::Gauge,
        "Webhook events waiting or in flight, summed over URLs.",
        counts.queued as f64,
    );
    e.family(
        "webcall_webhook_events_total",
        Kind::Counter,
        "Webhook events that left the queues, by outcome.",
    );
    for (outcome, n) in [
        ("delivered", counts.delivered),
        ("dropped_queue_full", counts.dropped_full),
        ("dropped_attempts", counts.dropped_attempts),
    ] {
        e.sample("webcall_webhook_events_total", &[("outcome", outcome)], n as f64);
    }
    e.single(
        "webcall_webhook_attempts_failed_total",
        Kind::Counter,
        "Webhook delivery attempts that failed (each is retried or counts as dropped).",
        counts.failed_attempts as f64,
    );
}

fn write_workers(e: &mut Exposition, workers: &[crate::worker::commands::WorkerHandle]) {
    let names: Vec<String> = (0..workers.len()).map(|i| i.to_string()).collect();
    for counter in WorkerCounter::ALL {
        let Some((name, kind, help)) = worker_family(counter) else {
            continue;
        };
        let name = format!("webcall_worker_{name}");
        e.family(&name, kind, help);
        for (worker, label) in workers.iter().zip(&names) {
            e.sample(&name, &[("worker", label)], worker.counters.get(counter) as f64);
        }
    }
    e.family(
        "webcall_worker_dropped_datagrams_total",
        Kind::Counter,
        "Datagrams dropped, by reason.",
    );
    for (worker, label) in workers.iter().zip(&names) {
        for reason in DropReason::ALL {
            e.sample(
                "webcall_worker_dropped_datagrams_total",
                &[("worker", label), ("reason", reason.name())],
                worker.counters.get_dropped(reason) as f64,
            );
        }
    }
    e.family(
        "webcall_worker_heartbeat_age_seconds",
        Kind::Gauge,
        "Time since the worker last finished a loop turn.",
    );
    let now_ms = beat_ms(std::time::Instant::now());
    for (worker, label) in workers.iter().zip(&names) {
        let age_ms = now_ms.saturating_sub(worker.counters.get(WorkerCounter::Heartbeat));
        e.sample(
            "webcall_worker_heartbeat_age_seconds",
            &[("worker", label)],
            age_ms as f64 / 1000.0,
        );
    }
    let bounds: Vec<f64> = TURN_BUCKET_BOUNDS_MICROS
        .iter()
        .map(|b| *b as f64 / 1e6)
        .collect();
    e.family(
        "webcall_worker_turn_duration_seconds",
        Kind::Histogram,
        "Work time of each loop turn (the wait excluded).",
    );
    for (worker, label) in workers.iter().zip(&names) {
        let busy = worker.counters.get(WorkerCounter::TurnBusyMicros) as f64 / 1e6;
        e.histogram(
            "webcall_worker_turn_duration_seconds",
            &[("worker", label)],
            &bounds,
            &worker.counters.turn_buckets(),
            busy,
        );
    }
}

/// `GET /metrics`, under the admin rule.
pub async fn handler(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = super::rest::authorize(&state, remote, &headers) {
        return *refused;
    }
    let body = render(&state);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
