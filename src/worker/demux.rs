//! Which peer a datagram belongs to: by remote address, then (for a STUN binding request from an
//! address not seen yet) by the ufrag in its USERNAME. Owned by one worker thread.
//!
//! Invariants: no linear scans; an address is learned only when the peer's own `Rtc` answered a
//! check from it (so an unauthenticated packet never binds an address); removing a peer
//! removes every key that points at it.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::ids::PeerId;

const STUN_HEADER_BYTES: usize = 20;
const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const STUN_BINDING_REQUEST: u16 = 0x0001;
const STUN_ATTR_USERNAME: u16 = 0x0006;
/// RFC 8489 caps USERNAME at 513 bytes; anything longer is not a real check.
const STUN_USERNAME_BYTES_MAX: usize = 513;

#[derive(Default)]
pub struct Demux {
    by_addr: HashMap<SocketAddr, PeerId>,
    by_ufrag: HashMap<String, PeerId>,
    keys_of: HashMap<PeerId, PeerKeys>,
}

/// Every key that points at one peer, so removal touches only those.
#[derive(Default)]
struct PeerKeys {
    ufrag: String,
    addrs: Vec<SocketAddr>,
}

/// A peer has at most a few candidate pairs checked at once (host, srflx, mDNS resolutions).
const ADDRS_PER_PEER_MAX: usize = 8;

impl Demux {
    pub fn add_peer(&mut self, peer: PeerId, local_ufrag: &str) {
        self.by_ufrag.insert(local_ufrag.to_owned(), peer);
        self.keys_of.insert(
            peer,
            PeerKeys {
                ufrag: local_ufrag.to_owned(),
                addrs: Vec::new(),
            },
        );
    }

    pub fn remove_peer(&mut self, peer: PeerId) {
        let Some(keys) = self.keys_of.remove(&peer) else {
            return;
        };
        if self.by_ufrag.get(&keys.ufrag) == Some(&peer) {
            self.by_ufrag.remove(&keys.ufrag);
        }
        for addr in keys.addrs {
            if self.by_addr.get(&addr) == Some(&peer) {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// The peer's `Rtc` sent to `addr`: it validated a check from there, so route that address to it.
    pub fn learn_addr(&mut self, peer: PeerId, addr: SocketAddr) {
        if self.by_addr.get(&addr) == Some(&peer) {
            return;
        }
        let Some(addrs) = self.keys_of.get_mut(&peer).map(|k| &mut k.addrs) else {
            return;
        };
        if addrs.len() >= ADDRS_PER_PEER_MAX {
            let oldest = addrs.remove(0);
            if self.by_addr.get(&oldest) == Some(&peer) {
                self.by_addr.remove(&oldest);
            }
        }
        addrs.push(addr);
        if let Some(previous) = self.by_addr.insert(addr, peer) {
            if let Some(keys) = self.keys_of.get_mut(&previous) {
                keys.addrs.retain(|a| *a != addr);
            }
        }
    }

    pub fn route(&self, source: SocketAddr, datagram: &[u8]) -> Option<PeerId> {
        if let Some(peer) = self.by_addr.get(&source) {
            return Some(*peer);
        }
        let ufrag = stun_request_local_ufrag(datagram)?;
        self.by_ufrag.get(ufrag).copied()
    }

    pub fn peers(&self) -> usize {
        self.keys_of.len()
    }
}

/// The recipient's ufrag (ours) from a STUN binding request's USERNAME `ours:theirs`.
pub fn stun_request_local_ufrag(datagram: &[u8]) -> Option<&str> {
    let header = datagram.get(..STUN_HEADER_BYTES)?;
    let msg_type = u16::from_be_bytes([*header.first()?, *header.get(1)?]);
    if msg_type != STUN_BINDING_REQUEST || header.get(4..8)? != STUN_MAGIC_COOKIE {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([*header.get(2)?, *header.get(3)?]));
    let body = datagram.get(STUN_HEADER_BYTES..STUN_HEADER_BYTES.checked_add(body_len)?)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let attr_type = u16::from_be_bytes([rest[0], rest[1]]);
        let attr_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + attr_len)?;
        if attr_type == STUN_ATTR_USERNAME {
            if attr_len > STUN_USERNAME_BYTES_MAX {
                return None;
            }
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        let padded = (attr_len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let padded = (username.len() + 3) & !3;
        let mut attrs = vec![0x00, 0x06];
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        attrs.resize(4 + padded, 0);
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&STUN_MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn finds_the_local_ufrag() {
        assert_eq!(
            stun_request_local_ufrag(&binding_request(b"srv1:cli1")),
            Some("srv1")
        );
    }

    #[test]
    fn truncated_and_random_bytes_yield_nothing() {
        let full = binding_request(b"srv1:cli1");
        for cut in 0..full.len() {
            let _ = stun_request_local_ufrag(&full[..cut]);
        }
        assert_eq!(stun_request_local_ufrag(&full[..full.len() - 3]), None);
        let mut lying = full.clone();
        lying[22] = 0xff; // attribute length far past the end
        assert_eq!(stun_request_local_ufrag(&lying), None);
        let mut seed = 0x1234_5678_u32;
        for _ in 0..10_000 {
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = stun_request_local_ufrag(&bytes);
        }
    }

    #[test]
    fn routes_by_ufrag_then_learned_address() {
        let mut demux = Demux::default();
        let peer = PeerId(1);
        demux.add_peer(peer, "srv1");
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(demux.route(addr, &binding_request(b"srv1:x")), Some(peer));
        assert_eq!(demux.route(addr, b"\x80\x60rtp"), None);
        demux.learn_addr(peer, addr);
        assert_eq!(demux.route(addr, b"\x80\x60rtp"), Some(peer));
        demux.remove_peer(peer);
        assert_eq!(demux.route(addr, b"\x80\x60rtp"), None);
        assert_eq!(demux.route(addr, &binding_request(b"srv1:x")), None);
    }
}
