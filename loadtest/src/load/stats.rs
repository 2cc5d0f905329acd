//! The engine's counters: cumulative [`Totals`] (differenced between the start and the end
//! of the measurement window) and the [`EngineStats`] a window yields.
//!
//! Owned by the engine thread, which builds both from its peer slots; `EngineStats` is then
//! sent to the thread that writes the report. Loss in a window counts the sequence numbers
//! settled as lost plus those missing right now (difference of the two snapshots), so a
//! window does not wait for the 1024-packet window of each stream to settle.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::slot::{Role, Slot};
use crate::media::Kind;

/// Newest sequence numbers not yet counted missing before NACK (reordering margin).
const MARGIN_BEFORE_NACK: u64 = 2;
/// Newest sequence numbers not yet counted missing after NACK (time for repair).
const MARGIN_AFTER_NACK: u64 = 96;

/// Cumulative counters over every peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub rtp: u64,
    pub rtx: u64,
    pub received_before: u64,
    pub lost_before: u64,
    pub received_after: u64,
    pub lost_after: u64,
    pub published: u64,
    pub decrypted: u64,
    pub rx_dropped: u64,
    pub tx_failed: u64,
    /// What the publishers of linked subscribers sent (media packets), once per subscriber.
    pub expected_media: u64,
    /// What those subscribers received of it.
    pub received_media: u64,
}

impl Totals {
    pub fn of(slots: &[Slot], rx_dropped: u32, tx_failed: u64) -> Self {
        let mut t = Totals {
            rx_dropped: u64::from(rx_dropped),
            tx_failed,
            ..Totals::default()
        };
        // Each publisher's media packets sent, by its address: one pass, then a lookup per
        // subscriber.
        let sent_by: std::collections::HashMap<std::net::Ipv4Addr, u64> = slots
            .iter()
            .filter(|p| p.role == Role::Publisher)
            .map(|p| {
                (
                    p.local,
                    p.core.stats().video_packets_sent + p.core.stats().audio_packets_sent,
                )
            })
            .collect();
        for s in slots {
            if let Some(sent) = s.plays.and_then(|addr| sent_by.get(&addr).copied()) {
                t.expected_media += sent;
                t.received_media += s.media_received();
            }
            t.rtp += s.rtp;
            t.rtx += s.rtx;
            for st in &s.streams {
                t.received_before += st.seq.received;
                t.lost_before += st.seq.lost + st.seq.missing_now(MARGIN_BEFORE_NACK);
            }
            for (_, w) in &s.repaired {
                t.received_after += w.received;
                t.lost_after += w.lost + w.missing_now(MARGIN_AFTER_NACK);
            }
            let c = s.core.stats();
            t.decrypted += c.video_packets_received + c.audio_packets_received;
            if s.role == Role::Publisher {
                let p = s.core.stats();
                t.published += p.video_packets_sent + p.audio_packets_sent;
            }
        }
        t
    }

    pub fn minus(&self, base: &Totals) -> Totals {
        Totals {
            rtp: self.rtp.saturating_sub(base.rtp),
            rtx: self.rtx.saturating_sub(base.rtx),
            received_before: self.received_before.saturating_sub(base.received_before),
            lost_before: self.lost_before.saturating_sub(base.lost_before),
            received_after: self.received_after.saturating_sub(base.received_after),
            lost_after: self.lost_after.saturating_sub(base.lost_after),
            published: self.published.saturating_sub(base.published),
            decrypted: self.decrypted.saturating_sub(base.decrypted),
            rx_dropped: self.rx_dropped.saturating_sub(base.rx_dropped),
            tx_failed: self.tx_failed.saturating_sub(base.tx_failed),
            expected_media: self.expected_media.saturating_sub(base.expected_media),
            received_media: self.received_media.saturating_sub(base.received_media),
        }
    }
}

/// What the engine measured in one window.
#[derive(Debug, Clone)]
pub struct EngineStats {
    pub window: Duration,
    pub delta: Totals,
    pub engine_cpu: Duration,
    pub latency_us: Histogram<u64>,
    pub lag_us: Histogram<u64>,
    pub subscribers: usize,
    pub subscribers_receiving: usize,
    pub decrypting: usize,
    pub publishers: usize,
    pub join_ms: Vec<f64>,
    pub jitter_video_ms: f64,
    pub jitter_audio_ms: f64,
    pub pli_received: u64,
    pub keyframes_sent: u64,
    pub unroutable: u64,
    pub peers_failed: u64,
    /// Subscribers that received no media packet in the window.
    pub subscribers_silent: usize,
}

