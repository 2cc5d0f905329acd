//! Bad input on each I/O backend, while a healthy room keeps receiving media.
//!
//! One server per backend (two workers, `--room-capacity 2`). Alice publishes in a room and Bob
//! plays her stream; then other clients throw everything the reliability notes list at the
//! server: non-JSON, JSON of the wrong shape, unknown messages and commands, a binary frame, a
//! frame over the 64 KiB cap (answered, the socket stays open) and one over the WebSocket
//! layer's limit (that socket alone is closed), commands in the wrong state (publish before
//! join, play of an unknown stream or of a room's stream from outside it, a stream name or
//! `mediaSessionId` already in use, joining a full room, leaving a room never joined), garbage
//! SDP of every kind, a burst of 10,000 frames in one second from one socket (rate limited with
//! a `fail`, the socket served again afterwards), and at every worker port a thousand random
//! datagrams, lying RTP/RTCP/DTLS and every truncation of a STUN binding request (signed for a
//! live peer, wrongly signed, and for an unknown ufrag), after which that live peer still
//! answers a valid check. Each frame gets the protocol's clear error (`fail`,
//! `DataStatusEvent` FAILED or stream status FAILED, with its `info`); Bob's player keeps
//! receiving throughout; the server never panics; and when the intruders are gone `/health`
//! shows only the healthy room.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;
use webcall_loadtest::{
    play, publish, room_stream_name, Error, Kind, PlayCodecs, PlayOptions, Player, PublishOptions,
    SessionEvent, WcsSession,
};

use webcall::control::session::SESSION_FRAMES_PER_SECOND_MAX;

use support::{
    assert_data_failed, assert_fail, assert_flowing, assert_stream_failed, backends, data0, next_answer,
    packets_of, reply_to, unique, Health, Io, Server, T,
};

/// A real Chromium publish offer (H.264, VP8, Opus, ...), as the SDK sends it.
const CHROME_OFFER: &str = include_str!("../src/sdp/testdata/chrome_publish_offer.sdp");

backends!(bad_input => bad_input_uring, bad_input_mmsg);

async fn bad_input(io: Io) {
    let mut server = Server::start(io, 2, &["--room-capacity", "2"]);

    // The healthy room: Alice publishes, Bob plays.
    let room = unique("healthy");
    let alice = server.connect("alice").await;
    alice.join(&room).await.unwrap();
    let bob = server.connect("bob").await;
    bob.join(&room).await.unwrap();
    let stream = room_stream_name(&room, "alice");
    let _alice_pub = publish(&alice, PublishOptions::new(&stream).room(&room))
        .await
        .unwrap();
    let healthy = Player::play(&bob, PlayOptions::new(&stream).room(&room))
        .await
        .unwrap();
    healthy.wait_packets(Kind::Video, 10, T).await.unwrap();

    malformed_frames(&server).await;
    assert_flowing(&healthy, 20, "after malformed frames").await;

    wrong_state(&server, &room, &stream).await;
    assert_flowing(&healthy, 20, "after commands in the wrong state").await;

    let mallory = server.connect("mallory").await;
    let live = garbage_sdp(&mallory, &stream).await;
    assert_flowing(&healthy, 20, "after garbage SDP").await;

    let workers = server.worker_addrs();
    let owner = live_peer_answers(&workers, &live).await;
    mallory.drain_events();
    for worker in &workers {
        udp_garbage(*worker, &live, *worker == owner).await;
    }
    assert_flowing(&healthy, 20, "after UDP garbage").await;
    let ended: Vec<_> = mallory
        .drain_events()
        .into_iter()
        .filter(|e| matches!(e, SessionEvent::Stream(s) if s.media_session_id == live.media_session_id))
        .collect();
    assert!(ended.is_empty(), "the garbage ended the live peer: {ended:?}");
    assert_eq!(
        live_peer_answers(&workers, &live).await,
        owner,
        "the live peer still answers checks, from its own worker"
    );

    frame_burst(&server, &healthy).await;
    assert_flowing(&healthy, 20, "after the burst").await;

    // The intruders leave; only the healthy room remains, still receiving.
    mallory.close().await.unwrap();
    let healthy_only = Health {
        sessions: 2,
        rooms: 1,
        published: 1,
        peers: 2,
    };
    server.wait_health(healthy_only).await;
    assert_flowing(&healthy, 20, "at the end").await;
    server.assert_alive_without_panics();
}

