//! Tests of `ServerConnection` against a raw peer that speaks chunks and AMF0 directly:
//! pipelined commands waiting for decisions, mistyped commands, a second publish, play,
//! pings and acknowledgements, protocol violations and garbage.

use super::amf0::{self, Amf0Value};
use super::chunk::{ChunkReader, RtmpMessage};
use super::chunk_writer::{ChunkWriter, MessageHeader};
use super::command::{self, Command};
use super::handshake::{ClientHandshake, HandshakeStatus};
use super::message::{self, UserControl};
use super::{ClientConnection, RtmpError, ServerConnection, ServerEvent};

/// A peer speaking chunks and AMF0 directly.
struct RawPeer {
    reader: ChunkReader,
    writer: ChunkWriter,
}

impl RawPeer {
    /// A server and a raw peer past the handshake.
    fn connect() -> (ServerConnection, RawPeer) {
        let mut server = ServerConnection::new();
        let mut handshake = ClientHandshake::new();
        let mut out = Vec::new();
        handshake.start(&mut out);
        server.feed(&out).unwrap();
        out.clear();
        let HandshakeStatus::Done { leftover } = handshake.feed(&server.take_output(), &mut out).unwrap()
        else {
            panic!("handshake incomplete")
        };
        server.feed(&out).unwrap();
        assert!(server.handshake_done());
        let mut reader = ChunkReader::new();
        reader.push(&leftover);
        (
            server,
            RawPeer {
                reader,
                writer: ChunkWriter::new(),
            },
        )
    }

    fn bytes(&self, type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = MessageHeader {
            csid: 3,
            timestamp: 0,
            type_id,
            stream_id,
        };
        self.writer.write(header, payload, &mut out).unwrap();
        out
    }

    fn command(&self, stream_id: u32, values: &[Amf0Value]) -> Vec<u8> {
        self.bytes(message::COMMAND_AMF0, stream_id, &amf0::encode_all(values))
    }

    fn received(&mut self, server: &mut ServerConnection) -> Vec<RtmpMessage> {
        self.reader.push(&server.take_output());
        std::iter::from_fn(|| self.reader.next_message().unwrap()).collect()
    }

    /// `(name, transaction, info code)` of each command received.
    fn commands(&mut self, server: &mut ServerConnection) -> Vec<(String, f64, String)> {
        self.received(server)
            .iter()
            .filter(|m| m.type_id == message::COMMAND_AMF0)
            .filter_map(|m| Command::parse(m.type_id, &m.payload).unwrap())
            .map(|c| {
                let code = command::info_code(c.args.first()).0;
                (c.name, c.transaction_id, code)
            })
            .collect()
    }
}

fn s(text: &str) -> Amf0Value {
    Amf0Value::string(text)
}

fn connect_object() -> Amf0Value {
    Amf0Value::object([("app", s("live")), ("objectEncoding", Amf0Value::Number(3.0))])
}

#[test]
fn pipelined_commands_wait_for_the_decisions() {
    let (mut server, mut peer) = RawPeer::connect();
    let mut bytes = peer.command(0, &[s("connect"), Amf0Value::Number(1.0), connect_object()]);
    bytes.extend(peer.command(0, &[s("createStream"), Amf0Value::Number(2.0), Amf0Value::Null]));
    bytes.extend(peer.command(
        1,
        &[
            s("publish"),
            Amf0Value::Number(3.0),
            Amf0Value::Null,
            s("k"),
            s("live"),
        ],
    ));
    bytes.extend(peer.bytes(message::VIDEO, 1, b"keyframe"));
    server.feed(&bytes).unwrap();
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::ConnectRequested { .. })
    ));
    assert_eq!(server.poll_event(), None, "nothing processed before the decision");
    let controls: Vec<u8> = peer.received(&mut server).iter().map(|m| m.type_id).collect();
    assert_eq!(
        controls,
        vec![message::WINDOW_ACK_SIZE, message::SET_PEER_BANDWIDTH]
    );
    server.accept_connect();
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::PublishRequested { stream_id: 1, .. })
    ));
    server.accept_publish(1);
    server.feed(&[]).unwrap();
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Video {
            stream_id: 1,
            timestamp_ms: 0,
            body: b"keyframe".to_vec()
        })
    );
    let commands = peer.commands(&mut server);
    let names: Vec<(&str, f64, &str)> = commands
        .iter()
        .map(|(n, t, c)| (n.as_str(), *t, c.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("_result", 1.0, "NetConnection.Connect.Success"),
            ("_result", 2.0, ""),
            ("onStatus", 0.0, "NetStream.Publish.Start"),
        ]
    );
}

