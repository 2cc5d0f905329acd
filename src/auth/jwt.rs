//! Verifying a client's room token (a JWT, LiveKit-style claims) into [`Grants`]:
//! [`JwtVerifier`], built once from the key file, and [`TokenError`], the refusal a client sees.
//!
//! Built at startup, then used on the control thread for each `connection`. Invariants: the
//! accepted algorithms are fixed by the key's kind (HS256 for a secret, RS256/PS256 for RSA,
//! ES256 for P-256, EdDSA for Ed25519), so `alg: none` and HS256-with-a-public-key are refused
//! before any signature check; time checks use the caller's clock (`now_unix`), not the
//! library's; a [`TokenError`]'s text names the kind of failure only, never the token, the key
//! or a library's message.

use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer};

use super::grants::{Grants, VideoClaims};
use super::key_file::{read_key_file, AuthSetupError, KeyMaterial};
use crate::ids::Login;

/// The longest token accepted, checked before any parsing. LiveKit-style tokens are 300–600
/// bytes and an RS256 signature adds ~350; 8 KiB is ample for any claims a server issues and
/// bounds the base64 and JSON work one `connection` can cause.
pub const TOKEN_BYTES_MAX: usize = 8 * 1024;

/// Clock skew tolerated on `exp` and `nbf` between the token issuer and this server: small,
/// because tokens are short-lived and a revoked one should stop working promptly.
pub const LEEWAY_SECS: u64 = 5;

/// The longest `sub` (login): webcall's `NAME_BYTES_MAX`, the cap on every login a client can
/// send, so the token's login fits wherever a client's would.
pub const LOGIN_BYTES_MAX: usize = 256;

/// The longest `jti`: a UUID is 36 bytes; the cap bounds each deny list entry and log line.
pub const JTI_BYTES_MAX: usize = 128;

/// The smallest RSA modulus accepted: aws-lc verifies RS256/PS256 only for 2048 bits and
/// up, so a smaller key would refuse every token; say so at startup instead.
pub const RSA_MODULUS_BITS_MIN: usize = 2048;

/// Why a token was refused. `Display` is the text the client is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Restricted access: a token is required")]
    Missing,
    #[error("Restricted access: token is too long")]
    TooLong,
    #[error("Restricted access: token is malformed")]
    Malformed,
    #[error("Restricted access: token algorithm is not allowed")]
    Algorithm,
    #[error("Restricted access: token signature is invalid")]
    Signature,
    #[error("Restricted access: token has expired")]
    Expired,
    #[error("Restricted access: token is not valid yet")]
    NotYetValid,
    #[error("Restricted access: token issuer is not accepted")]
    Issuer,
    #[error("Restricted access: token audience is not accepted")]
    Audience,
    #[error("Restricted access: token has no valid subject")]
    Subject,
    #[error("Restricted access: token was revoked")]
    Revoked,
}

impl TokenError {
    /// A short name of the failure for logs and counters.
    pub fn log_detail(&self) -> &'static str {
        match self {
            TokenError::Missing => "missing",
            TokenError::TooLong => "too_long",
            TokenError::Malformed => "malformed",
            TokenError::Algorithm => "algorithm",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Issuer => "issuer",
            TokenError::Audience => "audience",
            TokenError::Subject => "subject",
            TokenError::Revoked => "revoked",
        }
    }
}

/// The kind of key in the key file, which fixes the algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Hmac,
    Rsa,
    EcP256,
    Ed25519,
}

impl KeyKind {
    fn algorithms(self) -> &'static [Algorithm] {
        match self {
            KeyKind::Hmac => &[Algorithm::HS256],
            KeyKind::Rsa => &[Algorithm::RS256, Algorithm::PS256],
            KeyKind::EcP256 => &[Algorithm::ES256],
            KeyKind::Ed25519 => &[Algorithm::EdDSA],
        }
    }
}

