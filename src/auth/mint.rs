//! Making room tokens (`webcall token ...`): [`mint`] signs LiveKit-style claims with the key
//! file, and [`parse_ttl`] reads a lifetime like `30m`.
//!
//! Run from the command line (the main thread of the `token` command), or on the control
//! thread by a future REST endpoint. Invariants: the algorithm follows from the key file
//! (HS256 secret, RS256 RSA, ES256 P-256, EdDSA Ed25519), so a token minted with a key
//! verifies with the same file (secret) or its public key; a token this makes always passes
//! [`JwtVerifier::verify`](super::JwtVerifier::verify) until its `exp` (valid login, room and
//! `jti`, `roomJoin: true`).

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::grants::ROOM_BYTES_MAX;
use super::jwt::valid_login;
use super::key_file::{pem_contents, read_key_file, AuthSetupError, KeyMaterial};

/// What the token grants and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// A room name, or `*` for any room.
    pub room: String,
    pub login: String,
    pub publish: bool,
    pub subscribe: bool,
    pub chat: bool,
    pub record: bool,
    pub admin: bool,
    pub hidden: bool,
    pub ttl_secs: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    video: Video<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Video<'a> {
    room: &'a str,
    room_join: bool,
    can_publish: bool,
    can_subscribe: bool,
    can_publish_data: bool,
    room_record: bool,
    room_admin: bool,
    hidden: bool,
}

/// Signs a token for `request`, issued at `now_unix`, with the key in `key_file`.
pub fn mint(key_file: &Path, request: &TokenRequest, now_unix: u64) -> Result<String, AuthSetupError> {
    let refuse = |reason| Err(AuthSetupError::Request { reason });
    if !valid_login(&request.login) {
        return refuse("the login must be 1 to 256 bytes without control characters");
    }
    let room = request.room.as_str();
    if room.is_empty() || room.len() > ROOM_BYTES_MAX || room.chars().any(char::is_control) {
        return refuse("the room must be `*` or a name of 1 to 256 bytes without control characters");
    }
    if request.ttl_secs == 0 {
        return refuse("the lifetime must be at least one second");
    }
    let Some(exp) = now_unix.checked_add(request.ttl_secs) else {
        return refuse("the lifetime is too long");
    };
    let (key, alg) = encoding_key(key_file)?;
    let claims = Claims {
        sub: &request.login,
        iat: now_unix,
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
        iss: request.issuer.as_deref(),
        aud: request.audience.as_deref(),
        video: Video {
            room,
            room_join: true,
            can_publish: request.publish,
            can_subscribe: request.subscribe,
            can_publish_data: request.chat,
            room_record: request.record,
            room_admin: request.admin,
            hidden: request.hidden,
        },
    };
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).map_err(|_| AuthSetupError::Key {
        path: key_file.to_owned(),
        reason: match alg {
            Algorithm::RS256 => "signing with the RSA key failed (is it at least 2048 bits?)",
            Algorithm::ES256 => "signing failed: not an EC P-256 private key",
            Algorithm::EdDSA => "signing failed: not an Ed25519 private key",
            _ => "signing failed",
        },
    })
}

/// The signing key in `path` and its algorithm.
fn encoding_key(path: &Path) -> Result<(EncodingKey, Algorithm), AuthSetupError> {
    let key_error = |reason| AuthSetupError::Key {
        path: path.to_owned(),
        reason,
    };
    match read_key_file(path)? {
        KeyMaterial::Secret(secret) => {
            let key = EncodingKey::from_secret(&secret).map_err(|_| key_error("unusable HS256 secret"))?;
            Ok((key, Algorithm::HS256))
        }
        KeyMaterial::Pem { label, text } => match label.as_str() {
            "PRIVATE KEY" => {
                // jsonwebtoken classifies PKCS#8 by its algorithm OID: one reader succeeds.
                if let Ok(key) = EncodingKey::from_rsa_pem(&text) {
                    Ok((key, Algorithm::RS256))
                } else if let Ok(key) = EncodingKey::from_ec_pem(&text) {
                    Ok((key, Algorithm::ES256))
                } else if let Ok(key) = EncodingKey::from_ed_pem(&text) {
                    Ok((key, Algorithm::EdDSA))
                } else {
                    Err(key_error("not an RSA, EC P-256 or Ed25519 private key"))
                }
            }
            "RSA PRIVATE KEY" => EncodingKey::from_rsa_pem(&text)
                .map(|key| (key, Algorithm::RS256))
                .map_err(|_| key_error("not a valid RSA private key")),
            "EC PRIVATE KEY" => pem_contents(&text, "EC PRIVATE KEY")
                .and_then(|sec1| p256_sec1_to_pkcs8(&sec1))
                .map(|pkcs8| (EncodingKey::from_ec_der(&pkcs8), Algorithm::ES256))
                .ok_or(key_error("not a readable EC private key (an encrypted key?)")),
            label if label.contains("PUBLIC KEY") => Err(key_error(
                "it is a public key; tokens are signed with the private key",
            )),
            _ => Err(key_error("the PEM block is not a private key")),
        },
    }
}

