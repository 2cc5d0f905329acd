//! The application's hooks end to end: the real binary calls a real HTTP backend that this
//! test runs (keep-alive HTTP/1.1 on loopback, answering by method), which verifies each
//! request's HMAC. Allow, refuse with a reason, rewrite, a 404 for an unhooked method, and a
//! backend too slow for `--hook-timeout` under both `--hook-failure` modes; one session
//! waiting on a slow hook does not hold up another.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::http_request::{hmac_hex, read_request};
use support::*;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use webcall_loadtest::RoomEventKind;

const SECRET: &str = "hook-secret-for-the-tests-0123456789";

/// One request as the backend read it, and whether its signature was right.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    body: Value,
    signed: bool,
}

#[derive(Clone, Default)]
struct Backend {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    /// The answer to `method` with `body`: (status, body, delay).
    fn answer(method: &str, body: &Value) -> (u16, String, Duration) {
        match method {
            "connect" => (404, String::new(), Duration::ZERO),
            "joinRoom" if body["room"] == "closed" => (
                403,
                json!({"reason": "This room is closed today"}).to_string(),
                Duration::ZERO,
            ),
            "joinRoom" if body["room"] == "slow" => (200, String::new(), Duration::from_secs(3)),
            "joinRoom" => (200, body.to_string(), Duration::ZERO),
            "sendMessage" => {
                let mut rewritten = body.clone();
                rewritten["text"] = json!(format!("[checked] {}", body["text"].as_str().unwrap_or("")));
                (200, rewritten.to_string(), Duration::ZERO)
            }
            _ => (200, String::new(), Duration::ZERO),
        }
    }

    async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    while let Some(request) = read_request(&mut read).await {
                        let (path, authorization, body) = (
                            request.path.clone(),
                            request.header("authorization").to_owned(),
                            request.body,
                        );
                        let method = path.rsplit('/').next().unwrap_or("").to_owned();
                        let expected = format!("HMAC-SHA256 {}", hmac_hex(SECRET.as_bytes(), &body));
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let (status, answer, delay) = Backend::answer(&method, &body);
                        seen.lock().unwrap().push(Seen {
                            method,
                            body,
                            signed: authorization == expected,
                        });
                        tokio::time::sleep(delay).await;
                        let response = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn hooked_server(backend: SocketAddr, failure: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("webcall-hooks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("hook.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let url = format!("http://{backend}/apps/test");
    let secret = secret.to_str().unwrap().to_owned();
    let args = [
        "--hook-url",
        &url,
        "--hook-secret-file",
        &secret,
        "--hook-timeout",
        "500ms",
        "--hook-failure",
        failure,
    ];
    Server::start_in(dir, Io::Mmsg, 1, &args, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_allows_refuses_and_rewrites_each_action_and_signs_are_checked() {
    let backend = Backend::default();
    let addr = backend.start().await;
    let server = hooked_server(addr, "deny");
    let alice = server.connect("alice").await;
    let bob = server.connect("bob").await;

    let refused = alice.join("closed").await.expect_err("the backend refuses");
    assert_eq!(refused.server_info(), Some("This room is closed today"));
    alice.join("open").await.expect("the backend echoes: allowed");
    bob.join("open").await.unwrap();
    alice
        .send_message("open", Some("bob"), "hello")
        .await
        .expect("allowed, rewritten");
    let message = bob
        .wait_room_event("open", T, |e| matches!(e, RoomEventKind::Message { .. }))
        .await
        .unwrap();
    assert_eq!(
        message,
        RoomEventKind::Message {
            from: "alice".into(),
            text: "[checked] hello".into()
        },
        "the backend's text is what bob reads"
    );

    // A hook slower than --hook-timeout fails closed; meanwhile bob is not held up.
    let started = Instant::now();
    let slow = {
        let alice = alice.clone();
        tokio::spawn(async move { alice.join("slow").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    bob.send_message("open", Some("alice"), "while alice waits")
        .await
        .expect("another session's action goes through");
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "bob waited for alice's hook"
    );
    let refused = slow.await.unwrap().expect_err("timed out, denied");
    assert_eq!(refused.server_info(), Some("Hook unavailable"));

    let seen = backend.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    for method in ["connect", "joinRoom", "sendMessage"] {
        assert!(methods.contains(&method), "{method} was hooked: {methods:?}");
    }
    assert!(
        seen.iter().all(|s| s.signed),
        "every request carries a valid HMAC: {seen:?}"
    );
    let connect = seen.iter().find(|s| s.method == "connect").unwrap();
    assert_eq!(connect.body["login"], "alice");
    let join = seen.iter().find(|s| s.method == "joinRoom").unwrap();
    assert_eq!(join.body["login"], "alice", "{:?}", join.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_fails_open_with_hook_failure_allow() {
    let backend = Backend::default();
    let addr = backend.start().await;
    let server = hooked_server(addr, "allow");
    let alice = server.connect("alice").await;
    alice.join("slow").await.expect("the hook timed out; allowed");

    // With the backend gone altogether, actions still pass under `allow`.
    drop(backend);
    let unreachable = hooked_server("127.0.0.1:9".parse().unwrap(), "allow");
    unreachable
        .connect("bob")
        .await
        .join("any")
        .await
        .expect("allowed");
    let closed = hooked_server("127.0.0.1:9".parse().unwrap(), "deny");
    let frame =
        json!({"message": "connection", "data": [{"appKey": "roomApp", "custom": {"login": "carol"}}]});
    let session = closed.connect_bare().await;
    let answer = reply_to(&session, &frame.to_string()).await;
    assert_fail(&answer, "Hook unavailable");
}
