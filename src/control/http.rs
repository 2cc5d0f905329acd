//! HTTP on the control thread: the WebSocket signaling endpoint at `/` (as WCS serves it), the
//! embedded web client, and `/health`. The same router serves plain HTTP and HTTPS.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use super::hub::{lock, SharedHub};
use super::session::run_session;
use super::signaling::protocol::WS_MESSAGE_BYTES_MAX;
use crate::config::Config;

/// The largest frame the WebSocket layer accepts at all. Frames between the protocol's
/// `WS_MESSAGE_BYTES_MAX` and this get the protocol's own error; larger ones close the socket.
pub const WS_FRAME_BYTES_MAX: usize = 16 * WS_MESSAGE_BYTES_MAX;

/// Read and write buffers per WebSocket. The library's default of 128 KiB each would make
/// signaling, not media, the biggest cost of a connected viewer; frames are small JSON. Not
/// smaller: the read buffer grows to hold a whole 3–6 KiB SDP offer and never shrinks, so a
/// 4 KiB start ends at 8 KiB anyway after one reallocation.
pub const WS_BUFFER_BYTES: usize = 8 * 1024;

#[derive(RustEmbed)]
#[folder = "src/web/"]
struct WebAssets;

#[derive(Clone)]
pub struct AppState {
    pub hub: SharedHub,
    pub config: Arc<Config>,
    pub bridge: Arc<super::rtmp::Bridge>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .merge(super::rest::routes())
        .fallback(get(asset))
        .with_state(state)
}

async fn root(
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade
            .max_message_size(WS_FRAME_BYTES_MAX)
            .max_frame_size(WS_FRAME_BYTES_MAX)
            .read_buffer_size(WS_BUFFER_BYTES)
            .write_buffer_size(WS_BUFFER_BYTES)
            .on_upgrade(move |socket| run_session(socket, state.hub, state.config)),
        Err(_) => serve_asset("index.html"),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    let hub = lock(&state.hub);
    let counts = hub.directory().counts();
    let workers: Vec<serde_json::Value> = hub.workers().iter().map(|w| w.counters.snapshot()).collect();
    drop(hub);
    let body = serde_json::json!({
        "workers": workers,
        "status": "ok",
        "sessions": counts.sessions,
        "rooms": counts.rooms,
        "published": counts.published,
        "peers": counts.peers,
        "rtmp": state.bridge.health(),
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    serve_asset(&path)
}

fn serve_asset(path: &str) -> Response {
    // Pages are also reachable without their extension: `/conference` → `conference.html`.
    let candidates = [path.to_owned(), format!("{path}.html")];
    for candidate in candidates {
        if let Some(file) = WebAssets::get(&candidate) {
            // `mime_guess` takes `.ts` for an MPEG transport stream; ours are TypeScript declarations.
            let mime = if candidate.ends_with(".d.ts") {
                "application/typescript".to_owned()
            } else {
                mime_guess::from_path(&candidate)
                    .first_or_octet_stream()
                    .to_string()
            };
            return Response::builder()
                .header(header::CONTENT_TYPE, mime)
                // The pages and the SDK are public; let pages on other sites import the SDK module.
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::from(file.data.into_owned()))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    }
    (StatusCode::NOT_FOUND, "not found").into_response()
}
