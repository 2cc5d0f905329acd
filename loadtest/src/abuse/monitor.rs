//! What is watched through the whole run, apart from any attack: the server's resident memory
//! every [`RSS_EVERY`], and every [`PROBE_EVERY`] from 127.0.0.1 the latency of `GET /health`
//! and of a new session (`connection` → `getUserData`, then `join` → its acknowledgement and
//! the room's `STATE`), plus a drain of the good player's packet log.
//!
//! Owns [`Monitor`]: one background task keeping time-stamped samples; a phase reads those
//! that fall in its own span ([`Monitor::probes_between`], [`Monitor::rss_peak_between`]).
//! Every probe has its own deadline ([`PROBE_TIMEOUT`]) and runs in its own task, so a slow
//! answer delays neither the next probe nor the memory samples.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::media::GoodRoom;
use super::{addr, net};
use crate::wcs::{SessionConfig, WcsSession};

/// How often the server's VmRSS is read (the brief's sampling interval).
pub const RSS_EVERY: Duration = Duration::from_millis(100);
/// How often a pair of probes starts.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// A probe gives up after this long: five times the latency threshold, so a slow answer is
/// measured as slow rather than lost.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a probe session's orderly close may take before its socket is dropped.
const PROBE_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The room the session probes join (each leaves it at once).
const PROBE_ROOM: &str = "abuse-probe-room";

/// One pair of probes.
#[derive(Debug, Clone)]
pub struct Probe {
    /// When it started.
    pub at: Instant,
    /// `GET /health` latency, or why it failed.
    pub health: Result<Duration, String>,
    /// New session latency (connect, `getUserData`, `join` acknowledged, `STATE`).
    pub session: Result<Duration, String>,
    /// `/health`'s `admission` object, when it had one.
    pub admission: Option<Value>,
}

/// The probes of one phase, summed up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProbeFigures {
    /// Pairs of probes started in the phase.
    pub probes: usize,
    /// `GET /health` that failed or timed out.
    pub health_failures: usize,
    /// Session probes that failed or timed out.
    pub session_failures: usize,
    /// Slowest `GET /health`, in ms.
    pub health_max_ms: f64,
    /// Median `GET /health`, in ms.
    pub health_p50_ms: f64,
    /// Slowest new session, in ms.
    pub session_max_ms: f64,
    /// Median new session, in ms.
    pub session_p50_ms: f64,
    /// The first failure's reason.
    pub first_failure: Option<String>,
}

impl ProbeFigures {
    /// Sums up `probes`.
    pub fn of(probes: &[Probe]) -> Self {
        let ms = |d: &Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
        let stats = |v: Vec<f64>| {
            let mut v = v;
            v.sort_by(f64::total_cmp);
            let max = v.last().copied().unwrap_or(0.0);
            let p50 = v.get(v.len() / 2).copied().unwrap_or(0.0);
            (max, p50)
        };
        let (health_max_ms, health_p50_ms) = stats(
            probes
                .iter()
                .filter_map(|p| p.health.as_ref().ok())
                .map(ms)
                .collect(),
        );
        let (session_max_ms, session_p50_ms) = stats(
            probes
                .iter()
                .filter_map(|p| p.session.as_ref().ok())
                .map(ms)
                .collect(),
        );
        let first_failure = probes.iter().find_map(|p| match (&p.health, &p.session) {
            (Err(e), _) => Some(format!("GET /health: {e}")),
            (_, Err(e)) => Some(format!("new session: {e}")),
            _ => None,
        });
        ProbeFigures {
            probes: probes.len(),
            health_failures: probes.iter().filter(|p| p.health.is_err()).count(),
            session_failures: probes.iter().filter(|p| p.session.is_err()).count(),
            health_max_ms,
            health_p50_ms,
            session_max_ms,
            session_p50_ms,
            first_failure,
        }
    }
}

