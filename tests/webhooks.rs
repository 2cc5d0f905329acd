//! Operator webhooks end to end: the real binary POSTs to a real HTTP receiver this test runs
//! (keep-alive HTTP/1.1 on loopback), which checks each request's HMAC and event header,
//! fails some first attempts (they must be retried) and one room's first event forever (it
//! must be dropped after its attempts and reported as `num_dropped`, while other rooms go on).
//! A burst of joins, leaves, disconnects and a kick across three rooms, a recorded publish,
//! then a drain: each room's events arrive in sequence order, every `participant_left`
//! follows its `participant_joined` with its reason, and the drain's events are flushed
//! before the process exits.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::http_request::{hmac_hex, read_request};
use support::*;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use webcall_loadtest::server::free_tcp;
use webcall_loadtest::{publish, room_stream_name, PublishOptions};

const SECRET: &str = "webhook-secret-for-the-tests-0123456789";
const T: Duration = Duration::from_secs(15);

/// One request as the receiver read it.
#[derive(Debug, Clone)]
struct Request {
    body: Value,
    /// The signature and the `X-Webcall-Event` header were right.
    genuine: bool,
    /// The receiver answered 2xx (a delivery), not 5xx.
    accepted: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    /// The status for this body: the doomed room's first event always fails; every third
    /// event's first attempt fails once.
    fn status(&self, body: &Value) -> u16 {
        if body["room"] == "doomed" && body["event"] == "room_started" {
            return 500;
        }
        let tried = self
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.body["id"] == body["id"]);
        if body["sequence"].as_u64().unwrap_or(0) % 3 == 2 && !tried {
            return 503;
        }
        200
    }

    async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let receiver = receiver.clone();
                tokio::spawn(async move { receiver.serve(stream).await });
            }
        });
        addr
    }

    async fn serve(&self, stream: tokio::net::TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        while let Some(request) = read_request(&mut read).await {
            let bytes = request.body.as_slice();
            let (authorization, event) = (request.header("authorization"), request.header("x-webcall-event"));
            let signed = authorization == format!("HMAC-SHA256 {}", hmac_hex(SECRET.as_bytes(), bytes));
            let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            let status = self.status(&body);
            let genuine = signed && body["event"] == event;
            self.requests.lock().unwrap().push(Request {
                body,
                genuine,
                accepted: status == 200,
            });
            let response = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
            if write.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The deliveries (2xx), in arrival order.
    fn delivered(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.accepted)
            .map(|r| r.body)
            .collect()
    }

    async fn wait_for(&self, what: &str, within: Duration, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(body) = self.delivered().into_iter().find(|b| found(b)) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} delivered: {:#?}",
                self.delivered()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_arrive_signed_in_room_order_paired_retried_and_flushed_by_the_drain() {
    let receiver = Receiver::default();
    let addr = receiver.start().await;
    let dir = std::env::temp_dir().join(format!("webcall-webhooks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("webhook.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let url = format!("http://{addr}/webcall/events");
    let secret = secret.to_str().unwrap().to_owned();
    let rtmp = free_tcp().expect("a free port").to_string();
    let args = [
        "--webhook-url",
        &url,
        "--webhook-secret-file",
        &secret,
        "--drain-timeout",
        "1s",
        "--rtmp",
        &rtmp,
    ];
    let mut server = Server::start_in(dir, Io::Mmsg, 1, &args, &[]);

    // The doomed room's first event never gets through; its lane waits, the others do not.
    let doomed = server.connect("doomer").await;
    doomed.join("doomed").await.unwrap();

    // A burst across three rooms: joins, leave-and-rejoin, disconnects.
    let mut sessions = Vec::new();
    for i in 0..12 {
        sessions.push(server.connect(&format!("u{i}")).await);
    }
    let burst = sessions.iter().enumerate().map(|(i, s)| async move {
        let room = format!("r{}", i % 3);
        s.join(&room).await.unwrap();
        if i % 2 == 0 {
            s.leave(&room).await.unwrap();
            s.join(&room).await.unwrap();
        }
    });
    futures_util::future::join_all(burst).await;
    for session in sessions.drain(8..) {
        session.close().await.unwrap();
    }
    // A recorded publish in r0 and a kick in r1.
    let name = room_stream_name("r0", "u0");
    let mut options = PublishOptions::new(&name).room("r0");
    options.record = true;
    let _publisher = publish(&sessions[0], options)
        .await
        .expect("u0 publishes, recorded");
    let (status, _, body) = server
        .http(
            "POST",
            "/api/rooms/r1/kick",
            &[("Content-Type", "application/json")],
            json!({"login": "u1"}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    receiver
        .wait_for("stream_published", T, |b| b["event"] == "stream_published")
        .await;
    // An RTMP encoder joins r2 for three seconds.
    let encoder_url = format!("rtmp://{rtmp}/room/r2/enc");
    let encoder = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "3"])
            .args(["-c:v", "libx264", "-bf", "0", "-g", "30", "-preset", "ultrafast"])
            .args(["-an", "-f", "flv", &encoder_url])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("ffmpeg runs")
    });
    receiver
        .wait_for("the doomed room's next event", Duration::from_secs(30), |b| {
            b["room"] == "doomed" && b["event"] == "participant_joined"
        })
        .await;
    let encoded = encoder.await.unwrap();
    assert!(
        encoded.status.success(),
        "{}",
        String::from_utf8_lossy(&encoded.stderr)
    );
    receiver
        .wait_for("rtmp_disconnected", T, |b| b["event"] == "rtmp_disconnected")
        .await;
    let reported: u64 = receiver
        .delivered()
        .iter()
        .filter_map(|b| b["num_dropped"].as_u64())
        .sum();
    assert_eq!(reported, 1, "the one drop is reported once, on a later delivery");

    // The drain ends everything; its events are delivered before the exit.
    server.signal(libc::SIGTERM);
    let exit = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after the drain");
    assert!(exit.success(), "exit 0: {exit:?}\n{}", server.log());

    let requests = receiver.requests();
    assert!(
        requests.iter().all(|r| r.genuine),
        "every request is signed and named: {requests:#?}"
    );
    let retried = requests
        .iter()
        .filter(|r| !r.accepted && r.body["room"] != "doomed")
        .count();
    assert!(retried > 0, "some first attempts failed");
    let delivered = receiver.delivered();
    let ids: BTreeSet<&str> = delivered.iter().filter_map(|b| b["id"].as_str()).collect();
    for request in requests
        .iter()
        .filter(|r| !r.accepted && r.body["room"] != "doomed")
    {
        let id = request.body["id"].as_str().unwrap_or("");
        assert!(
            ids.contains(id),
            "a failed attempt is delivered later: {}",
            request.body
        );
    }
    assert_eq!(
        delivered
            .iter()
            .filter(|b| b["event"] == "server_draining")
            .count(),
        1,
        "server_draining once: {delivered:#?}"
    );
    let recorded = delivered
        .iter()
        .find(|b| b["event"] == "recording_finished")
        .expect("recording_finished is flushed by the drain");
    assert!(
        recorded["file"].as_str().is_some_and(|f| f.ends_with(".mp4")),
        "{recorded}"
    );
    assert!(recorded["size_bytes"].as_u64() > Some(0), "{recorded}");

    // Per room: sequences rise by one from 1 (the doomed room's 1 was dropped), the room starts
    // first and finishes last, and participants pair up with their reasons.
    let mut by_room: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for body in &delivered {
        by_room
            .entry(body["room"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push(body);
    }
    for room in ["r0", "r1", "r2", "doomed"] {
        let events = by_room.get(room).unwrap_or_else(|| panic!("events for {room}"));
        let sequences: Vec<u64> = events.iter().filter_map(|b| b["sequence"].as_u64()).collect();
        let first = if room == "doomed" { 2 } else { 1 };
        let want: Vec<u64> = (first..first + sequences.len() as u64).collect();
        assert_eq!(sequences, want, "{room} in order, none lost: {events:#?}");
        if room != "doomed" {
            assert_eq!(
                events.first().map(|b| &b["event"]),
                Some(&json!("room_started")),
                "{room}"
            );
        }
        // A recording is finished after its stream ended, so it may follow `room_finished`.
        let last = events.iter().rev().find(|b| b["event"] != "recording_finished");
        assert_eq!(last.map(|b| &b["event"]), Some(&json!("room_finished")), "{room}");
        let mut inside: BTreeSet<u64> = BTreeSet::new();
        let mut reasons = BTreeSet::new();
        for body in events {
            let session = body["session_id"].as_u64().unwrap_or(0);
            match body["event"].as_str() {
                Some("participant_joined") => assert!(inside.insert(session), "joined twice: {body}"),
                Some("participant_left") => {
                    assert!(inside.remove(&session), "left before it joined: {body}");
                    reasons.insert(body["reason"].as_str().unwrap_or("").to_owned());
                }
                _ => {}
            }
        }
        assert!(
            inside.is_empty(),
            "everyone in {room} left by the end: {inside:?}"
        );
        assert!(reasons.contains("server shutting down"), "{room}: {reasons:?}");
        if room != "doomed" {
            assert!(reasons.contains("left"), "{room}: {reasons:?}");
            assert!(
                reasons.contains("disconnected") || room == "r1",
                "{room}: {reasons:?}"
            );
        }
        if room == "r1" {
            assert!(reasons.contains("kicked"), "{reasons:?}");
        }
    }
    let r2 = &by_room["r2"];
    let position = |event: &str| r2.iter().position(|b| b["event"] == event);
    let connected = position("rtmp_connected").expect("rtmp_connected in r2");
    let disconnected = position("rtmp_disconnected").expect("rtmp_disconnected in r2");
    assert!(connected < disconnected, "{r2:#?}");
    let rtmp_event = &r2[connected];
    assert_eq!(
        (&rtmp_event["app"], &rtmp_event["stream"]),
        (&json!("room/r2"), &json!("r2-enc-rtmp-h264"))
    );
    assert!(
        rtmp_event["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{rtmp_event}"
    );
    assert_eq!(r2[disconnected]["reason"], "closed");
    assert!(
        r2.iter()
            .any(|b| b["event"] == "participant_joined" && b["login"] == "enc"),
        "the encoder is a participant of r2: {r2:#?}"
    );
    let published = &by_room["r0"];
    let unpublished = published
        .iter()
        .find(|b| b["event"] == "stream_unpublished")
        .expect("stream_unpublished");
    assert_eq!(unpublished["stream"], name.as_str());
    assert_eq!(unpublished["reason"], "Server is shutting down");
    let started = published
        .iter()
        .find(|b| b["event"] == "stream_published")
        .unwrap();
    assert!(
        started["video_codec"].is_string() && started["login"] == "u0",
        "{started}"
    );
}
