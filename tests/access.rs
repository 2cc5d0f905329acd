//! Access control end to end, on real WebSockets against the real binary: room tokens (every
//! refusal a client can meet, each with the protocol's own message), grants enforced on every
//! command, a kick whose token stays revoked across a restart, hidden participants, one session
//! per login, and browser origins.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use webcall::auth::{mint, now_unix, TokenRequest};
use webcall_loadtest::wcs::{ConnectionOptions, SessionConfig, APP_ROOM};
use webcall_loadtest::{play, publish, PlayCodecs, PublishOptions, RoomEventKind, WcsSession};

const AUDIENCE: &str = "webcall-tests";

/// A data directory with a fresh HS256 secret in it.
fn key_dir() -> (PathBuf, PathBuf) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("webcall-access-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    // Beside the data directory, which a server's drop removes.
    let key = std::env::temp_dir().join(format!("webcall-access-{id}.key"));
    std::fs::write(&key, format!("secret-{id}\n")).unwrap();
    (dir, key)
}

struct Grant<'a> {
    room: &'a str,
    login: &'a str,
    publish: bool,
    subscribe: bool,
    chat: bool,
    record: bool,
    hidden: bool,
}

fn everything<'a>(room: &'a str, login: &'a str) -> Grant<'a> {
    Grant {
        room,
        login,
        publish: true,
        subscribe: true,
        chat: true,
        record: false,
        hidden: false,
    }
}

fn token_at(key: &Path, grant: &Grant, audience: &str, now: u64, ttl_secs: u64) -> String {
    let request = TokenRequest {
        room: grant.room.to_owned(),
        login: grant.login.to_owned(),
        publish: grant.publish,
        subscribe: grant.subscribe,
        chat: grant.chat,
        record: grant.record,
        admin: false,
        hidden: grant.hidden,
        ttl_secs,
        issuer: None,
        audience: Some(audience.to_owned()),
    };
    mint(key, &request, now).expect("mint a token")
}

fn token(key: &Path, grant: &Grant) -> String {
    token_at(key, grant, AUDIENCE, now_unix(), 3600)
}

fn jwt_server(dir: &Path, key: &Path, extra: &[&str]) -> Server {
    let key = key.to_str().unwrap();
    let mut args = vec!["--auth", "jwt", "--jwt-key", key, "--jwt-audience", AUDIENCE];
    args.extend_from_slice(extra);
    Server::start_in(dir.to_owned(), Io::Mmsg, 1, &args, &[])
}

async fn connect_with_token(server: &Server, login: &str, token: &str) -> WcsSession {
    let config = SessionConfig {
        connection: Some(ConnectionOptions {
            app_key: APP_ROOM.into(),
            login: Some(login.into()),
            token: Some(token.into()),
        }),
        timeout: T,
    };
    WcsSession::connect_with(&server.ws_url(), config)
        .await
        .unwrap_or_else(|e| panic!("connect as {login} with a good token: {e}"))
}

/// The answer to a `connection` carrying `token` (None: no token at all).
async fn connection_answer(server: &Server, login: &str, token: Option<&str>) -> Value {
    let session = server.connect_bare().await;
    let mut custom = json!({ "login": login });
    if let Some(token) = token {
        custom["token"] = json!(token);
    }
    let frame = json!({"message": "connection", "data": [{"appKey": APP_ROOM, "custom": custom}]});
    let answer = reply_to(&session, &frame.to_string()).await;
    // A refused session is closed by the server after its reason.
    if answer["message"] == "fail" {
        session.wait_closed(T).await.expect("a refused session is closed");
    }
    answer
}

fn assert_refused(answer: &Value, info: &str) {
    assert_fail(answer, info);
    assert_eq!(data0(answer)["apiMethod"], "connection", "{answer}");
    assert_no_internals(info);
}

