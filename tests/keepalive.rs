//! Vanished clients are detected and freed.
//!
//! Proves: a WebSocket session that stops answering the server's pings is closed after the
//! server's idle timeout (`--session-timeout`, 4 s here), and the room hears of it as if it had left (`UNPUBLISHED`,
//! `STOPPED` to its players, `LEFT`) while a session that answers stays connected. With
//! `--peer-timeout 3`, on each I/O backend: a publisher whose media stops while its connection
//! stays up fails with `Failed by RTP activity` (the room gets `FAILED`, its player `STOPPED`),
//! a player whose peer vanishes fails with `Failed by ICE keep alive`, and a player or
//! publisher that closes its peer connection (close_notify) ends at once with `Stopped by
//! user`; `/health` then shows only what is still alive.

mod support;

use std::time::{Duration, Instant};

use webcall_loadtest::{
    publish, room_stream_name, Kind, PlayOptions, Player, PublishOptions, RoomEventKind, StreamStatus,
};

use support::{backends, unique, Health, Io, Server, T};

/// The WebSocket idle timeout the test server runs with (`--session-timeout`).
const WS_IDLE: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_that_stops_answering_pings_is_closed() {
    let mut server = Server::start(Io::Mmsg, 1, &["--session-timeout", "4"]);
    let room = unique("keepalive");
    let quiet = server.connect("quiet").await;
    quiet.join(&room).await.unwrap();
    let lively = server.connect("lively").await;
    lively.join(&room).await.unwrap();
    let stream = room_stream_name(&room, "quiet");
    let _quiet_pub = publish(&quiet, PublishOptions::new(&stream).room(&room))
        .await
        .unwrap();
    let player = Player::play(&lively, PlayOptions::new(&stream).room(&room))
        .await
        .unwrap();
    player.wait_packets(Kind::Video, 10, T).await.unwrap();

    // From now on `quiet` sends nothing at all, not even `pong`.
    quiet.set_auto_pong(false);
    let silent_since = Instant::now();
    quiet
        .wait_closed(WS_IDLE + Duration::from_secs(15))
        .await
        .expect("the server closes a session that stopped answering pings");
    let after = silent_since.elapsed();
    assert!(
        after >= WS_IDLE - Duration::from_secs(1),
        "closed after {after:?}, before the idle timeout"
    );

    // The room sees it go, as after a disconnect.
    let unpublished = lively
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Unpublished { .. }))
        .await
        .unwrap();
    assert_eq!(
        unpublished,
        RoomEventKind::Unpublished {
            login: "quiet".into(),
            name: stream.clone()
        }
    );
    let stopped = player.wait_status(StreamStatus::Stopped, T).await.unwrap();
    assert_eq!(stopped.info.as_deref(), Some("Stopped by publisher stop"));
    let left = lively
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Left(_)))
        .await
        .unwrap();
    assert_eq!(left, RoomEventKind::Left("quiet".into()));

    // The session that answered its pings all along is still connected.
    assert!(!lively.is_closed(), "a session that answers pings stays open");
    assert!(
        lively.pings_answered() >= 3,
        "pings answered: {}",
        lively.pings_answered()
    );
    let lively_only = Health {
        sessions: 1,
        rooms: 1,
        published: 0,
        peers: 0,
    };
    server.wait_health(lively_only).await;
    server.assert_alive_without_panics();
}

backends!(peer_timeout => peer_timeout_uring, peer_timeout_mmsg);

