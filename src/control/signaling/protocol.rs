//! The WCS WebSocket protocol: parsing client frames into typed messages and producing server
//! frames. Pure functions, no I/O; run on the control thread by each session's task.
//!
//! Invariants: every field a client sent is checked for type and length before it is used; a
//! frame that cannot be understood yields a [`ParseFailure`] carrying whatever ids were readable
//! (`operationId`, `mediaSessionId`) so the caller can answer with the protocol's own error
//! (`DataStatusEvent` FAILED, stream status FAILED, or `fail`).

use serde_json::{json, Map, Value};

use crate::ids::{Login, MediaSessionId, RoomName, StreamName};

/// The largest text frame a client may send. A browser's SDP offer is 5–10 KB; 64 KiB leaves room
/// for many m-lines while bounding what one frame can make us parse.
pub const WS_MESSAGE_BYTES_MAX: usize = 64 * 1024;
/// Logins, room and stream names: WCS stream names are `ROOM-LOGIN-XXXX-suffix`, so names are
/// short; the cap bounds every map key and log line made from them.
pub const NAME_BYTES_MAX: usize = 256;
/// One chat message.
pub const CHAT_TEXT_BYTES_MAX: usize = 16 * 1024;
/// `operationId` and `mediaSessionId`: UUIDs in practice.
pub const ID_BYTES_MAX: usize = 128;

