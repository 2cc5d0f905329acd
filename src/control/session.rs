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
use super::signaling::protocol::ServerMessage;
use crate::config::Config;

pub async fn run_session(socket: WebSocket, hub: SharedHub, config: Arc<Config>) {
    let (outbox_tx, mut outbox) = mpsc::channel::<String>(SESSION_OUTBOX_MESSAGES_MAX);
    let id = lock(&hub).open_session(outbox_tx);
    tracing::debug!(session = %id, "session opened");
    let (mut sink, mut frames) = socket.split();
    let mut ping = tokio::time::interval(config.ws_ping_interval);
    ping.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            frame = frames.next() => {
                let now = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = now;
                        lock(&hub).frame(id, text.as_str(), now);
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_heard = now;
                        let fail = ServerMessage::Fail {
                            api_method: "binary".into(),
                            id: None,
                            info: "Binary frames are not part of the protocol".into(),
                        };
                        if sink.send(Message::Text(fail.to_json().into())).await.is_err() {
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
                if last_heard.elapsed() > config.ws_idle_timeout {
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
