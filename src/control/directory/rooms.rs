//! Room commands of the directory: join, leave, chat, and the room events they cause.
//!
//! Invariants: a login appears at most once per room; `STATE` lists the other participants in
//! join order (each published, announced stream as `{login, name}`, a participant without one as
//! its login); an empty room is removed.

use super::{Directory, EndReason, Room, RoomError, SessionId};
use crate::control::signaling::protocol::{RoomEvent, ServerMessage, StateEntry};
use crate::control::webhooks::{LeftReason, WebhookEvent};
use crate::ids::{Login, PeerId, RoomName};

/// Rooms one session may be in at once: the example pages use one; a few cover dashboards.
pub const SESSION_ROOMS_MAX: usize = 16;

impl Directory {
    pub(super) fn join(&mut self, id: SessionId, room_name: &RoomName) -> Result<(), RoomError> {
        let login = self.login_of(id).ok_or(RoomError::NotEstablished)?.clone();
        if self.drain_refusal().is_some() {
            return Err(RoomError::ShuttingDown);
        }
        let session = self.sessions.get(&id).ok_or(RoomError::NotEstablished)?;
        if session.rooms.contains(room_name) {
            return Err(RoomError::AlreadyJoined(room_name.clone()));
        }
        if session.rooms.len() >= SESSION_ROOMS_MAX {
            return Err(RoomError::TooManyRooms);
        }
        if let Some(room) = self.rooms.get(room_name) {
            if room.locked {
                return Err(RoomError::Locked);
            }
            if room.participants.len() >= self.limits.room_capacity {
                return Err(RoomError::Full {
                    capacity: self.limits.room_capacity,
                });
            }
            if room.participants.iter().any(|(l, _)| *l == login) {
                return Err(RoomError::LoginTaken {
                    login,
                    room: room_name.clone(),
                });
            }
        }
        let worker = self.least_loaded_worker();
        if !self.rooms.contains_key(room_name) {
            self.webhook(WebhookEvent::RoomStarted {
                room: room_name.to_string(),
            });
        }
        let room = self.rooms.entry(room_name.clone()).or_insert_with(|| Room {
            worker,
            participants: Vec::new(),
            chat_bytes: Default::default(),
            locked: false,
        });
        let others: Vec<SessionId> = room.participants.iter().map(|(_, s)| *s).collect();
        room.participants.push((login.clone(), id));
        if let Some(session) = self.sessions.get_mut(&id) {
            session.rooms.push(room_name.clone());
        }
        if self.is_hidden(id) {
            return Ok(());
        }
        self.webhook(WebhookEvent::ParticipantJoined {
            room: room_name.to_string(),
            login: login.to_string(),
            session_id: id.0,
        });
        for other in others {
            self.send_room_event(other, room_name, RoomEvent::Joined(login.clone()));
        }
        Ok(())
    }

