//! Server → client messages of the WCS WebSocket protocol: typed values and a parser.
//!
//! Owns [`ServerMessage`] and [`parse`]. The parser is total: any text yields either a
//! typed message, [`ServerMessage::Other`] for a well-formed frame with an unknown name, or
//! an error for text that is not a `{"message", "data": [...]}` frame. It never panics on
//! input; missing optional fields become `None`, missing required fields an error.
//! Shapes follow the SDK's dispatcher in `flashphoner-core.js` (`onmessage`) and the room
//! handler in `room-module.js`.

use serde_json::Value;

use crate::error::{Error, Result};

/// Stream statuses of `notifyStreamStatusEvent` (SDK `STREAM_STATUS`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamStatus {
    /// `NEW`
    New,
    /// `PENDING`
    Pending,
    /// `PUBLISHING`
    Publishing,
    /// `PLAYING`
    Playing,
    /// `PAUSED`
    Paused,
    /// `UNPUBLISHED`
    Unpublished,
    /// `STOPPED`
    Stopped,
    /// `FAILED`
    Failed,
    /// `PLAYBACK_PROBLEM`
    PlaybackProblem,
    /// `NOT_ENOUGH_BANDWIDTH`
    NotEnoughBandwidth,
    /// Any other value, verbatim.
    Other(String),
}

impl StreamStatus {
    /// Parses the wire name.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "NEW" => Self::New,
            "PENDING" => Self::Pending,
            "PUBLISHING" => Self::Publishing,
            "PLAYING" => Self::Playing,
            "PAUSED" => Self::Paused,
            "UNPUBLISHED" => Self::Unpublished,
            "STOPPED" => Self::Stopped,
            "FAILED" => Self::Failed,
            "PLAYBACK_PROBLEM" => Self::PlaybackProblem,
            "NOT_ENOUGH_BANDWIDTH" => Self::NotEnoughBandwidth,
            other => Self::Other(other.to_string()),
        }
    }

    /// The wire name.
    pub fn as_wire(&self) -> &str {
        match self {
            Self::New => "NEW",
            Self::Pending => "PENDING",
            Self::Publishing => "PUBLISHING",
            Self::Playing => "PLAYING",
            Self::Paused => "PAUSED",
            Self::Unpublished => "UNPUBLISHED",
            Self::Stopped => "STOPPED",
            Self::Failed => "FAILED",
            Self::PlaybackProblem => "PLAYBACK_PROBLEM",
            Self::NotEnoughBandwidth => "NOT_ENOUGH_BANDWIDTH",
            Self::Other(s) => s,
        }
    }

    /// `FAILED`, `STOPPED` and `UNPUBLISHED` release the stream in the SDK.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Failed | Self::Stopped | Self::Unpublished)
    }
}

/// One `notifyStreamStatusEvent` (or a `fail` for a stream, mapped to `FAILED`).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStatusEvent {
    /// `mediaSessionId` (for `fail`: its `id`).
    pub media_session_id: String,
    /// Stream `name` (empty when absent, as in `fail`).
    pub name: String,
    /// `status`.
    pub status: StreamStatus,
    /// `info`, when present.
    pub info: Option<String>,
    /// `recordName`, when present.
    pub record_name: Option<String>,
    /// The whole data object.
    pub raw: Value,
}

/// `DataStatusEvent`: the acknowledgement of a `sendData`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataStatus {
    /// `operationId` of the command.
    pub operation_id: String,
    /// True for `ACCEPTED`, false for anything else (`FAILED`).
    pub accepted: bool,
    /// `status` verbatim.
    pub status: String,
    /// `info`, when present.
    pub info: Option<String>,
}

/// An entry of a `STATE` event's `info` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateEntry {
    /// A participant without streams: its login.
    Participant(String),
    /// A published stream `{login, name}`.
    Stream {
        /// Publisher's login.
        login: String,
        /// Stream name.
        name: String,
    },
}

/// The room event carried by an `OnDataEvent`.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEventKind {
    /// `STATE`: the other participants and their streams.
    State(Vec<StateEntry>),
    /// `JOINED` login.
    Joined(String),
    /// `LEFT` login.
    Left(String),
    /// `PUBLISHED` `{login, name}`.
    Published { login: String, name: String },
    /// `UNPUBLISHED` `{login, name}`.
    Unpublished { login: String, name: String },
    /// `FAILED` `{login, name}` (a stream failed).
    Failed { login: String, name: String },
    /// `MESSAGE` `{from, text}`.
    Message { from: String, text: String },
    /// Any other event name with its `info`.
    Other { name: String, info: Value },
}

/// `OnDataEvent` `{payload: {roomName, name, info}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEvent {
    /// `payload.roomName`.
    pub room: String,
    /// The decoded event.
    pub kind: RoomEventKind,
}

/// Every server message the client understands.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// `getUserData` (session established) with its object.
    GetUserData(Value),
    /// `ping`: answer with `pong`.
    Ping,
    /// `pong` (answer to a client `ping`).
    Pong,
    /// `DataStatusEvent`.
    DataStatus(DataStatus),
    /// `OnDataEvent`.
    RoomEvent(RoomEvent),
    /// `setRemoteSDP` `[mediaSessionId, sdp]`.
    SetRemoteSdp { media_session_id: String, sdp: String },
    /// `notifyStreamStatusEvent`.
    StreamStatus(StreamStatusEvent),
    /// `fail` `{apiMethod, id, info}`.
    Fail {
        api_method: Option<String>,
        id: Option<String>,
        info: Option<String>,
        raw: Value,
    },
    /// A well-formed frame with another name.
    Other { message: String, data: Value },
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn required(v: &Value, key: &str, what: &str) -> Result<String> {
    str_field(v, key).ok_or_else(|| Error::Protocol(format!("{what}: missing string `{key}`")))
}

