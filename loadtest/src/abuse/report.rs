//! [`AbuseReport`]: every figure of a run, the thresholds they are judged by, and
//! [`AbuseReport::failures`], the list of what failed (a threshold, or a phase that did not
//! happen: a phase that did not run is never silently a pass).
//!
//! Serialized as JSON with the figures under stable keys; [`AbuseReport::summary`] is the
//! human version.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;

use super::chat_flood::ChatFloodFigures;
use super::idle_tcp::IdleTcpFigures;
use super::media::MediaFigures;
use super::monitor::ProbeFigures;
use super::origin::OriginCase;
use super::per_ip::PerIpFigures;
use super::slowloris::SlowlorisFigures;

/// Slowest acceptable `GET /health` and new session during any phase.
pub const PROBE_LATENCY_MAX_MS: f64 = 1000.0;
/// An attack phase may lose at most this many percentage points more than the baseline.
pub const LOSS_OVER_BASELINE_MAX_PP: f64 = 1.0;
/// Longer than this without a video packet means media stopped flowing: at 30 frames a
/// second that is sixty frames, far past any scheduling hiccup of a busy machine.
pub const MEDIA_GAP_MAX_MS: u64 = 2000;
/// Highest server VmRSS during the chat flood.
pub const CHAT_RSS_PEAK_MAX_MB: f64 = 200.0;
/// Server VmRSS 10 s after the flood's sessions closed.
pub const CHAT_RSS_AFTER_MAX_MB: f64 = 60.0;

/// Bytes in a megabyte, as the memory thresholds count them.
const BYTES_PER_MB: f64 = 1_000_000.0;

/// `bytes` in MB, to a tenth.
pub fn mb(bytes: u64) -> f64 {
    (bytes as f64 / BYTES_PER_MB * 10.0).round() / 10.0
}

/// The thresholds, as the report states them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// See [`PROBE_LATENCY_MAX_MS`].
    pub probe_latency_max_ms: f64,
    /// See [`LOSS_OVER_BASELINE_MAX_PP`].
    pub loss_over_baseline_max_pp: f64,
    /// See [`MEDIA_GAP_MAX_MS`].
    pub media_gap_max_ms: u64,
    /// See [`CHAT_RSS_PEAK_MAX_MB`].
    pub chat_rss_peak_max_mb: f64,
    /// See [`CHAT_RSS_AFTER_MAX_MB`].
    pub chat_rss_after_max_mb: f64,
    /// Sessions one address should get.
    pub per_ip_accepted: usize,
    /// Connections one address should hold that are not sessions.
    pub idle_tcp_held_max: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            probe_latency_max_ms: PROBE_LATENCY_MAX_MS,
            loss_over_baseline_max_pp: LOSS_OVER_BASELINE_MAX_PP,
            media_gap_max_ms: MEDIA_GAP_MAX_MS,
            chat_rss_peak_max_mb: CHAT_RSS_PEAK_MAX_MB,
            chat_rss_after_max_mb: CHAT_RSS_AFTER_MAX_MB,
            per_ip_accepted: super::per_ip::PER_IP_CAP,
            idle_tcp_held_max: super::idle_tcp::PENDING_PER_IP_MAX,
        }
    }
}

/// The server under test.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerFigures {
    /// The binary.
    pub bin: String,
    /// The flags the scenario added.
    pub flags: Vec<String>,
    /// Its process id.
    pub pid: u32,
    /// Its log.
    pub log: String,
    /// How it exited, if it did before the end.
    pub exited: Option<String>,
    /// The log's last lines, when it exited.
    pub log_tail: Option<String>,
}