/// A client frame, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Connection(ConnectionRequest),
    Ping,
    Pong,
    SendData {
        operation_id: String,
        command: AppCommand,
    },
    PublishStream(StreamRequest),
    PlayStream(StreamRequest),
    UnPublishStream(StreamRef),
    StopStream(StreamRef),
    /// SDK log shipping (`pushLogs`): accepted and ignored.
    PushLogs,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRequest {
    pub app_key: String,
    pub login: Option<Login>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AppCommand {
    Join {
        room: RoomName,
        record: bool,
    },
    Leave {
        room: RoomName,
    },
    /// `to: None` broadcasts to everyone else in the room.
    SendMessage {
        room: RoomName,
        to: Option<Login>,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    pub media_session_id: MediaSessionId,
    pub name: StreamName,
    pub sdp: String,
    /// `custom.name`: the room the stream belongs to, when it belongs to one.
    pub room: Option<RoomName>,
    pub record: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamRef {
    pub media_session_id: MediaSessionId,
    pub name: Option<StreamName>,
}

/// Why a frame was refused, with the ids needed to answer it in the protocol's own terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseFailure {
    pub message: Option<String>,
    pub operation_id: Option<String>,
    pub media_session_id: Option<MediaSessionId>,
    pub stream_name: Option<StreamName>,
    pub reason: String,
}

impl ParseFailure {
    fn new(reason: impl Into<String>) -> Self {
        ParseFailure {
            message: None,
            operation_id: None,
            media_session_id: None,
            stream_name: None,
            reason: reason.into(),
        }
    }

    /// A refusal of `message` for `reason`, with the ids that answer it in the protocol's own
    /// terms: a `DataStatusEvent` for an app command, a stream status for a stream, a `fail`
    /// for a `connection`.
    pub fn of(message: &ClientMessage, reason: impl Into<String>) -> Self {
        let base = ParseFailure::new(reason);
        match message {
            ClientMessage::Connection(_) => ParseFailure {
                message: Some("connection".to_owned()),
                ..base
            },
            ClientMessage::SendData { operation_id, .. } => ParseFailure {
                operation_id: Some(operation_id.clone()),
                ..base
            },
            ClientMessage::PublishStream(r) | ClientMessage::PlayStream(r) => ParseFailure {
                media_session_id: Some(r.media_session_id.clone()),
                stream_name: Some(r.name.clone()),
                ..base
            },
            ClientMessage::UnPublishStream(r) | ClientMessage::StopStream(r) => ParseFailure {
                media_session_id: Some(r.media_session_id.clone()),
                stream_name: r.name.clone(),
                ..base
            },
            ClientMessage::Ping | ClientMessage::Pong | ClientMessage::PushLogs => base,
        }
    }
}

/// Parse one text frame.
pub fn parse_client_frame(text: &str) -> Result<ClientMessage, ParseFailure> {
    if text.len() > WS_MESSAGE_BYTES_MAX {
        return Err(ParseFailure::new(format!(
            "Message is larger than {WS_MESSAGE_BYTES_MAX} bytes"
        )));
    }
    let value: Value = serde_json::from_str(text).map_err(|_| ParseFailure::new("Message is not JSON"))?;
    let Value::Object(frame) = value else {
        return Err(ParseFailure::new("Message is not a JSON object"));
    };
    let Some(Value::String(message)) = frame.get("message") else {
        return Err(ParseFailure::new("Message has no 'message' name"));
    };
    let first = match frame.get("data") {
        Some(Value::Array(items)) => items.first().cloned().unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let with_name = |mut failure: ParseFailure| {
        failure.message = Some(truncate(message, NAME_BYTES_MAX));
        failure
    };
    let parsed = match message.as_str() {
        "connection" => parse_connection(&first),
        "ping" => Ok(ClientMessage::Ping),
        "pong" => Ok(ClientMessage::Pong),
        "pushLogs" => Ok(ClientMessage::PushLogs),
        "sendData" => parse_send_data(&first),
        "publishStream" => parse_stream_request(&first).map(ClientMessage::PublishStream),
        "playStream" => parse_stream_request(&first).map(ClientMessage::PlayStream),
        "unPublishStream" => parse_stream_ref(&first).map(ClientMessage::UnPublishStream),
        "stopStream" => parse_stream_ref(&first).map(ClientMessage::StopStream),
        other => Err(ParseFailure::new(format!(
            "Unknown message '{}'",
            truncate(other, NAME_BYTES_MAX)
        ))),
    };
    parsed.map_err(with_name)
}

fn parse_connection(data: &Value) -> Result<ClientMessage, ParseFailure> {
    let obj = as_object(data, "connection")?;
    let app_key = optional_string(obj, "appKey", NAME_BYTES_MAX)?.unwrap_or_else(|| "defaultApp".to_owned());
    let custom = obj.get("custom").and_then(Value::as_object);
    let (login, token) = match custom {
        Some(custom) => (
            optional_name(custom, "login")?.map(Login::from),
            optional_string(custom, "token", WS_MESSAGE_BYTES_MAX)?,
        ),
        None => (None, None),
    };
    Ok(ClientMessage::Connection(ConnectionRequest {
        app_key,
        login,
        token,
    }))
}

fn parse_send_data(data: &Value) -> Result<ClientMessage, ParseFailure> {
    let obj = as_object(data, "sendData")?;
    let operation_id = required_string(obj, "operationId", ID_BYTES_MAX)?;
    let attach = |mut failure: ParseFailure| {
        failure.operation_id = Some(operation_id.clone());
        failure
    };
    let command = parse_app_command(obj.get("payload").unwrap_or(&Value::Null)).map_err(attach)?;
    Ok(ClientMessage::SendData {
        operation_id,
        command,
    })
}

fn parse_app_command(payload: &Value) -> Result<AppCommand, ParseFailure> {
    let payload = as_object(payload, "payload")?;
    let command = required_string(payload, "command", NAME_BYTES_MAX)?;
    let empty = Map::new();
    let options = match payload.get("options") {
        Some(Value::Object(options)) => options,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(ParseFailure::new("'options' must be an object")),
    };
    match command.as_str() {
        "join" => Ok(AppCommand::Join {
            room: required_name(options, "name")?.into(),
            record: options.get("record").and_then(Value::as_bool).unwrap_or(false),
        }),
        "leave" => Ok(AppCommand::Leave {
            room: required_name(options, "name")?.into(),
        }),
        "sendMessage" => {
            let room = match options.get("roomConfig") {
                Some(Value::Object(config)) => RoomName::from(required_name(config, "name")?),
                _ => return Err(ParseFailure::new("Missing 'roomConfig.name'")),
            };
            let to = optional_name(options, "to")?.map(Login::from);
            let text = match options.get("text") {
                Some(Value::String(text)) if text.len() <= CHAT_TEXT_BYTES_MAX => text.clone(),
                Some(Value::String(_)) => {
                    return Err(ParseFailure::new(format!(
                        "Message text is longer than {CHAT_TEXT_BYTES_MAX} bytes"
                    )))
                }
                _ => return Err(ParseFailure::new("Missing 'text'")),
            };
            Ok(AppCommand::SendMessage { room, to, text })
        }
        other => Err(ParseFailure::new(format!(
            "Unknown command '{}'",
            truncate(other, NAME_BYTES_MAX)
        ))),
    }
}

fn parse_stream_request(data: &Value) -> Result<StreamRequest, ParseFailure> {
    let obj = as_object(data, "stream")?;
    let media_session_id = MediaSessionId::from(required_string(obj, "mediaSessionId", ID_BYTES_MAX)?);
    let attach = |mut failure: ParseFailure| {
        failure.media_session_id = Some(media_session_id.clone());
        failure.stream_name = obj
            .get("name")
            .and_then(Value::as_str)
            .map(|n| StreamName::from(truncate(n, NAME_BYTES_MAX)));
        failure
    };
    let name = StreamName::from(required_name(obj, "name").map_err(attach)?);
    let sdp = match obj.get("sdp") {
        Some(Value::String(sdp)) if !sdp.trim().is_empty() => sdp.clone(),
        _ => return Err(attach(ParseFailure::new("Missing SDP offer"))),
    };
    let room = match obj.get("custom") {
        Some(Value::Object(custom)) => optional_name(custom, "name").map_err(attach)?.map(RoomName::from),
        _ => None,
    };
    let record = obj.get("record").and_then(Value::as_bool).unwrap_or(false);
    Ok(StreamRequest {
        media_session_id,
        name,
        sdp,
        room,
        record,
    })
}

fn parse_stream_ref(data: &Value) -> Result<StreamRef, ParseFailure> {
    let obj = as_object(data, "stream")?;
    Ok(StreamRef {
        media_session_id: required_string(obj, "mediaSessionId", ID_BYTES_MAX)?.into(),
        name: optional_name(obj, "name")?.map(StreamName::from),
    })
}

fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ParseFailure> {
    value
        .as_object()
        .ok_or_else(|| ParseFailure::new(format!("'{what}' data must be an object")))
}

fn required_string(obj: &Map<String, Value>, field: &str, max: usize) -> Result<String, ParseFailure> {
    optional_string(obj, field, max)?.ok_or_else(|| ParseFailure::new(format!("Missing '{field}'")))
}

fn optional_string(
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ParseFailure> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ParseFailure::new(format!("'{field}' is longer than {max} bytes"))),
        Some(_) => Err(ParseFailure::new(format!("'{field}' must be a string"))),
    }
}

/// A login, room or stream name: non-empty, bounded, no control characters.
fn optional_name(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ParseFailure> {
    match optional_string(obj, field, NAME_BYTES_MAX)? {
        Some(name) if name.is_empty() => Ok(None),
        Some(name) if name.chars().any(char::is_control) => Err(ParseFailure::new(format!(
            "'{field}' contains control characters"
        ))),
        other => Ok(other),
    }
}

fn required_name(obj: &Map<String, Value>, field: &str) -> Result<String, ParseFailure> {
    optional_name(obj, field)?.ok_or_else(|| ParseFailure::new(format!("Missing '{field}'")))
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Stream statuses of `notifyStreamStatusEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Pending,
    Publishing,
    Playing,
    Unpublished,
    Stopped,
    Failed,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Pending => "PENDING",
            StreamStatus::Publishing => "PUBLISHING",
            StreamStatus::Playing => "PLAYING",
            StreamStatus::Unpublished => "UNPUBLISHED",
            StreamStatus::Stopped => "STOPPED",
            StreamStatus::Failed => "FAILED",
        }
    }
}

/// One entry of a room's `STATE`: a participant without streams, or one of its streams.
#[derive(Debug, Clone, PartialEq)]
pub enum StateEntry {
    Participant(Login),
    Stream { login: Login, name: StreamName },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    State(Vec<StateEntry>),
    Joined(Login),
    Left(Login),
    Published { login: Login, name: StreamName },
    Unpublished { login: Login, name: StreamName },
    Failed { login: Login, name: StreamName },
    Message { from: Login, text: String },
}

/// A server frame, to be serialized with [`ServerMessage::to_json`].
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    UserData {
        login: Login,
        auth_token: String,
        app_key: String,
    },
    Ping,
    DataStatus {
        operation_id: String,
        accepted: bool,
        info: Option<String>,
    },
    Room {
        room: RoomName,
        event: RoomEvent,
    },
    RemoteSdp {
        media_session_id: MediaSessionId,
        sdp: String,
    },
    StreamStatus {
        media_session_id: MediaSessionId,
        name: StreamName,
        status: StreamStatus,
        info: Option<String>,
        /// The recording's file (`stream.getRecordInfo()` in the SDK).
        record_name: Option<String>,
    },
    Fail {
        api_method: String,
        id: Option<String>,
        info: String,
    },
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        let (message, data) = match self {
            ServerMessage::UserData {
                login,
                auth_token,
                app_key,
            } => (
                "getUserData",
                json!([{ "authToken": auth_token, "appKey": app_key, "login": login, "custom": { "login": login } }]),
            ),
            ServerMessage::Ping => ("ping", json!([null])),
            ServerMessage::DataStatus {
                operation_id,
                accepted,
                info,
            } => {
                let status = if *accepted { "ACCEPTED" } else { "FAILED" };
                let mut obj = json!({ "operationId": operation_id, "status": status });
                if let Some(info) = info {
                    obj["info"] = json!(info);
                }
                ("DataStatusEvent", json!([obj]))
            }
            ServerMessage::Room { room, event } => {
                let (name, info) = room_event_json(event);
                (
                    "OnDataEvent",
                    json!([{ "payload": { "roomName": room, "name": name, "info": info } }]),
                )
            }
            ServerMessage::RemoteSdp {
                media_session_id,
                sdp,
            } => ("setRemoteSDP", json!([media_session_id, sdp])),
            ServerMessage::StreamStatus {
                media_session_id,
                name,
                status,
                info,
                record_name,
            } => {
                let mut obj =
                    json!({ "mediaSessionId": media_session_id, "name": name, "status": status.as_str() });
                if let Some(info) = info {
                    obj["info"] = json!(info);
                }
                if let Some(record_name) = record_name {
                    obj["recordName"] = json!(record_name);
                }
                ("notifyStreamStatusEvent", json!([obj]))
            }
            ServerMessage::Fail { api_method, id, info } => (
                "fail",
                json!([{ "apiMethod": api_method, "id": id, "info": info }]),
            ),
        };
        json!({ "message": message, "data": data }).to_string()
    }
}

fn room_event_json(event: &RoomEvent) -> (&'static str, Value) {
    match event {
        RoomEvent::State(entries) => {
            let info: Vec<Value> = entries
                .iter()
                .map(|entry| match entry {
                    StateEntry::Participant(login) => json!(login),
                    StateEntry::Stream { login, name } => json!({ "login": login, "name": name }),
                })
                .collect();
            ("STATE", Value::Array(info))
        }
        RoomEvent::Joined(login) => ("JOINED", json!(login)),
        RoomEvent::Left(login) => ("LEFT", json!(login)),
        RoomEvent::Published { login, name } => ("PUBLISHED", json!({ "login": login, "name": name })),
        RoomEvent::Unpublished { login, name } => ("UNPUBLISHED", json!({ "login": login, "name": name })),
        RoomEvent::Failed { login, name } => ("FAILED", json!({ "login": login, "name": name })),
        RoomEvent::Message { from, text } => ("MESSAGE", json!({ "from": from, "text": text })),
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