fn login_name(info: &Value, what: &str) -> Result<(String, String)> {
    Ok((required(info, "login", what)?, required(info, "name", what)?))
}

fn info_string(info: &Value, what: &str) -> Result<String> {
    info.as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Protocol(format!("{what}: info is not a string")))
}

fn parse_state(info: &Value) -> Result<Vec<StateEntry>> {
    let Some(items) = info.as_array() else {
        return match info {
            Value::Null => Ok(Vec::new()),
            _ => Err(Error::Protocol("STATE: info is not an array".into())),
        };
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(login) => Ok(StateEntry::Participant(login.clone())),
            Value::Object(_) => {
                let (login, name) = login_name(item, "STATE entry")?;
                Ok(StateEntry::Stream { login, name })
            }
            _ => Err(Error::Protocol(format!("STATE: bad entry {item}"))),
        })
        .collect()
}

fn parse_room_event(obj: &Value) -> Result<RoomEvent> {
    let payload = obj
        .get("payload")
        .ok_or_else(|| Error::Protocol("OnDataEvent: no payload".into()))?;
    let room = required(payload, "roomName", "OnDataEvent")?;
    let name = required(payload, "name", "OnDataEvent")?;
    let info = payload.get("info").cloned().unwrap_or(Value::Null);
    let kind = match name.as_str() {
        "STATE" => RoomEventKind::State(parse_state(&info)?),
        "JOINED" => RoomEventKind::Joined(info_string(&info, "JOINED")?),
        "LEFT" => RoomEventKind::Left(info_string(&info, "LEFT")?),
        "PUBLISHED" => {
            let (login, name) = login_name(&info, "PUBLISHED")?;
            RoomEventKind::Published { login, name }
        }
        "UNPUBLISHED" => {
            let (login, name) = login_name(&info, "UNPUBLISHED")?;
            RoomEventKind::Unpublished { login, name }
        }
        "FAILED" => {
            let (login, name) = login_name(&info, "FAILED")?;
            RoomEventKind::Failed { login, name }
        }
        "MESSAGE" => RoomEventKind::Message {
            from: required(&info, "from", "MESSAGE")?,
            text: required(&info, "text", "MESSAGE")?,
        },
        _ => RoomEventKind::Other { name, info },
    };
    Ok(RoomEvent { room, kind })
}

fn parse_stream_status(obj: &Value) -> Result<StreamStatusEvent> {
    Ok(StreamStatusEvent {
        media_session_id: required(obj, "mediaSessionId", "notifyStreamStatusEvent")?,
        name: str_field(obj, "name").unwrap_or_default(),
        status: StreamStatus::from_wire(&required(obj, "status", "notifyStreamStatusEvent")?),
        info: str_field(obj, "info"),
        record_name: str_field(obj, "recordName"),
        raw: obj.clone(),
    })
}

/// Parses one text frame from the server.
pub fn parse(text: &str) -> Result<ServerMessage> {
    let v: Value = serde_json::from_str(text)?;
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Protocol("frame without a string `message`".into()))?;
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let first = data
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    let need_obj = |what: &str| -> Result<&Value> {
        if first.is_object() {
            Ok(&first)
        } else {
            Err(Error::Protocol(format!("{what}: data[0] is not an object")))
        }
    };
    Ok(match message {
        "ping" => ServerMessage::Ping,
        "pong" => ServerMessage::Pong,
        "getUserData" => ServerMessage::GetUserData(first.clone()),
        "DataStatusEvent" => {
            let o = need_obj(message)?;
            let status = required(o, "status", message)?;
            ServerMessage::DataStatus(DataStatus {
                operation_id: required(o, "operationId", message)?,
                accepted: status == "ACCEPTED",
                status,
                info: str_field(o, "info"),
            })
        }
        "OnDataEvent" => ServerMessage::RoomEvent(parse_room_event(need_obj(message)?)?),
        "setRemoteSDP" => {
            let arr = data.as_array().map(Vec::as_slice).unwrap_or_default();
            match arr {
                [Value::String(id), Value::String(sdp), ..] => ServerMessage::SetRemoteSdp {
                    media_session_id: id.clone(),
                    sdp: sdp.clone(),
                },
                _ => return Err(Error::Protocol("setRemoteSDP: data is not [id, sdp]".into())),
            }
        }
        "notifyStreamStatusEvent" => ServerMessage::StreamStatus(parse_stream_status(need_obj(message)?)?),
        "fail" => {
            let o = need_obj(message)?;
            ServerMessage::Fail {
                api_method: str_field(o, "apiMethod"),
                id: str_field(o, "id"),
                info: str_field(o, "info"),
                raw: o.clone(),
            }
        }
        other => ServerMessage::Other {
            message: other.to_string(),
            data,
        },
    })
}

#[cfg(test)]
#[path = "incoming_tests.rs"]
mod tests;
