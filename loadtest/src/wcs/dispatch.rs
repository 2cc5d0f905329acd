//! The session's shared state and the two socket tasks (reader and writer).
//!
//! Owns [`Shared`] (state behind a `std::sync::Mutex`, held only for short non-async
//! sections, plus a `Notify` fired after every change) and the tasks that move frames.
//! Routing invariants:
//! - every incoming frame is appended to the raw queue (capped, oldest dropped);
//! - `ping` is answered with `pong` by the reader itself while `auto_pong` is on;
//! - `DataStatusEvent` goes to `acks` by operation id, `getUserData` to `user_data`;
//! - `setRemoteSDP`, `notifyStreamStatusEvent` and `fail` for a *watched* media session go
//!   to that session's slot only (a publisher or player handle consumes them); for any other
//!   id they go to the general event queue, as do room events and unknown messages;
//! - queues are capped so an unconsumed session cannot grow without bound.
//!
//! The reader holds only a weak sender, so dropping every handle closes the writer's
//! channel, which sends a WebSocket Close and ends the socket.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{UnboundedReceiver, WeakUnboundedSender};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::incoming::StreamStatusEvent;
use super::incoming::{self, DataStatus, RoomEvent, ServerMessage, StreamStatus};
use super::messages;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Something the server sent that a test may want to see.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// `OnDataEvent`.
    Room(RoomEvent),
    /// `notifyStreamStatusEvent` for a media session no handle watches.
    Stream(StreamStatusEvent),
    /// `setRemoteSDP` for a media session no handle watches.
    RemoteSdp {
        /// `mediaSessionId`.
        media_session_id: String,
        /// The answer.
        sdp: String,
    },
    /// `fail` (also delivered to the watching handle as a `FAILED` status).
    Fail {
        /// `apiMethod`.
        api_method: Option<String>,
        /// `id` (a mediaSessionId for `StreamStatusEvent`).
        id: Option<String>,
        /// `info`.
        info: Option<String>,
        /// The whole data object.
        raw: Value,
    },
    /// Any other well-formed message.
    Other {
        /// `message`.
        message: String,
        /// `data`.
        data: Value,
    },
}

/// One frame as it came off the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawIncoming {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A Close frame: code and reason, when given.
    Close(Option<(u16, String)>),
}

#[derive(Debug, Default)]
pub(crate) struct StreamSlot {
    pub sdp: Option<String>,
    pub statuses: VecDeque<StreamStatusEvent>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub events: VecDeque<SessionEvent>,
    pub raw: VecDeque<RawIncoming>,
    pub acks: HashMap<String, DataStatus>,
    pub streams: HashMap<String, StreamSlot>,
    pub user_data: Option<Value>,
    pub closed: bool,
    pub close_reason: Option<String>,
    pub auto_pong: bool,
    pub pings_answered: u64,
    pub dropped: u64,
    pub parse_errors: VecDeque<String>,
    pub tasks: Vec<AbortHandle>,
}

pub(crate) const EVENTS_MAX: usize = 65_536;
pub(crate) const RAW_MAX: usize = 4_096;
const PARSE_ERRORS_MAX: usize = 64;

fn push_capped<T>(q: &mut VecDeque<T>, max: usize, item: T, dropped: &mut u64) {
    if q.len() >= max {
        q.pop_front();
        *dropped += 1;
    }
    q.push_back(item);
}

/// State shared by the handles and the reader task.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    pub changed: Notify,
}

