//! The room directory: every WebSocket session, room, published stream and peer the server
//! knows, and what each protocol command does to them. Sans-IO: fed parsed frames, session
//! opens and closes, and worker notifications; it queues [`Effect`]s (frames to sessions,
//! commands to workers) that the hub carries out.
//!
//! Runs on the control thread only. Maps are ordered (`BTreeMap`) so that what the directory
//! does for a given input sequence is the same every time (the simulation relies on it) and no
//! client-chosen name can degrade a hash table. Invariants (checked by [`Directory::check`]):
//! a stream name is published at most once in the process; a room lives on exactly one worker
//! and every stream published in it lives there too; every peer the directory created is in
//! `peers`, in its session's streams and counted in its worker's load, or a `PeerRemove` for it
//! has been queued and it is in none of them; a publisher's players are exactly the player
//! peers of its stream; a room's participants are sessions that list the room; a session's
//! close frees everything it held.

mod access;
mod admin;
mod bridge;
mod drain;
mod errors;
mod invariants;
mod recording;
mod rooms;
mod streams;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

pub use access::{Revocation, CHAT_DELIVERED_BYTES_PER_SECOND_PER_ROOM, CHAT_MESSAGES_PER_SECOND_PER_SENDER};
pub use admin::{
    AdminError, MetricCounts, MuteKind, ParticipantView, RoomView, SessionView, StreamView, SERVER_LOGIN,
};
pub use bridge::{BridgeSource, IngestStarted};
pub use errors::{RoomError, StreamError, SHUTTING_DOWN};
pub use invariants::InvariantBroken;
pub use recording::{RecordPolicy, RecordStart, RecordingError, StreamSelector};

use super::signaling::protocol::{
    parse_client_frame, AppCommand, ClientMessage, ParseFailure, ServerMessage, StreamStatus,
};
use crate::control::webhooks::{LeftReason, WebhookEvent};
use crate::ids::{Login, MediaSessionId, PeerId, RecordingId, RoomName, SessionId, StreamName, WorkerId};
use crate::sdp::{PeerEnv, StreamTracks};
use crate::worker::commands::{Command, Notification};

/// Something the hub must do on the directory's behalf.
pub enum Effect {
    Send(SessionId, ServerMessage),
    Worker(WorkerId, Command),
    /// Open a recording on a writer and add its tap to the publisher's worker.
    RecordStart(Box<RecordStart>),
    /// Finish a recording now, not after the resume window (it was stopped on purpose). The
    /// string picks the writer, as in `RecordStart::writer_key`.
    RecordFinish(RecordingId, String),
    /// The session was closed by the directory (an RTMP encoder's stale connection taken
    /// over by its reconnect): drop its outbox so its task ends the connection.
    Disconnect(SessionId),
    /// A kicked session's token id: deny it from now until it expires.
    Revoke(Revocation),
    /// The server is going away: send the frames queued so far, then close the WebSocket with
    /// 1001 "Going Away" (an RTMP connection just ends). The session is already closed here.
    GoAway(SessionId),
    /// Tell the operator's webhooks (rooms, participants, streams).
    Webhook(crate::control::webhooks::WebhookEvent),
}

#[derive(Debug, Clone)]
pub struct DirectoryLimits {
    pub room_capacity: usize,
    pub session_streams_max: usize,
    pub duplicate_login: crate::config::DuplicateLogin,
}

#[derive(Default)]
struct Session {
    login: Option<Login>,
    /// Rooms joined, in join order.
    rooms: Vec<RoomName>,
    /// Every stream this session publishes or plays, by the client's id for it.
    streams: BTreeMap<MediaSessionId, PeerId>,
    /// WCS's form of a session id, for `{sessionId}` in recording names.
    wcs_id: String,
    /// Rooms joined with `record: true`: every stream published there records.
    recorded_rooms: BTreeSet<RoomName>,
    /// An RTMP connection or a WHIP/WHEP resource (a newer one with its login or stream name
    /// takes over from it; as a viewer it names its room instead of joining).
    bridge: bool,
    /// A WHIP/WHEP resource (a WebRTC peer, not an RTMP connection: no FLV to pass through).
    whip: bool,
    /// What the session may do; set at `connection` (or when an RTMP connection opens).
    grants: Option<crate::auth::Grants>,
    chat_rate: access::RateWindow,
    /// Why its rooms hear it leave when it closes (set by a kick or a drain; else it
    /// disconnected).
    closing_reason: Option<LeftReason>,
}

struct Room {
    worker: WorkerId,
    /// (login, session) in join order.
    participants: Vec<(Login, SessionId)>,
    chat_bytes: access::RateWindow,
    /// A moderator locked it: new joins get `Room is locked`.
    locked: bool,
}

