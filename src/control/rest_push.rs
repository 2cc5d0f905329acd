//! The restreaming REST routes, by WCS's names: `/rest-api/push/startup {streamName,
//! rtmpUrl}`, `/rest-api/push/terminate {id}` and `/rest-api/push/find_all`. All three are
//! admin routes ([`super::rest::authorize`]): a push makes the server connect out, so it is
//! never open to anyone.
//!
//! Control thread. Invariants: bodies are bounded by [`REST_BODY_BYTES_MAX`]; refusals are an
//! HTTP status with `{"error": ...}`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::http::AppState;
use super::rest::{authorize, error, ok_json, REST_BODY_BYTES_MAX};
use super::rtmp::push::{self, PushError};

/// The longest `rtmpUrl` accepted (a stream key of a few hundred characters fits).
const PUSH_URL_BYTES_MAX: usize = 2048;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest-api/push/startup", post(startup))
        .route("/rest-api/push/terminate", post(terminate))
        .route("/rest-api/push/find_all", post(find_all).get(find_all))
}

/// An admin call's body as JSON: the admin rule first, then [`body_json`].
pub(super) fn admin_body(
    state: &AppState,
    remote: SocketAddr,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Value, Box<Response>> {
    authorize(state, remote, headers)?;
    body_json(body)
}

/// A REST body as JSON, within [`REST_BODY_BYTES_MAX`] (shared by the admin routes).
pub(super) fn body_json(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.len() > REST_BODY_BYTES_MAX {
        return Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {REST_BODY_BYTES_MAX} bytes"),
        )));
    }
    serde_json::from_slice(body).map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "the body is not JSON")))
}

/// A short text field without control characters (shared by the admin routes).
pub(super) fn text_field<'a>(value: &'a Value, name: &str, max: usize) -> Option<&'a str> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control))
}

async fn startup(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match admin_body(&state, remote, &headers, &body) {
        Ok(value) => value,
        Err(refused) => return *refused,
    };
    let (Some(stream), Some(url)) = (
        text_field(&value, "streamName", 256),
        text_field(&value, "rtmpUrl", PUSH_URL_BYTES_MAX),
    ) else {
        return error(StatusCode::BAD_REQUEST, "give 'streamName' and 'rtmpUrl'");
    };
    match push::startup(&state.bridge, stream, url) {
        Ok(info) => ok_json(serde_json::to_value(info).unwrap_or_default()),
        Err(e @ PushError::TooMany) => error(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn terminate(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match admin_body(&state, remote, &headers, &body) {
        Ok(value) => value,
        Err(refused) => return *refused,
    };
    let Some(id) = text_field(&value, "id", 256) else {
        return error(StatusCode::BAD_REQUEST, "give the push's 'id'");
    };
    match state.bridge.lock_pushes().terminate(id) {
        Some(info) => ok_json(json!({ "id": info.id, "state": "terminated" })),
        None => error(StatusCode::NOT_FOUND, "no push has that id"),
    }
}

async fn find_all(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&state, remote, &headers) {
        return *refused;
    }
    let all = state.bridge.lock_pushes().find_all();
    ok_json(serde_json::to_value(all).unwrap_or_default())
}
