//! The directory's invariants (listed in `mod.rs`) as a check that walks every map: run after
//! each step of the simulation and of the directory's own tests, never on the server's hot
//! path (it is linear in what the directory holds).

use super::{Directory, PeerKind};

/// The first invariant found broken, described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directory invariant broken: {0}")]
pub struct InvariantBroken(pub String);

impl Directory {
    /// Every invariant of the module header, or the first one broken.
    pub fn check(&self) -> Result<(), InvariantBroken> {
        self.check_all().map_err(InvariantBroken)
    }

    fn check_all(&self) -> Result<(), String> {
        let mut load = vec![0usize; self.worker_load.len()];
        for (id, session) in &self.sessions {
            for (msid, peer) in &session.streams {
                let info = self
                    .peers
                    .get(peer)
                    .ok_or_else(|| format!("{id} lists stream {msid} as {peer}, which is gone"))?;
                if info.session != *id || info.media_session_id != *msid {
                    return Err(format!(
                        "{peer} is listed by {id} as {msid} but belongs elsewhere"
                    ));
                }
            }
            for room_name in &session.rooms {
                let room = self
                    .rooms
                    .get(room_name)
                    .ok_or_else(|| format!("{id} lists room {room_name}, which is gone"))?;
                if !room.participants.iter().any(|(_, s)| s == id) {
                    return Err(format!("{id} lists room {room_name} but is not a participant"));
                }
            }
        }
        for (peer, info) in &self.peers {
            let session = self
                .sessions
                .get(&info.session)
                .ok_or_else(|| format!("{peer} outlived its {}", info.session))?;
            if session.streams.get(&info.media_session_id) != Some(peer) {
                return Err(format!("{peer} is missing from its session's streams"));
            }
            let published = self.published.get(&info.stream);
            match info.kind {
                PeerKind::Publisher => {
                    if published.map(|p| p.peer) != Some(*peer) {
                        return Err(format!("publisher {peer} is not what {} names", info.stream));
                    }
                }
                PeerKind::Player => {
                    if !published.is_some_and(|p| p.players.contains(peer)) {
                        return Err(format!("player {peer} outlived the publisher of {}", info.stream));
                    }
                }
            }
            if let Some(count) = load.get_mut(info.worker.0) {
                *count += 1;
            }
        }
        if load != self.worker_load {
            return Err(format!(
                "worker load {:?} but peers give {load:?}",
                self.worker_load
            ));
        }
        for (name, published) in &self.published {
            let info = self
                .peers
                .get(&published.peer)
                .ok_or_else(|| format!("stream {name} outlived its publisher {}", published.peer))?;
            if info.worker != published.worker {
                return Err(format!(
                    "stream {name} and its publisher are on different workers"
                ));
            }
            if let Some(room_name) = &published.room {
                let room = self
                    .rooms
                    .get(room_name)
                    .ok_or_else(|| format!("stream {name} outlived its room {room_name}"))?;
                if room.worker != published.worker {
                    return Err(format!("stream {name} is not on its room's worker"));
                }
            }
            for player in &published.players {
                let player_info = self
                    .peers
                    .get(player)
                    .ok_or_else(|| format!("stream {name} lists {player}, which is gone"))?;
                if player_info.kind != PeerKind::Player || player_info.stream != *name {
                    return Err(format!(
                        "stream {name} lists {player}, which plays something else"
                    ));
                }
            }
        }
        for (room_name, room) in &self.rooms {
            if room.participants.is_empty() {
                return Err(format!("room {room_name} is empty but kept"));
            }
            for (index, (login, session)) in room.participants.iter().enumerate() {
                let member = self
                    .sessions
                    .get(session)
                    .ok_or_else(|| format!("room {room_name} lists {session}, which is gone"))?;
                if member.login.as_ref() != Some(login) || !member.rooms.contains(room_name) {
                    return Err(format!("room {room_name} lists {session} as {login} wrongly"));
                }
                if room.participants.iter().skip(index + 1).any(|(l, _)| l == login) {
                    return Err(format!("login {login} is twice in room {room_name}"));
                }
            }
        }
        Ok(())
    }
}
