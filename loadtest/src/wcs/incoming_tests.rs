//! Tests of the server-message parser.

use super::*;
use serde_json::json;

fn frame(message: &str, data: Value) -> String {
    json!({ "message": message, "data": data }).to_string()
}

fn room(name: &str, info: Value) -> ServerMessage {
    let data = json!([{ "payload": { "roomName": "r1", "name": name, "info": info } }]);
    parse(&frame("OnDataEvent", data)).unwrap()
}

#[test]
fn session_messages() {
    let m = parse(&frame("getUserData", json!([{ "authToken": "t" }]))).unwrap();
    assert_eq!(m, ServerMessage::GetUserData(json!({ "authToken": "t" })));
    assert_eq!(parse(&frame("ping", json!([null]))).unwrap(), ServerMessage::Ping);
    assert_eq!(parse(r#"{"message":"ping"}"#).unwrap(), ServerMessage::Ping);
    let d = json!([{ "operationId": "o1", "status": "FAILED", "info": "Room is full" }]);
    let ServerMessage::DataStatus(s) = parse(&frame("DataStatusEvent", d)).unwrap() else {
        panic!()
    };
    assert!(!s.accepted);
    assert_eq!(s.info.as_deref(), Some("Room is full"));
}

#[test]
fn room_events() {
    let state = room("STATE", json!(["bob", { "login": "carol", "name": "s1" }]));
    let ServerMessage::RoomEvent(RoomEvent {
        room: r,
        kind: RoomEventKind::State(e),
    }) = state
    else {
        panic!()
    };
    assert_eq!(r, "r1");
    assert_eq!(e[0], StateEntry::Participant("bob".into()));
    assert_eq!(
        e[1],
        StateEntry::Stream {
            login: "carol".into(),
            name: "s1".into()
        }
    );
    let kinds = [
        (room("JOINED", json!("bob")), RoomEventKind::Joined("bob".into())),
        (room("LEFT", json!("bob")), RoomEventKind::Left("bob".into())),
        (
            room("PUBLISHED", json!({ "login": "a", "name": "s" })),
            RoomEventKind::Published {
                login: "a".into(),
                name: "s".into(),
            },
        ),
        (
            room("UNPUBLISHED", json!({ "login": "a", "name": "s" })),
            RoomEventKind::Unpublished {
                login: "a".into(),
                name: "s".into(),
            },
        ),
        (
            room("FAILED", json!({ "login": "a", "name": "s" })),
            RoomEventKind::Failed {
                login: "a".into(),
                name: "s".into(),
            },
        ),
        (
            room("MESSAGE", json!({ "from": "a", "text": "hi" })),
            RoomEventKind::Message {
                from: "a".into(),
                text: "hi".into(),
            },
        ),
    ];
    for (got, want) in kinds {
        let ServerMessage::RoomEvent(ev) = got else {
            panic!()
        };
        assert_eq!(ev.kind, want);
    }
}

#[test]
fn streams() {
    let m = parse(&frame("setRemoteSDP", json!(["ms1", "v=0\r\n"]))).unwrap();
    assert_eq!(
        m,
        ServerMessage::SetRemoteSdp {
            media_session_id: "ms1".into(),
            sdp: "v=0\r\n".into()
        }
    );
    let d = json!([{ "mediaSessionId": "ms1", "name": "s", "status": "FAILED",
                     "info": "No common codecs" }]);
    let ServerMessage::StreamStatus(s) = parse(&frame("notifyStreamStatusEvent", d)).unwrap() else {
        panic!()
    };
    assert_eq!(s.status, StreamStatus::Failed);
    assert!(s.status.is_terminal());
    assert_eq!(s.info.as_deref(), Some("No common codecs"));
    let d = json!([{ "apiMethod": "StreamStatusEvent", "id": "ms1", "info": "x" }]);
    let ServerMessage::Fail { id, .. } = parse(&frame("fail", d)).unwrap() else {
        panic!()
    };
    assert_eq!(id.as_deref(), Some("ms1"));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for text in [
        "",
        "nope",
        "[]",
        r#"{"message": 5}"#,
        r#"{"message":"setRemoteSDP","data":["only-id"]}"#,
        r#"{"message":"DataStatusEvent","data":[]}"#,
        r#"{"message":"OnDataEvent","data":[{"payload":{"roomName":"r"}}]}"#,
        r#"{"message":"OnDataEvent","data":[{"payload":{"roomName":"r","name":"JOINED","info":{}}}]}"#,
        r#"{"message":"OnDataEvent","data":[{"payload":{"roomName":"r","name":"STATE","info":[5]}}]}"#,
        r#"{"message":"notifyStreamStatusEvent","data":[{"status":"PLAYING"}]}"#,
    ] {
        assert!(parse(text).is_err(), "{text}");
    }
    let other = parse(r#"{"message":"notifyVideoFormat","data":[{}]}"#).unwrap();
    assert!(matches!(other, ServerMessage::Other { .. }));
}
