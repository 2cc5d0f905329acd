//! The command line and the TOML file: the same settings under the same names (`--room-capacity`
//! on the command line is `room_capacity` in the file), every one optional, so that a value
//! given on the command line wins over the file, which wins over the default.
//!
//! Parsed once at start-up by `main`. Invariant: every flag but `--config` has a field of the
//! same name in [`FileConfig`], in the README's table and in `webcall.example.toml` (a test in
//! `config/tests.rs` checks all four).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

use super::duration::SettingDuration;
use super::rtmp::{BframePolicy, ListenSetting};
use super::IoChoice;

#[derive(Debug, Parser, Default)]
#[command(args_override_self = true)]
#[command(
    name = "webcall",
    version,
    about = "A thread-per-core WebRTC SFU speaking the WCS room protocol"
)]
pub struct Cli {
    /// TOML file with any of the settings below (flag names with `_` for `-`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address for web pages, REST and ws:// signaling at path `/` [default: 0.0.0.0:8080]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Address for the same over TLS (wss://) [default: 0.0.0.0:8443]
    #[arg(long, value_name = "ADDR")]
    pub https: Option<SocketAddr>,
    /// PEM certificate chain for --https; without it a self-signed one is made in the data directory.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Address announced in ICE candidates [default: first non-loopback IPv4, else 127.0.0.1]
    #[arg(long, value_name = "IP")]
    pub media_ip: Option<IpAddr>,
    /// Worker i listens on UDP port BASE+i [default: 31000]
    #[arg(long, value_name = "BASE")]
    pub media_port: Option<u16>,
    /// Media worker threads, one per core [default: number of cores]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// UDP I/O backend: uring, mmsg or auto [default: auto]
    #[arg(long, value_name = "BACKEND")]
    pub io: Option<IoChoice>,
    /// Directory for certificates and recordings [default: ./webcall-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Participants a room admits [default: 16]
    #[arg(long, value_name = "N")]
    pub room_capacity: Option<usize>,
    /// Silence (no ICE consent, no media) after which a stream fails; seconds or 90s, 5m, 1h
    /// [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub peer_timeout: Option<SettingDuration>,
    /// Silence (not even a pong) after which a WebSocket session is closed and everything it
    /// held is freed; seconds or 90s, 5m, 1h [default: 20s]
    #[arg(long, value_name = "DURATION")]
    pub session_timeout: Option<SettingDuration>,
    /// Directory recordings are written to [default: DATA_DIR/records]
    #[arg(long, value_name = "DIR")]
    pub record_dir: Option<PathBuf>,
    /// Recording file names (plus .mp4); placeholders {streamName} {login} {room}
    /// {mediaSessionId} {sessionId} {startTime} {endTime} {duration} {videoCodec} {audioCodec}
    /// [default: stream-{mediaSessionId}-{sessionId}]
    #[arg(long, value_name = "TEMPLATE")]
    pub record_name_template: Option<String>,
    /// Put a room's recordings on one timeline: a later stream's file starts with black and
    /// silence for the time before it (WCS's enable_empty_shift_writer)
    #[arg(long)]
    pub record_room_timeline: bool,
    /// When a room's last recording ends, compose its files into one MP4 beside them
    /// (`webcall merge`, with ffmpeg)
    #[arg(long)]
    pub record_room_composite: bool,
    /// Below this many free bytes new recordings are refused and running ones stop
    /// [default: 1073741824]
    #[arg(long, value_name = "BYTES")]
    pub record_min_free_bytes: Option<u64>,
    /// A publisher that reconnects within this long continues its recording's file
    /// [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub record_resume_window: Option<SettingDuration>,
    /// File holding the bearer key of the admin REST routes; without it they answer only
    /// loopback clients
    #[arg(long, value_name = "FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// RTMP listener for encoders and players, or `off` [default: 0.0.0.0:1935]
    #[arg(long, value_name = "ADDR")]
    pub rtmp: Option<ListenSetting>,
    /// RTMPS (RTMP over TLS, with the HTTPS certificate) listener, or `off` [default: off]
    #[arg(long, value_name = "ADDR")]
    pub rtmps: Option<ListenSetting>,
    /// What an encoder's B-frames get: reject (the publish fails with the reason) or pass
    /// (sent in decode order with presentation times) [default: reject]
    #[arg(long, value_name = "POLICY")]
    pub rtmp_bframes: Option<BframePolicy>,
    /// Opus bitrate of an RTMP encoder's audio in rooms, kbit/s [default: 96]
    #[arg(long, value_name = "KBPS")]
    pub rtmp_opus_kbps: Option<u32>,
    /// RTMP connections one client address may hold [default: 32]
    #[arg(long, value_name = "N")]
    pub rtmp_connections_per_ip: Option<usize>,
}

/// The settings a TOML file may hold; every field optional, named as its flag.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub media_ip: Option<IpAddr>,
    pub media_port: Option<u16>,
    pub workers: Option<usize>,
    pub io: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub room_capacity: Option<usize>,
    pub peer_timeout: Option<SettingDuration>,
    pub session_timeout: Option<SettingDuration>,
    pub record_dir: Option<PathBuf>,
    pub record_name_template: Option<String>,
    /// Also read under WCS's name, `enable_empty_shift_writer`.
    #[serde(alias = "enable_empty_shift_writer")]
    pub record_room_timeline: Option<bool>,
    pub record_room_composite: Option<bool>,
    pub record_min_free_bytes: Option<u64>,
    pub record_resume_window: Option<SettingDuration>,
    pub admin_key_file: Option<PathBuf>,
    pub rtmp: Option<ListenSetting>,
    pub rtmps: Option<ListenSetting>,
    pub rtmp_bframes: Option<BframePolicy>,
    pub rtmp_opus_kbps: Option<u32>,
    pub rtmp_connections_per_ip: Option<usize>,
}
