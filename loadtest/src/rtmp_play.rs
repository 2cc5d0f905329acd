//! A light RTMP player for load tests: the simple handshake, `connect`, `createStream` and
//! `play`, then it reads the server's chunk stream and counts the audio and video messages it
//! delivers (their payloads are skipped, never kept), and when the first video message came.
//! Hundreds of these run on one core where as many ffmpeg processes would not.
//!
//! Runs on the load generator's tokio runtime. Invariants: every length read from the server
//! is checked; a protocol error ends that player with an error, not the process.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// What one player saw.
#[derive(Debug, Clone, Default)]
pub struct RtmpPlayStats {
    pub video_messages: u64,
    pub audio_messages: u64,
    pub bytes: u64,
    /// From sending `play` to the first video message.
    pub first_video: Option<Duration>,
}

/// `rtmp://host:port/app/name` split into what a player sends.
pub struct PlayUrl {
    pub addr: String,
    pub app: String,
    pub name: String,
    pub tc_url: String,
}

pub fn parse_play_url(url: &str) -> Result<PlayUrl> {
    let rest = url
        .strip_prefix("rtmp://")
        .ok_or_else(|| Error::InvalidArgument(format!("not an rtmp:// URL: {url}")))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| Error::InvalidArgument(format!("no path in {url}")))?;
    let (app, name) = path
        .rsplit_once('/')
        .ok_or_else(|| Error::InvalidArgument(format!("no stream name in {url}")))?;
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:1935")
    };
    Ok(PlayUrl {
        addr,
        app: app.to_owned(),
        name: name.to_owned(),
        tc_url: format!("rtmp://{host}/{app}"),
    })
}

pub(crate) fn amf_string(out: &mut Vec<u8>, s: &str) {
    out.push(0x02);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn amf_number(out: &mut Vec<u8>, n: f64) {
    out.push(0x00);
    out.extend_from_slice(&n.to_be_bytes());
}

pub(crate) fn amf_key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
}

/// One message on chunk stream 3 at the default chunk size of 128.
pub(crate) fn message(type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    message_chunked(type_id, stream_id, 0, payload, 128)
}

