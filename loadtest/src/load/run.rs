//! Carries out a [`Plan`]: publishers first, then the subscribers at the ramp rate, then a
//! warm-up and the measurement window, sampling the server process around the window.
//!
//! Runs the signalling on a current-thread tokio runtime (one task per WebSocket session,
//! mostly idle once joined) while the engine thread moves the media. Failed joins are
//! counted and reported, not fatal: a server at its limit refusing or timing out joins is a
//! result. The whole run fails only when no publisher could start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use super::config::{LoadConfig, MediaSource, Target};
use super::engine::EngineHandle;
use super::janus;
use super::janus_api::JanusConn;
use super::procstat::{self, ProcSample};
use super::report::{Report, RunFacts};
use super::scenario::{Plan, PublishPlan};
use super::signal::{self, StreamSpec};
use super::slot::Measure;
use crate::error::{Error, Result};
use crate::media::encode::{self, Clips, VideoSpec};
use crate::media::send_log::SendLog;
use crate::media::AudioCodec;
use crate::peer::{install_crypto_provider, LoadProfile, PayloadTypes, PlayCodecs, PublisherMedia};
use crate::wcs::{SessionConfig, WcsSession};

/// Longest wait for every joined subscriber's first packet.
const FIRST_MEDIA_WAIT: Duration = Duration::from_secs(10);
/// How long the end-of-window check waits for the server's signalling port.
const SERVER_PROBE_WAIT: Duration = Duration::from_secs(2);
/// Errors kept verbatim in the report.
const ERRORS_KEPT: usize = 8;
/// Picture size publishers announce and clips are encoded at (what 1.5 Mbit/s carries well).
const VIDEO_SIZE: (u16, u16) = (1280, 720);

/// Runs the load on a fresh current-thread runtime and returns the report.
pub fn run(cfg: &LoadConfig) -> Result<Report> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cfg))
}

