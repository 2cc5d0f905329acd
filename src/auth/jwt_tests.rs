//! Tests of [`JwtVerifier`] and [`mint`](crate::auth::mint): round trips for each key kind,
//! and every way a token is refused.

use serde_json::json;

use super::*;
use crate::auth::grants::RoomGrant;
use crate::auth::mint::{mint, TokenRequest};
use crate::auth::test_keys::{self, forged, TempDir, SECRET};
use crate::ids::RoomName;

const NOW: u64 = 1_700_000_000;

fn request() -> TokenRequest {
    TokenRequest {
        room: "room1".to_owned(),
        login: "alice".to_owned(),
        publish: true,
        subscribe: true,
        chat: false,
        record: true,
        admin: false,
        hidden: true,
        ttl_secs: 600,
        issuer: None,
        audience: None,
    }
}

fn verifier(path: &Path) -> JwtVerifier {
    JwtVerifier::from_key_file(path, None, None).expect("verifier")
}

/// A token with arbitrary claims, HS256 with [`SECRET`].
fn hs256(claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &claims, &key).expect("encode")
}

fn secret_verifier(dir: &TempDir, issuer: Option<&str>, audience: Option<&str>) -> JwtVerifier {
    let path = dir.write("secret", SECRET.as_bytes());
    JwtVerifier::from_key_file(&path, issuer.map(str::to_owned), audience.map(str::to_owned))
        .expect("verifier")
}

/// Verifies `token` and checks that a refusal's text does not echo it.
fn check(verifier: &JwtVerifier, token: &str, now: u64) -> Result<Grants, TokenError> {
    let result = verifier.verify(token, now);
    if let Err(error) = &result {
        let text = error.to_string();
        assert!(text.starts_with("Restricted access: "), "{text}");
        assert!(
            token.is_empty() || !text.contains(token),
            "the token leaked into {text:?}"
        );
        for part in token.split('.').filter(|part| part.len() > 8) {
            assert!(!text.contains(part), "a token part leaked into {text:?}");
        }
    }
    result
}

fn round_trip(private_pem: &str, public_pem: &str, alg: Algorithm) {
    let dir = TempDir::new();
    let private = dir.write("private.pem", private_pem.as_bytes());
    let public = dir.write("public.pem", public_pem.as_bytes());
    let token = mint(&private, &request(), NOW).expect("mint");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, alg);
    let verifier = verifier(&public);
    assert!(verifier.algorithms().contains(&alg));
    let grants = check(&verifier, &token, NOW).expect("verify");
    assert_eq!(grants.login, "alice");
    assert_eq!(grants.room, RoomGrant::One(RoomName::new("room1")));
    assert!(grants.allows_room(&RoomName::new("room1")));
    assert!(grants.room_join && grants.can_publish && grants.can_subscribe && grants.room_record);
    assert!(!grants.can_publish_data && !grants.room_admin && grants.hidden);
    assert_eq!(grants.expires_unix, Some(NOW + 600));
    assert_eq!(grants.jti.as_ref().map(String::len), Some(36));
    // The same key cannot be used the other way round.
    assert!(matches!(
        JwtVerifier::from_key_file(&private, None, None),
        Err(AuthSetupError::Key { .. })
    ));
    assert!(matches!(
        mint(&public, &request(), NOW),
        Err(AuthSetupError::Key { .. })
    ));
}

#[test]
fn hs256_round_trip() {
    let dir = TempDir::new();
    let path = dir.write("secret", format!("\n  {SECRET}\n").as_bytes());
    let token = mint(&path, &request(), NOW).expect("mint");
    // Trimmed either way: the file with other whitespace verifies it.
    let other = dir.write("secret2", format!("{SECRET}\r\n").as_bytes());
    let grants = check(&verifier(&other), &token, NOW).expect("verify");
    assert_eq!(grants.login, "alice");
    assert_eq!(
        jsonwebtoken::decode_header(&token).map(|h| h.alg).ok(),
        Some(Algorithm::HS256)
    );
}

