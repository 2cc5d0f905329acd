//! End-to-end tests: a `ServerConnection` and a `ClientConnection` against each other in
//! memory (publish, media intact and in order, refusals), and the replay of a byte stream
//! recorded from a real ffmpeg publish, whole and byte by byte.

use super::amf0::{self, Amf0Value};
use super::{ClientConnection, ClientEvent, ServerConnection, ServerEvent};

/// Moves bytes both ways until both sides are quiet; the server's requests are decided by
/// `decide`. Returns the server's events.
fn pump(
    server: &mut ServerConnection,
    client: &mut ClientConnection,
    mut decide: impl FnMut(&mut ServerConnection, &ServerEvent),
) -> Vec<ServerEvent> {
    let mut events = Vec::new();
    for _ in 0..1000 {
        let to_server = client.take_output();
        server.feed(&to_server).unwrap();
        while let Some(event) = server.poll_event() {
            decide(server, &event);
            events.push(event);
        }
        let to_client = server.take_output();
        if to_server.is_empty() && to_client.is_empty() {
            return events;
        }
        client.feed(&to_client).unwrap();
    }
    panic!("connections never went quiet");
}

fn accept_all(server: &mut ServerConnection, event: &ServerEvent) {
    match event {
        ServerEvent::ConnectRequested { .. } => server.accept_connect(),
        ServerEvent::PublishRequested { stream_id, .. } => server.accept_publish(*stream_id),
        ServerEvent::PlayRequested { stream_id, .. } => server.accept_play(*stream_id),
        _ => {}
    }
}

fn client_events(client: &mut ClientConnection) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

#[test]
fn client_publishes_to_server_and_media_arrives_intact() {
    let mut server = ServerConnection::new();
    let mut client = ClientConnection::new("live", "rtmp://example/live", "room/cam?token=1");
    let events = pump(&mut server, &mut client, accept_all);
    assert_eq!(
        events,
        vec![
            ServerEvent::ConnectRequested {
                app: "live".into(),
                tc_url: Some("rtmp://example/live".into())
            },
            ServerEvent::PublishRequested {
                stream_id: 1,
                app: "live".into(),
                name: "room/cam?token=1".into()
            },
        ]
    );
    assert!(server.handshake_done() && client.handshake_done());
    assert_eq!(client_events(&mut client), vec![ClientEvent::Publishing]);
    assert!(client.is_publishing());

    let meta = amf0::encode_all(&[
        Amf0Value::string("onMetaData"),
        Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
    ]);
    client.send_metadata(&meta);
    let bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| (0..(i * 7919 % 150_000)).map(|b| (b % 251) as u8).collect())
        .collect();
    for (i, body) in bodies.iter().enumerate() {
        let ts = i as u32 * 33 + 0xFF_FFF0;
        if i % 2 == 0 {
            client.send_video(ts, body);
        } else {
            client.send_audio(ts, body);
        }
    }
    let events = pump(&mut server, &mut client, accept_all);
    assert_eq!(events.len(), 21);
    let ServerEvent::Metadata { stream_id: 1, values } = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(values[0].as_str(), Some("onMetaData"));
    assert_eq!(
        values[1].object_get("width").and_then(Amf0Value::as_number),
        Some(640.0)
    );
    for (i, event) in events[1..].iter().enumerate() {
        let ts = i as u32 * 33 + 0xFF_FFF0;
        let expected = if i % 2 == 0 {
            ServerEvent::Video {
                stream_id: 1,
                timestamp_ms: ts,
                body: bodies[i].clone(),
            }
        } else {
            ServerEvent::Audio {
                stream_id: 1,
                timestamp_ms: ts,
                body: bodies[i].clone(),
            }
        };
        assert_eq!(event, &expected);
    }
}

#[test]
fn refusals_reach_the_client_as_failed() {
    let mut server = ServerConnection::new();
    let mut client = ClientConnection::new("live", "rtmp://x/live", "key");
    pump(&mut server, &mut client, |s, e| match e {
        ServerEvent::ConnectRequested { .. } => s.accept_connect(),
        ServerEvent::PublishRequested { stream_id, .. } => s.reject_publish(*stream_id, "name in use"),
        _ => {}
    });
    let events = client_events(&mut client);
    assert!(
        matches!(&events[..], [ClientEvent::Failed(why)] if why.contains("BadName") && why.contains("name in use"))
    );
    client.send_video(0, b"dropped");
    assert_eq!(client.output_len(), 0, "no media before publishing");

    let mut server = ServerConnection::new();
    let mut client = ClientConnection::new("live", "rtmp://x/live", "key");
    pump(&mut server, &mut client, |s, _| s.reject_connect("bad app"));
    let events = client_events(&mut client);
    assert!(
        matches!(&events[..], [ClientEvent::Failed(why)] if why.contains("Connect.Rejected") && why.contains("bad app"))
    );
}

/// What ffmpeg 6 sent when publishing 1.5 s of 64x48 H.264 + AAC to
/// `rtmp://127.0.0.1/live/test-key?token=abc` (recorded against this server).
const FFMPEG_PUBLISH: &[u8] = include_bytes!("testdata/ffmpeg_publish.bin");

fn replay_ffmpeg(piece_len: usize) -> Vec<ServerEvent> {
    let mut server = ServerConnection::new();
    let mut events = Vec::new();
    for piece in FFMPEG_PUBLISH.chunks(piece_len) {
        server.feed(piece).unwrap();
        while let Some(event) = server.poll_event() {
            accept_all(&mut server, &event);
            events.push(event);
        }
        server.take_output();
    }
    events
}

#[test]
fn replays_a_real_ffmpeg_publish() {
    let events = replay_ffmpeg(1);
    assert_eq!(events, replay_ffmpeg(1500));
    assert_eq!(
        events[..2],
        [
            ServerEvent::ConnectRequested {
                app: "live".into(),
                tc_url: Some("rtmp://127.0.0.1:19351/live".into())
            },
            ServerEvent::PublishRequested {
                stream_id: 1,
                app: "live".into(),
                name: "test-key?token=abc".into()
            },
        ]
    );
    assert!(
        matches!(&events[2], ServerEvent::Metadata { values, .. } if values[0].as_str() == Some("onMetaData"))
    );
    assert_eq!(events.last(), Some(&ServerEvent::StreamClosed { stream_id: 1 }));
    let mut last_video = 0;
    let (mut audio, mut video) = (0, 0);
    for event in &events {
        match event {
            ServerEvent::Audio { body, .. } => {
                audio += 1;
                assert_eq!(body.first().map(|b| b >> 4), Some(10), "AAC");
            }
            ServerEvent::Video {
                timestamp_ms, body, ..
            } => {
                video += 1;
                assert_eq!(body.first().map(|b| b & 0x0F), Some(7), "AVC");
                assert!(*timestamp_ms >= last_video);
                last_video = *timestamp_ms;
            }
            _ => {}
        }
    }
    assert_eq!((audio, video), (35, 17));
    assert!(
        last_video >= 1000,
        "timestamps advance over the 1.5 s: {last_video}"
    );
}
