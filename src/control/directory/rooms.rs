//! Room commands of the directory: join, leave, chat, and the room events they cause.
//!
//! Invariants: a login appears at most once per room; `STATE` lists the other participants in
//! join order (each published, announced stream as `{login, name}`, a participant without one as
//! its login); an empty room is removed.

use super::{Directory, EndReason, Room, SessionId};
use crate::control::signaling::protocol::{RoomEvent, ServerMessage, StateEntry};

/// Rooms one session may be in at once: the example pages use one; a few cover dashboards.
pub const SESSION_ROOMS_MAX: usize = 16;

impl Directory {
    pub(super) fn join(&mut self, id: SessionId, room_name: &str) -> Result<(), String> {
        let login = self.login_of(id).ok_or("Session is not established")?.to_owned();
        let session = self.sessions.get(&id).ok_or("Session is gone")?;
        if session.rooms.iter().any(|r| r == room_name) {
            return Err(format!("Already joined room '{room_name}'"));
        }
        if session.rooms.len() >= SESSION_ROOMS_MAX {
            return Err(format!("A session may join at most {SESSION_ROOMS_MAX} rooms"));
        }
        if let Some(room) = self.rooms.get(room_name) {
            if room.participants.len() >= self.limits.room_participants_max {
                return Err(format!(
                    "Room is full (capacity {})",
                    self.limits.room_participants_max
                ));
            }
            if room.participants.iter().any(|(l, _)| *l == login) {
                return Err(format!("Login '{login}' is already in room '{room_name}'"));
            }
        }
        let worker = self.least_loaded_worker();
        let room = self.rooms.entry(room_name.to_owned()).or_insert_with(|| Room {
            worker,
            participants: Vec::new(),
        });
        let others: Vec<SessionId> = room.participants.iter().map(|(_, s)| *s).collect();
        room.participants.push((login.clone(), id));
        if let Some(session) = self.sessions.get_mut(&id) {
            session.rooms.push(room_name.to_owned());
        }
        for other in others {
            self.send_room_event(other, room_name, RoomEvent::Joined(login.clone()));
        }
        Ok(())
    }

    /// The joiner's `STATE`: sent right after its join is accepted.
    pub(super) fn send_state(&mut self, id: SessionId, room_name: &str) {
        let Some(room) = self.rooms.get(room_name) else {
            return;
        };
        let mut entries = Vec::new();
        for (login, session) in room.participants.iter().filter(|(_, s)| *s != id) {
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

    pub(super) fn leave(&mut self, id: SessionId, room_name: &str) -> Result<(), String> {
        let session = self.sessions.get(&id).ok_or("Session is gone")?;
        if !session.rooms.iter().any(|r| r == room_name) {
            return Err(format!("Not joined to room '{room_name}'"));
        }
        let in_room: Vec<_> = session
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
        self.remove_participant(id, room_name);
        Ok(())
    }

    /// Take the session out of the room, tell the others `LEFT`, drop the room when empty.
    pub(super) fn remove_participant(&mut self, id: SessionId, room_name: &str) {
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
        if others.is_empty() {
            self.rooms.remove(room_name);
        }
        for other in others {
            self.send_room_event(other, room_name, RoomEvent::Left(login.clone()));
        }
    }

    pub(super) fn send_chat(
        &mut self,
        id: SessionId,
        room_name: &str,
        to: Option<&str>,
        text: &str,
    ) -> Result<(), String> {
        let from = self.login_of(id).ok_or("Session is not established")?.to_owned();
        let room = self
            .rooms
            .get(room_name)
            .ok_or_else(|| format!("Not joined to room '{room_name}'"))?;
        if !room.participants.iter().any(|(_, s)| *s == id) {
            return Err(format!("Not joined to room '{room_name}'"));
        }
        let recipients: Vec<SessionId> = match to {
            Some(to) => {
                let (_, session) = room
                    .participants
                    .iter()
                    .find(|(login, _)| login == to)
                    .ok_or_else(|| format!("Participant '{to}' is not in room '{room_name}'"))?;
                vec![*session]
            }
            None => room
                .participants
                .iter()
                .filter(|(_, s)| *s != id)
                .map(|(_, s)| *s)
                .collect(),
        };
        for recipient in recipients {
            let event = RoomEvent::Message {
                from: from.clone(),
                text: text.to_owned(),
            };
            self.send_room_event(recipient, room_name, event);
        }
        Ok(())
    }

    pub(super) fn send_room_event(&mut self, id: SessionId, room_name: &str, event: RoomEvent) {
        self.send(
            id,
            ServerMessage::Room {
                room: room_name.to_owned(),
                event,
            },
        );
    }

    /// Tell everyone in `room_name` but `except` about a stream event.
    pub(super) fn broadcast_room(&mut self, room_name: &str, except: SessionId, event: RoomEvent) {
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
    pub(super) fn stream_room(&self, stream: &str) -> Option<&str> {
        self.published.get(stream).and_then(|p| p.room.as_deref())
    }
}
