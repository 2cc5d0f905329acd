//! Delivering webhook events: one task per server takes due deliveries from the URLs' queues
//! and runs each as its own request future; results go back into the queues, which wake the
//! task again.
//!
//! Thread: the control thread's runtime. Invariants: no lock is held across an `.await`; an
//! attempt ends within [`WEBHOOK_ATTEMPT_TIMEOUT`] and reads at most
//! [`WEBHOOK_RESPONSE_BYTES_MAX`] of the answer; only a 2xx status counts as delivered; the
//! body signed is the body sent; failure warnings are at most one per URL per
//! [`WEBHOOK_WARN_INTERVAL`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Notify;

use super::outbox::{Delivery, Outbox};
use super::{lock, Sequencer, WebhookSetupError};
use super::{
    WEBHOOK_ATTEMPT_TIMEOUT, WEBHOOK_IN_FLIGHT_MAX, WEBHOOK_RESPONSE_BYTES_MAX, WEBHOOK_WARN_INTERVAL,
};
use crate::control::hooks::tls::{self, Connector};

/// The header naming the event, so a receiver can route without parsing the body.
const EVENT_HEADER: &str = "x-webcall-event";

pub(super) struct State {
    pub(super) outboxes: Vec<Outbox>,
    pub(super) sequencer: Sequencer,
    /// When each URL last warned.
    warned: Vec<Option<Instant>>,
    /// Failures since each URL's last warning.
    unwarned: Vec<u64>,
}

pub(super) struct Inner {
    uris: Vec<Uri>,
    http: Client<Connector, Full<Bytes>>,
    secret: Option<Vec<u8>>,
    state: Mutex<State>,
    pub(super) wake: Notify,
}

impl Inner {
    pub(super) fn new(uris: Vec<Uri>, secret: Option<&[u8]>) -> Result<Arc<Self>, WebhookSetupError> {
        let https = uris.iter().any(|u| u.scheme_str() == Some("https"));
        let roots = if https {
            tls::native_roots()?
        } else {
            rustls::RootCertStore::empty()
        };
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(WEBHOOK_IN_FLIGHT_MAX)
            .build(tls::connector(roots)?);
        let urls = uris.len();
        Ok(Arc::new(Inner {
            uris,
            http,
            secret: secret.map(<[u8]>::to_vec),
            state: Mutex::new(State {
                outboxes: (0..urls).map(|_| Outbox::default()).collect(),
                sequencer: Sequencer::default(),
                warned: vec![None; urls],
                unwarned: vec![0; urls],
            }),
            wake: Notify::new(),
        }))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// One attempt: `Ok` when the receiver answered 2xx in time, else why not.
    async fn post(&self, url: usize, delivery: &Delivery) -> Result<(), String> {
        let Some(uri) = self.uris.get(url) else {
            return Err("no such URL".into());
        };
        let body = delivery.event.body(delivery.num_dropped);
        let mut request = Request::post(uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(EVENT_HEADER, HeaderValue::from_static(delivery.event.name));
        if let Some(secret) = &self.secret {
            let mac = crate::rtmp::hmac_sha256(secret, &[&body]);
            let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
            request = request.header(AUTHORIZATION, format!("HMAC-SHA256 {hex}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let attempt = async {
            let answer = self.http.request(request).await.map_err(|e| e.to_string())?;
            let status = answer.status();
            // Read (and drop) the answer so the connection can be kept alive.
            let _ = Limited::new(answer.into_body(), WEBHOOK_RESPONSE_BYTES_MAX)
                .collect()
                .await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("answered {}", status.as_u16()))
            }
        };
        match tokio::time::timeout(WEBHOOK_ATTEMPT_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err("timed out".into()),
        }
    }

    fn warn(&self, url: usize, delivery: &Delivery, why: &str) {
        let mut state = self.lock();
        let now = Instant::now();
        let due = state
            .warned
            .get(url)
            .copied()
            .flatten()
            .is_none_or(|at| now.duration_since(at) >= WEBHOOK_WARN_INTERVAL);
        if !due {
            if let Some(count) = state.unwarned.get_mut(url) {
                *count += 1;
            }
            return;
        }
        let suppressed = state.unwarned.get(url).copied().unwrap_or(0);
        if let Some(at) = state.warned.get_mut(url) {
            *at = Some(now);
        }
        if let Some(count) = state.unwarned.get_mut(url) {
            *count = 0;
        }
        drop(state);
        // Scheme, host and path only: a query may carry the receiver's own credentials.
        let uri = self.uris.get(url).map_or_else(String::new, |u| {
            let host = u.authority().map_or("", |a| a.as_str());
            format!("{}://{host}{}", u.scheme_str().unwrap_or(""), u.path())
        });
        tracing::warn!(
            url = %uri,
            event = delivery.event.name,
            attempt = delivery.attempt,
            reason = why,
            suppressed,
            "webhook delivery failed; it is retried with backoff"
        );
    }
}

/// The delivery task: start what is due, then sleep until a result, a new event or the next
/// retry's time.
pub(super) async fn drive(inner: Arc<Inner>) {
    loop {
        let now = Instant::now();
        let (starts, next_due) = {
            let mut state = inner.lock();
            let mut starts = Vec::new();
            for (url, outbox) in state.outboxes.iter_mut().enumerate() {
                starts.extend(outbox.poll_deliveries(now).into_iter().map(|d| (url, d)));
            }
            let next_due = state.outboxes.iter().filter_map(Outbox::next_due).min();
            (starts, next_due)
        };
        for (url, delivery) in starts {
            let inner = inner.clone();
            tokio::spawn(async move {
                let result = inner.post(url, &delivery).await;
                if let Err(why) = &result {
                    inner.warn(url, &delivery, why);
                }
                {
                    let mut state = inner.lock();
                    if let Some(outbox) = state.outboxes.get_mut(url) {
                        match result {
                            Ok(()) => outbox.delivered(&delivery),
                            Err(_) => outbox.failed(&delivery, Instant::now()),
                        }
                    }
                }
                inner.wake.notify_one();
            });
        }
        match next_due {
            Some(at) => {
                tokio::select! {
                    _ = inner.wake.notified() => {}
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => inner.wake.notified().await,
        }
    }
}
