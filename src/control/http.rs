//! HTTP on the control thread: the WebSocket signaling endpoint at `/` (as WCS serves it), the
//! embedded web client, and `/health`. The same router serves plain HTTP and HTTPS.

use std::sync::Arc;

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::RustEmbed;

use super::admission::{Admission, SessionRefusal};
use super::hooks::HookClient;
use super::hub::{lock, SharedHub};
use super::lifecycle::Lifecycle;
use super::live::Live;
use super::origin::{OriginPolicy, OriginVerdict};
use super::session::{run_session, SessionContext};
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
/// The most a WebSocket's write buffer may hold: a frame waiting for a client that reads slowly
/// stays there, and the largest frame we send (an answer, a chat message of escaped text) is
/// well under this; the session's queued frames are capped apart (`output.rs`).
pub const WS_WRITE_BUFFER_BYTES_MAX: usize = 256 * 1024;

#[derive(RustEmbed)]
#[folder = "src/web/"]
struct WebAssets;

#[derive(Clone)]
pub struct AppState {
    pub hub: SharedHub,
    pub config: Arc<Config>,
    pub bridge: Arc<super::rtmp::Bridge>,
    pub admission: Arc<Admission>,
    /// SIGHUP may replace the origins and the hook client.
    pub origins: Arc<Live<OriginPolicy>>,
    pub hooks: Arc<Live<Option<HookClient>>>,
    pub lifecycle: Arc<Lifecycle>,
    /// WHIP and WHEP sessions, by the resource id of their `Location`.
    pub whip: Arc<super::whip::WhipResources>,
}

pub fn router(state: AppState) -> Router {
    let rest = super::rest::routes().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        super::origin::rest_cors,
    ));
    let whip = super::whip::routes().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        super::whip::whip_cors,
    ));
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(super::metrics::handler))
        .merge(rest)
        .merge(whip)
        .fallback(get(asset))
        .layer(axum::middleware::from_fn(super::serve::request_deadline))
        .with_state(state)
}

async fn root(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return serve_asset("index.html");
    };
    if state.origins.get().check(&headers) == OriginVerdict::Refused {
        return super::origin::refuse_counted(&state);
    }
    let ticket = match state.admission.session(remote.ip()) {
        Ok(ticket) => ticket,
        Err(refusal) => {
            let status = match refusal {
                SessionRefusal::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
                SessionRefusal::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
            };
            return super::rest::error(status, refusal.to_string());
        }
    };
    let context = SessionContext {
        hub: state.hub,
        config: state.config,
        hooks: state.hooks.get().as_ref().clone(),
        ticket,
    };
    upgrade
        .max_message_size(WS_FRAME_BYTES_MAX)
        .max_frame_size(WS_FRAME_BYTES_MAX)
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(WS_BUFFER_BYTES)
        .max_write_buffer_size(WS_WRITE_BUFFER_BYTES_MAX)
        .on_upgrade(move |socket| run_session(socket, context))
}

/// For load balancers and orchestrators: the process is up and its control thread answers.
async fn live() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "live"}))
}

/// For load balancers: 200 while every listener is bound, every worker turns and no drain
/// has begun; 503 with the reason otherwise.
async fn ready(State(state): State<AppState>) -> Response {
    let reason = {
        let hub = lock(&state.hub);
        super::lifecycle::watch::not_ready(&state.lifecycle, hub.workers())
    };
    match reason {
        None => json(StatusCode::OK, serde_json::json!({"status": "ready"})),
        Some(reason) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not ready", "reason": reason}),
        ),
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    let hub = lock(&state.hub);
    let counts = hub.directory().counts();
    let workers: Vec<serde_json::Value> = hub.workers().iter().map(|w| w.counters.snapshot()).collect();
    let webhooks = hub.webhooks().map(super::webhooks::Webhooks::counts);
    drop(hub);
    let body = serde_json::json!({
        "workers": workers,
        "status": if state.lifecycle.phase() == super::lifecycle::Phase::Draining { "draining" } else { "ok" },
        "uptime_s": state.lifecycle.uptime().as_secs(),
        "sessions": counts.sessions,
        "rooms": counts.rooms,
        "published": counts.published,
        "peers": counts.peers,
        "rtmp": state.bridge.health(),
        "admission": state.admission.health(),
        "webhooks": webhooks,
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
