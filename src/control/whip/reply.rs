//! What a WHIP or WHEP request gets back, decided without I/O: the HTTP status of each refusal
//! the directory can send, the checks on a request's names and `Content-Type`, and the headers
//! of a created resource.
//!
//! Runs on the control thread (called by the handlers in `mod.rs`). Invariant: a refusal's
//! body is the directory's own text (the protocol's `info`), which names only what the client
//! sent; nothing internal reaches it.

use axum::http::StatusCode;

use crate::auth::{AuthRefusal, TokenError};
use crate::control::directory::{RoomError, StreamError, SHUTTING_DOWN};
use crate::control::signaling::protocol::NAME_BYTES_MAX;

/// The largest offer a WHIP or WHEP request may carry: a browser's offer with every codec it
/// has and its candidates is 5–8 KiB; this is the WebSocket protocol's frame limit, so an offer
/// that works over one works over the other.
pub const WHIP_OFFER_BYTES_MAX: usize = crate::control::signaling::protocol::WS_MESSAGE_BYTES_MAX;

/// The media type of WHIP's and WHEP's offers and answers (RFC 9725 §4.2).
pub const SDP_MEDIA_TYPE: &str = "application/sdp";

/// Whether a `Content-Type` value names `application/sdp` (parameters and case aside).
pub fn is_sdp_content_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(SDP_MEDIA_TYPE))
}

/// A room, login or stream name from the path: 1 to [`NAME_BYTES_MAX`] bytes without control
/// characters (the WebSocket protocol's rule for the same names).
pub fn checked_name(what: &str, value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > NAME_BYTES_MAX || value.chars().any(char::is_control) {
        return Err(format!("The {what} must be 1 to {NAME_BYTES_MAX} bytes of text"));
    }
    Ok(value.to_owned())
}

/// The status of a stream refusal, from its text (the directory sends the text of a
/// [`StreamError`]; `stream_refusal_status_follows_every_refusal` keeps the two in step).
pub fn stream_refusal_status(info: &str) -> StatusCode {
    if info == StreamError::NotFound.to_string() {
        StatusCode::NOT_FOUND
    } else if info == StreamError::NameInUse.to_string() {
        StatusCode::CONFLICT
    } else if info == SHUTTING_DOWN {
        StatusCode::SERVICE_UNAVAILABLE
    } else if info.starts_with("Restricted access") || info.starts_with("Not joined") {
        StatusCode::FORBIDDEN
    } else if info.starts_with("Invalid SDP") || info.starts_with("No common codecs") {
        StatusCode::BAD_REQUEST
    } else if info.starts_with("A session may hold") {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// The status of a refused join of a WHIP publisher's room.
pub fn room_refusal_status(error: &RoomError) -> StatusCode {
    match error {
        RoomError::RestrictedAccess | RoomError::RecordingRestricted | RoomError::Locked => {
            StatusCode::FORBIDDEN
        }
        RoomError::LoginTaken { .. } | RoomError::AlreadyJoined(_) => StatusCode::CONFLICT,
        RoomError::Full { .. } | RoomError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of a refused token: 401 without one (with `WWW-Authenticate: Bearer`), 403 for
/// one that does not admit the request.
pub fn auth_refusal_status(refusal: &AuthRefusal) -> StatusCode {
    match refusal {
        AuthRefusal::Token(TokenError::Missing) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (RFC 6750 §2.1).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RoomName;
    use crate::sdp::NegotiationError;

    #[test]
    fn stream_refusal_status_follows_every_refusal() {
        let cases = [
            (StreamError::NotFound, StatusCode::NOT_FOUND),
            (StreamError::NameInUse, StatusCode::CONFLICT),
            (StreamError::ShuttingDown, StatusCode::SERVICE_UNAVAILABLE),
            (StreamError::RestrictedAccess, StatusCode::FORBIDDEN),
            (StreamError::RecordingRestricted, StatusCode::FORBIDDEN),
            (StreamError::NotJoined(RoomName::new("r")), StatusCode::FORBIDDEN),
            (StreamError::TooManyStreams(4), StatusCode::TOO_MANY_REQUESTS),
            (NegotiationError::NoCommonCodecs.into(), StatusCode::BAD_REQUEST),
            (
                NegotiationError::Unparsable("x".to_owned()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (StreamError::Internal("x"), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            assert_eq!(stream_refusal_status(&error.to_string()), status, "{error}");
        }
    }

    #[test]
    fn only_application_sdp_is_an_offer() {
        assert!(is_sdp_content_type("application/sdp"));
        assert!(is_sdp_content_type("Application/SDP; charset=utf-8"));
        assert!(!is_sdp_content_type("application/json"));
        assert!(!is_sdp_content_type("text/plain"));
        assert!(!is_sdp_content_type(""));
    }

    #[test]
    fn names_are_checked_like_the_websocket_protocols() {
        assert_eq!(checked_name("room", "lobby").as_deref(), Ok("lobby"));
        assert!(checked_name("room", "").is_err());
        assert!(checked_name("room", &"a".repeat(NAME_BYTES_MAX + 1)).is_err());
        assert!(checked_name("room", "a\u{0}b").is_err());
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(bearer_token("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn missing_tokens_are_401_and_refused_ones_403() {
        assert_eq!(
            auth_refusal_status(&AuthRefusal::Token(TokenError::Missing)),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth_refusal_status(&AuthRefusal::Token(TokenError::Expired)),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            auth_refusal_status(&AuthRefusal::LoginMismatch),
            StatusCode::FORBIDDEN
        );
    }
}
