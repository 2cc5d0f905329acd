//! An async WCS WebSocket session: connect, room commands, events, raw frames.
//!
//! Owns [`WcsSession`], a cheap `Clone` handle over one socket. A reader task routes every
//! frame (see `dispatch`), a writer task sends what handles queue. Invariants:
//! - every wait has a deadline and ends in `Error::Timeout`, never hangs;
//! - a wait that finds the socket closed (and nothing queued that matches) ends in
//!   `Error::Closed` with the close reason;
//! - `sendData` commands are matched to their `DataStatusEvent` by a fresh v4 operation id;
//! - dropping the last handle (publishers and players hold one) closes the socket.
//!
//! Must be used inside a tokio runtime (it spawns its two tasks on `connect`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpSocket;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

use super::dispatch::{self, RawIncoming, SessionEvent, Shared, State};
use super::incoming::{DataStatus, RoomEventKind, StreamStatusEvent};
use super::messages::{self, ConnectionOptions};
pub use super::room_state::RoomState;
use crate::error::{Error, Result};

/// How a session connects.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The `connection` message to send; `None` opens a bare socket (for bad-input tests).
    pub connection: Option<ConnectionOptions>,
    /// Deadline of each wait this session does on its own (connect, acks, STATE).
    pub timeout: Duration,
}