#[derive(Debug, Default)]
struct Samples {
    rss: Vec<(Instant, u64)>,
    probes: Vec<Probe>,
}

/// The background watcher.
#[derive(Debug)]
pub struct Monitor {
    samples: Arc<Mutex<Samples>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// The server's resident set size in bytes, from `/proc/PID/status` (`None` once it is gone).
pub fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Monitor {
    /// Starts watching the server at `http` (process `pid`) and the good room.
    pub fn start(http: SocketAddr, pid: u32, room: Arc<GoodRoom>) -> Self {
        let samples = Arc::new(Mutex::new(Samples::default()));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(watch_loop(http, pid, room, samples.clone(), stopped));
        Monitor {
            samples,
            stop,
            task: Some(task),
        }
    }

    fn samples(&self) -> MutexGuard<'_, Samples> {
        self.samples.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Probes started within `[from, to)`.
    pub fn probes_between(&self, from: Instant, to: Instant) -> Vec<Probe> {
        let samples = self.samples();
        samples
            .probes
            .iter()
            .filter(|p| p.at >= from && p.at < to)
            .cloned()
            .collect()
    }

    /// Highest VmRSS sampled within `[from, to]`.
    pub fn rss_peak_between(&self, from: Instant, to: Instant) -> Option<u64> {
        let samples = self.samples();
        samples
            .rss
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, rss)| *rss)
            .max()
    }

    /// Stops the task once the probes in flight have ended (each within its deadline); the
    /// samples stay readable.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

async fn watch_loop(
    http: SocketAddr,
    pid: u32,
    room: Arc<GoodRoom>,
    samples: Arc<Mutex<Samples>>,
    mut stopped: watch::Receiver<bool>,
) {
    let lock = || samples.lock().unwrap_or_else(|e| e.into_inner());
    let mut rss_tick = tokio::time::interval(RSS_EVERY);
    let mut probe_tick = tokio::time::interval(PROBE_EVERY);
    rss_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = JoinSet::new();
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = rss_tick.tick() => {
                if let Some(rss) = vm_rss(pid) {
                    lock().rss.push((Instant::now(), rss));
                }
            }
            _ = probe_tick.tick() => {
                room.drain();
                n += 1;
                probes.spawn(probe(http, n));
            }
            Some(Ok(done)) = probes.join_next(), if !probes.is_empty() => lock().probes.push(done),
        }
    }
    while let Some(done) = probes.join_next().await {
        if let Ok(done) = done {
            lock().probes.push(done);
        }
    }
}

async fn probe(http: SocketAddr, n: u64) -> Probe {
    let at = Instant::now();
    let health = async {
        let t0 = Instant::now();
        net::get_health(http, PROBE_TIMEOUT)
            .await
            .map(|v| (t0.elapsed(), v.get("admission").cloned()))
            .map_err(|e| e.to_string())
    };
    let session = async {
        let t0 = Instant::now();
        let config = SessionConfig {
            timeout: PROBE_TIMEOUT,
            ..SessionConfig::room(&format!("probe-{n}"))
        };
        let url = format!("ws://{http}/");
        let opened = async {
            let s = WcsSession::connect_from(&url, addr::GOOD.into(), config).await?;
            s.join(PROBE_ROOM).await?;
            Ok::<_, crate::Error>(s)
        };
        let result = tokio::time::timeout(PROBE_TIMEOUT, opened).await;
        let elapsed = t0.elapsed();
        match result {
            Ok(Ok(s)) => {
                let _ = tokio::time::timeout(PROBE_CLOSE_TIMEOUT, s.close()).await;
                s.abort();
                Ok(elapsed)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        }
    };
    let (health, session) = tokio::join!(health, session);
    let (health, admission) = match health {
        Ok((latency, admission)) => (Ok(latency), admission),
        Err(e) => (Err(e), None),
    };
    Probe {
        at,
        health,
        session,
        admission,
    }
}
