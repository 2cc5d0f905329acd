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
use serde_json::json;

use super::http::AppState;
use super::hub::lock;
use super::rest::{error, ok_json};
use super::rest_push::{admin_body, text_field};
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
    let value = match admin_body(&state, remote, &headers, &body) {
        Ok(value) => value,
        Err(refused) => return *refused,
    };
    let Some(login) = text_field(&value, "login", NAME_BYTES_MAX).map(Login::new) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give 'login' (and 'room' to kick only from it)",
        );
    };
    let room = text_field(&value, "room", NAME_BYTES_MAX).map(RoomName::new);
    if value.get("room").is_some_and(|r| !r.is_null()) && room.is_none() {
        return error(StatusCode::BAD_REQUEST, "'room' must be a short string");
    }
    if lock(&state.hub).kick(&login, room.as_ref()) {
        ok_json(json!({ "status": "kicked", "login": login.as_str() }))
    } else {
        error(StatusCode::NOT_FOUND, "No such participant")
    }
}
