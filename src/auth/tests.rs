//! Tests of [`AuthMode::verify`]: the two modes, the login rule and the deny list.

use super::test_keys::{TempDir, SECRET};
use super::*;
use crate::ids::RoomName;

const NOW: u64 = 1_700_000_000;

fn jwt_mode(dir: &TempDir) -> AuthMode {
    let path = dir.write("secret", SECRET.as_bytes());
    AuthMode::Jwt(Box::new(
        JwtVerifier::from_key_file(&path, None, None).expect("verifier"),
    ))
}

fn token(dir: &TempDir, login: &str) -> String {
    let request = TokenRequest {
        room: "r1".into(),
        login: login.into(),
        publish: true,
        subscribe: true,
        chat: true,
        record: false,
        admin: false,
        hidden: false,
        ttl_secs: 60,
        issuer: None,
        audience: None,
    };
    mint(&dir.write("secret", SECRET.as_bytes()), &request, NOW).expect("mint")
}

fn fallback() -> Login {
    Login::new("user-7")
}

#[test]
fn no_auth_trusts_the_client() {
    let dir = TempDir::new();
    let deny = DenyList::open(dir.path().join("deny")).expect("deny list");
    let alice = Login::new("alice");
    let grants = AuthMode::None
        .verify(None, Some(&alice), fallback, &deny, NOW)
        .expect("admitted");
    assert_eq!(grants, Grants::everything(alice));
    let grants = AuthMode::None
        .verify(Some("ignored"), None, fallback, &deny, NOW)
        .expect("admitted");
    assert_eq!(grants.login, "user-7");
    assert!(grants.allows_room(&RoomName::new("any")));
}

#[test]
fn jwt_needs_a_token() {
    let dir = TempDir::new();
    let deny = DenyList::open(dir.path().join("deny")).expect("deny list");
    let mode = jwt_mode(&dir);
    for missing in [None, Some("")] {
        let refusal = mode.verify(missing, None, fallback, &deny, NOW).err();
        assert_eq!(refusal, Some(AuthRefusal::Token(TokenError::Missing)));
        assert_eq!(
            refusal.map(|r| r.to_string()).as_deref(),
            Some("Restricted access: a token is required")
        );
    }
    let refusal = mode.verify(Some("x.y.z"), None, fallback, &deny, NOW).err();
    assert_eq!(refusal.map(|r| r.log_detail()), Some("malformed"));
}

#[test]
fn the_login_is_the_tokens_subject() {
    let dir = TempDir::new();
    let deny = DenyList::open(dir.path().join("deny")).expect("deny list");
    let mode = jwt_mode(&dir);
    let token = token(&dir, "alice");
    let grants = mode
        .verify(Some(&token), None, fallback, &deny, NOW)
        .expect("admitted");
    assert_eq!(grants.login, "alice");
    let same = mode.verify(Some(&token), Some(&Login::new("alice")), fallback, &deny, NOW);
    assert!(same.is_ok());
    let refusal = mode
        .verify(Some(&token), Some(&Login::new("mallory")), fallback, &deny, NOW)
        .err();
    assert_eq!(refusal, Some(AuthRefusal::LoginMismatch));
    let text = refusal.map(|r| r.to_string()).unwrap_or_default();
    assert_eq!(text, "Restricted access: login does not match the token");
    assert_eq!(AuthRefusal::LoginMismatch.log_detail(), "login_mismatch");
}

#[test]
fn a_revoked_token_is_refused_even_after_a_restart() {
    let dir = TempDir::new();
    let mode = jwt_mode(&dir);
    let token = token(&dir, "alice");
    let mut deny = DenyList::open(dir.path().join("deny")).expect("deny list");
    let grants = mode
        .verify(Some(&token), None, fallback, &deny, NOW)
        .expect("admitted");
    let (jti, exp) = (
        grants.jti.clone().unwrap_or_default(),
        grants.expires_unix.unwrap_or(0),
    );
    deny.deny(&jti, exp, NOW).expect("deny");
    let refusal = mode.verify(Some(&token), None, fallback, &deny, NOW).err();
    assert_eq!(refusal, Some(AuthRefusal::Token(TokenError::Revoked)));
    let reopened = DenyList::open(dir.path().join("deny")).expect("reopen");
    let refusal = mode
        .verify(Some(&token), None, fallback, &reopened, NOW + 1)
        .err();
    assert_eq!(
        refusal.map(|r| r.to_string()).as_deref(),
        Some("Restricted access: token was revoked")
    );
    // Another token of the same login is not affected.
    let other = self::token(&dir, "alice");
    assert!(mode.verify(Some(&other), None, fallback, &reopened, NOW).is_ok());
}

#[test]
fn now_unix_is_the_system_clock() {
    assert!(now_unix() > NOW);
}
