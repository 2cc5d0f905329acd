//! One receiver URL's queue of webhook events, as a sans-IO state machine: fed stamped events,
//! delivery results and the time, it says which deliveries to start now and when to look
//! again.
//!
//! Thread: the control thread (behind the webhooks' mutex, never held across an `.await`).
//!
//! Invariants: each room is a lane and a lane has at most one delivery in flight, so a room's
//! events reach the receiver in the order they were queued (a retry holds the lane); lanes do
//! not wait for each other; at most [`WEBHOOK_IN_FLIGHT_MAX`] deliveries are in flight; at most
//! [`WEBHOOK_QUEUE_EVENTS_MAX`] events are queued (in flight included) — an event that finds
//! the queue full is dropped, as is one that failed [`WEBHOOK_ATTEMPTS_MAX`] times; every drop
//! is counted and the count not yet reported rides on the next delivery that succeeds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    Stamped, WEBHOOK_ATTEMPTS_MAX, WEBHOOK_BACKOFF_FIRST, WEBHOOK_IN_FLIGHT_MAX, WEBHOOK_QUEUE_EVENTS_MAX,
};

/// A delivery to start: POST this event's body (with `num_dropped`) and report the result.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub lane: String,
    pub event: Arc<Stamped>,
    /// The drops this delivery reports; given back when it fails.
    pub num_dropped: u64,
    /// 1 for the first try.
    pub attempt: u32,
}

#[derive(Default)]
struct Lane {
    queue: VecDeque<Pending>,
    busy: bool,
    /// A retry waits until then.
    not_before: Option<Instant>,
}

struct Pending {
    event: Arc<Stamped>,
    attempts: u32,
}

/// Totals since start, for `/metrics` and `/health` (serialized as `/health` shows them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OutboxCounts {
    pub queued: usize,
    pub in_flight: usize,
    pub delivered: u64,
    pub failed_attempts: u64,
    #[serde(rename = "dropped_queue_full")]
    pub dropped_full: u64,
    pub dropped_attempts: u64,
}

#[derive(Default)]
pub struct Outbox {
    lanes: BTreeMap<String, Lane>,
    counts: OutboxCounts,
    /// Drops not yet reported to the receiver.
    unreported: u64,
}

/// The wait before attempt `attempt + 1` after `attempt` failed: 0.5 s, doubling.
pub fn backoff(attempt: u32) -> Duration {
    WEBHOOK_BACKOFF_FIRST.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
}

impl Outbox {
    /// Queue an event; false (and counted) when the queue is full.
    pub fn push(&mut self, event: Arc<Stamped>) -> bool {
        if self.counts.queued >= WEBHOOK_QUEUE_EVENTS_MAX {
            self.counts.dropped_full += 1;
            self.unreported += 1;
            return false;
        }
        self.counts.queued += 1;
        let lane = self.lanes.entry(event.room.clone()).or_default();
        lane.queue.push_back(Pending { event, attempts: 0 });
        true
    }

    /// The deliveries to start now: the head of every idle lane that is due, within the
    /// in-flight bound.
    pub fn poll_deliveries(&mut self, now: Instant) -> Vec<Delivery> {
        let mut out = Vec::new();
        for (name, lane) in &mut self.lanes {
            if self.counts.in_flight >= WEBHOOK_IN_FLIGHT_MAX {
                break;
            }
            if lane.busy || lane.not_before.is_some_and(|at| at > now) {
                continue;
            }
            let Some(head) = lane.queue.front_mut() else {
                continue;
            };
            head.attempts += 1;
            lane.busy = true;
            lane.not_before = None;
            self.counts.in_flight += 1;
            out.push(Delivery {
                lane: name.clone(),
                event: head.event.clone(),
                num_dropped: std::mem::take(&mut self.unreported),
                attempt: head.attempts,
            });
        }
        out
    }

    /// The receiver answered 2xx: the lane's head is done.
    pub fn delivered(&mut self, delivery: &Delivery) {
        let Some(lane) = self.finish(delivery) else {
            return;
        };
        lane.queue.pop_front();
        self.counts.delivered += 1;
        self.counts.queued = self.counts.queued.saturating_sub(1);
        self.forget_if_idle(&delivery.lane);
    }

    /// The attempt failed: retry after the backoff, or drop the event after the last attempt.
    pub fn failed(&mut self, delivery: &Delivery, now: Instant) {
        self.unreported += delivery.num_dropped;
        self.counts.failed_attempts += 1;
        let Some(lane) = self.finish(delivery) else {
            return;
        };
        let attempts = lane.queue.front().map_or(0, |p| p.attempts);
        if attempts >= WEBHOOK_ATTEMPTS_MAX {
            lane.queue.pop_front();
            self.counts.queued = self.counts.queued.saturating_sub(1);
            self.counts.dropped_attempts += 1;
            self.unreported += 1;
            self.forget_if_idle(&delivery.lane);
        } else {
            lane.not_before = Some(now + backoff(attempts));
        }
    }

