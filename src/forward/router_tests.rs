use super::*;

fn track(kind: MediaKind, mid: &str, pt: u8, name: &str) -> TrackCodec {
    TrackCodec {
        kind,
        mid: Mid::from(mid),
        pt: Pt::from(pt),
        rtx_pt: None,
        name: name.into(),
        clock_rate: if kind == MediaKind::Video { 90_000 } else { 48_000 },
        channels: None,
        fmtp: String::new(),
    }
}

fn tracks(video_pt: u8, audio_pt: u8) -> StreamTracks {
    StreamTracks {
        video: Some(track(MediaKind::Video, "1", video_pt, "VP8")),
        audio: Some(track(MediaKind::Audio, "0", audio_pt, "OPUS")),
    }
}

fn packet(pt: u8, seq: u64, payload: &[u8]) -> IncomingRtp {
    IncomingRtp {
        pt: Pt::from(pt),
        seq,
        ts: seq as u32 * 3000,
        marker: false,
        arrival: Instant::now(),
        payload: payload.into(),
        sender: None,
    }
}

const VP8_KEY: &[u8] = &[0x10, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0, 0];
const VP8_DELTA: &[u8] = &[0x10, 0x01, 0, 0];

#[test]
fn fans_out_with_each_players_payload_type_and_a_shared_payload() {
    let mut router = Router::default();
    let publisher = PeerId(1);
    router.add_publisher(publisher, tracks(96, 111));
    router
        .add_player(PeerId(2), publisher, &tracks(120, 109), 7)
        .unwrap();
    router
        .add_player(PeerId(3), publisher, &tracks(96, 111), 8)
        .unwrap();
    let mut out = Vec::new();
    let audio = packet(111, 10, b"opus");
    router.forward(publisher, &audio, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].kind, MediaKind::Audio);
    assert_eq!(out[0].mid, Mid::from("0"));
}

#[test]
fn video_is_gated_on_a_keyframe_and_requests_one() {
    let mut router = Router::default();
    let publisher = PeerId(1);
    router.add_publisher(publisher, tracks(96, 111));
    router
        .add_player(PeerId(2), publisher, &tracks(96, 111), 1)
        .unwrap();
    let now = Instant::now();
    assert!(router.keyframe_request_due(publisher, now, false));
    assert!(!router.keyframe_request_due(publisher, now, false), "throttled");
    let mut out = Vec::new();
    router.forward(publisher, &packet(96, 100, VP8_DELTA), &mut out);
    assert!(out.is_empty());
    router.forward(publisher, &packet(96, 101, VP8_KEY), &mut out);
    router.forward(publisher, &packet(96, 102, VP8_DELTA), &mut out);
    assert_eq!(out.len(), 2);
    assert!(!router.keyframe_request_due(publisher, now + KEYFRAME_REQUEST_INTERVAL_MIN, false));
    assert!(
        router.keyframe_request_due(publisher, now + KEYFRAME_REQUEST_INTERVAL_MIN, true),
        "a player's PLI"
    );
}

#[test]
fn unknown_payload_types_and_publishers_are_ignored() {
    let mut router = Router::default();
    router.add_publisher(PeerId(1), tracks(96, 111));
    router
        .add_player(PeerId(2), PeerId(1), &tracks(96, 111), 1)
        .unwrap();
    let mut out = Vec::new();
    router.forward(PeerId(1), &packet(35, 1, b"x"), &mut out);
    router.forward(PeerId(9), &packet(111, 1, b"x"), &mut out);
    assert!(out.is_empty());
    assert_eq!(
        router.add_player(PeerId(3), PeerId(9), &tracks(96, 111), 1),
        Err(RouteError::NoPublisher)
    );
}

#[test]
fn removing_a_publisher_returns_and_detaches_its_players() {
    let mut router = Router::default();
    router.add_publisher(PeerId(1), tracks(96, 111));
    router
        .add_player(PeerId(2), PeerId(1), &tracks(96, 111), 1)
        .unwrap();
    router
        .add_player(PeerId(3), PeerId(1), &tracks(96, 111), 1)
        .unwrap();
    assert!(router.remove(PeerId(2)).is_empty());
    assert_eq!(router.remove(PeerId(1)), vec![PeerId(3)]);
    let mut out = Vec::new();
    router.forward(PeerId(1), &packet(96, 1, VP8_KEY), &mut out);
    assert!(out.is_empty(), "nothing is routed from a removed publisher");
    assert!(!router.keyframe_request_due(PeerId(1), Instant::now(), true));
}

#[test]
fn a_player_removed_while_waiting_no_longer_asks_for_keyframes() {
    let mut router = Router::default();
    router.add_publisher(PeerId(1), tracks(96, 111));
    router
        .add_player(PeerId(2), PeerId(1), &tracks(96, 111), 1)
        .unwrap();
    router.remove(PeerId(2));
    assert!(!router.keyframe_request_due(PeerId(1), Instant::now(), false));
    router
        .add_player(PeerId(3), PeerId(1), &tracks(96, 111), 1)
        .unwrap();
    let mut out = Vec::new();
    router.forward(PeerId(1), &packet(96, 5, VP8_KEY), &mut out);
    assert!(
        !router.keyframe_request_due(PeerId(1), Instant::now(), false),
        "its keyframe arrived"
    );
}
