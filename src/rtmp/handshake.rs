//! The RTMP handshake, both roles: [`ServerHandshake`] reads C0+C1, answers S0+S1+S2 and
//! reads C2; [`ClientHandshake`] sends C0+C1, answers S1 with C2 and reads S2. The server
//! speaks both the simple handshake and the Flash digest handshake (chosen by whether C1
//! carries a valid Flash Player digest); the client speaks the simple one.
//!
//! Sans-IO: fed bytes, writes its answers into a caller's buffer; used on the control
//! thread's tokio runtime. The deadline is the I/O layer's (`limits::HANDSHAKE_DEADLINE`).
//!
//! Invariants: at most one handshake block plus the bytes of one `feed` call are buffered;
//! the version byte is checked as soon as it arrives; bytes after the last block are handed
//! back untouched as [`HandshakeStatus::Done`]'s `leftover`. C2/S2 are not verified (clients
//! vary in what they echo).

use super::digest::{self, BLOCK_BYTES, DIGEST_BYTES};
use super::RtmpError;

/// The only RTMP version spoken (6 would be RTMPE, which we do not support).
pub const RTMP_VERSION: u8 = 3;
/// Version bytes we put in a digest S1, as FMS 4.5 does; their presence tells Flash clients
/// that S1 carries a digest.
const SERVER_VERSION: [u8; 4] = [4, 5, 0, 1];

/// Whether a handshake has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeStatus {
    InProgress,
    /// Finished; `leftover` are the bytes after the handshake: the start of the chunk stream.
    Done {
        leftover: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitC0C1,
    AwaitC2,
    Done,
}

/// The server side of the handshake.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    buf: Vec<u8>,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    pub fn new() -> Self {
        Self {
            state: ServerState::AwaitC0C1,
            buf: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Consumes the peer's bytes, appending S0+S1+S2 to `out` once C1 is complete.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<HandshakeStatus, RtmpError> {
        if self.state == ServerState::Done {
            return Ok(HandshakeStatus::Done {
                leftover: bytes.to_vec(),
            });
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.state {
                ServerState::AwaitC0C1 => {
                    let Some(&version) = self.buf.first() else {
                        return Ok(HandshakeStatus::InProgress);
                    };
                    if version != RTMP_VERSION {
                        return Err(RtmpError::BadVersion(version));
                    }
                    let Some(c1) = block_at(&self.buf, 1) else {
                        return Ok(HandshakeStatus::InProgress);
                    };
                    out.push(RTMP_VERSION);
                    write_server_reply(&c1, out);
                    self.buf.drain(..1 + BLOCK_BYTES);
                    self.state = ServerState::AwaitC2;
                }
                ServerState::AwaitC2 => {
                    if self.buf.len() < BLOCK_BYTES {
                        return Ok(HandshakeStatus::InProgress);
                    }
                    self.buf.drain(..BLOCK_BYTES);
                    self.state = ServerState::Done;
                    return Ok(HandshakeStatus::Done {
                        leftover: std::mem::take(&mut self.buf),
                    });
                }
                ServerState::Done => return Ok(HandshakeStatus::Done { leftover: Vec::new() }),
            }
        }
    }
}

/// The 1536-byte block at `at` in `buf`, if complete.
fn block_at(buf: &[u8], at: usize) -> Option<[u8; BLOCK_BYTES]> {
    let slice = buf.get(at..at.checked_add(BLOCK_BYTES)?)?;
    let mut block = [0u8; BLOCK_BYTES];
    block.copy_from_slice(slice);
    Some(block)
}

/// Appends S1 and S2 answering `c1`: digest form if C1 carries a valid Flash Player digest,
/// simple form otherwise.
fn write_server_reply(c1: &[u8; BLOCK_BYTES], out: &mut Vec<u8>) {
    let mut s1 = [0u8; BLOCK_BYTES];
    digest::fill_random(&mut s1[8..]);
    s1[..4].copy_from_slice(&0u32.to_be_bytes());
    match digest::find_digest(c1, digest::PLAYER_KEY_TEXT) {
        Some((schema, c1_digest)) => {
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            digest::imprint_digest(&mut s1, schema, digest::SERVER_KEY_TEXT);
            out.extend_from_slice(&s1);
            out.extend_from_slice(&digest_s2(&c1_digest));
        }
        None => {
            s1[4..8].fill(0);
            out.extend_from_slice(&s1);
            out.extend_from_slice(c1);
        }
    }
}

/// S2 of the digest handshake: 1504 random bytes signed with a key derived from C1's digest.
pub(super) fn digest_s2(c1_digest: &[u8; DIGEST_BYTES]) -> [u8; BLOCK_BYTES] {
    let mut s2 = [0u8; BLOCK_BYTES];
    let (random, signature) = s2.split_at_mut(BLOCK_BYTES - DIGEST_BYTES);
    digest::fill_random(random);
    let key = digest::hmac_sha256(&digest::server_key_full(), &[c1_digest]);
    signature.copy_from_slice(&digest::hmac_sha256(&key, &[random]));
    s2
}

/// Which schema a digest S1 used (exposed for tests).
#[cfg(test)]
pub(super) fn s1_schema(s1: &[u8; BLOCK_BYTES]) -> Option<digest::Schema> {
    digest::find_digest(s1, digest::SERVER_KEY_TEXT).map(|(schema, _)| schema)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    AwaitS0S1,
    AwaitS2,
    Done,
}

/// The client side of the (simple) handshake.
#[derive(Debug)]
pub struct ClientHandshake {
    state: ClientState,
    buf: Vec<u8>,
}

impl Default for ClientHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientHandshake {
    pub fn new() -> Self {
        Self {
            state: ClientState::Start,
            buf: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == ClientState::Done
    }

    /// Appends C0+C1 to `out` (once; later calls append nothing).
    pub fn start(&mut self, out: &mut Vec<u8>) {
        if self.state != ClientState::Start {
            return;
        }
        let mut c1 = [0u8; BLOCK_BYTES];
        digest::fill_random(&mut c1[8..]);
        out.push(RTMP_VERSION);
        out.extend_from_slice(&c1);
        self.state = ClientState::AwaitS0S1;
    }

    /// Consumes the server's bytes, appending C2 to `out` once S1 is complete.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<HandshakeStatus, RtmpError> {
        self.start(out);
        if self.state == ClientState::Done {
            return Ok(HandshakeStatus::Done {
                leftover: bytes.to_vec(),
            });
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.state {
                ClientState::Start | ClientState::AwaitS0S1 => {
                    let Some(&version) = self.buf.first() else {
                        return Ok(HandshakeStatus::InProgress);
                    };
                    if version != RTMP_VERSION {
                        return Err(RtmpError::BadVersion(version));
                    }
                    let Some(s1) = block_at(&self.buf, 1) else {
                        return Ok(HandshakeStatus::InProgress);
                    };
                    out.extend_from_slice(&s1);
                    self.buf.drain(..1 + BLOCK_BYTES);
                    self.state = ClientState::AwaitS2;
                }
                ClientState::AwaitS2 => {
                    if self.buf.len() < BLOCK_BYTES {
                        return Ok(HandshakeStatus::InProgress);
                    }
                    self.buf.drain(..BLOCK_BYTES);
                    self.state = ClientState::Done;
                    return Ok(HandshakeStatus::Done {
                        leftover: std::mem::take(&mut self.buf),
                    });
                }
                ClientState::Done => return Ok(HandshakeStatus::Done { leftover: Vec::new() }),
            }
        }
    }
}