impl Shared {
    pub fn new() -> Self {
        Shared {
            state: Mutex::new(State {
                events: VecDeque::new(),
                raw: VecDeque::new(),
                acks: HashMap::new(),
                streams: HashMap::new(),
                user_data: None,
                closed: false,
                close_reason: None,
                auto_pong: true,
                pings_answered: 0,
                dropped: 0,
                parse_errors: VecDeque::new(),
                tasks: Vec::new(),
            }),
            changed: Notify::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn route(&self, text: &str, out: &WeakUnboundedSender<Message>) {
        let mut st = self.lock();
        let st = &mut *st;
        push_capped(
            &mut st.raw,
            RAW_MAX,
            RawIncoming::Text(text.to_string()),
            &mut st.dropped,
        );
        let msg = match incoming::parse(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("unparsable server frame: {e}: {text:.200}");
                let mut ignored = 0;
                push_capped(
                    &mut st.parse_errors,
                    PARSE_ERRORS_MAX,
                    e.to_string(),
                    &mut ignored,
                );
                return;
            }
        };
        let event = match msg {
            ServerMessage::Ping => {
                if st.auto_pong {
                    if let Some(tx) = out.upgrade() {
                        if tx.send(Message::text(messages::pong())).is_ok() {
                            st.pings_answered += 1;
                        }
                    }
                }
                None
            }
            ServerMessage::Pong => None,
            ServerMessage::GetUserData(v) => {
                st.user_data = Some(v);
                None
            }
            ServerMessage::DataStatus(ds) => {
                st.acks.insert(ds.operation_id.clone(), ds);
                None
            }
            ServerMessage::RoomEvent(ev) => Some(SessionEvent::Room(ev)),
            ServerMessage::SetRemoteSdp {
                media_session_id,
                sdp,
            } => match st.streams.get_mut(&media_session_id) {
                Some(slot) => {
                    slot.sdp = Some(sdp);
                    None
                }
                None => Some(SessionEvent::RemoteSdp {
                    media_session_id,
                    sdp,
                }),
            },
            ServerMessage::StreamStatus(s) => match st.streams.get_mut(&s.media_session_id) {
                Some(slot) => {
                    slot.statuses.push_back(s);
                    None
                }
                None => Some(SessionEvent::Stream(s)),
            },
            ServerMessage::Fail {
                api_method,
                id,
                info,
                raw,
            } => {
                if let Some(slot) = id.as_ref().and_then(|id| st.streams.get_mut(id)) {
                    slot.statuses.push_back(StreamStatusEvent {
                        media_session_id: id.clone().unwrap_or_default(),
                        name: String::new(),
                        status: StreamStatus::Failed,
                        info: info.clone(),
                        record_name: None,
                        raw: raw.clone(),
                    });
                }
                Some(SessionEvent::Fail {
                    api_method,
                    id,
                    info,
                    raw,
                })
            }
            ServerMessage::Other { message, data } => Some(SessionEvent::Other { message, data }),
        };
        if let Some(ev) = event {
            push_capped(&mut st.events, EVENTS_MAX, ev, &mut st.dropped);
        }
    }

    fn push_raw(&self, item: RawIncoming) {
        let mut st = self.lock();
        let st = &mut *st;
        push_capped(&mut st.raw, RAW_MAX, item, &mut st.dropped);
    }

    pub fn mark_closed(&self, reason: Option<String>) {
        let mut st = self.lock();
        if !st.closed {
            st.closed = true;
            st.close_reason = reason;
        }
    }
}

/// Reads frames until the socket ends, routing each one.
pub(crate) async fn read_loop(
    mut stream: SplitStream<Ws>,
    shared: std::sync::Arc<Shared>,
    out: WeakUnboundedSender<Message>,
) {
    let mut reason = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Message::Text(t)) => shared.route(t.as_str(), &out),
            Ok(Message::Binary(b)) => shared.push_raw(RawIncoming::Binary(b.to_vec())),
            Ok(Message::Close(frame)) => {
                let f = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                reason = Some(match &f {
                    Some((code, why)) => format!("close {code} {why}"),
                    None => "close".to_string(),
                });
                shared.push_raw(RawIncoming::Close(f));
            }
            Ok(_) => {}
            Err(e) => {
                reason.get_or_insert_with(|| e.to_string());
                break;
            }
        }
        shared.changed.notify_waiters();
    }
    shared.mark_closed(reason.or_else(|| Some("socket ended".into())));
    shared.changed.notify_waiters();
}

/// Writes queued frames; ends (sending a Close) when every sender is gone.
pub(crate) async fn write_loop(mut sink: SplitSink<Ws, Message>, mut rx: UnboundedReceiver<Message>) {
    while let Some(m) = rx.recv().await {
        let close = matches!(m, Message::Close(_));
        if sink.send(m).await.is_err() || close {
            return;
        }
    }
    let _ = sink.close().await;
}
