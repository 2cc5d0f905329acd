//! The webhook vocabulary: every event an operator's receiver is sent, its name on the wire,
//! the room it belongs to (its ordering lane) and its fields as JSON.
//!
//! Thread: built wherever the event happens on the control thread (the directory's effects,
//! the hub's recorder events, an RTMP connection's task, the drain); plain data, `Send`.
//!
//! Invariants: names are the snake_case words `docs/rest.md` lists; an event outside any room
//! has the room `""`; nothing here carries a token, a secret or a stream key's query.

use serde_json::{json, Map, Value};

/// Why a participant left its room (the `reason` of `participant_left`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftReason {
    /// It sent `leave`.
    Left,
    /// Its WebSocket closed or its keep-alive lapsed.
    Disconnected,
    /// A moderator or the administrator kicked it.
    Kicked,
    /// The room was closed by the administrator.
    RoomClosed,
    /// The server drained.
    ShuttingDown,
}

impl LeftReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeftReason::Left => "left",
            LeftReason::Disconnected => "disconnected",
            LeftReason::Kicked => "kicked",
            LeftReason::RoomClosed => "room closed",
            LeftReason::ShuttingDown => "server shutting down",
        }
    }
}

/// Something an operator's receiver hears about.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    RoomStarted {
        room: String,
    },
    RoomFinished {
        room: String,
    },
    ParticipantJoined {
        room: String,
        login: String,
        session_id: u64,
    },
    ParticipantLeft {
        room: String,
        login: String,
        session_id: u64,
        reason: LeftReason,
    },
    StreamPublished {
        room: String,
        stream: String,
        login: String,
        session_id: u64,
        audio_codec: Option<String>,
        video_codec: Option<String>,
    },
    StreamUnpublished {
        room: String,
        stream: String,
        login: String,
        session_id: u64,
        reason: String,
    },
    RecordingFinished {
        room: String,
        stream: String,
        file: String,
        duration_ms: u64,
        size_bytes: u64,
    },
    RtmpConnected {
        room: String,
        remote: String,
        app: String,
        stream: String,
    },
    RtmpDisconnected {
        room: String,
        remote: String,
        app: String,
        stream: String,
        reason: String,
    },
    ServerDraining {
        deadline_unix_ms: u64,
    },
}

impl WebhookEvent {
    /// The event's name: the body's `event` and the `X-Webcall-Event` header.
    pub fn name(&self) -> &'static str {
        match self {
            WebhookEvent::RoomStarted { .. } => "room_started",
            WebhookEvent::RoomFinished { .. } => "room_finished",
            WebhookEvent::ParticipantJoined { .. } => "participant_joined",
            WebhookEvent::ParticipantLeft { .. } => "participant_left",
            WebhookEvent::StreamPublished { .. } => "stream_published",
            WebhookEvent::StreamUnpublished { .. } => "stream_unpublished",
            WebhookEvent::RecordingFinished { .. } => "recording_finished",
            WebhookEvent::RtmpConnected { .. } => "rtmp_connected",
            WebhookEvent::RtmpDisconnected { .. } => "rtmp_disconnected",
            WebhookEvent::ServerDraining { .. } => "server_draining",
        }
    }

    /// The room the event is in, `""` when none: events of one room are delivered in order.
    pub fn room(&self) -> &str {
        match self {
            WebhookEvent::RoomStarted { room }
            | WebhookEvent::RoomFinished { room }
            | WebhookEvent::ParticipantJoined { room, .. }
            | WebhookEvent::ParticipantLeft { room, .. }
            | WebhookEvent::StreamPublished { room, .. }
            | WebhookEvent::StreamUnpublished { room, .. }
            | WebhookEvent::RecordingFinished { room, .. }
            | WebhookEvent::RtmpConnected { room, .. }
            | WebhookEvent::RtmpDisconnected { room, .. } => room,
            WebhookEvent::ServerDraining { .. } => "",
        }
    }

    /// The fields besides the envelope (`id`, `event`, `room`, `sequence`, `timestamp_ms`,
    /// `num_dropped`).
    pub fn fields(&self) -> Map<String, Value> {
        let value = match self {
            WebhookEvent::RoomStarted { .. } | WebhookEvent::RoomFinished { .. } => json!({}),
            WebhookEvent::ParticipantJoined {
                login, session_id, ..
            } => json!({"login": login, "session_id": session_id}),
            WebhookEvent::ParticipantLeft {
                login,
                session_id,
                reason,
                ..
            } => json!({"login": login, "session_id": session_id, "reason": reason.as_str()}),
            WebhookEvent::StreamPublished {
                stream,
                login,
                session_id,
                audio_codec,
                video_codec,
                ..
            } => json!({
                "stream": stream, "login": login, "session_id": session_id,
                "audio_codec": audio_codec, "video_codec": video_codec,
            }),
            WebhookEvent::StreamUnpublished {
                stream,
                login,
                session_id,
                reason,
                ..
            } => json!({"stream": stream, "login": login, "session_id": session_id, "reason": reason}),
            WebhookEvent::RecordingFinished {
                stream,
                file,
                duration_ms,
                size_bytes,
                ..
            } => {
                json!({"stream": stream, "file": file, "duration_ms": duration_ms, "size_bytes": size_bytes})
            }
            WebhookEvent::RtmpConnected {
                remote, app, stream, ..
            } => json!({"remote": remote, "app": app, "stream": stream}),
            WebhookEvent::RtmpDisconnected {
                remote,
                app,
                stream,
                reason,
                ..
            } => json!({"remote": remote, "app": app, "stream": stream, "reason": reason}),
            WebhookEvent::ServerDraining { deadline_unix_ms } => {
                json!({"deadline_unix_ms": deadline_unix_ms})
            }
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_rooms_and_fields() {
        let left = WebhookEvent::ParticipantLeft {
            room: "r1".into(),
            login: "bob".into(),
            session_id: 2,
            reason: LeftReason::RoomClosed,
        };
        assert_eq!(left.name(), "participant_left");
        assert_eq!(left.room(), "r1");
        assert_eq!(left.fields()["reason"], "room closed");
        let draining = WebhookEvent::ServerDraining { deadline_unix_ms: 7 };
        assert_eq!(draining.room(), "");
        assert_eq!(draining.fields()["deadline_unix_ms"], 7);
    }
}
