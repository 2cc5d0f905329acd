//! The crate's error type.
//!
//! Owns [`Error`], the one error enum every public call returns. Errors that carry
//! text from the server (`info` of a FAILED acknowledgement or stream status) keep that
//! text verbatim so tests can compare it with the SDK's known strings.

use std::time::Duration;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// WebSocket transport failure (connect, read or write).
    #[error("websocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),

    /// The WebSocket session is closed; nothing more will arrive.
    #[error("session closed{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),

    /// Nothing matching arrived within the given time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },

    /// A server message that does not follow the protocol.
    #[error("protocol: {0}")]
    Protocol(String),

    /// JSON encoding or decoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),

    /// The server answered a `sendData` command with `FAILED`.
    #[error("command {command} refused: {info}")]
    Refused {
        /// The command (`join`, `leave`, `sendMessage`, ...).
        command: String,
        /// The server's `info`, verbatim (empty when absent).
        info: String,
    },

    /// The server ended a stream with `FAILED` (or a `fail` message), or ended it early.
    #[error("stream {name} {status}: {info}")]
    StreamFailed {
        /// Stream name.
        name: String,
        /// The status that ended it (`FAILED`, `STOPPED`, `UNPUBLISHED`).
        status: String,
        /// The server's `info`, verbatim (empty when absent).
        info: String,
    },

    /// str0m refused an operation (SDP, RTP write, input).
    #[error("webrtc: {0}")]
    Rtc(String),

    /// An SDP could not be parsed or applied.
    #[error("sdp: {0}")]
    Sdp(String),

    /// Socket or thread failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),

    /// The peer's media thread has ended.
    #[error("peer stopped")]
    PeerGone,

    /// A caller-supplied value that cannot be used.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A media payload that cannot be parsed.
    #[error("media: {0}")]
    Media(String),
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(Box::new(e))
    }
}

impl From<str0m::RtcError> for Error {
    fn from(e: str0m::RtcError) -> Self {
        Error::Rtc(e.to_string())
    }
}

impl Error {
    /// Builds a [`Error::Timeout`].
    pub fn timeout(what: impl Into<String>, after: Duration) -> Self {
        Error::Timeout {
            what: what.into(),
            after,
        }
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The server's `info` text for refusals and stream failures.
    pub fn server_info(&self) -> Option<&str> {
        match self {
            Error::Refused { info, .. } | Error::StreamFailed { info, .. } => Some(info),
            _ => None,
        }
    }
}
