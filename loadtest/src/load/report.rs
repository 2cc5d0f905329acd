//! The report of a load run: the JSON document (stable top-level keys, so scripts can
//! compare runs) and the human table.
//!
//! Owns [`Report`] and [`RunFacts`] (what the runner learned outside the engine: join
//! outcomes, process samples). Top-level keys never change meaning; a value that could not
//! be measured (no `--server-pid`, no decrypting subscriber) is `null`, never a made-up
//! zero. Everything else goes under `details`, which may grow.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::config::{LoadConfig, Target};
use super::scenario::Plan;
use super::stats::EngineStats;
use crate::error::Error;

/// Engine thread busier than this fraction of the window: the load generator was the limit.
const ENGINE_BUSY_MAX: f64 = 0.85;
/// Timers fired later than this (99th percentile): the load generator was the limit.
const LAG_P99_MAX_US: u64 = 5_000;

/// What the runner learned besides the engine's counters.
#[derive(Debug)]
pub struct RunFacts {
    pub publishes_ok: usize,
    pub plays_ok: usize,
    pub plays_failed: usize,
    pub errors: Vec<String>,
    pub ramp: Duration,
    pub total: Duration,
    pub server_cpu: Option<Duration>,
    /// The media workers' share of `server_cpu`.
    pub worker_cpu: Option<Duration>,
    pub loadgen_cpu: Option<Duration>,
    /// Server PSS: before anything, with publishers only, at the end of the window.
    pub server_mem: [Option<u64>; 3],
    /// The server was there at the end of the window (see `run::server_gone`).
    pub server_alive: bool,
}

impl Default for RunFacts {
    fn default() -> Self {
        RunFacts {
            publishes_ok: 0,
            plays_ok: 0,
            plays_failed: 0,
            errors: Vec::new(),
            ramp: Duration::ZERO,
            total: Duration::ZERO,
            server_cpu: None,
            worker_cpu: None,
            loadgen_cpu: None,
            server_mem: [None; 3],
            server_alive: true,
        }
    }
}

impl RunFacts {
    /// Counts an error, keeping the first `keep` texts.
    pub fn error(&mut self, e: Error, keep: usize) {
        if self.errors.len() < keep {
            self.errors.push(e.to_string());
        }
    }
}

/// The JSON report. The fields before `details` are the stable keys.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: Target,
    pub scenario: &'static str,
    /// Subscriber peer connections that reached `PLAYING` (plays, not people: an
    /// audio-room listener playing 10 speakers counts 10).
    pub subscribers: usize,
    pub duration_s: f64,
    /// RTP datagrams (media and retransmissions) subscribers received in the window.
    pub forwarded_packets: u64,
    pub forwarded_pps: f64,
    pub server_cpu_seconds: Option<f64>,
    pub cpu_us_per_packet: Option<f64>,
    /// The media worker threads' CPU per forwarded packet (without control and recorders).
    pub worker_cpu_us_per_packet: Option<f64>,
    pub latency_us_p50: Option<u64>,
    pub latency_us_p99: Option<u64>,
    pub latency_us_p999: Option<u64>,
    pub loss_pct: f64,
    pub loss_after_nack_pct: Option<f64>,
    pub jitter_ms: f64,
    pub mem_bytes_per_subscriber: Option<f64>,
    pub loadgen_bound: bool,
    /// The server was still there at the end of the window; false makes the run an error.
    pub server_alive: bool,
    pub details: Details,
}

