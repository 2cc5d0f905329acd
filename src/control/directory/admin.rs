//! What an operator sees and does through the admin REST API: snapshots of the streams,
//! sessions and rooms (serialized as the API returns them), and the actions — end a stream or
//! a session, kick a participant from a room, mute one kind of a participant's media, lock a
//! room to new joins, close a room.
//!
//! Control thread, inside the directory. Invariants: a snapshot names no token and no address;
//! every action leaves the directory's invariants whole (it ends peers and participants the
//! way their own clients would) and tells the clients concerned in the protocol's own terms.

use serde::Serialize;

use super::{Directory, Effect, EndReason, PeerKind, SessionId};
use crate::control::signaling::protocol::{RoomEvent, ServerMessage};
use crate::ids::{Login, PeerId, RoomName, StreamName};
use crate::worker::commands::Command;

/// The login a server's own room messages come from.
pub const SERVER_LOGIN: &str = "server";

/// One stream, published or played.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    pub name: String,
    pub media_session_id: String,
    pub login: Option<String>,
    pub room: Option<String>,
    pub session_id: u64,
    /// A publisher (WCS's `published`), else a player.
    pub published: bool,
    /// `PENDING` until connected, then `PUBLISHING` or `PLAYING`.
    pub status: &'static str,
    pub audio_codec: Option<String>,
    pub video_codec: Option<String>,
    pub players: usize,
    pub record: bool,
    pub bitrate_bps: Option<u64>,
    pub bytes_received: Option<u64>,
    pub muted_audio: bool,
    pub muted_video: bool,
}

/// One session: a WebSocket or an RTMP connection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: u64,
    pub login: Option<String>,
    pub kind: &'static str,
    pub rooms: Vec<String>,
    pub streams: usize,
}

/// One room, with its participants when asked for in detail.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    pub name: String,
    pub worker: usize,
    pub locked: bool,
    pub participant_count: usize,
    pub stream_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<ParticipantView>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView {
    pub login: String,
    pub session_id: u64,
    pub hidden: bool,
    pub streams: Vec<StreamView>,
}

/// What a mute touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteKind {
    Audio,
    Video,
}

/// Why an admin action found nothing to act on; `Display` is the JSON reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("no such room")]
    NoRoom,
    #[error("no such participant in the room")]
    NoParticipant,
    #[error("the participant publishes nothing of that kind")]
    NothingToMute,
}

impl Directory {
    fn stream_view(&self, peer: PeerId) -> Option<StreamView> {
        let info = self.peers.get(&peer)?;
        let session = self.sessions.get(&info.session);
        let published = self.published.get(&info.stream);
        let is_publisher = info.kind == PeerKind::Publisher;
        let source = published.filter(|p| is_publisher || p.players.contains(&peer));
        let tracks = source.map(|p| &p.tracks);
        let status = match (is_publisher, source) {
            (true, Some(p)) if p.announced => "PUBLISHING",
            (true, _) => "PENDING",
            (false, _) => "PLAYING",
        };
        let meter = info.meter.as_deref();
        let load = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
        Some(StreamView {
            name: info.stream.to_string(),
            media_session_id: info.media_session_id.to_string(),
            login: session.and_then(|s| s.login.as_ref()).map(|l| l.to_string()),
            room: source.and_then(|p| p.room.as_ref()).map(|r| r.to_string()),
            session_id: info.session.0,
            published: is_publisher,
            status,
            audio_codec: tracks.and_then(|t| t.audio.as_ref()).map(|t| t.name.clone()),
            video_codec: tracks.and_then(|t| t.video.as_ref()).map(|t| t.name.clone()),
            players: source.filter(|_| is_publisher).map_or(0, |p| p.players.len()),
            record: is_publisher && source.is_some_and(|p| p.recording.is_some()),
            bitrate_bps: meter.map(|m| load(&m.bitrate_bps)),
            bytes_received: meter.map(|m| load(&m.bytes_received)),
            muted_audio: is_publisher && source.is_some_and(|p| p.muted_audio),
            muted_video: is_publisher && source.is_some_and(|p| p.muted_video),
        })
    }

