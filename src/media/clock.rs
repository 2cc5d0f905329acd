//! Media clocks: RTP timestamps unwrapped past their 32-bit rollover, and a sender's RTCP
//! sender report (NTP wall time paired with an RTP timestamp) that maps any RTP time of that
//! stream to the sender's own wall clock (RFC 3550 section 6.4.1).
//!
//! Pure arithmetic, any thread. Invariants: an unwrapped timestamp never jumps by more than
//! 2^31 ticks from the previous one (a bigger step is read as a step backwards), so reordered
//! packets around a rollover land on the right side of it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The last sender report of a stream: its NTP time and the RTP timestamp of that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderClock {
    pub ntp: SystemTime,
    pub rtp: u32,
}

impl SenderClock {
    /// The sender's wall time, in microseconds since the UNIX epoch, of RTP timestamp `rtp`
    /// (within 2^31 ticks of the report's) at `clock_rate` Hz. `None` for a report dated
    /// before 1970 or a zero clock rate.
    pub fn sender_micros(&self, rtp: u32, clock_rate: u32) -> Option<i64> {
        if clock_rate == 0 {
            return None;
        }
        let ntp = i64::try_from(self.ntp.duration_since(UNIX_EPOCH).ok()?.as_micros()).ok()?;
        let ticks = i64::from(rtp.wrapping_sub(self.rtp) as i32);
        Some(ntp + ticks * 1_000_000 / i64::from(clock_rate))
    }
}

/// Extends 32-bit RTP timestamps to 64 bits, starting at the first one seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtpUnwrapper {
    last: Option<i64>,
}

impl RtpUnwrapper {
    pub fn unwrap(&mut self, rtp: u32) -> i64 {
        let extended = match self.last {
            None => i64::from(rtp),
            Some(last) => last + i64::from(rtp.wrapping_sub(last as u32) as i32),
        };
        self.last = Some(match self.last {
            Some(last) => last.max(extended),
            None => extended,
        });
        extended
    }

    /// Forget the history (a new RTP timeline, after a reconnect).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unwrapping_crosses_the_rollover_both_ways() {
        let mut u = RtpUnwrapper::default();
        let a = u.unwrap(u32::MAX - 100);
        let b = u.unwrap(200);
        assert_eq!(b - a, 301);
        let reordered = u.unwrap(u32::MAX - 50);
        assert_eq!(reordered - a, 50, "a late packet from before the rollover");
        let c = u.unwrap(3000);
        assert_eq!(c - b, 2800);
    }

    #[test]
    fn a_sender_report_maps_rtp_time_across_a_wrap() {
        let ntp = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let report = SenderClock {
            ntp,
            rtp: u32::MAX - 44_999,
        };
        let base = report.sender_micros(u32::MAX - 44_999, 90_000).unwrap();
        assert_eq!(base, 1_700_000_000_000_000);
        // One second later at 90 kHz, past the rollover.
        assert_eq!(report.sender_micros(45_000, 90_000).unwrap() - base, 1_000_000);
        // Half a second before the report.
        assert_eq!(
            report.sender_micros(u32::MAX - 89_999, 90_000).unwrap() - base,
            -500_000
        );
        assert_eq!(report.sender_micros(0, 0), None);
    }
}
