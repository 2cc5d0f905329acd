//! Why the directory refuses a command, one enum per kind of command, and the one place where
//! each refusal becomes the text a client sees.
//!
//! Runs on the control thread. Invariant: the `Display` of these errors *is* the protocol's
//! refusal text (a `DataStatusEvent` FAILED `info`, a stream status FAILED `info`), so it
//! names only what the client sent or may know; an internal error's detail (a parser's
//! message, which may carry offsets or pointer values) is logged by the directory and never
//! shown.

use super::access::{CHAT_DELIVERED_BYTES_PER_SECOND_PER_ROOM, CHAT_MESSAGES_PER_SECOND_PER_SENDER};
use super::rooms::SESSION_ROOMS_MAX;
use crate::ids::{Login, RoomName};
use crate::sdp::NegotiationError;

/// What a new session, join or publish gets once a drain began.
pub const SHUTTING_DOWN: &str = "Server is shutting down";

/// Why `join`, `leave` or `sendMessage` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("Session is not established")]
    NotEstablished,
    #[error("Already joined room '{0}'")]
    AlreadyJoined(RoomName),
    #[error("A session may join at most {SESSION_ROOMS_MAX} rooms")]
    TooManyRooms,
    #[error("Room is full (capacity {capacity})")]
    Full { capacity: usize },
    #[error("Login '{login}' is already in room '{room}'")]
    LoginTaken { login: Login, room: RoomName },
    #[error("Not joined to room '{0}'")]
    NotJoined(RoomName),
    #[error("{SHUTTING_DOWN}")]
    ShuttingDown,
    #[error("Room is locked")]
    Locked,
    #[error("Participant '{to}' is not in room '{room}'")]
    NoSuchParticipant { to: Login, room: RoomName },
    #[error("Restricted access")]
    RestrictedAccess,
    #[error("Restricted access: recording")]
    RecordingRestricted,
    #[error("Too many messages: at most {CHAT_MESSAGES_PER_SECOND_PER_SENDER} a second per sender, and a room delivers at most {} KiB a second", CHAT_DELIVERED_BYTES_PER_SECOND_PER_ROOM / 1024)]
    ChatRate,
}

/// Why `publishStream` or `playStream` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("Session is not established")]
    NotEstablished,
    #[error("A session may hold at most {0} streams")]
    TooManyStreams(usize),
    #[error("Not joined to room '{0}'")]
    NotJoined(RoomName),
    #[error("Stream name is already in use")]
    NameInUse,
    #[error("{SHUTTING_DOWN}")]
    ShuttingDown,
    #[error("Stream not found")]
    NotFound,
    #[error("Restricted access")]
    RestrictedAccess,
    #[error("Restricted access: recording")]
    RecordingRestricted,
    /// The room or worker the stream would go to is missing: a bug, shown as a plain failure.
    #[error("Failed by error")]
    Internal(&'static str),
    #[error("{}", negotiation_refusal(.0))]
    Negotiation(NegotiationError),
    #[error("No common codecs: VP8 cannot be carried over RTMP")]
    Vp8OverRtmp,
}

impl From<NegotiationError> for StreamError {
    fn from(error: NegotiationError) -> Self {
        StreamError::Negotiation(error)
    }
}

impl StreamError {
    /// What the log says: the refusal, and for internal failures their cause.
    pub fn detail(&self) -> String {
        match self {
            StreamError::Internal(what) => format!("internal: {what}"),
            StreamError::Negotiation(error) => error.to_string(),
            other => other.to_string(),
        }
    }
}

/// The client's text for a negotiation failure: our own scan's findings are named, str0m's
/// parser and answerer are summarised.
fn negotiation_refusal(error: &NegotiationError) -> String {
    match error {
        NegotiationError::Sdp(scan) => format!("Invalid SDP: {scan}"),
        NegotiationError::NoCommonCodecs => "No common codecs".to_owned(),
        NegotiationError::Unparsable(_) => "Invalid SDP: the offer could not be parsed".to_owned(),
        NegotiationError::Refused(_) => "Invalid SDP: the offer could not be answered".to_owned(),
        NegotiationError::Candidate(_) => "Failed by error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_detail_never_reaches_the_client() {
        let error = StreamError::from(NegotiationError::Unparsable(
            "Parse error at PointerOffset(0x555d1234abcd)".to_owned(),
        ));
        assert_eq!(error.to_string(), "Invalid SDP: the offer could not be parsed");
        assert!(error.detail().contains("PointerOffset"), "the log keeps it");
        let internal = StreamError::Internal("room has no worker");
        assert_eq!(internal.to_string(), "Failed by error");
    }

    #[test]
    fn refusals_keep_the_texts_clients_know() {
        assert_eq!(
            RoomError::Full { capacity: 3 }.to_string(),
            "Room is full (capacity 3)"
        );
        assert_eq!(
            RoomError::LoginTaken {
                login: "bob".into(),
                room: "r1".into()
            }
            .to_string(),
            "Login 'bob' is already in room 'r1'"
        );
        assert_eq!(
            StreamError::NameInUse.to_string(),
            "Stream name is already in use"
        );
    }
}
