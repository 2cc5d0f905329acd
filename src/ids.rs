//! Identifiers passed between threads and modules, one newtype each, so that a room name is
//! never handed where a stream name is expected and no module reaches into another's layer
//! for an id.
//!
//! Plain data, used on every thread. Invariants: numeric ids are assigned by the control
//! thread and never reused within a process; name ids hold text that the signaling parser
//! already checked (non-empty, at most `NAME_BYTES_MAX` bytes, no control characters), so
//! building one from client text happens only there (or in tests).

use std::borrow::Borrow;
use std::fmt;

/// One peer connection (one stream's `Rtc`) or, later, another endpoint kind of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

/// A media worker thread's index: worker `i` listens on UDP port `BASE + i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerId(pub usize);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker-{}", self.0)
    }
}

/// One WebSocket signaling session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session-{}", self.0)
    }
}

/// One recording (a publisher's stream into one file); a reconnect that continues the file
/// gets a new id that the writer attaches to the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId(pub u64);

impl fmt::Display for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recording-{}", self.0)
    }
}

/// A text id: owns its `String`, displays and borrows as `str` (so a map keyed by it is
/// searched with a `&str`; the derived `Hash`/`Ord` are those of the text).
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: impl Into<String>) -> Self {
                $name(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(text.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name(text)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id!(
    /// A room's name (`join {name}`, a stream's `custom.name`).
    RoomName
);
text_id!(
    /// A published stream's name: unique in the process while it is published.
    StreamName
);
text_id!(
    /// The client's id for one of its streams (`mediaSessionId`, a UUID in the SDK).
    MediaSessionId
);
text_id!(
    /// A participant's login (`custom.login` of `connection`).
    Login
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn text_ids_are_found_by_str() {
        let mut rooms = BTreeMap::new();
        rooms.insert(RoomName::new("r1"), 1);
        assert_eq!(rooms.get("r1"), Some(&1));
        assert_eq!(RoomName::new("r1"), "r1");
        assert_eq!(RoomName::new("r1").to_string(), "r1");
    }

    #[test]
    fn numeric_ids_display_with_their_kind() {
        assert_eq!(PeerId(3).to_string(), "peer-3");
        assert_eq!(WorkerId(1).to_string(), "worker-1");
        assert_eq!(SessionId(7).to_string(), "session-7");
    }
}
