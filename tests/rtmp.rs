//! The RTMP bridge with real ffmpeg on loopback: an encoder publishes into a room and a WebRTC
//! player (the Rust client) receives its H.264 and Opus (or G.711); B-frames are refused with
//! the reason; a browser-style publisher's stream plays over RTMP with ffmpeg decoding H.264
//! and AAC; RTMP to RTMP (`live/NAME`) passes through; a second publish of the same login
//! takes over; a push restreams to a second server and reconnects after it restarts; and
//! junk on the RTMP port (garbage, a stalled handshake, chunk sizes 0 and 2^31, oversized
//! messages, AMF of the wrong types) closes only that connection while a room beside it keeps
//! flowing.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use webcall_loadtest::server::free_tcp;
use webcall_loadtest::{
    play, publish, AudioCodec, Kind, PlayCodecs, Player, PublishOptions, RoomEventKind, VideoCodec,
    WcsSession,
};

use support::{assert_flowing, assert_media, audio, backends, unique, video, Io, Server, T};

/// Waits for the room's next `PUBLISHED`.
async fn published(session: &WcsSession, room: &str, what: &str) -> RoomEventKind {
    session
        .wait_room_event(room, T, |k| matches!(k, RoomEventKind::Published { .. }))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Plays the stream an encoder publishes in `room` as `login`.
async fn play_encoder(session: &WcsSession, room: &str, login: &str, what: &str) -> Player {
    let name = format!("{room}-{login}-rtmp-h264");
    play(session, &name, Some(room.to_owned()), PlayCodecs::browser())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A server with its RTMP listener on a free loopback port.
fn start() -> (Server, SocketAddr) {
    start_on(Io::Mmsg)
}

fn start_on(io: Io) -> (Server, SocketAddr) {
    let rtmp = free_tcp().expect("a free port");
    let server = Server::start(io, 1, &["--rtmp", &rtmp.to_string()]);
    (server, rtmp)
}

/// `ffmpeg` pushing a test picture and tone to `url` in real time, with extra output options.
fn ffmpeg_publish(url: &str, video_opts: &[&str], audio_opts: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "60"])
        .args(video_opts)
        .args(audio_opts)
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs")
}

const X264_NO_BFRAMES: &[&str] = &[
    "-c:v",
    "libx264",
    "-profile:v",
    "baseline",
    "-bf",
    "0",
    "-g",
    "30",
    "-tune",
    "zerolatency",
    "-preset",
    "ultrafast",
];
const AAC_44K: &[&str] = &["-c:a", "aac", "-ar", "44100", "-ac", "2"];

/// `ffmpeg -i URL -t SECONDS -f null -`: (video frames decoded, audio decoded, stderr).
fn ffmpeg_play(url: &str, seconds: u32) -> (u64, bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-rw_timeout", "10000000", "-i", url])
        .args(["-t", &seconds.to_string(), "-f", "null", "-"])
        .arg("-progress")
        .arg("pipe:1")
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg runs");
    let progress = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let frames = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let audio = stderr.contains("Audio: aac") || stderr.contains("Audio: pcm_mulaw");
    (frames, audio, stderr)
}

fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let _ = child.wait();
    stderr
}

backends!(an_encoder_publishes_into_a_room_and_leaves_it => encoder_in_a_room_uring, encoder_in_a_room_mmsg);