/// A histogram of microseconds, 1 µs to 60 s, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid")
}

fn pct(lost: u64, received: u64) -> f64 {
    match lost + received {
        0 => 0.0,
        all => lost as f64 * 100.0 / all as f64,
    }
}

fn mean(xs: &[f64]) -> f64 {
    match xs.len() {
        0 => 0.0,
        n => xs.iter().sum::<f64>() / n as f64,
    }
}

impl EngineStats {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        slots: &[Slot],
        delta: Totals,
        window: Duration,
        engine_cpu: Duration,
        latency_us: &Histogram<u64>,
        lag_us: &Histogram<u64>,
        unroutable: u64,
        peers_failed: u64,
    ) -> Self {
        let (mut jv, mut ja, mut join_ms) = (Vec::new(), Vec::new(), Vec::new());
        let (mut subs, mut receiving, mut decrypting, mut publishers) = (0, 0, 0, 0);
        let (mut pli, mut keyframes) = (0, 0);
        let mut silent = 0;
        for s in slots {
            match s.role {
                Role::Publisher => {
                    publishers += 1;
                    pli += s.core.stats().pli_received + s.core.stats().fir_received;
                    keyframes += s.core.stats().keyframes_sent;
                }
                Role::Subscriber { decrypt } => {
                    subs += 1;
                    decrypting += usize::from(decrypt);
                    silent += usize::from(s.media_received() == s.received_at_window);
                    if let Some(first) = s.first_rtp {
                        receiving += 1;
                        join_ms.push(first.saturating_duration_since(s.started).as_secs_f64() * 1e3);
                    }
                    for st in s.streams.iter().filter(|st| s.alive && st.seq.received > 0) {
                        let ms = st.jitter.value(st.rate).as_secs_f64() * 1e3;
                        match st.kind {
                            Kind::Video => jv.push(ms),
                            Kind::Audio => ja.push(ms),
                        }
                    }
                }
            }
        }
        join_ms.sort_by(f64::total_cmp);
        EngineStats {
            window,
            delta,
            engine_cpu,
            latency_us: latency_us.clone(),
            lag_us: lag_us.clone(),
            subscribers: subs,
            subscribers_receiving: receiving,
            decrypting,
            publishers,
            join_ms,
            jitter_video_ms: mean(&jv),
            jitter_audio_ms: mean(&ja),
            pli_received: pli,
            keyframes_sent: keyframes,
            unroutable,
            peers_failed,
            subscribers_silent: silent,
        }
    }

    /// Loss before NACK, percent of what the publishers sent in the window to each subscriber
    /// (a subscriber that received nothing counts all of it lost). Without a publisher link
    /// (Janus feeds) it falls back to [`EngineStats::loss_gaps_pct`].
    pub fn loss_pct(&self) -> f64 {
        if self.delta.expected_media == 0 {
            return self.loss_gaps_pct();
        }
        let received = self.delta.received_media.min(self.delta.expected_media);
        pct(self.delta.expected_media - received, received)
    }

    /// Loss before NACK from the gaps in each received stream's sequence numbers: blind to a
    /// stream that stopped altogether.
    pub fn loss_gaps_pct(&self) -> f64 {
        pct(self.delta.lost_before, self.delta.received_before)
    }

    /// Loss after NACK (decrypting subscribers), percent.
    pub fn loss_after_nack_pct(&self) -> f64 {
        pct(self.delta.lost_after, self.delta.received_after)
    }

    /// Mean jitter over every received stream, video and audio weighted alike.
    pub fn jitter_ms(&self) -> f64 {
        match (self.jitter_video_ms, self.jitter_audio_ms) {
            (v, 0.0) => v,
            (0.0, a) => a,
            (v, a) => (v + a) / 2.0,
        }
    }

    /// Fraction of the window the engine thread spent on the CPU.
    pub fn engine_util(&self) -> f64 {
        self.engine_cpu.as_secs_f64() / self.window.as_secs_f64().max(1e-9)
    }

    /// A percentile of the join times, in milliseconds.
    pub fn join_ms_at(&self, q: f64) -> f64 {
        let n = self.join_ms.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 - 1.0) * q).round() as usize;
        self.join_ms.get(i.min(n - 1)).copied().unwrap_or(0.0)
    }
}
