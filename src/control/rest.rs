//! The admin REST routes (JSON on the HTTP port): recording control and the recordings
//! themselves (restreaming is in `rest_push.rs`). Every admin route is guarded the same way: with `--admin-key-file` set a
//! request needs `Authorization: Bearer <key>`; without it only loopback clients are
//! answered. Later admin routes use [`authorize`] too.
//!
//! Control thread. Invariants: bodies are bounded ([`REST_BODY_BYTES_MAX`]); every refusal
//! is an HTTP status with `{"error": "..."}`; file reads run on the blocking pool, never on
//! the control thread; `/records/NAME` serves only sanitised `.mp4` names inside the record
//! directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::directory::{RecordingError, StreamSelector};
use super::http::AppState;
use super::hub::lock;
use crate::ids::{MediaSessionId, StreamName};
use crate::record::meta;
use crate::record::template::sanitise;

/// The largest REST request body read: the calls take a few short fields.
pub const REST_BODY_BYTES_MAX: usize = 16 * 1024;
/// Longest id or name accepted in a REST body (as the signaling parser's).
const REST_ID_BYTES_MAX: usize = 256;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rest-api/stream/startRecording", post(start_recording))
        .route("/rest-api/stream/stopRecording", post(stop_recording))
        .route("/rest-api/recordings", get(recordings))
        .route("/records/{file}", get(record_file))
        .merge(super::rest_push::routes())
        .merge(super::rest_access::routes())
        .merge(super::rest_admin::routes())
}

pub(super) fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": text.into() }).to_string(),
    )
        .into_response()
}

fn refuse(status: StatusCode, text: impl Into<String>) -> Box<Response> {
    Box::new(error(status, text))
}

pub(super) fn ok_json(body: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The admin rule: the bearer key when one is configured, else loopback clients only.
pub fn authorize(state: &AppState, remote: SocketAddr, headers: &HeaderMap) -> Result<(), Box<Response>> {
    match &state.config.admin_key {
        Some(key) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if constant_time_eq(given.trim().as_bytes(), key.as_bytes()) {
                Ok(())
            } else {
                Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "a valid 'Authorization: Bearer' admin key is required",
                ))
            }
        }
        None if remote.ip().is_loopback() => Ok(()),
        None => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "admin routes answer loopback clients only; set --admin-key-file to use them remotely",
        ))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `{mediaSessionId}` (WCS's form) or `{name}`.
fn selector(body: &Bytes) -> Result<StreamSelector, Box<Response>> {
    if body.len() > REST_BODY_BYTES_MAX {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {REST_BODY_BYTES_MAX} bytes"),
        ));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, "the body is not JSON")))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= REST_ID_BYTES_MAX && !s.chars().any(char::is_control))
    };
    if let Some(id) = field("mediaSessionId") {
        return Ok(StreamSelector::MediaSessionId(MediaSessionId::from(id)));
    }
    if let Some(name) = field("name") {
        return Ok(StreamSelector::Name(StreamName::new(name)));
    }
    Err(refuse(
        StatusCode::BAD_REQUEST,
        "give the stream's 'mediaSessionId' or 'name'",
    ))
}

fn recording_error(e: RecordingError) -> Response {
    let status = match e {
        RecordingError::NotFound => StatusCode::NOT_FOUND,
        RecordingError::AlreadyRecording | RecordingError::NotRecording => StatusCode::CONFLICT,
        RecordingError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

/// Start or stop: what the two recording calls share (the admin rule, the body, the answer).
fn recording_call(
    state: &AppState,
    remote: SocketAddr,
    headers: &HeaderMap,
    body: &Bytes,
    status: &str,
    call: impl FnOnce(&mut super::directory::Directory, &StreamSelector) -> Result<String, RecordingError>,
) -> Response {
    if let Err(refused) = authorize(state, remote, headers) {
        return *refused;
    }
    let selector = match selector(body) {
        Ok(selector) => selector,
        Err(refused) => return *refused,
    };
    match lock(&state.hub).with_directory(|d| call(d, &selector)) {
        Ok(file) => ok_json(json!({ "status": status, "recordName": file })),
        Err(e) => recording_error(e),
    }
}

async fn start_recording(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    recording_call(&state, remote, &headers, &body, "recording", |d, s| {
        d.start_recording_of(s, Instant::now())
    })
}

async fn stop_recording(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    recording_call(&state, remote, &headers, &body, "stopped", |d, s| {
        d.stop_recording_of(s)
    })
}

fn record_dir(state: &AppState) -> Option<PathBuf> {
    lock(&state.hub).recorder().map(|r| r.dir().to_path_buf())
}

async fn recordings(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&state, remote, &headers) {
        return *refused;
    }
    let Some(dir) = record_dir(&state) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "recording is not available on this server",
        );
    };
    let listed = tokio::task::spawn_blocking(move || meta::list(&dir))
        .await
        .unwrap_or_default();
    let entries: Vec<Value> = listed
        .into_iter()
        .map(|m| {
            json!({
                "file": m.file,
                "url": format!("/records/{}", m.file),
                "state": m.state,
                "stream": m.stream,
                "room": m.room,
                "login": m.login,
                "mediaSessionId": m.media_session_id,
                "startTime": m.start_time_ms,
                "duration": m.duration_ms,
                "size": m.size_bytes,
                "videoCodec": m.video_codec,
                "audioCodec": m.audio_codec,
                "sourceAudioCodec": m.source_audio_codec,
                "offset": m.offset_ms,
                "timelineStart": m.timeline_start_ms,
                "resolutions": m.resolutions,
                "error": m.error,
            })
        })
        .collect();
    ok_json(json!({ "recordings": entries }))
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against a file of `len` bytes: (start, end inclusive).
fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None; // one range only
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (start, "") => (start.parse().ok()?, len - 1),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(len - 1)),
    };
    (start <= end && start < len).then_some((start, end))
}

async fn record_file(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    if let Err(refused) = authorize(&state, remote, &headers) {
        return *refused;
    }
    if sanitise(&file) != file || !file.ends_with(".mp4") {
        return error(StatusCode::NOT_FOUND, "no such recording");
    }
    let Some(dir) = record_dir(&state) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "recording is not available on this server",
        );
    };
    let Ok(mut handle) = tokio::fs::File::open(dir.join(&file)).await else {
        return error(StatusCode::NOT_FOUND, "no such recording");
    };
    let Ok(len) = handle.metadata().await.map(|m| m.len()) else {
        return error(StatusCode::NOT_FOUND, "no such recording");
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(value) => match parse_range(value, len) {
            Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end),
            None => {
                return Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(Body::empty())
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
        },
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    if handle.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the recording could not be read",
        );
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(handle.take(count)));
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, count);
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    response
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_clamp() {
        assert_eq!(parse_range("bytes=0-", 100), Some((0, 99)));
        assert_eq!(parse_range("bytes=10-19", 100), Some((10, 19)));
        assert_eq!(parse_range("bytes=90-500", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-", 100), None);
        assert_eq!(parse_range("bytes=0-", 0), None);
    }

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
