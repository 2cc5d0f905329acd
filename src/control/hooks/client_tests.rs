//! The hook client against a real HTTP backend on 127.0.0.1 ([`super::test_server`]): every
//! answer row, both failure policies, the deadline, the answer cap, signing, keep-alive reuse,
//! the in-flight bound, TLS, and many calls at once on one current-thread runtime.
//!
//! Thread: each test's own tokio current-thread runtime, as webcall's control thread runs.
//!
//! Invariants: timing assertions leave [`SLACK`] for a loaded two-core machine; nothing here
//! reaches beyond the loopback address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

use super::test_server::{self_signed, Received, Reply, TestServer};
use super::{
    HookClient, HookConfig, HookCountersSnapshot, HookFailure, HookMethod, HookVerdict, HOOK_IN_FLIGHT_MAX,
    HOOK_RESPONSE_BYTES_MAX, HOOK_UNAVAILABLE_REASON,
};

/// Time allowed past a deadline before a test calls it late: room for a loaded two-core
/// machine running the whole suite, and well under [`SLOW_ANSWER`].
const SLACK: Duration = Duration::from_secs(2);

/// How long a backend that is too slow takes to answer.
const SLOW_ANSWER: Duration = Duration::from_secs(10);

fn config(url: String, failure: HookFailure, timeout: Duration) -> HookConfig {
    HookConfig {
        url,
        timeout,
        failure,
        secret: None,
    }
}

fn client(server: &TestServer, failure: HookFailure) -> HookClient {
    HookClient::new(config(server.url(), failure, Duration::from_secs(5))).unwrap()
}