impl SessionConfig {
    /// Room API session as `login` with a 10 s deadline.
    pub fn room(login: &str) -> Self {
        SessionConfig {
            connection: Some(ConnectionOptions::room(login)),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One WCS WebSocket session (clone to share it).
#[derive(Debug, Clone)]
pub struct WcsSession {
    shared: Arc<Shared>,
    out: UnboundedSender<Message>,
    login: Option<String>,
    timeout: Duration,
}

impl WcsSession {
    /// Opens `url`, sends a room API `connection` as `login`, waits for `getUserData`.
    pub async fn connect(url: &str, login: &str) -> Result<Self> {
        Self::connect_with(url, SessionConfig::room(login)).await
    }

    /// Opens `url` with an explicit configuration.
    pub async fn connect_with(url: &str, cfg: SessionConfig) -> Result<Self> {
        let (ws, _response) = tokio::time::timeout(cfg.timeout, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| Error::timeout(format!("WebSocket connect to {url}"), cfg.timeout))??;
        Self::over(ws, cfg).await
    }

    /// [`WcsSession::connect_with`] from the local address `local` (port chosen by the OS),
    /// so that a server's per-address limits see this session as coming from that host; any
    /// 127.0.0.0/8 address works on loopback without configuration.
    pub async fn connect_from(url: &str, local: IpAddr, cfg: SessionConfig) -> Result<Self> {
        let connect = async {
            let request = url.into_client_request()?;
            let uri = request.uri();
            let host = uri
                .host()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let remote = tokio::net::lookup_host((host.as_str(), port))
                .await?
                .find(|a| a.is_ipv4() == local.is_ipv4())
                .ok_or_else(|| Error::InvalidArgument(format!("{url}: no address like {local}")))?;
            let socket = if local.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(local, 0))?;
            let tcp = socket.connect(remote).await?;
            let (ws, _response) =
                tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await?;
            Ok::<_, Error>(ws)
        };
        let ws = tokio::time::timeout(cfg.timeout, connect)
            .await
            .map_err(|_| Error::timeout(format!("WebSocket connect to {url} from {local}"), cfg.timeout))??;
        Self::over(ws, cfg).await
    }

    /// Starts the session's tasks on an open WebSocket and sends the `connection`.
    async fn over(ws: dispatch::Ws, cfg: SessionConfig) -> Result<Self> {
        let (sink, stream) = ws.split();
        let (out, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new());
        let writer = tokio::spawn(dispatch::write_loop(sink, rx));
        let reader = tokio::spawn(dispatch::read_loop(stream, shared.clone(), out.downgrade()));
        shared.lock().tasks = vec![writer.abort_handle(), reader.abort_handle()];
        let session = WcsSession {
            shared,
            out,
            login: cfg.connection.as_ref().and_then(|c| c.login.clone()),
            timeout: cfg.timeout,
        };
        if let Some(conn) = &cfg.connection {
            session.send_text(&messages::connection(conn))?;
            session
                .wait_until("getUserData", cfg.timeout, |st| st.user_data.clone().map(Ok))
                .await?;
        }
        Ok(session)
    }

    /// The login given at connect.
    pub fn login(&self) -> Option<&str> {
        self.login.as_deref()
    }

    /// The default deadline of this session's waits.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The `getUserData` object, once received.
    pub fn user_data(&self) -> Option<Value> {
        self.shared.lock().user_data.clone()
    }

    /// Whether the reader has seen the socket end.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Number of server `ping`s answered with `pong`.
    pub fn pings_answered(&self) -> u64 {
        self.shared.lock().pings_answered
    }

    /// Turns automatic `pong` answers on or off (off lets a keep-alive lapse).
    pub fn set_auto_pong(&self, on: bool) {
        self.shared.lock().auto_pong = on;
    }

    /// Server frames that did not parse (most recent 64).
    pub fn parse_errors(&self) -> Vec<String> {
        self.shared.lock().parse_errors.iter().cloned().collect()
    }

    /// Runs `f` on the state until it yields, the socket closes, or `timeout` passes.
    pub(crate) async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&mut State) -> Option<Result<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.shared.lock();
                if let Some(r) = f(&mut st) {
                    return r;
                }
                if st.closed {
                    return Err(Error::Closed(st.close_reason.clone()));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::timeout(what, timeout));
            }
        }
    }

    /// Queues a text frame as is.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.send_frame(Message::text(text.to_string()))
    }

    /// Queues a binary frame.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.send_frame(Message::binary(data.to_vec()))
    }

    fn send_frame(&self, m: Message) -> Result<()> {
        self.out
            .send(m)
            .map_err(|_| Error::Closed(self.shared.lock().close_reason.clone()))
    }

    /// The next frame received (every frame is also routed as usual).
    pub async fn next_raw(&self, timeout: Duration) -> Result<RawIncoming> {
        self.wait_until("a frame", timeout, |st| st.raw.pop_front().map(Ok))
            .await
    }

    /// Sends `sendData` `{command, options}` and waits for its acknowledgement.
    /// `ACCEPTED` → `Ok`; `FAILED` → `Error::Refused` with the server's `info`.
    pub async fn send_data(&self, command: &str, options: Value) -> Result<DataStatus> {
        let op = uuid::Uuid::new_v4().to_string();
        self.send_text(&messages::send_data(&op, command, options))?;
        let what = format!("DataStatusEvent of {command}");
        let ack = self
            .wait_until(&what, self.timeout, |st| st.acks.remove(&op).map(Ok))
            .await?;
        if ack.accepted {
            Ok(ack)
        } else {
            Err(Error::Refused {
                command: command.to_string(),
                info: ack.info.unwrap_or_default(),
            })
        }
    }

    /// Joins `room`: waits for `ACCEPTED` and then for the room's `STATE`.
    pub async fn join(&self, room: &str) -> Result<RoomState> {
        self.send_data("join", messages::join_options(room)).await?;
        let entries = self
            .wait_until(&format!("STATE of {room}"), self.timeout, |st| {
                let pos = st.events.iter().position(|e| {
                    matches!(e, SessionEvent::Room(r) if r.room == room
                        && matches!(r.kind, RoomEventKind::State(_)))
                })?;
                match st.events.remove(pos) {
                    Some(SessionEvent::Room(r)) => match r.kind {
                        RoomEventKind::State(entries) => Some(Ok(entries)),
                        _ => None,
                    },
                    _ => None,
                }
            })
            .await?;
        Ok(RoomState {
            room: room.to_string(),
            entries,
        })
    }

    /// Leaves `room` (waits for the acknowledgement).
    pub async fn leave(&self, room: &str) -> Result<()> {
        self.send_data("leave", messages::leave_options(room))
            .await
            .map(|_| ())
    }

    /// Sends a room message to `to` (or, with `None`, without a recipient).
    pub async fn send_message(&self, room: &str, to: Option<&str>, text: &str) -> Result<()> {
        let options = messages::send_message_options(room, to, text);
        self.send_data("sendMessage", options).await.map(|_| ())
    }

    /// The oldest queued event (room events, unwatched stream statuses, `fail`, others).
    pub async fn next_event(&self, timeout: Duration) -> Result<SessionEvent> {
        self.wait_until("an event", timeout, |st| st.events.pop_front().map(Ok))
            .await
    }

    /// The oldest queued event matching `pred`; the others stay queued in order.
    pub async fn wait_event(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&SessionEvent) -> bool,
    ) -> Result<SessionEvent> {
        self.wait_until("a matching event", timeout, |st| {
            let pos = st.events.iter().position(&mut pred)?;
            st.events.remove(pos).map(Ok)
        })
        .await
    }

    /// The oldest room event of `room` matching `pred` (others stay queued).
    pub async fn wait_room_event(
        &self,
        room: &str,
        timeout: Duration,
        mut pred: impl FnMut(&RoomEventKind) -> bool,
    ) -> Result<RoomEventKind> {
        let ev = self
            .wait_event(
                timeout,
                |e| matches!(e, SessionEvent::Room(r) if r.room == room && pred(&r.kind)),
            )
            .await?;
        match ev {
            SessionEvent::Room(r) => Ok(r.kind),
            _ => Err(Error::Protocol("unreachable: non-room event matched".into())),
        }
    }

    /// Takes every queued event without waiting.
    pub fn drain_events(&self) -> Vec<SessionEvent> {
        self.shared.lock().events.drain(..).collect()
    }

    /// Routes `setRemoteSDP`, statuses and `fail` of `media_session_id` to its own slot.
    pub fn watch_stream(&self, media_session_id: &str) {
        self.shared
            .lock()
            .streams
            .entry(media_session_id.to_string())
            .or_default();
    }

    /// Stops routing to the slot of `media_session_id` and drops what it held.
    pub fn unwatch_stream(&self, media_session_id: &str) {
        self.shared.lock().streams.remove(media_session_id);
    }

    /// Waits for the answer SDP of a watched stream. A terminal status arriving first
    /// (`FAILED` with `No common codecs`, `Stream not found`, ...) becomes `StreamFailed`.
    pub async fn wait_remote_sdp(&self, media_session_id: &str, timeout: Duration) -> Result<String> {
        self.wait_until("setRemoteSDP", timeout, |st| {
            let slot = st.streams.get_mut(media_session_id)?;
            if let Some(sdp) = slot.sdp.take() {
                return Some(Ok(sdp));
            }
            let pos = slot.statuses.iter().position(|s| s.status.is_terminal())?;
            let s = slot.statuses.remove(pos)?;
            Some(Err(stream_failed(&s)))
        })
        .await
    }

    /// The next status of a watched stream.
    pub async fn next_stream_status(
        &self,
        media_session_id: &str,
        timeout: Duration,
    ) -> Result<StreamStatusEvent> {
        self.wait_until("a stream status", timeout, |st| {
            st.streams.get_mut(media_session_id)?.statuses.pop_front().map(Ok)
        })
        .await
    }

    /// Sends a WebSocket Close and waits for the socket to end.
    pub async fn close(&self) -> Result<()> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        let _ = self.send_frame(Message::Close(Some(frame)));
        self.wait_closed(self.timeout).await
    }

    /// Waits until the socket has ended (for example after the server closed it).
    pub async fn wait_closed(&self, timeout: Duration) -> Result<()> {
        match self
            .wait_until("socket close", timeout, |_| None::<Result<()>>)
            .await
        {
            Err(Error::Closed(_)) => Ok(()),
            other => other,
        }
    }

    /// Drops the TCP connection without a WebSocket Close (a vanished client).
    pub fn abort(&self) {
        let tasks = std::mem::take(&mut self.shared.lock().tasks);
        for t in tasks {
            t.abort();
        }
        self.shared.mark_closed(Some("aborted".into()));
        self.shared.changed.notify_waiters();
    }
}

/// The error for a stream that ended with `status`.
pub(crate) fn stream_failed(s: &StreamStatusEvent) -> Error {
    Error::StreamFailed {
        name: s.name.clone(),
        status: s.status.as_wire().to_string(),
        info: s.info.clone().unwrap_or_default(),
    }
}
