//! The chunk stream after the handshake, as both roles use it: a [`ChunkReader`] and
//! [`ChunkWriter`] plus the protocol housekeeping no caller needs to see. It acknowledges
//! received bytes at the peer's window size, answers Ping Requests, answers Set Peer
//! Bandwidth with a Window Acknowledgement Size, and swallows acknowledgements.
//!
//! Sans-IO: bytes pushed in, messages pulled out, output collected in a buffer the owner
//! drains; used on the control thread's tokio runtime.
//!
//! Invariant: everything queued for the peer is in `out`, in the order it was produced; the
//! reader's invariants bound what the peer can make us hold.

use super::chunk::{ChunkReader, RtmpMessage};
use super::chunk_writer::{ChunkWriter, MessageHeader};
use super::message::{self, UserControl, CSID_CONTROL};
use super::RtmpError;

#[derive(Debug, Default)]
pub(super) struct Transport {
    reader: ChunkReader,
    writer: ChunkWriter,
    out: Vec<u8>,
    /// Bytes received through the chunk stream (wrapping as RTMP's sequence numbers do).
    received: u64,
    acked: u64,
    /// The peer's Window Acknowledgement Size; 0 until it sends one.
    peer_window: u32,
    /// The window size we last announced.
    our_window: Option<u32>,
}

impl Transport {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// The output buffer, for the handshake to write into.
    pub(super) fn out_mut(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub(super) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub(super) fn output_len(&self) -> usize {
        self.out.len()
    }

    pub(super) fn buffered_input(&self) -> usize {
        self.reader.buffered_input()
    }

    /// Takes bytes from the peer, acknowledging once they pass the peer's window.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
        self.received = self.received.saturating_add(bytes.len() as u64);
        let window = u64::from(self.peer_window);
        if window > 0 && self.received.saturating_sub(self.acked) >= window {
            self.acked = self.received;
            // The sequence number is the byte count modulo 2^32.
            self.send_control(
                message::ACKNOWLEDGEMENT,
                &message::acknowledgement(self.received as u32),
            );
        }
    }

    /// The next message for the owner; protocol housekeeping is handled here.
    pub(super) fn next_message(&mut self) -> Result<Option<RtmpMessage>, RtmpError> {
        while let Some(msg) = self.reader.next_message()? {
            match msg.type_id {
                message::ACKNOWLEDGEMENT => {}
                message::WINDOW_ACK_SIZE => {
                    self.peer_window = message::read_u32(&msg.payload, "Window Acknowledgement Size")?;
                }
                message::SET_PEER_BANDWIDTH => {
                    let size = message::read_u32(&msg.payload, "Set Peer Bandwidth")?;
                    if self.our_window != Some(size) {
                        self.announce_window(size);
                    }
                }
                message::USER_CONTROL => match UserControl::parse(&msg.payload)? {
                    UserControl::PingRequest(time) => {
                        self.send_control(message::USER_CONTROL, &UserControl::PingResponse(time).encode());
                    }
                    other => tracing::trace!(?other, "rtmp: user control event"),
                },
                _ => return Ok(Some(msg)),
            }
        }
        Ok(None)
    }

    /// Queues one message. Our own messages never exceed the length field; if one did, it is
    /// dropped with a warning rather than sent corrupt.
    pub(super) fn send(&mut self, header: MessageHeader, payload: &[u8]) {
        if let Err(err) = self.writer.write(header, payload, &mut self.out) {
            tracing::warn!(%err, type_id = header.type_id, "rtmp: outgoing message dropped");
        }
    }

    /// Queues a protocol control message (chunk stream 2, message stream 0).
    pub(super) fn send_control(&mut self, type_id: u8, payload: &[u8]) {
        let header = MessageHeader {
            csid: CSID_CONTROL,
            timestamp: 0,
            type_id,
            stream_id: 0,
        };
        self.send(header, payload);
    }

    /// Announces our Window Acknowledgement Size.
    pub(super) fn announce_window(&mut self, size: u32) {
        self.our_window = Some(size);
        self.send_control(message::WINDOW_ACK_SIZE, &message::window_ack_size(size));
    }

    /// Announces and starts using our chunk size.
    /// The chunk size we send with.
    pub(super) fn our_chunk_size(&self) -> u32 {
        self.writer.chunk_size()
    }

    pub(super) fn set_our_chunk_size(&mut self, size: u32) {
        self.send_control(message::SET_CHUNK_SIZE, &message::set_chunk_size(size));
        self.writer.set_chunk_size(size);
    }
}