/// Everything else measured.
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    pub url: String,
    pub publishers: usize,
    pub plays_requested: usize,
    pub plays_failed: usize,
    pub errors: Vec<String>,
    pub subscribers_receiving: usize,
    /// Subscribers that received no media in the window (counted 100 % lost).
    pub subscribers_silent: usize,
    /// Media packets the played publishers sent in the window, once per subscriber, and what
    /// the subscribers received of them (the two `loss_pct` compares).
    pub expected_packets: u64,
    pub received_packets: u64,
    /// Loss from sequence-number gaps alone (the old measure, blind to a stopped stream).
    pub loss_gaps_pct: f64,
    pub decrypting_subscribers: usize,
    pub video_bitrate_bps: u32,
    /// What publishers sent: `clip` (real encoded media) or `synthetic`.
    pub media: String,
    /// Video pacing as a multiple of the bitrate; `null`: one burst per frame.
    pub pacing_factor: Option<f64>,
    pub payload_max: usize,
    pub published_packets: u64,
    pub rtx_packets: u64,
    pub decrypted_packets: u64,
    pub latency_samples: u64,
    pub latency_us_max: Option<u64>,
    pub jitter_video_ms: f64,
    pub jitter_audio_ms: f64,
    pub join_ms_p50: f64,
    pub join_ms_p99: f64,
    pub join_ms_max: f64,
    pub ramp_s: f64,
    pub keyframe_requests_at_publishers: u64,
    pub peers_failed: u64,
    pub server_pss_bytes: [Option<u64>; 3],
    pub loadgen_engine_util: f64,
    pub loadgen_process_cpu_seconds: Option<f64>,
    pub loadgen_timer_lag_us_p99: u64,
    pub loadgen_rx_dropped: u64,
    pub loadgen_tx_failed: u64,
    pub loadgen_bound_reasons: Vec<String>,
    pub loadgen_cpus: Vec<usize>,
}

fn quantile(h: &hdrhistogram::Histogram<u64>, q: f64) -> Option<u64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q))
}