/// One message on chunk stream 3: a type-0 chunk, then type-3 continuations of `chunk` bytes.
pub(crate) fn message_chunked(
    type_id: u8,
    stream_id: u32,
    timestamp_ms: u32,
    payload: &[u8],
    chunk: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.push(0x03);
    out.extend_from_slice(&(timestamp_ms & 0xff_ffff).to_be_bytes()[1..]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (index, chunk) in payload.chunks(chunk.max(1)).enumerate() {
        if index > 0 {
            out.push(0xc3);
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// Connect over TCP and do the simple handshake.
pub(crate) async fn connect_handshaken(url: &PlayUrl) -> Result<TcpStream> {
    let mut socket = TcpStream::connect(&url.addr).await?;
    socket.set_nodelay(true)?;
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    socket.write_all(&c0c1).await?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    socket.read_exact(&mut s0s1s2).await?;
    socket.write_all(s0s1s2.get(1..1537).unwrap_or_default()).await?;
    Ok(socket)
}

/// The `connect` (app, tcUrl) and `createStream` command bodies.
pub(crate) fn connect_and_create(url: &PlayUrl) -> (Vec<u8>, Vec<u8>) {
    let mut connect = Vec::new();
    amf_string(&mut connect, "connect");
    amf_number(&mut connect, 1.0);
    connect.push(0x03);
    amf_key(&mut connect, "app");
    amf_string(&mut connect, &url.app);
    amf_key(&mut connect, "tcUrl");
    amf_string(&mut connect, &url.tc_url);
    connect.extend_from_slice(&[0, 0, 9]);
    let mut create = Vec::new();
    amf_string(&mut create, "createStream");
    amf_number(&mut create, 2.0);
    create.push(0x05);
    (connect, create)
}

fn commands(url: &PlayUrl) -> (Vec<u8>, Vec<u8>) {
    let (connect, create) = connect_and_create(url);
    let mut first = message(20, 0, &connect);
    first.extend(message(20, 0, &create));
    let mut play = Vec::new();
    amf_string(&mut play, "play");
    amf_number(&mut play, 3.0);
    play.push(0x05);
    amf_string(&mut play, &url.name);
    amf_number(&mut play, -1000.0);
    (first, message(20, 1, &play))
}

#[derive(Clone, Copy, Default)]
struct ChunkState {
    length: u32,
    type_id: u8,
    remaining: u32,
    extended: bool,
}

/// A message the counter finished: its type, and a user control message's bytes.
struct Completed {
    type_id: u8,
    control: Option<Vec<u8>>,
}

/// Counts messages in the server's chunk stream without keeping them.
struct Counter {
    chunk_size: u32,
    streams: HashMap<u32, ChunkState>,
    buffer: Vec<u8>,
}

impl Counter {
    /// Consume what can be parsed; returns completed (type id, first bytes) per message.
    fn feed(&mut self, bytes: &[u8], done: &mut Vec<Completed>) -> Result<()> {
        self.buffer.extend_from_slice(bytes);
        let mut at = 0usize;
        loop {
            let Some(consumed) = self.one_chunk(at, done)? else {
                break;
            };
            at += consumed;
        }
        self.buffer.drain(..at);
        Ok(())
    }

    fn one_chunk(&mut self, at: usize, done: &mut Vec<Completed>) -> Result<Option<usize>> {
        let buf = self.buffer.get(at..).unwrap_or_default();
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match buf.get(1) {
                Some(b) => (u32::from(*b) + 64, 2),
                None => return Ok(None),
            },
            1 => match buf.get(1..3) {
                Some(b) => (u32::from(b[0]) + 64 + (u32::from(b[1]) << 8), 3),
                None => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let header_len = [11usize, 7, 3, 0][usize::from(fmt)];
        let Some(header) = buf.get(pos..pos + header_len) else {
            return Ok(None);
        };
        let mut state = self.streams.get(&csid).copied().unwrap_or_default();
        let timestamp_field = header
            .get(..3)
            .map(|t| (u32::from(t[0]) << 16) | (u32::from(t[1]) << 8) | u32::from(t[2]));
        if fmt <= 1 {
            state.length = (u32::from(header[3]) << 16) | (u32::from(header[4]) << 8) | u32::from(header[5]);
            state.type_id = header[6];
        }
        if fmt <= 2 {
            state.extended = timestamp_field == Some(0xff_ffff);
        }
        pos += header_len;
        if state.extended {
            if buf.get(pos..pos + 4).is_none() {
                return Ok(None);
            }
            pos += 4;
        }
        if state.remaining == 0 {
            state.remaining = state.length;
        }
        let take = state.remaining.min(self.chunk_size) as usize;
        let Some(payload) = buf.get(pos..pos + take) else {
            return Ok(None);
        };
        if state.type_id == 1 && payload.len() >= 4 {
            self.chunk_size =
                u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
            if self.chunk_size == 0 {
                return Err(Error::InvalidArgument("the server set chunk size 0".into()));
            }
        }
        let whole = state.remaining == state.length;
        state.remaining -= take as u32;
        if state.remaining == 0 {
            // User control messages (pings) are small and come whole: keep their bytes.
            let control = (state.type_id == 4 && whole).then(|| payload.to_vec());
            done.push(Completed {
                type_id: state.type_id,
                control,
            });
        }
        self.streams.insert(csid, state);
        Ok(Some(pos + take))
    }
}

/// Play `url` for `duration`, counting what arrives.
pub async fn play_for(url: &PlayUrl, duration: Duration) -> Result<RtmpPlayStats> {
    let mut socket = connect_handshaken(url).await?;
    let (connect, play) = commands(url);
    socket.write_all(&connect).await?;
    // Give the server its answers' round trip before `play` on stream 1.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let played_at = Instant::now();
    socket.write_all(&play).await?;
    let mut stats = RtmpPlayStats::default();
    let mut counter = Counter {
        chunk_size: 128,
        streams: HashMap::new(),
        buffer: Vec::new(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = Vec::new();
    let end = played_at + duration;
    let mut unacked: u64 = 0;
    let mut acked_total: u64 = 0;
    loop {
        let read = tokio::time::timeout_at(end.into(), socket.read(&mut buf)).await;
        let n = match read {
            Err(_) => break,
            Ok(Ok(0)) => return Err(Error::InvalidArgument("the server closed the connection".into())),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.into()),
        };
        stats.bytes += n as u64;
        unacked += n as u64;
        counter.feed(buf.get(..n).unwrap_or_default(), &mut done)?;
        let mut pongs = Vec::new();
        for completed in done.drain(..) {
            match completed.type_id {
                8 => stats.audio_messages += 1,
                9 => {
                    stats.video_messages += 1;
                    stats.first_video.get_or_insert_with(|| played_at.elapsed());
                }
                4 => {
                    // A ping request (event 6) is answered with its timestamp (event 7).
                    if let Some(&[0, 6, a, b, c, d]) = completed.control.as_deref() {
                        pongs.extend(message(4, 0, &[0, 7, a, b, c, d]));
                    }
                }
                _ => {}
            }
        }
        if !pongs.is_empty() {
            socket.write_all(&pongs).await?;
        }
        if unacked >= 1_000_000 {
            acked_total += unacked;
            unacked = 0;
            let ack = message(3, 0, &((acked_total & 0xffff_ffff) as u32).to_be_bytes());
            socket.write_all(&ack).await?;
        }
    }
    Ok(stats)
}
