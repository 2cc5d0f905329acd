//! Reading a key file (`--auth-key-file`, the `token` command's `--key-file`) into either an
//! HS256 secret or a PEM block, and [`AuthSetupError`], the error of every auth setup step.
//!
//! Used on the control thread at startup (and by the `token` command); never on a client's
//! input. Invariants: a secret is the file's bytes with surrounding ASCII whitespace trimmed
//! and is at least [`SECRET_BYTES_MIN`] bytes; a file is PEM when its trimmed text starts with
//! `-----BEGIN`; no error message carries key material, only the path and a reason.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// The shortest HS256 secret accepted: RFC 7518 §3.2 requires a key at least as long as the
/// hash output (256 bits); a shorter one can be brute-forced from a single token.
pub const SECRET_BYTES_MIN: usize = 32;

/// The largest key file read. A PEM public or private key is under 4 KiB even for RSA-4096;
/// the cap keeps a mistyped path (a log, `/dev/zero`) from being read whole into memory.
pub const KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

/// A problem with a key file or the deny list file, found before any client is served. The
/// message names the file and the reason, never the key.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("cannot read the key file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the key file {} is larger than {KEY_FILE_BYTES_MAX} bytes; is it the right file?", path.display())]
    TooLarge { path: PathBuf },
    #[error("the key file {} is empty", path.display())]
    EmptySecret { path: PathBuf },
    #[error(
        "the HS256 secret in {} is {len} bytes; it must be at least {SECRET_BYTES_MIN} bytes \
         (RFC 7518: no shorter than the SHA-256 output), e.g. `openssl rand -hex 32`",
        path.display()
    )]
    SecretTooShort { path: PathBuf, len: usize },
    #[error("the key in {} cannot be used: {reason}", path.display())]
    Key { path: PathBuf, reason: &'static str },
    #[error("cannot read the deny list {}: {source}", path.display())]
    DenyList { path: PathBuf, source: std::io::Error },
    #[error("cannot make a token: {reason}")]
    Request { reason: &'static str },
    #[error("no JWT crypto provider is built in (jsonwebtoken needs its aws_lc_rs feature)")]
    NoCryptoProvider,
}

/// What a key file holds.
pub(crate) enum KeyMaterial {
    /// An HS256 secret, trimmed and long enough.
    Secret(Vec<u8>),
    /// A PEM file: its first block's label (`PUBLIC KEY`, `EC PRIVATE KEY`, ...) and the whole
    /// text, as the PEM parsers want it.
    Pem { label: String, text: Vec<u8> },
}

/// Reads and classifies `path`.
pub(crate) fn read_key_file(path: &Path) -> Result<KeyMaterial, AuthSetupError> {
    let read_error = |source| AuthSetupError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // One byte past the cap tells a file at the cap from a larger one.
    file.take(KEY_FILE_BYTES_MAX.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > KEY_FILE_BYTES_MAX {
        return Err(AuthSetupError::TooLarge {
            path: path.to_owned(),
        });
    }
    let trimmed = bytes.trim_ascii();
    if trimmed.starts_with(b"-----BEGIN") {
        let label = pem_label(trimmed)
            .ok_or(AuthSetupError::Key {
                path: path.to_owned(),
                reason: "the PEM header line is malformed",
            })?
            .to_owned();
        return Ok(KeyMaterial::Pem {
            label,
            text: trimmed.to_vec(),
        });
    }
    if trimmed.is_empty() {
        return Err(AuthSetupError::EmptySecret {
            path: path.to_owned(),
        });
    }
    if trimmed.len() < SECRET_BYTES_MIN {
        return Err(AuthSetupError::SecretTooShort {
            path: path.to_owned(),
            len: trimmed.len(),
        });
    }
    Ok(KeyMaterial::Secret(trimmed.to_vec()))
}

/// The label of the first PEM block: `LABEL` in `-----BEGIN LABEL-----`.
fn pem_label(text: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(text).ok()?;
    let rest = text.strip_prefix("-----BEGIN ")?;
    let end = rest.find("-----")?;
    let label = rest.get(..end)?;
    (!label.is_empty() && !label.contains('\n')).then_some(label)
}

/// The DER bytes of the PEM block labelled `label` (its base64 body, whitespace ignored);
/// `None` when the block is missing, has headers (an encrypted key) or bad base64.
pub(crate) fn pem_contents(text: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?.checked_add(begin.len())?;
    let body = text.get(start..)?;
    let body = body.get(..body.find(&end)?)?;
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(base64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_keys::TempDir;

    #[test]
    fn secret_is_trimmed_of_surrounding_whitespace() {
        let dir = TempDir::new();
        let secret = "a".repeat(SECRET_BYTES_MIN);
        let path = dir.write("secret", format!("  \n{secret}\r\n\t").as_bytes());
        match read_key_file(&path) {
            Ok(KeyMaterial::Secret(bytes)) => assert_eq!(bytes, secret.as_bytes()),
            _ => panic!("expected a secret"),
        }
    }

    #[test]
    fn short_and_empty_secrets_are_refused_with_the_reason() {
        let dir = TempDir::new();
        let short = dir.write(
            "short",
            format!("{}\n", "a".repeat(SECRET_BYTES_MIN - 1)).as_bytes(),
        );
        let message = read_key_file(&short)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("at least 32 bytes"), "{message}");
        assert!(message.contains("31 bytes"), "{message}");
        assert!(!message.contains("aaaa"), "the secret leaked: {message}");
        let empty = dir.write("empty", b" \n\n");
        assert!(matches!(
            read_key_file(&empty),
            Err(AuthSetupError::EmptySecret { .. })
        ));
    }

    #[test]
    fn missing_and_huge_files_are_refused() {
        let dir = TempDir::new();
        assert!(matches!(
            read_key_file(&dir.path().join("nope")),
            Err(AuthSetupError::Read { .. })
        ));
        let huge = vec![b'a'; usize::try_from(KEY_FILE_BYTES_MAX).unwrap_or(0) + 1];
        let path = dir.write("huge", &huge);
        assert!(matches!(
            read_key_file(&path),
            Err(AuthSetupError::TooLarge { .. })
        ));
    }

    #[test]
    fn pem_label_and_contents() {
        let text = b"-----BEGIN TEST KEY-----\nAAEC\nAw==\n-----END TEST KEY-----\n";
        assert_eq!(pem_label(text), Some("TEST KEY"));
        assert_eq!(pem_contents(text, "TEST KEY"), Some(vec![0, 1, 2, 3]));
        assert_eq!(pem_contents(text, "OTHER"), None);
        assert_eq!(pem_label(b"-----BEGIN -----"), None);
    }
}