    /// The joiner's `STATE`: sent right after its join is accepted.
    pub(super) fn send_state(&mut self, id: SessionId, room_name: &RoomName) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let mut entries = Vec::new();
        let listed = room
            .participants
            .iter()
            .filter(|(_, s)| *s != id && !self.is_hidden(*s));
        for (login, session) in listed {
            let before = entries.len();
            if let Some(streams) = self.sessions.get(session).map(|s| &s.streams) {
                for peer in streams.values() {
                    let Some(info) = self.peers.get(peer) else {
                        continue;
                    };
                    let announced = self
                        .published
                        .get(&info.stream)
                        .is_some_and(|p| p.peer == *peer && p.announced);
                    if announced {
                        entries.push(StateEntry::Stream {
                            login: login.clone(),
                            name: info.stream.clone(),
                        });
                    }
                }
            }
            if entries.len() == before {
                entries.push(StateEntry::Participant(login.clone()));
            }
        }
        self.send_room_event(id, room_name, RoomEvent::State(entries));
    }

    pub(super) fn leave(&mut self, id: SessionId, room_name: &RoomName) -> Result<(), RoomError> {
        let session = self.sessions.get(&id).ok_or(RoomError::NotEstablished)?;
        if !session.rooms.contains(room_name) {
            return Err(RoomError::NotJoined(room_name.clone()));
        }
        let in_room: Vec<PeerId> = session
            .streams
            .values()
            .filter(|peer| {
                self.peers
                    .get(peer)
                    .is_some_and(|info| self.stream_room(&info.stream) == Some(room_name))
            })
            .copied()
            .collect();
        for peer in in_room {
            self.end_peer(peer, EndReason::LeftRoom);
        }
        self.remove_participant(id, room_name, LeftReason::Left);
        Ok(())
    }

    /// Take the session out of the room, tell the others `LEFT`, drop the room when empty.
    pub(super) fn remove_participant(&mut self, id: SessionId, room_name: &RoomName, why: LeftReason) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.rooms.retain(|r| r != room_name);
        }
        let Some(room) = self.rooms.get_mut(room_name) else {
            return;
        };
        let Some(position) = room.participants.iter().position(|(_, s)| *s == id) else {
            return;
        };
        let (login, _) = room.participants.remove(position);
        let others: Vec<SessionId> = room.participants.iter().map(|(_, s)| *s).collect();
        if !self.is_hidden(id) {
            self.webhook(WebhookEvent::ParticipantLeft {
                room: room_name.to_string(),
                login: login.to_string(),
                session_id: id.0,
                reason: why,
            });
        }
        if others.is_empty() {
            self.rooms.remove(room_name);
            self.webhook(WebhookEvent::RoomFinished {
                room: room_name.to_string(),
            });
        }
        if self.is_hidden(id) {
            return;
        }
        for other in others {
            self.send_room_event(other, room_name, RoomEvent::Left(login.clone()));
        }
    }

    pub(super) fn send_chat(
        &mut self,
        id: SessionId,
        room_name: &RoomName,
        to: Option<&Login>,
        text: &str,
        now: std::time::Instant,
    ) -> Result<(), RoomError> {
        let from = self.login_of(id).ok_or(RoomError::NotEstablished)?.clone();
        self.check_chat_grant(id)?;
        let not_joined = || RoomError::NotJoined(room_name.clone());
        let room = self.rooms.get(room_name).ok_or_else(not_joined)?;
        if !room.participants.iter().any(|(_, s)| *s == id) {
            return Err(not_joined());
        }
        let recipients: Vec<SessionId> = match to {
            Some(to) => {
                let (_, session) = room
                    .participants
                    .iter()
                    .find(|(login, _)| login == to)
                    .ok_or_else(|| RoomError::NoSuchParticipant {
                        to: to.clone(),
                        room: room_name.clone(),
                    })?;
                vec![*session]
            }
            None => room
                .participants
                .iter()
                .filter(|(_, s)| *s != id)
                .map(|(_, s)| *s)
                .collect(),
        };
        self.admit_chat(id, room_name, text.len(), recipients.len(), now)?;
        for recipient in recipients {
            let event = RoomEvent::Message {
                from: from.clone(),
                text: text.to_owned(),
            };
            self.send_room_event(recipient, room_name, event);
        }
        Ok(())
    }

    pub(super) fn send_room_event(&mut self, id: SessionId, room_name: &RoomName, event: RoomEvent) {
        self.send(
            id,
            ServerMessage::Room {
                room: room_name.clone(),
                event,
            },
        );
    }

    /// Tell everyone in `room_name` but `except` about a stream event of `except`'s (nothing,
    /// when `except` is hidden: its streams are not listed either).
    pub(super) fn broadcast_room(&mut self, room_name: &RoomName, except: SessionId, event: RoomEvent) {
        if self.is_hidden(except) {
            return;
        }
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let others: Vec<SessionId> = room
            .participants
            .iter()
            .filter(|(_, s)| *s != except)
            .map(|(_, s)| *s)
            .collect();
        for other in others {
            self.send_room_event(other, room_name, event.clone());
        }
    }

    /// The room a published stream belongs to (its players are in the same room).
    pub(super) fn stream_room(&self, stream: &crate::ids::StreamName) -> Option<&RoomName> {
        self.published.get(stream).and_then(|p| p.room.as_ref())
    }
}
