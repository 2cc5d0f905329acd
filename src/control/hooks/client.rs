//! The hook client: one hyper-util keep-alive pool to the backend, the in-flight bound, the
//! timeout, signing, reading the answer within its cap, the failure policy, the counters and
//! the rate-limited failure warning.
//!
//! Thread: webcall's control thread, a tokio current-thread runtime; hyper-util's pool spawns
//! its connection tasks onto that runtime. Each [`HookClient::call`] is an independent future:
//! nothing in it holds a lock across an `.await`, so calls from many tasks interleave freely.
//!
//! Invariants: a call ends within the configured timeout (the permit wait, connect, TLS, the
//! request and the whole answer are under one deadline); at most [`HOOK_IN_FLIGHT_MAX`] calls
//! hold a connection at once; an answer is read with [`HOOK_RESPONSE_BYTES_MAX`] as a hard cap;
//! endpoint URIs are built and checked once, at setup, so a call cannot fail on the URL.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::counters::{Counters, HookCountersSnapshot, Outcome, WarnLimiter};
use super::endpoints;
use super::sign::Signer;
use super::tls::{self, Connector};
use super::verdict::{self, FailureKind, HookVerdict, Judgement};
use super::{
    HookConfig, HookFailure, HookMethod, HookSetupError, HOOK_IN_FLIGHT_MAX, HOOK_POOL_IDLE_PER_HOST,
    HOOK_POOL_IDLE_TIMEOUT, HOOK_RESPONSE_BYTES_MAX, HOOK_UNAVAILABLE_REASON, HOOK_WARN_INTERVAL,
};

/// The client of one application's hooks. Cheap to clone: clones share the connection pool,
/// the in-flight permits and the counters.
#[derive(Clone)]
pub struct HookClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Client<Connector, Full<Bytes>>,
    /// `{url}/{method}` for each method, by [`HookMethod::index`].
    endpoints: Vec<Uri>,
    timeout: std::time::Duration,
    failure: HookFailure,
    signer: Option<Signer>,
    permits: Semaphore,
    counters: Counters,
    warnings: Mutex<WarnLimiter>,
}

/// An answer as read: its status and its body (empty when a non-2xx body was unreadable).
type Answer = (u16, Vec<u8>);

impl HookClient {
    /// Checks the configuration and builds the pool; connects to nothing yet. For an
    /// `https://` URL this loads the system's root certificates.
    pub fn new(config: HookConfig) -> Result<Self, HookSetupError> {
        let (endpoints, https) = endpoints::check(&config)?;
        let roots = if https {
            tls::native_roots()?
        } else {
            RootCertStore::empty()
        };
        Self::build(config, endpoints, roots)
    }

    /// [`HookClient::new`] trusting `roots` instead of the system's.
    #[cfg(test)]
    pub(super) fn with_roots(config: HookConfig, roots: RootCertStore) -> Result<Self, HookSetupError> {
        let (endpoints, _) = endpoints::check(&config)?;
        Self::build(config, endpoints, roots)
    }