#[test]
fn rs256_round_trip() {
    let pair = test_keys::rsa();
    round_trip(&pair.private, &pair.public, Algorithm::RS256);
    // PS256, which other issuers use, verifies with the same public key; RS384 does not.
    let dir = TempDir::new();
    let public = dir.write("public.pem", pair.public.as_bytes());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pair.private.as_bytes()).expect("key");
    let claims = json!({"sub": "alice", "exp": NOW + 60});
    for (alg, expected) in [
        (Algorithm::PS256, Ok("alice")),
        (Algorithm::RS384, Err(TokenError::Algorithm)),
    ] {
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).expect("encode");
        let login = check(&verifier(&public), &token, NOW).map(|g| g.login.into_string());
        assert_eq!(login.as_deref().map_err(|e| *e), expected);
    }
}

#[test]
fn rsa_pkcs1_public_key_is_accepted() {
    let dir = TempDir::new();
    let private = dir.write("private.pem", test_keys::rsa().private.as_bytes());
    let public = dir.write("public.pem", test_keys::rsa_public_pkcs1().as_bytes());
    let token = mint(&private, &request(), NOW).expect("mint");
    assert!(check(&verifier(&public), &token, NOW).is_ok());
}

#[test]
fn es256_round_trip() {
    let pair = test_keys::ec_p256(false);
    round_trip(&pair.private, &pair.public, Algorithm::ES256);
}

