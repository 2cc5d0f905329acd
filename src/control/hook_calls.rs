//! What the application's hooks are asked and what their answers change: the JSON of each
//! hooked action (named as WCS names its fields), the fields a backend may rewrite, and the
//! refusal a client reads. Pure functions; used by each WebSocket session's task on the
//! control thread.
//!
//! Invariants: only `connection`, `join`, `publishStream`, `playStream` and `sendMessage` are
//! hooked; a rewrite changes only the fields listed in `docs/security.md` (`record` of a join or
//! a publish, `text` of a message), checked for type and length as the client's own would be;
//! a refusal answers in the protocol's own terms for that action.

use serde_json::{json, Map, Value};

use super::hooks::HookMethod;
use super::signaling::protocol::{AppCommand, ClientMessage, ParseFailure, CHAT_TEXT_BYTES_MAX};
use crate::ids::{Login, SessionId};

/// The hook to call before `message`, with its body; `None` when the action is not hooked.
pub fn hook_request(
    message: &ClientMessage,
    session: SessionId,
    login: Option<&Login>,
) -> Option<(HookMethod, Value)> {
    let session_id = session.to_string();
    let login = login.map(Login::as_str);
    match message {
        ClientMessage::Connection(request) => {
            let mut custom = Map::new();
            if let Some(login) = &request.login {
                custom.insert("login".into(), json!(login.as_str()));
            }
            if let Some(token) = &request.token {
                custom.insert("token".into(), json!(token));
            }
            let body = json!({
                "method": "connect",
                "sessionId": session_id,
                "appKey": request.app_key,
                "login": request.login.as_ref().map(Login::as_str),
                "custom": custom,
            });
            Some((HookMethod::Connect, body))
        }
        ClientMessage::SendData {
            operation_id,
            command,
        } => match command {
            AppCommand::Join { room, record } => Some((
                HookMethod::JoinRoom,
                json!({
                    "method": "joinRoom",
                    "sessionId": session_id,
                    "login": login,
                    "operationId": operation_id,
                    "room": room.as_str(),
                    "record": record,
                }),
            )),
            AppCommand::SendMessage { room, to, text } => Some((
                HookMethod::SendMessage,
                json!({
                    "method": "sendMessage",
                    "sessionId": session_id,
                    "login": login,
                    "from": login,
                    "operationId": operation_id,
                    "room": room.as_str(),
                    "to": to.as_ref().map(Login::as_str),
                    "text": text,
                }),
            )),
            AppCommand::Leave { .. } => None,
        },
        ClientMessage::PublishStream(request) | ClientMessage::PlayStream(request) => {
            let (method, name) = match message {
                ClientMessage::PublishStream(_) => (HookMethod::PublishStream, "publishStream"),
                _ => (HookMethod::PlayStream, "playStream"),
            };
            Some((
                method,
                json!({
                    "method": name,
                    "sessionId": session_id,
                    "login": login,
                    "mediaSessionId": request.media_session_id.as_str(),
                    "name": request.name.as_str(),
                    "room": request.room.as_ref().map(|r| r.as_str()),
                    "record": request.record,
                }),
            ))
        }
        _ => None,
    }
}

/// `message` with the fields a backend rewrote (those of the right type and size; others kept).
pub fn apply_rewrite(message: ClientMessage, rewritten: &Map<String, Value>) -> ClientMessage {
    let record = rewritten.get("record").and_then(Value::as_bool);
    match message {
        ClientMessage::SendData {
            operation_id,
            command: AppCommand::Join { room, record: asked },
        } => ClientMessage::SendData {
            operation_id,
            command: AppCommand::Join {
                room,
                record: record.unwrap_or(asked),
            },
        },
        ClientMessage::SendData {
            operation_id,
            command: AppCommand::SendMessage { room, to, text },
        } => {
            let text = match rewritten.get("text").and_then(Value::as_str) {
                Some(new) if new.len() <= CHAT_TEXT_BYTES_MAX => new.to_owned(),
                _ => text,
            };
            ClientMessage::SendData {
                operation_id,
                command: AppCommand::SendMessage { room, to, text },
            }
        }
        ClientMessage::PublishStream(mut request) => {
            request.record = record.unwrap_or(request.record);
            ClientMessage::PublishStream(request)
        }
        other => other,
    }
}

/// The refusal of `message` with the backend's `reason`, answered as the protocol answers
/// that action (`DataStatusEvent` FAILED, a stream's FAILED, or `fail` for a connection).
pub fn refusal(message: &ClientMessage, reason: String) -> ParseFailure {
    ParseFailure::of(message, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::signaling::protocol::parse_client_frame;

    fn parsed(text: &str) -> ClientMessage {
        parse_client_frame(text).unwrap()
    }

    #[test]
    fn join_is_hooked_with_its_fields_and_record_may_be_rewritten() {
        let join = parsed(
            r#"{"message":"sendData","data":[{"operationId":"op1","payload":{"command":"join","options":{"name":"r1"}}}]}"#,
        );
        let login = Login::new("alice");
        let (method, body) = hook_request(&join, SessionId(7), Some(&login)).unwrap();
        assert_eq!(method, HookMethod::JoinRoom);
        assert_eq!(body["room"], "r1");
        assert_eq!(body["login"], "alice");
        let rewritten = json!({"record": true, "room": "elsewhere"});
        let changed = apply_rewrite(join, rewritten.as_object().unwrap());
        let ClientMessage::SendData {
            command: AppCommand::Join { room, record },
            ..
        } = changed
        else {
            panic!("still a join");
        };
        assert!(record);
        assert_eq!(room.as_str(), "r1", "the room is not a rewritable field");
    }

    #[test]
    fn a_rewritten_text_over_the_cap_is_ignored() {
        let message = parsed(
            r#"{"message":"sendData","data":[{"operationId":"op2","payload":{"command":"sendMessage","options":{"roomConfig":{"name":"r1"},"text":"hi"}}}]}"#,
        );
        let long = "x".repeat(CHAT_TEXT_BYTES_MAX + 1);
        let changed = apply_rewrite(message.clone(), json!({"text": long}).as_object().unwrap());
        assert_eq!(changed, message);
        let refused = refusal(&message, "No".into());
        assert_eq!(refused.operation_id.as_deref(), Some("op2"));
    }

    #[test]
    fn pings_and_leaves_are_not_hooked() {
        assert!(hook_request(&ClientMessage::Ping, SessionId(1), None).is_none());
    }
}
