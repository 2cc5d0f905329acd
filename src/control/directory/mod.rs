//! The room directory: every WebSocket session, room, published stream and peer the server
//! knows, and what each protocol command does to them. Sans-IO: fed parsed frames, session
//! opens and closes, and worker notifications; it queues [`Effect`]s (frames to sessions,
//! commands to workers) that the hub carries out.
//!
//! Runs on the control thread only. Invariants: a stream name is published at most once in the
//! process; a room lives on exactly one worker and every stream published in it lives there
//! too; every peer the directory created is either in `peers` (and on its worker) or a
//! `PeerRemove` for it has been queued; a session's close frees everything it held.

mod rooms;
mod streams;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use super::signaling::protocol::{
    parse_client_frame, AppCommand, ClientMessage, ParseFailure, ServerMessage, StreamStatus,
};
use crate::peer::{PeerEnv, StreamTracks};
use crate::worker::commands::{Command, Notification, PeerId, WorkerId};

/// A WebSocket session, unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session-{}", self.0)
    }
}

/// Something the hub must do on the directory's behalf.
pub enum Effect {
    Send(SessionId, ServerMessage),
    Worker(WorkerId, Command),
}

#[derive(Debug, Clone)]
pub struct DirectoryLimits {
    pub room_participants_max: usize,
    pub session_streams_max: usize,
}

#[derive(Default)]
struct Session {
    login: Option<String>,
    /// Rooms joined, in join order.
    rooms: Vec<String>,
    /// mediaSessionId → peer, for every stream this session publishes or plays.
    streams: HashMap<String, PeerId>,
}

struct Room {
    worker: WorkerId,
    /// (login, session) in join order.
    participants: Vec<(String, SessionId)>,
}

struct Published {
    peer: PeerId,
    login: String,
    room: Option<String>,
    worker: WorkerId,
    tracks: StreamTracks,
    /// `PUBLISHING` was sent and the room told `PUBLISHED`.
    announced: bool,
    players: Vec<PeerId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerKind {
    Publisher,
    Player,
}

struct PeerInfo {
    kind: PeerKind,
    session: SessionId,
    media_session_id: String,
    stream: String,
    worker: WorkerId,
}

pub struct Directory {
    limits: DirectoryLimits,
    /// Indexed by worker: each worker's announced candidate and the shared DTLS certificate.
    envs: Vec<PeerEnv>,
    /// Peers per worker, for placing new rooms and plain streams on the least loaded one.
    worker_load: Vec<usize>,
    sessions: HashMap<SessionId, Session>,
    rooms: HashMap<String, Room>,
    published: HashMap<String, Published>,
    peers: HashMap<PeerId, PeerInfo>,
    next_peer: u64,
    effects: Vec<Effect>,
}

impl Directory {
    pub fn new(limits: DirectoryLimits, envs: Vec<PeerEnv>) -> Self {
        let workers = envs.len();
        Directory {
            limits,
            envs,
            worker_load: vec![0; workers],
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            published: HashMap::new(),
            peers: HashMap::new(),
            next_peer: 1,
            effects: Vec::new(),
        }
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
        for peer in streams {
            self.end_peer(peer, EndReason::SessionClosed);
        }
        for room in rooms {
            self.remove_participant(id, &room);
        }
        self.sessions.remove(&id);
    }

    pub fn handle_frame(&mut self, id: SessionId, text: &str, now: Instant) {
        match parse_client_frame(text) {
            Ok(message) => self.handle_message(id, message, now),
            Err(failure) => self.refuse(id, failure),
        }
    }

    fn handle_message(&mut self, id: SessionId, message: ClientMessage, now: Instant) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let established = session.login.is_some();
        match message {
            ClientMessage::Ping | ClientMessage::Pong | ClientMessage::PushLogs => {}
            ClientMessage::Connection(request) => {
                if established {
                    self.fail(id, "connection", None, "Session is already established");
                    return;
                }
                let login = request.login.unwrap_or_else(|| format!("user-{}", id.0));
                session.login = Some(login.clone());
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
            _ if !established => {
                let failure = not_established(&message);
                self.refuse(id, failure);
            }
            ClientMessage::SendData {
                operation_id,
                command,
            } => {
                let result = match &command {
                    AppCommand::Join { room, .. } => self.join(id, room),
                    AppCommand::Leave { room } => self.leave(id, room),
                    AppCommand::SendMessage { room, to, text } => {
                        self.send_chat(id, room, to.as_deref(), text)
                    }
                };
                let (accepted, info) = match result {
                    Ok(()) => (true, None),
                    Err(info) => (false, Some(info)),
                };
                self.send(
                    id,
                    ServerMessage::DataStatus {
                        operation_id,
                        accepted,
                        info,
                    },
                );
                if let (true, AppCommand::Join { room, .. }) = (accepted, &command) {
                    self.send_state(id, room);
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
    fn refuse(&mut self, id: SessionId, failure: ParseFailure) {
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
            let name = failure.stream_name.unwrap_or_default();
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

    fn send(&mut self, id: SessionId, message: ServerMessage) {
        self.effects.push(Effect::Send(id, message));
    }

    fn send_status(
        &mut self,
        id: SessionId,
        media_session_id: &str,
        name: &str,
        status: StreamStatus,
        info: Option<String>,
    ) {
        self.send(
            id,
            ServerMessage::StreamStatus {
                media_session_id: media_session_id.to_owned(),
                name: name.to_owned(),
                status,
                info,
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

    fn login_of(&self, id: SessionId) -> Option<&str> {
        self.sessions.get(&id)?.login.as_deref()
    }

    /// Worker notifications: a peer connected or ended.
    pub fn handle_notification(&mut self, notification: Notification) {
        match notification {
            Notification::PeerConnected { peer } => self.peer_connected(peer),
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
}

fn not_established(message: &ClientMessage) -> ParseFailure {
    let reason = "Session is not established: send 'connection' first".to_owned();
    let base = ParseFailure {
        message: None,
        operation_id: None,
        media_session_id: None,
        stream_name: None,
        reason,
    };
    match message {
        ClientMessage::SendData { operation_id, .. } => ParseFailure {
            operation_id: Some(operation_id.clone()),
            ..base
        },
        ClientMessage::PublishStream(r) | ClientMessage::PlayStream(r) => ParseFailure {
            media_session_id: Some(r.media_session_id.clone()),
            stream_name: Some(r.name.clone()),
            ..base
        },
        ClientMessage::UnPublishStream(r) | ClientMessage::StopStream(r) => ParseFailure {
            media_session_id: Some(r.media_session_id.clone()),
            stream_name: r.name.clone(),
            ..base
        },
        _ => base,
    }
}
