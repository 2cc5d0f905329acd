//! Restreaming out: `POST /rest-api/push/startup {streamName, rtmpUrl}` pushes a stream to
//! another RTMP server (YouTube, Twitch, nginx-rtmp, another webcall). Each push is a task
//! that connects, publishes, and forwards the stream's FLV tags; when the far server or the
//! connection fails it reconnects with a growing backoff, and while the stream is not
//! published it waits for it.
//!
//! Control thread. Invariants: at most [`PUSHES_MAX`] pushes; every push has exactly one
//! state, readable with `find_all`, changed only by its own task; `terminate` aborts the
//! task (its feed, and with it any tap, is dropped with it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::feed::Feed;
use super::sources::{FeedItem, TagKind};
use super::Bridge;
use crate::control::directory::StreamError;
use crate::rtmp::{parse_rtmp_url, ClientConnection, ClientEvent, RtmpUrl};

/// Pushes one server runs at once.
pub const PUSHES_MAX: usize = 64;
/// The first wait before reconnecting; it doubles up to [`PUSH_BACKOFF_MAX`].
const PUSH_BACKOFF_MIN: Duration = Duration::from_secs(1);
const PUSH_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Time to connect and be publishing on the far server.
const PUSH_CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// A far server that reads nothing for this long is given up on (and retried).
const PUSH_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How often a push whose stream is not published looks again.
const PUSH_STREAM_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("Invalid rtmpUrl: {0}")]
    InvalidUrl(String),
    #[error("rtmps:// pushes are not supported: use rtmp://")]
    TlsUnsupported,
    #[error("At most {PUSHES_MAX} pushes may run at once")]
    TooMany,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushInfo {
    pub id: String,
    pub stream_name: String,
    pub rtmp_url: String,
    /// `connecting`, `publishing`, `waiting` (for the stream) or `retrying`.
    pub state: String,
    /// The last error, while retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// When the push entered its state, in Unix milliseconds.
    pub since: u64,
}

struct PushStatus {
    state: &'static str,
    info: Option<String>,
    since: SystemTime,
}

struct PushEntry {
    stream_name: String,
    rtmp_url: String,
    status: Arc<Mutex<PushStatus>>,
    task: tokio::task::AbortHandle,
}

#[derive(Default)]
pub struct Pushes {
    entries: BTreeMap<String, PushEntry>,
}

impl Pushes {
    pub fn find_all(&self) -> Vec<PushInfo> {
        self.entries.iter().map(|(id, entry)| info(id, entry)).collect()
    }

    pub fn terminate(&mut self, id: &str) -> Option<PushInfo> {
        let entry = self.entries.remove(id)?;
        entry.task.abort();
        Some(info(id, &entry))
    }
}

