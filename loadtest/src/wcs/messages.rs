//! Client → server messages of the WCS WebSocket protocol, as pure functions.
//!
//! Owns the exact JSON shapes the official JS SDK sends (`flashphoner-core.js`,
//! `room-module.js`): every frame is `{"message": NAME, "data": [OBJ]}` with exactly one
//! element in `data`. Nothing here does I/O; each builder returns the text frame to send.
//! Invariant: field names and constant values match the SDK byte for byte where the SDK
//! fixes them (`mediaProvider: "WebRTC"`, `published`, `status: "PENDING"`), so a server
//! that accepts these accepts a browser.

use serde_json::{json, Value};

/// The room application key the room API uses.
pub const APP_ROOM: &str = "roomApp";
/// The application key of the core API when none is given.
pub const APP_DEFAULT: &str = "defaultApp";

/// Fields of the `connection` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `appKey`: [`APP_ROOM`] or [`APP_DEFAULT`] (or anything a test wants to try).
    pub app_key: String,
    /// `custom.login`; `None` leaves `custom` out, as the core API does.
    pub login: Option<String>,
    /// `custom.token` (a room join token), only with a login.
    pub token: Option<String>,
}

impl ConnectionOptions {
    /// Room API connection as `login`.
    pub fn room(login: &str) -> Self {
        ConnectionOptions {
            app_key: APP_ROOM.to_string(),
            login: Some(login.to_string()),
            token: None,
        }
    }
}

fn envelope(message: &str, data: Value) -> String {
    json!({ "message": message, "data": [data] }).to_string()
}

/// `connection`: the first message on a new socket.
pub fn connection(opts: &ConnectionOptions) -> String {
    let mut data = json!({
        "appKey": opts.app_key,
        "mediaProviders": ["WebRTC", "MSE", "WSPlayer"],
        "keepAlive": false,
        "authToken": null,
        "clientVersion": "2.0",
        "clientOSVersion": "5.0 (X11)",
        "clientBrowserVersion": "webcall-loadtest",
        "msePacketizationVersion": 2,
    });
    if let (Some(login), Some(obj)) = (&opts.login, data.as_object_mut()) {
        let mut custom = json!({ "login": login });
        if let (Some(token), Some(c)) = (&opts.token, custom.as_object_mut()) {
            c.insert("token".into(), json!(token));
        }
        obj.insert("custom".into(), custom);
    }
    envelope("connection", data)
}

/// `pong`, the answer to a server `ping` (data `[null]`).
pub fn pong() -> String {
    envelope("pong", Value::Null)
}

/// `ping`, the client's own keep-alive probe (data `[null]`).
pub fn ping() -> String {
    envelope("ping", Value::Null)
}

/// `sendData` `{operationId, payload: {command, options}}`.
pub fn send_data(operation_id: &str, command: &str, options: Value) -> String {
    envelope(
        "sendData",
        json!({
            "operationId": operation_id,
            "payload": { "command": command, "options": options },
        }),
    )
}

/// Options of the `join` command.
pub fn join_options(room: &str) -> Value {
    json!({ "name": room, "record": false })
}

/// Options of the `leave` command.
pub fn leave_options(room: &str) -> Value {
    json!({ "name": room })
}

/// Options of the `sendMessage` command; `to: None` leaves the recipient out (a broadcast,
/// which the SDK itself never sends).
pub fn send_message_options(room: &str, to: Option<&str>, text: &str) -> Value {
    let mut v = json!({ "roomConfig": { "name": room }, "text": text });
    if let (Some(to), Some(obj)) = (to, v.as_object_mut()) {
        obj.insert("to".into(), json!(to));
    }
    v
}

/// `sendData` `join`.
pub fn join(operation_id: &str, room: &str) -> String {
    send_data(operation_id, "join", join_options(room))
}

/// `sendData` `leave`.
pub fn leave(operation_id: &str, room: &str) -> String {
    send_data(operation_id, "leave", leave_options(room))
}

/// `sendData` `sendMessage`.
pub fn send_message(operation_id: &str, room: &str, to: Option<&str>, text: &str) -> String {
    send_data(operation_id, "sendMessage", send_message_options(room, to, text))
}

/// What a `publishStream` or `playStream` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest<'a> {
    /// `mediaSessionId`: the client-chosen id of this peer connection.
    pub media_session_id: &'a str,
    /// Stream name.
    pub name: &'a str,
    /// The SDP offer.
    pub sdp: &'a str,
    /// Room name, sent as `custom: {name: ROOM}`; `None` leaves `custom` out.
    pub room: Option<&'a str>,
    /// `hasVideo` (publish only; play always sends `true` like the SDK).
    pub has_video: bool,
    /// `hasAudio` (publish only).
    pub has_audio: bool,
    /// `record`.
    pub record: bool,
}

