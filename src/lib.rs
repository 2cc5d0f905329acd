//! webcall: a thread-per-core WebRTC SFU speaking the Flashphoner WCS room protocol.
//!
//! `control` runs signaling on one thread; `worker` runs one media thread per core; `room` and
//! `peer` are the sans-IO pieces the workers and control share.

pub mod config;
pub mod control;
pub mod peer;
pub mod room;
pub mod worker;
