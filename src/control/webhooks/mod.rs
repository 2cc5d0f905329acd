//! Operator webhooks: room, participant, stream, recording, RTMP and server events POSTed as
//! signed JSON to every `--webhook-url`, at least once, each room's events in order.
//!
//! This module owns the envelope (event id, per-room sequence, timestamp, `num_dropped`), the
//! per-URL queues ([`outbox`], sans-IO) and their delivery ([`deliver`], hyper-util over the
//! hooks' connector). Events come from the hub (the directory's effects, finished recordings),
//! the RTMP connections and the drain; [`Webhooks::emit`] never blocks and never awaits.
//!
//! Thread: the control thread (tokio current-thread): emitting, the delivery task and its
//! requests all run there, never on a media worker. The state is behind one mutex that is
//! never held across an `.await`.
//!
//! Invariants: a room's sequence numbers start at 1 with its first event and rise by one per
//! event (the same numbers go to every URL); a counter is forgotten
//! [`WEBHOOK_ROOM_SEQUENCE_KEEP`] after its room's `room_finished`, so memory follows the rooms
//! that exist or recently did; a body never holds a token or secret; every URL's
//! queue is bounded by [`WEBHOOK_QUEUE_EVENTS_MAX`] events, and what it drops is counted and
//! reported in the next event it delivers.

mod deliver;
mod event;
mod outbox;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::Uri;
use serde_json::{Map, Value};

pub use self::event::{LeftReason, WebhookEvent};
pub use self::outbox::OutboxCounts;

/// Events queued per URL, in flight included. A receiver that is down for a while holds up to
/// this many (a few hundred bytes each: a few MiB); beyond it new events are dropped, counted
/// and reported as `num_dropped`.
pub const WEBHOOK_QUEUE_EVENTS_MAX: usize = 10_000;
/// Tries per event (the first and five retries) before it is dropped.
pub const WEBHOOK_ATTEMPTS_MAX: u32 = 6;
/// The wait before the first retry; each further retry waits twice as long (0.5 + 1 + 2 + 4 +
/// 8 s: an event is given up about 15 s after its first try).
pub const WEBHOOK_BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// Deliveries in flight per URL (one per room at most). Bounds sockets to a slow receiver
/// while rooms still do not wait for each other.
pub const WEBHOOK_IN_FLIGHT_MAX: usize = 16;
/// One attempt's limit: connect, send, and read the answer.
pub const WEBHOOK_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a receiver's answer that is read (it is discarded; only the status counts).
pub const WEBHOOK_RESPONSE_BYTES_MAX: usize = 16 * 1024;
/// How long a finished room's sequence counter is kept: longer than a recording takes to be
/// finished after its stream ended (the publisher's resume window included). Only rooms that
/// finished within it hold one, so memory follows recent rooms.
pub const WEBHOOK_ROOM_SEQUENCE_KEEP: Duration = Duration::from_secs(600);
/// At most one warning about failing deliveries per URL in this interval.
pub const WEBHOOK_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Why the webhooks could not be set up (at start, from the configuration).
#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    #[error("--webhook-url {url:?} is not a usable URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("webhooks over https: {0}")]
    Tls(#[from] crate::control::hooks::HookSetupError),
}

/// An event as queued: its envelope and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub id: String,
    pub name: &'static str,
    pub room: String,
    pub sequence: u64,
    pub timestamp_ms: u64,
    pub fields: Map<String, Value>,
}

impl Stamped {
    /// The exact bytes POSTed (and signed).
    pub fn body(&self, num_dropped: u64) -> Vec<u8> {
        let mut object = Map::new();
        object.insert("id".into(), Value::from(self.id.clone()));
        object.insert("event".into(), Value::from(self.name));
        object.insert("room".into(), Value::from(self.room.clone()));
        object.insert("sequence".into(), Value::from(self.sequence));
        object.insert("timestamp_ms".into(), Value::from(self.timestamp_ms));
        for (key, value) in &self.fields {
            object.insert(key.clone(), value.clone());
        }
        object.insert("num_dropped".into(), Value::from(num_dropped));
        serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
    }
}

/// What a drain's flush left behind.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlushReport {
    /// Events still queued when the deadline came (0: all delivered or given up).
    pub left: usize,
    pub delivered: u64,
}

/// The webhooks of this server. Cheap to clone: clones share the queues.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<deliver::Inner>,
}

/// Each room's next sequence number. A finished room's counter is kept for
/// [`WEBHOOK_ROOM_SEQUENCE_KEEP`], so events that follow `room_finished` (its last
/// recording's `recording_finished`) and a restart of the room continue its numbering.
#[derive(Default)]
pub(crate) struct Sequencer {
    /// Room → (next sequence, when it finished).
    next: HashMap<String, (u64, Option<Instant>)>,
    swept: Option<Instant>,
}

