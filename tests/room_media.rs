//! A room from join to disconnect, over a real WebSocket and real UDP, on each I/O backend
//! (`--io uring` and `--io mmsg`, two workers).
//!
//! Proves: two sessions join one room (`STATE`, `JOINED`); room messages pass both ways, to one
//! participant and to everyone (never back to the sender); one participant publishes H.264 +
//! Opus and the other VP8 + Opus, and each plays the other with its own payload type numbers:
//! the first video packet is a keyframe, sequence numbers are continuous and in order, RTP time
//! moves forward; a player's PLI reaches the publisher and brings a new keyframe; a late joiner
//! finds both streams in its `STATE`, plays one as its second player (starting on a keyframe)
//! and its FIR reaches the publisher; its abrupt exit gives the others `LEFT`; a player whose
//! offer lacks the codec gets `No common codecs`; plain (`defaultApp`, no room) streams play by
//! name (H.264 + PCMA, VP8 alone, PCMU alone); an abrupt disconnect gives the others
//! `UNPUBLISHED`, `STOPPED` (`Stopped by publisher stop`) and `LEFT`; and `/health` returns to
//! zero: nothing leaks.

mod support;

use webcall_loadtest::{
    play, publish, room_stream_name, AudioCodec, Kind, PayloadTypes, PlayCodecs, PlayOptions, Player,
    PublishOptions, RoomEventKind, SessionEvent, StateEntry, StreamStatus, VideoCodec,
};

use support::{assert_media, audio, backends, unique, video, Health, Io, Server, T};

backends!(room_media => room_media_uring, room_media_mmsg);

