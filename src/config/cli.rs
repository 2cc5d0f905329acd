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

use super::access::{AuthChoice, DuplicateLogin, HookFailureChoice, Origin, OriginList};
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
    /// Who may connect: none (anyone, with a warning at start) or jwt (a token signed with
    /// --jwt-key in `custom.token`, `?token=` or `Authorization: Bearer`) [default: none]
    #[arg(long, value_name = "MODE")]
    pub auth: Option<AuthChoice>,
    /// The token key for --auth jwt: an HS256 secret (the file's bytes, whitespace trimmed,
    /// at least 32) or an RS256/ES256/EdDSA public key in PEM
    #[arg(long, value_name = "FILE")]
    pub jwt_key: Option<PathBuf>,
    /// The `iss` every token must carry
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` every token must carry
    #[arg(long, value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// A second session with a login already connected: kick-old closes the older one,
    /// reject-new refuses the newer [default: kick-old]
    #[arg(long, value_name = "POLICY")]
    pub duplicate_login: Option<DuplicateLogin>,
    /// The application's hooks: before connect, joinRoom, publishStream, playStream and
    /// sendMessage the server POSTs the action's JSON to URL/<method>
    #[arg(long, value_name = "URL")]
    pub hook_url: Option<String>,
    /// How long a hook may take to answer; seconds or 500ms, 5s [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub hook_timeout: Option<SettingDuration>,
    /// What an action gets when the hook cannot answer: allow or deny [default: deny]
    #[arg(long, value_name = "POLICY")]
    pub hook_failure: Option<HookFailureChoice>,
    /// File with the secret that signs hook requests (`Authorization: HMAC-SHA256 <hex>`)
    #[arg(long, value_name = "FILE")]
    pub hook_secret_file: Option<PathBuf>,
    /// Browser origins allowed to open a WebSocket or call the REST API, comma-separated
    /// scheme://host[:port]; the server's own origin is always allowed [default: any]
    #[arg(long, value_name = "ORIGINS")]
    pub allowed_origins: Option<OriginList>,
    /// WebSocket sessions the server holds at once [default: 50000]
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,
    /// WebSocket sessions one client address may hold, 0 for no cap [default: 0]
    #[arg(long, value_name = "N")]
    pub max_sessions_per_ip: Option<usize>,
    /// On SIGTERM, SIGINT or POST /rest-api/server/drain, how long calls in progress may go on
    /// before every session is ended; seconds or 90s, 5m [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub drain_timeout: Option<SettingDuration>,
    /// Operator webhooks: room, participant, stream, recording and RTMP events are POSTed to
    /// URL (repeat the flag for several)
    #[arg(long, value_name = "URL")]
    pub webhook_url: Vec<String>,
    /// A STUN or TURN server told to WHIP/WHEP clients in `Link` headers (repeat for several):
    /// stun:HOST:PORT, or turn:HOST:PORT?transport=udp;username=NAME;credential=SECRET
    #[arg(long, value_name = "URL")]
    pub ice_server: Vec<super::IceServer>,
    /// File with the secret that signs webhook requests (`Authorization: HMAC-SHA256 <hex>`)
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Log filter (tracing's EnvFilter syntax), reloaded on SIGHUP [default: RUST_LOG, else
    /// info,str0m=warn,dimpl=warn]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
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
    pub auth: Option<AuthChoice>,
    pub jwt_key: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub duplicate_login: Option<DuplicateLogin>,
    pub hook_url: Option<String>,
    pub hook_timeout: Option<SettingDuration>,
    pub hook_failure: Option<HookFailureChoice>,
    pub hook_secret_file: Option<PathBuf>,
    /// A TOML array of origins.
    pub allowed_origins: Option<Vec<Origin>>,
    pub max_sessions: Option<usize>,
    pub max_sessions_per_ip: Option<usize>,
    pub drain_timeout: Option<SettingDuration>,
    /// A TOML array of URLs.
    pub webhook_url: Option<Vec<String>>,
    /// A TOML array of `--ice-server` values.
    pub ice_server: Option<Vec<super::IceServer>>,
    pub webhook_secret_file: Option<PathBuf>,
    pub log_level: Option<String>,
}
