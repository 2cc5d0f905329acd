//! Who may do what: a session's grants (from its token, or everything under `--auth none`),
//! checked on every command rather than only at connect; one session per login
//! (`--duplicate-login`); hidden participants; kicks; and the chat rate caps.
//!
//! Runs on the control thread, inside the directory. Invariants: a session acts only within
//! its grants — it joins only a granted room, publishes only granted sources, plays only in a
//! granted room, chats only with `canPublishData`, records only with `roomRecord`; at most one
//! established WebSocket session holds a login; a kicked session's token id is handed to the hub
//! ([`Effect::Revoke`]) before the session is closed, so a reconnect with it is refused.

use std::time::{Duration, Instant};

use super::{Directory, Effect, RoomError, SessionId, StreamError};
use crate::auth::{Grants, RoomGrant};
use crate::config::DuplicateLogin;
use crate::control::signaling::protocol::{ConnectionRequest, ServerMessage};
use crate::ids::{Login, RoomName};
use crate::sdp::StreamTracks;

/// Chat messages one session may send per second: a person types a few; a client sending
/// more is a script, and its fan-out is what fills every receiver's output.
pub const CHAT_MESSAGES_PER_SECOND_PER_SENDER: u32 = 20;
/// Chat bytes a room may deliver per second, counted once per recipient: 16 participants
/// exchanging 2 KiB messages twice a second each is 1 MiB; 4 MiB leaves room for bursts while a
/// flood of 16 KiB messages to 15 receivers is cut to a fraction of what they could be sent.
pub const CHAT_DELIVERED_BYTES_PER_SECOND_PER_ROOM: u64 = 4 * 1024 * 1024;
/// A one-second window counting messages or bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RateWindow {
    start: Option<Instant>,
    used: u64,
}

impl RateWindow {
    /// Whether `amount` more fits in the window at `now` under `cap`; counted when it does.
    pub(super) fn admit(&mut self, now: Instant, amount: u64, cap: u64) -> bool {
        let fresh = self
            .start
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if fresh {
            self.start = Some(now);
            self.used = 0;
        }
        if self.used.saturating_add(amount) > cap {
            return false;
        }
        self.used = self.used.saturating_add(amount);
        true
    }
}

/// A token's identity to deny from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub jti: String,
    pub expires_unix: u64,
}

impl Directory {
    fn grants(&self, id: SessionId) -> Option<&Grants> {
        self.sessions.get(&id)?.grants.as_ref()
    }

