//! What admitting a session costs the control thread: verifying its room token (signature,
//! claims, grants) for each algorithm webcall takes from a key it can generate here (HS256,
//! ES256, EdDSA), and checking its jti against a deny-list of 1,000 revoked tokens. Every
//! `connection` with `--auth jwt` pays one verification on the control thread.
//!
//! Run: `cargo bench --bench auth` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use webcall::auth::{mint, now_unix, DenyList, JwtVerifier, TokenRequest};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webcall-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn request() -> TokenRequest {
    TokenRequest {
        room: "room1".into(),
        login: "alice".into(),
        publish: true,
        subscribe: true,
        chat: true,
        record: false,
        admin: false,
        hidden: false,
        ttl_secs: 3600,
        issuer: None,
        audience: Some("webcall".into()),
    }
}

/// (name, private key file, public key file) for each algorithm.
fn keys(dir: &std::path::Path) -> Vec<(&'static str, PathBuf, PathBuf)> {
    let secret = dir.join("hs256.key");
    std::fs::write(&secret, "a-bench-secret-of-at-least-32-bytes!!").expect("write");
    let mut keys = vec![("HS256", secret.clone(), secret)];
    for (name, alg) in [
        ("ES256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("EdDSA", &rcgen::PKCS_ED25519),
    ] {
        let pair = rcgen::KeyPair::generate_for(alg).expect("a key pair");
        let private = dir.join(format!("{name}.pem"));
        let public = dir.join(format!("{name}.pub.pem"));
        std::fs::write(&private, pair.serialize_pem()).expect("write");
        std::fs::write(&public, pair.public_key_pem()).expect("write");
        keys.push((name, private, public));
    }
    keys
}

fn verify(c: &mut Criterion) {
    let dir = scratch();
    let mut group = c.benchmark_group("auth_verify");
    for (name, private, public) in keys(&dir) {
        let token = mint(&private, &request(), now_unix()).expect("a token");
        let verifier = JwtVerifier::from_key_file(&public, None, Some("webcall".into())).expect("a verifier");
        group.bench_function(name, |b| {
            b.iter(|| verifier.verify(black_box(&token), now_unix()).expect("valid"))
        });
    }
    group.finish();
    let mut deny = DenyList::open(dir.join("revoked.tsv")).expect("a deny-list");
    let now = now_unix();
    for i in 0..1_000 {
        deny.deny(&format!("jti-{i}"), now + 3600, now).expect("revoke");
    }
    c.bench_function("auth_deny_list_lookup_1k", |b| {
        b.iter(|| deny.is_denied(black_box("jti-unknown"), now))
    });
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, verify);
criterion_main!(benches);
