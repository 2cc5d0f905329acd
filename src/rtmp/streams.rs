//! A server connection's NetStreams: the ids `createStream` hands out (1, 2, …) and what each
//! stream is doing (idle, publish or play requested, publishing, playing).
//!
//! Sans-IO bookkeeping (used on the control thread's tokio runtime).
//!
//! Invariants: at most `STREAMS_PER_CONNECTION_MAX` streams exist at once; ids are never
//! reused within a connection; at most one stream is publishing or awaiting a publish
//! decision.

use super::limits::STREAMS_PER_CONNECTION_MAX;

/// What a NetStream is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role {
    Idle,
    PublishRequested { name: String },
    Publishing { name: String },
    PlayRequested { name: String },
    Playing { name: String },
}

#[derive(Debug)]
pub(super) struct StreamTable {
    streams: Vec<(u32, Role)>,
    next_id: u32,
}

impl Default for StreamTable {
    fn default() -> Self {
        Self {
            streams: Vec::new(),
            next_id: 1,
        }
    }
}

impl StreamTable {
    /// A new idle stream's id, or `None` at the limit.
    pub(super) fn create(&mut self) -> Option<u32> {
        if self.streams.len() >= STREAMS_PER_CONNECTION_MAX {
            return None;
        }
        let id = self.next_id;
        self.next_id = id.checked_add(1)?;
        self.streams.push((id, Role::Idle));
        Some(id)
    }

    /// Removes a stream, returning what it was doing.
    pub(super) fn delete(&mut self, id: u32) -> Option<Role> {
        let index = self.streams.iter().position(|(sid, _)| *sid == id)?;
        Some(self.streams.swap_remove(index).1)
    }

    pub(super) fn role(&self, id: u32) -> Option<&Role> {
        self.streams
            .iter()
            .find(|(sid, _)| *sid == id)
            .map(|(_, role)| role)
    }

    /// Sets a stream's role, returning the previous one (`None`: no such stream).
    pub(super) fn set_role(&mut self, id: u32, role: Role) -> Option<Role> {
        let slot = self.streams.iter_mut().find(|(sid, _)| *sid == id)?;
        Some(std::mem::replace(&mut slot.1, role))
    }

    /// Whether some stream publishes or awaits a publish decision.
    pub(super) fn any_publisher(&self) -> bool {
        self.streams
            .iter()
            .any(|(_, role)| matches!(role, Role::PublishRequested { .. } | Role::Publishing { .. }))
    }

    /// Whether a publish or play request awaits the owner's decision.
    pub(super) fn any_request(&self) -> bool {
        self.streams
            .iter()
            .any(|(_, role)| matches!(role, Role::PublishRequested { .. } | Role::PlayRequested { .. }))
    }

    pub(super) fn is_publishing(&self, id: u32) -> bool {
        matches!(self.role(id), Some(Role::Publishing { .. }))
    }

    pub(super) fn is_playing(&self, id: u32) -> bool {
        matches!(self.role(id), Some(Role::Playing { .. }))
    }

    /// The stream that publishes, if any.
    pub(super) fn publisher(&self) -> Option<u32> {
        self.streams
            .iter()
            .find(|(_, role)| matches!(role, Role::Publishing { .. }))
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_up_and_the_table_is_capped() {
        let mut table = StreamTable::default();
        let ids: Vec<u32> = (0..STREAMS_PER_CONNECTION_MAX)
            .filter_map(|_| table.create())
            .collect();
        assert_eq!(ids, (1..=STREAMS_PER_CONNECTION_MAX as u32).collect::<Vec<_>>());
        assert_eq!(table.create(), None);
        assert_eq!(table.delete(3), Some(Role::Idle));
        assert_eq!(table.create(), Some(STREAMS_PER_CONNECTION_MAX as u32 + 1));
        table.set_role(1, Role::Publishing { name: "a".into() });
        assert!(table.any_publisher() && table.is_publishing(1) && !table.any_request());
        assert_eq!(table.publisher(), Some(1));
        assert_eq!(table.set_role(99, Role::Idle), None);
    }
}
