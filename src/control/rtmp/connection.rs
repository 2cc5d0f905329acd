//! One RTMP connection's task: reads bytes into the sans-IO [`ServerConnection`], acts on
//! its events (an encoder joining its room and publishing, a player playing), writes its
//! output, pings, and enforces the handshake and idle deadlines.
//!
//! Control thread. Invariants: the directory session an encoder or player opened is closed
//! exactly once when the task ends, whatever ended it (so the room hears `UNPUBLISHED` and
//! `LEFT`); a refusal reaches the peer as an RTMP `_error` or `onStatus` with the reason
//! before the connection closes; a peer silent for [`IDLE_DEADLINE`] or stuck in the
//! handshake for [`HANDSHAKE_DEADLINE`] is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::feed::Feed;
use super::path::{self, RtmpTarget, RTMP_PATHS};
use super::publish::{IngestSink, PublishStep, Publisher};
use super::sources::{FeedItem, TagKind, WIRE_STREAM_ID};
use super::Bridge;
use crate::control::hub::lock;
use crate::control::signaling::protocol::{ServerMessage, StreamStatus};
use crate::control::webhooks::WebhookEvent;
use crate::ids::{Login, MediaSessionId, RoomName, SessionId, StreamName};
use crate::rtmp::limits::{HANDSHAKE_DEADLINE, IDLE_DEADLINE, OUR_CHUNK_BYTES};
use crate::rtmp::{Amf0Value, ServerConnection, ServerEvent};

/// Bytes read from the socket at once by an encoder's connection (a few of its chunks).
const READ_BYTES: usize = 32 * 1024;
/// Bytes read at once before a connection publishes: players send acknowledgements and pongs.
const READ_BYTES_SMALL: usize = 2 * 1024;
/// How long an encoder's tags wait before going to its RTMP players together: the audio and
/// video tags of this window share one wake-up and one write per player, about halving the
/// system calls of a stream with many players. RTMP players are this much later at most
/// (WebRTC players and recordings are not delayed: their packets go to the worker at once).
const PLAYER_FLUSH_INTERVAL: Duration = Duration::from_millis(30);
/// Feed items a player writes in one go when several are ready.
const WRITE_BATCH_ITEMS_MAX: usize = 64;
/// Bytes a player's write gathers at most.
const WRITE_BATCH_BYTES_MAX: usize = 32 * 1024;
/// A write buffer larger than this (a keyframe) is given back after the write: a player's
/// usual tags are a few KiB.
const OUT_BYTES_KEPT: usize = 16 * 1024;
/// How often a connection pings its peer (players send nothing else to prove they live).
const PING_INTERVAL: Duration = Duration::from_secs(3);
/// How long a refused peer is given to read the refusal before the connection closes.
const LINGER: Duration = Duration::from_secs(2);
/// Directory messages queued for one RTMP session (it reads them at once).
const SESSION_MESSAGES_MAX: usize = 256;

/// What the connection is doing.
struct Publishing {
    session: SessionId,
    stream_id: u32,
    media_session_id: MediaSessionId,
    stream: StreamName,
    room: Option<RoomName>,
    publisher: Publisher,
}

/// Refuse a publish that had started: `NetStream.Publish.Rejected` with the reason, then close.
fn rejected(conn: &mut ServerConnection, stream_id: u32, reason: &str) -> Flow {
    conn.send_status(stream_id, "error", "NetStream.Publish.Rejected", reason);
    Flow::Close
}

impl Publishing {
    /// Keep `/health`'s view of the encoder's keyframe interval and B-frames current.
    fn note_keyframes(&self, bridge: &Bridge) {
        let (interval, bframes) = (self.publisher.keyframe_interval_ms, self.publisher.bframes_seen);
        let mut publishers = bridge.lock_publishers();
        if let Some(info) = publishers.get_mut(self.stream.as_str()) {
            info.keyframe_interval_ms = interval;
            info.bframes = bframes;
        }
    }
}

enum Flow {
    Continue,
    /// Flush what is queued and close.
    Close,
}

