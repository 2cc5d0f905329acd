//! RTMP protocol layer: the handshake, the chunk stream, AMF0 and the NetConnection /
//! NetStream command exchange, for ingest (`ServerConnection`: OBS, ffmpeg and the like
//! publishing or playing) and for pushing a stream out (`ClientConnection`).
//!
//! Everything here is sans-IO: state machines fed the bytes read from a socket, polled for
//! the bytes to write and for events. There are no sockets, timers, threads or tokio types;
//! the I/O layer (which runs these on the control thread's tokio runtime) reads, writes and
//! enforces the deadlines in [`limits`].
//!
//! Invariants kept by every module: peer-controlled bytes are parsed with checked lengths
//! and arithmetic, so no input can panic; memory held per connection is bounded by the
//! constants in [`limits`]; a protocol violation is reported as [`RtmpError`] and the
//! connection is unusable afterwards (the caller flushes its output and closes).
//!
//! Modules, bottom up: [`limits`]; `digest` (HMAC-SHA256 and the Flash handshake digests) and
//! [`handshake`]; [`chunk`] (reassembly) and [`chunk_writer`]; [`amf0`]; [`message`] (type
//! ids, protocol control and user control messages) and [`command`] (AMF0 commands);
//! `transport` (the chunk stream plus acknowledgements and pings, shared by both roles);
//! `streams` (a server connection's NetStreams); [`server`], [`client`] and [`url`].

pub mod amf0;
pub mod chunk;
pub mod chunk_writer;
pub mod client;
pub mod command;
mod digest;
pub mod handshake;
pub mod limits;
pub mod message;
pub mod server;
mod streams;
mod transport;
pub mod url;

#[cfg(test)]
mod amf0_tests;
#[cfg(test)]
mod chunk_tests;
#[cfg(test)]
mod handshake_tests;
#[cfg(test)]
mod server_client_tests;
#[cfg(test)]
mod server_tests;

pub use amf0::Amf0Value;
/// HMAC-SHA256, also what signs the application's hook requests.
pub use digest::hmac_sha256;

/// An audio (`video: false`) or video message as chunks at `chunk_size`, exactly as a
/// [`ServerConnection`] would send it on `stream_id`: one serialization serves every player
/// of a stream that plays at that chunk size (see [`ServerConnection::plays_at`]).
pub fn media_wire(
    video: bool,
    stream_id: u32,
    timestamp_ms: u32,
    body: &[u8],
    chunk_size: u32,
) -> Option<Vec<u8>> {
    let mut writer = ChunkWriter::new();
    writer.set_chunk_size(chunk_size);
    let (csid, type_id) = if video {
        (message::CSID_VIDEO, message::VIDEO)
    } else {
        (message::CSID_AUDIO, message::AUDIO)
    };
    let header = MessageHeader {
        csid,
        timestamp: timestamp_ms,
        type_id,
        stream_id,
    };
    let mut out = Vec::with_capacity(body.len() + 16 + body.len() / chunk_size.max(1) as usize);
    writer.write(header, body, &mut out).ok()?;
    Some(out)
}
pub use chunk::{ChunkReader, RtmpMessage};
pub use chunk_writer::{ChunkWriter, MessageHeader};
pub use client::{ClientConnection, ClientEvent};
pub use handshake::{ClientHandshake, HandshakeStatus, ServerHandshake};
pub use server::{ServerConnection, ServerEvent};
pub use url::{parse_rtmp_url, RtmpUrl};

/// Every way the RTMP layer refuses a peer's bytes (or, for [`RtmpError::InvalidUrl`], a
/// configured URL). After any of these from `feed`, the connection is finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtmpError {
    #[error("unsupported RTMP version {0} in the handshake (want 3)")]
    BadVersion(u8),
    #[error("peer set chunk size {0}, allowed 1..={max}", max = limits::CHUNK_BYTES_MAX)]
    BadChunkSize(u32),
    #[error("message of {0} bytes exceeds the limit of {max}", max = limits::MESSAGE_BYTES_MAX)]
    MessageTooLarge(u32),
    #[error("more than {max} chunk streams in use", max = limits::CHUNK_STREAMS_MAX)]
    TooManyChunkStreams,
    #[error("chunk of format {fmt} on chunk stream {csid}, which never had a full header")]
    NoPriorHeader { csid: u32, fmt: u8 },
    #[error("new message header on chunk stream {0} while a message is still incomplete")]
    HeaderMidMessage(u32),
    #[error("partially received messages exceed {max} bytes", max = limits::PARTIAL_BYTES_MAX)]
    PartialBytesExceeded,
    #[error("peer sent {0} bytes while a request awaited our decision")]
    PendingInputExceeded(usize),
    #[error("malformed {kind} message: {reason}")]
    BadMessage {
        kind: &'static str,
        reason: &'static str,
    },
    #[error("malformed AMF0: {0}")]
    Amf0(&'static str),
    #[error("invalid RTMP URL: {0}")]
    InvalidUrl(&'static str),
    #[error("connection already failed")]
    Failed,
}
