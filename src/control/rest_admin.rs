//! The operator's admin REST API: WCS's stream and connection routes (`/rest-api/stream/…`,
//! `/rest-api/connection/…`), the room routes WCS lacks (`/api/rooms…`: list, detail, kick,
//! mute, lock, close), the drain, and the test-only worker stall. Control thread.
//!
//! Every route is behind the admin rule ([`super::rest::authorize`]: the `--admin-key-file`
//! bearer key, else loopback clients only); the room routes also take a room token with the
//! `roomAdmin` grant for that room as `Authorization: Bearer TOKEN`. Invariants: errors are a
//! JSON `{"error": reason}` with the right status and no internal detail; bodies are read
//! within the REST body cap; an action's effects reach the clients before it answers.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::directory::{AdminError, MuteKind};
use super::http::AppState;
use super::hub::lock;
use super::rest::{authorize, error, ok_json};
use super::rest_push::{body_json, text_field};
use crate::control::signaling::protocol::NAME_BYTES_MAX;
use crate::ids::{Login, RoomName, SessionId, StreamName};

/// Set to `1` in the environment to enable `POST /rest-api/debug/stall_worker` (the service
/// watchdog's test makes a worker wedge). Never set in production.
pub const FAULT_INJECTION_ENV: &str = "WEBCALL_FAULT_INJECTION";
/// The longest stall a test may ask for.
const STALL_SECONDS_MAX: u64 = 60;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest-api/server/drain", post(drain))
        .route("/rest-api/stream/find_all", post(stream_find_all))
        .route("/rest-api/stream/find", post(stream_find))
        .route("/rest-api/stream/terminate", post(stream_terminate))
        .route("/rest-api/connection/find_all", post(connection_find_all))
        .route("/rest-api/connection/terminate", post(connection_terminate))
        .route("/api/rooms", get(rooms))
        .route("/api/rooms/{room}", get(room))
        .route("/api/rooms/{room}/kick", post(room_kick))
        .route("/api/rooms/{room}/mute", post(room_mute))
        .route("/api/rooms/{room}/lock", post(room_lock))
        .route("/api/rooms/{room}/close", post(room_close))
        .route("/rest-api/debug/stall_worker", post(stall_worker))
}

/// An admin route's request, checked: the admin rule passed; the JSON body (`{}` when empty)
/// and the caller's address.
struct AdminCall {
    body: Value,
    remote: SocketAddr,
}

impl FromRequest<AppState> for AdminCall {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let remote = remote_of(&mut parts, state).await?;
        authorize(state, remote, &parts.headers).map_err(|refused| *refused)?;
        let body = json_body(parts, body, state).await?;
        Ok(AdminCall { body, remote })
    }
}

/// A room route's request, checked: a valid room name in the path, the admin rule or a
/// `roomAdmin` token for that room, and the JSON body (`{}` when empty).
struct RoomCall {
    room: RoomName,
    body: Value,
}

impl FromRequest<AppState> for RoomCall {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let remote = remote_of(&mut parts, state).await?;
        let Path(room) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let room = room_name(&room).map_err(|refused| *refused)?;
        authorize_room(state, remote, &parts.headers, &room).map_err(|refused| *refused)?;
        let body = json_body(parts, body, state).await?;
        Ok(RoomCall { room, body })
    }
}

/// The request's body, read after its checks passed, as JSON (`{}` when empty).
async fn json_body(parts: Parts, body: axum::body::Body, state: &AppState) -> Result<Value, Response> {
    let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(IntoResponse::into_response)?;
    optional_body(&bytes).map_err(|refused| *refused)
}

async fn remote_of(parts: &mut Parts, state: &AppState) -> Result<SocketAddr, Response> {
    ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
        .await
        .map(|ConnectInfo(remote)| remote)
        .map_err(IntoResponse::into_response)
}

fn optional_body(body: &Bytes) -> Result<Value, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    body_json(body)
}

/// The admin rule, or a room token with `roomAdmin` for `room`.
fn authorize_room(
    state: &AppState,
    remote: SocketAddr,
    headers: &HeaderMap,
    room: &RoomName,
) -> Result<(), Box<Response>> {
    let refused = match authorize(state, remote, headers) {
        Ok(()) => return Ok(()),
        Err(refused) => refused,
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| t.matches('.').count() == 2) else {
        return Err(refused);
    };
    let grants = lock(&state.hub).verify_token(Some(token), None, || Login::new("rest-admin"));
    match grants {
        Ok(grants) if grants.room_admin && grants.allows_room(room) => Ok(()),
        Ok(_) => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "the token does not grant roomAdmin for this room",
        ))),
        Err(refusal) => Err(Box::new(error(StatusCode::UNAUTHORIZED, refusal.to_string()))),
    }
}

async fn drain(State(state): State<AppState>, call: AdminCall) -> Response {
    let started = state.lifecycle.drain();
    if started {
        tracing::info!(remote = %call.remote, "drain asked for over REST");
    }
    let timeout_s = state.config.drain_timeout.as_secs_f64();
    ok_json(json!({ "draining": true, "started": started, "timeout_s": timeout_s }))
}

async fn stream_find_all(State(state): State<AppState>, _: AdminCall) -> Response {
    let streams = lock(&state.hub).directory().stream_views();
    ok_json(json!(streams))
}

fn stream_name(value: &Value) -> Result<StreamName, Box<Response>> {
    text_field(value, "name", NAME_BYTES_MAX)
        .map(StreamName::new)
        .ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, "give the stream's 'name'")))
}