/// Runs the load inside the caller's runtime.
pub async fn run_async(cfg: &LoadConfig) -> Result<Report> {
    install_crypto_provider();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let plan = Plan::build(cfg, tag.get(..6).unwrap_or("run"));
    let clips = load_clips(cfg, &plan).await?;
    // Real clips carry no stamp: each publisher logs its sends for its subscribers.
    let send_logs: Vec<Option<Arc<SendLog>>> = plan
        .publishes
        .iter()
        .map(|_| clips.is_some().then(Arc::default))
        .collect();
    let engine = EngineHandle::start()?;
    let server = |_: &str| cfg.server_pid.and_then(procstat::sample);
    let mem_empty = server("empty");
    let mut facts = RunFacts::default();
    let t_start = Instant::now();

    // Publishers, all at once.
    let mut sessions: Vec<Option<Conn>> = vec![None; plan.sessions.len()];
    let mut feeds: Vec<Option<u64>> = vec![None; plan.publishes.len()];
    let mut publishers: Vec<Option<std::net::Ipv4Addr>> = vec![None; plan.publishes.len()];
    let pubs = stream::iter(plan.publishes.iter().enumerate())
        .map(|(i, p)| {
            let media = PublisherClips {
                clips: clips.as_ref(),
                send_log: send_logs.get(i).cloned().flatten(),
            };
            start_publisher(cfg, &plan, &engine, media, i, p)
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    for r in pubs {
        match r {
            Ok((idx, s, publish, feed, local)) => {
                if let Some(slot) = sessions.get_mut(idx) {
                    *slot = Some(s);
                }
                if let Some(f) = feeds.get_mut(publish) {
                    *f = feed;
                }
                if let Some(a) = publishers.get_mut(publish) {
                    *a = local;
                }
                facts.publishes_ok += 1;
            }
            Err(e) => facts.error(e, ERRORS_KEPT),
        }
    }
    if facts.publishes_ok == 0 {
        return Err(Error::Protocol(format!(
            "no publisher started: {:?}",
            facts.errors
        )));
    }
    let mem_published = server("published");

    // Subscribers, grouped by session, at the ramp rate.
    let t_ramp = Instant::now();
    let mut order: Vec<usize> = Vec::new();
    for pl in &plan.plays {
        if !order.contains(&pl.session) {
            order.push(pl.session);
        }
    }
    let period = Duration::from_secs_f64(1.0 / cfg.ramp_per_s.max(0.001));
    let groups = order.iter().enumerate().map(|(k, s)| {
        let at = t_ramp + period.saturating_mul(k as u32);
        (*s, at, sessions.get(*s).cloned().flatten())
    });
    let results = stream::iter(groups)
        .map(|(s, at, existing)| {
            let shared = Shared {
                feeds: &feeds,
                send_logs: &send_logs,
                publishers: &publishers,
            };
            start_subscriber(cfg, &plan, &engine, shared, s, at, existing)
        })
        .buffer_unordered(cfg.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut kept = Vec::new();
    for (session, ok, errs) in results {
        facts.plays_ok += ok;
        facts.plays_failed += errs.len();
        for e in errs {
            facts.error(e, ERRORS_KEPT);
        }
        kept.extend(session);
    }
    facts.ramp = t_ramp.elapsed();

    // Every subscriber's first packet, then the warm-up.
    let deadline = Instant::now() + FIRST_MEDIA_WAIT;
    while Instant::now() < deadline {
        let st = engine.collect()?;
        if st.subscribers_receiving >= facts.plays_ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(cfg.warmup).await;

    // The window.
    let me = std::process::id();
    let (server0, self0) = (server("start"), procstat::sample(me));
    engine.reset_window()?;
    tokio::time::sleep(cfg.duration).await;
    let stats = engine.collect()?;
    let (server1, self1) = (server("end"), procstat::sample(me));
    let conns: Vec<&Conn> = sessions.iter().flatten().chain(kept.iter()).collect();
    if let Some(gone) = server_gone(cfg, &conns, server0.is_some() && server1.is_none()).await {
        facts.server_alive = false;
        facts
            .errors
            .insert(0, format!("the server went away during the window: {gone}"));
    }
    facts.total = t_start.elapsed();
    let cpu = |a: Option<ProcSample>, b: Option<ProcSample>| Some(b?.cpu.saturating_sub(a?.cpu));
    facts.server_cpu = cpu(server0, server1);
    facts.worker_cpu = match (server0, server1) {
        (Some(a), Some(b)) => Some(b.worker_cpu.saturating_sub(a.worker_cpu)),
        _ => None,
    };
    facts.loadgen_cpu = cpu(self0, self1);
    facts.server_mem = [mem_empty, mem_published, server1].map(|m| m.map(|m| m.pss_bytes));
    let report = Report::build(cfg, &plan, &stats, &facts);
    drop(engine);
    for s in sessions.into_iter().flatten().chain(kept) {
        if let Conn::Wcs(s) = s {
            s.abort();
        }
    }
    Ok(report)
}

/// Why the server is not there any more at the end of the window, if it is not: its process
/// is gone (`--server-pid`), a signalling session was closed by it (a kill, a crash, or a
/// drain's close), or its signalling port refuses connections.
async fn server_gone(cfg: &LoadConfig, conns: &[&Conn], process_gone: bool) -> Option<String> {
    if process_gone {
        return Some("its process exited".to_owned());
    }
    let closed = conns
        .iter()
        .filter(|c| matches!(c, Conn::Wcs(s) if s.is_closed()))
        .count();
    if closed > 0 {
        return Some(format!(
            "it closed {closed} of {} signalling sessions",
            conns.len()
        ));
    }
    let addr = url_host_port(&cfg.url)?;
    let probe = tokio::time::timeout(SERVER_PROBE_WAIT, tokio::net::TcpStream::connect(&addr)).await;
    match probe {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("{addr} refuses connections ({e})")),
        Err(_) => Some(format!(
            "{addr} did not accept a connection within {SERVER_PROBE_WAIT:?}"
        )),
    }
}

/// `host:port` of a `ws://` or `wss://` URL (the port defaults by scheme).
fn url_host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        return Some(authority.to_owned());
    }
    let port = if scheme == "wss" || scheme == "https" {
        443
    } else {
        80
    };
    Some(format!("{authority}:{port}"))
}

/// A signalling connection of either target.
#[derive(Debug, Clone)]
enum Conn {
    Wcs(WcsSession),
    Janus(Arc<JanusConn>),
}

/// The clips of a clip load (encoded by ffmpeg on the first run that needs them).
async fn load_clips(cfg: &LoadConfig, plan: &Plan) -> Result<Option<Clips>> {
    let MediaSource::Clip { cache_dir } = &cfg.media else {
        return Ok(None);
    };
    let (width, height) = VIDEO_SIZE;
    let video = plan.publishes.iter().any(|p| p.video).then_some(VideoSpec {
        codec: cfg.video,
        width,
        height,
        bitrate_bps: cfg.video_bitrate_bps,
    });
    // ffmpeg may run for a second or two: off the caller's runtime thread.
    let dir = cache_dir.clone();
    tokio::task::spawn_blocking(move || encode::load_or_encode(&dir, video))
        .await
        .map_err(|e| Error::Media(format!("clip encoding stopped: {e}")))?
        .map(Some)
}

/// What one publisher sends from: the clips, if any, and where it logs its sends.
struct PublisherClips<'a> {
    clips: Option<&'a Clips>,
    send_log: Option<Arc<SendLog>>,
}

/// What subscribers need of the publishers: Janus feed ids and send logs, by publish index.
#[derive(Clone, Copy)]
struct Shared<'a> {
    feeds: &'a [Option<u64>],
    send_logs: &'a [Option<Arc<SendLog>>],
    /// Each publish's engine peer, by local address.
    publishers: &'a [Option<std::net::Ipv4Addr>],
}

