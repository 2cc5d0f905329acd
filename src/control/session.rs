//! One WebSocket session's task: reads frames into the hub, writes the hub's frames out, pings,
//! and detects a dead peer. Runs on the control thread.
//!
//! Invariants: the session is registered in the hub before its first frame is read and closed
//! in the hub exactly once when the task ends, whatever ended it; its frames reach the hub in
//! the order they came, those the application's hook must decide first included; a session
//! cut off by the hub (its output over budget, a kick, a refused connection) or whose writes
//! stall closes within [`WS_WRITE_STALL_MAX`] even if its client never reads again.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::hub::{lock, SharedHub, SESSION_OUTBOX_MESSAGES_MAX};
use crate::ids::SessionId;

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
use super::admission::SessionTicket;
use super::hook_calls::{apply_rewrite, hook_request, refusal};
use super::hooks::{HookClient, HookVerdict};
use super::output::SessionOutput;
use super::signaling::protocol::{parse_client_frame, ClientMessage, ParseFailure, ServerMessage};
use crate::config::Config;

/// Frames that may wait behind one the application's hook is deciding (they are handled in
/// order once it answers); past this the session is sending faster than its backend answers,
/// and further frames are refused.
pub const HOOK_WAITING_FRAMES_MAX: usize = 32;
/// A write to the socket that makes no progress for this long means the client stopped reading
/// with its receive window full: the session is closed rather than left holding its buffers.
pub const WS_WRITE_STALL_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// A `fail` frame for something the session task refuses before the directory sees it.
fn fail_frame(api_method: &str, info: String) -> Message {
    let fail = ServerMessage::Fail {
        api_method: api_method.to_owned(),
        id: None,
        info,
    };
    Message::Text(fail.to_json().into())
}

/// What a WebSocket session's task runs with.
pub struct SessionContext {
    pub hub: SharedHub,
    pub config: Arc<Config>,
    pub hooks: Option<HookClient>,
    /// Held for the session's life: its place under the session caps.
    pub ticket: SessionTicket,
}

type HookCall = Pin<Box<dyn Future<Output = (ClientMessage, HookVerdict, Instant)> + Send>>;

/// Frames in order: the one a hook is deciding and those waiting behind it.
struct Pipeline {
    id: SessionId,
    hub: SharedHub,
    hooks: Option<HookClient>,
    deciding: Option<HookCall>,
    /// Each with the instant it arrived (a join's latency counts from there).
    waiting: VecDeque<(Result<ClientMessage, ParseFailure>, Instant)>,
}

impl Pipeline {
    /// A frame from the client: handled now, or after the hook (and what waits before it).
    fn push(&mut self, parsed: Result<ClientMessage, ParseFailure>, received: Instant) -> bool {
        if self.deciding.is_some() || !self.waiting.is_empty() {
            if self.waiting.len() >= HOOK_WAITING_FRAMES_MAX {
                return false;
            }
            self.waiting.push_back((parsed, received));
            return true;
        }
        self.handle(parsed, received);
        true
    }

    fn handle(&mut self, parsed: Result<ClientMessage, ParseFailure>, received: Instant) {
        if let (Some(hooks), Ok(message)) = (&self.hooks, &parsed) {
            let hub = lock(&self.hub);
            let login = hub.directory().session_login(self.id).cloned();
            // A connection's token is checked before its hook: the backend hears only of
            // sessions the token admits (and not of a second `connection`, refused as such).
            let admitted = match message {
                ClientMessage::Connection(request) => {
                    login.is_none() && hub.authorize(self.id, request).is_ok()
                }
                _ => true,
            };
            drop(hub);
            if admitted {
                if let Some((method, body)) = hook_request(message, self.id, login.as_ref()) {
                    let hooks = hooks.clone();
                    let Ok(message) = parsed else { return };
                    self.deciding = Some(Box::pin(async move {
                        let verdict = hooks.call(method, &body).await;
                        (message, verdict, received)
                    }));
                    return;
                }
            }
        }
        lock(&self.hub).message_received_at(self.id, parsed, received, Instant::now());
    }

    /// The hook answered: act on its verdict, then on the frames that waited.
    fn decided(&mut self, message: ClientMessage, verdict: HookVerdict, received: Instant) {
        self.deciding = None;
        let parsed = match verdict {
            HookVerdict::Allow { rewritten: None } => Ok(message),
            HookVerdict::Allow {
                rewritten: Some(fields),
            } => Ok(apply_rewrite(message, &fields)),
            HookVerdict::Refuse { reason } => Err(refusal(&message, reason)),
        };
        let connection_refused = matches!(&parsed, Err(f) if f.message.as_deref() == Some("connection"));
        if connection_refused {
            if let Err(failure) = parsed {
                lock(&self.hub).refuse_connection(self.id, &failure.reason);
            }
        } else {
            lock(&self.hub).message_received_at(self.id, parsed, received, Instant::now());
        }
        while self.deciding.is_none() {
            let Some((next, received)) = self.waiting.pop_front() else {
                break;
            };
            self.handle(next, received);
        }
    }
}