pub async fn run<S>(stream: S, bridge: Arc<Bridge>, remote: std::net::SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut conn = ServerConnection::new();
    let mut task = Task {
        bridge,
        app: None,
        publishing: None,
        playing: None,
        statuses: None,
        remote,
        announced: None,
        end_reason: "closed",
    };
    let started = Instant::now();
    let mut last_heard = started;
    let mut buf = vec![0u8; READ_BYTES_SMALL];
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    // One timer for the deadline, moved only when the deadline moves (not made anew for every
    // message a player is sent).
    let mut armed = started + HANDSHAKE_DEADLINE;
    let idle = tokio::time::sleep_until(armed.into());
    tokio::pin!(idle);
    // An encoder's tags reach its RTMP players on this timer (see `PLAYER_FLUSH_INTERVAL`).
    let flush = tokio::time::sleep(PLAYER_FLUSH_INTERVAL);
    tokio::pin!(flush);
    let mut flush_armed = false;
    // What goes out next: the connection's own output, then shared wire bytes, in order.
    let mut out: Vec<u8> = Vec::new();
    'connection: loop {
        out.append(&mut conn.take_output());
        if !out.is_empty() && writer.write_all(&out).await.is_err() {
            break;
        }
        out.clear();
        if out.capacity() > OUT_BYTES_KEPT {
            out = Vec::new();
        }
        let deadline = if conn.handshake_done() {
            last_heard + IDLE_DEADLINE
        } else {
            started + HANDSHAKE_DEADLINE
        };
        if deadline != armed {
            armed = deadline;
            idle.as_mut().reset(deadline.into());
        }
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if task.publishing.is_some() && buf.len() < READ_BYTES {
                    buf.resize(READ_BYTES, 0);
                }
                last_heard = Instant::now();
                let fed = conn.feed(buf.get(..n).unwrap_or_default());
                while let Some(event) = conn.poll_event() {
                    if let Flow::Close = task.event(&mut conn, event) {
                        let _ = writer.write_all(&conn.take_output()).await;
                        linger(&mut reader, &mut writer).await;
                        break 'connection;
                    }
                }
                if !flush_armed && task.has_pending_tags() {
                    flush_armed = true;
                    flush.as_mut().reset(tokio::time::Instant::now() + PLAYER_FLUSH_INTERVAL);
                }
                if let Err(error) = fed {
                    task.end_reason = "protocol error";
                    tracing::debug!(%error, "RTMP connection closed on a protocol error");
                    task.bridge.counters.protocol_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = writer.write_all(&conn.take_output()).await;
                    break;
                }
            }
            item = next_item(&mut task.playing) => match item {
                Some((stream_id, item)) => {
                    send_item(&mut conn, &mut out, stream_id, item);
                    // Whatever else is ready goes in the same write. (Waiting a few ms for the
                    // next tag to share a write was measured: its timers cost more than the
                    // system calls saved.)
                    for _ in 1..WRITE_BATCH_ITEMS_MAX {
                        if out.len() >= WRITE_BATCH_BYTES_MAX {
                            break;
                        }
                        let Some(item) = task.playing.as_mut().and_then(|(_, feed)| feed.try_next()) else {
                            break;
                        };
                        send_item(&mut conn, &mut out, stream_id, item);
                    }
                }
                None => {
                    task.end_reason = "the stream ended";
                    if let Some((stream_id, _)) = &task.playing {
                        conn.send_status(*stream_id, "status", "NetStream.Play.Stop", "The stream ended");
                    }
                    let _ = writer.write_all(&conn.take_output()).await;
                    break;
                }
            },
            message = next_status(&mut task.statuses) => {
                if let Flow::Close = task.status(&mut conn, message) {
                    let _ = writer.write_all(&conn.take_output()).await;
                    linger(&mut reader, &mut writer).await;
                    break;
                }
            }
            _ = ping.tick(), if conn.handshake_done() => {
                conn.send_ping(started.elapsed().as_millis() as u32);
            }
            _ = &mut flush, if flush_armed => {
                flush_armed = false;
                task.flush_tags();
            }
            _ = &mut idle => {
                task.end_reason = "idle";
                tracing::debug!(handshake = conn.handshake_done(), "RTMP connection idle; closing it");
                break;
            }
        }
    }
    let _ = writer.shutdown().await;
    task.end();
}

