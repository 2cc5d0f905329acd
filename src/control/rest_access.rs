//! The admin REST route for access control: kicking a participant, whose token is revoked so
//! the same token cannot bring it back. Control thread; guarded by [`super::rest::authorize`].
//!
//! Invariant: a kick closes the participant's session and revokes its token's `jti` (until the
//! token's `exp`, on disk) before it answers.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::http::AppState;
use super::hub::lock;
use super::rest::{authorize, error, ok_json, REST_BODY_BYTES_MAX};
use crate::control::signaling::protocol::NAME_BYTES_MAX;
use crate::ids::{Login, RoomName};

pub fn routes() -> Router<AppState> {
    Router::new().route("/rest-api/session/kick", post(kick))
}

/// `{"login": L, "room": R?}`: close L's session (only if it is in R, when R is given).
async fn kick(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = authorize(&state, remote, &headers) {
        return *refused;
    }
    if body.len() > REST_BODY_BYTES_MAX {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "Body is too large");
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Body is not a JSON object");
    };
    let name = |key: &str| match fields.get(key) {
        Some(Value::String(text)) if !text.is_empty() && text.len() <= NAME_BYTES_MAX => {
            Ok(Some(text.clone()))
        }
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("'{key}' must be a short string"),
        ))),
    };
    let login = match name("login") {
        Ok(Some(login)) => Login::new(login),
        Ok(None) => return error(StatusCode::BAD_REQUEST, "'login' is required"),
        Err(refused) => return *refused,
    };
    let room = match name("room") {
        Ok(room) => room.map(RoomName::new),
        Err(refused) => return *refused,
    };
    if lock(&state.hub).kick(&login, room.as_ref()) {
        ok_json(json!({ "status": "kicked", "login": login.as_str() }))
    } else {
        error(StatusCode::NOT_FOUND, "No such participant")
    }
}