    /// A `connection` the hub admitted (its token verified into `grants`).
    pub fn connect(&mut self, id: SessionId, request: ConnectionRequest, grants: Grants) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        if session.login.is_some() {
            self.fail(id, "connection", None, "Session is already established");
            return;
        }
        if let Some(refusal) = self.drain_refusal() {
            return self.refuse_connection(id, refusal);
        }
        let login = grants.login.clone();
        if let Some(&holder) = self.logins.get(&login) {
            match self.limits.duplicate_login {
                DuplicateLogin::RejectNew => {
                    let info = format!("Login '{login}' is already connected");
                    return self.refuse_connection(id, &info);
                }
                DuplicateLogin::KickOld => {
                    let info = "Replaced by a new session with the same login";
                    self.fail(holder, "connection", None, info);
                    self.disconnect(holder);
                }
            }
        }
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.login = Some(login.clone());
        session.grants = Some(grants);
        session.wcs_id = super::recording::wcs_session_id();
        self.logins.insert(login.clone(), id);
        let auth_token = uuid::Uuid::new_v4().to_string();
        self.send(
            id,
            ServerMessage::UserData {
                login,
                auth_token,
                app_key: request.app_key,
            },
        );
    }

    /// Refuse a `connection` with `info` and close the session (the SDK reports the close).
    pub fn refuse_connection(&mut self, id: SessionId, info: &str) {
        self.fail(id, "connection", None, info);
        self.disconnect(id);
    }

    /// Close a session the directory decided to end: its outbox goes (the task closes the
    /// socket after the frames already queued) and everything it held is freed.
    pub(super) fn disconnect(&mut self, id: SessionId) {
        self.effects.push(Effect::Disconnect(id));
        self.close_session(id);
    }

    /// Kick `login` (from `room`, when given: only if it is there): its session is closed and its
    /// token's id revoked. False when no such participant.
    pub fn kick(&mut self, login: &Login, room: Option<&RoomName>) -> bool {
        self.kick_with(login, room, "Kicked by the administrator")
    }

    /// [`Directory::kick`] with the reason the session's `fail` carries.
    pub(super) fn kick_with(&mut self, login: &Login, room: Option<&RoomName>, info: &str) -> bool {
        let holder = match room {
            Some(room) => self
                .rooms
                .get(room)
                .and_then(|r| r.participants.iter().find(|(l, _)| l == login))
                .map(|(_, s)| *s),
            None => self.logins.get(login).copied(),
        };
        let Some(holder) = holder else {
            return false;
        };
        let revocation = self.grants(holder).and_then(|g| {
            let jti = g.jti.clone()?;
            Some(Revocation {
                jti,
                expires_unix: g.expires_unix.unwrap_or(u64::MAX),
            })
        });
        if let Some(revocation) = revocation {
            self.effects.push(Effect::Revoke(revocation));
        }
        self.fail(holder, "connection", None, info);
        if let Some(session) = self.sessions.get_mut(&holder) {
            session.closing_reason = Some(crate::control::webhooks::LeftReason::Kicked);
        }
        self.disconnect(holder);
        true
    }

    pub(super) fn check_join_grant(
        &self,
        id: SessionId,
        room: &RoomName,
        record: bool,
    ) -> Result<(), RoomError> {
        let Some(grants) = self.grants(id) else {
            return Ok(());
        };
        if !grants.allows_room(room) {
            return Err(RoomError::RestrictedAccess);
        }
        if record && !grants.room_record {
            return Err(RoomError::RecordingRestricted);
        }
        Ok(())
    }

    pub(super) fn check_chat_grant(&self, id: SessionId) -> Result<(), RoomError> {
        match self.grants(id) {
            Some(grants) if !grants.can_publish_data => Err(RoomError::RestrictedAccess),
            _ => Ok(()),
        }
    }

    /// Whether the stream's room (or, for a stream outside rooms, any room) is granted.
    fn allows_stream_room(grants: &Grants, room: Option<&RoomName>) -> bool {
        match room {
            Some(room) => grants.allows_room(room),
            None => grants.room_join && matches!(grants.room, RoomGrant::Any),
        }
    }

    pub(super) fn check_publish_grant(
        &self,
        id: SessionId,
        name: &str,
        room: Option<&RoomName>,
        tracks: &StreamTracks,
        record: bool,
    ) -> Result<(), StreamError> {
        let Some(grants) = self.grants(id) else {
            return Ok(());
        };
        if !Self::allows_stream_room(grants, room) {
            return Err(StreamError::RestrictedAccess);
        }
        let sources = Grants::stream_sources(name, tracks.audio.is_some(), tracks.video.is_some());
        if !sources.into_iter().all(|s| grants.allows_source(s)) {
            return Err(StreamError::RestrictedAccess);
        }
        if record && !grants.room_record {
            return Err(StreamError::RecordingRestricted);
        }
        Ok(())
    }

    pub(super) fn check_play_grant(
        &self,
        id: SessionId,
        stream_room: Option<&RoomName>,
    ) -> Result<(), StreamError> {
        let Some(grants) = self.grants(id) else {
            return Ok(());
        };
        if !grants.can_subscribe || !Self::allows_stream_room(grants, stream_room) {
            return Err(StreamError::RestrictedAccess);
        }
        Ok(())
    }

    /// Hidden participants (recorders, moderators) are not listed to others.
    pub(super) fn is_hidden(&self, id: SessionId) -> bool {
        self.grants(id).is_some_and(|g| g.hidden)
    }

    /// Charge a chat message against its sender's and its room's rates.
    pub(super) fn admit_chat(
        &mut self,
        id: SessionId,
        room: &RoomName,
        text_bytes: usize,
        recipients: usize,
        now: Instant,
    ) -> Result<(), RoomError> {
        let per_sender = u64::from(CHAT_MESSAGES_PER_SECOND_PER_SENDER);
        let delivered = u64::try_from(text_bytes.saturating_mul(recipients)).unwrap_or(u64::MAX);
        let sender_ok = self
            .sessions
            .get_mut(&id)
            .is_some_and(|s| s.chat_rate.admit(now, 1, per_sender));
        if !sender_ok {
            return Err(RoomError::ChatRate);
        }
        let room_ok = self.rooms.get_mut(room).is_some_and(|r| {
            r.chat_bytes
                .admit(now, delivered, CHAT_DELIVERED_BYTES_PER_SECOND_PER_ROOM)
        });
        if !room_ok {
            return Err(RoomError::ChatRate);
        }
        Ok(())
    }
}