/// Refusals name what the client sent or may know; never a type name, a pointer, a path.
fn assert_no_internals(text: &str) {
    for bad in ["::", "0x", "Error(", "src/", "panicked"] {
        assert!(!text.contains(bad), "refusal leaks internals: {text}");
    }
}

fn refused_info(result: webcall_loadtest::Result<impl std::fmt::Debug>) -> String {
    let error = result.expect_err("refused");
    let info = error.server_info().unwrap_or_default().to_owned();
    assert_no_internals(&info);
    info
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_with_its_reason() {
    let (dir, key) = key_dir();
    let server = jwt_server(&dir, &key, &[]);
    let good = everything("r1", "alice");

    let answer = connection_answer(&server, "alice", None).await;
    assert_refused(&answer, "Restricted access: a token is required");

    let (_, other_key) = key_dir();
    let forged = token(&other_key, &good);
    let answer = connection_answer(&server, "alice", Some(&forged)).await;
    assert_refused(&answer, "Restricted access: token signature is invalid");

    let expired = token_at(&key, &good, AUDIENCE, now_unix() - 7200, 60);
    let answer = connection_answer(&server, "alice", Some(&expired)).await;
    assert_refused(&answer, "Restricted access: token has expired");

    let elsewhere = token_at(&key, &good, "another-service", now_unix(), 3600);
    let answer = connection_answer(&server, "alice", Some(&elsewhere)).await;
    assert_refused(&answer, "Restricted access: token audience is not accepted");

    let answer = connection_answer(&server, "mallory", Some(&token(&key, &good))).await;
    assert_refused(&answer, "Restricted access: login does not match the token");

    let answer = connection_answer(&server, "alice", Some("not.a.token")).await;
    assert_refused(&answer, "Restricted access: token is malformed");

    // A second `connection` on an established session is refused as such, whatever its token,
    // and the session lives on.
    let alice = connect_with_token(&server, "alice", &token(&key, &good)).await;
    let again = json!({"message": "connection", "data": [{"appKey": APP_ROOM, "custom": {"login": "alice", "token": "junk"}}]});
    let answer = reply_to(&alice, &again.to_string()).await;
    assert_fail(&answer, "Session is already established");
    alice.join("r1").await.expect("the session lives on");

    let log = server.log();
    assert!(!log.contains(&forged), "tokens are never logged");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_enforced_on_every_command() {
    let (dir, key) = key_dir();
    let server = jwt_server(&dir, &key, &[]);
    let alice = connect_with_token(&server, "alice", &token(&key, &everything("r1", "alice"))).await;
    let viewer = Grant {
        publish: false,
        chat: false,
        ..everything("r1", "viewer")
    };
    let viewer = connect_with_token(&server, "viewer", &token(&key, &viewer)).await;
    let deaf = Grant {
        subscribe: false,
        ..everything("r1", "deaf")
    };
    let deaf = connect_with_token(&server, "deaf", &token(&key, &deaf)).await;

    // A room the token does not name.
    assert_eq!(refused_info(alice.join("r2").await), "Restricted access");
    // Recording needs roomRecord.
    let record = alice
        .send_data("join", json!({"name": "r1", "record": true}))
        .await;
    assert_eq!(refused_info(record), "Restricted access: recording");
    alice.join("r1").await.expect("alice joins her room");
    viewer.join("r1").await.expect("a viewer joins");
    deaf.join("r1").await.expect("deaf joins");

    let name = webcall_loadtest::room_stream_name("r1", "alice");
    let publisher = publish(&alice, PublishOptions::new(&name).room("r1"))
        .await
        .expect("alice may publish");
    // Publishing without canPublish, chat without canPublishData, playing without canSubscribe.
    let viewer_stream = webcall_loadtest::room_stream_name("r1", "viewer");
    let refused = publish(&viewer, PublishOptions::new(&viewer_stream).room("r1")).await;
    assert_eq!(refused_info(refused), "Restricted access");
    assert_eq!(
        refused_info(viewer.send_message("r1", Some("alice"), "hi").await),
        "Restricted access"
    );
    let refused = play(&deaf, &name, Some("r1".into()), PlayCodecs::browser()).await;
    assert_eq!(refused_info(refused), "Restricted access");
    // What is granted works.
    let player = play(&viewer, &name, Some("r1".into()), PlayCodecs::browser())
        .await
        .expect("a viewer plays");
    assert_flowing(&player, 20, "a granted player").await;
    alice
        .send_message("r1", Some("viewer"), "hello")
        .await
        .expect("alice may chat");
    drop(publisher);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_token_stays_out_across_a_restart_and_hidden_participants_are_not_listed() {
    let (dir, key) = key_dir();
    let server = jwt_server(&dir, &key, &[]);
    let alice_token = token(&key, &everything("r1", "alice"));
    let alice = connect_with_token(&server, "alice", &alice_token).await;
    alice.join("r1").await.unwrap();
    let moderator = Grant {
        hidden: true,
        ..everything("r1", "moderator")
    };
    let moderator = connect_with_token(&server, "moderator", &token(&key, &moderator)).await;
    let state = moderator.join("r1").await.unwrap();
    assert_eq!(
        state.participants(),
        ["alice"],
        "a hidden participant sees the room"
    );
    let bob = connect_with_token(&server, "bob", &token(&key, &everything("r1", "bob"))).await;
    let state = bob.join("r1").await.unwrap();
    assert_eq!(
        state.participants(),
        ["alice"],
        "the moderator is not listed: {state:?}"
    );
    bob.send_message("r1", Some("alice"), "after my join")
        .await
        .unwrap();
    alice
        .wait_room_event("r1", T, |e| matches!(e, RoomEventKind::Message { .. }))
        .await
        .expect("bob's message, after his JOINED");
    let joined: Vec<String> = alice
        .drain_events()
        .into_iter()
        .filter_map(|e| match e {
            webcall_loadtest::wcs::SessionEvent::Room(r) => match r.kind {
                RoomEventKind::Joined(login) => Some(login),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(joined, ["bob"], "JOINED names bob, never the moderator");

    let body = json!({"login": "alice", "room": "r1"}).to_string();
    let (status, _, answer) = server
        .http("POST", "/rest-api/session/kick", &[], body.as_bytes())
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    alice.wait_closed(T).await.expect("the kicked session is closed");
    bob.wait_room_event("r1", T, |e| matches!(e, RoomEventKind::Left(l) if l == "alice"))
        .await
        .expect("the room hears alice left");
    let answer = connection_answer(&server, "alice", Some(&alice_token)).await;
    assert_refused(&answer, "Restricted access: token was revoked");

    // Even a crash keeps the revocation: it was on disk before the kick was answered.
    let dir = server.kill9();
    let server = jwt_server(&dir, &key, &[]);
    let answer = connection_answer(&server, "alice", Some(&alice_token)).await;
    assert_refused(&answer, "Restricted access: token was revoked");
    // A fresh token for the same person gets in: the revocation is of that token.
    connect_with_token(&server, "alice", &token(&key, &everything("r1", "alice"))).await;
    let (status, _, _) = server
        .http("POST", "/rest-api/session/kick", &[], br#"{"login":"nobody"}"#)
        .await;
    assert_eq!(status, 404);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_per_login_old_kicked_or_new_refused() {
    let server = Server::start(Io::Mmsg, 1, &[]);
    let first = server.connect("alice").await;
    first.join("r1").await.unwrap();
    let second = server.connect("alice").await;
    first
        .wait_closed(T)
        .await
        .expect("kick-old closes the older session");
    second.join("r1").await.expect("the newer session has the login");
    drop(server);

    let server = Server::start(Io::Mmsg, 1, &["--duplicate-login", "reject-new"]);
    let first = server.connect("alice").await;
    let answer = connection_answer(&server, "alice", None).await;
    assert_refused(&answer, "Login 'alice' is already connected");
    first.join("r1").await.expect("the first session keeps its login");
}

/// An upgrade to `/` with `origin`: the HTTP status the server answered.
async fn upgrade_status(server: &Server, origin: Option<&str>) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = server.ws_url().into_client_request().unwrap();
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("upgrade: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_origins_open_sessions_or_call_the_rest_api() {
    let server = Server::start(
        Io::Mmsg,
        1,
        &[
            "--allowed-origins",
            "https://app.example.com",
            "--max-sessions-per-ip",
            "3",
        ],
    );
    assert_eq!(upgrade_status(&server, Some("http://evil.example")).await, 403);
    assert_eq!(
        upgrade_status(&server, Some("https://app.example.com")).await,
        101
    );
    assert_eq!(
        upgrade_status(&server, None).await,
        101,
        "encoders and scripts send no Origin"
    );
    let own = format!("http://{}", server.http);
    assert_eq!(
        upgrade_status(&server, Some(&own)).await,
        101,
        "the server's own pages"
    );
    let (status, _, body) = server
        .http(
            "GET",
            "/rest-api/recordings",
            &[("Origin", "http://evil.example")],
            b"",
        )
        .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let (status, head, _) = server
        .http(
            "GET",
            "/rest-api/recordings",
            &[("Origin", "https://app.example.com")],
            b"",
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        head.to_lowercase()
            .contains("access-control-allow-origin: https://app.example.com"),
        "{head}"
    );

    // Three sessions from this address, then 429 with the reason.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held: Vec<WcsSession> = futures_util::future::join_all((0..3).map(|_| server.connect_bare())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(upgrade_status(&server, None).await, 429);
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        upgrade_status(&server, None).await,
        101,
        "closed sessions give their place back"
    );
}

/// Five senders aim 16 KB messages at one session that never reads (a 32 KiB receive window):
/// once what the kernel and the WebSocket buffer hold is full, its queued output passes the
/// 1 MiB budget and the server cuts it off, while the senders keep their sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_stops_reading_is_cut_off_at_its_output_budget() {
    use webcall_loadtest::abuse::net::{establish, get_health, upgrade, Upgrade};
    let server = Server::start(Io::Mmsg, 1, &[]);
    let local = std::net::Ipv4Addr::LOCALHOST;
    let Upgrade::Accepted(mut sink) = upgrade(local, server.http, None, Some(32 * 1024), T)
        .await
        .unwrap()
    else {
        panic!("the receiver's upgrade was refused");
    };
    establish(&mut sink, "sink", Some("flood"), T).await.unwrap();
    let mut senders = Vec::new();
    for i in 0..5 {
        let sender = server.connect(&format!("sender{i}")).await;
        sender.join("flood").await.unwrap();
        senders.push(sender);
    }
    let text = "x".repeat(16 * 1024);
    let started = Instant::now();
    let cut_off = loop {
        for sender in &senders {
            // Refusals past the rate caps are expected; only the deliveries matter.
            let _ = sender.send_message("flood", Some("sink"), &text).await;
        }
        let health = get_health(server.http, T).await.unwrap();
        if health["admission"]["sessions_over_output_cap"].as_u64() >= Some(1)
            || health["admission"]["sessions_write_stalled"].as_u64() >= Some(1)
        {
            break health;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the non-reading session was never cut off: {health}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    };
    eprintln!("cut off after {:?}: {}", started.elapsed(), cut_off["admission"]);
    // The senders are unharmed, and the room no longer lists the sink.
    senders[0]
        .wait_room_event("flood", T, |e| matches!(e, RoomEventKind::Left(l) if l == "sink"))
        .await
        .expect("the room hears the sink leave");
    let probe = server.connect("probe").await;
    let state = probe.join("flood").await.unwrap();
    assert!(!state.participants().contains(&"sink".to_owned()), "{state:?}");
    senders[0]
        .send_message("flood", Some("probe"), "still here")
        .await
        .expect("a sender's session lives on");
    drop(sink);
}