struct Published {
    peer: PeerId,
    login: Login,
    room: Option<RoomName>,
    worker: WorkerId,
    tracks: StreamTracks,
    /// `PUBLISHING` was sent and the room told `PUBLISHED`.
    announced: bool,
    players: Vec<PeerId>,
    recording: Option<recording::ActiveRecording>,
    /// A recording that failed before `PUBLISHING`: that status carries why.
    recording_failure: Option<String>,
    /// A moderator muted that kind: the worker does not forward it.
    muted_audio: bool,
    muted_video: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerKind {
    Publisher,
    Player,
}

struct PeerInfo {
    kind: PeerKind,
    session: SessionId,
    media_session_id: MediaSessionId,
    stream: StreamName,
    worker: WorkerId,
    /// A publisher's received bytes and bitrate, as its worker reports them.
    meter: Option<std::sync::Arc<crate::worker::commands::PeerMeter>>,
}

pub struct Directory {
    limits: DirectoryLimits,
    /// Indexed by worker: each worker's announced candidate and the shared DTLS certificate.
    envs: Vec<PeerEnv>,
    /// Peers per worker, for placing new rooms and plain streams on the least loaded one.
    worker_load: Vec<usize>,
    sessions: BTreeMap<SessionId, Session>,
    /// Established WebSocket sessions by login (`--duplicate-login` keeps one per login).
    logins: BTreeMap<Login, SessionId>,
    rooms: BTreeMap<RoomName, Room>,
    published: BTreeMap<StreamName, Published>,
    peers: BTreeMap<PeerId, PeerInfo>,
    next_peer: u64,
    effects: Vec<Effect>,
    record_policy: Option<RecordPolicy>,
    next_recording: u64,
    /// Recordings whose publisher left, by (room, login), for a return within the window.
    ended_recordings: BTreeMap<(Option<RoomName>, Login), recording::EndedRecording>,
    /// A drain began: no new session, join or publish (`drain.rs`).
    draining: bool,
}

impl Directory {
    pub fn new(limits: DirectoryLimits, envs: Vec<PeerEnv>) -> Self {
        let workers = envs.len();
        Directory {
            limits,
            envs,
            worker_load: vec![0; workers],
            sessions: BTreeMap::new(),
            logins: BTreeMap::new(),
            rooms: BTreeMap::new(),
            published: BTreeMap::new(),
            peers: BTreeMap::new(),
            next_peer: 1,
            effects: Vec::new(),
            record_policy: None,
            next_recording: 1,
            ended_recordings: BTreeMap::new(),
            draining: false,
        }
    }

    /// A new `--room-capacity` (SIGHUP): rooms already fuller keep who they have.
    pub fn set_room_capacity(&mut self, capacity: usize) {
        self.limits.room_capacity = capacity;
    }

    /// Effects queued since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub fn open_session(&mut self, id: SessionId) {
        self.sessions.insert(id, Session::default());
    }

