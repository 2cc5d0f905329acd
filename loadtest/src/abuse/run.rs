//! [`run`]: the scenario from start to report. Starts the server and the good room, then the
//! phases one after another, each under a deadline of its own; after each, checks the server
//! is still running (a phase during which it died has not passed, and the phases after it are
//! reported as not run). Figures are computed once every phase is over.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::media::{GoodRoom, Mark};
use super::monitor::{Monitor, ProbeFigures};
use super::report::{mb, AbuseReport, PhaseReport, ServerFigures};
use super::{chat_flood, idle_tcp, origin, per_ip, slowloris, AbuseOptions};
use crate::error::{Error, Result};
use crate::peer::install_crypto_provider;
use crate::server::ServerProcess;

/// An attack phase lasts at least this long, so that a few probes run and a few hundred video
/// packets arrive during even the quickest one.
const PHASE_MIN: Duration = Duration::from_secs(3);
/// Deadline of a phase beyond the time it is asked to take: its set-up and tear-down.
const PHASE_SLACK: Duration = Duration::from_secs(30);
/// Deadline of the per-address phase, whose length is its attempts' (a few seconds).
const PER_IP_BUDGET: Duration = Duration::from_secs(120);
/// Deadline of the origin checks.
const ORIGIN_BUDGET: Duration = Duration::from_secs(40);
/// Wait after the last phase so that its last repairs (NACK → RTX) arrive before counting.
const MEDIA_SETTLE: Duration = Duration::from_millis(500);
/// Lines of the server log put in the report when it exited.
const LOG_TAIL_LINES: usize = 30;

/// What a phase produced for the report.
enum Outcome {
    Nothing,
    Chat(chat_flood::ChatFloodFigures),
    PerIp(per_ip::PerIpFigures),
    Idle(idle_tcp::IdleTcpFigures),
    Slowloris(slowloris::SlowlorisFigures),
    Origin(Vec<origin::OriginCase>),
}

type PhaseFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome>> + 'a>>;

struct Phase<'a> {
    name: &'static str,
    attack: bool,
    budget: Duration,
    work: PhaseFuture<'a>,
}