async fn an_encoder_publishes_into_a_room_and_leaves_it(io: Io) {
    let (mut server, rtmp) = start_on(io);
    let room = unique("rtmp");
    let alice = server.connect("alice").await;
    alice.join(&room).await.expect("alice joins");
    let encoder = ffmpeg_publish(
        &format!("rtmp://{rtmp}/room/{room}/enc"),
        X264_NO_BFRAMES,
        AAC_44K,
    );
    let joined = alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Joined(_)))
        .await
        .expect("the encoder joins");
    assert_eq!(joined, RoomEventKind::Joined("enc".into()));
    let published = published(&alice, &room, "the encoder's stream is published").await;
    let name = format!("{room}-enc-rtmp-h264");
    assert_eq!(
        published,
        RoomEventKind::Published {
            login: "enc".into(),
            name: name.clone()
        }
    );
    let started = Instant::now();
    let player = play(&alice, &name, Some(room.clone()), PlayCodecs::browser())
        .await
        .expect("alice plays it");
    player
        .wait_packets(Kind::Video, 60, T)
        .await
        .expect("video arrives");
    player
        .wait_packets(Kind::Audio, 50, T)
        .await
        .expect("audio arrives");
    assert!(started.elapsed() < T);
    assert_media(
        "alice playing the encoder",
        &player.received(),
        video(VideoCodec::H264, 106),
        audio(AudioCodec::Opus, 111),
    );
    // The encoder's keyframe interval (x264 -g 30 at 30 fps) is in /health.
    let (_, _, health) = server.http("GET", "/health", &[], b"").await;
    let health: serde_json::Value = serde_json::from_slice(&health).expect("JSON");
    let interval = health["rtmp"]["publishers"][0]["keyframe_interval_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("a keyframe interval in {health}"));
    assert!(
        (900..=1100).contains(&interval),
        "keyframe interval {interval} ms"
    );
    let stderr = stop(encoder);
    alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Unpublished { .. }))
        .await
        .unwrap_or_else(|e| panic!("UNPUBLISHED when the encoder stops: {e}; ffmpeg said {stderr}"));
    let left = alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Left(_)))
        .await
        .expect("LEFT");
    assert_eq!(left, RoomEventKind::Left("enc".into()));
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g711_passes_through_and_b_frames_are_refused() {
    let (mut server, rtmp) = start();
    let room = unique("rtmp");
    let alice = server.connect("alice").await;
    alice.join(&room).await.expect("alice joins");
    let mulaw = ["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"];
    let encoder = ffmpeg_publish(
        &format!("rtmp://{rtmp}/room/{room}/phone"),
        X264_NO_BFRAMES,
        &mulaw,
    );
    published(&alice, &room, "published").await;
    let player = play_encoder(&alice, &room, "phone", "alice plays it").await;
    player
        .wait_packets(Kind::Audio, 50, T)
        .await
        .expect("audio arrives");
    player
        .wait_packets(Kind::Video, 30, T)
        .await
        .expect("video arrives");
    assert_media(
        "alice playing G.711",
        &player.received(),
        video(VideoCodec::H264, 106),
        audio(AudioCodec::Pcmu, 0),
    );
    stop(encoder);

    // x264's defaults (main profile here) send B-frames: the encoder is told why it may not.
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "10"])
        .args(["-c:v", "libx264", "-profile:v", "main", "-bf", "2", "-an"])
        .args(["-f", "flv", &format!("rtmp://{rtmp}/room/{room}/bframes")])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ffmpeg fails");
    assert!(
        stderr.contains("B-frames are not supported in WebRTC: set bframes=0"),
        "the encoder hears why: {stderr}"
    );
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_players_play_browser_and_rtmp_streams() {
    let (mut server, rtmp) = start();
    // A browser-style publisher (H.264 + Opus) outside rooms: ffmpeg plays it as H.264 + AAC.
    let session = server.connect_plain().await;
    let name = unique("cam");
    let mut opts = PublishOptions::new(&name);
    opts.keyframe_interval = Some(Duration::from_secs(1));
    let _publisher = publish(&session, opts).await.expect("publishes");
    let (frames, audio_decoded, stderr) = ffmpeg_play(&format!("rtmp://{rtmp}/live/{name}"), 6);
    assert!(
        frames >= 150,
        "ffmpeg decoded {frames} frames of the browser's stream: {stderr}"
    );
    assert!(audio_decoded, "ffmpeg got AAC audio: {stderr}");

    // RTMP to RTMP: an encoder's own tags pass through.
    let live = unique("live");
    let encoder = ffmpeg_publish(&format!("rtmp://{rtmp}/live/{live}"), X264_NO_BFRAMES, AAC_44K);
    std::thread::sleep(Duration::from_secs(2));
    let (frames, audio_decoded, stderr) = ffmpeg_play(&format!("rtmp://{rtmp}/live/{live}"), 4);
    assert!(
        frames >= 100,
        "ffmpeg decoded {frames} frames of the encoder's stream: {stderr}"
    );
    assert!(audio_decoded, "the encoder's AAC reached the player: {stderr}");

    // A browser plays the RTMP-published plain stream.
    let player = play(&session, &live, None, PlayCodecs::browser())
        .await
        .expect("plays");
    player.wait_packets(Kind::Video, 30, T).await.expect("video");
    player.wait_packets(Kind::Audio, 30, T).await.expect("audio");
    stop(encoder);

    // A stream that does not exist is refused.
    let (frames, _, stderr) = ffmpeg_play(&format!("rtmp://{rtmp}/live/nothing-here"), 2);
    assert_eq!(frames, 0, "{stderr}");
    assert!(stderr.contains("Stream not found"), "{stderr}");

    // VP8 cannot be carried over RTMP, and the player hears so.
    let vp8 = unique("vp8");
    let opts = PublishOptions::new(&vp8).video(Some(VideoCodec::Vp8));
    let _vp8_publisher = publish(&session, opts).await.expect("publishes VP8");
    let (frames, _, stderr) = ffmpeg_play(&format!("rtmp://{rtmp}/live/{vp8}"), 2);
    assert_eq!(frames, 0, "{stderr}");
    assert!(
        stderr.contains("No common codecs: VP8 cannot be carried over RTMP"),
        "{stderr}"
    );
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_encoder_takes_over_its_login() {
    let (mut server, rtmp) = start();
    let room = unique("rtmp");
    let alice = server.connect("alice").await;
    alice.join(&room).await.expect("alice joins");
    let url = format!("rtmp://{rtmp}/room/{room}/enc");
    let first = ffmpeg_publish(&url, X264_NO_BFRAMES, AAC_44K);
    published(&alice, &room, "first published").await;
    let second = ffmpeg_publish(&url, X264_NO_BFRAMES, AAC_44K);
    alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Unpublished { .. }))
        .await
        .expect("the stale connection's stream ends");
    published(&alice, &room, "the new connection publishes at once").await;
    let player = play_encoder(&alice, &room, "enc", "plays").await;
    player
        .wait_packets(Kind::Video, 30, T)
        .await
        .expect("video from the new encoder");
    stop(first);
    stop(second);
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_restreams_and_reconnects_after_the_far_server_restarts() {
    let (mut server, rtmp) = start();
    let far_rtmp = free_tcp().expect("a free port");
    let far_dir = std::env::temp_dir().join(format!("webcall-it-{}", uuid::Uuid::new_v4().simple()));
    let far_args = ["--rtmp".to_owned(), far_rtmp.to_string()];
    let far_args: Vec<&str> = far_args.iter().map(String::as_str).collect();
    let mut far = Server::start_in(far_dir.clone(), Io::Mmsg, 1, &far_args, &[]);
    let source = unique("src");
    let encoder = ffmpeg_publish(&format!("rtmp://{rtmp}/live/{source}"), X264_NO_BFRAMES, AAC_44K);
    std::thread::sleep(Duration::from_secs(1));
    let started = post(
        &server,
        "/rest-api/push/startup",
        json!({"streamName": source, "rtmpUrl": format!("rtmp://{far_rtmp}/live/copy")}),
    )
    .await;
    assert_eq!(started.0, 200, "push started: {:?}", started.1);
    let id = started.1["id"].as_str().expect("an id").to_owned();
    let state = wait_push_state(&server, &id, "publishing").await;
    assert_eq!(state["streamName"], source.as_str());
    let (frames, audio_decoded, stderr) = ffmpeg_play(&format!("rtmp://{far_rtmp}/live/copy"), 3);
    assert!(
        frames >= 60,
        "the far server carries the push: {frames} frames: {stderr}"
    );
    assert!(audio_decoded, "{stderr}");

    // The far server restarts: the push retries, then publishes again.
    far.stop();
    wait_push_state(&server, &id, "retrying").await;
    let mut far = Server::start_in(far_dir, Io::Mmsg, 1, &far_args, &[]);
    wait_push_state(&server, &id, "publishing").await;
    let (frames, _, stderr) = ffmpeg_play(&format!("rtmp://{far_rtmp}/live/copy"), 2);
    assert!(frames >= 30, "after the restart: {frames} frames: {stderr}");

    let ended = post(&server, "/rest-api/push/terminate", json!({"id": id})).await;
    assert_eq!(ended.0, 200);
    let all = post(&server, "/rest-api/push/find_all", json!({})).await;
    assert_eq!(all.1, json!([]));
    let bad = post(
        &server,
        "/rest-api/push/startup",
        json!({"streamName": source, "rtmpUrl": "http://example.com/x"}),
    )
    .await;
    assert_eq!(bad.0, 400, "{:?}", bad.1);
    stop(encoder);
    server.assert_alive_without_panics();
    far.assert_alive_without_panics();
}

