//! Client of the Flashphoner WCS WebSocket room protocol, built for webcall.
//!
//! Serves two purposes: the client that webcall's integration tests drive, and the load
//! generator. Layers, bottom up:
//! - [`media`]: synthetic H.264 / VP8 / Opus / G.711 RTP payloads and a keyframe detector
//!   (pure functions);
//! - [`wcs`]: the signalling protocol: message builders and parsers (pure) and
//!   [`WcsSession`], an async WebSocket session;
//! - [`peer`]: a str0m WebRTC peer in RTP mode, sans-IO at its core ([`peer::PeerCore`])
//!   and run on its own thread for tests, with the publish and play flows on top
//!   ([`publish`], [`play`]);
//! - [`ServerProcess`]: a webcall server child on free loopback ports, for tests;
//! - [`load`]: the load generator (`webcall-loadtest`): many sans-IO peers on one thread
//!   and one UDP socket, scenarios, measurements and the JSON report;
//! - [`rtmp_play`]: a light RTMP player (`webcall-rtmp-load` runs hundreds of them), and
//!   [`rtmp_publish`]: a synthetic RTMP encoder whose pictures carry their send time;
//! - [`abuse`]: hostile clients beside a good room (`webcall-abuse`): chat floods, thousands
//!   of sessions or idle connections from one address, slowloris, foreign origins.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use webcall_loadtest::*;
//!
//! # async fn example() -> Result<()> {
//! // In webcall's own tests: ServerProcess::spawn(env!("CARGO_BIN_EXE_webcall"), &[])
//! let server = ServerProcess::spawn("target/debug/webcall", &[])?;
//! let t = Duration::from_secs(5);
//! let alice = WcsSession::connect(&server.ws_url(), "alice").await?;
//! let bob = WcsSession::connect(&server.ws_url(), "bob").await?;
//! alice.join("room1").await?;
//! let state = bob.join("room1").await?;
//! assert_eq!(state.participants(), ["alice"]);
//! let name = room_stream_name("room1", "alice");
//! let publisher = publish(&alice, PublishOptions::new(&name).room("room1")).await?;
//! bob.wait_room_event("room1", t, |e| matches!(e, RoomEventKind::Published { .. })).await?;
//! let player = play(&bob, &name, Some("room1".into()), PlayCodecs::browser()).await?;
//! player.wait_packets(Kind::Video, 30, t).await?;
//! assert!(player.received().iter().find(|p| p.kind == Kind::Video).is_some_and(|p| p.keyframe));
//! player.request_keyframe().await?;
//! publisher.wait_stats(t, |s| s.pli_received >= 1).await?;
//! assert_eq!(publisher.stop().await?.status, StreamStatus::Unpublished);
//! player.wait_status(StreamStatus::Stopped, t).await?;
//! # Ok(()) }
//! ```

pub mod abuse;
pub mod error;
pub mod load;
pub mod media;
pub mod peer;
pub mod rtmp_play;
pub mod rtmp_publish;
pub mod server;
pub mod wcs;

pub use error::{Error, Result};
pub use media::{AudioCodec, Kind, VideoCodec};
pub use peer::{
    play, publish, room_stream_name, MediaCodec, PayloadTypes, PeerState, PeerStats, PlayCodecs, PlayOptions,
    Player, PublishOptions, Publisher, ReceivedPacket,
};
pub use server::ServerProcess;
pub use wcs::{
    RawIncoming, RoomEventKind, RoomState, SessionConfig, SessionEvent, StateEntry, StreamStatus,
    StreamStatusEvent, WcsSession,
};