#[test]
fn es256_round_trip_with_an_openssl_style_ec_private_key() {
    let pair = test_keys::ec_p256(true);
    assert!(pair.private.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    round_trip(&pair.private, &pair.public, Algorithm::ES256);
}

#[test]
fn eddsa_round_trip() {
    let pair = test_keys::ed25519();
    round_trip(&pair.private, &pair.public, Algorithm::EdDSA);
}

#[test]
fn p384_keys_are_refused() {
    let dir = TempDir::new();
    let pair = test_keys::ec_p384();
    let public = dir.write("public.pem", pair.public.as_bytes());
    let message = JwtVerifier::from_key_file(&public, None, None)
        .err()
        .map(|e| e.to_string());
    assert!(
        message.as_deref().is_some_and(|m| m.contains("P-256")),
        "{message:?}"
    );
    let private = dir.write("private.pem", pair.private.as_bytes());
    assert!(matches!(
        mint(&private, &request(), NOW),
        Err(AuthSetupError::Key { .. })
    ));
}

#[test]
fn setup_errors_name_the_path_not_the_key() {
    let dir = TempDir::new();
    let pair = test_keys::ec_p256(false);
    let private = dir.write("private.pem", pair.private.as_bytes());
    let message = JwtVerifier::from_key_file(&private, None, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("private.pem") && message.contains("private key"),
        "{message}"
    );
    let body_line = pair.private.lines().nth(1).unwrap_or("-");
    assert!(!message.contains(body_line));
    let garbage = dir.write(
        "garbage.pem",
        b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
    );
    assert!(matches!(
        JwtVerifier::from_key_file(&garbage, None, None),
        Err(AuthSetupError::Key { .. })
    ));
    let short = dir.write("short", b"too short\n");
    assert!(matches!(
        JwtVerifier::from_key_file(&short, None, None),
        Err(AuthSetupError::SecretTooShort { .. })
    ));
    assert!(matches!(
        mint(&short, &request(), NOW),
        Err(AuthSetupError::SecretTooShort { .. })
    ));
}

#[test]
fn a_bad_signature_is_refused() {
    let dir = TempDir::new();
    let verifier = secret_verifier(&dir, None, None);
    let other = dir.write("other", b"another secret that is long enough, 40 b");
    let token = mint(&other, &request(), NOW).expect("mint");
    assert_eq!(check(&verifier, &token, NOW).err(), Some(TokenError::Signature));
    // A changed payload under the original signature.
    let good = hs256(json!({"sub": "alice", "exp": NOW + 60}));
    let evil = hs256(json!({"sub": "mallory", "exp": NOW + 60}));
    let mut good_parts = good.split('.');
    let mut evil_parts = evil.split('.');
    let spliced = format!(
        "{}.{}.{}",
        good_parts.next().unwrap_or(""),
        evil_parts.nth(1).unwrap_or(""),
        good_parts.nth(1).unwrap_or("")
    );
    assert_eq!(check(&verifier, &spliced, NOW).err(), Some(TokenError::Signature));
    // A public-key token against the wrong public key.
    let pair = test_keys::ed25519();
    let other_pair = test_keys::ed25519();
    let private = dir.write("ed.pem", pair.private.as_bytes());
    let wrong_public = dir.write("ed.pub", other_pair.public.as_bytes());
    let token = mint(&private, &request(), NOW).expect("mint");
    assert_eq!(
        check(&self::verifier(&wrong_public), &token, NOW).err(),
        Some(TokenError::Signature)
    );
}

#[test]
fn expiry_and_not_before_use_the_callers_clock_with_leeway() {
    let dir = TempDir::new();
    let verifier = secret_verifier(&dir, None, None);
    let token = hs256(json!({"sub": "alice", "exp": NOW}));
    assert!(check(&verifier, &token, NOW + LEEWAY_SECS - 1).is_ok());
    assert_eq!(
        check(&verifier, &token, NOW + LEEWAY_SECS).err(),
        Some(TokenError::Expired)
    );
    assert_eq!(
        check(&verifier, &token, u64::MAX).err(),
        Some(TokenError::Expired)
    );
    let later = hs256(json!({"sub": "alice", "exp": NOW + 600, "nbf": NOW + 100}));
    assert_eq!(check(&verifier, &later, NOW).err(), Some(TokenError::NotYetValid));
    assert!(check(&verifier, &later, NOW + 100 - LEEWAY_SECS).is_ok());
    // A fractional NumericDate, and a huge one, are dates; a string is not.
    assert!(check(
        &verifier,
        &hs256(json!({"sub": "a", "exp": (NOW + 60) as f64 + 0.5})),
        NOW
    )
    .is_ok());
    assert!(check(&verifier, &hs256(json!({"sub": "a", "exp": 1e300})), NOW).is_ok());
    let string_exp = hs256(json!({"sub": "a", "exp": "tomorrow"}));
    assert_eq!(
        check(&verifier, &string_exp, NOW).err(),
        Some(TokenError::Malformed)
    );
    let negative = hs256(json!({"sub": "a", "exp": -1}));
    assert_eq!(
        check(&verifier, &negative, NOW).err(),
        Some(TokenError::Malformed)
    );
    // `exp` is required.
    let forever = hs256(json!({"sub": "alice"}));
    assert_eq!(check(&verifier, &forever, NOW).err(), Some(TokenError::Malformed));
}

#[test]
fn issuer_and_audience_when_configured() {
    let dir = TempDir::new();
    let strict = secret_verifier(&dir, Some("issuer-a"), Some("webcall"));
    let claims = |iss: Option<&str>, aud: Option<serde_json::Value>| {
        let mut claims = json!({"sub": "alice", "exp": NOW + 60});
        if let Some(iss) = iss {
            claims["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            claims["aud"] = aud;
        }
        hs256(claims)
    };
    assert!(check(&strict, &claims(Some("issuer-a"), Some(json!("webcall"))), NOW).is_ok());
    assert!(check(
        &strict,
        &claims(Some("issuer-a"), Some(json!(["other", "webcall"]))),
        NOW
    )
    .is_ok());
    let wrong_iss = claims(Some("issuer-b"), Some(json!("webcall")));
    assert_eq!(check(&strict, &wrong_iss, NOW).err(), Some(TokenError::Issuer));
    let no_iss = claims(None, Some(json!("webcall")));
    assert_eq!(check(&strict, &no_iss, NOW).err(), Some(TokenError::Issuer));
    let wrong_aud = claims(Some("issuer-a"), Some(json!(["other"])));
    assert_eq!(check(&strict, &wrong_aud, NOW).err(), Some(TokenError::Audience));
    let no_aud = claims(Some("issuer-a"), None);
    assert_eq!(check(&strict, &no_aud, NOW).err(), Some(TokenError::Audience));
    // Unconfigured, neither is checked.
    let lax = secret_verifier(&dir, None, None);
    assert!(check(&lax, &wrong_iss, NOW).is_ok() && check(&lax, &wrong_aud, NOW).is_ok());
    // Minted with both, a strict verifier takes it.
    let secret = dir.write("secret", SECRET.as_bytes());
    let minted = mint(
        &secret,
        &TokenRequest {
            issuer: Some("issuer-a".into()),
            audience: Some("webcall".into()),
            ..request()
        },
        NOW,
    )
    .expect("mint");
    assert!(check(&strict, &minted, NOW).is_ok());
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let dir = TempDir::new();
    let verifier = secret_verifier(&dir, None, None);
    let claims = json!({"sub": "alice", "exp": NOW + 60}).to_string();
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"HS384"}"#,
        r#"{"alg":"RS256"}"#,
    ] {
        for signature in ["", "c2ln"] {
            let token = forged(header, &claims, signature);
            assert_eq!(
                check(&verifier, &token, NOW).err(),
                Some(TokenError::Algorithm),
                "{header}"
            );
        }
    }
}

