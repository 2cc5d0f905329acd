//! Test helpers: a scratch directory removed on drop, and freshly generated key pairs
//! (aws-lc-rs) written as PEM files, one pair per kind the verifier accepts.
//!
//! Tests only, on the test threads. Invariants: every directory is unique to its test (the
//! process id and a counter), RSA pairs are generated once per process (slow unoptimised).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine as _;

/// A 40-byte HS256 secret.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("webcall-auth-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A private key PEM and its public key PEM.
pub struct PemPair {
    pub private: String,
    pub public: String,
}

pub fn rsa() -> &'static PemPair {
    static PAIR: OnceLock<PemPair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key");
        let private = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("pkcs8");
        let public = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).expect("spki");
        PemPair {
            private: pem("PRIVATE KEY", private.as_ref()),
            public: pem("PUBLIC KEY", public.as_ref()),
        }
    })
}

/// The RSA public key as PKCS#1 (`RSA PUBLIC KEY`).
pub fn rsa_public_pkcs1() -> String {
    let der = pem_der(&rsa().public, "PUBLIC KEY");
    let pair_public = aws_lc_rs::rsa::PublicKey::from_der(&der).expect("parse spki");
    pem("RSA PUBLIC KEY", pair_public.as_ref())
}

/// A P-256 pair; `sec1` writes the private key as `EC PRIVATE KEY` instead of PKCS#8.
pub fn ec_p256(sec1: bool) -> PemPair {
    ec(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING, sec1)
}

pub fn ec_p384() -> PemPair {
    ec(&aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING, false)
}

fn ec(alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm, sec1: bool) -> PemPair {
    let pair = EcdsaKeyPair::generate(alg).expect("EC key");
    let private = if sec1 {
        let der =
            AsDer::<aws_lc_rs::encoding::EcPrivateKeyRfc5915Der>::as_der(&pair.private_key()).expect("sec1");
        pem("EC PRIVATE KEY", der.as_ref())
    } else {
        pem("PRIVATE KEY", pair.to_pkcs8v1().expect("pkcs8").as_ref())
    };
    let public = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).expect("spki");
    PemPair {
        private,
        public: pem("PUBLIC KEY", public.as_ref()),
    }
}

pub fn ed25519() -> PemPair {
    let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
    let private = pair.to_pkcs8v1().expect("pkcs8");
    let public = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(pair.public_key()).expect("spki");
    PemPair {
        private: pem("PRIVATE KEY", private.as_ref()),
        public: pem("PUBLIC KEY", public.as_ref()),
    }
}

fn pem_der(text: &str, label: &str) -> Vec<u8> {
    super::key_file::pem_contents(text.as_bytes(), label).expect("pem")
}

/// An unsigned token (`alg` as given, any signature) with `claims`: for header tests.
pub fn forged(header: &str, claims: &str, signature: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.{signature}", b64.encode(header), b64.encode(claims))
}
