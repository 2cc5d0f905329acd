//! Typed configuration: command-line flags, an optional TOML file, and embedded defaults.
//!
//! Owned by `main` at start-up and shared read-only (behind an `Arc`) with the control thread and
//! every worker. Every setting has one name, from the flag (`--room-capacity`) to the TOML key
//! (`room_capacity`) to the field of [`Config`]; every limit is named with its unit; a value
//! given on the command line wins over the TOML file, which wins over the default.

mod access;
mod cli;
mod duration;
mod ice;
mod rtmp;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use access::{
    AuthChoice, DuplicateLogin, HookFailureChoice, Origin, OriginList, HOOK_TIMEOUT_DEFAULT,
    MAX_SESSIONS_DEFAULT,
};
pub use cli::{Cli, FileConfig};
pub use duration::{ParseDurationError, SettingDuration};
pub use ice::{IceServer, ICE_SERVER_FIELD_BYTES_MAX};
pub use rtmp::{
    BframePolicy, ListenSetting, RTMP_CONNECTIONS_PER_IP_DEFAULT, RTMP_DEFAULT, RTMP_OPUS_KBPS_DEFAULT,
};

/// Participants a room admits by default. A browser decodes one video per participant, and past
/// about 16 tiles the example pages stop fitting on a screen.
pub const ROOM_CAPACITY_DEFAULT: usize = 16;
/// A stream whose peer sends nothing (no consent check, no media) for this long fails and is freed.
pub const PEER_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// The shortest `--peer-timeout`: browsers send a consent check every few seconds.
pub const PEER_TIMEOUT_MIN: Duration = Duration::from_secs(1);
/// WebSocket keep-alive: the server pings each session this often (less when the session
/// timeout is short, so a live client is heard from several times per timeout).
pub const SESSION_PING_INTERVAL_MAX: Duration = Duration::from_secs(5);
/// A session that sends nothing (not even `pong`) for this long is considered dead.
pub const SESSION_TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);
/// The shortest `--session-timeout`: a ping and its pong must fit in it several times.
pub const SESSION_TIMEOUT_MIN: Duration = Duration::from_secs(2);
/// Streams (published plus played) one WebSocket session may hold: the conference page plays one
/// stream per participant and publishes two (camera and screen).
pub const SESSION_STREAMS_MAX_DEFAULT: usize = 64;
/// Recording stops below this much free disk by default: room for a minute of a hundred
/// streams, and for the system's own needs.
pub const RECORD_MIN_FREE_BYTES_DEFAULT: u64 = 1 << 30;
/// A publisher that reconnects within this long continues its recording (browsers rejoin
/// within a few seconds after a network change).
pub const RECORD_RESUME_WINDOW_DEFAULT: Duration = Duration::from_secs(10);
/// The recording file name template by default (WCS's naming).
pub const RECORD_NAME_TEMPLATE_DEFAULT: &str = "stream-{mediaSessionId}-{sessionId}";
/// An admin key shorter than this is refused: it must not be guessable.
pub const ADMIN_KEY_BYTES_MIN: usize = 16;
/// How long calls in progress may go on after a drain begins, by default: long enough for a
/// person to finish a sentence and a recording's last fragment to close, short enough for a
/// rolling restart of many hosts.
pub const DRAIN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// The log filter without `--log-level` or `RUST_LOG`.
pub const LOG_LEVEL_DEFAULT: &str = "info,str0m=warn,dimpl=warn";
/// The first worker's UDP port by default.
pub const MEDIA_PORT_DEFAULT: u16 = 31000;

/// The UDP I/O backend asked for: `--io uring|mmsg|auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoChoice {
    /// io_uring where the kernel allows it, else `recvmmsg`/`sendmmsg`.
    #[default]
    Auto,
    Uring,
    Mmsg,
}

impl fmt::Display for IoChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoChoice::Auto => "auto",
            IoChoice::Uring => "uring",
            IoChoice::Mmsg => "mmsg",
        })
    }
}

/// An `--io` value that is none of `uring`, `mmsg`, `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown I/O backend {0:?}: expected uring, mmsg or auto")]
pub struct ParseIoChoiceError(pub String);