/// One phase: the good room and the probes during it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhaseReport {
    /// `baseline`, `chat_flood`, `per_ip_sessions`, `idle_tcp`, `slowloris`, `origin`.
    pub name: String,
    /// Whether it is an attack (the baseline is not).
    pub attack: bool,
    /// Whether it ran to its end.
    pub ran: bool,
    /// Why it did not, or what went wrong.
    pub error: Option<String>,
    /// Its length.
    pub seconds: f64,
    /// What the good player received.
    pub media: MediaFigures,
    /// Latency probes from 127.0.0.1.
    pub probes: ProbeFigures,
    /// Highest server VmRSS sampled, MB.
    pub rss_peak_mb: f64,
    /// `/health`'s `admission` at the phase's last probe.
    pub admission: Option<Value>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AbuseReport {
    /// The server.
    pub server: ServerFigures,
    /// The good room's codecs.
    pub good_room_codecs: String,
    /// Phases in the order they ran (the baseline first).
    pub phases: Vec<PhaseReport>,
    /// Chat flood figures, when it ran.
    pub chat_flood: Option<ChatFloodFigures>,
    /// Per-address sessions, when it ran.
    pub per_ip: Option<PerIpFigures>,
    /// Idle TCP, when it ran.
    pub idle_tcp: Option<IdleTcpFigures>,
    /// Slowloris, when it ran.
    pub slowloris: Option<SlowlorisFigures>,
    /// Origin checks, when they ran.
    pub origin: Option<Vec<OriginCase>>,
    /// What kept the run from happening as planned.
    pub errors: Vec<String>,
    /// The thresholds.
    pub thresholds: Thresholds,
    /// [`AbuseReport::failures`], filled in when the run ends.
    pub failures: Vec<String>,
    /// No failure.
    pub passed: bool,
}

