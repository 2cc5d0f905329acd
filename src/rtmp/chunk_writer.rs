//! Chunk stream serialization: [`ChunkWriter`] splits our outgoing messages into chunks of
//! our chunk size. Every message starts with a format-0 chunk (full header, so a peer never
//! depends on what it remembers of earlier messages); continuation chunks are format 3 and
//! repeat the extended timestamp when the header used one.
//!
//! Sans-IO: appends bytes to a caller's buffer; used on the control thread's tokio runtime.
//!
//! Invariants: the chunk size is always within 1..=`CHUNK_BYTES_MAX`; a message longer than
//! the 24-bit length field allows is refused rather than truncated.

use super::chunk::{DEFAULT_CHUNK_BYTES, EXTENDED_TIMESTAMP};
use super::limits::CHUNK_BYTES_MAX;
use super::RtmpError;

/// Largest message length the 3-byte length field can carry.
const LENGTH_FIELD_MAX: usize = 0xFF_FFFF;
/// Chunk stream ids the basic header can express (0 and 1 select the longer forms).
const CSID_MIN: u32 = 2;
const CSID_MAX: u32 = 65_599;

/// The header of one outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    pub csid: u32,
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
}

/// Serializes messages into chunks.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: u32,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_BYTES,
        }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the chunk size for the following messages (clamped to 1..=`CHUNK_BYTES_MAX`).
    /// The caller sends Set Chunk Size first.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, CHUNK_BYTES_MAX);
    }

    /// Appends `payload` as chunks to `out`.
    pub fn write(&self, header: MessageHeader, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtmpError> {
        if payload.len() > LENGTH_FIELD_MAX {
            return Err(RtmpError::MessageTooLarge(
                u32::try_from(payload.len()).unwrap_or(u32::MAX),
            ));
        }
        let csid = header.csid.clamp(CSID_MIN, CSID_MAX);
        let extended = header.timestamp >= EXTENDED_TIMESTAMP;
        let field = if extended {
            EXTENDED_TIMESTAMP
        } else {
            header.timestamp
        };
        let length = payload.len() as u32;

        write_basic_header(0, csid, out);
        out.extend_from_slice(&field.to_be_bytes()[1..]);
        out.extend_from_slice(&length.to_be_bytes()[1..]);
        out.push(header.type_id);
        out.extend_from_slice(&header.stream_id.to_le_bytes());
        if extended {
            out.extend_from_slice(&header.timestamp.to_be_bytes());
        }
        let mut chunks = payload.chunks(self.chunk_size as usize);
        out.extend_from_slice(chunks.next().unwrap_or_default());
        for chunk in chunks {
            write_basic_header(3, csid, out);
            if extended {
                out.extend_from_slice(&header.timestamp.to_be_bytes());
            }
            out.extend_from_slice(chunk);
        }
        Ok(())
    }
}

/// The 1-, 2- or 3-byte basic header for `csid` (already within `CSID_MIN..=CSID_MAX`).
fn write_basic_header(fmt: u8, csid: u32, out: &mut Vec<u8>) {
    let fmt_bits = fmt << 6;
    match csid {
        0..=63 => out.push(fmt_bits | csid as u8),
        64..=319 => out.extend_from_slice(&[fmt_bits, (csid - 64) as u8]),
        _ => {
            let rest = csid.saturating_sub(64);
            out.extend_from_slice(&[fmt_bits | 1, (rest & 0xFF) as u8, (rest >> 8) as u8]);
        }
    }
}
