//! How long a player keeps its sent video packets for answering NACKs: sized from the round
//! trip the player's receiver reports show, the way Janus 1.x sizes its NACK queue (round trip
//! plus 100 ms, between 200 ms and 1 s).
//!
//! Sans-IO: fed round-trip samples, it says when the history length should change. Runs on the
//! worker that owns the player. Invariants: the window is always within
//! [`RTX_HISTORY_MIN`, `RTX_HISTORY_MAX`] and a multiple of [`RTX_HISTORY_STEP`], so it changes
//! rarely (each change drops str0m's history, which it cannot resize in place).

use std::time::Duration;

/// History before any round trip is known, and the floor: a browser NACKs a gap within a few
/// milliseconds of the next packet on a short path, so 200 ms covers the request and one retry.
pub const RTX_HISTORY_MIN: Duration = Duration::from_millis(200);
/// Ceiling: past a second a repair misses any receiver's jitter buffer.
pub const RTX_HISTORY_MAX: Duration = Duration::from_secs(1);
/// Added to the round trip: time for the receiver to notice the gap and for one retry.
pub const RTX_HISTORY_RTT_MARGIN: Duration = Duration::from_millis(100);
/// Granularity of the window, so jitter in the round trip does not reset the history.
pub const RTX_HISTORY_STEP: Duration = Duration::from_millis(100);
/// Most packets remembered, whatever the window (about 490 bytes of str0m state each;
/// payloads are shared): a second of 3 Mbit/s in 1200-byte packets.
pub const RTX_HISTORY_PACKETS_MAX: usize = 256;

/// One player's video retransmission history length.
#[derive(Debug, Clone)]
pub struct RtxHistory {
    /// Round trip smoothed like RFC 6298's SRTT (7/8 old, 1/8 new).
    smoothed_rtt: Option<Duration>,
    window: Duration,
}

impl Default for RtxHistory {
    fn default() -> Self {
        RtxHistory {
            smoothed_rtt: None,
            window: RTX_HISTORY_MIN,
        }
    }
}

impl RtxHistory {
    /// The current history length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Feed one round-trip sample; returns the new window when it changed.
    pub fn on_rtt(&mut self, rtt: Duration) -> Option<Duration> {
        let rtt = rtt.min(RTX_HISTORY_MAX);
        let smoothed = match self.smoothed_rtt {
            None => rtt,
            Some(previous) => (previous * 7 + rtt) / 8,
        };
        self.smoothed_rtt = Some(smoothed);
        let wanted =
            round_up_to_step(smoothed + RTX_HISTORY_RTT_MARGIN).clamp(RTX_HISTORY_MIN, RTX_HISTORY_MAX);
        if wanted == self.window {
            return None;
        }
        self.window = wanted;
        Some(wanted)
    }
}

fn round_up_to_step(value: Duration) -> Duration {
    let step = RTX_HISTORY_STEP.as_millis().max(1);
    let steps = value.as_millis().div_ceil(step);
    Duration::from_millis(u64::try_from(steps * step).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_short_path_keeps_the_floor() {
        let mut history = RtxHistory::default();
        assert_eq!(history.window(), RTX_HISTORY_MIN);
        assert_eq!(history.on_rtt(MS(1)), None);
        assert_eq!(history.on_rtt(MS(60)), None);
        assert_eq!(history.window(), MS(200));
    }

    #[test]
    fn a_long_path_gets_round_trip_plus_margin_in_steps() {
        let mut history = RtxHistory::default();
        assert_eq!(history.on_rtt(MS(350)), Some(MS(500)));
        assert_eq!(
            history.on_rtt(MS(360)),
            None,
            "jitter inside a step changes nothing"
        );
    }

    #[test]
    fn one_spike_is_smoothed_and_the_window_never_passes_a_second() {
        let mut history = RtxHistory::default();
        history.on_rtt(MS(40));
        assert_eq!(
            history.on_rtt(MS(900)),
            Some(MS(300)),
            "(7 * 40 + 900) / 8 = 147 ms"
        );
        for _ in 0..64 {
            history.on_rtt(Duration::from_secs(3600));
        }
        assert_eq!(history.window(), RTX_HISTORY_MAX);
    }

    #[test]
    fn recovering_paths_shrink_the_window_again() {
        let mut history = RtxHistory::default();
        history.on_rtt(MS(600));
        assert_eq!(history.window(), MS(700));
        for _ in 0..64 {
            history.on_rtt(MS(20));
        }
        assert_eq!(history.window(), RTX_HISTORY_MIN);
    }
}