impl AbuseReport {
    /// The phase called `name`.
    pub fn phase(&self, name: &str) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Every threshold that failed and every phase that did not happen; empty on a pass.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.errors.clone();
        if let Some(exit) = &self.server.exited {
            out.push(format!("the server exited during the run: {exit}"));
        }
        self.phase_failures(&mut out);
        self.attack_failures(&mut out);
        out
    }

    fn phase_failures(&self, out: &mut Vec<String>) {
        let baseline = self.phase("baseline").filter(|p| p.ran);
        if baseline.is_none() {
            out.push("the baseline phase did not run: no loss to compare with".into());
        }
        let baseline_loss = baseline.map(|b| b.media.loss_pct).unwrap_or(0.0);
        let mut admission_missing = false;
        for p in &self.phases {
            let name = &p.name;
            if !p.ran {
                let why = p.error.as_deref().unwrap_or("not started");
                out.push(format!("phase {name} did not run: {why}"));
                continue;
            }
            if let Some(e) = &p.error {
                out.push(format!("phase {name}: {e}"));
            }
            let pr = &p.probes;
            if pr.probes == 0 {
                out.push(format!("{name}: no latency probe ran"));
            }
            if pr.health_failures + pr.session_failures > 0 {
                let first = pr.first_failure.as_deref().unwrap_or_default();
                out.push(format!(
                    "{name}: {} /health and {} session probes failed (first: {first})",
                    pr.health_failures, pr.session_failures
                ));
            }
            if pr.health_max_ms > PROBE_LATENCY_MAX_MS {
                out.push(format!(
                    "{name}: GET /health took {} ms (max {PROBE_LATENCY_MAX_MS})",
                    pr.health_max_ms
                ));
            }
            if pr.session_max_ms > PROBE_LATENCY_MAX_MS {
                out.push(format!(
                    "{name}: a new session took {} ms (max {PROBE_LATENCY_MAX_MS})",
                    pr.session_max_ms
                ));
            }
            admission_missing |= pr.probes > pr.health_failures && p.admission.is_none();
            let m = &p.media;
            if m.video_packets == 0 || m.longest_gap_ms > MEDIA_GAP_MAX_MS {
                out.push(format!(
                    "{name}: the good room's video stopped flowing ({} packets, longest gap {} ms, max {MEDIA_GAP_MAX_MS})",
                    m.video_packets, m.longest_gap_ms
                ));
            }
            if p.attack && m.loss_pct > baseline_loss + LOSS_OVER_BASELINE_MAX_PP {
                out.push(format!(
                    "{name}: good room video loss {:.2} % vs baseline {baseline_loss:.2} % (max +{LOSS_OVER_BASELINE_MAX_PP} pp)",
                    m.loss_pct
                ));
            }
        }
        if admission_missing {
            out.push("GET /health has no \"admission\" object".into());
        }
    }

    fn attack_failures(&self, out: &mut Vec<String>) {
        if let Some(c) = &self.chat_flood {
            if c.rss_peak_mb >= CHAT_RSS_PEAK_MAX_MB {
                out.push(format!(
                    "chat flood: server RSS peaked at {} MB (max {CHAT_RSS_PEAK_MAX_MB})",
                    c.rss_peak_mb
                ));
            }
            if c.rss_after_mb >= CHAT_RSS_AFTER_MAX_MB {
                out.push(format!(
                    "chat flood: server RSS {} MB {:.0} s after the sessions closed (max {CHAT_RSS_AFTER_MAX_MB})",
                    c.rss_after_mb, c.settle_s
                ));
            }
            if c.messages_sent == 0 {
                out.push("chat flood: no message was sent".into());
            }
        }
        if let Some(p) = &self.per_ip {
            if p.accepted != p.cap {
                out.push(format!(
                    "per-IP sessions: {} of {} admitted from {} (cap {})",
                    p.accepted, p.attempts, p.address, p.cap
                ));
            }
            let unexplained = p.attempts.saturating_sub(p.accepted + p.refused_429);
            if unexplained > 0 {
                out.push(format!(
                    "per-IP sessions: {unexplained} attempts neither admitted nor refused with 429 \
                     (other statuses {:?}, failures {}, first: {})",
                    p.refused_other,
                    p.failed,
                    p.first_failure.as_deref().unwrap_or("-")
                ));
            }
            if !p.admitted_again_after_release {
                out.push(format!(
                    "per-IP sessions: no new session from {} once the others closed",
                    p.address
                ));
            }
        }
        if let Some(idle) = &self.idle_tcp {
            if idle.children.len() != 2 {
                out.push(format!(
                    "idle TCP: {} of 2 children reported",
                    idle.children.len()
                ));
            }
            for c in &idle.children {
                if !c.refused {
                    out.push(format!(
                        "idle TCP {}: the server never refused ({} connections held)",
                        c.bind, c.held_when_refused
                    ));
                }
                if c.held_when_refused > idle.cap_per_address {
                    out.push(format!(
                        "idle TCP {}: {} idle connections held (max {})",
                        c.bind, c.held_when_refused, idle.cap_per_address
                    ));
                }
            }
        }
        if let Some(s) = &self.slowloris {
            if s.connect_failed == s.connections {
                out.push("slowloris: no connection could be opened".into());
            }
            if s.still_open > 0 {
                out.push(format!(
                    "slowloris: {} of {} connections still open after {} s",
                    s.still_open, s.connections, s.window_s
                ));
            }
        }
        for case in self.origin.iter().flatten().filter(|c| !c.as_expected()) {
            let want = if case.should_admit {
                "a working session"
            } else {
                "403"
            };
            out.push(format!(
                "origin {:?}: expected {want}, got status {:?} ({})",
                case.origin.as_deref().unwrap_or("(none)"),
                case.status,
                case.detail.as_deref().unwrap_or("-")
            ));
        }
    }

    /// A human summary: one line per phase, the attacks' figures, then the failures.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "webcall abuse run: server {} (pid {}), good room {}",
            self.server.bin, self.server.pid, self.good_room_codecs
        );
        let _ = writeln!(
            s,
            "{:<16} {:>6} {:>8} {:>7} {:>7} {:>7} {:>9} {:>10} {:>8}",
            "phase", "s", "video", "frames", "loss%", "gap ms", "health ms", "session ms", "rss MB"
        );
        for p in &self.phases {
            if !p.ran {
                let _ = writeln!(
                    s,
                    "{:<16} did not run: {}",
                    p.name,
                    p.error.as_deref().unwrap_or("-")
                );
                continue;
            }
            let _ = writeln!(
                s,
                "{:<16} {:>6.1} {:>8} {:>7} {:>7.2} {:>7} {:>9.1} {:>10.1} {:>8.1}",
                p.name,
                p.seconds,
                p.media.video_packets,
                p.media.video_frames,
                p.media.loss_pct,
                p.media.longest_gap_ms,
                p.probes.health_max_ms,
                p.probes.session_max_ms,
                p.rss_peak_mb
            );
        }
        if let Some(c) = &self.chat_flood {
            let _ = writeln!(
                s,
                "chat flood: {} sent, {} accepted, {} refused, {} unanswered; RSS {} → peak {} → {} MB {:.0} s after close",
                c.messages_sent, c.accepted, c.refused, c.unanswered, c.rss_before_mb, c.rss_peak_mb, c.rss_after_mb, c.settle_s
            );
        }
        if let Some(p) = &self.per_ip {
            let _ = writeln!(
                s,
                "per-IP sessions from {}: {} tried, {} admitted, {} refused 429, other {:?}, failed {}; admitted again after release: {}",
                p.address, p.attempts, p.accepted, p.refused_429, p.refused_other, p.failed, p.admitted_again_after_release
            );
        }
        if let Some(idle) = &self.idle_tcp {
            for c in &idle.children {
                let _ = writeln!(
                    s,
                    "idle TCP from {}: held {} when refused (after {:?} ms), {} closed at once, {} connect errors, {} open at end",
                    c.bind, c.held_when_refused, c.refused_after_ms, c.closed_at_once, c.connect_errors, c.open_at_end
                );
            }
        }
        if let Some(sl) = &self.slowloris {
            let _ = writeln!(
                s,
                "slowloris from {}: {} connections, {} closed at once, {} closed later ({:?}..{:?} ms), {} still open after {} s",
                sl.address,
                sl.connections,
                sl.closed_at_once,
                sl.closed_later,
                sl.closed_later_first_ms,
                sl.closed_later_last_ms,
                sl.still_open,
                sl.window_s
            );
        }
        for c in self.origin.iter().flatten() {
            let _ = writeln!(
                s,
                "origin {:<28} status {:?}, session works: {}",
                c.origin.as_deref().unwrap_or("(none)"),
                c.status,
                c.session_works
            );
        }
        let failures = self.failures();
        if failures.is_empty() {
            let _ = writeln!(s, "PASS");
        } else {
            let _ = writeln!(s, "FAIL:");
            for f in failures {
                let _ = writeln!(s, "  - {f}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, attack: bool, loss: f64) -> PhaseReport {
        PhaseReport {
            name: name.into(),
            attack,
            ran: true,
            error: None,
            seconds: 5.0,
            media: MediaFigures {
                video_packets: 500,
                video_frames: 150,
                video_expected: 500,
                loss_pct: loss,
                longest_gap_ms: 100,
                audio_packets: 250,
            },
            probes: ProbeFigures {
                probes: 10,
                health_max_ms: 5.0,
                session_max_ms: 20.0,
                ..ProbeFigures::default()
            },
            rss_peak_mb: 30.0,
            admission: Some(serde_json::json!({})),
        }
    }

    #[test]
    fn loss_is_judged_against_the_baseline() {
        let mut r = AbuseReport {
            phases: vec![phase("baseline", false, 0.5), phase("slowloris", true, 1.4)],
            ..AbuseReport::default()
        };
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        r.phases[1].media.loss_pct = 1.6;
        assert_eq!(r.failures().len(), 1, "{:?}", r.failures());
    }

    #[test]
    fn a_phase_that_did_not_run_fails() {
        let mut r = AbuseReport {
            phases: vec![phase("baseline", false, 0.0), phase("origin", true, 0.0)],
            ..AbuseReport::default()
        };
        r.phases[1].ran = false;
        r.phases[1].error = Some("the server died".into());
        assert!(r.failures().iter().any(|f| f.contains("origin did not run")));
        r.phases.clear();
        assert!(r.failures().iter().any(|f| f.contains("baseline")));
    }

    #[test]
    fn slow_probes_stalls_and_memory_fail() {
        let mut r = AbuseReport {
            phases: vec![phase("baseline", false, 0.0), phase("chat_flood", true, 0.0)],
            chat_flood: Some(ChatFloodFigures {
                messages_sent: 10,
                rss_peak_mb: 150.0,
                rss_after_mb: 40.0,
                ..ChatFloodFigures::default()
            }),
            ..AbuseReport::default()
        };
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        r.phases[1].probes.session_max_ms = 1200.0;
        r.phases[1].media.longest_gap_ms = 2500;
        if let Some(c) = r.chat_flood.as_mut() {
            c.rss_after_mb = 61.0;
        }
        assert_eq!(r.failures().len(), 3, "{:?}", r.failures());
    }
}