async fn room_media(io: Io) {
    let mut server = Server::start(io, 2, &[]);
    let room = unique("room");

    // Alice joins an empty room; Bob joins and finds her there; she hears of him.
    let alice = server.connect("alice").await;
    let state = alice.join(&room).await.unwrap();
    assert!(
        state.entries.is_empty(),
        "the first to join sees nobody: {state:?}"
    );
    let bob = server.connect("bob").await;
    let state = bob.join(&room).await.unwrap();
    assert_eq!(state.entries, [StateEntry::Participant("alice".into())]);
    let joined = alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Joined(_)))
        .await
        .unwrap();
    assert_eq!(joined, RoomEventKind::Joined("bob".into()));

    // Messages both ways: Bob to Alice by name, Alice to the whole room.
    bob.send_message(&room, Some("alice"), "hello alice")
        .await
        .unwrap();
    let message = alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Message { .. }))
        .await
        .unwrap();
    assert_eq!(
        message,
        RoomEventKind::Message {
            from: "bob".into(),
            text: "hello alice".into()
        }
    );
    alice.send_message(&room, None, "hello room").await.unwrap();
    let message = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Message { .. }))
        .await
        .unwrap();
    assert_eq!(
        message,
        RoomEventKind::Message {
            from: "alice".into(),
            text: "hello room".into()
        }
    );
    // The server answers a command after queueing what it caused, so a copy sent back to the
    // sender would already be here.
    let echoed = alice
        .drain_events()
        .into_iter()
        .filter(|e| matches!(e, SessionEvent::Room(r) if matches!(r.kind, RoomEventKind::Message { .. })))
        .count();
    assert_eq!(echoed, 0, "a broadcast is not sent back to its sender");

    // Alice publishes H.264 + Opus and, like a browser, sends keyframes only when asked.
    let alice_stream = room_stream_name(&room, "alice");
    let mut opts = PublishOptions::new(&alice_stream).room(&room);
    opts.keyframe_interval = None;
    let alice_pub = publish(&alice, opts).await.unwrap();
    assert_eq!(alice_pub.video_codec(), Some(VideoCodec::H264));
    let published = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Published { .. }))
        .await
        .unwrap();
    assert_eq!(
        published,
        RoomEventKind::Published {
            login: "alice".into(),
            name: alice_stream.clone()
        }
    );

    // Bob publishes VP8 + Opus.
    let bob_stream = room_stream_name(&room, "bob");
    let opts = PublishOptions::new(&bob_stream)
        .room(&room)
        .video(Some(VideoCodec::Vp8));
    let bob_pub = publish(&bob, opts).await.unwrap();
    assert_eq!(bob_pub.video_codec(), Some(VideoCodec::Vp8));
    let published = alice
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Published { .. }))
        .await
        .unwrap();
    assert_eq!(
        published,
        RoomEventKind::Published {
            login: "bob".into(),
            name: bob_stream.clone()
        }
    );

    // Each plays the other with Firefox's payload type numbers (the publishers use Chromium's),
    // so every packet the players see had its payload type rewritten.
    let ff = PayloadTypes::firefox();
    let play_in_room = |name: &str| {
        let mut o = PlayOptions::new(name).room(&room);
        o.payload_types = ff;
        o
    };
    let bob_plays = Player::play(&bob, play_in_room(&alice_stream)).await.unwrap();
    let alice_plays = Player::play(&alice, play_in_room(&bob_stream)).await.unwrap();
    for player in [&bob_plays, &alice_plays] {
        player.wait_packets(Kind::Video, 40, T).await.unwrap();
        player.wait_packets(Kind::Audio, 50, T).await.unwrap();
    }
    assert_media(
        "bob playing alice",
        &bob_plays.received(),
        video(VideoCodec::H264, ff.h264.0),
        audio(AudioCodec::Opus, ff.opus),
    );
    assert_media(
        "alice playing bob",
        &alice_plays.received(),
        video(VideoCodec::Vp8, ff.vp8.0),
        audio(AudioCodec::Opus, ff.opus),
    );

    // Bob's PLI reaches Alice's publisher, whose answering keyframe reaches Bob.
    let pli_before = alice_pub.stats().pli_received;
    let keyframes_before = bob_plays.stats().keyframes_received;
    bob_plays.request_keyframe().await.unwrap();
    alice_pub
        .wait_stats(T, |s| s.pli_received > pli_before)
        .await
        .expect("the player's PLI reaches the publisher");
    bob_plays
        .wait_stats(T, |s| s.keyframes_received > keyframes_before)
        .await
        .expect("the keyframe the PLI asked for reaches the player");

    // Carol joins late: her STATE lists both streams. She plays Alice's stream as its second
    // player, and her first video packet is a keyframe too, although Alice sends them only on
    // request; her FIR reaches Alice as well.
    let carol = server.connect("carol").await;
    let state = carol.join(&room).await.unwrap();
    assert_eq!(
        state.entries,
        [
            StateEntry::Stream {
                login: "alice".into(),
                name: alice_stream.clone()
            },
            StateEntry::Stream {
                login: "bob".into(),
                name: bob_stream.clone()
            },
        ]
    );
    for s in [&alice, &bob] {
        let joined = s
            .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Joined(_)))
            .await
            .unwrap();
        assert_eq!(joined, RoomEventKind::Joined("carol".into()));
    }
    let chrome = PayloadTypes::chrome();
    let carol_plays = play(&carol, &alice_stream, Some(room.clone()), PlayCodecs::browser())
        .await
        .unwrap();
    carol_plays.wait_packets(Kind::Video, 20, T).await.unwrap();
    carol_plays.wait_packets(Kind::Audio, 30, T).await.unwrap();
    assert_media(
        "carol playing alice",
        &carol_plays.received(),
        video(VideoCodec::H264, chrome.h264.0),
        audio(AudioCodec::Opus, chrome.opus),
    );
    let before = alice_pub.stats();
    carol_plays.request_fir().await.unwrap();
    alice_pub
        .wait_stats(T, |s| {
            s.pli_received + s.fir_received > before.pli_received + before.fir_received
        })
        .await
        .expect("the player's FIR reaches the publisher");

    // Carol vanishes (her TCP connection drops, no Close): the others see her leave, and Bob's
    // player is unaffected by the end of hers.
    carol.abort();
    for s in [&alice, &bob] {
        let left = s
            .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Left(_)))
            .await
            .unwrap();
        assert_eq!(left, RoomEventKind::Left("carol".into()));
    }
    drop(carol_plays);
    support::assert_flowing(&bob_plays, 20, "after another player of the stream vanished").await;

    // A player whose offer lacks the publisher's codec is refused; so is one without its audio.
    let refused = play(&bob, &alice_stream, Some(room.clone()), PlayCodecs::no_h264()).await;
    assert_eq!(refused.unwrap_err().server_info(), Some("No common codecs"));
    let pcmu_only = PlayCodecs::only(Some(VideoCodec::Vp8), Some(AudioCodec::Pcmu));
    let refused = play(&alice, &bob_stream, Some(room.clone()), pcmu_only).await;
    assert_eq!(refused.unwrap_err().server_info(), Some("No common codecs"));

    // Plain streams, outside any room, as the SDK's core API publishes and plays them by name:
    // H.264 + PCMA, VP8 video alone, PCMU audio alone.
    let dave = server.connect_plain().await;
    let erin = server.connect_plain().await;
    let shapes = [
        ("H.264 + PCMA", Some(VideoCodec::H264), Some(AudioCodec::Pcma)),
        ("VP8 alone", Some(VideoCodec::Vp8), None),
        ("PCMU alone", None, Some(AudioCodec::Pcmu)),
    ];
    let mut plain = Vec::new();
    for (label, v, a) in shapes {
        let name = unique("plain");
        let publisher = publish(&dave, PublishOptions::new(&name).video(v).audio(a))
            .await
            .unwrap();
        let player = play(&erin, &name, None, PlayCodecs::browser()).await.unwrap();
        plain.push((label, v, a, publisher, player));
    }
    for (label, v, a, publisher, player) in &plain {
        if v.is_some() {
            player.wait_packets(Kind::Video, 20, T).await.unwrap();
        }
        if a.is_some() {
            player.wait_packets(Kind::Audio, 30, T).await.unwrap();
        }
        let pt_of_video = |c: &VideoCodec| match c {
            VideoCodec::H264 => chrome.h264.0,
            VideoCodec::Vp8 => chrome.vp8.0,
        };
        let pt_of_audio = |c: &AudioCodec| match c {
            AudioCodec::Opus => chrome.opus,
            AudioCodec::Pcmu => chrome.pcmu,
            AudioCodec::Pcma => chrome.pcma,
        };
        assert_media(
            &format!("plain {label}"),
            &player.received(),
            v.as_ref().and_then(|c| video(*c, pt_of_video(c))),
            a.as_ref().and_then(|c| audio(*c, pt_of_audio(c))),
        );
        // An orderly stop: UNPUBLISHED to the publisher, STOPPED to its player.
        assert_eq!(publisher.stop().await.unwrap().status, StreamStatus::Unpublished);
        let stopped = player.wait_status(StreamStatus::Stopped, T).await.unwrap();
        assert_eq!(stopped.info.as_deref(), Some("Stopped by publisher stop"));
    }
    drop(plain);
    dave.close().await.unwrap();
    erin.close().await.unwrap();

    // Alice vanishes without a word. Bob learns her stream is gone, his player of it stops,
    // and she leaves the room, in that order.
    alice.abort();
    let gone = bob
        .wait_event(T, |e| {
            matches!(e, SessionEvent::Room(r) if r.room == room
                && matches!(r.kind, RoomEventKind::Unpublished { .. } | RoomEventKind::Left(_)))
        })
        .await
        .unwrap();
    let left = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Left(_)))
        .await
        .unwrap();
    let SessionEvent::Room(gone) = gone else {
        unreachable!()
    };
    assert_eq!(
        (gone.kind, left),
        (
            RoomEventKind::Unpublished {
                login: "alice".into(),
                name: alice_stream.clone()
            },
            RoomEventKind::Left("alice".into())
        )
    );
    let stopped = bob_plays.wait_status(StreamStatus::Stopped, T).await.unwrap();
    assert_eq!(stopped.info.as_deref(), Some("Stopped by publisher stop"));

    // What Alice held is freed; Bob's stream lives on.
    let bob_only = Health {
        sessions: 1,
        rooms: 1,
        published: 1,
        peers: 1,
    };
    server.wait_health(bob_only).await;
    let status = bob_pub.next_status(std::time::Duration::ZERO).await;
    assert!(status.is_err(), "Bob's stream is untouched: {status:?}");

    // Bob leaves too: nothing is left.
    drop((alice_pub, alice_plays, bob_plays));
    bob.close().await.unwrap();
    server.wait_health(Health::ZERO).await;
    server.assert_alive_without_panics();
}
