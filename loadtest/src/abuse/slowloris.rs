//! Slowloris: connections from [`addr::SLOWLORIS`] that send an HTTP request header one byte
//! every [`BYTE_EVERY`] and never finish it; counts how many the server closed, and when,
//! within the window.
//!
//! What the server should do: close those past its per-address pending cap at once, and the
//! rest when their header read times out (10 s), well within the 15 s window.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{addr, net};

/// One byte of header is sent this often.
pub const BYTE_EVERY: Duration = Duration::from_secs(1);
/// A connection closed sooner than this after its connect was refused at accept (it never
/// got to its second byte).
const AT_ONCE: Duration = Duration::from_millis(900);
/// Deadline of each connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// What is trickled: a request line, then a header that never ends.
const HEADER_START: &[u8] = b"GET / HTTP/1.1\r\nHost: slowloris.example\r\nX-Slow: ";
/// Bytes of any answer read before giving up on it (a 408 is short).
const ANSWER_BYTES_MAX: usize = 4096;

/// What became of the connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SlowlorisFigures {
    /// The source address.
    pub address: String,
    /// Connections tried.
    pub connections: usize,
    /// Connects that failed.
    pub connect_failed: usize,
    /// Closed by the server before their second byte (refused at accept).
    pub closed_at_once: usize,
    /// Closed later, within the window (header timeout).
    pub closed_later: usize,
    /// Still open at the window's end.
    pub still_open: usize,
    /// Earliest and latest close among `closed_later`, ms after connecting.
    pub closed_later_first_ms: Option<u64>,
    /// See `closed_later_first_ms`.
    pub closed_later_last_ms: Option<u64>,
    /// Connections the server answered something (say 408) before closing.
    pub answered: usize,
    /// The window, seconds.
    pub window_s: f64,
}

enum Fate {
    ConnectFailed,
    Closed { after: Duration, answered: bool },
    Open,
}

async fn trickle(http: SocketAddr, window_end: tokio::time::Instant) -> Fate {
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, net::tcp_from(addr::SLOWLORIS, http, None)).await;
    let Ok(Ok(mut tcp)) = connect else {
        return Fate::ConnectFailed;
    };
    let connected = Instant::now();
    let mut answered = false;
    let mut buf = vec![0u8; ANSWER_BYTES_MAX];
    let bytes = HEADER_START.iter().copied().chain(std::iter::repeat(b'a'));
    for byte in bytes {
        if tcp.write_all(&[byte]).await.is_err() {
            break;
        }
        let next = tokio::time::Instant::now() + BYTE_EVERY;
        loop {
            tokio::select! {
                read = tcp.read(&mut buf) => match read {
                    Ok(n) if n > 0 => answered = true,
                    _ => return Fate::Closed { after: connected.elapsed(), answered },
                },
                _ = tokio::time::sleep_until(next.min(window_end)) => break,
            }
        }
        if tokio::time::Instant::now() >= window_end {
            return Fate::Open;
        }
    }
    Fate::Closed {
        after: connected.elapsed(),
        answered,
    }
}

/// Opens `connections` and trickles on them for at most `window`; ends early once all closed.
pub async fn run(http: SocketAddr, connections: usize, window: Duration) -> SlowlorisFigures {
    let window_end = tokio::time::Instant::now() + window;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(trickle(http, window_end)))
        .collect();
    let mut f = SlowlorisFigures {
        address: addr::SLOWLORIS.to_string(),
        connections,
        window_s: window.as_secs_f64(),
        ..SlowlorisFigures::default()
    };
    for task in tasks {
        match task.await {
            Ok(Fate::ConnectFailed) | Err(_) => f.connect_failed += 1,
            Ok(Fate::Open) => f.still_open += 1,
            Ok(Fate::Closed { after, answered }) => {
                f.answered += usize::from(answered);
                if after < AT_ONCE {
                    f.closed_at_once += 1;
                } else {
                    let ms = after.as_millis() as u64;
                    f.closed_later += 1;
                    f.closed_later_first_ms = Some(f.closed_later_first_ms.map_or(ms, |m| m.min(ms)));
                    f.closed_later_last_ms = Some(f.closed_later_last_ms.map_or(ms, |m| m.max(ms)));
                }
            }
        }
    }
    f
}
