//! The hook client's counters and the limiter that keeps failure warnings to one per
//! [`super::HOOK_WARN_INTERVAL`].
//!
//! Thread: whichever awaits the call, in webcall the control thread (tokio current-thread);
//! the counters are atomics and the limiter a mutex held for a few instructions, never across
//! an `.await`, so clones used from other threads stay correct too.
//!
//! Invariants: each call adds one to `calls` when it starts and, when it ends, one to exactly
//! one of `allowed`, `refused` or `failed`; `calls` minus their sum is the calls in flight
//! (or dropped by their caller before they ended).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Totals since the client was made, shared by its clones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookCountersSnapshot {
    /// Calls started.
    pub calls: u64,
    /// The backend allowed (2xx, or 404: not hooked).
    pub allowed: u64,
    /// The backend refused (4xx, or 2xx with a `status` >= 400).
    pub refused: u64,
    /// No usable answer: timeout, busy, connection or TLS error, 5xx, unreadable body. The
    /// verdict then came from the failure policy.
    pub failed: u64,
    /// Failure warnings not logged because one had been within the interval.
    pub warnings_suppressed: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    calls: AtomicU64,
    allowed: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    warnings_suppressed: AtomicU64,
}

/// Which counter a finished call adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Allowed,
    Refused,
    Failed,
}

impl Counters {
    pub(super) fn started(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn ended(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Allowed => &self.allowed,
            Outcome::Refused => &self.refused,
            Outcome::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn warning_suppressed(&self) {
        self.warnings_suppressed.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> HookCountersSnapshot {
        HookCountersSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            allowed: self.allowed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            warnings_suppressed: self.warnings_suppressed.load(Ordering::Relaxed),
        }
    }
}

/// Lets one warning through per interval and counts the ones it holds back.
#[derive(Debug)]
pub(super) struct WarnLimiter {
    interval: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl WarnLimiter {
    pub(super) fn new(interval: Duration) -> Self {
        WarnLimiter {
            interval,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(n)` when a warning at `now` is to be logged, `n` being how many were held back
    /// since the last one; `None` when it is to be held back.
    pub(super) fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_with_the_count_held_back() {
        let mut limiter = WarnLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limiter.admit(t0), Some(0));
        assert_eq!(limiter.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.admit(t0 + Duration::from_millis(9_999)), None);
        assert_eq!(limiter.admit(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(limiter.admit(t0 + Duration::from_secs(11)), None);
        assert_eq!(limiter.admit(t0 + Duration::from_secs(30)), Some(1));
        // A clock read out of order is held back, not a panic.
        assert_eq!(limiter.admit(t0), None);
    }

    #[test]
    fn each_call_ends_in_one_counter() {
        let counters = Counters::default();
        for outcome in [
            Outcome::Allowed,
            Outcome::Refused,
            Outcome::Failed,
            Outcome::Failed,
        ] {
            counters.started();
            counters.ended(outcome);
        }
        counters.started();
        counters.warning_suppressed();
        let snap = counters.snapshot();
        assert_eq!(
            snap,
            HookCountersSnapshot {
                calls: 5,
                allowed: 1,
                refused: 1,
                failed: 2,
                warnings_suppressed: 1
            }
        );
    }
}