/// Frames that are not the protocol, from a socket that has not even sent `connection`.
async fn malformed_frames(server: &Server) {
    let raw = server.connect_bare().await;
    let cases = [
        ("not json", "Message is not JSON"),
        ("[1, 2, 3]", "Message is not a JSON object"),
        ("{}", "Message has no 'message' name"),
        (r#"{"message": 7, "data": []}"#, "Message has no 'message' name"),
        (
            r#"{"message":"frobnicate","data":[{}]}"#,
            "Unknown message 'frobnicate'",
        ),
        (
            r#"{"message":"publishStream","data":[{}]}"#,
            "Missing 'mediaSessionId'",
        ),
        (
            r#"{"message":"publishStream","data":"x"}"#,
            "'stream' data must be an object",
        ),
        (
            r#"{"message":"playStream","data":[{"mediaSessionId":5}]}"#,
            "'mediaSessionId' must be a string",
        ),
        (
            r#"{"message":"connection","data":[[]]}"#,
            "'connection' data must be an object",
        ),
        (
            r#"{"message":"sendData","data":[{"payload":{}}]}"#,
            "Missing 'operationId'",
        ),
    ];
    for (frame, info) in cases {
        let answer = reply_to(&raw, frame).await;
        assert_fail(&answer, info);
    }
    // A command that carries its operationId is refused through its own acknowledgement.
    let answer = reply_to(
        &raw,
        &send_data("op-early", json!({"command": "join", "options": {"name": "r"}})),
    )
    .await;
    assert_data_failed(
        &answer,
        "op-early",
        "Session is not established: send 'connection' first",
    );
    let answer = reply_to(&raw, &send_data("op-shape", json!("payload as a string"))).await;
    assert_data_failed(&answer, "op-shape", "'payload' data must be an object");

    // Binary frames are not part of the protocol.
    while raw.next_raw(Duration::ZERO).await.is_ok() {}
    raw.send_binary(&[0, 1, 2, 0xff]).unwrap();
    assert_fail(
        &next_answer(&raw).await,
        "Binary frames are not part of the protocol",
    );

    // A 70 KB frame is over the 64 KiB cap: refused with a reason, and the socket stays usable.
    let huge = format!(r#"{{"message":"ping","data":["{}"]}}"#, "x".repeat(70_000));
    let answer = reply_to(&raw, &huge).await;
    assert_fail(&answer, "Message is larger than 65536 bytes");
    let welcome = reply_to(&raw, &webcall_loadtest::wcs::messages::connection(&conn("late"))).await;
    assert_eq!(
        welcome["message"], "getUserData",
        "the socket still works: {welcome}"
    );
    // Once established, the shapes inside a command are checked too.
    let answer = reply_to(
        &raw,
        &send_data("op-opts", json!({"command": "join", "options": [1]})),
    )
    .await;
    assert_data_failed(&answer, "op-opts", "'options' must be an object");
    let answer = reply_to(
        &raw,
        &send_data("op-name", json!({"command": "join", "options": {}})),
    )
    .await;
    assert_data_failed(&answer, "op-name", "Missing 'name'");
    let answer = reply_to(
        &raw,
        &send_data("op-type", json!({"command": "join", "options": {"name": 1}})),
    )
    .await;
    assert_data_failed(&answer, "op-type", "'name' must be a string");
    let answer = reply_to(&raw, &send_data("op-cmd", json!({"command": "frobnicate"}))).await;
    assert_data_failed(&answer, "op-cmd", "Unknown command 'frobnicate'");
    let answer = reply_to(&raw, &webcall_loadtest::wcs::messages::connection(&conn("again"))).await;
    assert_fail(&answer, "Session is already established");
    assert!(!raw.is_closed());
    raw.close().await.unwrap();

    // A frame beyond what the WebSocket layer accepts at all (1 MiB) ends that socket only.
    let flood = server.connect_bare().await;
    flood.send_text(&"y".repeat(2 << 20)).unwrap();
    flood
        .wait_closed(T)
        .await
        .expect("a 2 MiB frame closes its socket");
}

/// Commands that are well formed but come in the wrong state.
async fn wrong_state(server: &Server, room: &str, healthy_stream: &str) {
    let mallory = server.connect("mallory").await;

    // Publishing into a room before joining it.
    let name = room_stream_name(room, "mallory");
    let err = publish(&mallory, PublishOptions::new(&name).room(room))
        .await
        .unwrap_err();
    assert_eq!(
        err.server_info(),
        Some(format!("Not joined to room '{room}'").as_str())
    );
    // Playing a stream nobody publishes.
    let err = play(&mallory, "no-such-stream", None, PlayCodecs::browser())
        .await
        .unwrap_err();
    assert_eq!(err.server_info(), Some("Stream not found"));
    // Playing a room's stream from outside the room.
    let err = play(&mallory, healthy_stream, None, PlayCodecs::browser())
        .await
        .unwrap_err();
    assert_eq!(err.server_info(), Some("Restricted access"));
    // Publishing under a name already in use.
    let err = publish(&mallory, PublishOptions::new(healthy_stream))
        .await
        .unwrap_err();
    assert_eq!(err.server_info(), Some("Stream name is already in use"));

    // Room commands: leave or message a room never joined, an unknown command, a full room.
    let refused = |r: Result<(), Error>| r.unwrap_err().server_info().map(str::to_owned);
    assert_eq!(
        refused(mallory.leave("nowhere").await),
        Some("Not joined to room 'nowhere'".into())
    );
    assert_eq!(
        refused(mallory.send_message("nowhere", None, "hi").await),
        Some("Not joined to room 'nowhere'".into())
    );
    let unknown = mallory.send_data("frobnicate", json!({})).await.map(|_| ());
    assert_eq!(refused(unknown), Some("Unknown command 'frobnicate'".into()));
    // The text after "Room is full" (the capacity) is the server's own wording.
    let full = |r: Result<webcall_loadtest::RoomState, Error>| {
        let info = r.unwrap_err().server_info().unwrap_or_default().to_owned();
        assert!(info.starts_with("Room is full"), "join of a full room: {info:?}");
    };
    full(mallory.join(room).await);
    let small = unique("small");
    mallory.join(&small).await.unwrap();
    assert_eq!(
        mallory.join(&small).await.unwrap_err().server_info(),
        Some(format!("Already joined room '{small}'").as_str())
    );
    let trudy = server.connect("trudy").await;
    trudy.join(&small).await.unwrap();
    let oscar = server.connect("oscar").await;
    full(oscar.join(&small).await);
    assert_eq!(
        refused(trudy.send_message(&small, Some("nobody"), "hi").await),
        Some(format!("Participant 'nobody' is not in room '{small}'"))
    );
    let long = "z".repeat(16 * 1024 + 1);
    assert_eq!(
        refused(trudy.send_message(&small, None, &long).await),
        Some("Message text is longer than 16384 bytes".into())
    );
    for s in [&mallory, &trudy, &oscar] {
        s.close().await.unwrap();
    }
}

/// The ICE credentials of a server peer waiting for connectivity checks.
struct LivePeer {
    /// `SERVER_UFRAG:CLIENT_UFRAG`, the USERNAME of a check sent to it.
    username: String,
    /// The server's ice-pwd, which signs such a check.
    password: String,
    /// The stream's `mediaSessionId`.
    media_session_id: String,
}

/// SDP that cannot be negotiated, in `publishStream` and `playStream`. Returns the ICE
/// credentials of a peer the server created from a real offer (it now waits for checks).
async fn garbage_sdp(mallory: &WcsSession, healthy_stream: &str) -> LivePeer {
    let no_media = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    let no_fingerprint: String = CHROME_OFFER
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let vp9_only = format!(
        "{no_media}a=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\n\
         a=rtpmap:98 VP9/90000\r\n",
        ["AB"; 32].join(":")
    );
    let many_sections = format!("{no_media}{}", "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n".repeat(500));
    let binary_junk: String = (0u32..3000)
        .map(|i| char::from((i * 7 % 95 + 32) as u8))
        .collect();
    let cases: [(&str, &str); 8] = [
        ("", "Missing SDP offer"),
        ("   \r\n", "Missing SDP offer"),
        ("garbage", "Invalid SDP: SDP is empty or not an SDP"),
        (&binary_junk, "Invalid SDP"),
        (no_media, "Invalid SDP: SDP has no media"),
        (&no_fingerprint, "Invalid SDP: SDP has no DTLS fingerprint"),
        (&many_sections, "Invalid SDP: SDP has more than 16 media sections"),
        (&vp9_only, "No common codecs"),
    ];
    for (sdp, info) in cases {
        let msid = uuid::Uuid::new_v4().to_string();
        let answer = reply_to(mallory, &publish_stream(&msid, &unique("junk"), sdp)).await;
        assert_stream_failed(&answer, &msid, info);
    }

    // A real offer is answered, and its peer waits for connectivity checks.
    let msid = uuid::Uuid::new_v4().to_string();
    let chrome = unique("chrome");
    let answer = reply_to(mallory, &publish_stream(&msid, &chrome, CHROME_OFFER)).await;
    assert_eq!(answer["message"], "setRemoteSDP", "answer {answer}");
    let attribute = |sdp: &str, name: &str| {
        sdp.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {sdp}"))
            .to_owned()
    };
    let sdp = answer["data"][1].as_str().expect("answer SDP");
    let live = LivePeer {
        username: format!(
            "{}:{}",
            attribute(sdp, "a=ice-ufrag:"),
            attribute(CHROME_OFFER, "a=ice-ufrag:")
        ),
        password: attribute(sdp, "a=ice-pwd:"),
        media_session_id: msid.clone(),
    };
    // Its mediaSessionId cannot be reused: refused with `fail`, so the live stream is untouched.
    let answer = reply_to(mallory, &publish_stream(&msid, &unique("again"), CHROME_OFFER)).await;
    assert_fail(&answer, "MediaSessionId is already in use");
    assert_eq!(answer["data"][0]["id"], json!(msid), "answer {answer}");
    // Playing it with garbage SDP fails the same way publishing does.
    let play_msid = uuid::Uuid::new_v4().to_string();
    let mut frame: Value = serde_json::from_str(&publish_stream(&play_msid, &chrome, "garbage")).unwrap();
    frame["message"] = json!("playStream");
    frame["data"][0]["published"] = json!(false);
    let answer = reply_to(mallory, &frame.to_string()).await;
    assert_stream_failed(&answer, &play_msid, "Invalid SDP");
    // And a stop for a stream this session never had is ignored, as the SDK expects.
    mallory
        .send_text(&webcall_loadtest::wcs::messages::stop_stream(
            "not-mine",
            healthy_stream,
        ))
        .unwrap();
    live
}

/// Random and lying datagrams at one worker port, paced so the socket buffer takes them all.
/// At the worker that holds the live peer, the sending socket first passes a valid check, so
/// its garbage goes straight into that peer's connection instead of stopping at the demux.
async fn udp_garbage(worker: SocketAddr, live: &LivePeer, holds_live_peer: bool) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    if holds_live_peer {
        let check = stun_binding_request(&live.username, Some(&live.password));
        check_until_answered(&socket, &[worker], &check).await;
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(worker.port()));
    let mut datagrams: Vec<Vec<u8>> = Vec::new();

    // A thousand random datagrams; a third start like RTP, a third like RTCP.
    for i in 0..1000 {
        let len = 1 + (rng.next() % 1400) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match (i % 3, d.len()) {
            (0, n) if n >= 2 => {
                d[0] = 0x80 | (d[0] & 0x3f);
                d[1] = 96 + (d[1] % 32);
            }
            (1, n) if n >= 2 => {
                d[0] = 0x80 | (d[0] & 0x1f);
                d[1] = 200 + (d[1] % 7);
            }
            _ => {}
        }
        datagrams.push(d);
    }
    // RTCP whose length fields claim more than the datagram holds, alone and in a compound.
    datagrams.push(vec![0x80, 200, 0xff, 0xff, 0, 0, 0, 1]);
    datagrams.push(vec![
        0x81, 201, 0x00, 0x07, 0, 0, 0, 1, 0x81, 206, 0xff, 0xff, 0, 0, 0, 2,
    ]);
    datagrams.push(vec![0x9f, 206, 0x00, 0x00]);
    // DTLS records and handshake fragments whose lengths lie.
    datagrams.push(vec![
        22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 0, 0, 0,
    ]);
    datagrams.push(vec![
        22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff, 0, 0, 0,
    ]);
    // Every truncation of a binding request: correctly signed for the live peer, signed with a
    // wrong password for it, and for an unknown ufrag; each as cut (the header claims the full
    // length) and with the header's length made to match.
    let requests = [
        stun_binding_request(&live.username, Some(&live.password)),
        stun_binding_request(&live.username, None),
        stun_binding_request("unknownufrag0000:other", None),
    ];
    for request in requests {
        for cut in 0..=request.len() {
            let mut d = request[..cut].to_vec();
            datagrams.push(d.clone());
            if cut >= 20 {
                let body = u16::try_from(cut - 20).unwrap();
                d[2..4].copy_from_slice(&body.to_be_bytes());
                datagrams.push(d);
            }
        }
        // A USERNAME attribute claiming 65535 bytes.
        let mut lying = request.clone();
        lying[22..24].copy_from_slice(&[0xff, 0xff]);
        datagrams.push(lying);
    }
    for chunk in datagrams.chunks(32) {
        for d in chunk {
            socket.send_to(d, worker).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sends a correctly signed check for the live peer to every worker; returns the worker that
/// answered it.
async fn live_peer_answers(workers: &[SocketAddr], live: &LivePeer) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let request = stun_binding_request(&live.username, Some(&live.password));
    check_until_answered(&socket, workers, &request).await
}

/// Sends `request` to `workers`, retransmitting every 100 ms as ICE does (the worker
/// may learn of a new peer a moment after its answer SDP went out), until a Binding Success for
/// its transaction arrives; returns who sent it.
async fn check_until_answered(socket: &UdpSocket, workers: &[SocketAddr], request: &[u8]) -> SocketAddr {
    let deadline = Instant::now() + T;
    let mut buf = [0u8; 1500];
    loop {
        for worker in workers {
            socket.send_to(request, worker).await.unwrap();
        }
        let wait = tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await;
        if let Ok(received) = wait {
            let (n, from) = received.unwrap();
            assert!(workers.contains(&from), "answer from {from}");
            assert!(n >= 20, "a STUN answer: {:?}", &buf[..n]);
            assert_eq!(&buf[..2], &[0x01, 0x01], "a Binding Success: {:?}", &buf[..n]);
            assert_eq!(&buf[8..20], &request[8..20], "for our transaction");
            return from;
        }
        assert!(
            Instant::now() < deadline,
            "the live peer does not answer a valid check"
        );
    }
}

/// 10,000 frames within one second from one socket. The server handles at most
/// `SESSION_FRAMES_PER_SECOND_MAX` of a session's frames per second and drops the rest, saying
/// so once per second with a `fail` (`apiMethod: rateLimit`); every frame it does handle is
/// answered (here: refused, as the socket never sent `connection`). The healthy player keeps
/// receiving meanwhile, and once the burst is over the socket works again.
async fn frame_burst(server: &Server, healthy: &Player) {
    const FRAMES: usize = 10_000;
    const BATCHES: usize = 100;
    let limit = SESSION_FRAMES_PER_SECOND_MAX as usize;
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let (mut sink, mut frames) = ws.split();
    // Counts the answers until `getUserData`, the answer to the `connection` sent after the
    // burst: frames are handled in order, so every earlier answer has arrived by then.
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let (mut refused, mut rate_limited) = (0usize, 0usize);
        loop {
            let frame = match tokio::time::timeout(T, frames.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
                other => panic!("burst socket after {refused} answers: {other:?}"),
            };
            let v: Value = serde_json::from_str(frame.as_str()).unwrap();
            let d = data0(&v);
            match v["message"].as_str() {
                Some("DataStatusEvent") => {
                    assert!(d["operationId"].as_str().unwrap().starts_with("burst-"), "{v}");
                    assert_eq!(d["status"], "FAILED", "{v}");
                    assert_eq!(d["info"], "Session is not established: send 'connection' first");
                    refused += 1;
                }
                Some("fail") if d["apiMethod"] == "rateLimit" => {
                    let info = d["info"].as_str().unwrap_or_default();
                    assert!(
                        info.starts_with(&format!("More than {limit} messages per second")),
                        "{v}"
                    );
                    rate_limited += 1;
                }
                Some("getUserData") => break,
                _ => {}
            }
        }
        let _ = done_tx.send(());
        (refused, rate_limited, frames)
    });

    let before = packets_of(healthy);
    let start = Instant::now();
    for batch in 0..BATCHES {
        for i in 0..FRAMES / BATCHES {
            let op = format!("burst-{batch}-{i}");
            let text = send_data(&op, json!({"command": "join", "options": {"name": "burst"}}));
            sink.feed(Message::text(text)).await.unwrap();
        }
        sink.flush().await.unwrap();
        tokio::time::sleep_until((start + Duration::from_millis(10 * (batch as u64 + 1))).into()).await;
    }
    let elapsed = start.elapsed();
    let during = packets_of(healthy) - before;
    // The writer is paced to one second; a loaded machine may stretch that, which only makes
    // the rate lower, never the checks below weaker.
    assert!(
        during >= 20,
        "the healthy player received only {during} packets during the burst ({elapsed:?})"
    );

    // Once the budget renews, the same socket is served again: `connection` is answered.
    let hello = webcall_loadtest::wcs::messages::connection(&conn("after-burst"));
    let deadline = Instant::now() + T;
    loop {
        sink.send(Message::text(hello.clone())).await.unwrap();
        if tokio::time::timeout(Duration::from_millis(200), &mut done_rx)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the socket is not served again after the burst"
        );
    }
    let (refused, rate_limited, _frames) = reader.await.unwrap();
    // Each second over the budget handled exactly `limit` frames and said so once; the last
    // second may have stayed under it.
    assert!(rate_limited >= 1, "a burst of {FRAMES} frames is rate limited");
    assert!(
        (limit * rate_limited..=limit * (rate_limited + 1)).contains(&refused),
        "{refused} frames answered over {rate_limited} rate-limited seconds"
    );
    sink.close().await.unwrap();
}