impl Sequencer {
    fn next(&mut self, event: &WebhookEvent, now: Instant) -> u64 {
        if self
            .swept
            .is_none_or(|at| now.duration_since(at) >= WEBHOOK_ROOM_SEQUENCE_KEEP / 10)
        {
            self.swept = Some(now);
            self.next.retain(|_, (_, finished)| {
                finished.is_none_or(|at| now.duration_since(at) < WEBHOOK_ROOM_SEQUENCE_KEEP)
            });
        }
        let entry = self.next.entry(event.room().to_owned()).or_insert((1, None));
        let sequence = entry.0;
        entry.0 += 1;
        match event {
            WebhookEvent::RoomFinished { .. } => entry.1 = Some(now),
            WebhookEvent::RoomStarted { .. } => entry.1 = None,
            _ => {}
        }
        sequence
    }
}

impl Webhooks {
    /// Check the URLs and start the delivery task (on the current tokio runtime); `None`
    /// without URLs.
    pub fn start(urls: &[String], secret: Option<&[u8]>) -> Result<Option<Self>, WebhookSetupError> {
        if urls.is_empty() {
            return Ok(None);
        }
        let mut uris = Vec::new();
        for url in urls {
            let uri: Uri =
                url.parse()
                    .map_err(|e: hyper::http::uri::InvalidUri| WebhookSetupError::BadUrl {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?;
            if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) {
                return Err(WebhookSetupError::BadUrl {
                    url: url.clone(),
                    reason: "an http:// or https:// URL with a host is needed".into(),
                });
            }
            uris.push(uri);
        }
        let inner = deliver::Inner::new(uris, secret)?;
        tokio::spawn(deliver::drive(inner.clone()));
        Ok(Some(Webhooks { inner }))
    }

    /// Queue `event` for every URL. Never blocks.
    pub fn emit(&self, event: WebhookEvent) {
        let room = event.room().to_owned();
        let mut state = self.inner.lock();
        let sequence = state.sequencer.next(&event, Instant::now());
        let stamped = Arc::new(Stamped {
            id: uuid::Uuid::new_v4().to_string(),
            name: event.name(),
            room,
            sequence,
            timestamp_ms: now_unix_ms(),
            fields: event.fields(),
        });
        for outbox in &mut state.outboxes {
            outbox.push(stamped.clone());
        }
        drop(state);
        self.inner.wake.notify_one();
    }

    /// Wait until every queue is empty or `deadline`, whichever first.
    pub async fn flush(&self, deadline: tokio::time::Instant) -> FlushReport {
        let before = self.counts().delivered;
        loop {
            let counts = self.counts();
            if counts.queued == 0 || tokio::time::Instant::now() >= deadline {
                return FlushReport {
                    left: counts.queued,
                    delivered: counts.delivered.saturating_sub(before),
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// The queues' totals, summed over URLs (for `/metrics` and `/health`).
    pub fn counts(&self) -> OutboxCounts {
        let state = self.inner.lock();
        let mut sum = OutboxCounts::default();
        for counts in state.outboxes.iter().map(outbox::Outbox::counts) {
            sum.queued += counts.queued;
            sum.in_flight += counts.in_flight;
            sum.delivered += counts.delivered;
            sum.failed_attempts += counts.failed_attempts;
            sum.dropped_full += counts.dropped_full;
            sum.dropped_attempts += counts.dropped_attempts;
        }
        sum
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_numbers_its_events_past_its_finish_and_forgets_it_later() {
        let mut sequencer = Sequencer::default();
        let t0 = Instant::now();
        let room = |r: &str| WebhookEvent::RoomStarted { room: r.into() };
        let finished = WebhookEvent::RoomFinished { room: "r".into() };
        assert_eq!(sequencer.next(&room("r"), t0), 1);
        assert_eq!(sequencer.next(&finished, t0), 2);
        let late = WebhookEvent::RecordingFinished {
            room: "r".into(),
            stream: "s".into(),
            file: "f.mp4".into(),
            duration_ms: 1,
            size_bytes: 1,
        };
        assert_eq!(sequencer.next(&late, t0 + Duration::from_secs(1)), 3);
        assert_eq!(sequencer.next(&room("other"), t0 + WEBHOOK_ROOM_SEQUENCE_KEEP), 1);
        assert_eq!(
            sequencer.next(&room("r"), t0 + WEBHOOK_ROOM_SEQUENCE_KEEP),
            1,
            "forgotten"
        );
    }
}
