//! Losses between the server and a player are repaired from the server's retransmission
//! history, on each I/O backend.
//!
//! Proves: a player whose path drops every 7th video datagram (dropped inside the test client
//! before its WebRTC stack sees it) NACKs the gaps and the server resends them on the RTX
//! stream, so the video the player decodes has every sequence number; audio, RTCP and the
//! retransmissions themselves are never dropped.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use webcall_loadtest::{publish, Kind, PlayOptions, Player, PublishOptions};

use support::{backends, unique, Io, Server, T};

/// One video datagram in this many is lost on the player's path.
const LOSS_EVERY: u32 = 7;
/// Video packets the check covers.
const VIDEO_PACKETS: u64 = 150;
/// The newest packets may still be waiting for their repair when the check runs.
const IN_FLIGHT_PACKETS: u64 = 30;

backends!(lost_video_is_repaired => lost_video_is_repaired_uring, lost_video_is_repaired_mmsg);

async fn lost_video_is_repaired(io: Io) {
    let mut server = Server::start(io, 1, &[]);
    let stream = unique("lossy");
    let alice = server.connect("alice").await;
    let _publisher = publish(&alice, PublishOptions::new(&stream)).await.unwrap();
    let bob = server.connect("bob").await;
    let player = Player::play(&bob, PlayOptions::new(&stream).drop_video_every(LOSS_EVERY))
        .await
        .unwrap();
    player
        .wait_packets(Kind::Video, VIDEO_PACKETS + IN_FLIGHT_PACKETS, T)
        .await
        .unwrap();
    // Let the repairs of the last counted packets arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let dropped = player.stats().video_datagrams_dropped_on_purpose;
    assert!(
        dropped >= VIDEO_PACKETS / u64::from(LOSS_EVERY),
        "the path dropped {dropped} video datagrams"
    );
    let seqs: BTreeSet<u64> = player
        .received()
        .iter()
        .filter(|p| p.kind == Kind::Video)
        .map(|p| p.seq)
        .collect();
    let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
        panic!("no video received");
    };
    let checked_until = last.saturating_sub(IN_FLIGHT_PACKETS);
    assert!(
        checked_until > first + VIDEO_PACKETS / 2,
        "too little video: {first}..{last}"
    );
    let missing: Vec<u64> = (first..=checked_until).filter(|s| !seqs.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} video packets never repaired ({dropped} dropped): {missing:?}",
        missing.len(),
        checked_until - first + 1
    );
    server.assert_alive_without_panics();
}
