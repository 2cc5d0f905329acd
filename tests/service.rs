//! The server as an operator runs it, end to end against the real binary: the drain on SIGTERM
//! (refusals, calls going on, then every stream, room and socket ended cleanly, a recording
//! finished, exit 0), a second signal hurrying it, `sd_notify` readiness and the watchdog on a
//! datagram socket this test owns (with a worker made to stall), SIGHUP reloading settings,
//! `/health/live` and `/health/ready`, and `/metrics` as `promtool` reads it.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;
use webcall_loadtest::{
    play, publish, room_stream_name, PlayCodecs, PublishOptions, RawIncoming, RoomEventKind, StreamStatus,
    WcsSession,
};

const SHUTTING_DOWN: &str = "Server is shutting down";

async fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let (status, _, body) = server.http("GET", path, &[], b"").await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The reason the session's socket ended with (`close CODE REASON`), once it has.
async fn close_reason(session: &WcsSession) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match session.next_raw(left).await {
            Ok(RawIncoming::Close(Some((code, reason)))) => return format!("close {code} {reason}"),
            Ok(RawIncoming::Close(None)) => return "close".to_owned(),
            Ok(_) => continue,
            Err(error) => panic!("no close frame: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_ends_every_call_cleanly_finishes_recordings_and_exits_0() {
    let mut server = Server::start(Io::Mmsg, 1, &["--drain-timeout", "4s"]);
    let alice = server.connect("alice").await;
    let bob = server.connect("bob").await;
    let carol = server.connect("carol").await;
    alice.join("r1").await.unwrap();
    bob.join("r1").await.unwrap();
    let name = room_stream_name("r1", "alice");
    let mut options = PublishOptions::new(&name).room("r1");
    options.record = true;
    let publisher = publish(&alice, options).await.expect("alice publishes, recorded");
    let player = play(&bob, &name, Some("r1".into()), PlayCodecs::browser())
        .await
        .expect("bob plays");
    assert_flowing(&player, 30, "before the drain").await;
    let (status, ready) = get_json(&server, "/health/ready").await;
    assert_eq!((status, &ready["status"]), (200, &json!("ready")), "{ready}");

    let asked = Instant::now();
    server.signal(libc::SIGTERM);
    // Readiness goes first, so a load balancer stops sending new clients.
    let deadline = Instant::now() + T;
    loop {
        let (status, body) = get_json(&server, "/health/ready").await;
        if status == 503 {
            assert_eq!(body["reason"], "draining", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "readiness still 200 after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // New sessions, joins and publishes are refused with the reason; calls go on.
    let late = server.connect_bare().await;
    let frame =
        json!({"message": "connection", "data": [{"appKey": "roomApp", "custom": {"login": "dave"}}]});
    let answer = reply_to(&late, &frame.to_string()).await;
    assert_fail(&answer, SHUTTING_DOWN);
    let join = carol
        .join("r1")
        .await
        .expect_err("a join is refused while draining");
    assert_eq!(join.server_info(), Some(SHUTTING_DOWN), "{join}");
    let late_publish = publish(&carol, PublishOptions::new("carol-late")).await;
    assert_eq!(
        late_publish.expect_err("a publish is refused").server_info(),
        Some(SHUTTING_DOWN)
    );
    assert_flowing(&player, 30, "during the drain").await;

    // At the drain timeout every stream ends cleanly, the room hears it, sockets close 1001.
    let stopped = player
        .wait_status(StreamStatus::Stopped, Duration::from_secs(15))
        .await
        .expect("the player is STOPPED, not FAILED");
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "calls went on until the timeout"
    );
    assert_eq!(
        stopped.info.as_deref(),
        Some(SHUTTING_DOWN),
        "the player is told why: {stopped:?}"
    );
    publisher
        .wait_status(StreamStatus::Unpublished, T)
        .await
        .expect("the publisher is UNPUBLISHED");
    bob.wait_room_event("r1", T, |e| matches!(e, RoomEventKind::Left(l) if l == "alice"))
        .await
        .expect("bob hears alice leave");
    for session in [&alice, &bob, &carol] {
        let reason = close_reason(session).await;
        assert!(
            reason.starts_with("close 1001"),
            "a going-away close, not 1006: {reason}"
        );
    }
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after the drain");
    assert!(status.success(), "exit status 0: {status:?}\n{}", server.log());
    let log = server.log();
    assert!(log.contains("drained"), "{log}");
    assert!(!log.to_lowercase().contains("panic"), "{log}");
    // The recording in progress is a whole file.
    let records = server.dir().join("records");
    let mp4 = std::fs::read_dir(&records)
        .expect("the records directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "mp4"))
        .expect("the recording's MP4");
    let duration = ffprobe_duration(&mp4);
    assert!(duration > 3.0, "the recording covers the call ({duration} s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_drain_with_a_second_signal_ends_at_once() {
    let mut server = Server::start(Io::Mmsg, 1, &["--drain-timeout", "60s"]);
    let alice = server.connect("alice").await;
    alice.join("r1").await.unwrap();
    let (status, _, body) = server.http("POST", "/rest-api/server/drain", &[], b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, health) = get_json(&server, "/health").await;
    assert_eq!((status, &health["status"]), (200, &json!("draining")), "{health}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hurried = Instant::now();
    server.signal(libc::SIGINT);
    let reason = close_reason(&alice).await;
    assert!(reason.starts_with("close 1001"), "{reason}");
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("a second signal ends the drain");
    assert!(status.success(), "{status:?}");
    assert!(
        hurried.elapsed() < Duration::from_secs(5),
        "ended at once, not after 60 s"
    );
}

/// Every datagram a notify socket receives, with when it came and whether the server's HTTP
/// port answered at that moment.
#[derive(Default)]
struct Notified {
    messages: Vec<(Instant, String, bool)>,
}

fn listen_notify(path: &Path, log: std::path::PathBuf) -> Arc<Mutex<Notified>> {
    let socket = UnixDatagram::bind(path).expect("bind the notify socket");
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let seen = Arc::new(Mutex::new(Notified::default()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        loop {
            let Ok(n) = socket.recv(&mut buffer) else {
                if Arc::strong_count(&sink) == 1 {
                    return;
                }
                continue;
            };
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            // When READY=1 comes, does the port answer? The log names it before the notify.
            let answers = text.contains("READY=1") && {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                log.lines()
                    .find_map(|l| l.split("open http://").nth(1))
                    .and_then(|rest| rest.split('/').next())
                    .and_then(|addr| addr.parse().ok())
                    .is_some_and(|addr| {
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
                    })
            };
            sink.lock()
                .unwrap()
                .messages
                .push((Instant::now(), text, answers));
        }
    });
    seen
}

fn watchdog_pings_between(seen: &Mutex<Notified>, from: Instant, to: Instant) -> usize {
    let seen = seen.lock().unwrap();
    seen.messages
        .iter()
        .filter(|(at, text, _)| *at >= from && *at <= to && text.contains("WATCHDOG=1"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_after_the_ports_answer_and_the_watchdog_stops_when_a_worker_stalls() {
    let dir = std::env::temp_dir().join(format!("webcall-notify-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = std::env::temp_dir().join(format!("webcall-notify-{}.sock", uuid::Uuid::new_v4().simple()));
    let seen = listen_notify(&socket, dir.join("server.log"));
    let env = [
        ("NOTIFY_SOCKET", socket.to_str().unwrap()),
        ("WATCHDOG_USEC", "1000000"),
        ("WEBCALL_FAULT_INJECTION", "1"),
    ];
    let mut server = Server::start_in(dir, Io::Mmsg, 2, &[], &env);
    let deadline = Instant::now() + T;
    let ready = loop {
        let ready = seen
            .lock()
            .unwrap()
            .messages
            .iter()
            .find(|(_, t, _)| t.contains("READY=1"))
            .cloned();
        if let Some(ready) = ready {
            break ready;
        }
        assert!(Instant::now() < deadline, "no READY=1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(ready.2, "the HTTP port answered when READY=1 came");
    assert!(
        ready.1.contains("STATUS="),
        "READY=1 carries a status line: {}",
        ready.1
    );

    // Every worker beats: the watchdog is pinged about twice a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = Instant::now();
    let pings = watchdog_pings_between(&seen, now - Duration::from_secs(2), now);
    assert!(pings >= 2, "WATCHDOG=1 while the workers run ({pings} in 2 s)");

    // A worker wedged for 7 s: after the stale threshold, no ping, and readiness says why.
    let body = br#"{"worker": 1, "seconds": 7}"#;
    let (status, _, _) = server
        .http("POST", "/rest-api/debug/stall_worker", &[], body)
        .await;
    assert_eq!(status, 200);
    let stalled_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let (status, ready) = get_json(&server, "/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["reason"].as_str().unwrap_or_default().contains("[1]"),
        "{ready}"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let silent = watchdog_pings_between(&seen, stalled_at + Duration::from_millis(3800), Instant::now());
    assert_eq!(silent, 0, "no WATCHDOG=1 while a worker is stalled");
    // It comes back when the worker does.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = Instant::now();
    assert!(
        watchdog_pings_between(&seen, now - Duration::from_secs(1), now) >= 1,
        "WATCHDOG=1 again once the worker turns"
    );
    let (status, _) = get_json(&server, "/health/ready").await;
    assert_eq!(status, 200);

    server.signal(libc::SIGTERM);
    let status = server.wait_exit(T).expect("exits");
    assert!(status.success());
    let stopping = seen
        .lock()
        .unwrap()
        .messages
        .iter()
        .any(|(_, t, _)| t.contains("STOPPING=1"));
    assert!(stopping, "systemd heard STOPPING=1");
    let _ = std::fs::remove_file(&socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_what_can_change_and_names_what_waits_for_a_restart() {
    let dir = std::env::temp_dir().join(format!("webcall-reload-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("webcall.toml");
    std::fs::write(&config, "room_capacity = 1\nworkers = 1\n").unwrap();
    let mut server = Server::start_in(dir, Io::Mmsg, 1, &["--config", config.to_str().unwrap()], &[]);
    let alice = server.connect("alice").await;
    let bob = server.connect("bob").await;
    alice.join("r1").await.unwrap();
    let full = bob.join("r1").await.expect_err("room of one");
    assert_eq!(full.server_info(), Some("Room is full (capacity 1)"));
    std::fs::write(
        &config,
        "room_capacity = 2\nworkers = 1\nrtmp_opus_kbps = 64\nlog_level = \"debug,str0m=warn,dimpl=warn\"\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + T;
    while !server.log().contains("SIGHUP: settings reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = server
        .log()
        .lines()
        .find(|l| l.contains("SIGHUP: settings reloaded"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("room_capacity") && line.contains("log_level"),
        "{line}"
    );
    assert!(line.contains("needs_restart=[\"rtmp_opus_kbps\"]"), "{line}");
    bob.join("r1").await.expect("the new capacity holds");
    // A broken file changes nothing and says why.
    std::fs::write(&config, "room_capacity = \"many\"\n").unwrap();
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + T;
    while !server.log().contains("SIGHUP: the settings were not reloaded") {
        assert!(Instant::now() < deadline, "no refusal: {}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_prometheus_text_with_bounded_labels() {
    let server = Server::start(Io::Mmsg, 2, &[]);
    let alice = server.connect("alice").await;
    let bob = server.connect("bob").await;
    alice.join("secret-room-name").await.unwrap();
    bob.join("secret-room-name").await.unwrap();
    let name = room_stream_name("secret-room-name", "alice");
    let _publisher = publish(&alice, PublishOptions::new(&name).room("secret-room-name"))
        .await
        .unwrap();
    let player = play(
        &bob,
        &name,
        Some("secret-room-name".into()),
        PlayCodecs::browser(),
    )
    .await
    .unwrap();
    assert_flowing(&player, 30, "a played stream").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, head, body) = server.http("GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);
    assert!(
        head.to_lowercase().contains("text/plain; version=0.0.4"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    for name in [
        "webcall_sessions 2",
        "webcall_rooms 1",
        "webcall_participants 2",
        "webcall_streams{role=\"published\",codec=\"H264\"} 1",
        "webcall_streams{role=\"played\",codec=\"OPUS\"} 1",
        "webcall_worker_received_bytes_total{worker=\"0\"}",
        "webcall_worker_dropped_datagrams_total{worker=\"1\",reason=\"unroutable\"}",
        "webcall_worker_turn_duration_seconds_bucket{worker=\"0\",le=\"+Inf\"}",
        "webcall_join_latency_seconds_count 2",
        "webcall_worker_nacks_received_total",
        "webcall_rtmp_connections 0",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(text.contains(name), "/metrics has {name}:\n{text}");
    }
    assert!(
        !text.contains("secret-room-name") && !text.contains("alice"),
        "no room or login in labels"
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-test-deps.sh installs Debian's prometheus)");
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // /health/live and the JSON /health stay.
    let (status, live) = get_json(&server, "/health/live").await;
    assert_eq!((status, &live["status"]), (200, &json!("live")));
    let (status, health) = get_json(&server, "/health").await;
    assert_eq!(status, 200);
    assert!(
        health["workers"][0]["bytes_received"].as_u64().unwrap_or(0) > 0,
        "{health}"
    );
}