fn stream_common(req: &StreamRequest<'_>, published: bool) -> Value {
    let mut v = json!({
        "mediaSessionId": req.media_session_id,
        "name": req.name,
        "published": published,
        "hasVideo": if published { req.has_video } else { true },
        "hasAudio": if published { req.has_audio } else { true },
        "status": "PENDING",
        "record": req.record,
        "mediaProvider": "WebRTC",
        "sdp": req.sdp,
        "bitrate": 0,
        "minBitrate": 0,
        "maxBitrate": 0,
        "constraints": {
            "audio": if published { req.has_audio } else { true },
            "video": if published { req.has_video } else { true },
        },
        "transport": "UDP",
        "cvoExtension": false,
    });
    if let (Some(room), Some(obj)) = (req.room, v.as_object_mut()) {
        obj.insert("custom".into(), json!({ "name": room }));
    }
    v
}

/// `publishStream` with a send-only offer.
pub fn publish_stream(req: &StreamRequest<'_>) -> String {
    envelope("publishStream", stream_common(req, true))
}

/// `playStream` with a receive-only offer.
pub fn play_stream(req: &StreamRequest<'_>) -> String {
    let mut v = stream_common(req, false);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("width".into(), json!(0));
        obj.insert("height".into(), json!(0));
        obj.insert("quality".into(), json!(0));
    }
    envelope("playStream", v)
}

fn stop_common(media_session_id: &str, name: &str, published: bool) -> Value {
    json!({
        "mediaSessionId": media_session_id,
        "name": name,
        "published": published,
        "hasVideo": true,
        "hasAudio": true,
        "status": if published { "PUBLISHING" } else { "PLAYING" },
        "record": false,
    })
}

/// `unPublishStream`.
pub fn unpublish_stream(media_session_id: &str, name: &str) -> String {
    envelope("unPublishStream", stop_common(media_session_id, name, true))
}

/// `stopStream`.
pub fn stop_stream(media_session_id: &str, name: &str) -> String {
    envelope("stopStream", stop_common(media_session_id, name, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (String, Value) {
        let v: Value = serde_json::from_str(s).unwrap();
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "the client always sends one data element");
        (v["message"].as_str().unwrap().to_string(), data[0].clone())
    }

    #[test]
    fn connection_room_and_default() {
        let (m, d) = parse(&connection(&ConnectionOptions::room("alice")));
        assert_eq!(m, "connection");
        assert_eq!(d["appKey"], "roomApp");
        assert_eq!(d["custom"]["login"], "alice");
        assert!(d["custom"].get("token").is_none());
        let opts = ConnectionOptions {
            app_key: APP_DEFAULT.into(),
            login: None,
            token: None,
        };
        let (_, d) = parse(&connection(&opts));
        assert_eq!(d["appKey"], "defaultApp");
        assert!(d.get("custom").is_none());
        let mut opts = ConnectionOptions::room("bob");
        opts.token = Some("jwt".into());
        let (_, d) = parse(&connection(&opts));
        assert_eq!(d["custom"]["token"], "jwt");
    }

    #[test]
    fn pong_and_ping_carry_null() {
        let (m, d) = parse(&pong());
        assert_eq!((m.as_str(), d), ("pong", Value::Null));
        assert_eq!(parse(&ping()).0, "ping");
    }

    #[test]
    fn send_data_commands() {
        let (m, d) = parse(&join("op1", "room1"));
        assert_eq!(m, "sendData");
        assert_eq!(d["operationId"], "op1");
        assert_eq!(d["payload"]["command"], "join");
        assert_eq!(d["payload"]["options"]["name"], "room1");
        let (_, d) = parse(&leave("op2", "room1"));
        assert_eq!(d["payload"]["command"], "leave");
        assert_eq!(d["payload"]["options"], json!({"name": "room1"}));
        let (_, d) = parse(&send_message("op3", "room1", Some("bob"), "hi"));
        let o = &d["payload"]["options"];
        assert_eq!(d["payload"]["command"], "sendMessage");
        assert_eq!(o["roomConfig"]["name"], "room1");
        assert_eq!(o["to"], "bob");
        assert_eq!(o["text"], "hi");
        let (_, d) = parse(&send_message("op4", "room1", None, "all"));
        assert!(d["payload"]["options"].get("to").is_none());
    }

    #[test]
    fn publish_and_play() {
        let req = StreamRequest {
            media_session_id: "ms1",
            name: "room1-alice-ab12",
            sdp: "v=0\r\n",
            room: Some("room1"),
            has_video: true,
            has_audio: false,
            record: false,
        };
        let (m, d) = parse(&publish_stream(&req));
        assert_eq!(m, "publishStream");
        assert_eq!(d["mediaSessionId"], "ms1");
        assert_eq!(d["published"], true);
        assert_eq!(d["hasAudio"], false);
        assert_eq!(d["mediaProvider"], "WebRTC");
        assert_eq!(d["custom"], json!({"name": "room1"}));
        assert_eq!(d["sdp"], "v=0\r\n");
        let (m, d) = parse(&play_stream(&StreamRequest { room: None, ..req }));
        assert_eq!(m, "playStream");
        assert_eq!(d["published"], false);
        assert!(d.get("custom").is_none());
        let (m, d) = parse(&unpublish_stream("ms1", "s"));
        assert_eq!(
            (m.as_str(), &d["mediaSessionId"]),
            ("unPublishStream", &json!("ms1"))
        );
        let (m, d) = parse(&stop_stream("ms2", "s"));
        assert_eq!((m.as_str(), &d["name"]), ("stopStream", &json!("s")));
    }
}
