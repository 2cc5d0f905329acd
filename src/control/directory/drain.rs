//! The directory's part of a drain (SIGTERM, SIGINT, `POST /rest-api/server/drain`): from
//! [`Directory::begin_drain`] on, new sessions, joins and publishes are refused with
//! [`SHUTTING_DOWN`] while calls in progress go on; [`Directory::end_all_sessions`] then ends
//! every stream with an ordinary `UNPUBLISHED`/`STOPPED`, takes every participant out of its
//! rooms (the others hear `LEFT`) and closes every session with a going-away effect.
//!
//! Control thread only. Invariants: once draining, no recording waits in the resume window (a
//! publisher cannot come back to continue it), so every file is finished before the process
//! exits; after `end_all_sessions` the directory holds no session, room, stream or peer.

use super::errors::SHUTTING_DOWN;
use super::{Directory, Effect, EndReason, SessionId};
use crate::ids::PeerId;

impl Directory {
    /// Refuse new sessions, joins and publishes from now on, and finish the recordings that
    /// wait for their publisher's return.
    pub fn begin_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        let ended = std::mem::take(&mut self.ended_recordings);
        for (_, recording) in ended {
            self.effects
                .push(Effect::RecordFinish(recording.id, recording.writer_key));
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// End everything: each session's streams (`UNPUBLISHED`/`STOPPED` with `info`), its rooms
    /// (`LEFT` to whoever is still there), then the session itself (its socket closes as
    /// going away). Players go first, so each hears `STOPPED` once and with `info` (not
    /// "Stopped by publisher stop"); then the publishers.
    pub fn end_all_sessions(&mut self, info: &'static str) {
        self.begin_drain();
        let players: Vec<PeerId> = self
            .published
            .values()
            .flat_map(|p| p.players.iter().copied())
            .collect();
        for peer in players {
            self.end_peer(peer, EndReason::Ended(info));
        }
        let publishers: Vec<PeerId> = self.published.values().map(|p| p.peer).collect();
        for peer in publishers {
            self.end_peer(peer, EndReason::Ended(info));
        }
        let sessions: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in sessions {
            self.end_session(id, info);
        }
    }

    /// End one session as a drain does: its streams, its rooms, then a going-away close.
    pub(super) fn end_session(&mut self, id: SessionId, info: &'static str) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let peers: Vec<PeerId> = session.streams.values().copied().collect();
        for peer in peers {
            self.end_peer(peer, EndReason::Ended(info));
        }
        self.effects.push(Effect::GoAway(id));
        if let Some(session) = self.sessions.get_mut(&id) {
            session.closing_reason = Some(crate::control::webhooks::LeftReason::ShuttingDown);
        }
        self.close_session(id);
    }

    /// The refusal a new session, join or publish gets now, if any.
    pub(super) fn drain_refusal(&self) -> Option<&'static str> {
        self.draining.then_some(SHUTTING_DOWN)
    }
}