/// `--peer-timeout 3`: streams whose media path goes quiet are failed and freed.
async fn peer_timeout(io: Io) {
    const PEER_TIMEOUT: Duration = Duration::from_secs(3);
    let mut server = Server::start(io, 2, &["--peer-timeout", "3"]);
    let room = unique("timeout");
    let alice = server.connect("alice").await;
    alice.join(&room).await.unwrap();
    let bob = server.connect("bob").await;
    bob.join(&room).await.unwrap();

    // Alice's publisher stops sending media but keeps its connection (ICE consent) alive.
    let stream = room_stream_name(&room, "alice");
    let silent = publish(&alice, PublishOptions::new(&stream).room(&room))
        .await
        .unwrap();
    let player = Player::play(&bob, PlayOptions::new(&stream).room(&room))
        .await
        .unwrap();
    player.wait_packets(Kind::Video, 10, T).await.unwrap();
    silent.set_sending(false).unwrap();
    let quiet_since = Instant::now();
    let failed = silent.wait_status(StreamStatus::Failed, T).await.unwrap();
    let after = quiet_since.elapsed();
    assert_eq!(failed.info.as_deref(), Some("Failed by RTP activity"));
    assert!(
        after >= PEER_TIMEOUT - Duration::from_millis(500) && after <= PEER_TIMEOUT + Duration::from_secs(3),
        "failed {after:?} after the media stopped, for a {PEER_TIMEOUT:?} timeout"
    );
    let room_failed = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Failed { .. }))
        .await
        .unwrap();
    assert_eq!(
        room_failed,
        RoomEventKind::Failed {
            login: "alice".into(),
            name: stream.clone()
        }
    );
    let stopped = player.wait_status(StreamStatus::Stopped, T).await.unwrap();
    assert_eq!(stopped.info.as_deref(), Some("Stopped by publisher stop"));
    drop((silent, player));
    server
        .wait_health(Health {
            sessions: 2,
            rooms: 1,
            published: 0,
            peers: 0,
        })
        .await;

    // Bob's player of a new stream closes its peer connection (DTLS close_notify, no WCS
    // message): it stops alone, at once and with an ordinary reason, not a DTLS failure.
    let stream = room_stream_name(&room, "alice");
    let publisher = publish(&alice, PublishOptions::new(&stream).room(&room))
        .await
        .unwrap();
    let player = Player::play(&bob, PlayOptions::new(&stream).room(&room))
        .await
        .unwrap();
    player.wait_packets(Kind::Video, 10, T).await.unwrap();
    player.close_media().unwrap();
    let gone_since = Instant::now();
    let stopped = player.wait_status(StreamStatus::Stopped, T).await.unwrap();
    let after = gone_since.elapsed();
    assert_eq!(stopped.info.as_deref(), Some("Stopped by user"));
    assert!(after <= Duration::from_secs(2), "stopped only after {after:?}");
    let status = publisher.next_status(Duration::ZERO).await;
    assert!(status.is_err(), "the publisher is untouched: {status:?}");
    server
        .wait_health(Health {
            sessions: 2,
            rooms: 1,
            published: 1,
            peers: 1,
        })
        .await;

    // Another player vanishes without a word (no close_notify): it fails alone after the
    // peer timeout, with a connection reason.
    let player = Player::play(&bob, PlayOptions::new(&stream).room(&room))
        .await
        .unwrap();
    player.wait_packets(Kind::Video, 10, T).await.unwrap();
    player.vanish_media().unwrap();
    let gone_since = Instant::now();
    let failed = player.wait_status(StreamStatus::Failed, T).await.unwrap();
    let after = gone_since.elapsed();
    assert_eq!(failed.info.as_deref(), Some("Failed by ICE keep alive"));
    assert!(
        after >= PEER_TIMEOUT && after <= PEER_TIMEOUT + Duration::from_secs(3),
        "failed after {after:?}"
    );
    let status = publisher.next_status(Duration::ZERO).await;
    assert!(status.is_err(), "the publisher is untouched: {status:?}");

    // Alice's publisher closes its peer connection in turn: it is unpublished, and the room
    // hears UNPUBLISHED, not FAILED.
    publisher.close_media().unwrap();
    let gone_since = Instant::now();
    let unpublished = publisher.wait_status(StreamStatus::Unpublished, T).await.unwrap();
    let after = gone_since.elapsed();
    assert_eq!(unpublished.info.as_deref(), Some("Stopped by user"));
    assert!(
        after <= Duration::from_secs(2),
        "unpublished only after {after:?}"
    );
    let room_unpublished = bob
        .wait_room_event(&room, T, |k| matches!(k, RoomEventKind::Unpublished { .. }))
        .await
        .unwrap();
    assert_eq!(
        room_unpublished,
        RoomEventKind::Unpublished {
            login: "alice".into(),
            name: stream.clone()
        }
    );
    server
        .wait_health(Health {
            sessions: 2,
            rooms: 1,
            published: 0,
            peers: 0,
        })
        .await;
    server.assert_alive_without_panics();
}