    fn build(config: HookConfig, endpoints: Vec<Uri>, roots: RootCertStore) -> Result<Self, HookSetupError> {
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(HOOK_POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(HOOK_POOL_IDLE_PER_HOST)
            // hyper's own read buffer is capped too, so no more than the answer cap is held
            // below us either (the minimum hyper allows is 8 KiB).
            .http1_max_buf_size(HOOK_RESPONSE_BYTES_MAX)
            .build(tls::connector(roots)?);
        Ok(HookClient {
            inner: Arc::new(Inner {
                http,
                endpoints,
                timeout: config.timeout,
                failure: config.failure,
                signer: config.secret.as_deref().map(Signer::new),
                permits: Semaphore::new(HOOK_IN_FLIGHT_MAX),
                counters: Counters::default(),
                warnings: Mutex::new(WarnLimiter::new(HOOK_WARN_INTERVAL)),
            }),
        })
    }

    /// POSTs `body` to the method's hook and says what the backend decided, or what the
    /// failure policy decides when there was no usable answer. Never errors, never outlives
    /// the timeout.
    pub async fn call(&self, method: HookMethod, body: &Value) -> HookVerdict {
        let inner = &*self.inner;
        inner.counters.started();
        let judgement = match inner.attempt(method, body).await {
            Ok((status, answer)) => verdict::judge(status, &answer),
            Err(kind) => Judgement::Failure(kind),
        };
        match judgement {
            Judgement::Verdict(verdict) => {
                inner.counters.ended(match verdict {
                    HookVerdict::Allow { .. } => Outcome::Allowed,
                    HookVerdict::Refuse { .. } => Outcome::Refused,
                });
                verdict
            }
            Judgement::Failure(kind) => {
                inner.counters.ended(Outcome::Failed);
                inner.warn(method, kind);
                match inner.failure {
                    HookFailure::Allow => HookVerdict::Allow { rewritten: None },
                    HookFailure::Deny => HookVerdict::Refuse {
                        reason: HOOK_UNAVAILABLE_REASON.to_owned(),
                    },
                }
            }
        }
    }

    /// Totals since the client was made, over all its clones.
    pub fn counters(&self) -> HookCountersSnapshot {
        self.inner.counters.snapshot()
    }

    /// The in-flight permits, for tests that hold them.
    #[cfg(test)]
    pub(super) fn permits(&self) -> &Semaphore {
        &self.inner.permits
    }
}

impl std::fmt::Debug for HookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("HookClient")
            .field("connect", &inner.endpoints[HookMethod::Connect.index()])
            .field("timeout", &inner.timeout)
            .field("failure", &inner.failure)
            .field("signed", &inner.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl Inner {
    async fn attempt(&self, method: HookMethod, body: &Value) -> Result<Answer, FailureKind> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let request = self.request(method, body)?;
        let _permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| FailureKind::Busy)?
            .map_err(|_| FailureKind::Busy)?;
        tokio::time::timeout_at(deadline, self.exchange(request))
            .await
            .map_err(|_| FailureKind::Timeout)?
    }

    fn request(&self, method: HookMethod, body: &Value) -> Result<Request<Full<Bytes>>, FailureKind> {
        let bytes = Bytes::from(body.to_string());
        let mut builder = Request::post(self.endpoints[method.index()].clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(CONTENT_LENGTH, bytes.len());
        if let Some(signer) = &self.signer {
            let mut value =
                HeaderValue::from_str(&signer.header_value(&bytes)).map_err(|_| FailureKind::Request)?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        builder.body(Full::new(bytes)).map_err(|_| FailureKind::Request)
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Answer, FailureKind> {
        let response = self.http.request(request).await.map_err(|e| {
            if e.is_connect() {
                FailureKind::Connect
            } else {
                FailureKind::Request
            }
        })?;
        let status = response.status().as_u16();
        match read_body(response).await {
            Ok(body) => Ok((status, body)),
            // A 2xx is only as good as its body; for the others the status decides.
            Err(kind) if (200..300).contains(&status) => Err(kind),
            Err(_) => Ok((status, Vec::new())),
        }
    }

    fn warn(&self, method: HookMethod, kind: FailureKind) {
        let admitted = self
            .warnings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(Instant::now());
        let Some(held_back) = admitted else {
            self.counters.warning_suppressed();
            return;
        };
        let verdict = match self.failure {
            HookFailure::Allow => "allowed",
            HookFailure::Deny => "refused",
        };
        tracing::warn!(method = method.path(), kind = %kind, verdict, held_back, "application hook failed");
    }
}

/// The whole body, or [`FailureKind::BodyTooLarge`] as soon as it is known to pass the cap
/// (by its `Content-Length` before reading anything, else by the bytes read so far).
async fn read_body(response: Response<Incoming>) -> Result<Vec<u8>, FailureKind> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > HOOK_RESPONSE_BYTES_MAX as u64) {
        return Err(FailureKind::BodyTooLarge);
    }
    let mut body = response.into_body();
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| FailureKind::BodyRead)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > HOOK_RESPONSE_BYTES_MAX {
                return Err(FailureKind::BodyTooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