/// After a refusal: stop writing, and read (and drop) what the peer still sends for a moment,
/// so the refusal is read before the close. Closing with the peer's bytes unread would reset
/// the connection, and an encoder that is busy writing would see the reset and never our
/// reason.
async fn linger<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(reader: &mut R, writer: &mut W) {
    let _ = writer.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = reader.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Queue one feed item for the player: audio and video as the source's shared wire bytes
/// where the player plays at the chunk size they were made for, else through the connection.
fn send_item(conn: &mut ServerConnection, out: &mut Vec<u8>, stream_id: u32, item: FeedItem) {
    match item {
        FeedItem::Tag(tag) => {
            let shared = tag
                .wire
                .as_ref()
                .filter(|_| stream_id == WIRE_STREAM_ID && conn.plays_at(stream_id, OUR_CHUNK_BYTES));
            if let Some(wire) = shared {
                out.append(&mut conn.take_output());
                out.extend_from_slice(wire);
                return;
            }
            match tag.kind {
                TagKind::Audio => conn.send_audio(stream_id, tag.timestamp_ms, &tag.body),
                TagKind::Video => conn.send_video(stream_id, tag.timestamp_ms, &tag.body),
                TagKind::Metadata => conn.send_metadata(stream_id, &tag.body),
            }
        }
        FeedItem::Unpublished => {
            conn.send_status(
                stream_id,
                "status",
                "NetStream.Play.UnpublishNotify",
                "The stream was unpublished",
            );
        }
    }
    out.append(&mut conn.take_output());
}

async fn next_item(playing: &mut Option<(u32, Feed)>) -> Option<(u32, FeedItem)> {
    match playing {
        Some((stream_id, feed)) => feed.next().await.map(|item| (*stream_id, item)),
        None => std::future::pending().await,
    }
}

async fn next_status(statuses: &mut Option<mpsc::Receiver<ServerMessage>>) -> Option<ServerMessage> {
    match statuses {
        Some(statuses) => statuses.recv().await,
        None => std::future::pending().await,
    }
}

struct Task {
    bridge: Arc<Bridge>,
    app: Option<String>,
    publishing: Option<Publishing>,
    playing: Option<(u32, Feed)>,
    /// The directory's messages to this connection's session (an encoder's).
    statuses: Option<mpsc::Receiver<ServerMessage>>,
    remote: std::net::SocketAddr,
    /// What `rtmp_connected` told the webhooks, for `rtmp_disconnected`.
    announced: Option<Announced>,
    /// What ended the connection, for `rtmp_disconnected`.
    end_reason: &'static str,
}

/// An encoder or player as the webhooks heard of it.
struct Announced {
    app: String,
    stream: String,
    room: String,
}

impl Task {
    fn event(&mut self, conn: &mut ServerConnection, event: ServerEvent) -> Flow {
        match event {
            ServerEvent::ConnectRequested { app, .. } => {
                let root = app.split(['/', '?']).next().unwrap_or_default();
                if root == "room" || root == "live" {
                    self.app = Some(app);
                    conn.accept_connect();
                    Flow::Continue
                } else {
                    conn.reject_connect(&format!("Unknown application '{root}': use {RTMP_PATHS}"));
                    Flow::Close
                }
            }
            ServerEvent::PublishRequested { stream_id, app, name } => {
                self.publish(conn, stream_id, &app, &name)
            }
            ServerEvent::PlayRequested { stream_id, app, name } => self.play(conn, stream_id, &app, &name),
            ServerEvent::Video {
                stream_id,
                timestamp_ms,
                body,
            } => self.media(conn, stream_id, timestamp_ms, &body, true),
            ServerEvent::Audio {
                stream_id,
                timestamp_ms,
                body,
            } => self.media(conn, stream_id, timestamp_ms, &body, false),
            ServerEvent::Metadata { stream_id, values } => {
                self.metadata(stream_id, &values);
                Flow::Continue
            }
            ServerEvent::StreamClosed { stream_id } => {
                let publishing = self.publishing.as_ref().is_some_and(|p| p.stream_id == stream_id);
                let playing = self.playing.as_ref().is_some_and(|(id, _)| *id == stream_id);
                if publishing || playing {
                    Flow::Close
                } else {
                    Flow::Continue
                }
            }
        }
    }

    /// The path of a publish or play, if this connection may start one.
    fn requested(&self, app: &str, name: &str) -> Result<path::RtmpPath, String> {
        if self.publishing.is_some() || self.playing.is_some() {
            return Err("This connection already publishes or plays".to_owned());
        }
        path::parse(app, name).map_err(|error| error.to_string())
    }

    fn publish(&mut self, conn: &mut ServerConnection, stream_id: u32, app: &str, name: &str) -> Flow {
        let path = match self.requested(app, name) {
            Ok(path) => path,
            Err(reason) => {
                conn.reject_publish(stream_id, &reason);
                return Flow::Close;
            }
        };
        let (login, room, stream) = match &path.target {
            RtmpTarget::Room { room, name } => (
                Some(Login::new(name.clone())),
                Some(RoomName::new(room.clone())),
                StreamName::new(format!("{room}-{name}-rtmp-h264")),
            ),
            RtmpTarget::Live { name } => (None, None, StreamName::new(name.clone())),
        };
        let (outbox, statuses) = mpsc::channel(SESSION_MESSAGES_MAX);
        let mut hub = lock(&self.bridge.hub);
        let bridge = self.bridge.clone();
        let fallback = || Login::new(format!("rtmp-{}", bridge.next_id()));
        let grants = match hub.verify_token(path.token.as_deref(), login.as_ref(), fallback) {
            Ok(grants) => grants,
            Err(refusal) => {
                drop(hub);
                tracing::info!(reason = refusal.log_detail(), "RTMP publish refused");
                conn.reject_publish(stream_id, &refusal.to_string());
                return Flow::Close;
            }
        };
        let session = hub.open_bridge_session(grants, outbox);
        if let Some(room) = &room {
            if let Err(error) = hub.with_directory(|d| d.join_bridge(session, room)) {
                hub.close_session(session);
                drop(hub);
                conn.reject_publish(stream_id, &error.to_string());
                return Flow::Close;
            }
        }
        drop(hub);
        let token = self.bridge.lock_sources().start(stream.as_str());
        let config = &self.bridge.config;
        let publisher = Publisher::new(
            stream.as_str().to_owned(),
            token,
            config.rtmp_bframes,
            config.rtmp_opus_bps(),
        );
        tracing::info!(stream = %stream, room = ?room.as_ref().map(RoomName::as_str), "RTMP encoder publishing");
        let room_text = room.as_ref().map_or_else(String::new, ToString::to_string);
        self.announce(app, stream.as_str(), room_text);
        self.publishing = Some(Publishing {
            session,
            stream_id,
            media_session_id: MediaSessionId::new(uuid::Uuid::new_v4().to_string()),
            stream,
            room,
            publisher,
        });
        self.statuses = Some(statuses);
        conn.accept_publish(stream_id);
        Flow::Continue
    }

    fn play(&mut self, conn: &mut ServerConnection, stream_id: u32, app: &str, name: &str) -> Flow {
        let path = match self.requested(app, name) {
            Ok(path) => path,
            Err(reason) => {
                conn.reject_play(stream_id, &reason);
                return Flow::Close;
            }
        };
        let bridge = self.bridge.clone();
        let fallback = || Login::new(format!("rtmp-player-{}", bridge.next_id()));
        let grants = match lock(&self.bridge.hub).verify_token(path.token.as_deref(), None, fallback) {
            Ok(grants) => grants,
            Err(refusal) => {
                tracing::info!(reason = refusal.log_detail(), "RTMP play refused");
                conn.reject_play(stream_id, &refusal.to_string());
                return Flow::Close;
            }
        };
        let opened = match &path.target {
            RtmpTarget::Room { room, name } => {
                Feed::open(&self.bridge, Some(&RoomName::new(room.clone())), name, grants)
            }
            RtmpTarget::Live { name } => Feed::open(&self.bridge, None, name, grants),
        };
        match opened {
            Ok((feed, stream)) => {
                tracing::info!(stream = %stream, "RTMP player playing");
                let room = match &path.target {
                    RtmpTarget::Room { room, .. } => room.clone(),
                    RtmpTarget::Live { .. } => String::new(),
                };
                self.announce(app, stream.as_str(), room);
                conn.accept_play(stream_id);
                self.playing = Some((stream_id, feed));
                Flow::Continue
            }
            Err(error) => {
                conn.reject_play(stream_id, &error.to_string());
                Flow::Close
            }
        }
    }

    fn media(
        &mut self,
        conn: &mut ServerConnection,
        stream_id: u32,
        timestamp_ms: u32,
        body: &[u8],
        video: bool,
    ) -> Flow {
        let Some(publishing) = self.publishing.as_mut().filter(|p| p.stream_id == stream_id) else {
            return Flow::Continue;
        };
        let bridge = self.bridge.clone();
        if !video && publishing.publisher.published() {
            let listeners = lock(&bridge.hub).directory().has_listeners(&publishing.stream);
            publishing.publisher.set_transcode_audio(listeners);
        }
        for _ in 0..2 {
            let step = {
                let mut sources = bridge.lock_sources();
                if video {
                    publishing.publisher.video(&mut sources, timestamp_ms, body)
                } else {
                    publishing.publisher.audio(&mut sources, timestamp_ms, body)
                }
            };
            let tracks = match step {
                Ok(PublishStep::Nothing) => {
                    if video {
                        publishing.note_keyframes(&bridge);
                    }
                    return Flow::Continue;
                }
                Ok(PublishStep::Ready(tracks)) => tracks,
                Err(error) => {
                    tracing::info!(stream = %publishing.stream, %error, "RTMP publish refused");
                    if error == super::publish::PublishError::BFrames {
                        bridge
                            .counters
                            .bframe_refusals
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    return rejected(conn, stream_id, &error.to_string());
                }
            };
            tracing::debug!(stream = %publishing.stream, ?tracks, "RTMP encoder's first keyframe: publishing");
            let video = tracks.video.as_ref().map(|t| format!("{} {}", t.name, t.fmtp));
            let audio = tracks.audio.as_ref().map(|t| t.name.clone());
            let mut hub = lock(&bridge.hub);
            let started = hub.with_directory(|d| {
                d.publish_ingest(
                    publishing.session,
                    &publishing.media_session_id,
                    &publishing.stream,
                    publishing.room.as_ref(),
                    *tracks,
                    Instant::now(),
                )
            });
            let started = match started {
                Ok(started) => started,
                Err(error) => {
                    drop(hub);
                    return rejected(conn, stream_id, &error.to_string());
                }
            };
            let Some(worker) = hub.workers().get(started.worker.0).cloned() else {
                return Flow::Close;
            };
            drop(hub);
            let sink = IngestSink {
                worker,
                peer: started.peer,
                dropped: bridge.counters.ingest_batches_dropped.clone(),
                audio_dropped: bridge.counters.audio_frames_dropped.clone(),
            };
            if let Err(error) = publishing.publisher.attach(sink) {
                return rejected(conn, stream_id, &error.to_string());
            }
            let info = super::RtmpPublisherInfo {
                stream: publishing.stream.as_str().to_owned(),
                room: publishing.room.as_ref().map(|r| r.as_str().to_owned()),
                video,
                audio,
                keyframe_interval_ms: None,
                bframes: 0,
                publisher: publishing.publisher.token(),
            };
            bridge.lock_publishers().insert(info.stream.clone(), info);
            // Feed the tag that made it ready again, now that it has somewhere to go.
        }
        Flow::Continue
    }

    fn metadata(&mut self, stream_id: u32, values: &[Amf0Value]) {
        let Some(publishing) = self.publishing.as_mut().filter(|p| p.stream_id == stream_id) else {
            return;
        };
        let Some(properties) = values
            .iter()
            .find(|v| matches!(v, Amf0Value::Object(_) | Amf0Value::EcmaArray(_)))
        else {
            return;
        };
        if properties.object_get("videocodecid").is_some() {
            publishing.publisher.expect_video();
        }
        let number = |key: &str| properties.object_get(key).and_then(Amf0Value::as_number);
        if let Some(codec) = number("audiocodecid") {
            let stereo = matches!(properties.object_get("stereo"), Some(Amf0Value::Boolean(true)));
            let rate = number("audiosamplerate").unwrap_or(0.0);
            if (0.0..=15.0).contains(&codec) && (0.0..=192_000.0).contains(&rate) {
                publishing
                    .publisher
                    .expect_audio(codec as u8, stereo, rate as u32);
            }
        }
        let mut body = Vec::new();
        crate::rtmp::amf0::encode(&Amf0Value::String("onMetaData".into()), &mut body);
        crate::rtmp::amf0::encode(properties, &mut body);
        let tag = super::sources::FlvTag::new(TagKind::Metadata, 0, Arc::from(body), false);
        let token = publishing.publisher.token();
        self.bridge
            .lock_sources()
            .metadata(publishing.stream.as_str(), token, tag);
    }

    fn status(&mut self, conn: &mut ServerConnection, message: Option<ServerMessage>) -> Flow {
        let Some(message) = message else {
            // The directory dropped the session: a newer connection took it over.
            if let Some(publishing) = &self.publishing {
                conn.send_status(
                    publishing.stream_id,
                    "error",
                    "NetStream.Publish.BadName",
                    "Replaced by a newer connection with the same login or stream name",
                );
            }
            self.statuses = None;
            return Flow::Close;
        };
        match message {
            ServerMessage::StreamStatus {
                status: StreamStatus::Failed | StreamStatus::Unpublished,
                info,
                ..
            } => {
                if let Some(publishing) = &self.publishing {
                    let reason = info.unwrap_or_else(|| "The stream was stopped".to_owned());
                    conn.send_status(
                        publishing.stream_id,
                        "error",
                        "NetStream.Publish.Rejected",
                        &reason,
                    );
                }
                Flow::Close
            }
            _ => Flow::Continue,
        }
    }

    fn has_pending_tags(&self) -> bool {
        self.publishing
            .as_ref()
            .is_some_and(|p| self.bridge.lock_sources().has_pending(p.stream.as_str()))
    }

    fn flush_tags(&mut self) {
        if let Some(publishing) = &self.publishing {
            let token = publishing.publisher.token();
            self.bridge
                .lock_sources()
                .flush(publishing.stream.as_str(), token);
        }
    }

    /// Tell the webhooks an encoder or player is on: `rtmp_connected`.
    fn announce(&mut self, app: &str, stream: &str, room: String) {
        // The query may carry the token: never in a webhook.
        let app = app.split('?').next().unwrap_or_default();
        let event = WebhookEvent::RtmpConnected {
            room: room.clone(),
            remote: self.remote.to_string(),
            app: app.to_owned(),
            stream: stream.to_owned(),
        };
        lock(&self.bridge.hub).webhook(event);
        self.announced = Some(Announced {
            app: app.to_owned(),
            stream: stream.to_owned(),
            room,
        });
    }

    /// The connection is over: its session closes (the room hears the stream end and the
    /// participant leave), then the webhooks hear `rtmp_disconnected`.
    fn end(&mut self) {
        self.playing = None;
        if let Some(publishing) = self.publishing.take() {
            let token = publishing.publisher.token();
            self.bridge.lock_sources().stop(publishing.stream.as_str(), token);
            if publishing.publisher.published() {
                // A newer connection that took the name over has put its own entry there.
                let mut publishers = self.bridge.lock_publishers();
                let ours = publishers
                    .get(publishing.stream.as_str())
                    .is_some_and(|info| info.publisher == token);
                if ours {
                    publishers.remove(publishing.stream.as_str());
                }
            }
            tracing::info!(stream = %publishing.stream, "RTMP encoder stopped");
            lock(&self.bridge.hub).close_session(publishing.session);
        }
        if let Some(Announced { app, stream, room }) = self.announced.take() {
            let event = WebhookEvent::RtmpDisconnected {
                room,
                remote: self.remote.to_string(),
                app,
                stream,
                reason: self.end_reason.to_owned(),
            };
            lock(&self.bridge.hub).webhook(event);
        }
    }
}