#[test]
fn wrong_amf_types_get_errors_not_panics() {
    let (mut server, mut peer) = RawPeer::connect();
    // connect with a number as the command object, then without an app.
    server
        .feed(&peer.command(0, &[s("connect"), Amf0Value::Number(1.0), Amf0Value::Number(5.0)]))
        .unwrap();
    server
        .feed(&peer.command(0, &[s("connect"), Amf0Value::Number(1.0), Amf0Value::object([])]))
        .unwrap();
    // Before connect: createStream refused.
    server
        .feed(&peer.command(0, &[s("createStream"), Amf0Value::Number(2.0)]))
        .unwrap();
    // A number as the command name: ignored.
    server
        .feed(&peer.command(0, &[Amf0Value::Number(1.0), Amf0Value::Number(1.0)]))
        .unwrap();
    assert_eq!(server.poll_event(), None);
    let codes: Vec<String> = peer
        .commands(&mut server)
        .into_iter()
        .map(|(n, _, c)| format!("{n} {c}"))
        .collect();
    assert_eq!(
        codes,
        vec![
            "_error NetConnection.Connect.Rejected",
            "_error NetConnection.Connect.Rejected",
            "_error NetConnection.Call.Failed",
        ]
    );

    server
        .feed(&peer.command(0, &[s("connect"), Amf0Value::Number(1.0), connect_object()]))
        .unwrap();
    server.accept_connect();
    server
        .feed(&peer.command(0, &[s("createStream"), Amf0Value::Number(2.0), Amf0Value::Null]))
        .unwrap();
    // publish with no name, with a number as name, on a stream never created; deleteStream
    // with a string; an unknown command with and without a transaction id.
    server
        .feed(&peer.command(1, &[s("publish"), Amf0Value::Number(3.0), Amf0Value::Null]))
        .unwrap();
    server
        .feed(&peer.command(
            1,
            &[
                s("publish"),
                Amf0Value::Number(3.0),
                Amf0Value::Null,
                Amf0Value::Number(7.0),
            ],
        ))
        .unwrap();
    server
        .feed(&peer.command(
            9,
            &[s("publish"), Amf0Value::Number(3.0), Amf0Value::Null, s("k")],
        ))
        .unwrap();
    server
        .feed(&peer.command(
            0,
            &[s("deleteStream"), Amf0Value::Number(0.0), Amf0Value::Null, s("1")],
        ))
        .unwrap();
    server
        .feed(&peer.command(0, &[s("frobnicate"), Amf0Value::Number(4.0)]))
        .unwrap();
    server
        .feed(&peer.command(0, &[s("frobnicate"), Amf0Value::Number(0.0)]))
        .unwrap();
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::ConnectRequested { .. })
    ));
    assert_eq!(server.poll_event(), None);
    let codes: Vec<String> = peer
        .commands(&mut server)
        .into_iter()
        .map(|(n, _, c)| format!("{n} {c}"))
        .collect();
    assert_eq!(
        codes,
        vec![
            "_result NetConnection.Connect.Success",
            "_result ",
            "onStatus NetStream.Publish.BadName",
            "onStatus NetStream.Publish.BadName",
            "onStatus NetStream.Publish.BadName",
            "_error NetConnection.Call.Failed",
        ]
    );
}

#[test]
fn second_publish_is_refused_and_streams_close() {
    let (mut server, mut peer) = RawPeer::connect();
    server
        .feed(&peer.command(0, &[s("connect"), Amf0Value::Number(1.0), connect_object()]))
        .unwrap();
    server.accept_connect();
    for txn in [2.0, 3.0] {
        server
            .feed(&peer.command(0, &[s("createStream"), Amf0Value::Number(txn), Amf0Value::Null]))
            .unwrap();
    }
    server
        .feed(&peer.command(
            1,
            &[s("publish"), Amf0Value::Number(0.0), Amf0Value::Null, s("a")],
        ))
        .unwrap();
    server.accept_publish(1);
    server
        .feed(&peer.command(
            2,
            &[s("publish"), Amf0Value::Number(0.0), Amf0Value::Null, s("b")],
        ))
        .unwrap();
    // Media on the stream that does not publish is dropped.
    server.feed(&peer.bytes(message::AUDIO, 2, b"x")).unwrap();
    server
        .feed(&peer.command(
            0,
            &[s("FCUnpublish"), Amf0Value::Number(5.0), Amf0Value::Null, s("a")],
        ))
        .unwrap();
    server
        .feed(&peer.command(
            0,
            &[
                s("deleteStream"),
                Amf0Value::Number(0.0),
                Amf0Value::Null,
                Amf0Value::Number(1.0),
            ],
        ))
        .unwrap();
    let events: Vec<ServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(
        matches!(
            &events[..],
            [
                ServerEvent::ConnectRequested { .. },
                ServerEvent::PublishRequested { stream_id: 1, .. },
                ServerEvent::StreamClosed { stream_id: 1 },
            ]
        ),
        "{events:?}"
    );
    let codes: Vec<String> = peer
        .commands(&mut server)
        .into_iter()
        .map(|(n, _, c)| format!("{n} {c}"))
        .collect();
    assert!(
        codes.contains(&"onStatus NetStream.Publish.BadName".to_owned()),
        "{codes:?}"
    );
}