impl Report {
    /// Builds the report of one window.
    pub fn build(cfg: &LoadConfig, plan: &Plan, st: &EngineStats, f: &RunFacts) -> Report {
        let window = st.window.as_secs_f64().max(1e-9);
        let forwarded = st.delta.rtp + st.delta.rtx;
        let server_cpu = f.server_cpu.map(|d| d.as_secs_f64());
        let mut reasons = Vec::new();
        if st.engine_util() > ENGINE_BUSY_MAX {
            reasons.push(format!("engine thread {:.0} % busy", st.engine_util() * 100.0));
        }
        let lag = quantile(&st.lag_us, 0.99).unwrap_or(0);
        if lag > LAG_P99_MAX_US {
            reasons.push(format!("timers late by {lag} µs (p99)"));
        }
        if st.delta.rx_dropped > 0 {
            reasons.push(format!(
                "{} datagrams dropped by this host's socket",
                st.delta.rx_dropped
            ));
        }
        let mem = match f.server_mem {
            [_, Some(a), Some(b)] if f.plays_ok > 0 => Some((b as f64 - a as f64) / f.plays_ok as f64),
            _ => None,
        };
        Report {
            target: cfg.target,
            scenario: cfg.scenario.name(),
            subscribers: f.plays_ok,
            duration_s: window,
            forwarded_packets: forwarded,
            forwarded_pps: forwarded as f64 / window,
            server_cpu_seconds: server_cpu,
            cpu_us_per_packet: server_cpu
                .filter(|_| forwarded > 0)
                .map(|c| c * 1e6 / forwarded as f64),
            worker_cpu_us_per_packet: f
                .worker_cpu
                .map(|c| c.as_secs_f64())
                .filter(|c| forwarded > 0 && *c > 0.0)
                .map(|c| c * 1e6 / forwarded as f64),
            latency_us_p50: quantile(&st.latency_us, 0.5),
            latency_us_p99: quantile(&st.latency_us, 0.99),
            latency_us_p999: quantile(&st.latency_us, 0.999),
            loss_pct: st.loss_pct(),
            loss_after_nack_pct: (st.decrypting > 0).then(|| st.loss_after_nack_pct()),
            jitter_ms: st.jitter_ms(),
            mem_bytes_per_subscriber: mem,
            loadgen_bound: !reasons.is_empty(),
            server_alive: f.server_alive,
            details: Details {
                url: cfg.url.clone(),
                publishers: f.publishes_ok,
                plays_requested: plan.plays.len(),
                plays_failed: f.plays_failed,
                errors: f.errors.clone(),
                subscribers_receiving: st.subscribers_receiving,
                subscribers_silent: st.subscribers_silent,
                expected_packets: st.delta.expected_media,
                received_packets: st.delta.received_media,
                loss_gaps_pct: st.loss_gaps_pct(),
                decrypting_subscribers: st.decrypting,
                video_bitrate_bps: cfg.video_bitrate_bps,
                media: cfg.media.name().to_string(),
                pacing_factor: cfg.pacing_factor,
                payload_max: cfg.payload_max,
                published_packets: st.delta.published,
                rtx_packets: st.delta.rtx,
                decrypted_packets: st.delta.decrypted,
                latency_samples: st.latency_us.len(),
                latency_us_max: (!st.latency_us.is_empty()).then(|| st.latency_us.max()),
                jitter_video_ms: st.jitter_video_ms,
                jitter_audio_ms: st.jitter_audio_ms,
                join_ms_p50: st.join_ms_at(0.5),
                join_ms_p99: st.join_ms_at(0.99),
                join_ms_max: st.join_ms_at(1.0),
                ramp_s: f.ramp.as_secs_f64(),
                keyframe_requests_at_publishers: st.pli_received,
                peers_failed: st.peers_failed,
                server_pss_bytes: f.server_mem,
                loadgen_engine_util: st.engine_util(),
                loadgen_process_cpu_seconds: f.loadgen_cpu.map(|d| d.as_secs_f64()),
                loadgen_timer_lag_us_p99: lag,
                loadgen_rx_dropped: st.delta.rx_dropped,
                loadgen_tx_failed: st.delta.tx_failed,
                loadgen_bound_reasons: reasons,
                loadgen_cpus: super::procstat::allowed_cpus(),
            },
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The human table.
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, unit: &str, prec: usize| {
            v.map_or("n/a".to_string(), |x| format!("{x:.prec$} {unit}"))
        };
        let us = |v: Option<u64>| v.map_or("n/a".to_string(), |x| format!("{x} µs"));
        let d = &self.details;
        let rows: Vec<(&str, String)> = vec![
            (
                "target / scenario",
                format!("{:?} / {}", self.target, self.scenario),
            ),
            (
                "subscribers (plays ok / asked)",
                format!("{} / {}", self.subscribers, d.plays_requested),
            ),
            ("window", format!("{:.1} s", self.duration_s)),
            (
                "media",
                format!(
                    "{}, {} kbit/s video, {}",
                    d.media,
                    d.video_bitrate_bps / 1000,
                    d.pacing_factor
                        .map_or("a burst per frame".to_string(), |f| format!(
                            "paced at {f}× the bitrate"
                        ))
                ),
            ),
            (
                "forwarded packets",
                format!("{} ({:.0} pps)", self.forwarded_packets, self.forwarded_pps),
            ),
            ("server CPU", opt(self.server_cpu_seconds, "s", 3)),
            ("server CPU per packet", opt(self.cpu_us_per_packet, "µs", 2)),
            (
                "workers' CPU per packet",
                opt(self.worker_cpu_us_per_packet, "µs", 2),
            ),
            (
                "latency p50 / p99 / p99.9",
                format!(
                    "{} / {} / {}",
                    us(self.latency_us_p50),
                    us(self.latency_us_p99),
                    us(self.latency_us_p999)
                ),
            ),
            (
                "server alive at the end",
                if self.server_alive {
                    "yes".to_owned()
                } else {
                    "NO: not a measurement".to_owned()
                },
            ),
            (
                "loss before / after NACK",
                format!(
                    "{:.3} % / {} (of {} packets sent to subscribers; {} silent)",
                    self.loss_pct,
                    opt(self.loss_after_nack_pct, "%", 3),
                    d.expected_packets,
                    d.subscribers_silent
                ),
            ),
            (
                "jitter (video / audio)",
                format!(
                    "{:.2} ms ({:.2} / {:.2})",
                    self.jitter_ms, d.jitter_video_ms, d.jitter_audio_ms
                ),
            ),
            (
                "join p50 / p99",
                format!("{:.0} ms / {:.0} ms", d.join_ms_p50, d.join_ms_p99),
            ),
            (
                "memory per subscriber",
                opt(self.mem_bytes_per_subscriber.map(|b| b / 1024.0), "KiB", 1),
            ),
            (
                "load generator engine busy",
                format!("{:.0} %", d.loadgen_engine_util * 100.0),
            ),
        ];
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<32} {v}");
        }
        if self.loadgen_bound {
            let _ = writeln!(
                out,
                "WARNING: the load generator was the bottleneck: {}",
                d.loadgen_bound_reasons.join("; ")
            );
        }
        if d.plays_failed > 0 {
            let _ = writeln!(
                out,
                "{} plays failed, e.g. {:?}",
                d.plays_failed,
                d.errors.first()
            );
        }
        out
    }
}