    /// Every stream, publishers and players.
    pub fn stream_views(&self) -> Vec<StreamView> {
        self.peers
            .keys()
            .filter_map(|peer| self.stream_view(*peer))
            .collect()
    }

    /// The published stream of that name, and its players.
    pub fn stream_views_named(&self, name: &StreamName) -> Vec<StreamView> {
        let Some(published) = self.published.get(name) else {
            return Vec::new();
        };
        std::iter::once(published.peer)
            .chain(published.players.iter().copied())
            .filter_map(|peer| self.stream_view(peer))
            .collect()
    }

    pub fn session_views(&self) -> Vec<SessionView> {
        self.sessions
            .iter()
            .map(|(id, session)| SessionView {
                id: id.0,
                login: session.login.as_ref().map(|l| l.to_string()),
                kind: match (session.bridge, session.whip) {
                    (_, true) => "whip",
                    (true, false) => "rtmp",
                    (false, false) => "websocket",
                },
                rooms: session.rooms.iter().map(|r| r.to_string()).collect(),
                streams: session.streams.len(),
            })
            .collect()
    }

    fn room_view(&self, name: &RoomName, detailed: bool) -> Option<RoomView> {
        let room = self.rooms.get(name)?;
        let in_room = |p: &&super::Published| p.room.as_ref() == Some(name);
        let stream_count = self.published.values().filter(in_room).count();
        let participants = detailed.then(|| {
            room.participants
                .iter()
                .map(|(login, session)| ParticipantView {
                    login: login.to_string(),
                    session_id: session.0,
                    hidden: self.is_hidden(*session),
                    streams: self
                        .sessions
                        .get(session)
                        .map(|s| {
                            s.streams
                                .values()
                                .filter_map(|peer| self.stream_view(*peer))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        });
        Some(RoomView {
            name: name.to_string(),
            worker: room.worker.0,
            locked: room.locked,
            participant_count: room.participants.len(),
            stream_count,
            participants,
        })
    }

    pub fn room_views(&self) -> Vec<RoomView> {
        self.rooms
            .keys()
            .filter_map(|name| self.room_view(name, false))
            .collect()
    }

    pub fn room_detail(&self, name: &RoomName) -> Option<RoomView> {
        self.room_view(name, true)
    }

    /// End a published stream (its players stop); false when there is none.
    pub fn terminate_stream(&mut self, name: &StreamName) -> bool {
        let Some(peer) = self.published.get(name).map(|p| p.peer) else {
            return false;
        };
        self.end_peer(peer, EndReason::Ended("Stopped by the administrator"));
        true
    }

    /// End a session (`fail` with the reason, then its socket closes); false when none.
    pub fn terminate_session(&mut self, id: SessionId) -> bool {
        if !self.sessions.contains_key(&id) {
            return false;
        }
        self.fail(id, "connection", None, "Terminated by the administrator");
        self.disconnect(id);
        true
    }

    fn participant(&self, room: &RoomName, login: &Login) -> Result<SessionId, AdminError> {
        let room = self.rooms.get(room).ok_or(AdminError::NoRoom)?;
        room.participants
            .iter()
            .find(|(l, _)| l == login)
            .map(|(_, s)| *s)
            .ok_or(AdminError::NoParticipant)
    }

    /// Kick `login` from `room`: its session ends with `Kicked by moderator` (its token is
    /// revoked), the room hears `UNPUBLISHED` and `LEFT`.
    pub fn kick_from_room(&mut self, room: &RoomName, login: &Login) -> Result<(), AdminError> {
        self.participant(room, login)?;
        self.kick_with(login, Some(room), "Kicked by moderator");
        Ok(())
    }

    /// Stop (or resume) forwarding `kind` of every stream `login` publishes in `room`; the room
    /// gets a `MESSAGE` from [`SERVER_LOGIN`] saying so. Returns the streams touched.
    pub fn mute(
        &mut self,
        room: &RoomName,
        login: &Login,
        kind: MuteKind,
        muted: bool,
    ) -> Result<usize, AdminError> {
        let session = self.participant(room, login)?;
        let mut touched = Vec::new();
        for published in self.published.values_mut() {
            let owned = self
                .peers
                .get(&published.peer)
                .is_some_and(|i| i.session == session);
            let has_kind = match kind {
                MuteKind::Audio => published.tracks.audio.is_some(),
                MuteKind::Video => published.tracks.video.is_some(),
            };
            if owned && has_kind && published.room.as_ref() == Some(room) {
                match kind {
                    MuteKind::Audio => published.muted_audio = muted,
                    MuteKind::Video => published.muted_video = muted,
                }
                touched.push((published.worker, published.peer));
            }
        }
        if touched.is_empty() {
            return Err(AdminError::NothingToMute);
        }
        let media = match kind {
            MuteKind::Audio => str0m::media::MediaKind::Audio,
            MuteKind::Video => str0m::media::MediaKind::Video,
        };
        for (worker, publisher) in &touched {
            let command = Command::SetMuted {
                publisher: *publisher,
                kind: media,
                muted,
            };
            self.effects.push(Effect::Worker(*worker, command));
        }
        let what = if kind == MuteKind::Audio { "audio" } else { "video" };
        let done = if muted { "muted" } else { "unmuted" };
        self.server_message(room, &format!("{login}'s {what} was {done} by a moderator"));
        Ok(touched.len())
    }

    /// A `MESSAGE` from [`SERVER_LOGIN`] to everyone in the room.
    fn server_message(&mut self, room_name: &RoomName, text: &str) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let everyone: Vec<SessionId> = room.participants.iter().map(|(_, s)| *s).collect();
        for id in everyone {
            let event = RoomEvent::Message {
                from: Login::new(SERVER_LOGIN),
                text: text.to_owned(),
            };
            self.send(
                id,
                ServerMessage::Room {
                    room: room_name.clone(),
                    event,
                },
            );
        }
    }

    /// Refuse (or again admit) new joins to `room` (`Room is locked`).
    pub fn lock_room(&mut self, room: &RoomName, locked: bool) -> Result<(), AdminError> {
        let entry = self.rooms.get_mut(room).ok_or(AdminError::NoRoom)?;
        entry.locked = locked;
        Ok(())
    }

    /// Close `room`: every participant's streams there end (`Room closed`), the room says so in
    /// a `MESSAGE`, and every participant leaves it (the others hear `LEFT`). Sessions stay.
    pub fn close_room(&mut self, room: &RoomName) -> Result<usize, AdminError> {
        let participants: Vec<SessionId> = self
            .rooms
            .get(room)
            .ok_or(AdminError::NoRoom)?
            .participants
            .iter()
            .map(|(_, s)| *s)
            .collect();
        self.server_message(room, "Room closed");
        let in_room: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, info)| self.stream_room(&info.stream) == Some(room))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in in_room {
            self.end_peer(peer, EndReason::Ended("Room closed"));
        }
        for id in &participants {
            if let Some(session) = self.sessions.get_mut(id) {
                session.recorded_rooms.remove(room);
            }
            self.remove_participant(*id, room, crate::control::webhooks::LeftReason::RoomClosed);
        }
        Ok(participants.len())
    }
}

/// Counts for `/metrics`: streams by role and codec, and participants in all rooms.
#[derive(Debug, Default)]
pub struct MetricCounts {
    /// (published, codec name) → streams; a stream with audio and video counts under both.
    pub streams_by_codec: std::collections::BTreeMap<(bool, String), usize>,
    pub participants: usize,
    pub recordings_active: usize,
}

impl Directory {
    pub fn metric_counts(&self) -> MetricCounts {
        let mut counts = MetricCounts {
            participants: self.rooms.values().map(|r| r.participants.len()).sum(),
            ..MetricCounts::default()
        };
        for published in self.published.values() {
            counts.recordings_active += usize::from(published.recording.is_some());
            let tracks = [&published.tracks.audio, &published.tracks.video];
            for track in tracks.into_iter().flatten() {
                // One count for the publisher, one per player (they play its codecs).
                *counts
                    .streams_by_codec
                    .entry((true, track.name.clone()))
                    .or_default() += 1;
                *counts
                    .streams_by_codec
                    .entry((false, track.name.clone()))
                    .or_default() += published.players.len();
            }
        }
        counts
    }
}