fn info(id: &str, entry: &PushEntry) -> PushInfo {
    let status = entry.status.lock().unwrap_or_else(|p| p.into_inner());
    PushInfo {
        id: id.to_owned(),
        stream_name: entry.stream_name.clone(),
        rtmp_url: entry.rtmp_url.clone(),
        state: status.state.to_owned(),
        info: status.info.clone(),
        since: status
            .since
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

/// Start pushing `stream_name` to `rtmp_url`.
pub fn startup(bridge: &Arc<Bridge>, stream_name: &str, rtmp_url: &str) -> Result<PushInfo, PushError> {
    let url = parse_rtmp_url(rtmp_url).map_err(|e| PushError::InvalidUrl(e.to_string()))?;
    if url.tls {
        return Err(PushError::TlsUnsupported);
    }
    let mut pushes = bridge.lock_pushes();
    if pushes.entries.len() >= PUSHES_MAX {
        return Err(PushError::TooMany);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let status = Arc::new(Mutex::new(PushStatus {
        state: "connecting",
        info: None,
        since: SystemTime::now(),
    }));
    let task = tokio::spawn(run(bridge.clone(), url, stream_name.to_owned(), status.clone()));
    let entry = PushEntry {
        stream_name: stream_name.to_owned(),
        rtmp_url: rtmp_url.to_owned(),
        status,
        task: task.abort_handle(),
    };
    let shown = info(&id, &entry);
    pushes.entries.insert(id, entry);
    Ok(shown)
}

fn set(status: &Mutex<PushStatus>, state: &'static str, info: Option<String>) {
    let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
    if status.state != state || status.info != info {
        *status = PushStatus {
            state,
            info,
            since: SystemTime::now(),
        };
    }
}

async fn run(bridge: Arc<Bridge>, url: RtmpUrl, stream: String, status: Arc<Mutex<PushStatus>>) {
    let mut backoff = PUSH_BACKOFF_MIN;
    loop {
        if !lock_published(&bridge, &stream) {
            set(&status, "waiting", None);
            tokio::time::sleep(PUSH_STREAM_POLL).await;
            continue;
        }
        set(&status, "connecting", None);
        match push_once(&bridge, &url, &stream, &status).await {
            Ok(()) => {
                backoff = PUSH_BACKOFF_MIN;
                set(&status, "waiting", None);
            }
            Err(reason) => {
                tracing::info!(stream = %stream, %reason, "RTMP push failed; retrying");
                set(&status, "retrying", Some(reason));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(PUSH_BACKOFF_MAX);
            }
        }
    }
}

fn lock_published(bridge: &Bridge, stream: &str) -> bool {
    crate::control::hub::lock(&bridge.hub)
        .directory()
        .is_published(&crate::ids::StreamName::new(stream))
}

/// One connection to the far server: publish and forward until the stream or the connection
/// ends. `Ok` means the stream ended (wait for it again); `Err` carries the failure.
async fn push_once(
    bridge: &Arc<Bridge>,
    url: &RtmpUrl,
    stream: &str,
    status: &Mutex<PushStatus>,
) -> Result<(), String> {
    let connect = TcpStream::connect((url.host.as_str(), url.port));
    let mut socket = match tokio::time::timeout(PUSH_CONNECT_DEADLINE, connect).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => return Err(format!("connect: {error}")),
        Err(_) => return Err("connect: timed out".into()),
    };
    let _ = socket.set_nodelay(true);
    let mut conn = ClientConnection::new(&url.app, &url.tc_url, &url.stream_key);
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + PUSH_CONNECT_DEADLINE;
    let mut feed: Option<Feed> = None;
    loop {
        let out = conn.take_output();
        if !out.is_empty() {
            match tokio::time::timeout(PUSH_WRITE_DEADLINE, socket.write_all(&out)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(format!("write: {error}")),
                Err(_) => return Err("the far server stopped reading".into()),
            }
        }
        let connecting = feed.is_none();
        tokio::select! {
            read = socket.read(&mut buf) => {
                let n = match read {
                    Ok(0) => return Err("the far server closed the connection".into()),
                    Ok(n) => n,
                    Err(error) => return Err(format!("read: {error}")),
                };
                conn.feed(buf.get(..n).unwrap_or_default()).map_err(|e| format!("protocol: {e}"))?;
                while let Some(event) = conn.poll_event() {
                    match event {
                        ClientEvent::Publishing => {
                            let opened = Feed::open_exact(bridge, stream);
                            match opened {
                                Ok((opened, _)) => feed = Some(opened),
                                Err(StreamError::NotFound) => return Ok(()),
                                Err(error) => return Err(error.to_string()),
                            }
                            set(status, "publishing", None);
                        }
                        ClientEvent::Failed(reason) => return Err(format!("refused: {reason}")),
                    }
                }
            }
            item = next(&mut feed) => match item {
                Some(FeedItem::Tag(tag)) => match tag.kind {
                    TagKind::Audio => conn.send_audio(tag.timestamp_ms, &tag.body),
                    TagKind::Video => conn.send_video(tag.timestamp_ms, &tag.body),
                    TagKind::Metadata => conn.send_metadata(&tag.body),
                },
                Some(FeedItem::Unpublished) | None => return Ok(()),
            },
            _ = tokio::time::sleep_until(deadline), if connecting => {
                return Err("the far server did not accept the publish in time".into());
            }
        }
    }
}

async fn next(feed: &mut Option<Feed>) -> Option<FeedItem> {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}
