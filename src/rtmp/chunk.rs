//! Chunk stream reassembly: [`ChunkReader`] turns the peer's chunk stream (after the
//! handshake) into whole [`RtmpMessage`]s. It parses chunk formats 0-3, the 1/2/3-byte basic
//! header forms, extended timestamps (repeated on format-3 chunks when the message's header
//! had one), timestamp deltas and interleaving across chunk streams, and it applies the
//! peer's Set Chunk Size and Abort Message itself (those two are not handed on).
//!
//! Sans-IO: bytes are pushed in, messages pulled out; used on the control thread's tokio
//! runtime.
//!
//! Invariants: a chunk's state change is committed only once the whole chunk (header and
//! payload piece) is buffered, so feeding byte by byte parses exactly as feeding all at once;
//! a message is at most `MESSAGE_BYTES_MAX`, at most `CHUNK_STREAMS_MAX` chunk streams are
//! tracked, and partial payloads together stay within `PARTIAL_BYTES_MAX`; the input buffer
//! holds only what was pushed and not yet parsed.

use std::collections::HashMap;

use super::limits::{CHUNK_BYTES_MAX, CHUNK_STREAMS_MAX, MESSAGE_BYTES_MAX, PARTIAL_BYTES_MAX};
use super::message::{read_u32, ABORT, SET_CHUNK_SIZE};
use super::RtmpError;

/// Chunk size in force before either side announces one.
pub const DEFAULT_CHUNK_BYTES: u32 = 128;
/// The 24-bit timestamp value that says an extended timestamp follows.
pub const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpMessage {
    pub csid: u32,
    /// Milliseconds; wraps at 2^32.
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Vec<u8>,
}

/// What a chunk stream remembers from its last header.
#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    /// Timestamp field of the last header: the delta for format 1/2, the absolute value for
    /// format 0 (format-3 messages add it, as ffmpeg and librtmp write them).
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last format 0/1/2 header carried an extended timestamp.
    extended: bool,
    /// The message being assembled; `Some` while incomplete.
    partial: Option<Vec<u8>>,
}

/// Reassembles messages from a peer's chunk stream.
#[derive(Debug)]
pub struct ChunkReader {
    buf: Vec<u8>,
    pos: usize,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStream>,
    partial_bytes: usize,
}

enum Step {
    NeedMore,
    Progress,
    Message(RtmpMessage),
}

/// A read-only cursor; every read returns `None` when the bytes are not there yet.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|s| s.first().copied())
    }
    fn be(&mut self, n: usize) -> Option<u32> {
        Some(self.take(n)?.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)))
    }
    fn le32(&mut self) -> Option<u32> {
        let s = self.take(4)?;
        Some(s.iter().rev().fold(0u32, |acc, &b| acc << 8 | u32::from(b)))
    }
}