/// Checks room tokens against one key (and, when configured, an issuer and an audience).
#[derive(Debug)]
pub struct JwtVerifier {
    key: DecodingKey,
    kind: KeyKind,
    /// jsonwebtoken's checks: the algorithm allow-list and the signature only; the claims are
    /// checked here (against the caller's clock).
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl JwtVerifier {
    /// Reads the key: an HS256 secret, or a PEM public key (`PUBLIC KEY` SPKI or PKCS#1
    /// `RSA PUBLIC KEY`). The kind is found by trying jsonwebtoken's RSA, EC and Ed25519 PEM
    /// readers, which classify an SPKI by its algorithm OID, so exactly one succeeds; the EC
    /// curve is told by the public point's size (65 bytes uncompressed for P-256).
    pub fn from_key_file(
        path: &Path,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, AuthSetupError> {
        let provider = CryptoProvider::try_get_default().ok_or(AuthSetupError::NoCryptoProvider)?;
        let key_error = |reason| AuthSetupError::Key {
            path: path.to_owned(),
            reason,
        };
        let (key, kind) = match read_key_file(path)? {
            KeyMaterial::Secret(secret) => {
                let key =
                    DecodingKey::from_secret(&secret).map_err(|_| key_error("unusable HS256 secret"))?;
                (key, KeyKind::Hmac)
            }
            KeyMaterial::Pem { label, text } => match label.as_str() {
                "PUBLIC KEY" | "RSA PUBLIC KEY" => public_key_from_pem(&text).map_err(key_error)?,
                label if label.contains("PRIVATE KEY") => {
                    return Err(key_error(
                        "it is a private key; the server needs the public key \
                         (e.g. `openssl pkey -in private.pem -pubout`)",
                    ))
                }
                "CERTIFICATE" => {
                    return Err(key_error(
                        "it is a certificate; give its public key (`openssl x509 -pubkey -noout`)",
                    ))
                }
                _ => return Err(key_error("the PEM block is not a public key")),
            },
        };
        if kind == KeyKind::Rsa {
            let der = key
                .try_get_as_bytes()
                .map_err(|_| key_error("not an RSA public key"))?;
            let (modulus, _exponent) = (provider.key_utils.rsa_pub_components_from_public_key)(der)
                .map_err(|_| key_error("not a valid RSA public key"))?;
            let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
            if significant.saturating_mul(8) < RSA_MODULUS_BITS_MIN {
                return Err(key_error("the RSA key is shorter than 2048 bits"));
            }
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = kind.algorithms().to_vec();
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(JwtVerifier {
            key,
            kind,
            validation,
            issuer,
            audience,
        })
    }

    /// The algorithms a token may be signed with, for the startup log.
    pub fn algorithms(&self) -> &'static [Algorithm] {
        self.kind.algorithms()
    }

    /// Checks `token` and returns what it grants. Time checks are against `now_unix` with
    /// [`LEEWAY_SECS`] either way.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Grants, TokenError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(TokenError::TooLong);
        }
        let alg = header_algorithm(token)?;
        if !self.validation.algorithms.contains(&alg) {
            return Err(TokenError::Algorithm);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| library_error(error.kind()))?
            .claims;

        let exp = claims.exp.ok_or(TokenError::Malformed)?.0;
        if now_unix >= exp.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::Expired);
        }
        if let Some(NumericDate(nbf)) = claims.nbf {
            if nbf > now_unix.saturating_add(LEEWAY_SECS) {
                return Err(TokenError::NotYetValid);
            }
        }
        if let Some(wanted) = &self.issuer {
            if claims.iss.as_ref() != Some(wanted) {
                return Err(TokenError::Issuer);
            }
        }
        if let Some(wanted) = &self.audience {
            let accepted = match &claims.aud {
                Some(Audience::One(aud)) => aud == wanted,
                Some(Audience::Many(auds)) => auds.contains(wanted),
                None => false,
            };
            if !accepted {
                return Err(TokenError::Audience);
            }
        }
        let login = match claims.sub {
            Some(sub) if valid_login(&sub) => Login::new(sub),
            _ => return Err(TokenError::Subject),
        };
        let jti = match claims.jti {
            Some(jti) if !valid_jti(&jti) => return Err(TokenError::Malformed),
            jti => jti,
        };
        Grants::from_video(login, jti, exp, claims.video).ok_or(TokenError::Malformed)
    }
}

/// Whether `login` can be a session's login: non-empty, at most [`LOGIN_BYTES_MAX`] bytes, no
/// control characters (the rule for a login a client sends).
pub(crate) fn valid_login(login: &str) -> bool {
    !login.is_empty() && login.len() <= LOGIN_BYTES_MAX && !login.chars().any(char::is_control)
}

/// Whether `jti` can be revoked: non-empty, at most [`JTI_BYTES_MAX`] bytes, no control
/// characters (so it fits one line of the deny list file).
pub(crate) fn valid_jti(jti: &str) -> bool {
    !jti.is_empty() && jti.len() <= JTI_BYTES_MAX && !jti.chars().any(char::is_control)
}

/// An RSA, EC P-256 or Ed25519 public key from PEM.
fn public_key_from_pem(pem: &[u8]) -> Result<(DecodingKey, KeyKind), &'static str> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((key, KeyKind::Rsa));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        // An uncompressed P-256 point: 0x04, x, y (32 bytes each); P-384's is 97 bytes.
        return match key.try_get_as_bytes() {
            Ok([0x04, point @ ..]) if point.len() == 64 => Ok((key, KeyKind::EcP256)),
            _ => Err("the EC key is not on the P-256 curve (only ES256 is supported)"),
        };
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return match key.try_get_as_bytes() {
            Ok(bytes) if bytes.len() == 32 => Ok((key, KeyKind::Ed25519)),
            _ => Err("the EdDSA key is not an Ed25519 key"),
        };
    }
    Err("not an RSA, EC P-256 or Ed25519 public key")
}

/// The header's `alg`, read before the library sees the token so that an algorithm it does
/// not know (`none`) is refused as an algorithm, not as a malformed token.
fn header_algorithm(token: &str) -> Result<Algorithm, TokenError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header: Header = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    Algorithm::from_str(&header.alg).map_err(|_| TokenError::Algorithm)
}

/// What jsonwebtoken's refusal means to the client. Key problems (which setup rules out) read
/// as a bad signature.
fn library_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidSubject => TokenError::Subject,
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::RsaFailedSigning
        | ErrorKind::Signing(_)
        | ErrorKind::Provider(_) => {
            tracing::warn!("room token check failed on the key itself: {kind:?}");
            TokenError::Signature
        }
        _ => TokenError::Malformed,
    }
}

/// The claims read; unknown ones are ignored. A claim of the wrong type makes the token
/// malformed.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    /// Read for its type only: LiveKit does not check it either.
    #[serde(rename = "iat")]
    _iat: Option<NumericDate>,
    jti: Option<String>,
    iss: Option<String>,
    aud: Option<Audience>,
    video: Option<VideoClaims>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// RFC 7519 NumericDate: seconds since the epoch, an integer or (rarely) a fraction.
struct NumericDate(u64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        if let Some(seconds) = number.as_u64() {
            return Ok(NumericDate(seconds));
        }
        match number.as_f64() {
            // `as` saturates at u64::MAX; the fraction is dropped.
            Some(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(NumericDate(seconds as u64)),
            _ => Err(serde::de::Error::custom("a NumericDate is a non-negative number")),
        }
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
