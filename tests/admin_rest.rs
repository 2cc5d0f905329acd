//! The admin REST API's rules and refusals on the real binary (`docs/rest.md` runs the happy
//! paths): with `--admin-key-file` every route wants the key; the room routes also take a room
//! token with `roomAdmin` for that room and refuse one for another room or without the grant;
//! every bad request is a JSON reason with the right status and no internal detail.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::*;
use webcall::auth::{mint, now_unix, TokenRequest};
use webcall_loadtest::wcs::{ConnectionOptions, SessionConfig, APP_ROOM};
use webcall_loadtest::WcsSession;

const AUDIENCE: &str = "webcall-admin-tests";
const ADMIN_KEY: &str = "admin-key-for-the-tests-0123456789";

fn token(key: &Path, room: &str, login: &str, admin: bool) -> String {
    let request = TokenRequest {
        room: room.to_owned(),
        login: login.to_owned(),
        publish: true,
        subscribe: true,
        chat: true,
        record: false,
        admin,
        hidden: false,
        ttl_secs: 3600,
        issuer: None,
        audience: Some(AUDIENCE.to_owned()),
    };
    mint(key, &request, now_unix()).expect("mint a token")
}

/// `METHOD path` with an optional bearer and body: (status, JSON answer).
async fn call(server: &Server, method: &str, path: &str, bearer: Option<&str>, body: &str) -> (u16, Value) {
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let (status, _, answer) = server.http(method, path, &headers, body.as_bytes()).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("panicked") && !text.contains("src/"),
        "no internal detail: {text}"
    );
    (status, serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

fn reason(answer: &Value) -> &str {
    answer["error"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_want_the_key_or_a_room_admin_token_and_refuse_bad_requests_clearly() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("webcall-admin-{id}"));
    // Beside the data directory, which a server's drop removes.
    let tmp = std::env::temp_dir();
    let (jwt_key, admin_key) = (
        tmp.join(format!("webcall-admin-{id}.jwt")),
        tmp.join(format!("webcall-admin-{id}.admin")),
    );
    std::fs::write(&jwt_key, "jwt-secret-for-the-admin-rest-tests-0123456789\n").unwrap();
    std::fs::write(&admin_key, format!("{ADMIN_KEY}\n")).unwrap();
    let (jwt, admin) = (jwt_key.to_str().unwrap(), admin_key.to_str().unwrap());
    let args = [
        "--auth",
        "jwt",
        "--jwt-key",
        jwt,
        "--jwt-audience",
        AUDIENCE,
        "--admin-key-file",
        admin,
    ];
    let mut server = Server::start_in(dir.clone(), Io::Mmsg, 1, &args, &[]);
    let config = SessionConfig {
        connection: Some(ConnectionOptions {
            app_key: APP_ROOM.into(),
            login: Some("bob".into()),
            token: Some(token(&jwt_key, "r1", "bob", false)),
        }),
        timeout: std::time::Duration::from_secs(10),
    };
    let bob = WcsSession::connect_with(&server.ws_url(), config)
        .await
        .expect("bob connects");
    bob.join("r1").await.expect("bob joins r1");
    let key = Some(ADMIN_KEY);

    // The key, even from loopback.
    let (status, answer) = call(&server, "GET", "/api/rooms", None, "").await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = call(&server, "GET", "/api/rooms", Some("not-the-key-at-all-0123"), "").await;
    assert_eq!(status, 401);
    let (status, rooms) = call(&server, "GET", "/api/rooms", key, "").await;
    assert_eq!(status, 200, "{rooms}");
    assert_eq!(rooms[0]["name"], "r1", "{rooms}");
    let (status, _) = call(&server, "POST", "/rest-api/stream/find_all", None, "").await;
    assert_eq!(status, 401);

    // A moderator's room token: its own room only, and only with roomAdmin.
    let moderator = token(&jwt_key, "r1", "mod", true);
    let (status, detail) = call(&server, "GET", "/api/rooms/r1", Some(&moderator), "").await;
    assert_eq!(status, 200, "{detail}");
    let (status, answer) = call(&server, "POST", "/api/rooms/r2/lock", Some(&moderator), "").await;
    assert_eq!(
        (status, reason(&answer)),
        (403, "the token does not grant roomAdmin for this room")
    );
    let plain = token(&jwt_key, "r1", "carol", false);
    let (status, answer) = call(&server, "POST", "/api/rooms/r1/lock", Some(&plain), "").await;
    assert_eq!(
        (status, reason(&answer)),
        (403, "the token does not grant roomAdmin for this room")
    );
    let (status, _) = call(&server, "GET", "/api/rooms", Some(&moderator), "").await;
    assert_eq!(status, 401, "the server-wide list is not a room route");
    let (status, answer) = call(&server, "POST", "/api/rooms/r1/lock", Some(&moderator), "").await;
    assert_eq!((status, &answer["locked"]), (200, &json!(true)), "{answer}");

    // Bad requests, each with its reason.
    for (method, path, body, want_status, want) in [
        (
            "POST",
            "/api/rooms/r1/kick",
            "{}",
            400,
            "give the participant's 'login'",
        ),
        ("POST", "/api/rooms/r1/kick", r#"{"login": "nobody"}"#, 404, ""),
        ("POST", "/api/rooms/nowhere/close", "", 404, ""),
        (
            "POST",
            "/api/rooms/r1/mute",
            r#"{"login": "bob", "kind": "smell"}"#,
            400,
            "give 'kind': \"audio\" or \"video\"",
        ),
        (
            "POST",
            "/api/rooms/r1/mute",
            r#"{"login": "bob", "kind": "audio"}"#,
            409,
            "",
        ),
        (
            "POST",
            "/api/rooms/r1/kick",
            "{not json",
            400,
            "the body is not JSON",
        ),
        ("POST", "/api/rooms/%01/lock", "", 400, "bad room name"),
        (
            "POST",
            "/rest-api/stream/find",
            "{}",
            400,
            "give the stream's 'name'",
        ),
        (
            "POST",
            "/rest-api/stream/find",
            r#"{"name": "ghost"}"#,
            404,
            "Stream not found",
        ),
        (
            "POST",
            "/rest-api/stream/terminate",
            r#"{"name": "ghost"}"#,
            404,
            "Stream not found",
        ),
        (
            "POST",
            "/rest-api/connection/terminate",
            r#"{"id": "x"}"#,
            400,
            "give the connection's numeric 'id'",
        ),
        (
            "POST",
            "/rest-api/connection/terminate",
            r#"{"id": 999999}"#,
            404,
            "no such connection",
        ),
        ("POST", "/rest-api/debug/stall_worker", "{}", 404, "not found"),
    ] {
        let (status, answer) = call(&server, method, path, key, body).await;
        assert_eq!(status, want_status, "{method} {path} {body}: {answer}");
        assert!(
            !reason(&answer).is_empty(),
            "{method} {path}: a JSON reason: {answer}"
        );
        if !want.is_empty() {
            assert_eq!(reason(&answer), want, "{method} {path} {body}");
        }
    }
    let big = format!(r#"{{"login": "{}"}}"#, "x".repeat(20 * 1024));
    let (status, answer) = call(&server, "POST", "/api/rooms/r1/kick", key, &big).await;
    assert_eq!(status, 413, "{answer}");

    // A kick by the moderator: bob's session ends with the reason.
    let (status, answer) = call(
        &server,
        "POST",
        "/api/rooms/r1/kick",
        Some(&moderator),
        r#"{"login": "bob"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let mut frame = next_answer(&bob).await;
    for _ in 0..20 {
        if frame["message"] == "fail" {
            break;
        }
        frame = next_answer(&bob).await;
    }
    assert_fail(&frame, "Kicked by moderator");
    server.assert_alive_without_panics();
}
