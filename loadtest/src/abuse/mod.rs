//! The abuse scenario (`webcall-abuse`): hostile clients against a webcall server that this
//! module starts itself, beside a good room whose media must keep flowing.
//!
//! [`run`] starts the server (with a per-address session cap and an origin list), a good room
//! (one publisher, one player, real UDP), and a [`monitor`] that samples the server's memory,
//! the good player's packets and, every half second from 127.0.0.1, the latency of `GET
//! /health` and of a new session. Then, one after another, each bounded in time: a baseline
//! with no attack, a chat flood at receivers that never read ([`chat_flood`]), thousands of
//! sessions from one address ([`per_ip`]), idle TCP connections from two child processes
//! ([`idle_tcp`], children in [`hold_tcp`]), slowloris ([`slowloris`]) and foreign origins
//! ([`origin`]). [`AbuseReport`] holds every figure; [`AbuseReport::failures`] says which
//! threshold failed or which phase did not happen.
//!
//! Hostile traffic comes from other 127.0.0.0/8 source addresses ([`addr`]), so the server's
//! per-address caps see it as other hosts than the probes and the good room (127.0.0.1).
//! Loopback only.
//!
//! # Example
//!
//! ```no_run
//! use webcall_loadtest::abuse::{self, AbuseOptions, ChildCommand};
//!
//! # async fn example() -> webcall_loadtest::Result<()> {
//! let options = AbuseOptions::quick("target/debug/webcall", ChildCommand::this_binary()?);
//! let report = abuse::run(options).await?;
//! eprintln!("{}", report.summary());
//! assert!(report.failures().is_empty(), "{:?}", report.failures());
//! # Ok(()) }
//! ```

pub mod addr;
pub mod chat_flood;
pub mod hold_tcp;
pub mod idle_tcp;
pub mod media;
pub mod monitor;
pub mod net;
pub mod origin;
pub mod per_ip;
pub mod report;
mod run;
pub mod slowloris;

use std::path::PathBuf;
use std::time::Duration;

pub use report::AbuseReport;
pub use run::run;

use crate::error::Result;
use crate::media::VideoCodec;

/// The hidden subcommand that makes a process a [`hold_tcp`] child.
pub const HOLD_TCP_COMMAND: &str = "hold-tcp";

/// How to start a [`hold_tcp`] child: `program args... hold-tcp --bind ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before [`HOLD_TCP_COMMAND`] (a test binary re-executed as the child needs
    /// its harness's own, say `["hold_tcp_child", "--exact", "--nocapture", "--"]`).
    pub args: Vec<String>,
}

impl ChildCommand {
    /// The running executable (`webcall-abuse` itself).
    pub fn this_binary() -> Result<Self> {
        Ok(ChildCommand {
            program: std::env::current_exe()?,
            args: Vec::new(),
        })
    }
}

/// What [`run`] does and for how long.
#[derive(Debug, Clone)]
pub struct AbuseOptions {
    /// The webcall binary to start.
    pub server_bin: PathBuf,
    /// More server flags, after the ones the scenario needs.
    pub server_flags: Vec<String>,
    /// How to start the idle-TCP children.
    pub holder: ChildCommand,
    /// The good room's video codec (audio is Opus).
    pub video: VideoCodec,
    /// The phase with no attack, against which the others' loss is judged.
    pub baseline: Duration,
    /// How long the chat senders send.
    pub chat_flood: Duration,
    /// When, after the flood's sessions closed, the server's memory must be back down.
    pub chat_settle: Duration,
    /// WebSocket sessions tried from one address against its cap.
    pub per_ip_sessions: usize,
    /// Most connections each idle-TCP child opens.
    pub hold_tcp_max: usize,
    /// How long each idle-TCP child runs in all.
    pub hold_tcp_for: Duration,
    /// Slowloris connections.
    pub slowloris_connections: usize,
    /// How long slowloris connections are given to be closed by the server.
    pub slowloris_window: Duration,
}

/// The full run's durations (about two minutes).
const FULL_BASELINE: Duration = Duration::from_secs(10);
const FULL_CHAT_FLOOD: Duration = Duration::from_secs(10);
/// Long enough to see the server close idle connections at its 10 s header timeout.
const FULL_HOLD_TCP_FOR: Duration = Duration::from_secs(15);
/// The short run's (CI) durations: about a minute in all.
const QUICK_BASELINE: Duration = Duration::from_secs(4);
const QUICK_CHAT_FLOOD: Duration = Duration::from_secs(6);
const QUICK_HOLD_TCP_FOR: Duration = Duration::from_secs(5);
/// The memory threshold is defined at 10 s after the flood's sessions closed.
const CHAT_SETTLE: Duration = Duration::from_secs(10);
/// Sessions tried from one address: twenty times its cap of 100.
const PER_IP_SESSIONS: usize = 2_000;
/// Connections per idle-TCP child: just under a process's 20,000 descriptors, so the server,
/// not the child's own limit, is what stops it.
const HOLD_TCP_MAX: usize = 19_000;
/// Slowloris connections: about twice what one address may hold pending (256).
const SLOWLORIS_CONNECTIONS: usize = 500;
/// The server closes a connection whose headers are not in after 10 s: 15 s leaves it margin.
const SLOWLORIS_WINDOW: Duration = Duration::from_secs(15);

impl AbuseOptions {
    /// The full scenario.
    pub fn new(server_bin: impl Into<PathBuf>, holder: ChildCommand) -> Self {
        AbuseOptions {
            server_bin: server_bin.into(),
            server_flags: Vec::new(),
            holder,
            video: VideoCodec::H264,
            baseline: FULL_BASELINE,
            chat_flood: FULL_CHAT_FLOOD,
            chat_settle: CHAT_SETTLE,
            per_ip_sessions: PER_IP_SESSIONS,
            hold_tcp_max: HOLD_TCP_MAX,
            hold_tcp_for: FULL_HOLD_TCP_FOR,
            slowloris_connections: SLOWLORIS_CONNECTIONS,
            slowloris_window: SLOWLORIS_WINDOW,
        }
    }

    /// The same attacks with shorter baseline, flood and hold (for CI); the durations that
    /// define a threshold (memory 10 s after the flood, slowloris within 15 s) stay.
    pub fn quick(server_bin: impl Into<PathBuf>, holder: ChildCommand) -> Self {
        AbuseOptions {
            baseline: QUICK_BASELINE,
            chat_flood: QUICK_CHAT_FLOOD,
            hold_tcp_for: QUICK_HOLD_TCP_FOR,
            ..Self::new(server_bin, holder)
        }
    }
}

/// Raises this process's soft descriptor limit to its hard limit (thousands of sockets).
pub fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
