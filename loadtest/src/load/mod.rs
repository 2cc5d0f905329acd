//! The load generator: many emulated browsers on one thread, against webcall or Janus.
//!
//! Layers, bottom up: [`udp`] (one shared socket, a loopback address per peer), [`slot`]
//! and [`rxstats`] (what each peer measures), [`engine`] (the thread driving every
//! [`PeerCore`](crate::peer::PeerCore)), [`signal`] (the WCS flows that hand peers to the
//! engine), [`scenario`] (livestream, meeting, audio room, pairs), [`run`] (ramp, warm-up,
//! window, `/proc` sampling) and [`report`] (JSON with stable keys, human table).
//!
//! # Example
//!
//! ```no_run
//! use webcall_loadtest::load::{self, LoadConfig};
//!
//! let mut cfg = LoadConfig::new("ws://127.0.0.1:8080/");
//! cfg.subscribers = 100;
//! let report = load::run(&cfg)?;
//! println!("{}", report.table());
//! # Ok::<(), webcall_loadtest::Error>(())
//! ```

pub mod config;
pub mod engine;
pub mod janus;
pub mod janus_api;
pub mod procstat;
pub mod report;
pub mod run;
pub mod rxstats;
pub mod scenario;
pub mod signal;
pub mod slot;
pub mod stats;
pub mod udp;

pub use config::{LoadConfig, MediaSource, Scenario, Target};
pub use report::Report;
pub use run::{run, run_async};
