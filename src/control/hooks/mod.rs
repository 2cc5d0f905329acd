//! Application REST hooks, the client side, as WCS does them: before a client action (connect,
//! join a room, publish, play, send a message) the server POSTs the action's JSON to
//! `URL/<method>` and the application's backend allows it, refuses it or rewrites it.
//!
//! This module owns the hook vocabulary (methods, failure policy, configuration, limits) and
//! re-exports the client and its verdicts. It depends on no other webcall module.
//!
//! Thread: webcall's control thread, a tokio current-thread runtime. A [`HookClient`] is
//! `Send + Sync` and cheap to clone; every call is its own future, so many tasks on that one
//! runtime await calls at once and none waits for another beyond [`HOOK_IN_FLIGHT_MAX`].
//!
//! Invariants: a call always ends within [`HookConfig::timeout`] (waiting for a permit,
//! connecting, sending and reading the whole answer all count); it never buffers more than
//! [`HOOK_RESPONSE_BYTES_MAX`] of an answer; a reason handed to a client is at most
//! [`HOOK_REASON_BYTES_MAX`] bytes with no control characters; internal error text, answer
//! bodies and the secret never reach a client or a log line.

mod client;
mod counters;
mod endpoints;
mod sign;
pub(crate) mod tls;
mod verdict;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod test_server;

use std::time::Duration;

pub use self::client::HookClient;
pub use self::counters::HookCountersSnapshot;
pub use self::verdict::HookVerdict;

/// The longest refusal reason handed to a client, in bytes. A reason is shown to a person in a
/// status line; the cap stops a backend from making webcall relay a page of text.
pub const HOOK_REASON_BYTES_MAX: usize = 512;

/// The largest answer body read, in bytes. Verdicts are small JSON objects (a rewrite carries
/// a few fields); with [`HOOK_IN_FLIGHT_MAX`] calls at once this bounds hook answers to
/// 16 MiB of memory. A longer answer is a failure, and reading stops at the cap.
pub const HOOK_RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// At most one failure warning per client in this interval; the rest are counted in
/// [`HookCountersSnapshot::warnings_suppressed`] and the count goes into the next warning. A
/// backend that is down fails every call, and one line per call would flood the log.
pub const HOOK_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Idle keep-alive connections kept to the backend (there is one host). Enough for the bursts
/// a room start makes without holding hundreds of sockets open between them.
pub const HOOK_POOL_IDLE_PER_HOST: usize = 32;

/// How long an idle keep-alive connection is kept. Shorter than most backends keep theirs
/// (nginx: 75 s), so the close usually comes from our side and a pooled socket is rarely
/// found closed under a request.
pub const HOOK_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls in flight at once, per client (clones share them). Bounds sockets and buffered
/// answers when the backend is slow; a call that gets no permit within its timeout fails.
pub const HOOK_IN_FLIGHT_MAX: usize = 256;

/// The reason a client is given when a hook failed and the policy is [`HookFailure::Deny`]:
/// never the internal error.
pub const HOOK_UNAVAILABLE_REASON: &str = "Hook unavailable";

/// A client action the backend may hook; the path segment is WCS's method name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookMethod {
    Connect,
    JoinRoom,
    PublishStream,
    PlayStream,
    SendMessage,
}

impl HookMethod {
    /// Every method, in declaration order.
    pub const ALL: [HookMethod; 5] = [
        HookMethod::Connect,
        HookMethod::JoinRoom,
        HookMethod::PublishStream,
        HookMethod::PlayStream,
        HookMethod::SendMessage,
    ];

    /// The path segment after the hook URL, as WCS names it.
    pub fn path(self) -> &'static str {
        match self {
            HookMethod::Connect => "connect",
            HookMethod::JoinRoom => "joinRoom",
            HookMethod::PublishStream => "publishStream",
            HookMethod::PlayStream => "playStream",
            HookMethod::SendMessage => "sendMessage",
        }
    }

    /// The method's place in [`HookMethod::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

/// What a call that got no usable answer (timeout, connection or TLS error, 5xx, an answer too
/// long or not a JSON object) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFailure {
    /// Fail open: the action goes ahead unchanged.
    Allow,
    /// Fail closed: the action is refused with [`HOOK_UNAVAILABLE_REASON`].
    Deny,
}

/// How to reach the application's backend.
#[derive(Clone)]
pub struct HookConfig {
    /// The base URL, `http://` or `https://`, e.g. `http://127.0.0.1:8081/apps/app`; a method
    /// is POSTed to `{url}/{method}`. No query or fragment.
    pub url: String,
    /// The whole call: waiting for a permit, connecting, TLS, sending, reading the answer.
    pub timeout: Duration,
    pub failure: HookFailure,
    /// With a secret, each call carries `Authorization: HMAC-SHA256 <hex>` over the body.
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookConfig")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("failure", &self.failure)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a [`HookClient`] could not be made. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum HookSetupError {
    #[error("hook URL is not a URL: {0}")]
    InvalidUrl(String),
    #[error("hook URL must start with http:// or https://")]
    UnsupportedScheme,
    #[error("hook URL has no host")]
    MissingHost,
    #[error("hook URL must not carry user:password@ (sign calls with the hook secret instead)")]
    UserInfo,
    #[error("hook URL must not have a query or a fragment")]
    QueryOrFragment,
    #[error("hook timeout must be above zero")]
    ZeroTimeout,
    #[error("hook secret is empty")]
    EmptySecret,
    #[error("no trusted root certificates could be loaded for an https hook URL: {errors}")]
    NoRootCertificates { errors: String },
    #[error("hook TLS setup: {0}")]
    Tls(rustls::Error),
}