fn media(cfg: &LoadConfig, video: bool, sent: PublisherClips<'_>) -> (PublisherMedia, LoadProfile) {
    let (width, height) = VIDEO_SIZE;
    let media = PublisherMedia {
        video: video.then_some((cfg.video, width, height)),
        audio: Some(AudioCodec::Opus),
        payload_types: PayloadTypes::default(),
        keyframe_interval: None,
    };
    let profile = LoadProfile {
        video_bitrate_bps: cfg.video_bitrate_bps,
        keyframe_factor: cfg.keyframe_factor,
        payload_max: cfg.payload_max,
        // Synthetic frames carry stamps in their filler; clips stay untouched and are logged.
        stamp: sent.send_log.is_none(),
        send_log: sent.send_log,
        clips: sent.clips.cloned(),
        pacing_factor: cfg.pacing_factor,
    };
    (media, profile)
}

async fn connect(cfg: &LoadConfig, plan: &Plan, session: usize) -> Result<Conn> {
    let sp = plan
        .sessions
        .get(session)
        .ok_or_else(|| Error::InvalidArgument("no such session".into()))?;
    if cfg.target == Target::Janus {
        return Ok(Conn::Janus(Arc::new(
            JanusConn::connect(&cfg.url, cfg.timeout).await?,
        )));
    }
    let s = WcsSession::connect_with(
        &cfg.url,
        SessionConfig {
            timeout: cfg.timeout,
            ..SessionConfig::room(&sp.login)
        },
    )
    .await?;
    if let Some(room) = &sp.room {
        s.join(room).await?;
    }
    Ok(Conn::Wcs(s))
}

async fn start_publisher(
    cfg: &LoadConfig,
    plan: &Plan,
    engine: &EngineHandle,
    sent: PublisherClips<'_>,
    index: usize,
    p: &PublishPlan,
) -> Result<(usize, Conn, usize, Option<u64>, Option<std::net::Ipv4Addr>)> {
    let started = Instant::now();
    let conn = connect(cfg, plan, p.session).await?;
    let sp = plan.sessions.get(p.session);
    let room = sp.and_then(|s| s.room.as_deref());
    let (media, profile) = media(cfg, p.video, sent);
    let feed = match &conn {
        Conn::Wcs(session) => {
            let spec = StreamSpec {
                name: &p.name,
                room,
                timeout: cfg.timeout,
                started,
                record: cfg.record,
            };
            let local = signal::publish(engine, session, spec, &media, profile).await?;
            let SocketAddr::V4(local) = local else {
                return Err(Error::Protocol("a publisher without an IPv4 address".into()));
            };
            return Ok((p.session, conn.clone(), index, None, Some(*local.ip())));
        }
        Conn::Janus(j) => {
            let room = janus::room_id(&plan.tag, room);
            let display = sp.map_or("publisher", |s| s.login.as_str());
            Some(janus::publish(engine, j, room, display, &media, profile, started).await?)
        }
    };
    Ok((p.session, conn, index, feed, None))
}

async fn start_subscriber(
    cfg: &LoadConfig,
    plan: &Plan,
    engine: &EngineHandle,
    shared: Shared<'_>,
    session: usize,
    at: Instant,
    existing: Option<Conn>,
) -> (Option<Conn>, usize, Vec<Error>) {
    tokio::time::sleep_until(at.into()).await;
    let started = Instant::now();
    let s = match existing {
        Some(s) => s,
        None => match connect(cfg, plan, session).await {
            Ok(s) => s,
            Err(e) => {
                let n = plan.plays.iter().filter(|p| p.session == session).count();
                let mut errs = vec![e];
                errs.extend((1..n).map(|_| Error::Protocol("session not connected".into())));
                return (None, 0, errs);
            }
        },
    };
    let room = plan.sessions.get(session).and_then(|x| x.room.as_deref());
    let (mut ok, mut errs) = (0, Vec::new());
    let mut started = Some(started);
    for (i, pl) in plan
        .plays
        .iter()
        .enumerate()
        .filter(|(_, p)| p.session == session)
    {
        let Some(publish) = plan.publishes.get(pl.stream) else {
            continue;
        };
        let accept = match publish.video {
            true => PlayCodecs::only(Some(cfg.video), Some(AudioCodec::Opus)),
            false => PlayCodecs::only(None, Some(AudioCodec::Opus)),
        };
        let started = started.take().unwrap_or_else(Instant::now);
        let measure = Measure {
            decrypt: cfg.decrypts(i),
            send_log: shared.send_logs.get(pl.stream).cloned().flatten(),
            publisher: shared.publishers.get(pl.stream).copied().flatten(),
        };
        let result = match &s {
            Conn::Wcs(session) => {
                let spec = StreamSpec {
                    name: &publish.name,
                    room,
                    timeout: cfg.timeout,
                    started,
                    record: false,
                };
                signal::play(engine, session, spec, &accept, measure).await
            }
            Conn::Janus(j) => match shared.feeds.get(pl.stream).copied().flatten() {
                Some(feed) => {
                    let room = janus::room_id(&plan.tag, room);
                    janus::play(engine, j, room, feed, &accept, measure, started).await
                }
                None => Err(Error::Protocol(format!("{} was not published", publish.name))),
            },
        };
        match result {
            Ok(()) => ok += 1,
            Err(e) => errs.push(e),
        }
    }
    (Some(s), ok, errs)
}
