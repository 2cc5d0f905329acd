//! The WCS WebSocket room protocol: message shapes and the async session.
//!
//! `messages` builds client frames, `incoming` parses server frames (both pure),
//! `session` is the tokio session over one socket, `dispatch` its internals.

mod dispatch;
pub mod incoming;
pub mod messages;
mod room_state;
pub mod session;

pub use dispatch::{RawIncoming, SessionEvent};
pub use incoming::{
    DataStatus, RoomEvent, RoomEventKind, ServerMessage, StateEntry, StreamStatus, StreamStatusEvent,
};
pub use messages::{ConnectionOptions, APP_DEFAULT, APP_ROOM};
pub use session::{RoomState, SessionConfig, WcsSession};
