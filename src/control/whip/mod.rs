//! WHIP (RFC 9725) and WHEP: publishing and playing with an SDP offer over HTTP, the way OBS
//! and many encoders and players speak WebRTC without a signaling SDK.
//!
//! - `POST /whip/room/{room}/{login}`: publish into a room as participant `login` (the room
//!   sees `JOINED`, then `PUBLISHED`; the stream is `{room}-{login}-whip`).
//! - `POST /whip/{stream}`: publish the plain stream `stream`.
//! - `POST /whep/{stream}`: play a plain stream; `POST /whep/room/{room}/{X}`: play stream `X`
//!   of the room, or else participant `X`'s camera (the RTMP bridge's rule).
//! - `201 Created` with the answer (`application/sdp`), `Location` of the resource and a
//!   `Link` per `--ice-server`; `DELETE` on the `Location` ends the stream; `PATCH` is `405`
//!   (the server is ICE-lite with its one candidate in the answer: a client's trickled
//!   candidates are learned from its checks); `OPTIONS` answers CORS preflights (without the
//!   `Link` headers: TURN credentials go only to an admitted client).
//! - `Authorization: Bearer TOKEN` carries the room token under `--auth jwt`.
//!
//! Control thread. Each resource is a directory session like an RTMP connection's (see
//! `resources.rs`); the offer goes through the same `publishStream`/`playStream` path as a
//! WebSocket client's, so every check and refusal is the same, answered here as an HTTP status
//! with the protocol's `info` as a JSON `error`.

mod reply;
mod resources;

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use tokio::sync::mpsc;

use super::admission::SessionRefusal;
use super::http::AppState;
use super::hub::lock;
use super::origin::CorsRule;
use super::rest::error;
use super::signaling::protocol::{ClientMessage, ServerMessage, StreamRequest, StreamStatus};
use crate::ids::{Login, MediaSessionId, RoomName, StreamName};
pub use reply::{SDP_MEDIA_TYPE, WHIP_OFFER_BYTES_MAX};
pub use resources::{WhipResources, WHIP_RESOURCES_MAX, WHIP_SESSION_MESSAGES_MAX};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/whip/room/{room}/{login}", post(publish_in_room))
        .route("/whip/{stream}", post(publish_plain))
        .route("/whep/room/{room}/{wanted}", post(play_in_room))
        .route("/whep/{stream}", post(play_plain))
        .route("/whip/resource/{id}", delete(end_resource).patch(no_patch))
        .route("/whep/resource/{id}", delete(end_resource).patch(no_patch))
}

/// CORS for WHIP and WHEP: a page on another (allowed) origin may POST `application/sdp`
/// with a token, DELETE its resource, and read `Location` and `Link`. The preflight carries no
/// `Link`: a TURN server's credentials go only to a client the POST admitted.
const WHIP_CORS: CorsRule = CorsRule {
    methods: "POST, DELETE, PATCH, OPTIONS",
    headers: "authorization, content-type, if-match",
    expose: Some("location, link, accept-post"),
    preflight: &[("accept-post", SDP_MEDIA_TYPE)],
};

pub async fn whip_cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    super::origin::cors(&state, &WHIP_CORS, request, next).await
}

/// What a POST asks for, once its path is read.
enum Wanted {
    Publish {
        room: Option<RoomName>,
        login: Option<Login>,
        name: StreamName,
    },
    Play {
        room: Option<RoomName>,
        wanted: String,
    },
}

/// Two names from a path, each checked ([`reply::checked_name`]); the first refusal's text.
fn two_names(first: (&str, &str), second: (&str, &str)) -> Result<(String, String), String> {
    Ok((
        reply::checked_name(first.0, first.1)?,
        reply::checked_name(second.0, second.1)?,
    ))
}

