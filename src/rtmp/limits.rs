//! Limits of the RTMP layer: every bound on what a peer can make us hold or do, with its
//! unit and the reason for its value. Sans-IO: plain constants; the time limits are only
//! exported here, the I/O layer (on the control thread's tokio runtime) enforces them.
//!
//! Invariant: every buffer a peer can grow in this layer is bounded by one of these.

use std::time::Duration;

/// Largest chunk size (bytes) a peer may announce with Set Chunk Size. OBS and ffmpeg use
/// 4096 or less; bigger chunks only raise what one chunk can make us buffer.
pub const CHUNK_BYTES_MAX: u32 = 65536;

/// Largest message (bytes) we reassemble. A keyframe of a high-bitrate 1080p stream is a few
/// hundred kilobytes; 4 MiB leaves a wide margin while keeping one connection's memory small.
pub const MESSAGE_BYTES_MAX: u32 = 4 << 20;

/// Partially assembled message payloads (bytes, all chunk streams together) a connection may
/// hold. Normal peers interleave at most audio, video and a command; two full messages' worth
/// is ample and stops a peer from opening many large messages at once.
pub const PARTIAL_BYTES_MAX: usize = 2 * MESSAGE_BYTES_MAX as usize;

/// Distinct chunk stream ids one connection may use. Real peers use fewer than ten; each id
/// costs us a little state.
pub const CHUNK_STREAMS_MAX: usize = 64;

/// Bytes a peer may send, beyond the message being decided, while we decide on its
/// `connect`, `publish` or `play` (its messages wait in the input buffer until then).
pub const PENDING_INPUT_BYTES_MAX: usize = MESSAGE_BYTES_MAX as usize;

/// NetStreams one connection may create (`createStream`). A publisher needs one, a player
/// one or two.
pub const STREAMS_PER_CONNECTION_MAX: usize = 8;

/// AMF0 nesting depth (objects and arrays inside each other). Metadata and commands nest two
/// or three levels; the limit keeps decoding's recursion shallow.
pub const AMF0_DEPTH_MAX: usize = 32;

/// AMF0 values decoded from one message, all levels together. Metadata carries a few dozen;
/// the limit bounds the memory of a message packed with tiny values.
pub const AMF0_VALUES_MAX: usize = 16_384;

/// Time (from TCP accept) for the peer to finish the handshake; enforced by the I/O layer.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Time without any bytes from the peer before the connection is dropped; enforced by the I/O
/// layer. Publishers send media continuously; players answer pings.
pub const IDLE_DEADLINE: Duration = Duration::from_secs(10);

/// Chunk size (bytes) we announce and send with: large enough that a video frame is a few
/// chunks, small enough that audio is not stuck behind a keyframe for long.
pub const OUR_CHUNK_BYTES: u32 = 4096;

/// Window acknowledgement size (bytes) we announce: the peer acknowledges every 2.5 MB
/// received, as FMS and nginx-rtmp do.
pub const WINDOW_ACK_BYTES: u32 = 2_500_000;
