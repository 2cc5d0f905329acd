//! Typed configuration: command-line flags, an optional TOML file, and embedded defaults.
//!
//! Owned by `main` at start-up and shared read-only (behind an `Arc`) with the control thread and
//! every worker. Every limit is named with its unit; a value given on the command line wins over
//! the TOML file, which wins over the default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::worker::io::IoChoice;

/// Participants a room admits by default. A browser decodes one video per participant, and past
/// about 16 tiles the example pages stop fitting on a screen.
pub const ROOM_PARTICIPANTS_MAX_DEFAULT: usize = 16;
/// A stream whose peer sends nothing (no consent check, no media) for this long fails and is freed.
pub const PEER_SILENCE_TIMEOUT_SECS_DEFAULT: u64 = 30;
/// WebSocket keep-alive: the server pings each session this often.
pub const WS_PING_INTERVAL_SECS_DEFAULT: u64 = 5;
/// A session that sends nothing (not even `pong`) for this long is considered dead.
pub const WS_IDLE_TIMEOUT_SECS_DEFAULT: u64 = 20;
/// Streams (published plus played) one WebSocket session may hold: the conference page plays one
/// stream per participant and publishes two (camera and screen).
pub const SESSION_STREAMS_MAX_DEFAULT: usize = 64;

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
    /// Seconds of silence (no ICE consent, no media) after which a stream fails [default: 30]
    #[arg(long, value_name = "SECS")]
    pub peer_timeout: Option<u64>,
    /// Seconds a WebSocket session may stay silent (not even a pong) before it is closed and
    /// everything it held is freed [default: 20]
    #[arg(long, value_name = "SECS")]
    pub session_timeout: Option<u64>,
}

/// The settings a TOML file may hold; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<SocketAddr>,
    https: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    media_ip: Option<IpAddr>,
    media_port: Option<u16>,
    workers: Option<usize>,
    io: Option<String>,
    data_dir: Option<PathBuf>,
    room_capacity: Option<usize>,
    peer_timeout: Option<u64>,
    session_timeout: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub https_addr: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub media_ip: IpAddr,
    pub media_port_base: u16,
    pub workers: usize,
    pub io: IoChoice,
    pub data_dir: PathBuf,
    pub room_participants_max: usize,
    pub peer_silence_timeout: Duration,
    pub ws_ping_interval: Duration,
    pub ws_idle_timeout: Duration,
    pub session_streams_max: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("bad config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("bad value for {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let io = match (cli.io, file.io) {
            (Some(io), _) => io,
            (None, Some(text)) => {
                text.parse()
                    .map_err(|e: crate::worker::io::ParseIoChoiceError| ConfigError::Invalid {
                        field: "io",
                        reason: e.to_string(),
                    })?
            }
            (None, None) => IoChoice::Auto,
        };
        let workers = cli.workers.or(file.workers).unwrap_or_else(default_workers);
        if workers == 0 {
            return Err(ConfigError::Invalid {
                field: "workers",
                reason: "must be at least 1".into(),
            });
        }
        let media_port_base = cli.media_port.or(file.media_port).unwrap_or(31000);
        if usize::from(media_port_base) + workers > usize::from(u16::MAX) + 1 {
            return Err(ConfigError::Invalid {
                field: "media-port",
                reason: "BASE + workers exceeds 65535".into(),
            });
        }
        let room_participants_max = cli
            .room_capacity
            .or(file.room_capacity)
            .unwrap_or(ROOM_PARTICIPANTS_MAX_DEFAULT);
        if room_participants_max == 0 {
            return Err(ConfigError::Invalid {
                field: "room-capacity",
                reason: "must be at least 1".into(),
            });
        }
        let ws_idle_timeout = Duration::from_secs(
            cli.session_timeout
                .or(file.session_timeout)
                .unwrap_or(WS_IDLE_TIMEOUT_SECS_DEFAULT)
                .max(2),
        );
        // Ping often enough that a live client is heard from several times per timeout.
        let ws_ping_interval = Duration::from_secs(WS_PING_INTERVAL_SECS_DEFAULT)
            .min(ws_idle_timeout / 3)
            .max(Duration::from_millis(500));
        let media_ip = cli.media_ip.or(file.media_ip).unwrap_or_else(default_media_ip);
        if media_ip.is_unspecified() || media_ip.is_multicast() {
            return Err(ConfigError::Invalid {
                field: "media-ip",
                reason: format!(
                    "{media_ip} cannot be announced to browsers: give this host's reachable address"
                ),
            });
        }
        Ok(Config {
            http_addr: cli
                .http
                .or(file.http)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8080))),
            https_addr: cli
                .https
                .or(file.https)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8443))),
            tls_cert: cli.tls_cert.or(file.tls_cert),
            tls_key: cli.tls_key.or(file.tls_key),
            media_ip,
            media_port_base,
            workers,
            io,
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./webcall-data")),
            room_participants_max,
            peer_silence_timeout: Duration::from_secs(
                cli.peer_timeout
                    .or(file.peer_timeout)
                    .unwrap_or(PEER_SILENCE_TIMEOUT_SECS_DEFAULT)
                    .max(1),
            ),
            ws_ping_interval,
            ws_idle_timeout,
            session_streams_max: SESSION_STREAMS_MAX_DEFAULT,
        })
    }

    /// The UDP port worker `index` listens on.
    pub fn media_port(&self, index: usize) -> u16 {
        // Checked in `from_cli`: base + workers fits in a u16.
        self.media_port_base
            .saturating_add(u16::try_from(index).unwrap_or(u16::MAX))
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.into(),
        source,
    })
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The first non-loopback IPv4 address of this host, found by asking the kernel which source
/// address it would use for an outside route (no packet is sent), else 127.0.0.1.
fn default_media_ip() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?; // TEST-NET-1: never routed anywhere; connect() sends nothing.
        s.local_addr()
    });
    match probe {
        Ok(addr) if !addr.ip().is_loopback() && !addr.ip().is_unspecified() => addr.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_without_flags() {
        let config = Config::from_cli(Cli::default()).unwrap();
        assert_eq!(config.http_addr.port(), 8080);
        assert_eq!(config.https_addr.port(), 8443);
        assert_eq!(config.media_port_base, 31000);
        assert_eq!(config.room_participants_max, ROOM_PARTICIPANTS_MAX_DEFAULT);
        assert!(config.workers >= 1);
    }

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("webcall-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "media_port = 40000\nroom_capacity = 3\nio = \"mmsg\"\nworkers = 2\n",
        )
        .unwrap();
        let cli = Cli {
            config: Some(path),
            workers: Some(1),
            ..Cli::default()
        };
        let config = Config::from_cli(cli).unwrap();
        assert_eq!(config.media_port_base, 40000);
        assert_eq!(config.room_participants_max, 3);
        assert_eq!(config.workers, 1);
        assert_eq!(config.io, IoChoice::Mmsg);
    }

    #[test]
    fn an_unannounceable_media_ip_is_refused() {
        let cli = Cli {
            media_ip: Some("0.0.0.0".parse().unwrap()),
            ..Cli::default()
        };
        assert!(matches!(
            Config::from_cli(cli),
            Err(ConfigError::Invalid {
                field: "media-ip",
                ..
            })
        ));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("webcall-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "no_such_key = 1\n").unwrap();
        let cli = Cli {
            config: Some(path),
            ..Cli::default()
        };
        assert!(matches!(Config::from_cli(cli), Err(ConfigError::Parse { .. })));
    }
}