impl FromStr for IoChoice {
    type Err = ParseIoChoiceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(IoChoice::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(IoChoice::Uring),
            "mmsg" => Ok(IoChoice::Mmsg),
            _ => Err(ParseIoChoiceError(s.to_owned())),
        }
    }
}

/// The settings in effect. Fields are named as their flags.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub media_ip: IpAddr,
    /// Worker `i` listens on UDP `media_port + i`.
    pub media_port: u16,
    pub workers: usize,
    pub io: IoChoice,
    pub data_dir: PathBuf,
    pub room_capacity: usize,
    pub peer_timeout: Duration,
    pub session_timeout: Duration,
    /// Derived from `session_timeout`, not a setting of its own.
    pub session_ping_interval: Duration,
    /// Not a setting: [`SESSION_STREAMS_MAX_DEFAULT`].
    pub session_streams_max: usize,
    pub record_dir: PathBuf,
    /// Checked when the recorder starts (`record::template`).
    pub record_name_template: String,
    pub record_room_timeline: bool,
    pub record_room_composite: bool,
    pub record_min_free_bytes: u64,
    pub record_resume_window: Duration,
    pub admin_key_file: Option<PathBuf>,
    /// The key read from `admin_key_file`.
    pub admin_key: Option<String>,
    /// RTMP listener (None: off).
    pub rtmp: Option<SocketAddr>,
    /// RTMPS listener, with the HTTPS certificate (None: off).
    pub rtmps: Option<SocketAddr>,
    pub rtmp_bframes: BframePolicy,
    pub rtmp_opus_kbps: u32,
    pub rtmp_connections_per_ip: usize,
    pub auth: AuthChoice,
    /// Required with `--auth jwt`; read by `auth::JwtVerifier`.
    pub jwt_key: Option<PathBuf>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub duplicate_login: DuplicateLogin,
    pub hook_url: Option<String>,
    pub hook_timeout: Duration,
    pub hook_failure: HookFailureChoice,
    pub hook_secret_file: Option<PathBuf>,
    /// The secret read from `hook_secret_file`.
    pub hook_secret: Option<Vec<u8>>,
    /// Empty: any origin (with a warning at start).
    pub allowed_origins: Vec<Origin>,
    pub max_sessions: usize,
    /// 0: no cap.
    pub max_sessions_per_ip: usize,
    pub drain_timeout: Duration,
    pub webhook_url: Vec<String>,
    /// STUN/TURN servers named to WHIP and WHEP clients in `Link` headers.
    pub ice_servers: Vec<IceServer>,
    pub webhook_secret_file: Option<PathBuf>,
    /// The secret read from `webhook_secret_file`.
    pub webhook_secret: Option<Vec<u8>>,
    /// None: `RUST_LOG`, else [`LOG_LEVEL_DEFAULT`].
    pub log_level: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot read --{flag} {path}: {source}")]
    ReadSecret {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("bad value for {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let io = match (cli.io, file.io) {
            (Some(io), _) => io,
            (None, Some(text)) => text
                .parse()
                .map_err(|e: ParseIoChoiceError| invalid("io", e.to_string()))?,
            (None, None) => IoChoice::Auto,
        };
        let workers = cli.workers.or(file.workers).unwrap_or_else(default_workers);
        if workers == 0 {
            return Err(invalid("workers", "must be at least 1"));
        }
        let media_port = cli.media_port.or(file.media_port).unwrap_or(MEDIA_PORT_DEFAULT);
        if usize::from(media_port) + workers > usize::from(u16::MAX) + 1 {
            return Err(invalid("media-port", "BASE + workers exceeds 65535"));
        }
        let room_capacity = cli
            .room_capacity
            .or(file.room_capacity)
            .unwrap_or(ROOM_CAPACITY_DEFAULT);
        if room_capacity == 0 {
            return Err(invalid("room-capacity", "must be at least 1"));
        }
        let duration = |flag: Option<SettingDuration>, file: Option<SettingDuration>, default| {
            flag.or(file).map_or(default, |d| d.0)
        };
        let session_timeout = duration(cli.session_timeout, file.session_timeout, SESSION_TIMEOUT_DEFAULT)
            .max(SESSION_TIMEOUT_MIN);
        let session_ping_interval = SESSION_PING_INTERVAL_MAX
            .min(session_timeout / 3)
            .max(Duration::from_millis(500));
        let peer_timeout =
            duration(cli.peer_timeout, file.peer_timeout, PEER_TIMEOUT_DEFAULT).max(PEER_TIMEOUT_MIN);
        let media_ip = cli.media_ip.or(file.media_ip).unwrap_or_else(default_media_ip);
        if media_ip.is_unspecified() || media_ip.is_multicast() {
            return Err(invalid(
                "media-ip",
                format!("{media_ip} cannot be announced to browsers: give this host's reachable address"),
            ));
        }
        let data_dir = cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./webcall-data"));
        let record_dir = cli
            .record_dir
            .or(file.record_dir)
            .unwrap_or_else(|| data_dir.join("records"));
        let admin_key_file = cli.admin_key_file.or(file.admin_key_file);
        let admin_key = match &admin_key_file {
            Some(path) => Some(read_admin_key(path)?),
            None => None,
        };
        let rtmp_default = ListenSetting(RTMP_DEFAULT.parse().ok());
        let rtmp_opus_kbps = cli
            .rtmp_opus_kbps
            .or(file.rtmp_opus_kbps)
            .unwrap_or(RTMP_OPUS_KBPS_DEFAULT);
        if !rtmp::RTMP_OPUS_KBPS_RANGE.contains(&rtmp_opus_kbps) {
            return Err(invalid("rtmp-opus-kbps", "must be within 6..=510"));
        }
        let rtmp_connections_per_ip = cli
            .rtmp_connections_per_ip
            .or(file.rtmp_connections_per_ip)
            .unwrap_or(RTMP_CONNECTIONS_PER_IP_DEFAULT);
        let auth = cli.auth.or(file.auth).unwrap_or_default();
        let jwt_key = cli.jwt_key.or(file.jwt_key);
        if auth == AuthChoice::Jwt && jwt_key.is_none() {
            return Err(invalid("auth", "--auth jwt needs --jwt-key FILE"));
        }
        let hook_secret_file = cli.hook_secret_file.or(file.hook_secret_file);
        let hook_secret = match &hook_secret_file {
            Some(path) => Some(read_secret(path, "hook-secret-file")?),
            None => None,
        };
        let hook_url = cli.hook_url.or(file.hook_url);
        if let Some(url) = &hook_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("hook-url", "must be an http:// or https:// URL"));
            }
        }
        let max_sessions = cli
            .max_sessions
            .or(file.max_sessions)
            .unwrap_or(MAX_SESSIONS_DEFAULT);
        if max_sessions == 0 {
            return Err(invalid("max-sessions", "must be at least 1"));
        }
        let webhook_url = if cli.webhook_url.is_empty() {
            file.webhook_url.unwrap_or_default()
        } else {
            cli.webhook_url
        };
        if let Some(url) = webhook_url
            .iter()
            .find(|url| !(url.starts_with("http://") || url.starts_with("https://")))
        {
            return Err(invalid(
                "webhook-url",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        let webhook_secret_file = cli.webhook_secret_file.or(file.webhook_secret_file);
        let webhook_secret = match &webhook_secret_file {
            Some(path) => Some(read_secret(path, "webhook-secret-file")?),
            None => None,
        };
        let log_level = cli.log_level.or(file.log_level);
        if let Some(filter) = &log_level {
            if let Err(error) = tracing_subscriber::EnvFilter::try_new(filter) {
                return Err(invalid("log-level", error.to_string()));
            }
        }
        let ice_servers = if cli.ice_server.is_empty() {
            file.ice_server.unwrap_or_default()
        } else {
            cli.ice_server
        };
        Ok(Config {
            ice_servers,
            drain_timeout: duration(cli.drain_timeout, file.drain_timeout, DRAIN_TIMEOUT_DEFAULT),
            webhook_url,
            webhook_secret_file,
            webhook_secret,
            log_level,
            auth,
            jwt_key,
            jwt_issuer: cli.jwt_issuer.or(file.jwt_issuer),
            jwt_audience: cli.jwt_audience.or(file.jwt_audience),
            duplicate_login: cli.duplicate_login.or(file.duplicate_login).unwrap_or_default(),
            hook_url,
            hook_timeout: duration(cli.hook_timeout, file.hook_timeout, HOOK_TIMEOUT_DEFAULT),
            hook_failure: cli.hook_failure.or(file.hook_failure).unwrap_or_default(),
            hook_secret_file,
            hook_secret,
            allowed_origins: cli
                .allowed_origins
                .map(|list| list.0)
                .or(file.allowed_origins)
                .unwrap_or_default(),
            max_sessions,
            max_sessions_per_ip: cli.max_sessions_per_ip.or(file.max_sessions_per_ip).unwrap_or(0),
            rtmp: cli.rtmp.or(file.rtmp).unwrap_or(rtmp_default).0,
            rtmps: cli.rtmps.or(file.rtmps).and_then(|l| l.0),
            rtmp_bframes: cli
                .rtmp_bframes
                .or(file.rtmp_bframes)
                .unwrap_or(BframePolicy::Reject),
            rtmp_opus_kbps,
            rtmp_connections_per_ip,
            http: cli
                .http
                .or(file.http)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8080))),
            https: cli
                .https
                .or(file.https)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8443))),
            tls_cert: cli.tls_cert.or(file.tls_cert),
            tls_key: cli.tls_key.or(file.tls_key),
            media_ip,
            media_port,
            workers,
            io,
            data_dir,
            room_capacity,
            peer_timeout,
            session_timeout,
            session_ping_interval,
            session_streams_max: SESSION_STREAMS_MAX_DEFAULT,
            record_dir,
            record_name_template: cli
                .record_name_template
                .or(file.record_name_template)
                .unwrap_or_else(|| RECORD_NAME_TEMPLATE_DEFAULT.to_owned()),
            record_room_timeline: cli.record_room_timeline || file.record_room_timeline.unwrap_or(false),
            record_room_composite: cli.record_room_composite || file.record_room_composite.unwrap_or(false),
            record_min_free_bytes: cli
                .record_min_free_bytes
                .or(file.record_min_free_bytes)
                .unwrap_or(RECORD_MIN_FREE_BYTES_DEFAULT),
            record_resume_window: duration(
                cli.record_resume_window,
                file.record_resume_window,
                RECORD_RESUME_WINDOW_DEFAULT,
            ),
            admin_key_file,
            admin_key,
        })
    }

    /// The Opus bitrate of an encoder's audio, in bits per second.
    pub fn rtmp_opus_bps(&self) -> u32 {
        self.rtmp_opus_kbps.saturating_mul(1000)
    }

    /// The UDP port worker `index` listens on.
    pub fn worker_port(&self, index: usize) -> u16 {
        // Checked in `from_cli`: base + workers fits in a u16.
        self.media_port
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

/// The admin key: the file's first line, trimmed.
fn read_admin_key(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadSecret {
        flag: "admin-key-file",
        path: path.into(),
        source,
    })?;
    let key = text.lines().next().unwrap_or_default().trim().to_owned();
    if key.len() < ADMIN_KEY_BYTES_MIN {
        return Err(invalid(
            "admin-key-file",
            format!("the key must have at least {ADMIN_KEY_BYTES_MIN} characters"),
        ));
    }
    Ok(key)
}

/// A secret file's bytes, surrounding whitespace trimmed; at least [`ADMIN_KEY_BYTES_MIN`].
fn read_secret(path: &Path, field: &'static str) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::ReadSecret {
        flag: field,
        path: path.into(),
        source,
    })?;
    let secret = bytes.trim_ascii().to_vec();
    if secret.len() < ADMIN_KEY_BYTES_MIN {
        return Err(invalid(
            field,
            format!("the secret must have at least {ADMIN_KEY_BYTES_MIN} bytes"),
        ));
    }
    Ok(secret)
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
