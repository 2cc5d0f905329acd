//! Losses between the server and a player are repaired from the server's retransmission
//! history, on each I/O backend.
//!
//! Proves: a player whose path drops every 7th video datagram (dropped inside the test client
//! before its WebRTC stack sees it) NACKs the gaps and the server resends them on the RTX
//! stream, so the video the player decodes has every sequence number, each repair carrying
//! the original packet's RTP timestamp, marker and payload type; audio, RTCP and the
//! retransmissions themselves are never dropped.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use webcall_loadtest::{publish, Kind, PlayOptions, Player, PublishOptions, ReceivedPacket};

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
    let received = player.received();
    let video: BTreeMap<u64, &ReceivedPacket> = received
        .iter()
        .filter(|p| p.kind == Kind::Video)
        .map(|p| (p.seq, p))
        .collect();
    let (Some(&first), Some(&last)) = (video.keys().next(), video.keys().next_back()) else {
        panic!("no video received");
    };
    let checked_until = last.saturating_sub(IN_FLIGHT_PACKETS);
    assert!(
        checked_until > first + VIDEO_PACKETS / 2,
        "too little video: {first}..{last}"
    );
    let missing: Vec<u64> = (first..=checked_until)
        .filter(|s| !video.contains_key(s))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} video packets never repaired ({dropped} dropped): {missing:?}",
        missing.len(),
        checked_until - first + 1
    );
    // A repair is rebuilt from the server's history: if it lost the timestamp, the marker or
    // the payload type, the frames around it would no longer hold together.
    for seq in first..checked_until {
        let (packet, next) = (video[&seq], video[&(seq + 1)]);
        assert_eq!(packet.pt, next.pt, "payload type changes at {seq}");
        assert!(packet.payload_len > 0, "empty payload at {seq}");
        let frame_ends = packet.rtp_time != next.rtp_time;
        assert_eq!(
            packet.marker, frame_ends,
            "marker at {seq} (timestamp {} then {})",
            packet.rtp_time, next.rtp_time
        );
    }
    server.assert_alive_without_panics();
}
