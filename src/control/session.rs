//! One WebSocket session's task: reads frames into the hub, writes the hub's frames out, pings,
//! and detects a dead peer. Runs on the control thread.
//!
//! Invariants: the session is registered in the hub before its first frame is read and closed
//! in the hub exactly once when the task ends, whatever ended it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::hub::{lock, SharedHub, SESSION_OUTBOX_MESSAGES_MAX};

/// Frames one session may send per second. The SDK sends a handful per user action (a stream is
/// two or three); a client sending more is broken or hostile, and its frames past the limit are
/// refused so the control thread stays free for every other session.
pub const SESSION_FRAMES_PER_SECOND_MAX: u32 = 200;

/// A one-second window counter for [`SESSION_FRAMES_PER_SECOND_MAX`].
struct FrameBudget {
    window_start: Instant,
    frames: u32,
    refused_reported: bool,
}

impl FrameBudget {
    fn new(now: Instant) -> Self {
        FrameBudget {
            window_start: now,
            frames: 0,
            refused_reported: false,
        }
    }

    /// Whether a frame arriving `now` may be handled; the first refusal of a window says so.
    fn admit(&mut self, now: Instant) -> Admission {
        if now.saturating_duration_since(self.window_start) >= std::time::Duration::from_secs(1) {
            *self = FrameBudget::new(now);
        }
        self.frames = self.frames.saturating_add(1);
        if self.frames <= SESSION_FRAMES_PER_SECOND_MAX {
            Admission::Handle
        } else if !self.refused_reported {
            self.refused_reported = true;
            Admission::RefuseAndReport
        } else {
            Admission::Refuse
        }
    }
}

enum Admission {
    Handle,
    RefuseAndReport,
    Refuse,
}
use super::signaling::protocol::ServerMessage;
use crate::config::Config;

/// A `fail` frame for something the session task refuses before the directory sees it.
fn fail_frame(api_method: &str, info: String) -> Message {
    let fail = ServerMessage::Fail {
        api_method: api_method.to_owned(),
        id: None,
        info,
    };
    Message::Text(fail.to_json().into())
}

pub async fn run_session(socket: WebSocket, hub: SharedHub, config: Arc<Config>) {
    let (outbox_tx, mut outbox) = mpsc::channel::<String>(SESSION_OUTBOX_MESSAGES_MAX);
    let id = lock(&hub).open_session(outbox_tx);
    tracing::debug!(session = %id, "session opened");
    let (mut sink, mut frames) = socket.split();
    let mut ping = tokio::time::interval(config.session_ping_interval);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let mut budget = FrameBudget::new(last_heard);
    loop {
        tokio::select! {
            frame = frames.next() => {
                let now = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = now;
                        match budget.admit(now) {
                            Admission::Handle => lock(&hub).frame(id, text.as_str(), now),
                            Admission::Refuse => {}
                            Admission::RefuseAndReport => {
                                let info = format!(
                                    "More than {SESSION_FRAMES_PER_SECOND_MAX} messages per second; \
                                     messages are dropped until the next second"
                                );
                                if sink.send(fail_frame("rateLimit", info)).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_heard = now;
                        let info = "Binary frames are not part of the protocol".to_owned();
                        if sink.send(fail_frame("binary", info)).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = now,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(error)) => {
                        tracing::debug!(session = %id, %error, "session socket error");
                        break;
                    }
                }
            }
            out = outbox.recv() => match out {
                Some(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > config.session_timeout {
                    tracing::info!(session = %id, "session silent past its keep-alive; closing it");
                    break;
                }
                if sink.send(Message::Text(ServerMessage::Ping.to_json().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    lock(&hub).close_session(id);
    tracing::debug!(session = %id, "session closed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frames_past_the_budget_are_refused_once_reported_then_admitted_next_second() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(start);
        for _ in 0..SESSION_FRAMES_PER_SECOND_MAX {
            assert!(matches!(budget.admit(start), Admission::Handle));
        }
        assert!(matches!(budget.admit(start), Admission::RefuseAndReport));
        assert!(matches!(budget.admit(start), Admission::Refuse));
        assert!(matches!(
            budget.admit(start + Duration::from_secs(1)),
            Admission::Handle
        ));
    }
}
