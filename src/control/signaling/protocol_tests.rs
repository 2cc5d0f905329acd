use super::*;

fn parse(text: &str) -> Result<ClientMessage, ParseFailure> {
    parse_client_frame(text)
}

#[test]
fn connection_from_the_room_sdk() {
    let msg = parse(r#"{"message":"connection","data":[{"appKey":"roomApp","mediaProviders":["WebRTC"],"clientVersion":"2.0","custom":{"login":"alice","token":null}}]}"#).unwrap();
    assert_eq!(
        msg,
        ClientMessage::Connection(ConnectionRequest {
            app_key: "roomApp".into(),
            login: Some("alice".into()),
            token: None
        })
    );
}

#[test]
fn connection_without_custom_is_the_plain_sdk() {
    let msg = parse(r#"{"message":"connection","data":[{"appKey":"defaultApp"}]}"#).unwrap();
    assert!(matches!(
        msg,
        ClientMessage::Connection(ConnectionRequest { login: None, .. })
    ));
}

#[test]
fn keepalive_and_logs() {
    assert_eq!(
        parse(r#"{"message":"pong","data":[null]}"#).unwrap(),
        ClientMessage::Pong
    );
    assert_eq!(
        parse(r#"{"message":"ping","data":[null]}"#).unwrap(),
        ClientMessage::Ping
    );
    assert_eq!(
        parse(r#"{"message":"pushLogs","data":[{"logs":"x"}]}"#).unwrap(),
        ClientMessage::PushLogs
    );
}

#[test]
fn room_commands() {
    let join = parse(r#"{"message":"sendData","data":[{"operationId":"op1","payload":{"command":"join","options":{"name":"r1","record":true}}}]}"#).unwrap();
    assert_eq!(
        join,
        ClientMessage::SendData {
            operation_id: "op1".into(),
            command: AppCommand::Join {
                room: "r1".into(),
                record: true
            }
        }
    );
    let leave = parse(r#"{"message":"sendData","data":[{"operationId":"op2","payload":{"command":"leave","options":{"name":"r1"}}}]}"#).unwrap();
    assert!(matches!(
        leave,
        ClientMessage::SendData {
            command: AppCommand::Leave { .. },
            ..
        }
    ));
    let msg = parse(r#"{"message":"sendData","data":[{"operationId":"op3","payload":{"command":"sendMessage","options":{"roomConfig":{"name":"r1"},"to":"bob","text":"hi"}}}]}"#).unwrap();
    assert_eq!(
        msg,
        ClientMessage::SendData {
            operation_id: "op3".into(),
            command: AppCommand::SendMessage {
                room: "r1".into(),
                to: Some("bob".into()),
                text: "hi".into()
            }
        }
    );
    let broadcast = parse(r#"{"message":"sendData","data":[{"operationId":"op4","payload":{"command":"sendMessage","options":{"roomConfig":{"name":"r1"},"text":"all"}}}]}"#).unwrap();
    assert!(matches!(
        broadcast,
        ClientMessage::SendData {
            command: AppCommand::SendMessage { to: None, .. },
            ..
        }
    ));
}

#[test]
fn stream_commands() {
    let publish = parse(r#"{"message":"publishStream","data":[{"mediaSessionId":"m1","name":"r1-alice-ab12","published":true,"sdp":"v=0\r\n","custom":{"name":"r1"},"record":false}]}"#).unwrap();
    assert_eq!(
        publish,
        ClientMessage::PublishStream(StreamRequest {
            media_session_id: "m1".into(),
            name: "r1-alice-ab12".into(),
            sdp: "v=0\r\n".into(),
            room: Some("r1".into()),
            record: false
        })
    );
    let play =
        parse(r#"{"message":"playStream","data":[{"mediaSessionId":"m2","name":"s","sdp":"v=0"}]}"#).unwrap();
    assert!(matches!(
        play,
        ClientMessage::PlayStream(StreamRequest { room: None, .. })
    ));
    let stop = parse(r#"{"message":"stopStream","data":[{"mediaSessionId":"m2","name":"s"}]}"#).unwrap();
    assert_eq!(
        stop,
        ClientMessage::StopStream(StreamRef {
            media_session_id: "m2".into(),
            name: Some("s".into())
        })
    );
    let unpublish = parse(r#"{"message":"unPublishStream","data":[{"mediaSessionId":"m1"}]}"#).unwrap();
    assert!(matches!(
        unpublish,
        ClientMessage::UnPublishStream(StreamRef { name: None, .. })
    ));
}

#[test]
fn malformed_frames_are_refused_with_a_reason() {
    for bad in [
        "",
        "not json",
        "[1,2]",
        "42",
        r#"{"data":[]}"#,
        r#"{"message":7}"#,
    ] {
        let failure = parse(bad).unwrap_err();
        assert!(!failure.reason.is_empty(), "{bad}");
    }
    let unknown = parse(r#"{"message":"launchRockets","data":[{}]}"#).unwrap_err();
    assert_eq!(unknown.message.as_deref(), Some("launchRockets"));
    assert!(unknown.reason.contains("Unknown message"));
}

#[test]
fn failures_carry_the_ids_needed_to_answer() {
    let bad_command =
        parse(r#"{"message":"sendData","data":[{"operationId":"op9","payload":{"command":"fly"}}]}"#)
            .unwrap_err();
    assert_eq!(bad_command.operation_id.as_deref(), Some("op9"));
    let no_room = parse(
        r#"{"message":"sendData","data":[{"operationId":"op8","payload":{"command":"join","options":{}}}]}"#,
    )
    .unwrap_err();
    assert_eq!(no_room.operation_id.as_deref(), Some("op8"));
    let no_sdp =
        parse(r#"{"message":"publishStream","data":[{"mediaSessionId":"m5","name":"s"}]}"#).unwrap_err();
    assert_eq!(no_sdp.media_session_id.as_ref().map(|m| m.as_str()), Some("m5"));
    assert_eq!(no_sdp.stream_name.as_ref().map(|n| n.as_str()), Some("s"));
}

#[test]
fn wrong_types_and_oversized_fields_are_refused() {
    assert!(
        parse(r#"{"message":"publishStream","data":[{"mediaSessionId":5,"name":"s","sdp":"x"}]}"#).is_err()
    );
    let long_name = "n".repeat(NAME_BYTES_MAX + 1);
    let frame = format!(
        r#"{{"message":"playStream","data":[{{"mediaSessionId":"m","name":"{long_name}","sdp":"x"}}]}}"#
    );
    assert!(parse(&frame).is_err());
    let huge = format!(
        r#"{{"message":"ping","data":["{}"]}}"#,
        "x".repeat(WS_MESSAGE_BYTES_MAX)
    );
    assert!(parse(&huge).is_err());
    assert!(parse("{\"message\":\"sendData\",\"data\":[{\"operationId\":\"o\",\"payload\":{\"command\":\"join\",\"options\":{\"name\":\"a\\u0000b\"}}}]}").is_err());
}

#[test]
fn server_frames_have_the_sdk_shapes() {
    let status = ServerMessage::DataStatus {
        operation_id: "op1".into(),
        accepted: false,
        info: Some("Room is full".into()),
    };
    let v: Value = serde_json::from_str(&status.to_json()).unwrap();
    assert_eq!(v["message"], "DataStatusEvent");
    assert_eq!(v["data"][0]["status"], "FAILED");
    assert_eq!(v["data"][0]["info"], "Room is full");

    let state = ServerMessage::Room {
        room: "r1".into(),
        event: RoomEvent::State(vec![
            StateEntry::Participant("bob".into()),
            StateEntry::Stream {
                login: "carol".into(),
                name: "r1-carol-1".into(),
            },
        ]),
    };
    let v: Value = serde_json::from_str(&state.to_json()).unwrap();
    assert_eq!(v["message"], "OnDataEvent");
    assert_eq!(v["data"][0]["payload"]["roomName"], "r1");
    assert_eq!(v["data"][0]["payload"]["name"], "STATE");
    assert_eq!(v["data"][0]["payload"]["info"][0], "bob");
    assert_eq!(v["data"][0]["payload"]["info"][1]["name"], "r1-carol-1");

    let sdp = ServerMessage::RemoteSdp {
        media_session_id: "m1".into(),
        sdp: "v=0".into(),
    };
    let v: Value = serde_json::from_str(&sdp.to_json()).unwrap();
    assert_eq!(v["message"], "setRemoteSDP");
    assert_eq!(v["data"][0], "m1");
    assert_eq!(v["data"][1], "v=0");

    let failed = ServerMessage::StreamStatus {
        media_session_id: "m1".into(),
        name: "s".into(),
        status: StreamStatus::Failed,
        info: Some("No common codecs".into()),
        record_name: None,
    };
    let v: Value = serde_json::from_str(&failed.to_json()).unwrap();
    assert_eq!(v["data"][0]["status"], "FAILED");
    assert_eq!(v["data"][0]["info"], "No common codecs");

    let ping: Value = serde_json::from_str(&ServerMessage::Ping.to_json()).unwrap();
    assert_eq!(ping["message"], "ping");

    let user = ServerMessage::UserData {
        login: "a".into(),
        auth_token: "t".into(),
        app_key: "roomApp".into(),
    };
    let v: Value = serde_json::from_str(&user.to_json()).unwrap();
    assert_eq!(v["message"], "getUserData");
    assert_eq!(v["data"][0]["authToken"], "t");

    for event in [
        RoomEvent::Joined("a".into()),
        RoomEvent::Left("a".into()),
        RoomEvent::Published {
            login: "a".into(),
            name: "s".into(),
        },
        RoomEvent::Unpublished {
            login: "a".into(),
            name: "s".into(),
        },
        RoomEvent::Failed {
            login: "a".into(),
            name: "s".into(),
        },
        RoomEvent::Message {
            from: "a".into(),
            text: "hi".into(),
        },
    ] {
        let v: Value = serde_json::from_str(
            &ServerMessage::Room {
                room: "r".into(),
                event,
            }
            .to_json(),
        )
        .unwrap();
        assert!(v["data"][0]["payload"]["name"].is_string());
    }
}
