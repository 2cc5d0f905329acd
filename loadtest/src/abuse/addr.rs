//! The loopback source address of each party, one host per attack.
//!
//! The server counts connections and sessions per client address; giving each attack its own
//! 127.0.0.0/8 address (all of which reach `lo` on Linux without configuration) keeps one
//! attack's counts from spilling into another's, and keeps every attack away from the probes'
//! and the good room's 127.0.0.1.

use std::net::Ipv4Addr;

/// The good room and the latency probes: the well-behaved host.
pub const GOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// The first idle-TCP child.
pub const HOLD_TCP_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The second idle-TCP child.
pub const HOLD_TCP_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
/// Thousands of WebSocket sessions against the per-address cap.
pub const PER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
/// Slowloris.
pub const SLOWLORIS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);
/// The chat flood's senders and receivers.
pub const CHAT_FLOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 7);
/// The origin checks.
pub const ORIGIN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 8);