#[test]
fn an_hs256_token_is_refused_by_a_public_key_verifier() {
    // The classic confusion: the attacker signs with the (public) key file as an HMAC secret.
    let dir = TempDir::new();
    let pair = test_keys::rsa();
    let public = dir.write("public.pem", pair.public.as_bytes());
    let key = jsonwebtoken::EncodingKey::from_secret(pair.public.as_bytes()).expect("key");
    let claims = json!({"sub": "mallory", "exp": NOW + 60});
    let token =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &claims, &key).expect("encode");
    assert_eq!(
        check(&verifier(&public), &token, NOW).err(),
        Some(TokenError::Algorithm)
    );
    // And an RS256 token is refused by an HS256 verifier.
    let private = dir.write("private.pem", pair.private.as_bytes());
    let rs256 = mint(&private, &request(), NOW).expect("mint");
    assert_eq!(
        check(&secret_verifier(&dir, None, None), &rs256, NOW).err(),
        Some(TokenError::Algorithm)
    );
}

#[test]
fn long_and_garbage_tokens_are_refused() {
    let dir = TempDir::new();
    let verifier = secret_verifier(&dir, None, None);
    let long = "a".repeat(TOKEN_BYTES_MAX + 1);
    assert_eq!(check(&verifier, &long, NOW).err(), Some(TokenError::TooLong));
    let at_max = "a".repeat(TOKEN_BYTES_MAX);
    assert_eq!(check(&verifier, &at_max, NOW).err(), Some(TokenError::Malformed));
    let valid = hs256(json!({"sub": "alice", "exp": NOW + 60}));
    let padded = format!("{valid}{}", "A".repeat(TOKEN_BYTES_MAX));
    assert_eq!(check(&verifier, &padded, NOW).err(), Some(TokenError::TooLong));
    for garbage in [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "..",
        "a.b.c.d",
        "€.€.€",
        &format!("{valid}.extra"),
    ] {
        assert_eq!(
            check(&verifier, garbage, NOW).err(),
            Some(TokenError::Malformed),
            "{garbage:?}"
        );
    }
    // A header that is JSON but not an object with `alg`.
    let token = forged("[1,2]", "{}", "");
    assert_eq!(check(&verifier, &token, NOW).err(), Some(TokenError::Malformed));
    // Signed, but the claims are not an object.
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    let array = jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &json!([1]), &key)
        .expect("encode");
    assert_eq!(check(&verifier, &array, NOW).err(), Some(TokenError::Malformed));
}

#[test]
fn the_subject_must_be_a_valid_login() {
    let dir = TempDir::new();
    let verifier = secret_verifier(&dir, None, None);
    for sub in [
        None,
        Some(json!("")),
        Some(json!("a".repeat(LOGIN_BYTES_MAX + 1))),
        Some(json!("a\u{1}b")),
    ] {
        let mut claims = json!({"exp": NOW + 60});
        if let Some(sub) = sub {
            claims["sub"] = sub;
        }
        assert_eq!(
            check(&verifier, &hs256(claims), NOW).err(),
            Some(TokenError::Subject)
        );
    }
    let longest = hs256(json!({"sub": "a".repeat(LOGIN_BYTES_MAX), "exp": NOW + 60}));
    assert!(check(&verifier, &longest, NOW).is_ok());
    let numeric = hs256(json!({"sub": 42, "exp": NOW + 60}));
    assert_eq!(check(&verifier, &numeric, NOW).err(), Some(TokenError::Malformed));
}

