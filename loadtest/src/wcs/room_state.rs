//! [`RoomState`]: what a successful `join` returns.
//!
//! Owns the view of a room's `STATE` event: the entries in server order (never the
//! joiner itself), with helpers grouping them by participant and by stream.

use super::incoming::StateEntry;

/// The `STATE` a join returned: the other participants and their streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// Room name.
    pub room: String,
    /// The `info` entries in server order.
    pub entries: Vec<StateEntry>,
}

impl RoomState {
    /// Distinct logins of the other participants, in order of first appearance.
    pub fn participants(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            let login = match e {
                StateEntry::Participant(l) | StateEntry::Stream { login: l, .. } => l,
            };
            if !out.contains(login) {
                out.push(login.clone());
            }
        }
        out
    }

    /// Published streams as `(login, stream name)`.
    pub fn streams(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                StateEntry::Stream { login, name } => Some((login.clone(), name.clone())),
                StateEntry::Participant(_) => None,
            })
            .collect()
    }
}
