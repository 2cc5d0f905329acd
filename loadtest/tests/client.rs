//! The client against a fake WCS server with a str0m SFU: signalling, media, PLI.

mod support;

use std::time::Duration;

use support::FakeWcs;
use webcall_loadtest::wcs::messages;
use webcall_loadtest::{
    play, publish, AudioCodec, Error, Kind, MediaCodec, PayloadTypes, PlayCodecs, PlayOptions, Player,
    PublishOptions, RawIncoming, RoomEventKind, SessionConfig, SessionEvent, StateEntry, StreamStatus,
    VideoCodec, WcsSession,
};

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_messages_and_keepalive() {
    let fake = FakeWcs::start().await;
    let alice = WcsSession::connect(&fake.url, "alice").await.unwrap();
    assert!(alice.user_data().is_some());
    let state = alice.join("r1").await.unwrap();
    assert!(state.entries.is_empty());

    let bob = WcsSession::connect(&fake.url, "bob").await.unwrap();
    let state = bob.join("r1").await.unwrap();
    assert_eq!(state.participants(), vec!["alice".to_string()]);
    let joined = alice
        .wait_room_event("r1", T, |k| matches!(k, RoomEventKind::Joined(_)))
        .await
        .unwrap();
    assert_eq!(joined, RoomEventKind::Joined("bob".into()));

    bob.send_message("r1", Some("alice"), "hello").await.unwrap();
    let msg = alice
        .wait_room_event("r1", T, |k| matches!(k, RoomEventKind::Message { .. }))
        .await
        .unwrap();
    assert_eq!(
        msg,
        RoomEventKind::Message {
            from: "bob".into(),
            text: "hello".into()
        }
    );
    alice.send_message("r1", None, "all").await.unwrap();
    let msg = bob
        .wait_room_event("r1", T, |k| matches!(k, RoomEventKind::Message { .. }))
        .await
        .unwrap();
    assert_eq!(
        msg,
        RoomEventKind::Message {
            from: "alice".into(),
            text: "all".into()
        }
    );

    let carol = WcsSession::connect(&fake.url, "carol").await.unwrap();
    carol.join("r1").await.unwrap();
    let dave = WcsSession::connect(&fake.url, "dave").await.unwrap();
    let err = dave.join("r1").await.unwrap_err();
    assert_eq!(err.server_info(), Some("Room is full"), "{err}");
    let err = dave.leave("r1").await.unwrap_err();
    assert!(matches!(&err, Error::Refused { command, info } if command == "leave" && info == "Not in room"));

    bob.leave("r1").await.unwrap();
    let left = alice
        .wait_room_event("r1", T, |k| matches!(k, RoomEventKind::Left(_)))
        .await
        .unwrap();
    assert_eq!(left, RoomEventKind::Left("bob".into()));
    assert!(alice.pings_answered() >= 1);
    assert!(fake.pongs() >= 4, "every session answered the fake's ping");
    alice.close().await.unwrap();
    assert!(alice.is_closed());
}

