//! Shared helpers of the integration tests: a webcall server per test on free loopback ports,
//! the I/O backend matrix, `/health`, raw protocol exchanges and the checks made on the RTP a
//! player received.
//!
//! Each test starts its own [`Server`] (its own ports, data directory and log), so tests run
//! concurrently. Every wait has a deadline ([`T`] unless said otherwise); nothing sleeps and
//! hopes, except where traffic must flow for a measured interval.

#![allow(dead_code)]

pub mod http_request;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webcall_loadtest::server::{free_tcp, free_udp_range};
use webcall_loadtest::wcs::messages::{ConnectionOptions, APP_DEFAULT};
use webcall_loadtest::{
    AudioCodec, Kind, MediaCodec, Player, RawIncoming, ReceivedPacket, SessionConfig, VideoCodec, WcsSession,
};

/// Deadline of one protocol step (an answer, a status, an event, some packets).
pub const T: Duration = Duration::from_secs(10);

/// A UDP I/O backend of the media workers (`--io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    Uring,
    Mmsg,
}

impl Io {
    /// The `--io` value.
    pub fn arg(self) -> &'static str {
        match self {
            Io::Uring => "uring",
            Io::Mmsg => "mmsg",
        }
    }
}

/// One `#[tokio::test]` per I/O backend around `async fn story(io: Io)`:
/// `backends!(story => story_uring, story_mmsg);`. Test binaries whose stories do not depend on
/// the backend (tokens, hooks) do without it.
#[allow(unused_macros)]
macro_rules! backends {
    ($story:ident => $uring:ident, $mmsg:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $uring() {
            $story($crate::support::Io::Uring).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $mmsg() {
            $story($crate::support::Io::Mmsg).await
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backends;

/// A unique room or stream name.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// The server's `/health` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub sessions: u64,
    pub rooms: u64,
    pub published: u64,
    pub peers: u64,
}

impl Health {
    pub const ZERO: Health = Health {
        sessions: 0,
        rooms: 0,
        published: 0,
        peers: 0,
    };
}

/// Ports are picked by binding port 0 and releasing it just before the child binds it; this
/// lock keeps two tests of one binary from picking the same ones in between.
static STARTING: Mutex<()> = Mutex::new(());

/// A webcall child process on loopback. Dropping it kills the child (by its own id) and
/// removes its data directory; if the test is failing, the log is kept and its tail printed
/// (with `WEBCALL_KEEP_LOGS` set, every log is kept).
pub struct Server {
    child: Child,
    pub http: SocketAddr,
    /// Worker `i` listens on `media_port + i`.
    pub media_port: u16,
    pub workers: u16,
    pub io: Io,
    dir: PathBuf,
    /// Leave the directory (a killed server restarts in it).
    keep: bool,
}

impl Server {
    /// Starts `webcall --io IO --workers N` plus `extra` flags; returns once the HTTP port
    /// accepts connections and every worker logged its socket open with the chosen backend.
    pub fn start(io: Io, workers: u16, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("webcall-it-{}", uuid::Uuid::new_v4().simple()));
        Self::start_in(dir, io, workers, extra, &[])
    }

    /// Start in data directory `dir` (a restart keeps its recordings), with `env` set.
    pub fn start_in(dir: PathBuf, io: Io, workers: u16, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let _starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = String::new();
        // A port taken by another process between the probe and the bind fails the start
        // loudly; try fresh ports a couple of times before giving up.
        for _ in 0..3 {
            match Self::try_start(&dir, io, workers, extra, env) {
                Ok(server) => return server,
                Err(why) => last = why,
            }
        }
        panic!("webcall did not start: {last}");
    }

    fn try_start(
        dir: &Path,
        io: Io,
        workers: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let (http, https) = (
            free_tcp().map_err(|e| e.to_string())?,
            free_tcp().map_err(|e| e.to_string())?,
        );
        let media_port = free_udp_range(workers).map_err(|e| e.to_string())?;
        let child = Command::new(env!("CARGO_BIN_EXE_webcall"))
            .args(["--http", &http.to_string(), "--https", &https.to_string()])
            // Loopback unless a test names another (libnice, under webrtcbin, pairs no
            // loopback candidates).
            .args(if extra.contains(&"--media-ip") {
                &[][..]
            } else {
                &["--media-ip", "127.0.0.1"][..]
            })
            .args(["--media-port", &media_port.to_string()])
            .args(["--workers", &workers.to_string(), "--io", io.arg()])
            .arg("--data-dir")
            .arg(&dir)
            .args(extra)
            // `stop()` must not wait the default 30 s for calls still open: a short drain
            // unless a test sets its own.
            .args(if extra.contains(&"--drain-timeout") {
                &[][..]
            } else {
                &["--drain-timeout", "2s"][..]
            })
            // Parallel servers cannot all take RTMP's default port: off unless a test asks.
            .args(if extra.contains(&"--rtmp") {
                &[][..]
            } else {
                &["--rtmp", "off"][..]
            })
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut server = Server {
            child,
            http,
            media_port,
            workers,
            io,
            dir,
            keep: false,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("exited with {status}: {}", server.log_tail(20)));
            }
            let opened = server
                .log()
                .lines()
                .filter(|l| l.contains("worker UDP socket open"))
                .count();
            if opened >= usize::from(workers)
                && TcpStream::connect_timeout(&http, Duration::from_millis(200)).is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("not listening after 15 s: {}", server.log_tail(20)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let wanted = format!("backend={}", io.arg());
        let opened: Vec<String> = server
            .log()
            .lines()
            .filter(|l| l.contains("worker UDP socket open"))
            .map(str::to_owned)
            .collect();
        assert!(
            opened.iter().all(|l| l.contains(&wanted)),
            "every worker runs the {} backend: {opened:?}",
            io.arg()
        );
        Ok(server)
    }

    /// The data directory (recordings are in `records/` under it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stop with SIGTERM (a clean stop: recordings are finished) and wait for the exit.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid with a plain signal number.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send `signal` (SIGTERM, SIGINT, SIGHUP) without waiting.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid with a plain signal number.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Wait for the process to exit, at most `timeout`: its status, or None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill with SIGKILL (a crash) and wait for the exit; the directory stays.
    pub fn kill9(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.dir.clone();
        self.keep = true;
        dir
    }

    /// `METHOD path` with `headers` and `body` on the HTTP port: (status, headers, body).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut tcp = tokio::net::TcpStream::connect(self.http)
            .await
            .expect("connect for HTTP");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.http,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.expect("send the request");
        tcp.write_all(body).await.expect("send the body");
        let mut response = Vec::new();
        tokio::time::timeout(T, tcp.read_to_end(&mut response))
            .await
            .expect("the server answers in time")
            .expect("read the answer");
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, head, response[split + 4..].to_vec())
    }

    /// The signalling WebSocket URL (`/`, as WCS serves it).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.http)
    }

    /// Every worker's UDP address.
    pub fn worker_addrs(&self) -> Vec<SocketAddr> {
        (0..self.workers)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], self.media_port + i)))
            .collect()
    }

    /// The child's output so far (ANSI colours stripped).
    pub fn log(&self) -> String {
        let raw = std::fs::read(self.dir.join("server.log")).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(&raw))
    }

    fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The process is still running and its log shows no panic.
    pub fn assert_alive_without_panics(&mut self) {
        let status = self.child.try_wait().expect("query the server process");
        assert!(
            status.is_none(),
            "the server exited: {status:?}\n{}",
            self.log_tail(30)
        );
        let log = self.log();
        let panics: Vec<&str> = log
            .lines()
            .filter(|l| l.to_lowercase().contains("panic"))
            .collect();
        assert!(panics.is_empty(), "the server log shows panics: {panics:#?}");
    }

    /// A room API session (`appKey: roomApp`) as `login`.
    pub async fn connect(&self, login: &str) -> WcsSession {
        WcsSession::connect(&self.ws_url(), login)
            .await
            .unwrap_or_else(|e| panic!("connect as {login}: {e}"))
    }

    /// A core API session (`appKey: defaultApp`, no login), as the SDK's plain
    /// publish/play pages open.
    pub async fn connect_plain(&self) -> WcsSession {
        let config = SessionConfig {
            connection: Some(ConnectionOptions {
                app_key: APP_DEFAULT.into(),
                login: None,
                token: None,
            }),
            timeout: T,
        };
        WcsSession::connect_with(&self.ws_url(), config)
            .await
            .unwrap_or_else(|e| panic!("connect with defaultApp: {e}"))
    }

    /// A WebSocket that has sent nothing yet (no `connection`).
    pub async fn connect_bare(&self) -> WcsSession {
        let config = SessionConfig {
            connection: None,
            timeout: T,
        };
        WcsSession::connect_with(&self.ws_url(), config)
            .await
            .unwrap_or_else(|e| panic!("open a bare WebSocket: {e}"))
    }

    /// `GET /health`.
    pub async fn health(&self) -> Health {
        let mut tcp = tokio::net::TcpStream::connect(self.http)
            .await
            .expect("connect for /health");
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http
        );
        tcp.write_all(request.as_bytes()).await.expect("send GET /health");
        let mut response = Vec::new();
        tokio::time::timeout(T, tcp.read_to_end(&mut response))
            .await
            .expect("/health answers in time")
            .expect("read /health");
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "GET /health: {head}");
        let v: Value =
            serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("/health JSON: {e}: {body}"));
        let count = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("/health lacks {k}: {v}"));
        Health {
            sessions: count("sessions"),
            rooms: count("rooms"),
            published: count("published"),
            peers: count("peers"),
        }
    }

    /// Polls `/health` until it equals `want` (the server frees things as it learns of them).
    pub async fn wait_health(&self, want: Health) {
        let deadline = Instant::now() + T;
        loop {
            let got = self.health().await;
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "/health is {got:?}, expected {want:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("WEBCALL_KEEP_LOGS").is_some() {
            eprintln!("server log kept: {}", self.dir.join("server.log").display());
        } else if std::thread::panicking() {
            eprintln!(
                "--- server log ({}), last lines ---\n{}",
                self.dir.join("server.log").display(),
                self.log_tail(40)
            );
        } else if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Sends `text` as is and returns the server's answer to it: the next `fail`,
/// `DataStatusEvent`, `notifyStreamStatusEvent`, `setRemoteSDP` or `getUserData` frame
/// (pings and room events in between are skipped). Frames queued before the send are
/// discarded first.
pub async fn reply_to(session: &WcsSession, text: &str) -> Value {
    while session.next_raw(Duration::ZERO).await.is_ok() {}
    session.send_text(text).expect("queue a frame");
    next_answer(session).await
}

/// The next answer-like frame (see [`reply_to`]).
pub async fn next_answer(session: &WcsSession) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match session.next_raw(left).await {
            Ok(RawIncoming::Text(t)) => {
                let v: Value =
                    serde_json::from_str(&t).unwrap_or_else(|e| panic!("server sent non-JSON {t}: {e}"));
                match v["message"].as_str() {
                    Some("ping" | "OnDataEvent") => continue,
                    Some(_) => return v,
                    None => panic!("server frame without a message name: {t}"),
                }
            }
            Ok(other) => panic!("expected a text answer, got {other:?}"),
            Err(e) => panic!("no answer: {e}"),
        }
    }
}