#[test]
fn play_is_answered_and_media_flows_to_players_only() {
    let (mut server, mut peer) = RawPeer::connect();
    server
        .feed(&peer.command(0, &[s("connect"), Amf0Value::Number(1.0), connect_object()]))
        .unwrap();
    server.accept_connect();
    server
        .feed(&peer.command(0, &[s("createStream"), Amf0Value::Number(2.0), Amf0Value::Null]))
        .unwrap();
    server.send_video(1, 0, b"not yet");
    server
        .feed(&peer.command(1, &[s("play"), Amf0Value::Number(0.0), Amf0Value::Null, s("cam")]))
        .unwrap();
    let events: Vec<ServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(matches!(&events[1], ServerEvent::PlayRequested { stream_id: 1, name, .. } if name == "cam"));
    peer.received(&mut server);
    server.accept_play(1);
    server.send_metadata(1, &amf0::encode_all(&[s("onMetaData"), Amf0Value::object([])]));
    server.send_video(1, 40, b"frame");
    server.send_ping(77);
    let got = peer.received(&mut server);
    let kinds: Vec<u8> = got.iter().map(|m| m.type_id).collect();
    use message::{COMMAND_AMF0 as C, DATA_AMF0 as D, USER_CONTROL as U, VIDEO as V};
    assert_eq!(kinds, vec![U, C, C, D, D, V, U]);
    assert_eq!(
        UserControl::parse(&got[0].payload),
        Ok(UserControl::StreamBegin(1))
    );
    assert_eq!((got[5].timestamp, got[5].payload.as_slice()), (40, &b"frame"[..]));
    assert_eq!(
        UserControl::parse(&got[6].payload),
        Ok(UserControl::PingRequest(77))
    );
}

#[test]
fn pings_are_answered_and_bytes_acknowledged() {
    let (mut server, mut peer) = RawPeer::connect();
    let ping = UserControl::PingRequest(1234).encode();
    let mut bytes = peer.bytes(message::USER_CONTROL, 0, &ping);
    bytes.extend(peer.bytes(message::WINDOW_ACK_SIZE, 0, &message::window_ack_size(1000)));
    server.feed(&bytes).unwrap();
    let got = peer.received(&mut server);
    assert_eq!(
        UserControl::parse(&got[0].payload),
        Ok(UserControl::PingResponse(1234))
    );
    server.feed(&peer.bytes(message::AUDIO, 0, &[0; 1200])).unwrap();
    let got = peer.received(&mut server);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].type_id, message::ACKNOWLEDGEMENT);
}

#[test]
fn protocol_violations_are_errors_and_stay_errors() {
    // Random bytes before the handshake.
    let mut server = ServerConnection::new();
    assert_eq!(
        server.feed(b"\x16\x03\x01 TLS hello"),
        Err(RtmpError::BadVersion(0x16))
    );
    assert_eq!(server.feed(b"more"), Err(RtmpError::BadVersion(0x16)));

    let chunk_size = |size: u32| {
        let (mut server, peer) = RawPeer::connect();
        let mut bytes = Vec::new();
        let header = MessageHeader {
            csid: 2,
            timestamp: 0,
            type_id: message::SET_CHUNK_SIZE,
            stream_id: 0,
        };
        peer.writer
            .write(header, &size.to_be_bytes(), &mut bytes)
            .unwrap();
        server.feed(&bytes)
    };
    assert_eq!(chunk_size(0), Err(RtmpError::BadChunkSize(0)));
    assert_eq!(chunk_size(1 << 31), Err(RtmpError::BadChunkSize(1 << 31)));
    assert_eq!(chunk_size(4096), Ok(()));

    let (mut server, _) = RawPeer::connect();
    let oversize = [0x04, 0, 0, 0, 0x40, 0, 1, message::VIDEO, 1, 0, 0, 0];
    assert_eq!(
        server.feed(&oversize),
        Err(RtmpError::MessageTooLarge((4 << 20) + 1))
    );
    assert_eq!(server.feed(&[]), Err(RtmpError::MessageTooLarge((4 << 20) + 1)));
    // A truncated AMF command.
    let (mut server, peer) = RawPeer::connect();
    assert!(server
        .feed(&peer.bytes(message::COMMAND_AMF0, 0, &[0x02, 0, 9, b'c']))
        .is_err());
}

/// xorshift, for reproducible garbage.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_never_panics() {
    for seed in 0..300u64 {
        // After the handshake, in one go and in small pieces.
        let (mut server, _) = RawPeer::connect();
        let bytes = garbage(seed, 4096);
        let _ = server.feed(&bytes);
        let (mut server, _) = RawPeer::connect();
        for piece in bytes.chunks(7) {
            if server.feed(piece).is_err() {
                break;
            }
        }
        // Before the handshake, with a valid version byte.
        let mut server = ServerConnection::new();
        let mut bytes = vec![3];
        bytes.extend(garbage(seed + 1000, 6000));
        let _ = server.feed(&bytes);
        // At the client.
        let mut client = ClientConnection::new("a", "rtmp://h/a", "k");
        let _ = client.feed(&bytes);
        // An AMF command body of garbage.
        let (mut server, peer) = RawPeer::connect();
        let mut body = vec![0x02, 0, 7];
        body.extend_from_slice(b"connect");
        body.extend(garbage(seed + 2000, 200));
        let _ = server.feed(&peer.bytes(message::COMMAND_AMF0, 0, &body));
    }
}