async fn publish_in_room(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path((room, login)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (room, login) = match two_names(("room", &room), ("login", &login)) {
        Ok(names) => names,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let name = StreamName::new(format!("{room}-{login}-whip"));
    let wanted = Wanted::Publish {
        room: Some(RoomName::new(room)),
        login: Some(Login::new(login)),
        name,
    };
    create(state, remote, headers, body, wanted).await
}

async fn publish_plain(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let name = match reply::checked_name("stream name", &stream) {
        Ok(name) => StreamName::new(name),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let wanted = Wanted::Publish {
        room: None,
        login: None,
        name,
    };
    create(state, remote, headers, body, wanted).await
}

async fn play_in_room(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path((room, wanted)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (room, wanted) = match two_names(("room", &room), ("stream or participant", &wanted)) {
        Ok(names) => names,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let wanted = Wanted::Play {
        room: Some(RoomName::new(room)),
        wanted,
    };
    create(state, remote, headers, body, wanted).await
}

async fn play_plain(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let wanted = match reply::checked_name("stream name", &stream) {
        Ok(wanted) => Wanted::Play { room: None, wanted },
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    create(state, remote, headers, body, wanted).await
}

async fn end_resource(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if state.whip.remove(&id, &state.hub) {
        StatusCode::OK.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "No such WHIP/WHEP resource")
    }
}

/// Trickle ICE and ICE restarts are not supported: RFC 9725 §4.3.1 lets a server answer 405
/// (404 for a resource that has ended).
async fn no_patch(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if !state.whip.contains(&id) {
        return error(StatusCode::NOT_FOUND, "No such WHIP/WHEP resource");
    }
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Trickle ICE and ICE restarts are not supported: the answer carries the server's candidate",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
    response
}

fn add_links(state: &AppState, headers: &mut HeaderMap) {
    for server in &state.config.ice_servers {
        if let Ok(value) = HeaderValue::from_str(&server.link_header()) {
            headers.append(header::LINK, value);
        }
    }
}

/// Read the offer, admit and authorize the client, open its session and hand the offer to the
/// directory; answer with what the directory sent back for it.
async fn create(
    state: AppState,
    remote: SocketAddr,
    headers: HeaderMap,
    body: Body,
    wanted: Wanted,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !reply::is_sdp_content_type(content_type) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The offer must be sent as application/sdp",
        );
    }
    let Ok(offer) = axum::body::to_bytes(body, WHIP_OFFER_BYTES_MAX).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("An offer is at most {WHIP_OFFER_BYTES_MAX} bytes"),
        );
    };
    let Ok(offer) = String::from_utf8(offer.to_vec()) else {
        return error(StatusCode::BAD_REQUEST, "Invalid SDP: the offer is not UTF-8");
    };
    if state.whip.is_full() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Too many WHIP/WHEP sessions");
    }
    let ticket = match state.admission.session(remote.ip()) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            let status = match refusal {
                SessionRefusal::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
                SessionRefusal::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
            };
            return error(status, refusal.to_string());
        }
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(reply::bearer_token)
        .map(str::to_owned);

    let resource = uuid::Uuid::new_v4().to_string();
    let media_session_id = MediaSessionId::new(resource.clone());
    let (outbox, mut messages) = mpsc::channel(WHIP_SESSION_MESSAGES_MAX);
    let mut hub = lock(&state.hub);
    let (prefix, login) = match &wanted {
        Wanted::Publish { login, .. } => ("whip", login.clone()),
        Wanted::Play { .. } => ("whep", None),
    };
    let fallback = || Login::new(state.whip.next_login(prefix));
    let grants = match hub.verify_token(token.as_deref(), login.as_ref(), fallback) {
        Ok(grants) => grants,
        Err(refusal) => {
            drop(hub);
            tracing::info!(reason = refusal.log_detail(), "WHIP/WHEP request refused");
            let mut response = error(reply::auth_refusal_status(&refusal), refusal.to_string());
            if response.status() == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return response;
        }
    };
    let session = hub.open_whip_session(grants, outbox);
    let request = match wanted {
        Wanted::Publish { room, name, .. } => {
            if let Some(room) = &room {
                if let Err(refusal) = hub.with_directory(|d| d.join_bridge(session, room)) {
                    hub.close_session(session);
                    return error(reply::room_refusal_status(&refusal), refusal.to_string());
                }
            }
            ClientMessage::PublishStream(StreamRequest {
                media_session_id: media_session_id.clone(),
                name,
                sdp: offer,
                room,
                record: false,
            })
        }
        Wanted::Play { room, wanted } => {
            let Some(name) = hub.directory().resolve_bridge_stream(room.as_ref(), &wanted) else {
                hub.close_session(session);
                return error(StatusCode::NOT_FOUND, "Stream not found");
            };
            ClientMessage::PlayStream(StreamRequest {
                media_session_id: media_session_id.clone(),
                name,
                sdp: offer,
                room,
                record: false,
            })
        }
    };
    let publishing = matches!(request, ClientMessage::PublishStream(_));
    hub.message(session, Ok(request), Instant::now());
    // The directory answers within the call: the answer, or the stream's refusal, is queued.
    let answer = loop {
        match messages.try_recv() {
            Ok(ServerMessage::RemoteSdp { sdp, .. }) => break Ok(sdp),
            Ok(ServerMessage::StreamStatus {
                status: StreamStatus::Failed,
                info,
                ..
            }) => break Err(info.unwrap_or_else(|| "Failed by error".to_owned())),
            Ok(_) => continue, // the room's own events (JOINED, ...)
            Err(_) => break Err("Failed by error".to_owned()),
        }
    };
    let sdp = match answer {
        Ok(sdp) => sdp,
        Err(info) => {
            hub.close_session(session);
            return error(reply::stream_refusal_status(&info), info);
        }
    };
    drop(hub);
    let kind = if publishing { "whip" } else { "whep" };
    let location = format!("/{kind}/resource/{resource}");
    state.whip.insert(
        resource,
        session,
        ticket,
        media_session_id,
        messages,
        state.hub.clone(),
    );
    let mut response = (StatusCode::CREATED, [(header::CONTENT_TYPE, SDP_MEDIA_TYPE)], sdp).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    add_links(&state, response.headers_mut());
    response
}