async fn stream_find(State(state): State<AppState>, call: AdminCall) -> Response {
    let name = match stream_name(&call.body) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    let streams = lock(&state.hub).directory().stream_views_named(&name);
    if streams.is_empty() {
        return error(StatusCode::NOT_FOUND, "Stream not found");
    }
    ok_json(json!(streams))
}

async fn stream_terminate(State(state): State<AppState>, call: AdminCall) -> Response {
    let name = match stream_name(&call.body) {
        Ok(name) => name,
        Err(refused) => return *refused,
    };
    if !lock(&state.hub).with_directory(|d| d.terminate_stream(&name)) {
        return error(StatusCode::NOT_FOUND, "Stream not found");
    }
    ok_json(json!({ "terminated": name.to_string() }))
}

async fn connection_find_all(State(state): State<AppState>, _: AdminCall) -> Response {
    let sessions = lock(&state.hub).directory().session_views();
    ok_json(json!(sessions))
}

async fn connection_terminate(State(state): State<AppState>, call: AdminCall) -> Response {
    let Some(id) = call.body.get("id").and_then(Value::as_u64).map(SessionId) else {
        return error(StatusCode::BAD_REQUEST, "give the connection's numeric 'id'");
    };
    if !lock(&state.hub).with_directory(|d| d.terminate_session(id)) {
        return error(StatusCode::NOT_FOUND, "no such connection");
    }
    ok_json(json!({ "terminated": id.0 }))
}

async fn rooms(State(state): State<AppState>, _: AdminCall) -> Response {
    let rooms = lock(&state.hub).directory().room_views();
    ok_json(json!(rooms))
}

fn room_name(room: &str) -> Result<RoomName, Box<Response>> {
    if room.is_empty() || room.len() > NAME_BYTES_MAX || room.chars().any(char::is_control) {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "bad room name")));
    }
    Ok(RoomName::new(room))
}

fn admin_error(e: AdminError) -> Response {
    let status = match e {
        AdminError::NoRoom | AdminError::NoParticipant => StatusCode::NOT_FOUND,
        AdminError::NothingToMute => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

async fn room(State(state): State<AppState>, RoomCall { room, .. }: RoomCall) -> Response {
    match lock(&state.hub).directory().room_detail(&room) {
        Some(view) => ok_json(json!(view)),
        None => admin_error(AdminError::NoRoom),
    }
}

fn login_field(value: &Value) -> Result<Login, Box<Response>> {
    text_field(value, "login", NAME_BYTES_MAX)
        .map(Login::new)
        .ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, "give the participant's 'login'")))
}

async fn room_kick(State(state): State<AppState>, RoomCall { room, body }: RoomCall) -> Response {
    let login = match login_field(&body) {
        Ok(login) => login,
        Err(refused) => return *refused,
    };
    match lock(&state.hub).with_directory(|d| d.kick_from_room(&room, &login)) {
        Ok(()) => ok_json(json!({ "kicked": login.to_string(), "room": room.to_string() })),
        Err(e) => admin_error(e),
    }
}

async fn room_mute(State(state): State<AppState>, RoomCall { room, body }: RoomCall) -> Response {
    let login = match login_field(&body) {
        Ok(login) => login,
        Err(refused) => return *refused,
    };
    let kind = match body.get("kind").and_then(Value::as_str) {
        Some("audio") => MuteKind::Audio,
        Some("video") => MuteKind::Video,
        _ => return error(StatusCode::BAD_REQUEST, "give 'kind': \"audio\" or \"video\""),
    };
    let muted = body.get("muted").and_then(Value::as_bool).unwrap_or(true);
    match lock(&state.hub).with_directory(|d| d.mute(&room, &login, kind, muted)) {
        Ok(streams) => ok_json(json!({ "login": login.to_string(), "muted": muted, "streams": streams })),
        Err(e) => admin_error(e),
    }
}

async fn room_lock(State(state): State<AppState>, RoomCall { room, body }: RoomCall) -> Response {
    let locked = body.get("locked").and_then(Value::as_bool).unwrap_or(true);
    match lock(&state.hub).with_directory(|d| d.lock_room(&room, locked)) {
        Ok(()) => ok_json(json!({ "room": room.to_string(), "locked": locked })),
        Err(e) => admin_error(e),
    }
}

async fn room_close(State(state): State<AppState>, RoomCall { room, .. }: RoomCall) -> Response {
    match lock(&state.hub).with_directory(|d| d.close_room(&room)) {
        Ok(participants) => {
            ok_json(json!({ "room": room.to_string(), "closed": true, "participants": participants }))
        }
        Err(e) => admin_error(e),
    }
}

async fn stall_worker(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if std::env::var(FAULT_INJECTION_ENV).as_deref() != Ok("1") {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let value = match authorize(&state, remote, &headers).and_then(|()| optional_body(&body)) {
        Ok(value) => value,
        Err(refused) => return *refused,
    };
    let worker = value.get("worker").and_then(Value::as_u64).unwrap_or(0);
    let seconds = value
        .get("seconds")
        .and_then(Value::as_u64)
        .unwrap_or(5)
        .min(STALL_SECONDS_MAX);
    let command = crate::worker::commands::Command::Stall(std::time::Duration::from_secs(seconds));
    let hub = lock(&state.hub);
    let Some(handle) = usize::try_from(worker).ok().and_then(|w| hub.workers().get(w)) else {
        return error(StatusCode::NOT_FOUND, "no such worker");
    };
    if handle.send(command).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the worker's queue is full");
    }
    ok_json(json!({ "worker": worker, "stalled_s": seconds }))
}
