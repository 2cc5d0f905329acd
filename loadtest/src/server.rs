//! [`ServerProcess`]: a webcall server child process on free loopback ports, for tests.
//!
//! Owns the child, its data directory and the addresses it was given. Ports are found by
//! binding port 0 and releasing it just before the start (a small race other processes could
//! in theory win; the start then fails loudly). `spawn` returns once the HTTP port accepts TCP.
//! Dropping the value kills the child (this process started it, by its own id) and removes
//! the data directory.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A running webcall server.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `--http` address (ws:// signalling at `/`).
    pub http: SocketAddr,
    /// `--https` address.
    pub https: SocketAddr,
    /// `--media-port` base (worker i listens on base + i).
    pub media_port: u16,
    /// `--data-dir`.
    pub data_dir: PathBuf,
}

/// A free TCP port on 127.0.0.1 (best effort: free when asked).
pub fn free_tcp() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A base port with `n` consecutive free UDP ports on 127.0.0.1 (best effort).
pub fn free_udp_range(n: u16) -> Result<u16> {
    for _ in 0..50 {
        let first = UdpSocket::bind("127.0.0.1:0")?;
        let base = first.local_addr()?.port();
        if base.checked_add(n).is_none() {
            continue;
        }
        let rest: std::io::Result<Vec<UdpSocket>> =
            (1..n).map(|i| UdpSocket::bind(("127.0.0.1", base + i))).collect();
        if rest.is_ok() {
            return Ok(base);
        }
    }
    Err(Error::InvalidArgument(format!(
        "no {n} consecutive free UDP ports"
    )))
}

/// Starts tried before giving up on finding free ports.
const SPAWN_ATTEMPTS: usize = 3;
/// How long a started child must stay up after its port answered.
const SPAWN_SETTLE: Duration = Duration::from_millis(300);

enum SpawnFailure {
    PortTaken(Error),
    Other(Error),
}

impl ServerProcess {
    /// Starts `bin` with one worker on loopback plus `extra` arguments (for example
    /// `["--room-capacity", "3"]`); waits up to 15 s for the HTTP port. The child's output
    /// goes to `DATA_DIR/server.log`. Ports are picked free, but another test may take the
    /// same one between the pick and the bind: then the child exits at once (its bind
    /// fails) while the port answers for the other server, so a child that exits within
    /// [`SPAWN_SETTLE`] of the port answering is started again on new ports.
    pub fn spawn(bin: impl AsRef<Path>, extra: &[&str]) -> Result<Self> {
        let mut last = None;
        for _ in 0..SPAWN_ATTEMPTS {
            match Self::spawn_once(bin.as_ref(), extra) {
                Ok(server) => return Ok(server),
                Err(SpawnFailure::PortTaken(error)) => last = Some(error),
                Err(SpawnFailure::Other(error)) => return Err(error),
            }
        }
        Err(last.unwrap_or_else(|| Error::InvalidArgument("server did not start".into())))
    }

    fn spawn_once(bin: &Path, extra: &[&str]) -> std::result::Result<Self, SpawnFailure> {
        Self::start(bin, extra).map_err(SpawnFailure::Other)?.settle()
    }

    fn start(bin: &Path, extra: &[&str]) -> Result<Self> {
        let data_dir = std::env::temp_dir().join(format!("webcall-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir)?;
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        let (http, https, media_port) = (free_tcp()?, free_tcp()?, free_udp_range(4)?);
        let child = Command::new(bin)
            .args(["--http", &http.to_string(), "--https", &https.to_string()])
            .args(["--media-ip", "127.0.0.1", "--media-port", &media_port.to_string()])
            .args(["--workers", "1", "--data-dir"])
            .arg(&data_dir)
            .args(extra)
            // Parallel servers cannot all take RTMP's default port: off unless asked for.
            .args(if extra.contains(&"--rtmp") {
                &[][..]
            } else {
                &["--rtmp", "off"][..]
            })
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = ServerProcess {
            child,
            http,
            https,
            media_port,
            data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect_timeout(&server.http, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(Error::Io(std::io::Error::other(format!(
                    "server exited with {status}; see {}",
                    server.log_path().display()
                ))));
            }
            if Instant::now() > deadline {
                return Err(Error::timeout("server HTTP port", Duration::from_secs(15)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port answered: make sure it was this child that bound it.
    fn settle(mut self) -> std::result::Result<Self, SpawnFailure> {
        let deadline = Instant::now() + SPAWN_SETTLE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let error = Error::Io(std::io::Error::other(format!(
                        "server exited with {status} (a port was taken?); see {}",
                        self.log_path().display()
                    )));
                    return Err(SpawnFailure::PortTaken(error));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(25)),
                Err(error) => return Err(SpawnFailure::Other(error.into())),
            }
        }
        Ok(self)
    }

    /// The WebSocket URL of the signalling endpoint.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.http)
    }

    /// Where the child's stdout and stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's exit status once it has exited; `None` while it runs.
    pub fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The last `lines` lines of the child's log, colours stripped (empty when unreadable).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let log = strip_ansi(&String::from_utf8_lossy(&log));
        let all: Vec<&str> = log.lines().collect();
        all.get(all.len().saturating_sub(lines)..)
            .unwrap_or_default()
            .join("\n")
    }

    /// Kills the child now and waits for it.
    pub fn kill(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
        }
        self.child.wait()?;
        Ok(())
    }
}

/// `text` without ANSI CSI sequences (`ESC [ ... final-byte`), as the log's colours are.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