/// `data[0]` of a frame.
pub fn data0(frame: &Value) -> &Value {
    &frame["data"][0]
}

/// Asserts `frame` is a `fail` carrying `info`.
pub fn assert_fail(frame: &Value, info: &str) {
    assert_eq!(frame["message"], "fail", "answer {frame}");
    assert_eq!(data0(frame)["info"], info, "answer {frame}");
}

/// Asserts `frame` is the `DataStatusEvent` FAILED of `operation_id` with `info`.
pub fn assert_data_failed(frame: &Value, operation_id: &str, info: &str) {
    assert_eq!(frame["message"], "DataStatusEvent", "answer {frame}");
    let d = data0(frame);
    assert_eq!(
        (&d["operationId"], &d["status"], &d["info"]),
        (
            &Value::from(operation_id),
            &Value::from("FAILED"),
            &Value::from(info)
        ),
        "answer {frame}"
    );
}

/// Asserts `frame` is a `notifyStreamStatusEvent` FAILED for `media_session_id` whose info
/// starts with `info`.
pub fn assert_stream_failed(frame: &Value, media_session_id: &str, info: &str) {
    assert_eq!(frame["message"], "notifyStreamStatusEvent", "answer {frame}");
    let d = data0(frame);
    assert_eq!(d["mediaSessionId"], media_session_id, "answer {frame}");
    assert_eq!(d["status"], "FAILED", "answer {frame}");
    let got = d["info"].as_str().unwrap_or_default();
    assert!(
        got.starts_with(info),
        "info {got:?} should start with {info:?}: {frame}"
    );
}