    /// When the next delivery may start without a result arriving first (a retry's backoff).
    /// None while the in-flight bound is reached: only a result can free a place then (and a
    /// time already past would make the delivery task spin).
    pub fn next_due(&self) -> Option<Instant> {
        if self.counts.in_flight >= WEBHOOK_IN_FLIGHT_MAX {
            return None;
        }
        self.lanes
            .values()
            .filter(|lane| !lane.busy && !lane.queue.is_empty())
            .filter_map(|lane| lane.not_before)
            .min()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.counts.queued == 0
    }

    pub fn counts(&self) -> OutboxCounts {
        self.counts
    }

    fn finish(&mut self, delivery: &Delivery) -> Option<&mut Lane> {
        let lane = self.lanes.get_mut(&delivery.lane)?;
        if !lane.busy {
            return None;
        }
        lane.busy = false;
        self.counts.in_flight = self.counts.in_flight.saturating_sub(1);
        Some(lane)
    }

    fn forget_if_idle(&mut self, name: &str) {
        if self
            .lanes
            .get(name)
            .is_some_and(|l| l.queue.is_empty() && !l.busy)
        {
            self.lanes.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(room: &str, sequence: u64) -> Arc<Stamped> {
        Arc::new(Stamped {
            id: format!("{room}-{sequence}"),
            name: "room_started",
            room: room.to_owned(),
            sequence,
            timestamp_ms: 0,
            fields: serde_json::Map::new(),
        })
    }

    #[test]
    fn a_lane_delivers_in_order_and_lanes_run_side_by_side() {
        let mut outbox = Outbox::default();
        let now = Instant::now();
        for seq in 1..=3 {
            outbox.push(stamped("a", seq));
        }
        outbox.push(stamped("b", 1));
        let first = outbox.poll_deliveries(now);
        let lanes: Vec<(&str, u64)> = first
            .iter()
            .map(|d| (d.lane.as_str(), d.event.sequence))
            .collect();
        assert_eq!(lanes, [("a", 1), ("b", 1)]);
        assert!(outbox.poll_deliveries(now).is_empty(), "one in flight per lane");
        outbox.delivered(&first[0]);
        let next = outbox.poll_deliveries(now);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].event.sequence, 2);
    }

    #[test]
    fn a_failure_holds_its_lane_with_backoff_then_drops_and_reports() {
        let mut outbox = Outbox::default();
        let mut now = Instant::now();
        outbox.push(stamped("a", 1));
        outbox.push(stamped("a", 2));
        for attempt in 1..=WEBHOOK_ATTEMPTS_MAX {
            let mut due = outbox.poll_deliveries(now);
            assert_eq!(due.len(), 1, "attempt {attempt}");
            let delivery = due.remove(0);
            assert_eq!((delivery.event.sequence, delivery.attempt), (1, attempt));
            outbox.failed(&delivery, now);
            if attempt < WEBHOOK_ATTEMPTS_MAX {
                assert!(
                    outbox.poll_deliveries(now).is_empty(),
                    "the lane waits its backoff"
                );
                assert_eq!(outbox.next_due(), Some(now + backoff(attempt)));
                now += backoff(attempt);
            }
        }
        let due = outbox.poll_deliveries(now);
        assert_eq!(due[0].event.sequence, 2);
        assert_eq!(due[0].num_dropped, 1, "the drop rides on the next delivery");
        // That delivery failing gives the count back for the one after.
        outbox.failed(&due[0], now);
        now += backoff(1);
        let again = outbox.poll_deliveries(now);
        assert_eq!(again[0].num_dropped, 1);
        outbox.delivered(&again[0]);
        assert!(outbox.is_empty());
        let counts = outbox.counts();
        assert_eq!((counts.delivered, counts.dropped_attempts), (1, 1));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(8));
    }

    #[test]
    fn a_full_queue_drops_new_events_and_counts_them() {
        let mut outbox = Outbox::default();
        for seq in 0..WEBHOOK_QUEUE_EVENTS_MAX as u64 {
            assert!(outbox.push(stamped(&format!("r{}", seq % 100), seq)));
        }
        assert!(!outbox.push(stamped("late", 1)));
        assert_eq!(outbox.counts().dropped_full, 1);
        let now = Instant::now();
        let due = outbox.poll_deliveries(now);
        assert_eq!(due.len(), WEBHOOK_IN_FLIGHT_MAX, "the in-flight bound");
        assert_eq!(due.iter().map(|d| d.num_dropped).sum::<u64>(), 1);
        // A failure's lane waits its backoff; once due, nothing is said to be due while the
        // bound is reached (a result wakes the task instead).
        outbox.failed(&due[0], now);
        let refill = outbox.poll_deliveries(now);
        assert_eq!(refill.len(), 1, "another lane takes the freed place");
        assert_eq!(outbox.next_due(), None, "full again: no timer");
    }
}
