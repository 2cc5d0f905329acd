//! A minimal client of the Janus WebSocket JSON API (`janus-protocol` subprotocol): one
//! Janus session per connection, plugin handles, requests matched to their answers by
//! transaction, and the keep-alive Janus needs.
//!
//! Owns [`JanusConn`]: a reader task routes each frame to the waiter of its transaction
//! (asynchronous plugin answers come as an `ack` first, then an `event` carrying the same
//! transaction); a keep-alive task sends `keepalive` every [`KEEPALIVE`]. Everything else
//! (`webrtcup`, `media`, `hangup`, ...) is dropped: the load only needs answers. Dropping the
//! connection aborts both tasks and closes the socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::error::{Error, Result};

/// Janus drops a session silent for 60 s by default.
const KEEPALIVE: Duration = Duration::from_secs(20);

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One WebSocket connection with one Janus session on it.
#[derive(Debug)]
pub struct JanusConn {
    out: mpsc::UnboundedSender<Message>,
    waiters: Waiters,
    session: u64,
    timeout: Duration,
    tasks: Vec<AbortHandle>,
}

fn tx() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn id_of(v: &Value) -> Result<u64> {
    v.pointer("/data/id")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Protocol(format!("janus: no id in {v}")))
}

impl JanusConn {
    /// Connects to `url` and creates a session.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("janus-protocol"),
        );
        let (ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req))
            .await
            .map_err(|_| Error::timeout(format!("WebSocket connect to {url}"), timeout))??;
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        let waiters: Waiters = Arc::default();
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    return;
                }
            }
        });
        let w = waiters.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                    continue;
                };
                let kind = v.get("janus").and_then(Value::as_str).unwrap_or_default();
                if kind == "ack" {
                    continue;
                }
                let Some(t) = v.get("transaction").and_then(Value::as_str) else {
                    continue;
                };
                let waiter = w.lock().unwrap_or_else(|e| e.into_inner()).remove(t);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(v);
                }
            }
        });
        let mut conn = JanusConn {
            out,
            waiters,
            session: 0,
            timeout,
            tasks: vec![writer.abort_handle(), reader.abort_handle()],
        };
        let created = conn.request(json!({"janus": "create"})).await?;
        conn.session = id_of(&created)?;
        let (out, session) = (conn.out.clone(), conn.session);
        let keepalive = tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEEPALIVE).await;
                let m = json!({"janus": "keepalive", "session_id": session, "transaction": tx()});
                if out.send(Message::text(m.to_string())).is_err() {
                    return;
                }
            }
        });
        conn.tasks.push(keepalive.abort_handle());
        Ok(conn)
    }

    /// Sends `msg` (adding transaction and session) and waits for its answer (not the ack).
    pub async fn request(&self, mut msg: Value) -> Result<Value> {
        let t = tx();
        if let Some(o) = msg.as_object_mut() {
            o.insert("transaction".into(), json!(t));
            if self.session != 0 {
                o.insert("session_id".into(), json!(self.session));
            }
        }
        let (done, wait) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.clone(), done);
        self.out
            .send(Message::text(msg.to_string()))
            .map_err(|_| Error::Closed(None))?;
        let v = match tokio::time::timeout(self.timeout, wait).await {
            Ok(Ok(v)) => v,
            Ok(Err(_)) => return Err(Error::Closed(None)),
            Err(_) => {
                self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&t);
                return Err(Error::timeout("janus answer", self.timeout));
            }
        };
        if v.get("janus").and_then(Value::as_str) == Some("error") {
            return Err(Error::Protocol(format!("janus: {}", v["error"])));
        }
        if let Some(err) = v.pointer("/plugindata/data/error") {
            let code = v
                .pointer("/plugindata/data/error_code")
                .cloned()
                .unwrap_or_default();
            return Err(Error::Refused {
                command: "videoroom".into(),
                info: format!("{code} {err}"),
            });
        }
        Ok(v)
    }

    /// The deadline of each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Attaches a handle of `plugin`.
    pub async fn attach(&self, plugin: &str) -> Result<u64> {
        id_of(&self.request(json!({"janus": "attach", "plugin": plugin})).await?)
    }

    /// Sends a plugin message (with an optional JSEP) on `handle`; returns the answer.
    pub async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> Result<Value> {
        let mut m = json!({"janus": "message", "handle_id": handle, "body": body});
        if let (Some(j), Some(o)) = (jsep, m.as_object_mut()) {
            o.insert("jsep".into(), j);
        }
        self.request(m).await
    }

    /// Tells Janus this handle's candidates are all in the SDP already.
    pub fn trickle_done(&self, handle: u64) -> Result<()> {
        let m = json!({"janus": "trickle", "session_id": self.session, "handle_id": handle,
            "transaction": tx(), "candidate": {"completed": true}});
        self.out
            .send(Message::text(m.to_string()))
            .map_err(|_| Error::Closed(None))
    }
}

impl Drop for JanusConn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