fn echo(request: &Received) -> Reply {
    Reply::raw(200, request.body.clone())
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

fn allowed(rewritten: Option<Value>) -> HookVerdict {
    HookVerdict::Allow {
        rewritten: rewritten.map(object),
    }
}

fn refused(reason: &str) -> HookVerdict {
    HookVerdict::Refuse {
        reason: reason.to_owned(),
    }
}

fn unavailable() -> HookVerdict {
    refused(HOOK_UNAVAILABLE_REASON)
}

fn counts(calls: u64, allowed: u64, refused: u64, failed: u64) -> (u64, u64, u64, u64) {
    (calls, allowed, refused, failed)
}

fn counted(snapshot: HookCountersSnapshot) -> (u64, u64, u64, u64) {
    (
        snapshot.calls,
        snapshot.allowed,
        snapshot.refused,
        snapshot.failed,
    )
}

#[tokio::test(flavor = "current_thread")]
async fn allows_with_the_backend_echo() {
    let server = TestServer::start(echo).await;
    let client = client(&server, HookFailure::Deny);
    let body = json!({"appKey": "app", "sessionId": "s1", "login": "alice", "custom": {"n": 1}});
    assert_eq!(
        client.call(HookMethod::Connect, &body).await,
        allowed(Some(body.clone()))
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/apps/app/connect");
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    assert_eq!(received[0].header("authorization"), None);
    assert_eq!(received[0].body, body.to_string().into_bytes());
    assert_eq!(counted(client.counters()), counts(1, 1, 0, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn allows_with_a_rewrite_or_unchanged_on_an_empty_answer() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/apps/app/joinRoom" => Reply::json(200, json!({"name": "room-2", "extra": true})),
        "/apps/app/playStream" => Reply::raw(200, ""),
        _ => Reply::raw(204, " \n"),
    })
    .await;
    let client = client(&server, HookFailure::Deny);
    let body = json!({"name": "room-1"});
    let rewrite = json!({"name": "room-2", "extra": true});
    assert_eq!(
        client.call(HookMethod::JoinRoom, &body).await,
        allowed(Some(rewrite))
    );
    assert_eq!(client.call(HookMethod::PlayStream, &body).await, allowed(None));
    assert_eq!(client.call(HookMethod::PublishStream, &body).await, allowed(None));
    assert_eq!(counted(client.counters()), counts(3, 3, 0, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_with_the_backend_reason_or_the_status_text() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/apps/app/publishStream" => Reply::json(403, json!({"reason": "not\r\n allowed"})),
        "/apps/app/sendMessage" => Reply::json(200, json!({"status": 403, "reason": "muted"})),
        _ => Reply::raw(401, ""),
    })
    .await;
    let client = client(&server, HookFailure::Allow);
    let body = json!({});
    assert_eq!(
        client.call(HookMethod::PublishStream, &body).await,
        refused("not allowed")
    );
    assert_eq!(
        client.call(HookMethod::SendMessage, &body).await,
        refused("muted")
    );
    assert_eq!(
        client.call(HookMethod::Connect, &body).await,
        refused("Unauthorized")
    );
    assert_eq!(counted(client.counters()), counts(3, 0, 3, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn not_found_means_the_method_is_not_hooked() {
    let server = TestServer::start(|_| Reply::raw(404, "<html>Not Found</html>")).await;
    let client = client(&server, HookFailure::Deny);
    assert_eq!(
        client.call(HookMethod::PlayStream, &json!({"name": "s"})).await,
        allowed(None)
    );
    assert_eq!(counted(client.counters()), counts(1, 1, 0, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn server_errors_and_bad_answers_follow_the_failure_policy() {
    let server = TestServer::start(|r| match r.path.as_str() {
        "/apps/app/connect" => Reply::json(500, json!({"reason": "internal detail"})),
        "/apps/app/joinRoom" => Reply::raw(200, "[1, 2]"),
        "/apps/app/playStream" => Reply::raw(200, "OK"),
        _ => Reply::raw(503, ""),
    })
    .await;
    let body = json!({});
    let open = client(&server, HookFailure::Allow);
    let closed = client(&server, HookFailure::Deny);
    for method in [
        HookMethod::Connect,
        HookMethod::JoinRoom,
        HookMethod::PlayStream,
        HookMethod::SendMessage,
    ] {
        assert_eq!(open.call(method, &body).await, allowed(None), "{method:?}");
        assert_eq!(closed.call(method, &body).await, unavailable(), "{method:?}");
    }
    assert_eq!(counted(open.counters()), counts(4, 0, 0, 4));
    assert_eq!(counted(closed.counters()), counts(4, 0, 0, 4));
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_backend_times_out_on_time_with_either_policy() {
    let server = TestServer::start(|r| echo(r).after(SLOW_ANSWER)).await;
    let timeout = Duration::from_millis(200);
    for (failure, expected) in [
        (HookFailure::Allow, allowed(None)),
        (HookFailure::Deny, unavailable()),
    ] {
        let client = HookClient::new(config(server.url(), failure, timeout)).unwrap();
        let start = Instant::now();
        assert_eq!(client.call(HookMethod::Connect, &json!({"a": 1})).await, expected);
        let took = start.elapsed();
        assert!(
            took >= timeout && took < timeout + SLACK,
            "{failure:?} took {took:?}"
        );
        assert_eq!(counted(client.counters()), counts(1, 0, 0, 1));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn answers_over_the_cap_fail_and_one_at_the_cap_does_not() {
    let padded = |len: usize| format!(r#"{{"pad":"{}"}}"#, "x".repeat(len - 10));
    let at_cap = padded(HOOK_RESPONSE_BYTES_MAX);
    assert_eq!(at_cap.len(), HOOK_RESPONSE_BYTES_MAX);
    let (at_cap2, over) = (at_cap.clone(), padded(HOOK_RESPONSE_BYTES_MAX + 1));
    let server = TestServer::start(move |r| match r.path.as_str() {
        "/apps/app/connect" => Reply::raw(200, at_cap2.clone()),
        "/apps/app/joinRoom" => Reply::raw(200, over.clone()),
        "/apps/app/playStream" => Reply::raw(200, over.clone()).close_delimited(),
        "/apps/app/publishStream" => Reply::raw(403, over.clone()),
        _ => Reply::raw(200, vec![b' '; 4 * HOOK_RESPONSE_BYTES_MAX]).close_delimited(),
    })
    .await;
    let client = client(&server, HookFailure::Deny);
    let body = json!({});
    let expected = serde_json::from_str::<Value>(&at_cap).unwrap();
    assert_eq!(
        client.call(HookMethod::Connect, &body).await,
        allowed(Some(expected))
    );
    // Declared too long, and too long with no declared length.
    assert_eq!(client.call(HookMethod::JoinRoom, &body).await, unavailable());
    assert_eq!(client.call(HookMethod::PlayStream, &body).await, unavailable());
    assert_eq!(client.call(HookMethod::SendMessage, &body).await, unavailable());
    // A refusal stays a refusal, with the status's own words.
    assert_eq!(
        client.call(HookMethod::PublishStream, &body).await,
        refused("Forbidden")
    );
    assert_eq!(counted(client.counters()), counts(5, 1, 1, 3));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn calls_are_signed_with_the_secret_over_the_exact_body() {
    const SECRET: &[u8] = b"app secret";
    let server = TestServer::start(|r| {
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
        let expected = format!("HMAC-SHA256 {}", hex(hmac::sign(&key, &r.body).as_ref()));
        if r.header("authorization") == Some(expected.as_str()) {
            Reply::raw(200, "")
        } else {
            Reply::json(401, json!({"reason": "bad signature"}))
        }
    })
    .await;
    let mut signed = config(server.url(), HookFailure::Allow, Duration::from_secs(5));
    signed.secret = Some(SECRET.to_vec());
    let client = HookClient::new(signed.clone()).unwrap();
    let body = json!({"login": "alice", "text": "hé \"quoted\""});
    assert_eq!(client.call(HookMethod::SendMessage, &body).await, allowed(None));
    assert_eq!(client.call(HookMethod::Connect, &json!({})).await, allowed(None));
    signed.secret = Some(b"another secret".to_vec());
    let wrong = HookClient::new(signed).unwrap();
    assert_eq!(
        wrong.call(HookMethod::Connect, &body).await,
        refused("bad signature")
    );
    let header = server.received()[0].header("authorization").unwrap().to_owned();
    assert!(
        header.starts_with("HMAC-SHA256 ") && header.len() == 12 + 64,
        "{header}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn sequential_calls_reuse_one_connection() {
    let server = TestServer::start(echo).await;
    let client = client(&server, HookFailure::Deny);
    for i in 0..3 {
        let body = json!({ "i": i });
        assert_eq!(client.call(HookMethod::Connect, &body).await, allowed(Some(body)));
    }
    // Clones share the pool.
    let clone = client.clone();
    assert_eq!(
        clone.call(HookMethod::JoinRoom, &json!({})).await,
        allowed(Some(json!({})))
    );
    assert_eq!(server.accepts(), 1);
    assert_eq!(counted(client.counters()), counts(4, 4, 0, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn fifty_calls_at_once_are_not_held_up_by_a_slow_one() {
    // The slow backend method answers only when the test says so: the 49 others must all be
    // answered while it still waits.
    let gate = Arc::new(Notify::new());
    let server_gate = gate.clone();
    let server = TestServer::start(move |r| {
        let reply = echo(r);
        if r.path.ends_with("/playStream") {
            reply.gated(server_gate.clone())
        } else {
            reply
        }
    })
    .await;
    let client = HookClient::new(config(server.url(), HookFailure::Deny, Duration::from_secs(30))).unwrap();
    let spawn = |i: usize, method: HookMethod| {
        let client = client.clone();
        tokio::spawn(async move {
            let body = json!({ "i": i });
            assert_eq!(client.call(method, &body).await, allowed(Some(body)));
        })
    };
    let slow = spawn(0, HookMethod::PlayStream);
    tokio::task::yield_now().await;
    let fast: Vec<_> = (1..50).map(|i| spawn(i, HookMethod::Connect)).collect();
    for task in fast {
        task.await.unwrap();
    }
    assert!(!slow.is_finished(), "the slow call ended before it was let go");
    assert_eq!(counted(client.counters()), counts(50, 49, 0, 0));
    gate.notify_one();
    slow.await.unwrap();
    assert_eq!(counted(client.counters()), counts(50, 50, 0, 0));
    assert_eq!(server.received().len(), 50);
}

#[tokio::test(flavor = "current_thread")]
async fn connection_refused_follows_the_failure_policy_and_warnings_are_rate_limited() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/apps/app", listener.local_addr().unwrap());
    drop(listener);
    let open = HookClient::new(config(url.clone(), HookFailure::Allow, Duration::from_secs(2))).unwrap();
    let closed = HookClient::new(config(url, HookFailure::Deny, Duration::from_secs(2))).unwrap();
    for _ in 0..3 {
        assert_eq!(open.call(HookMethod::Connect, &json!({})).await, allowed(None));
        assert_eq!(closed.call(HookMethod::Connect, &json!({})).await, unavailable());
    }
    let snapshot = closed.counters();
    assert_eq!(counted(snapshot), counts(3, 0, 0, 3));
    // One warning logged per interval per client; the other two counted.
    assert_eq!(snapshot.warnings_suppressed, 2);
    assert_eq!(open.counters().warnings_suppressed, 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_without_a_permit_fails_within_its_timeout() {
    let server = TestServer::start(echo).await;
    let timeout = Duration::from_millis(200);
    let client = HookClient::new(config(server.url(), HookFailure::Deny, timeout)).unwrap();
    let held = client
        .permits()
        .acquire_many(HOOK_IN_FLIGHT_MAX as u32)
        .await
        .unwrap();
    let start = Instant::now();
    assert_eq!(client.call(HookMethod::Connect, &json!({})).await, unavailable());
    let took = start.elapsed();
    assert!(took >= timeout && took < timeout + SLACK, "took {took:?}");
    assert_eq!(server.accepts(), 0);
    drop(held);
    assert_eq!(
        client.call(HookMethod::Connect, &json!({})).await,
        allowed(Some(json!({})))
    );
    assert_eq!(counted(client.counters()), counts(2, 1, 0, 1));
}

#[tokio::test(flavor = "current_thread")]
async fn https_backends_are_verified() {
    let (tls, roots) = self_signed();
    let server = TestServer::start_tls(echo, tls).await;
    let url = format!("https://{}/apps/app", server.addr);
    let timeout = Duration::from_secs(5);
    let trusted = HookClient::with_roots(config(url.clone(), HookFailure::Deny, timeout), roots).unwrap();
    let body = json!({"name": "stream"});
    assert_eq!(
        trusted.call(HookMethod::PublishStream, &body).await,
        allowed(Some(body.clone()))
    );
    assert_eq!(
        trusted.call(HookMethod::PlayStream, &body).await,
        allowed(Some(body.clone()))
    );
    assert_eq!(server.accepts(), 1);
    // A certificate nobody vouches for is a TLS failure, not an answer.
    let untrusted = HookClient::with_roots(
        config(url, HookFailure::Deny, timeout),
        rustls::RootCertStore::empty(),
    )
    .unwrap();
    assert_eq!(untrusted.call(HookMethod::Connect, &body).await, unavailable());
    assert_eq!(counted(untrusted.counters()), counts(1, 0, 0, 1));
    // TLS spoken to a plain HTTP server fails the same way.
    let plain = TestServer::start(echo).await;
    let mismatched = format!("https://{}/apps/app", plain.addr);
    let (_, roots) = self_signed();
    let client = HookClient::with_roots(config(mismatched, HookFailure::Deny, timeout), roots).unwrap();
    assert_eq!(client.call(HookMethod::Connect, &body).await, unavailable());
}

#[test]
fn debug_output_hides_the_secret() {
    let mut config = config(
        "http://host/app".to_owned(),
        HookFailure::Deny,
        Duration::from_secs(1),
    );
    config.secret = Some(b"hunter2".to_vec());
    assert!(!format!("{config:?}").contains("hunter2"));
    // Made outside any runtime: setup spawns nothing.
    let client = HookClient::new(config).unwrap();
    let debug = format!("{client:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("signed: true"),
        "{debug}"
    );
}

#[test]
fn clients_and_calls_can_cross_tasks() {
    fn send_sync<T: Send + Sync + Clone>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let client = HookClient::new(config("http://host/app".to_owned(), HookFailure::Deny, SLACK)).unwrap();
    send_sync(&client);
    send(&client.call(HookMethod::Connect, &Value::Null));
}

#[test]
fn https_urls_load_the_system_roots() {
    // Machines without a CA bundle refuse the setup up front rather than every call later.
    let config = config(
        "https://127.0.0.1:1/apps/app".to_owned(),
        HookFailure::Deny,
        SLACK,
    );
    match HookClient::new(config) {
        Ok(_) | Err(super::HookSetupError::NoRootCertificates { .. }) => {}
        Err(other) => panic!("{other}"),
    }
}