fn conn(login: &str) -> webcall_loadtest::wcs::messages::ConnectionOptions {
    webcall_loadtest::wcs::messages::ConnectionOptions::room(login)
}

fn send_data(operation_id: &str, payload: Value) -> String {
    json!({"message": "sendData", "data": [{"operationId": operation_id, "payload": payload}]}).to_string()
}

fn publish_stream(msid: &str, name: &str, sdp: &str) -> String {
    json!({"message": "publishStream", "data": [{
        "mediaSessionId": msid, "name": name, "published": true, "hasVideo": true,
        "hasAudio": true, "status": "PENDING", "record": false, "mediaProvider": "WebRTC",
        "sdp": sdp,
    }]})
    .to_string()
}

/// A STUN binding request as a browser sends it (USERNAME, PRIORITY, ICE-CONTROLLING,
/// USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT): signed with `password`, or with a made-up
/// integrity value when `None`; the fingerprint is always right.
fn stun_binding_request(username: &str, password: Option<&str>) -> Vec<u8> {
    fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        out.extend_from_slice(value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&uuid::Uuid::new_v4().as_bytes()[..12]);
    attr(&mut m, 0x0006, username.as_bytes());
    attr(&mut m, 0x0024, &0x6e7f_00ffu32.to_be_bytes());
    attr(&mut m, 0x802a, &[1, 2, 3, 4, 5, 6, 7, 8]);
    attr(&mut m, 0x0025, &[]);
    // The length covers MESSAGE-INTEGRITY when it is computed.
    let with_integrity = u16::try_from(m.len() - 20 + 24).unwrap();
    m[2..4].copy_from_slice(&with_integrity.to_be_bytes());
    let integrity = match password {
        Some(p) => hmac_sha1(p.as_bytes(), &m),
        None => [0xaa; 20],
    };
    attr(&mut m, 0x0008, &integrity);
    let with_fingerprint = u16::try_from(m.len() - 20 + 8).unwrap();
    m[2..4].copy_from_slice(&with_fingerprint.to_be_bytes());
    let fingerprint = crc32(&m) ^ 0x5354_554e;
    attr(&mut m, 0x8028, &fingerprint.to_be_bytes());
    m
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, x) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&sha1(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha1(&inner));
    sha1(&outer)
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The hand-made STUN pieces against published check values.
#[test]
fn stun_request_is_well_formed() {
    let m = stun_binding_request("abcd:efgh", Some("pass"));
    assert_eq!(m.len() % 4, 0);
    assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len() - 20);
    assert_eq!(&m[4..8], &[0x21, 0x12, 0xa4, 0x42]);
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
}
