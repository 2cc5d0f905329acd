//! webcall: a thread-per-core WebRTC SFU speaking the Flashphoner WCS room protocol.
//!
//! Layers, bottom up: `ids` (identifiers every layer passes around) and `config`; the sans-IO
//! pieces `sdp` (negotiating offers into str0m `Rtc`s), `forward` (a worker's routing from
//! publishers to players), `media` ((de)packetizers, FLV, MP4, transcoders for the recorder
//! and the RTMP bridge) and `rtmp` (the RTMP protocol); `record` (writer threads); `worker` (the media threads, the only code that touches UDP) and
//! `control` (the signaling thread). `docs/architecture.md` walks through them.

pub mod auth;
pub mod config;
pub mod control;
pub mod forward;
pub mod ids;
pub mod media;
pub mod record;
pub mod rtmp;
pub mod sdp;
pub mod worker;