impl Default for ChunkReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkReader {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            chunk_size: DEFAULT_CHUNK_BYTES,
            streams: HashMap::new(),
            partial_bytes: 0,
        }
    }

    /// The peer's chunk size in force.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes pushed but not yet parsed into chunks.
    pub fn buffered_input(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos.min(self.buf.len()));
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<RtmpMessage>, RtmpError> {
        loop {
            match self.read_chunk()? {
                Step::NeedMore => return Ok(None),
                Step::Progress => {}
                Step::Message(msg) if msg.type_id == SET_CHUNK_SIZE => {
                    let size = read_u32(&msg.payload, "Set Chunk Size")?;
                    // Bit 31 must be zero; 0 and anything above our maximum are refused too.
                    if size == 0 || size > CHUNK_BYTES_MAX {
                        return Err(RtmpError::BadChunkSize(size));
                    }
                    self.chunk_size = size;
                }
                Step::Message(msg) if msg.type_id == ABORT => {
                    let csid = read_u32(&msg.payload, "Abort Message")?;
                    if let Some(stream) = self.streams.get_mut(&csid) {
                        if let Some(partial) = stream.partial.take() {
                            self.partial_bytes = self.partial_bytes.saturating_sub(partial.len());
                        }
                    }
                }
                Step::Message(msg) => return Ok(Some(msg)),
            }
        }
    }

    /// Parses one chunk if it is complete in the buffer.
    fn read_chunk(&mut self) -> Result<Step, RtmpError> {
        let input = self.buf.get(self.pos..).unwrap_or_default();
        let mut cur = Cursor { data: input, at: 0 };
        let Some(b0) = cur.u8() else {
            return Ok(Step::NeedMore);
        };
        let fmt = b0 >> 6;
        let csid = match b0 & 0x3f {
            0 => match cur.u8() {
                Some(b) => 64 + u32::from(b),
                None => return Ok(Step::NeedMore),
            },
            1 => match (cur.u8(), cur.u8()) {
                (Some(lo), Some(hi)) => 64 + u32::from(lo) + 256 * u32::from(hi),
                _ => return Ok(Step::NeedMore),
            },
            n => u32::from(n),
        };
        let prev = self.streams.get(&csid);
        if fmt != 0 && prev.is_none() {
            return Err(RtmpError::NoPriorHeader { csid, fmt });
        }
        let in_progress = prev.and_then(|s| s.partial.as_ref()).map(Vec::len);
        if fmt != 3 && in_progress.is_some() {
            return Err(RtmpError::HeaderMidMessage(csid));
        }

        // The header this chunk leaves in force.
        let mut next = prev.map_or_else(ChunkStream::default, |p| ChunkStream {
            partial: None,
            timestamp: p.timestamp,
            delta: p.delta,
            length: p.length,
            type_id: p.type_id,
            stream_id: p.stream_id,
            extended: p.extended,
        });
        if fmt <= 2 {
            let Some(field) = cur.be(3) else {
                return Ok(Step::NeedMore);
            };
            if fmt <= 1 {
                let (Some(length), Some(type_id)) = (cur.be(3), cur.u8()) else {
                    return Ok(Step::NeedMore);
                };
                next.length = length;
                next.type_id = type_id;
            }
            if fmt == 0 {
                let Some(stream_id) = cur.le32() else {
                    return Ok(Step::NeedMore);
                };
                next.stream_id = stream_id;
            }
            next.extended = field == EXTENDED_TIMESTAMP;
            let value = if next.extended {
                let Some(ext) = cur.be(4) else {
                    return Ok(Step::NeedMore);
                };
                ext
            } else {
                field
            };
            next.delta = value;
            next.timestamp = if fmt == 0 {
                value
            } else {
                next.timestamp.wrapping_add(value)
            };
        } else {
            // Format 3 repeats the extended timestamp when the header had one; its value is
            // the one already known, so it is skipped.
            if next.extended && cur.take(4).is_none() {
                return Ok(Step::NeedMore);
            }
            if in_progress.is_none() {
                next.timestamp = next.timestamp.wrapping_add(next.delta);
            }
        }
        if next.length > MESSAGE_BYTES_MAX {
            return Err(RtmpError::MessageTooLarge(next.length));
        }
        let have = in_progress.unwrap_or(0);
        let remaining = (next.length as usize).saturating_sub(have);
        let piece_len = remaining.min(self.chunk_size as usize);
        let Some(piece) = cur.take(piece_len) else {
            return Ok(Step::NeedMore);
        };

        if prev.is_none() && self.streams.len() >= CHUNK_STREAMS_MAX {
            return Err(RtmpError::TooManyChunkStreams);
        }
        let complete = have.saturating_add(piece_len) >= next.length as usize;
        if !complete {
            let held = self.partial_bytes.saturating_add(piece_len);
            if held > PARTIAL_BYTES_MAX {
                return Err(RtmpError::PartialBytesExceeded);
            }
            self.partial_bytes = held;
        }

        // Commit.
        self.pos = self.pos.saturating_add(cur.at);
        let stream = self.streams.entry(csid).or_default();
        let mut payload = stream.partial.take().unwrap_or_default();
        *stream = next;
        payload.extend_from_slice(piece);
        if !complete {
            stream.partial = Some(payload);
            return Ok(Step::Progress);
        }
        self.partial_bytes = self.partial_bytes.saturating_sub(have);
        Ok(Step::Message(RtmpMessage {
            csid,
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            payload,
        }))
    }
}