/// `POST path` with a JSON body: (status, JSON answer).
async fn post(server: &Server, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let headers = [("Content-Type", "application/json")];
    let (status, _, answer) = server.http("POST", path, &headers, body.as_bytes()).await;
    (status, serde_json::from_slice(&answer).unwrap_or_default())
}

async fn wait_push_state(server: &Server, id: &str, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (status, all) = post(server, "/rest-api/push/find_all", json!({})).await;
        assert_eq!(status, 200);
        let push = all
            .as_array()
            .and_then(|a| a.iter().find(|p| p["id"] == id))
            .cloned()
            .unwrap_or_default();
        if push["state"] == want {
            return push;
        }
        assert!(Instant::now() < deadline, "push never reached {want}: {push}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A valid client handshake (C0+C1, then C2 after reading S0+S1+S2).
fn handshake(stream: &mut TcpStream) {
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    stream.write_all(&c0c1).expect("C0+C1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    stream.read_exact(&mut s0s1s2).expect("S0+S1+S2");
    stream.write_all(&s0s1s2[1..1537]).expect("C2");
}

/// One chunk (format 0, chunk stream 3) holding a whole message.
fn message(type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x03, 0, 0, 0];
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Whether the server closes the connection within `within` (reading and dropping its bytes).
fn closes_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            }
            Err(_) => return true,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_the_rtmp_port_closes_only_that_connection() {
    let (mut server, rtmp) = start();
    let room = unique("rtmp");
    let alice = server.connect("alice").await;
    alice.join(&room).await.expect("alice joins");
    let encoder = ffmpeg_publish(
        &format!("rtmp://{rtmp}/room/{room}/enc"),
        X264_NO_BFRAMES,
        AAC_44K,
    );
    published(&alice, &room, "published").await;
    let player = play_encoder(&alice, &room, "enc", "plays").await;
    player.wait_packets(Kind::Video, 30, T).await.expect("video");

    // Garbage instead of a handshake.
    let mut garbage = TcpStream::connect(rtmp).expect("connects");
    garbage.write_all(&[0xffu8; 3000]).expect("writes");
    assert!(
        closes_within(&mut garbage, Duration::from_secs(3)),
        "garbage closes the connection"
    );

    // A handshake that never finishes is dropped at its deadline.
    let mut stalled = TcpStream::connect(rtmp).expect("connects");
    stalled.write_all(&[3u8, 0, 0]).expect("writes");

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("chunk size 0", message(1, 0, &0u32.to_be_bytes())),
        ("chunk size 2^31", message(1, 0, &(1u32 << 31).to_be_bytes())),
        ("a 16 MiB message", {
            let mut header = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0];
            header.extend(std::iter::repeat_n(0u8, 128));
            header
        }),
        ("connect with a number for its object", {
            // "connect", 1, 42 (a number where the command object belongs)
            let mut amf = vec![0x02, 0, 7];
            amf.extend_from_slice(b"connect");
            amf.push(0x00);
            amf.extend_from_slice(&1f64.to_be_bytes());
            amf.push(0x00);
            amf.extend_from_slice(&42f64.to_be_bytes());
            message(20, 0, &amf)
        }),
        ("truncated AMF", message(20, 0, &[0x02, 0xff, 0xff, b'c'])),
        ("garbage after the handshake", vec![0xc7u8; 5000]),
    ];
    for (label, bytes) in cases {
        let mut stream = TcpStream::connect(rtmp).expect("connects");
        handshake(&mut stream);
        let _ = stream.write_all(&bytes);
        // A refusal may be an `_error` on an open connection or a close; either way the server
        // lives and the room beside it keeps flowing.
        let _ = closes_within(&mut stream, Duration::from_millis(500));
        assert_flowing(&player, 10, label).await;
    }
    assert!(
        closes_within(&mut stalled, Duration::from_secs(12)),
        "a stalled handshake is dropped within its deadline"
    );
    assert_flowing(&player, 20, "after all of it").await;
    stop(encoder);
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoders_stream_records_with_its_tone() {
    let (mut server, rtmp) = start();
    let name = unique("rec");
    let encoder = ffmpeg_publish(&format!("rtmp://{rtmp}/live/{name}"), X264_NO_BFRAMES, AAC_44K);
    let deadline = Instant::now() + T;
    let file = loop {
        let (status, answer) = post(&server, "/rest-api/stream/startRecording", json!({"name": name})).await;
        if status == 200 {
            break answer["recordName"].as_str().expect("a record name").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the stream never became recordable: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, _) = post(&server, "/rest-api/stream/stopRecording", json!({"name": name})).await;
    assert_eq!(status, 200);
    stop(encoder);
    let path = server.dir().join("records").join(&file);
    let deadline = Instant::now() + T;
    while !path.with_extension("mp4.json").exists() || !path.exists() {
        assert!(Instant::now() < deadline, "{file} was not finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(&path)
        .args(["-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Video: h264"), "{log}");
    assert!(log.contains("Audio: opus"), "{log}");
    let mean: f64 = log
        .lines()
        .find_map(|l| l.split("mean_volume: ").nth(1))
        .and_then(|v| v.trim_end_matches(" dB").trim().parse().ok())
        .expect("a mean volume");
    assert!(
        mean > -30.0,
        "the encoder's 440 Hz tone is in the file (AAC to Opus): mean {mean} dB"
    );
    server.assert_alive_without_panics();
}

/// ffmpeg publishing a few seconds to `url`: (success, stderr).
fn ffmpeg_publish_briefly(url: &str) -> (bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "5"])
        .args(X264_NO_BFRAMES)
        .args(["-an", "-f", "flv", url])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_takes_no_browsers_login_and_no_place_in_a_full_room() {
    let rtmp = free_tcp().expect("a free port");
    let mut server = Server::start(
        Io::Mmsg,
        1,
        &["--rtmp", &rtmp.to_string(), "--room-capacity", "2"],
    );
    let room = unique("rtmp");
    let alice = server.connect("alice").await;
    alice.join(&room).await.expect("alice joins");
    let (ok, stderr) = ffmpeg_publish_briefly(&format!("rtmp://{rtmp}/room/{room}/alice"));
    assert!(!ok, "a browser's login is not taken over");
    assert!(
        stderr.contains(&format!("Login 'alice' is already in room '{room}'")),
        "{stderr}"
    );
    let bob = server.connect("bob").await;
    bob.join(&room).await.expect("bob joins");
    let (ok, stderr) = ffmpeg_publish_briefly(&format!("rtmp://{rtmp}/room/{room}/enc"));
    assert!(!ok, "a full room refuses the encoder");
    assert!(stderr.contains("Room is full (capacity 2)"), "{stderr}");
    let (ok, stderr) = ffmpeg_publish_briefly(&format!("rtmp://{rtmp}/nowhere/x"));
    assert!(!ok);
    assert!(stderr.contains("Unknown application 'nowhere'"), "{stderr}");
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_encoder_leaves_within_the_idle_deadline() {
    let (mut server, rtmp) = start();
    let room = unique("rtmp");
    let alice = server.connect("alice").await;
    alice.join(&room).await.expect("alice joins");
    let encoder = ffmpeg_publish(
        &format!("rtmp://{rtmp}/room/{room}/enc"),
        X264_NO_BFRAMES,
        AAC_44K,
    );
    published(&alice, &room, "published").await;
    // Stopped, not killed: its connection stays open and says nothing.
    let frozen = Command::new("kill")
        .args(["-STOP", &encoder.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(frozen.success());
    let since = Instant::now();
    alice
        .wait_room_event(&room, Duration::from_secs(15), |k| {
            matches!(k, RoomEventKind::Left(_))
        })
        .await
        .expect("the silent encoder leaves");
    let waited = since.elapsed();
    assert!(
        waited <= Duration::from_secs(12),
        "dropped within the 10 s idle deadline: {waited:?}"
    );
    let _ = Command::new("kill")
        .args(["-CONT", &encoder.id().to_string()])
        .status();
    stop(encoder);
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmps_carries_an_encoder_over_tls() {
    let (rtmp, rtmps) = (free_tcp().expect("a free port"), free_tcp().expect("a free port"));
    let mut server = Server::start(
        Io::Mmsg,
        1,
        &["--rtmp", &rtmp.to_string(), "--rtmps", &rtmps.to_string()],
    );
    let name = unique("tls");
    // ffmpeg does not verify the (self-signed) certificate unless told to.
    let encoder = ffmpeg_publish(&format!("rtmps://{rtmps}/live/{name}"), X264_NO_BFRAMES, AAC_44K);
    std::thread::sleep(Duration::from_secs(2));
    let (frames, audio_decoded, stderr) = ffmpeg_play(&format!("rtmp://{rtmp}/live/{name}"), 3);
    assert!(
        frames >= 60,
        "the RTMPS encoder's stream plays: {frames} frames: {stderr}"
    );
    assert!(audio_decoded, "{stderr}");
    let (frames, _, stderr) = ffmpeg_play(&format!("rtmps://{rtmps}/live/{name}"), 2);
    assert!(frames >= 30, "and plays over RTMPS: {frames} frames: {stderr}");
    stop(encoder);
    server.assert_alive_without_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_an_encoder_needs_one_on_its_stream_key() {
    use webcall::auth::{mint, now_unix, TokenRequest};
    let rtmp = free_tcp().expect("a free port");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = std::env::temp_dir().join(format!("webcall-rtmp-{id}.key"));
    std::fs::write(&key, format!("secret-for-rtmp-{id}")).unwrap();
    let server = Server::start(
        Io::Mmsg,
        1,
        &[
            "--rtmp",
            &rtmp.to_string(),
            "--auth",
            "jwt",
            "--jwt-key",
            key.to_str().unwrap(),
        ],
    );
    let room = unique("rtmp-auth");
    let grant = |login: &str, publish: bool| TokenRequest {
        room: room.clone(),
        login: login.to_owned(),
        publish,
        subscribe: true,
        chat: true,
        record: false,
        admin: false,
        hidden: false,
        ttl_secs: 600,
        issuer: None,
        audience: None,
    };
    let token = |login: &str, publish: bool| mint(&key, &grant(login, publish), now_unix()).unwrap();

    let (ok, stderr) = ffmpeg_publish_briefly(&format!("rtmp://{rtmp}/room/{room}/enc"));
    assert!(!ok, "no token, no publish");
    assert!(
        stderr.contains("Restricted access: a token is required"),
        "{stderr}"
    );
    let viewer_key = format!("rtmp://{rtmp}/room/{room}/enc?token={}", token("enc", false));
    let (ok, stderr) = ffmpeg_publish_briefly(&viewer_key);
    assert!(!ok, "a token without canPublish");
    assert!(stderr.contains("Restricted access"), "{stderr}");
    let someone_else = format!("rtmp://{rtmp}/room/{room}/enc?token={}", token("bob", true));
    let (ok, stderr) = ffmpeg_publish_briefly(&someone_else);
    assert!(!ok, "a token for another login");
    assert!(stderr.contains("login does not match the token"), "{stderr}");

    let alice = {
        let config = webcall_loadtest::SessionConfig {
            connection: Some(webcall_loadtest::wcs::ConnectionOptions {
                app_key: webcall_loadtest::wcs::APP_ROOM.into(),
                login: Some("alice".into()),
                token: Some(token("alice", false)),
            }),
            timeout: T,
        };
        WcsSession::connect_with(&server.ws_url(), config).await.unwrap()
    };
    alice.join(&room).await.expect("alice joins with her token");
    let good = format!("rtmp://{rtmp}/room/{room}/enc?token={}", token("enc", true));
    let encoder = ffmpeg_publish(&good, X264_NO_BFRAMES, AAC_44K);
    published(&alice, &room, "the encoder with its token").await;
    let player = play_encoder(&alice, &room, "enc", "alice plays the encoder").await;
    assert_flowing(&player, 30, "the encoder's video").await;
    stop(encoder);
    let _ = std::fs::remove_file(key);
}
