//! Forwarding: each worker's table from publishers to their players, per-player RTP rewriting
//! and keyframe gating. Sans-IO and free of worker types: it sees endpoints as `PeerId`s and
//! roles only, whatever their kind, and is owned by exactly one worker.

pub mod rewrite;
pub mod router;

pub use router::{ForwardFault, IncomingRtp, OutgoingRtp, PlayerWrite, RouteError, Router};
