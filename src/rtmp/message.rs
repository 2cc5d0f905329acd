//! RTMP message vocabulary: message type ids, the chunk stream ids we send on, User Control
//! events and the payloads of protocol control messages (Set Chunk Size, Abort,
//! Acknowledgement, Window Acknowledgement Size, Set Peer Bandwidth).
//!
//! Sans-IO pure functions and types (used on the control thread's tokio runtime).
//!
//! Invariant: parsing never reads past a payload; short payloads are `RtmpError::BadMessage`.

use super::RtmpError;

pub const SET_CHUNK_SIZE: u8 = 1;
pub const ABORT: u8 = 2;
pub const ACKNOWLEDGEMENT: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const SET_PEER_BANDWIDTH: u8 = 6;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
/// AMF3 data message: a leading format byte (0), then AMF0 as we accept it.
pub const DATA_AMF3: u8 = 15;
/// AMF3 command message: a leading format byte (0), then AMF0 as we accept it.
pub const COMMAND_AMF3: u8 = 17;
pub const DATA_AMF0: u8 = 18;
pub const COMMAND_AMF0: u8 = 20;
pub const AGGREGATE: u8 = 22;

/// Chunk stream ids we send on: protocol control must use 2; the rest follow FMS's habit of
/// one chunk stream per kind so that a large video message never holds up a command.
pub const CSID_CONTROL: u32 = 2;
pub const CSID_COMMAND: u32 = 3;
pub const CSID_AUDIO: u32 = 4;
pub const CSID_DATA: u32 = 5;
pub const CSID_VIDEO: u32 = 6;

/// Set Peer Bandwidth limit type "dynamic".
pub const BANDWIDTH_LIMIT_DYNAMIC: u8 = 2;

/// The big-endian u32 at the start of a control payload.
pub fn read_u32(payload: &[u8], kind: &'static str) -> Result<u32, RtmpError> {
    payload
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(RtmpError::BadMessage {
            kind,
            reason: "shorter than 4 bytes",
        })
}

/// Set Chunk Size payload (bit 31 is always zero).
pub fn set_chunk_size(size: u32) -> Vec<u8> {
    (size & 0x7FFF_FFFF).to_be_bytes().to_vec()
}

/// Abort Message payload: the chunk stream whose partial message to drop.
pub fn abort(csid: u32) -> Vec<u8> {
    csid.to_be_bytes().to_vec()
}

/// Acknowledgement payload: bytes received so far (wrapping).
pub fn acknowledgement(sequence: u32) -> Vec<u8> {
    sequence.to_be_bytes().to_vec()
}

/// Window Acknowledgement Size payload.
pub fn window_ack_size(size: u32) -> Vec<u8> {
    size.to_be_bytes().to_vec()
}

/// Set Peer Bandwidth payload.
pub fn set_peer_bandwidth(size: u32, limit_type: u8) -> Vec<u8> {
    let mut payload = size.to_be_bytes().to_vec();
    payload.push(limit_type);
    payload
}

/// A User Control message's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    StreamBegin(u32),
    StreamEof(u32),
    StreamDry(u32),
    SetBufferLength {
        stream_id: u32,
        buffer_ms: u32,
    },
    StreamIsRecorded(u32),
    PingRequest(u32),
    PingResponse(u32),
    /// An event type we do not interpret.
    Other(u16),
}

impl UserControl {
    pub fn parse(payload: &[u8]) -> Result<Self, RtmpError> {
        const KIND: &str = "User Control";
        let (Some(&hi), Some(&lo)) = (payload.first(), payload.get(1)) else {
            return Err(RtmpError::BadMessage {
                kind: KIND,
                reason: "no event type",
            });
        };
        let event = u16::from_be_bytes([hi, lo]);
        let data = payload.get(2..).unwrap_or_default();
        let first = || read_u32(data, KIND);
        Ok(match event {
            0 => Self::StreamBegin(first()?),
            1 => Self::StreamEof(first()?),
            2 => Self::StreamDry(first()?),
            3 => Self::SetBufferLength {
                stream_id: first()?,
                buffer_ms: read_u32(data.get(4..).unwrap_or_default(), KIND)?,
            },
            4 => Self::StreamIsRecorded(first()?),
            6 => Self::PingRequest(first()?),
            7 => Self::PingResponse(first()?),
            other => Self::Other(other),
        })
    }

    /// The payload; [`UserControl::Other`] encodes as its bare event type.
    pub fn encode(&self) -> Vec<u8> {
        let (event, a, b): (u16, Option<u32>, Option<u32>) = match *self {
            Self::StreamBegin(id) => (0, Some(id), None),
            Self::StreamEof(id) => (1, Some(id), None),
            Self::StreamDry(id) => (2, Some(id), None),
            Self::SetBufferLength { stream_id, buffer_ms } => (3, Some(stream_id), Some(buffer_ms)),
            Self::StreamIsRecorded(id) => (4, Some(id), None),
            Self::PingRequest(t) => (6, Some(t), None),
            Self::PingResponse(t) => (7, Some(t), None),
            Self::Other(event) => (event, None, None),
        };
        let mut payload = event.to_be_bytes().to_vec();
        for word in [a, b].into_iter().flatten() {
            payload.extend_from_slice(&word.to_be_bytes());
        }
        payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trips_and_rejects_short_payloads() {
        for event in [
            UserControl::StreamBegin(1),
            UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000,
            },
            UserControl::PingRequest(42),
            UserControl::PingResponse(7),
        ] {
            assert_eq!(UserControl::parse(&event.encode()), Ok(event));
        }
        assert!(UserControl::parse(&[]).is_err());
        assert!(UserControl::parse(&[0, 6, 1]).is_err());
        assert!(UserControl::parse(&[0, 3, 0, 0, 0, 1]).is_err());
        assert_eq!(UserControl::parse(&[0, 31]), Ok(UserControl::Other(31)));
    }

    #[test]
    fn control_payloads() {
        assert_eq!(set_chunk_size(4096), vec![0, 0, 16, 0]);
        assert_eq!(set_peer_bandwidth(2_500_000, BANDWIDTH_LIMIT_DYNAMIC).len(), 5);
        assert_eq!(
            read_u32(&[0, 0, 1], "x"),
            Err(RtmpError::BadMessage {
                kind: "x",
                reason: "shorter than 4 bytes"
            })
        );
    }
}
