//! The client against a real webcall server. Ignored by default (the server is built by
//! its own crate); run with `cargo test -p webcall-loadtest --test server_e2e -- --ignored
//! --nocapture`. Each test starts `WEBCALL_BIN` (default: the workspace's
//! `target/debug/webcall`) on free ports, or uses `WEBCALL_URL` when set.

use std::time::Duration;

use webcall_loadtest::{
    play, publish, room_stream_name, AudioCodec, Kind, MediaCodec, PlayCodecs, PublishOptions, RoomEventKind,
    ServerProcess, StateEntry, StreamStatus, VideoCodec, WcsSession,
};

const T: Duration = Duration::from_secs(10);

struct Target {
    url: String,
    _server: Option<ServerProcess>,
}

fn target(extra: &[&str]) -> Target {
    if let Ok(url) = std::env::var("WEBCALL_URL") {
        return Target { url, _server: None };
    }
    let bin = std::env::var("WEBCALL_BIN")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/webcall").into());
    let server = ServerProcess::spawn(bin, extra).unwrap();
    Target {
        url: server.ws_url(),
        _server: Some(server),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn room_publish_play_h264_opus() {
    let target = target(&[]);
    let url = || target.url.clone();
    let room = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let alice = WcsSession::connect(&url(), "alice").await.unwrap();
    println!("getUserData: {:?}", alice.user_data());
    let st = alice.join(&room).await.unwrap();
    println!("alice STATE: {st:?}");
    let bob = WcsSession::connect(&url(), "bob").await.unwrap();
    let st = bob.join(&room).await.unwrap();
    println!("bob STATE: {st:?}");
    assert_eq!(st.participants(), vec!["alice".to_string()]);
    let j = alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Joined(_)))
        .await
        .unwrap();
    println!("alice saw {j:?}");

    bob.send_message(&room, Some("alice"), "hi").await.unwrap();
    let m = alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Message { .. }))
        .await
        .unwrap();
    println!("alice got {m:?}");

    let name = room_stream_name(&room, "alice");
    let publisher = publish(&alice, PublishOptions::new(&name).room(&room))
        .await
        .unwrap();
    println!("PUBLISHING; codec {:?}", publisher.video_codec());
    let p = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Published { .. }))
        .await
        .unwrap();
    println!("bob saw {p:?}");

    let carol = WcsSession::connect(&url(), "carol").await.unwrap();
    let st = carol.join(&room).await.unwrap();
    println!("carol STATE: {st:?}");
    assert!(st.entries.contains(&StateEntry::Stream {
        login: "alice".into(),
        name: name.clone()
    }));

    let player = play(&bob, &name, Some(room.clone()), PlayCodecs::browser())
        .await
        .unwrap();
    println!("PLAYING");
    let s = player.wait_packets(Kind::Video, 60, T).await;
    println!("player after video wait: {s:?}");
    let s = player.wait_packets(Kind::Audio, 50, T).await;
    println!("player after audio wait: {s:?}");
    let got = player.received();
    let first_video = got.iter().find(|p| p.kind == Kind::Video);
    println!("first video packet: {first_video:?}");
    assert!(
        first_video.is_some_and(|p| p.keyframe),
        "the first video packet starts a keyframe"
    );
    assert!(got
        .iter()
        .filter(|p| p.kind == Kind::Video)
        .all(|p| p.codec == Some(MediaCodec::Video(VideoCodec::H264))));
    assert!(got
        .iter()
        .filter(|p| p.kind == Kind::Audio)
        .all(|p| p.codec == Some(MediaCodec::Audio(AudioCodec::Opus))));

    let before = publisher.stats();
    player.request_keyframe().await.unwrap();
    let after = publisher
        .wait_stats(T, |s| {
            s.pli_received + s.fir_received > before.pli_received + before.fir_received
        })
        .await;
    println!("publisher after PLI: {after:?}");
    let n = player.stats().keyframes_received;
    let k = player.wait_stats(T, |s| s.keyframes_received > n).await;
    println!("player keyframes after PLI: {k:?}");
    // The server throttles keyframe requests per publisher (500 ms) and drops, rather than
    // defers, one that comes inside the window: wait it out.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = publisher.stats();
    player.request_fir().await.unwrap();
    let fir = publisher
        .wait_stats(T, |s| {
            s.pli_received + s.fir_received > before.pli_received + before.fir_received
        })
        .await;
    println!(
        "publisher after a player FIR: pli {:?} fir {:?}",
        fir.as_ref().map(|s| s.pli_received),
        fir.as_ref().map(|s| s.fir_received)
    );

    let end = publisher.stop().await;
    println!("publisher stop: {end:?}");
    let st = player.wait_status(StreamStatus::Stopped, T).await;
    println!("player status: {st:?}");
    let u = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Unpublished { .. }))
        .await;
    println!("bob saw {u:?}");
    alice.close().await.unwrap();
    let l = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Left(_)))
        .await;
    println!("bob saw {l:?}");
    after.unwrap();
    k.unwrap();
    end.unwrap();
    st.unwrap();
    u.unwrap();
    l.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn failures() {
    let target = target(&[]);
    let url = || target.url.clone();
    let alice = WcsSession::connect(&url(), "alice2").await.unwrap();
    let name = format!("solo-{}", uuid::Uuid::new_v4().simple());
    let opts = PublishOptions::new(&name)
        .video(Some(VideoCodec::H264))
        .audio(Some(AudioCodec::Pcma));
    let _p = publish(&alice, opts.clone()).await.unwrap();
    let dup = publish(&alice, opts).await;
    println!("duplicate publish: {dup:?}");
    let bob = WcsSession::connect(&url(), "bob2").await.unwrap();
    let nf = play(&bob, "no-such-stream", None, PlayCodecs::browser()).await;
    println!("play unknown: {nf:?}");
    let nc = play(&bob, &name, None, PlayCodecs::no_h264()).await;
    println!("play without H.264: {nc:?}");
    let ok = play(&bob, &name, None, PlayCodecs::browser()).await.unwrap();
    let s = ok.wait_packets(Kind::Audio, 20, T).await;
    println!("PCMA player: {s:?}");
    let got = ok.received();
    println!(
        "audio pts: {:?}",
        got.iter()
            .filter(|p| p.kind == Kind::Audio)
            .map(|p| p.pt)
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(
        dup.unwrap_err().server_info(),
        Some("Stream name is already in use")
    );
    assert_eq!(nf.unwrap_err().server_info(), Some("Stream not found"));
    assert_eq!(nc.unwrap_err().server_info(), Some("No common codecs"));
    s.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn probes() {
    let target = target(&[]);
    let url = || target.url.clone();
    use webcall_loadtest::{PayloadTypes, PlayOptions, Player, RawIncoming, SessionConfig, SessionEvent};
    let room = format!("p-{}", uuid::Uuid::new_v4().simple());
    let a = WcsSession::connect(&url(), "pa").await.unwrap();
    a.join(&room).await.unwrap();
    println!("join twice: {:?}", a.join(&room).await);
    println!("leave never joined: {:?}", a.leave("never-joined").await);
    println!(
        "message to unknown login: {:?}",
        a.send_message(&room, Some("nobody"), "x").await
    );
    println!("message without to: {:?}", a.send_message(&room, None, "x").await);
    println!(
        "message to a room not joined: {:?}",
        a.send_message("other", Some("pa"), "x").await
    );
    println!(
        "unknown command: {:?}",
        a.send_data("frobnicate", serde_json::json!({})).await
    );

    // VP8 publisher, Firefox-numbered player offering VP8 only.
    let name = room_stream_name(&room, "pa");
    let opts = PublishOptions::new(&name)
        .room(&room)
        .video(Some(VideoCodec::Vp8));
    let publ = publish(&a, opts).await.unwrap();
    let b = WcsSession::connect(&url(), "pb").await.unwrap();
    b.join(&room).await.unwrap();
    let mut po = PlayOptions::new(&name).room(&room).accept(PlayCodecs::no_h264());
    po.payload_types = PayloadTypes::firefox();
    let pl = Player::play(&b, po).await.unwrap();
    let s = pl.wait_packets(Kind::Video, 30, T).await;
    let got = pl.received();
    let pts: std::collections::BTreeSet<_> = got.iter().map(|p| (p.kind, p.pt)).collect();
    println!(
        "firefox VP8 player: {s:?} pts {pts:?} first keyframe {:?}",
        got.iter().find(|p| p.kind == Kind::Video).map(|p| p.keyframe)
    );

    // Player session vanishes without a close frame.
    let c = WcsSession::connect(&url(), "pc").await.unwrap();
    c.join(&room).await.unwrap();
    let _pl2 = play(&c, &name, Some(room.clone()), PlayCodecs::browser())
        .await
        .unwrap();
    c.abort();
    let l = a
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Left(_)))
        .await;
    println!("after pc's TCP vanished, pa saw {l:?}");

    // Publisher's session vanishes: players get STOPPED, room gets UNPUBLISHED + LEFT.
    a.abort();
    let st = pl.wait_status(StreamStatus::Stopped, T).await;
    println!("publisher vanished, player: {st:?}");
    let evs: Vec<_> = tokio::time::timeout(Duration::from_secs(2), async {
        let mut v = Vec::new();
        while let Ok(e) = b.next_event(Duration::from_millis(500)).await {
            v.push(e)
        }
        v
    })
    .await
    .unwrap_or_default();
    println!("pb events: {evs:?}");
    drop(publ);

    // Bad input on a bare socket.
    let raw = WcsSession::connect_with(
        &url(),
        SessionConfig {
            connection: None,
            timeout: T,
        },
    )
    .await
    .unwrap();
    for text in [
        "not json",
        "{}",
        r#"{"message":"nope","data":[{}]}"#,
        r#"{"message":"publishStream","data":[{}]}"#,
    ] {
        raw.send_text(text).unwrap();
        let r = raw.next_raw(Duration::from_secs(1)).await;
        println!("sent {text:?} -> {r:?}");
    }
    raw.send_binary(&[1, 2, 3]).unwrap();
    println!("binary -> {:?}", raw.next_raw(Duration::from_secs(1)).await);
    println!("closed? {}", raw.is_closed());
    let _ = RawIncoming::Close(None);
    let _ = SessionEvent::Other {
        message: String::new(),
        data: serde_json::Value::Null,
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn keepalive() {
    let target = target(&[]);
    let url = || target.url.clone();
    let a = WcsSession::connect(&url(), "ka").await.unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    println!("pings answered in 12 s: {}", a.pings_answered());
    a.set_auto_pong(false);
    let r = a.wait_closed(Duration::from_secs(40)).await;
    println!("without pongs: closed {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn media_continuity_and_shapes() {
    let target = target(&[]);
    let url = || target.url.clone();
    let a = WcsSession::connect(&url(), "ma").await.unwrap();
    let b = WcsSession::connect(&url(), "mb").await.unwrap();
    for (label, v, au) in [
        ("h264+opus", Some(VideoCodec::H264), Some(AudioCodec::Opus)),
        ("audio only pcmu", None, Some(AudioCodec::Pcmu)),
        ("video only vp8", Some(VideoCodec::Vp8), None),
    ] {
        let name = format!("m-{}", uuid::Uuid::new_v4().simple());
        let publ = publish(&a, PublishOptions::new(&name).video(v).audio(au)).await;
        let publ = match publ {
            Ok(p) => p,
            Err(e) => {
                println!("{label}: publish failed: {e}");
                continue;
            }
        };
        let players = [
            play(&b, &name, None, PlayCodecs::browser()).await.unwrap(),
            play(&b, &name, None, PlayCodecs::browser()).await.unwrap(),
        ];
        tokio::time::sleep(Duration::from_secs(3)).await;
        for (i, pl) in players.iter().enumerate() {
            let got = pl.received();
            for kind in [Kind::Video, Kind::Audio] {
                let k: Vec<_> = got.iter().filter(|p| p.kind == kind).collect();
                let gaps = k.windows(2).filter(|w| w[1].seq != w[0].seq + 1).count();
                let ts_back = k
                    .windows(2)
                    .filter(|w| w[1].rtp_time.wrapping_sub(w[0].rtp_time) > u32::MAX / 2)
                    .count();
                let ssrcs: std::collections::BTreeSet<_> = k.iter().map(|p| p.ssrc).collect();
                println!(
                    "{label} player {i} {kind:?}: {} packets, seq gaps {gaps}, ts going back {ts_back}, ssrcs {}, first keyframe {:?}",
                    k.len(),
                    ssrcs.len(),
                    k.first().map(|p| p.keyframe)
                );
            }
        }
        println!("{label} publisher: {:?}", publ.stats());
        publ.stop().await.unwrap();
    }
}

/// With `WEBCALL_URL`, that server needs a short `--peer-timeout` (3 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn media_vanishes() {
    let target = target(&["--peer-timeout", "3"]);
    let url = || target.url.clone();
    let a = WcsSession::connect(&url(), "va").await.unwrap();
    let b = WcsSession::connect(&url(), "vb").await.unwrap();
    let name = format!("v-{}", uuid::Uuid::new_v4().simple());
    let publ = publish(&a, PublishOptions::new(&name)).await.unwrap();
    let pl = play(&b, &name, None, PlayCodecs::browser()).await.unwrap();
    pl.wait_packets(Kind::Video, 10, T).await.unwrap();
    let t0 = std::time::Instant::now();
    publ.close_media().unwrap();
    let s = publ.next_status(Duration::from_secs(40)).await;
    println!(
        "publisher after its media path closed ({:?}): {s:?}",
        t0.elapsed()
    );
    let s = pl.next_status(Duration::from_secs(10)).await;
    println!("player: {s:?}");

    let name = format!("w-{}", uuid::Uuid::new_v4().simple());
    let publ = publish(&a, PublishOptions::new(&name)).await.unwrap();
    let t0 = std::time::Instant::now();
    publ.set_sending(false).unwrap();
    let s = publ.next_status(Duration::from_secs(40)).await;
    println!("publisher silent but connected ({:?}): {s:?}", t0.elapsed());

    let name = format!("x-{}", uuid::Uuid::new_v4().simple());
    let _publ = publish(&a, PublishOptions::new(&name)).await.unwrap();
    let pl = play(&b, &name, None, PlayCodecs::browser()).await.unwrap();
    let t0 = std::time::Instant::now();
    pl.close_media().unwrap();
    let s = pl.next_status(Duration::from_secs(40)).await;
    println!("player after its media path closed ({:?}): {s:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn dump_answers() {
    let target = target(&[]);
    let url = || target.url.clone();
    use webcall_loadtest::RawIncoming;
    let a = WcsSession::connect(&url(), "da").await.unwrap();
    let name = format!("d-{}", uuid::Uuid::new_v4().simple());
    let _p = publish(&a, PublishOptions::new(&name)).await.unwrap();
    let b = WcsSession::connect(&url(), "db").await.unwrap();
    let _pl = play(&b, &name, None, PlayCodecs::browser()).await.unwrap();
    for (who, s) in [("publish", &a), ("play", &b)] {
        while let Ok(RawIncoming::Text(t)) = s.next_raw(Duration::from_millis(100)).await {
            if t.contains("setRemoteSDP") {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                println!("{who} answer:\n{}", v["data"][1].as_str().unwrap());
            }
        }
    }
}

/// A publisher that sends keyframes only on request (as browsers do): does a player that
/// joins shortly after another one still get video?
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn late_joiner_without_periodic_keyframes() {
    let target = target(&[]);
    let a = WcsSession::connect(&target.url, "ka").await.unwrap();
    let b = WcsSession::connect(&target.url, "kb").await.unwrap();
    for delay_ms in [0u64, 100, 300, 700] {
        let name = format!("k-{}", uuid::Uuid::new_v4().simple());
        let mut opts = PublishOptions::new(&name);
        opts.keyframe_interval = None;
        let publ = publish(&a, opts).await.unwrap();
        let p1 = play(&b, &name, None, PlayCodecs::browser()).await.unwrap();
        p1.wait_packets(Kind::Video, 1, T).await.unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let t0 = std::time::Instant::now();
        let p2 = play(&b, &name, None, PlayCodecs::browser()).await.unwrap();
        let r = p2.wait_packets(Kind::Video, 1, Duration::from_secs(5)).await;
        println!(
            "second player {delay_ms} ms after the first one's video: {} after {:?}; publisher pli {}",
            if r.is_ok() { "video" } else { "NO video" },
            t0.elapsed(),
            publ.stats().pli_received
        );
        publ.stop().await.unwrap();
    }
}