/// What a player should have received on one kind: the codec and the player's own
/// payload type for it.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub codec: MediaCodec,
    pub pt: u8,
}

pub fn video(codec: VideoCodec, pt: u8) -> Option<Expect> {
    Some(Expect {
        codec: MediaCodec::Video(codec),
        pt,
    })
}

pub fn audio(codec: AudioCodec, pt: u8) -> Option<Expect> {
    Some(Expect {
        codec: MediaCodec::Audio(codec),
        pt,
    })
}

/// Checks everything a player logged: per kind, one SSRC; the expected codec at the player's
/// own payload type; sequence numbers continuous (no gap, nothing out of order: loopback loses
/// nothing); RTP timestamps never going back and advancing overall; video starting with a
/// keyframe. A kind not expected must not have arrived at all.
pub fn assert_media(
    label: &str,
    got: &[ReceivedPacket],
    want_video: Option<Expect>,
    want_audio: Option<Expect>,
) {
    for (kind, want) in [(Kind::Video, want_video), (Kind::Audio, want_audio)] {
        let packets: Vec<&ReceivedPacket> = got.iter().filter(|p| p.kind == kind).collect();
        let Some(want) = want else {
            assert!(
                packets.is_empty(),
                "{label}: no {kind:?} expected, got {}",
                packets.len()
            );
            continue;
        };
        assert!(
            packets.len() >= 10,
            "{label}: only {} {kind:?} packets",
            packets.len()
        );
        let ssrcs: std::collections::BTreeSet<u32> = packets.iter().map(|p| p.ssrc).collect();
        assert_eq!(ssrcs.len(), 1, "{label}: one {kind:?} SSRC, got {ssrcs:?}");
        for p in &packets {
            assert_eq!(
                (p.codec, p.pt),
                (Some(want.codec), want.pt),
                "{label}: {kind:?} codec and payload type (seq {})",
                p.seq
            );
        }
        for w in packets.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq + 1,
                "{label}: {kind:?} sequence numbers continuous, in order"
            );
            let step = w[1].rtp_time.wrapping_sub(w[0].rtp_time);
            assert!(
                step < 1 << 31,
                "{label}: {kind:?} RTP timestamp went back at seq {}",
                w[1].seq
            );
            if kind == Kind::Audio {
                assert!(step > 0, "{label}: audio timestamps advance every packet");
            }
        }
        let (first, last) = (packets[0], packets[packets.len() - 1]);
        assert_ne!(first.rtp_time, last.rtp_time, "{label}: {kind:?} time advances");
        if kind == Kind::Video {
            assert!(
                first.keyframe,
                "{label}: the first video packet starts a keyframe"
            );
        }
    }
}

/// Packets of both kinds a player has received so far.
pub fn packets_of(player: &Player) -> u64 {
    let s = player.stats();
    s.video_packets_received + s.audio_packets_received
}

/// Waits until `player` has received `more` packets beyond what it had.
pub async fn assert_flowing(player: &Player, more: u64, when: &str) {
    let start = packets_of(player);
    player
        .wait_stats(T, |s| {
            s.video_packets_received + s.audio_packets_received >= start + more
        })
        .await
        .unwrap_or_else(|e| panic!("the healthy player stopped receiving {when}: {e}"));
}

/// A media file's duration in seconds, as ffprobe reads its container.
pub fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/install-test-deps.sh installs ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe reads {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0)
}