#[tokio::test]
async fn raw_frames() {
    let fake = FakeWcs::start().await;
    let cfg = SessionConfig {
        connection: None,
        timeout: T,
    };
    let s = WcsSession::connect_with(&fake.url, cfg).await.unwrap();
    s.send_text("this is not json").unwrap();
    let RawIncoming::Text(t) = s.next_raw(T).await.unwrap() else {
        panic!()
    };
    assert!(t.contains("\"fail\""), "{t}");
    assert!(matches!(
        s.next_event(T).await.unwrap(),
        SessionEvent::Fail { .. }
    ));
    s.send_text(&messages::connection(&messages::ConnectionOptions::room("x")))
        .unwrap();
    let RawIncoming::Text(t) = s.next_raw(T).await.unwrap() else {
        panic!()
    };
    assert!(t.contains("getUserData"));
    assert!(s
        .next_event(Duration::from_millis(200))
        .await
        .unwrap_err()
        .is_timeout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_play_h264_opus_with_pli() {
    let fake = FakeWcs::start().await;
    let alice = WcsSession::connect(&fake.url, "alice").await.unwrap();
    alice.join("r2").await.unwrap();
    let bob = WcsSession::connect(&fake.url, "bob").await.unwrap();
    bob.join("r2").await.unwrap();

    let name = webcall_loadtest::room_stream_name("r2", "alice");
    let publisher = publish(&alice, PublishOptions::new(&name).room("r2"))
        .await
        .unwrap();
    assert_eq!(publisher.video_codec(), Some(VideoCodec::H264));
    let ev = bob
        .wait_room_event("r2", T, |k| matches!(k, RoomEventKind::Published { .. }))
        .await
        .unwrap();
    assert_eq!(
        ev,
        RoomEventKind::Published {
            login: "alice".into(),
            name: name.clone()
        }
    );

    let carol = WcsSession::connect(&fake.url, "carol").await.unwrap();
    let state = carol.join("r2").await.unwrap();
    assert!(state.entries.contains(&StateEntry::Stream {
        login: "alice".into(),
        name: name.clone()
    }));

    let player = play(&bob, &name, Some("r2".into()), PlayCodecs::browser())
        .await
        .unwrap();
    player.wait_packets(Kind::Video, 30, T).await.unwrap();
    player.wait_packets(Kind::Audio, 25, T).await.unwrap();
    // The fake SFU does not ask for a keyframe on join: the next periodic one (2 s) comes.
    player.wait_received(T, |p| p.keyframe).await.unwrap();
    let got = player.received();
    let video: Vec<_> = got.iter().filter(|p| p.kind == Kind::Video).collect();
    assert!(video
        .iter()
        .all(|p| p.codec == Some(MediaCodec::Video(VideoCodec::H264))));
    assert!(video.iter().all(|p| p.pt == PayloadTypes::chrome().h264.0));
    assert!(video.iter().any(|p| p.keyframe), "a keyframe reached the player");
    assert!(video.iter().any(|p| p.marker));
    let audio: Vec<_> = got.iter().filter(|p| p.kind == Kind::Audio).collect();
    assert!(audio
        .iter()
        .all(|p| p.codec == Some(MediaCodec::Audio(AudioCodec::Opus))));
    assert!(audio
        .iter()
        .all(|p| p.head.first() == Some(&webcall_loadtest::media::audio::OPUS_TOC)));
    for w in video.windows(2) {
        assert!(w[1].seq > w[0].seq, "in order on loopback");
    }

    let before = publisher.stats().keyframes_sent;
    player.request_keyframe().await.unwrap();
    let s = publisher
        .wait_stats(T, |s| s.pli_received >= 1 && s.keyframes_sent > before)
        .await
        .unwrap();
    assert_eq!(s.fir_received, 0);
    assert_eq!(player.stats().pli_sent, 1);
    let n = player.stats().keyframes_received;
    player.wait_stats(T, |s| s.keyframes_received > n).await.unwrap();
    player.request_fir().await.unwrap();
    publisher.wait_stats(T, |s| s.fir_received == 1).await.unwrap();

    let end = publisher.stop().await.unwrap();
    assert_eq!(end.status, StreamStatus::Unpublished);
    let st = player.wait_status(StreamStatus::Stopped, T).await.unwrap();
    assert_eq!(st.info.as_deref(), Some("Stopped by publisher stop"));
    let ev = bob
        .wait_room_event("r2", T, |k| matches!(k, RoomEventKind::Unpublished { .. }))
        .await
        .unwrap();
    assert_eq!(
        ev,
        RoomEventKind::Unpublished {
            login: "alice".into(),
            name
        }
    );
}

#[tokio::test]
async fn vp8_pcmu_with_other_payload_types() {
    let fake = FakeWcs::start().await;
    let alice = WcsSession::connect(&fake.url, "alice").await.unwrap();
    let opts = PublishOptions::new("s-vp8")
        .video(Some(VideoCodec::Vp8))
        .audio(Some(AudioCodec::Pcmu));
    let publisher = publish(&alice, opts).await.unwrap();
    let bob = WcsSession::connect(&fake.url, "bob").await.unwrap();
    let mut opts = PlayOptions::new("s-vp8");
    opts.payload_types = PayloadTypes::firefox();
    let player = Player::play(&bob, opts).await.unwrap();
    player.wait_packets(Kind::Video, 20, T).await.unwrap();
    player.wait_packets(Kind::Audio, 20, T).await.unwrap();
    player.wait_received(T, |p| p.keyframe).await.unwrap();
    let got = player.received();
    let vp8 = got.iter().filter(|p| p.kind == Kind::Video);
    assert!(vp8
        .clone()
        .all(|p| p.pt == 120 && p.codec == Some(MediaCodec::Video(VideoCodec::Vp8))));
    assert!(vp8.clone().any(|p| p.keyframe));
    assert!(got
        .iter()
        .filter(|p| p.kind == Kind::Audio)
        .all(|p| p.pt == 0 && p.payload_len == 160));
    let stopped = player.stop().await.unwrap();
    assert_eq!(stopped.status, StreamStatus::Stopped);
    assert!(publisher.stats().video_packets_sent > 0);
}

/// Also proves the client works on a current-thread runtime (tokio's test default).
#[tokio::test]
async fn failures_carry_server_info() {
    let fake = FakeWcs::start().await;
    let alice = WcsSession::connect(&fake.url, "alice").await.unwrap();
    let _p = publish(&alice, PublishOptions::new("s1")).await.unwrap();
    let err = publish(&alice, PublishOptions::new("s1")).await.unwrap_err();
    assert_eq!(err.server_info(), Some("Stream name is already in use"), "{err}");

    let bob = WcsSession::connect(&fake.url, "bob").await.unwrap();
    let err = play(&bob, "nope", None, PlayCodecs::browser()).await.unwrap_err();
    assert_eq!(err.server_info(), Some("Stream not found"));
    let err = play(&bob, "s1", None, PlayCodecs::no_h264()).await.unwrap_err();
    assert!(
        matches!(&err, Error::StreamFailed { status, info, .. }
        if status == "FAILED" && info == "No common codecs"),
        "{err}"
    );
    // A session with no live handle left has nothing watched: events stay empty.
    assert!(bob.drain_events().is_empty());
}