/// Runs the whole scenario (see the module docs of [`super`]). `Err` only when it could not
/// start (the server or the good room); anything later is in the report's failures.
pub async fn run(options: AbuseOptions) -> Result<AbuseReport> {
    super::raise_descriptor_limit();
    install_crypto_provider();
    let work_dir = std::env::temp_dir().join(format!("webcall-abuse-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work_dir)?;
    let mut flags: Vec<String> = [
        "--max-sessions-per-ip",
        &per_ip::PER_IP_CAP.to_string(),
        "--allowed-origins",
        origin::ALLOWED,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    flags.extend(options.server_flags.iter().cloned());
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = ServerProcess::spawn(&options.server_bin, &flag_refs)?;
    let (http, pid) = (server.http, server.pid());
    let mut report = AbuseReport {
        server: ServerFigures {
            bin: options.server_bin.display().to_string(),
            flags: flags.clone(),
            pid,
            log: server.log_path().display().to_string(),
            ..ServerFigures::default()
        },
        good_room_codecs: format!("{:?} + Opus", options.video),
        ..AbuseReport::default()
    };
    let room = match GoodRoom::start(&server.ws_url(), options.video).await {
        Ok(room) => Arc::new(room),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work_dir);
            let tail = server.log_tail(LOG_TAIL_LINES);
            return Err(Error::Protocol(format!(
                "the good room did not start: {e}\n{tail}"
            )));
        }
    };
    let mut monitor = Monitor::start(http, pid, room.clone());

    let phases: Vec<Phase<'_>> = vec![
        Phase {
            name: "baseline",
            attack: false,
            budget: options.baseline + PHASE_SLACK,
            work: Box::pin(async {
                tokio::time::sleep(options.baseline).await;
                Ok(Outcome::Nothing)
            }),
        },
        Phase {
            name: "chat_flood",
            attack: true,
            budget: options.chat_flood + options.chat_settle + PHASE_SLACK,
            work: Box::pin(async {
                chat_flood::run(http, pid, &monitor, options.chat_flood, options.chat_settle)
                    .await
                    .map(Outcome::Chat)
            }),
        },
        Phase {
            name: "per_ip_sessions",
            attack: true,
            budget: PER_IP_BUDGET,
            work: Box::pin(async {
                per_ip::run(http, options.per_ip_sessions)
                    .await
                    .map(Outcome::PerIp)
            }),
        },
        Phase {
            name: "idle_tcp",
            attack: true,
            budget: options.hold_tcp_for + PHASE_SLACK,
            work: Box::pin(async {
                let (holder, dir) = (&options.holder, &work_dir);
                idle_tcp::run(holder, http, options.hold_tcp_max, options.hold_tcp_for, dir)
                    .await
                    .map(Outcome::Idle)
            }),
        },
        Phase {
            name: "slowloris",
            attack: true,
            budget: options.slowloris_window + PHASE_SLACK,
            work: Box::pin(async {
                let (n, window) = (options.slowloris_connections, options.slowloris_window);
                Ok(Outcome::Slowloris(slowloris::run(http, n, window).await))
            }),
        },
        Phase {
            name: "origin",
            attack: true,
            budget: ORIGIN_BUDGET,
            work: Box::pin(async { Ok(Outcome::Origin(origin::run(http).await)) }),
        },
    ];

    let mut marks: Vec<Option<(Mark, Mark)>> = Vec::new();
    for phase in phases {
        let mut p = PhaseReport {
            name: phase.name.into(),
            attack: phase.attack,
            ..PhaseReport::default()
        };
        if report.server.exited.is_some() {
            p.error = Some("not run: the server had exited".into());
            report.phases.push(p);
            marks.push(None);
            continue;
        }
        let from = room.mark();
        let started = Instant::now();
        let outcome = tokio::time::timeout(phase.budget, phase.work).await;
        if phase.attack {
            tokio::time::sleep(PHASE_MIN.saturating_sub(started.elapsed())).await;
        }
        let to = room.mark();
        p.seconds = to.at.duration_since(from.at).as_secs_f64();
        match outcome {
            Ok(Ok(o)) => {
                p.ran = true;
                match o {
                    Outcome::Nothing => {}
                    Outcome::Chat(f) => report.chat_flood = Some(f),
                    Outcome::PerIp(f) => report.per_ip = Some(f),
                    Outcome::Idle(f) => report.idle_tcp = Some(f),
                    Outcome::Slowloris(f) => report.slowloris = Some(f),
                    Outcome::Origin(f) => report.origin = Some(f),
                }
            }
            Ok(Err(e)) => p.error = Some(e.to_string()),
            Err(_) => p.error = Some(format!("did not finish within {:?}", phase.budget)),
        }
        if let Some(status) = server.exited()? {
            report.server.exited = Some(status.to_string());
            report.server.log_tail = Some(server.log_tail(LOG_TAIL_LINES));
            p.ran = false;
            p.error = Some(format!("the server exited during this phase ({status})"));
        }
        report.phases.push(p);
        marks.push(Some((from, to)));
    }

    tokio::time::sleep(MEDIA_SETTLE).await;
    monitor.stop().await;
    for (p, mark) in report.phases.iter_mut().zip(&marks) {
        let Some((from, to)) = mark else { continue };
        p.media = room.figures(from, to);
        let probes = monitor.probes_between(from.at, to.at);
        p.probes = ProbeFigures::of(&probes);
        p.admission = probes.iter().rev().find_map(|pr| pr.admission.clone());
        p.rss_peak_mb = mb(monitor.rss_peak_between(from.at, to.at).unwrap_or(0));
    }
    drop(monitor);
    if let Ok(room) = Arc::try_unwrap(room) {
        room.stop().await;
    }
    if report.server.exited.is_none() {
        if let Some(status) = server.exited()? {
            report.server.exited = Some(status.to_string());
            report.server.log_tail = Some(server.log_tail(LOG_TAIL_LINES));
        }
    }
    report.failures = report.failures();
    report.passed = report.failures.is_empty();
    // The server's data directory goes with it; keep its log with the run's files on a failure.
    let log_copy = work_dir.join("server.log");
    let _ = std::fs::copy(server.log_path(), &log_copy);
    drop(server);
    if report.passed {
        let _ = std::fs::remove_dir_all(&work_dir);
        report.server.log = "(removed: the run passed)".into();
    } else {
        report.server.log = log_copy.display().to_string();
    }
    Ok(report)
}