/// Resolves with the hook's answer, or never when no hook is deciding.
async fn hook_answer(deciding: &mut Option<HookCall>) -> (ClientMessage, HookVerdict, Instant) {
    match deciding {
        Some(call) => call.await,
        None => std::future::pending().await,
    }
}

/// Write one frame, unless the session is cut off first or the write stalls.
async fn write(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: Message,
    output: &SessionOutput,
) -> Result<(), WriteEnd> {
    // The write first: a frame that can go out goes out even when the session was just cut
    // off (a refusal's reason); the cut only ends a write that is blocked.
    tokio::select! {
        biased;
        sent = tokio::time::timeout(WS_WRITE_STALL_MAX, sink.send(message)) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(WriteEnd::Closed),
            Err(_) => Err(WriteEnd::Stalled),
        },
        _ = output.cut_off() => Err(WriteEnd::Cut),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum WriteEnd {
    Closed,
    Stalled,
    Cut,
}

pub async fn run_session(socket: WebSocket, context: SessionContext) {
    let SessionContext {
        hub,
        config,
        hooks,
        ticket,
    } = context;
    let (outbox_tx, mut outbox) = mpsc::channel::<String>(SESSION_OUTBOX_MESSAGES_MAX);
    let output = Arc::new(SessionOutput::default());
    let id = lock(&hub).open_session(outbox_tx, output.clone());
    tracing::debug!(session = %id, "session opened");
    let (mut sink, mut frames) = socket.split();
    let mut ping = tokio::time::interval(config.session_ping_interval);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let mut budget = FrameBudget::new(last_heard);
    let mut pipeline = Pipeline {
        id,
        hub: hub.clone(),
        hooks,
        deciding: None,
        waiting: VecDeque::new(),
    };
    let end = loop {
        let result = tokio::select! {
            frame = frames.next() => {
                let now = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = now;
                        match budget.admit(now) {
                            Admission::Handle => {
                                if pipeline.push(parse_client_frame(text.as_str()), now) {
                                    Ok(())
                                } else {
                                    let info = format!(
                                        "More than {HOOK_WAITING_FRAMES_MAX} messages wait for the \
                                         application's answer; this one is dropped"
                                    );
                                    write(&mut sink, fail_frame("rateLimit", info), &output).await
                                }
                            }
                            Admission::Refuse => Ok(()),
                            Admission::RefuseAndReport => {
                                let info = format!(
                                    "More than {SESSION_FRAMES_PER_SECOND_MAX} messages per second; \
                                     messages are dropped until the next second"
                                );
                                write(&mut sink, fail_frame("rateLimit", info), &output).await
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_heard = now;
                        let info = "Binary frames are not part of the protocol".to_owned();
                        write(&mut sink, fail_frame("binary", info), &output).await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_heard = now;
                        Ok(())
                    }
                    Some(Ok(Message::Close(_))) | None => Err(WriteEnd::Closed),
                    Some(Err(error)) => {
                        tracing::debug!(session = %id, %error, "session socket error");
                        Err(WriteEnd::Closed)
                    }
                }
            }
            (message, verdict, received) = hook_answer(&mut pipeline.deciding) => {
                pipeline.decided(message, verdict, received);
                Ok(())
            }
            out = outbox.recv() => match out {
                Some(text) => {
                    let bytes = text.len();
                    let written = write(&mut sink, Message::Text(text.into()), &output).await;
                    output.release(bytes);
                    written
                }
                None => Err(WriteEnd::Closed),
            },
            _ = output.cut_off() => Err(WriteEnd::Cut),
            _ = ping.tick() => {
                if last_heard.elapsed() > config.session_timeout {
                    tracing::info!(session = %id, "session silent past its keep-alive; closing it");
                    Err(WriteEnd::Closed)
                } else {
                    write(&mut sink, Message::Text(ServerMessage::Ping.to_json().into()), &output).await
                }
            }
        };
        if let Err(end) = result {
            break end;
        }
    };
    match end {
        WriteEnd::Stalled => {
            tracing::info!(session = %id, "session stopped reading (a write stalled); closing it");
            ticket.count_write_stall();
        }
        // Frames queued before the cut (a refusal's reason) go out first, briefly.
        WriteEnd::Cut => flush_then_close(&mut sink, &mut outbox).await,
        WriteEnd::Closed => {}
    }
    let close = if output.is_going_away() {
        Some(CloseFrame {
            code: WS_CLOSE_GOING_AWAY,
            reason: "Going Away".into(),
        })
    } else {
        None
    };
    let _ = tokio::time::timeout(WS_CLOSE_WRITE_MAX, sink.send(Message::Close(close))).await;
    lock(&hub).close_session(id);
    drop(ticket);
    tracing::debug!(session = %id, "session closed");
}

/// RFC 6455's close code for an endpoint going away (a server shutting down).
pub const WS_CLOSE_GOING_AWAY: u16 = 1001;

/// How long a session's last frames and its close may take to write.
const WS_CLOSE_WRITE_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Write what is still queued (a refusal's `fail`) within [`WS_CLOSE_WRITE_MAX`].
async fn flush_then_close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    outbox: &mut mpsc::Receiver<String>,
) {
    let flush = async {
        while let Ok(text) = outbox.try_recv() {
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(WS_CLOSE_WRITE_MAX, flush).await;
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