    /// The session's socket closed or its keep-alive lapsed: free everything it held.
    pub fn close_session(&mut self, id: SessionId) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let streams: Vec<PeerId> = session.streams.values().copied().collect();
        let rooms = session.rooms.clone();
        let why = session.closing_reason.unwrap_or(LeftReason::Disconnected);
        for peer in streams {
            self.end_peer(peer, EndReason::SessionClosed);
        }
        for room in rooms {
            self.remove_participant(id, &room, why);
        }
        if let Some(login) = self.sessions.remove(&id).and_then(|s| s.login) {
            if self.logins.get(&login) == Some(&id) {
                self.logins.remove(&login);
            }
        }
    }

    pub fn handle_frame(&mut self, id: SessionId, text: &str, now: Instant) {
        match parse_client_frame(text) {
            Ok(message) => self.handle_message(id, message, now),
            Err(failure) => self.refuse(id, failure),
        }
    }

    /// A parsed client frame (the hub verifies `connection` itself and calls [`Directory::connect`]).
    pub fn handle_message(&mut self, id: SessionId, message: ClientMessage, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let established = session.login.is_some();
        match message {
            ClientMessage::Ping | ClientMessage::Pong | ClientMessage::PushLogs => {}
            ClientMessage::Connection(request) => {
                // Without a hub (the directory's own tests), a connection is `--auth none`'s.
                let login = request
                    .login
                    .clone()
                    .unwrap_or_else(|| Login::new(format!("user-{}", id.0)));
                self.connect(id, request, crate::auth::Grants::everything(login));
            }
            _ if !established => {
                let failure = not_established(&message);
                self.refuse(id, failure);
            }
            ClientMessage::SendData {
                operation_id,
                command,
            } => {
                let result = match &command {
                    AppCommand::Join { room, record } => self
                        .check_join_grant(id, room, *record)
                        .and_then(|()| self.join(id, room)),
                    AppCommand::Leave { room } => self.leave(id, room),
                    AppCommand::SendMessage { room, to, text } => {
                        self.send_chat(id, room, to.as_ref(), text, now)
                    }
                };
                let (accepted, info) = match result {
                    Ok(()) => (true, None),
                    Err(error) => (false, Some(error.to_string())),
                };
                self.send(
                    id,
                    ServerMessage::DataStatus {
                        operation_id,
                        accepted,
                        info,
                    },
                );
                match (accepted, &command) {
                    (true, AppCommand::Join { room, record }) => {
                        if *record {
                            if let Some(session) = self.sessions.get_mut(&id) {
                                session.recorded_rooms.insert(room.clone());
                            }
                        }
                        self.send_state(id, room);
                    }
                    (true, AppCommand::Leave { room }) => {
                        if let Some(session) = self.sessions.get_mut(&id) {
                            session.recorded_rooms.remove(room);
                        }
                    }
                    _ => {}
                }
            }
            ClientMessage::PublishStream(request) => self.publish(id, request, now),
            ClientMessage::PlayStream(request) => self.play(id, request, now),
            ClientMessage::UnPublishStream(stream) | ClientMessage::StopStream(stream) => {
                self.stop_by_client(id, &stream.media_session_id)
            }
        }
    }

    /// Answer a frame we could not act on, in the protocol's own terms.
    pub fn refuse(&mut self, id: SessionId, failure: ParseFailure) {
        if let Some(operation_id) = failure.operation_id {
            self.send(
                id,
                ServerMessage::DataStatus {
                    operation_id,
                    accepted: false,
                    info: Some(failure.reason),
                },
            );
        } else if let Some(media_session_id) = failure.media_session_id {
            let name = failure.stream_name.unwrap_or_else(|| StreamName::new(""));
            self.send_status(
                id,
                &media_session_id,
                &name,
                StreamStatus::Failed,
                Some(failure.reason),
            );
        } else {
            let api_method = failure.message.unwrap_or_else(|| "unknown".to_owned());
            self.fail(id, &api_method, None, &failure.reason);
        }
    }

    fn fail(&mut self, id: SessionId, api_method: &str, target: Option<String>, info: &str) {
        self.send(
            id,
            ServerMessage::Fail {
                api_method: api_method.to_owned(),
                id: target,
                info: info.to_owned(),
            },
        );
    }

    fn webhook(&mut self, event: WebhookEvent) {
        self.effects.push(Effect::Webhook(event));
    }

    fn send(&mut self, id: SessionId, message: ServerMessage) {
        self.effects.push(Effect::Send(id, message));
    }

    fn send_status(
        &mut self,
        id: SessionId,
        media_session_id: &MediaSessionId,
        name: &StreamName,
        status: StreamStatus,
        info: Option<String>,
    ) {
        self.send(
            id,
            ServerMessage::StreamStatus {
                media_session_id: media_session_id.clone(),
                name: name.clone(),
                status,
                info,
                record_name: None,
            },
        );
    }

    fn least_loaded_worker(&self) -> WorkerId {
        let index = self
            .worker_load
            .iter()
            .enumerate()
            .min_by_key(|(_, load)| **load)
            .map_or(0, |(i, _)| i);
        WorkerId(index)
    }

    /// The login a session connected with, once it has.
    pub fn session_login(&self, id: SessionId) -> Option<&Login> {
        self.login_of(id)
    }

    fn login_of(&self, id: SessionId) -> Option<&Login> {
        self.sessions.get(&id)?.login.as_ref()
    }

    /// Worker notifications: a peer connected or ended.
    pub fn handle_notification(&mut self, notification: Notification) {
        match notification {
            Notification::PeerConnected { peer } => self.peer_connected(peer),
            Notification::PeerFailed { peer, failure } if failure.is_ordinary() => {
                self.end_peer(peer, EndReason::Ended(failure.info()))
            }
            Notification::PeerFailed { peer, failure } => {
                self.end_peer(peer, EndReason::Failed(failure.info()))
            }
        }
    }

    /// Counts for logs and tests.
    pub fn counts(&self) -> DirectoryCounts {
        DirectoryCounts {
            sessions: self.sessions.len(),
            rooms: self.rooms.len(),
            published: self.published.len(),
            peers: self.peers.len(),
        }
    }

    /// Every peer the directory holds, with the worker it lives on.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, WorkerId)> + '_ {
        self.peers.iter().map(|(peer, info)| (*peer, info.worker))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirectoryCounts {
    pub sessions: usize,
    pub rooms: usize,
    pub published: usize,
    pub peers: usize,
}

/// Why a peer ends, which decides the statuses sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    /// `unPublishStream` / `stopStream` from its own session.
    ClientStop,
    SessionClosed,
    /// The session left the room the stream was in.
    LeftRoom,
    /// The publisher of a played stream went.
    PublisherGone,
    /// A worker ended it, with the WCS `info` text.
    Failed(&'static str),
    /// The server ended it on purpose (a drain, an operator's terminate or room close): an
    /// ordinary `UNPUBLISHED`/`STOPPED` with this `info`.
    Ended(&'static str),
}

impl EndReason {
    /// The `reason` of a `stream_unpublished` webhook.
    fn webhook_reason(self) -> &'static str {
        match self {
            EndReason::ClientStop => "unpublished",
            EndReason::SessionClosed => "disconnected",
            EndReason::LeftRoom => "left the room",
            EndReason::PublisherGone => "publisher gone",
            EndReason::Failed(text) | EndReason::Ended(text) => text,
        }
    }
}

fn not_established(message: &ClientMessage) -> ParseFailure {
    ParseFailure::of(message, "Session is not established: send 'connection' first")
}