#[test]
fn jti_is_optional_and_bounded() {
    let dir = TempDir::new();
    let verifier = secret_verifier(&dir, None, None);
    let none = check(&verifier, &hs256(json!({"sub": "a", "exp": NOW + 60})), NOW);
    assert_eq!(none.map(|g| g.jti), Ok(None));
    let longest = hs256(json!({"sub": "a", "exp": NOW + 60, "jti": "j".repeat(JTI_BYTES_MAX)}));
    assert!(check(&verifier, &longest, NOW).is_ok());
    let long = hs256(json!({"sub": "a", "exp": NOW + 60, "jti": "j".repeat(JTI_BYTES_MAX + 1)}));
    assert_eq!(check(&verifier, &long, NOW).err(), Some(TokenError::Malformed));
}

#[test]
fn grants_defaults_and_unknown_claims() {
    let dir = TempDir::new();
    let verifier = secret_verifier(&dir, None, None);
    let token = hs256(json!({
        "sub": "alice", "exp": NOW + 60, "iat": NOW, "name": "Alice", "metadata": {"x": [1]},
        "video": {"room": "*", "canSubscribe": false, "canPublishSources": ["microphone"], "future": 1}
    }));
    let grants = check(&verifier, &token, NOW).expect("verify");
    assert_eq!(grants.room, RoomGrant::Any);
    // `roomJoin` absent: no room even with `*`.
    assert!(!grants.room_join && !grants.allows_room(&RoomName::new("r")));
    // `canPublish` absent: true, limited by the sources.
    assert!(grants.can_publish && grants.allows_source(crate::auth::Source::Microphone));
    assert!(!grants.allows_source(crate::auth::Source::Camera));
    assert!(!grants.can_subscribe && grants.can_publish_data);
    let bad_video = hs256(json!({"sub": "alice", "exp": NOW + 60, "video": {"canPublish": "yes"}}));
    assert_eq!(
        check(&verifier, &bad_video, NOW).err(),
        Some(TokenError::Malformed)
    );
}

#[test]
fn mint_refuses_requests_that_would_not_verify() {
    let dir = TempDir::new();
    let secret = dir.write("secret", SECRET.as_bytes());
    for bad in [
        TokenRequest {
            login: String::new(),
            ..request()
        },
        TokenRequest {
            login: "a\nb".into(),
            ..request()
        },
        TokenRequest {
            room: String::new(),
            ..request()
        },
        TokenRequest {
            ttl_secs: 0,
            ..request()
        },
        TokenRequest {
            ttl_secs: u64::MAX,
            ..request()
        },
    ] {
        assert!(
            matches!(mint(&secret, &bad, NOW), Err(AuthSetupError::Request { .. })),
            "{bad:?}"
        );
    }
    let any = mint(
        &secret,
        &TokenRequest {
            room: "*".into(),
            ..request()
        },
        NOW,
    )
    .expect("mint");
    let grants = check(&verifier(&secret), &any, NOW).expect("verify");
    assert!(grants.allows_room(&RoomName::new("anything")));
    // Each token gets its own jti.
    let again = mint(
        &secret,
        &TokenRequest {
            room: "*".into(),
            ..request()
        },
        NOW,
    )
    .expect("mint");
    let again = check(&verifier(&secret), &again, NOW).expect("verify");
    assert_ne!(grants.jti, again.jti);
}

#[test]
fn log_details_are_short_names() {
    assert_eq!(TokenError::NotYetValid.log_detail(), "not_yet_valid");
    assert_eq!(
        TokenError::Missing.to_string(),
        "Restricted access: a token is required"
    );
    assert_eq!(
        TokenError::Revoked.to_string(),
        "Restricted access: token was revoked"
    );
}
