//! When a publisher sent each payload, looked up by the payload's fingerprint: one-way delay
//! for real encoded clips, whose payloads cannot carry a stamp without damaging the picture.
//!
//! Owns the log of one publisher. The publisher records every payload it writes; a
//! subscriber of that publisher looks up each payload it receives (an SFU forwards payloads
//! byte for byte) and gets the send instant, on the same clock as `stamp`. Shared between the
//! signalling thread, where peers are made, and the engine thread, behind a mutex that only
//! the engine thread takes once the load runs. Invariants: entries older than
//! [`SEND_LOG_AGE`] are dropped as new ones arrive, so the log holds a bounded window; when a
//! payload repeats inside that window (a clip restarted for a keyframe), the latest send
//! wins, so a late copy of the earlier one gives no sample or a short one, never a long one.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::stamp;

/// How long a send is remembered: beyond the delays of a saturated server (seconds), below
/// half a clip's length, so a looped clip never answers for its previous round. A packet
/// later than this gives no delay sample (the report's `latency_samples` falls short of
/// `decrypted_packets`).
pub const SEND_LOG_AGE: Duration = Duration::from_secs(4);
const _: () = assert!(SEND_LOG_AGE.as_secs() < super::encode::CLIP_SECONDS as u64 / 2);
/// Bytes hashed from each end of a payload: enough to tell apart every packet of a clip (VP8
/// packets start with a per-frame picture ID; the rest is entropy-coded data).
const FINGERPRINT_EDGE_BYTES: usize = 64;

/// A payload's identity: its length and the bytes at both ends.
pub fn fingerprint(payload: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    payload.len().hash(&mut h);
    let head = payload.get(..FINGERPRINT_EDGE_BYTES).unwrap_or(payload);
    let tail_from = payload.len().saturating_sub(FINGERPRINT_EDGE_BYTES);
    let tail = payload.get(tail_from..).unwrap_or_default();
    head.hash(&mut h);
    tail.hash(&mut h);
    h.finish()
}

#[derive(Debug, Default)]
struct Entries {
    /// Fingerprint → send instant since `stamp::epoch()`.
    sent: HashMap<u64, Duration>,
    /// Fingerprints in send order, for expiry.
    order: VecDeque<(Duration, u64)>,
}

/// The send log of one publisher.
#[derive(Debug, Default)]
pub struct SendLog {
    entries: Mutex<Entries>,
}

impl SendLog {
    /// Records that `payload` left at `at`.
    pub fn record(&self, payload: &[u8], at: Instant) {
        let at = at.saturating_duration_since(stamp::epoch());
        let print = fingerprint(payload);
        let Ok(mut e) = self.entries.lock() else {
            return;
        };
        while let Some(&(t, old)) = e.order.front() {
            if at.saturating_sub(t) <= SEND_LOG_AGE {
                break;
            }
            e.order.pop_front();
            if e.sent.get(&old) == Some(&t) {
                e.sent.remove(&old);
            }
        }
        e.sent.insert(print, at);
        e.order.push_back((at, print));
    }

    /// When `payload` was sent (since `stamp::epoch()`), if it was within the window.
    pub fn sent(&self, payload: &[u8]) -> Option<Duration> {
        let print = fingerprint(payload);
        self.entries.lock().ok()?.sent.get(&print).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_found_until_they_age_out() {
        let log = SendLog::default();
        let t0 = stamp::epoch() + Duration::from_secs(10);
        let a = vec![1u8; 1200];
        let mut b = a.clone();
        b[600] = 2; // differs only in the middle: not seen by the fingerprint
        let mut c = a.clone();
        c[1199] = 3;
        log.record(&a, t0);
        log.record(&c, t0 + Duration::from_millis(5));
        assert_eq!(log.sent(&a), Some(Duration::from_secs(10)));
        assert_eq!(log.sent(&c), Some(Duration::from_millis(10_005)));
        assert_eq!(log.sent(&b), log.sent(&a), "only the ends are hashed");
        assert_eq!(log.sent(&[9u8; 40]), None);
        log.record(&[7u8; 10], t0 + SEND_LOG_AGE + Duration::from_millis(1));
        assert_eq!(log.sent(&a), None, "aged out");
        assert!(log.sent(&c).is_some());
    }

    #[test]
    fn a_repeated_payload_answers_with_its_latest_send() {
        let log = SendLog::default();
        let t0 = stamp::epoch() + Duration::from_secs(1);
        log.record(b"frame zero", t0);
        log.record(b"frame zero", t0 + Duration::from_millis(300));
        log.record(b"later", t0 + SEND_LOG_AGE + Duration::from_millis(100));
        assert_eq!(
            log.sent(b"frame zero"),
            Some(Duration::from_millis(1300)),
            "expiring the first send keeps the second"
        );
    }
}
