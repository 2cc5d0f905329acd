//! HMAC-SHA256 and the Flash handshake digests: where a 1536-byte C1/S1 block carries its
//! 32-byte digest (schema 0 or 1), how the digest is computed and checked, and random filler.
//! Sans-IO pure functions (used by the handshake on the control thread's tokio runtime).
//!
//! Invariants: a block is always exactly [`BLOCK_BYTES`] long, and digest offsets are reduced
//! modulo 728, so every slice taken here is in bounds whatever the peer's bytes; slices are
//! still taken with `get` so that stays true if the arithmetic is ever changed.

use sha2::{Digest, Sha256};

/// Size of C1, S1, C2 and S2.
pub const BLOCK_BYTES: usize = 1536;
/// Size of an HMAC-SHA256 digest.
pub const DIGEST_BYTES: usize = 32;

/// The shared 32-byte tail of both Flash keys.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E,
    0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
/// Prefix of the Flash Player key: the key that signs C1.
pub const PLAYER_KEY_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
/// Prefix of the Flash Media Server key: the key that signs S1.
pub const SERVER_KEY_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// The full 68-byte server key (text + tail), which derives the key that signs S2.
pub fn server_key_full() -> [u8; 68] {
    let mut key = [0u8; 68];
    key[..36].copy_from_slice(SERVER_KEY_TEXT);
    key[36..].copy_from_slice(&KEY_TAIL);
    key
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_BYTES] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    if key.len() > BLOCK {
        padded[..DIGEST_BYTES].copy_from_slice(&Sha256::digest(key));
    } else if let Some(dst) = padded.get_mut(..key.len()) {
        dst.copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(padded.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(padded.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(&outer.finalize());
    out
}

/// Where a block keeps its digest: schema 0 has the offset bytes at 8..12, schema 1 at
/// 772..776; the digest lies at (sum of those bytes % 728) past the end of the offset bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Zero,
    One,
}

impl Schema {
    fn offset_base(self) -> usize {
        match self {
            Schema::Zero => 8,
            Schema::One => 772,
        }
    }
}

/// Byte offset of the digest in `block` under `schema`.
pub fn digest_offset(block: &[u8; BLOCK_BYTES], schema: Schema) -> usize {
    let base = schema.offset_base();
    let sum: usize = block
        .get(base..base + 4)
        .unwrap_or_default()
        .iter()
        .map(|&b| usize::from(b))
        .sum();
    sum % 728 + base + 4
}

/// HMAC of `block` without the 32 bytes at `offset`.
fn digest_at(block: &[u8; BLOCK_BYTES], offset: usize, key: &[u8]) -> [u8; DIGEST_BYTES] {
    let before = block.get(..offset).unwrap_or_default();
    let after = block.get(offset + DIGEST_BYTES..).unwrap_or_default();
    hmac_sha256(key, &[before, after])
}

/// The block's digest and schema if it carries one valid under `key` (schema 0 tried first).
pub fn find_digest(block: &[u8; BLOCK_BYTES], key: &[u8]) -> Option<(Schema, [u8; DIGEST_BYTES])> {
    [Schema::Zero, Schema::One].into_iter().find_map(|schema| {
        let offset = digest_offset(block, schema);
        let expected = digest_at(block, offset, key);
        let present = block.get(offset..offset + DIGEST_BYTES)?;
        (present == expected).then_some((schema, expected))
    })
}

/// Writes the digest of `block` under `key` at its `schema` position; returns the digest.
pub fn imprint_digest(block: &mut [u8; BLOCK_BYTES], schema: Schema, key: &[u8]) -> [u8; DIGEST_BYTES] {
    let offset = digest_offset(block, schema);
    let digest = digest_at(block, offset, key);
    if let Some(dst) = block.get_mut(offset..offset + DIGEST_BYTES) {
        dst.copy_from_slice(&digest);
    }
    digest
}

/// Fills `buf` with unpredictable (not cryptographic) bytes: xorshift64* seeded from a v4
/// UUID. The handshake's random fields only need to differ between connections.
pub fn fill_random(buf: &mut [u8]) {
    let seed = uuid::Uuid::new_v4().as_u128();
    let mut state = ((seed >> 64) as u64 ^ seed as u64) | 1;
    for chunk in buf.chunks_mut(8) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_hashes_long_keys() {
        // RFC 4231 test case 6: a 131-byte key.
        let key = [0xaau8; 131];
        let mac = hmac_sha256(&key, &[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
