//! Signing a hook call: `Authorization: HMAC-SHA256 <lowercase hex>` over the exact body
//! bytes sent, keyed by the configured secret, so the backend can tell the call came from us.
//!
//! Thread: whichever awaits the call, in webcall the control thread (tokio current-thread).
//!
//! Invariants: the secret is kept as given, at setup; it is never logged (the `Debug` output
//! names only the algorithm). The HMAC is the one the RTMP handshake uses.

use crate::rtmp::hmac_sha256;

/// The scheme word of the `Authorization` header.
pub(super) const SIGNATURE_SCHEME: &str = "HMAC-SHA256";

pub(super) struct Signer {
    secret: Vec<u8>,
}

impl Signer {
    pub(super) fn new(secret: &[u8]) -> Self {
        Signer {
            secret: secret.to_vec(),
        }
    }

    /// The lowercase hex HMAC-SHA256 of `body`.
    pub(super) fn signature_hex(&self, body: &[u8]) -> String {
        hex_lower(&hmac_sha256(&self.secret, &[body]))
    }

    /// The `Authorization` header's value for `body`.
    pub(super) fn header_value(&self, body: &[u8]) -> String {
        format!("{SIGNATURE_SCHEME} {}", self.signature_hex(body))
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(HMAC-SHA256)")
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4231_case_2() {
        let signer = Signer::new(b"Jefe");
        assert_eq!(
            signer.signature_hex(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn header_names_the_scheme() {
        let value = Signer::new(b"Jefe").header_value(b"what do ya want for nothing?");
        assert_eq!(
            value,
            "HMAC-SHA256 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex_lower(&[]), "");
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", Signer::new(b"secret")), "Signer(HMAC-SHA256)");
    }
}
