//! The WHIP and WHEP sessions that exist: each created resource (the `Location` a client
//! DELETEs) names one directory session, which holds its one stream, and the admission ticket
//! that counts it against `--max-sessions` and `--max-sessions-per-ip`.
//!
//! Control thread. Invariants: a resource lives exactly as long as its directory session —
//! its watcher ends both when the stream ends on its own (FAILED, UNPUBLISHED, STOPPED: a
//! DTLS failure, an ICE timeout, a kick, a drain), and DELETE ends both; at most
//! [`WHIP_RESOURCES_MAX`] exist, so an abandoned client that never DELETEs costs a bounded
//! amount until its peer times out (30 s without ICE).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::control::admission::SessionTicket;
use crate::control::hub::{lock, SharedHub};
use crate::control::signaling::protocol::{ServerMessage, StreamStatus};
use crate::ids::{MediaSessionId, SessionId};

/// WHIP and WHEP resources held at once. Each is a session with one peer (about 100–200 KiB
/// with its `Rtc`); the admission caps apply too, this bounds the table itself.
pub const WHIP_RESOURCES_MAX: usize = 10_000;

/// Directory messages queued for one WHIP/WHEP session: its watcher reads them at once, and
/// a room publisher hears its room's events (joins, streams, chat) besides its own statuses.
pub const WHIP_SESSION_MESSAGES_MAX: usize = 256;

struct Resource {
    session: SessionId,
    _ticket: SessionTicket,
}

#[derive(Default)]
pub struct WhipResources {
    by_id: Mutex<HashMap<String, Resource>>,
    /// For the logins of sessions that name none (`whip-N`, `whep-N`).
    next_login: AtomicU64,
}

impl WhipResources {
    pub fn next_login(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_login.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resource>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.table().contains_key(id)
    }

    pub fn is_full(&self) -> bool {
        self.table().len() >= WHIP_RESOURCES_MAX
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hold `session` as resource `id` and watch its messages until its stream ends.
    pub fn insert(
        self: &std::sync::Arc<Self>,
        id: String,
        session: SessionId,
        ticket: SessionTicket,
        media_session_id: MediaSessionId,
        messages: mpsc::Receiver<ServerMessage>,
        hub: SharedHub,
    ) {
        self.table().insert(
            id.clone(),
            Resource {
                session,
                _ticket: ticket,
            },
        );
        let resources = self.clone();
        tokio::spawn(watch(resources, id, session, media_session_id, messages, hub));
    }

    /// End resource `id` (a DELETE): its session closes, freeing its stream. False when no
    /// such resource.
    pub fn remove(&self, id: &str, hub: &SharedHub) -> bool {
        let Some(resource) = self.table().remove(id) else {
            return false;
        };
        lock(hub).close_session(resource.session);
        true
    }
}

/// Read the session's messages until its stream's last status (or the hub dropped the session,
/// as a drain does), then end the resource.
async fn watch(
    resources: std::sync::Arc<WhipResources>,
    id: String,
    session: SessionId,
    media_session_id: MediaSessionId,
    mut messages: mpsc::Receiver<ServerMessage>,
    hub: SharedHub,
) {
    while let Some(message) = messages.recv().await {
        if let ServerMessage::StreamStatus {
            media_session_id: of,
            status,
            info,
            ..
        } = &message
        {
            let ended = matches!(
                status,
                StreamStatus::Failed | StreamStatus::Unpublished | StreamStatus::Stopped
            );
            if *of == media_session_id && ended {
                tracing::info!(%session, resource = %id, status = status.as_str(), info = info.as_deref().unwrap_or(""), "WHIP/WHEP stream ended");
                break;
            }
        }
    }
    // A DELETE may have removed it already; closing twice is harmless.
    resources.remove(&id, &hub);
}
