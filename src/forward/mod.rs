//! Forwarding: routing tables and per-player rewriting, sans-IO, owned by exactly one worker.

pub mod rewrite;
pub mod router;

pub use router::{IncomingRtp, OutgoingRtp, PlayerWrite, RouteError, Router};
