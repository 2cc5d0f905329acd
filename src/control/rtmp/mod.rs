//! The RTMP bridge: encoders (ffmpeg, OBS, hardware encoders) publish into rooms and plain
//! streams, RTMP players play any H.264 stream, and pushes restream out to other RTMP
//! servers. The protocol itself is the sans-IO layer in [`crate::rtmp`]; this module is its
//! I/O and its place in the server: listeners, one task per connection, the FLV sources of
//! RTMP-fed streams, and the pushes.
//!
//! Runs on the control thread's tokio runtime (audio transcoding on its own threads, see
//! `audio.rs`). Invariants: at most [`RTMP_CONNECTIONS_MAX`] connections, and at most the
//! configured number per client address; an encoder is a room participant like a browser
//! (the directory's bridge sessions), so forwarding has no special case for it; the bridge's
//! mutexes are never held across an `.await`.

mod audio;
mod connection;
mod feed;
pub mod path;
mod publish;
pub mod push;
pub mod sources;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;

use crate::config::Config;
use crate::control::hub::SharedHub;

/// RTMP connections the server holds at once, all clients together: each is a task and
/// buffers (a publisher's transcoder thread too).
pub const RTMP_CONNECTIONS_MAX: usize = 2048;

/// What the bridge counts (read by `/health`).
#[derive(Default)]
pub struct RtmpCounters {
    pub connections: AtomicU64,
    pub refused_connections: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub bframe_refusals: AtomicU64,
    /// Media dropped on a full queue, shared with the queues' feeders (other threads too):
    /// an encoder's picture batches the worker's queue refused,
    pub ingest_batches_dropped: Arc<AtomicU64>,
    /// frames a tap could not hand to an RTMP player's feed,
    pub tap_frames_dropped: Arc<AtomicU64>,
    /// and audio frames an audio thread's queue refused.
    pub audio_frames_dropped: Arc<AtomicU64>,
}

/// What `/health` shows of one RTMP encoder: browsers' keyframe requests cannot reach it, so
/// its own keyframe interval is how long a player that lost a packet waits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RtmpPublisherInfo {
    pub stream: String,
    pub room: Option<String>,
    pub video: Option<String>,
    pub audio: Option<String>,
    pub keyframe_interval_ms: Option<u32>,
    pub bframes: u64,
    /// Which connection's entry this is (a takeover replaces it).
    #[serde(skip)]
    pub publisher: sources::PublisherToken,
}

pub struct Bridge {
    pub hub: SharedHub,
    /// The encoders publishing now, by stream name.
    pub publishers: Mutex<BTreeMap<String, RtmpPublisherInfo>>,
    pub config: Arc<Config>,
    pub sources: Mutex<sources::Sources>,
    pub pushes: Mutex<push::Pushes>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_id: AtomicU64,
    pub counters: RtmpCounters,
}

impl Bridge {
    pub fn new(hub: SharedHub, config: Arc<Config>) -> Arc<Self> {
        Arc::new(Bridge {
            hub,
            config,
            publishers: Mutex::new(BTreeMap::new()),
            sources: Mutex::new(sources::Sources::default()),
            pushes: Mutex::new(push::Pushes::default()),
            per_ip: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            counters: RtmpCounters::default(),
        })
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn lock_sources(&self) -> MutexGuard<'_, sources::Sources> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lock_pushes(&self) -> MutexGuard<'_, push::Pushes> {
        self.pushes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lock_publishers(&self) -> MutexGuard<'_, BTreeMap<String, RtmpPublisherInfo>> {
        self.publishers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bridge in `/health`: its counters, the encoders publishing, the pushes.
    pub fn health(&self) -> serde_json::Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let publishers: Vec<RtmpPublisherInfo> = self.lock_publishers().values().cloned().collect();
        serde_json::json!({
            "connections": load(&self.counters.connections),
            "refused_connections": load(&self.counters.refused_connections),
            "protocol_errors": load(&self.counters.protocol_errors),
            "bframe_refusals": load(&self.counters.bframe_refusals),
            "ingest_batches_dropped": load(&self.counters.ingest_batches_dropped),
            "tap_frames_dropped": load(&self.counters.tap_frames_dropped),
            "audio_frames_dropped": load(&self.counters.audio_frames_dropped),
            "publishers": publishers,
            "pushes": self.lock_pushes().find_all().len(),
        })
    }

    /// RTMP connections open now.
    pub fn connections_open(&self) -> usize {
        self.per_ip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Count a new connection from `ip`, or refuse it (too many in all or from there).
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = per_ip.values().sum();
        let from_ip = per_ip.entry(ip).or_insert(0);
        if total >= RTMP_CONNECTIONS_MAX || *from_ip >= self.config.rtmp_connections_per_ip {
            self.counters.refused_connections.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *from_ip += 1;
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionSlot {
            bridge: self.clone(),
            ip,
        })
    }
}

/// One admitted connection; gives its place back when dropped.
struct ConnectionSlot {
    bridge: Arc<Bridge>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut per_ip = self.bridge.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.bridge.counters.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accept RTMP connections on `listener` (and RTMPS on `tls`, with the HTTPS certificate).
pub async fn serve(
    bridge: Arc<Bridge>,
    listener: Option<TcpListener>,
    tls: Option<(TcpListener, Arc<crate::control::tls::TlsLive>)>,
) {
    let plain = async {
        if let Some(listener) = listener {
            accept_loop(&bridge, listener, None).await;
        }
    };
    let secure = async {
        if let Some((listener, tls)) = tls {
            accept_loop(&bridge, listener, Some(tls)).await;
        }
    };
    tokio::join!(plain, secure);
}

async fn accept_loop(
    bridge: &Arc<Bridge>,
    listener: TcpListener,
    tls: Option<Arc<crate::control::tls::TlsLive>>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "RTMP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = bridge.admit(remote.ip()) else {
            tracing::debug!(%remote, "RTMP connection refused: too many");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let bridge = bridge.clone();
        // The certificate in effect now (SIGHUP may have replaced it).
        let tls = tls
            .as_ref()
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.rtmps.get()));
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => connection::run(stream, bridge, remote).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        crate::rtmp::limits::HANDSHAKE_DEADLINE,
                        acceptor.accept(stream),
                    );
                    if let Ok(Ok(stream)) = handshake.await {
                        connection::run(stream, bridge, remote).await;
                    }
                }
            }
        });
    }
}

/// The address an RTMP listener is bound to, for the log.
pub fn local(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