/// PKCS#8's AlgorithmIdentifier for an EC P-256 key: SEQUENCE { id-ecPublicKey
/// (1.2.840.10045.2.1), prime256v1 (1.2.840.10045.3.1.7) }.
const P256_ALGORITHM_DER: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE,
    0x3D, 0x03, 0x01, 0x07,
];

/// Wraps an RFC 5915 `ECPrivateKey` (OpenSSL's `EC PRIVATE KEY`) in PKCS#8 for a P-256 key, the
/// form jsonwebtoken signs with: SEQUENCE { INTEGER 0, algorithm, OCTET STRING { key } }. A key
/// on another curve fails later, when aws-lc parses it against the P-256 identifier.
fn p256_sec1_to_pkcs8(sec1: &[u8]) -> Option<Vec<u8>> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(P256_ALGORITHM_DER);
    body.push(0x04);
    der_length(sec1.len(), &mut body)?;
    body.extend_from_slice(sec1);
    let mut out = vec![0x30];
    der_length(body.len(), &mut out)?;
    out.extend_from_slice(&body);
    Some(out)
}

/// Appends a DER length (short form, or long form of one or two bytes: a key is far smaller).
fn der_length(len: usize, out: &mut Vec<u8>) -> Option<()> {
    if let Ok(short) = u8::try_from(len) {
        if short < 0x80 {
            out.push(short);
        } else {
            out.extend_from_slice(&[0x81, short]);
        }
        return Some(());
    }
    let [high, low] = u16::try_from(len).ok()?.to_be_bytes();
    out.extend_from_slice(&[0x82, high, low]);
    Some(())
}

/// A lifetime: plain seconds (`3600`) or a number with a unit, `s`, `m`, `h` or `d` (`90s`,
/// `30m`, `1h`, `7d`). Zero is refused.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid lifetime {text:?}: use seconds or a number followed by s, m, h or d");
    let (digits, unit_secs) = match text.char_indices().last() {
        Some((at, 's')) => (text.get(..at), 1),
        Some((at, 'm')) => (text.get(..at), 60),
        Some((at, 'h')) => (text.get(..at), 3600),
        Some((at, 'd')) => (text.get(..at), 86_400),
        _ => (Some(text), 1),
    };
    let digits = digits
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(invalid)?;
    let count: u64 = digits.parse().map_err(|_| invalid())?;
    let secs = count
        .checked_mul(unit_secs)
        .ok_or_else(|| format!("lifetime {text:?} is too long"))?;
    if secs == 0 {
        return Err(format!("lifetime {text:?} must be at least one second"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert_eq!(parse_ttl("3600"), Ok(3600));
        for bad in [
            "",
            "s",
            "1x",
            "-1h",
            "1.5h",
            " 1h",
            "h1",
            "0",
            "0m",
            "99999999999999999999d",
            "1hh",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_ttl(&format!("{}d", u64::MAX / 86_400 + 1)).is_err());
    }

    #[test]
    fn der_lengths() {
        let mut out = Vec::new();
        assert_eq!(der_length(0x7f, &mut out), Some(()));
        assert_eq!(der_length(0x80, &mut out), Some(()));
        assert_eq!(der_length(0x1234, &mut out), Some(()));
        assert_eq!(out, vec![0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
        assert_eq!(der_length(0x10000, &mut out), None);
    }
}
