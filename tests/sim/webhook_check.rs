//! The webhook events the directory emits, checked as they come: a room starts before anyone
//! joins it and finishes only when empty; every `participant_left` follows its
//! `participant_joined`; nobody joins a room twice.

use std::collections::{BTreeMap, BTreeSet};

use webcall::control::webhooks::WebhookEvent;

#[derive(Default)]
pub struct WebhookCheck {
    /// Open rooms and the sessions in each.
    rooms: BTreeMap<String, BTreeSet<u64>>,
    pub events: usize,
    broken: Option<String>,
}

impl WebhookCheck {
    pub fn see(&mut self, event: &WebhookEvent) {
        self.events += 1;
        if self.broken.is_some() {
            return;
        }
        let problem = match event {
            WebhookEvent::RoomStarted { room } => {
                (self.rooms.insert(room.clone(), BTreeSet::new()).is_some())
                    .then(|| format!("{room} started twice"))
            }
            WebhookEvent::RoomFinished { room } => match self.rooms.remove(room) {
                None => Some(format!("{room} finished without starting")),
                Some(inside) if !inside.is_empty() => Some(format!("{room} finished with {inside:?} inside")),
                Some(_) => None,
            },
            WebhookEvent::ParticipantJoined { room, session_id, .. } => match self.rooms.get_mut(room) {
                None => Some(format!("session {session_id} joined {room} before it started")),
                Some(inside) => {
                    (!inside.insert(*session_id)).then(|| format!("session {session_id} joined {room} twice"))
                }
            },
            WebhookEvent::ParticipantLeft { room, session_id, .. } => {
                let left = self
                    .rooms
                    .get_mut(room)
                    .is_some_and(|inside| inside.remove(session_id));
                (!left).then(|| format!("session {session_id} left {room} without joining"))
            }
            _ => None,
        };
        self.broken = problem;
    }

    pub fn verdict(&self) -> Result<(), String> {
        match &self.broken {
            Some(problem) => Err(format!("webhooks: {problem}")),
            None => Ok(()),
        }
    }
}
