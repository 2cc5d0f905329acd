//! The client WebRTC peer (str0m, RTP mode) and the publish / play flows.
//!
//! Layers: [`core::PeerCore`] is one sans-IO peer connection (offer, answer, media clock,
//! receive log); `driver` runs one core on its own thread and UDP socket for tests;
//! `stream` ties a driver to a WCS stream's signalling; [`Publisher`] and [`Player`] are
//! the two roles tests use. A load generator can drive many `PeerCore`s from one loop.

pub mod codecs;
pub mod core;
mod driver;
pub mod loss;
mod outgoing;
pub mod pacer;
pub mod player;
pub mod publisher;
pub mod recorder;
pub(crate) mod stream;

pub use codecs::{MediaCodec, PayloadTypes, PlayCodecs};
pub use core::{install_crypto_provider, PeerCore, PeerOutput, PeerState, PublisherMedia};
pub use driver::CLOSE_DRAIN;
pub use outgoing::{LoadProfile, KEYFRAME_INTERVAL};
pub use player::{play, PlayOptions, Player};
pub use publisher::{publish, room_stream_name, PublishOptions, Publisher};
pub use recorder::{PeerStats, ReceivedPacket, TapPacket};
