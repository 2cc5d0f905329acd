//! A browser-like send pacer for a publisher's video: a frame's packets leave spread out at a
//! multiple of the bitrate instead of all at the frame's instant.
//!
//! Owns the queue of one video track's packets that are coded but not yet sent. Browsers
//! pace their RTP (Chrome's pacer sends at 2.5× the target bitrate), so an SFU sees a frame
//! as a train of packets a few milliseconds apart, not as one burst. Sans-IO: the publisher's
//! clock pushes frames and pops what is due at the time it is given. Invariants: packets
//! leave in the order they were pushed; a packet is never due before its frame; each packet
//! takes `bytes × 8 / rate` of the line after the one before it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Chrome's pacing factor: packets leave at up to this multiple of the target bitrate.
pub const BROWSER_PACING_FACTOR: f64 = 2.5;

/// One packet waiting for its turn.
#[derive(Debug)]
pub struct PacedPacket {
    /// When it may leave.
    pub at: Instant,
    /// RTP timestamp of its frame.
    pub ts: u32,
    /// Last packet of its frame.
    pub marker: bool,
    /// The RTP payload.
    pub payload: Vec<u8>,
}

/// The pacing queue of one video track.
#[derive(Debug)]
pub struct VideoPacer {
    rate_bps: f64,
    queue: VecDeque<PacedPacket>,
    /// When the line is free again after the last queued packet.
    line_free_at: Option<Instant>,
}

impl VideoPacer {
    /// A pacer sending at `rate_bps` bits per second.
    pub fn new(rate_bps: f64) -> Self {
        VideoPacer {
            rate_bps: rate_bps.max(1.0),
            queue: VecDeque::new(),
            line_free_at: None,
        }
    }

    /// Queues the packets of a frame due at `frame_at`.
    pub fn push_frame(&mut self, frame_at: Instant, ts: u32, packets: Vec<Vec<u8>>) {
        let last = packets.len().saturating_sub(1);
        for (i, payload) in packets.into_iter().enumerate() {
            let at = self.line_free_at.map_or(frame_at, |free| free.max(frame_at));
            let on_line = Duration::from_secs_f64(payload.len() as f64 * 8.0 / self.rate_bps);
            self.line_free_at = Some(at + on_line);
            self.queue.push_back(PacedPacket {
                at,
                ts,
                marker: i == last,
                payload,
            });
        }
    }

    /// The next packet due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<PacedPacket> {
        if self.queue.front()?.at > now {
            return None;
        }
        self.queue.pop_front()
    }

    /// When the next queued packet is due.
    pub fn next_at(&self) -> Option<Instant> {
        self.queue.front().map(|p| p.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_leaves_as_a_train_at_the_pacing_rate() {
        let t0 = Instant::now();
        // 1.5 Mbit/s × 2.5: a 1200-byte packet takes 2.56 ms of the line.
        let mut pacer = VideoPacer::new(1_500_000.0 * BROWSER_PACING_FACTOR);
        pacer.push_frame(t0, 9000, vec![vec![0; 1200], vec![0; 1200], vec![0; 300]]);
        let first = pacer.pop_due(t0).unwrap();
        assert_eq!((first.ts, first.marker), (9000, false));
        assert!(pacer.pop_due(t0).is_none(), "the second waits for the line");
        let gap = Duration::from_micros(2560);
        assert_eq!(pacer.next_at(), Some(t0 + gap));
        assert!(pacer.pop_due(t0 + gap).is_some());
        let last = pacer.pop_due(t0 + gap * 2).unwrap();
        assert!(last.marker);
        assert_eq!(pacer.next_at(), None);
    }

    #[test]
    fn a_late_frame_queues_behind_the_previous_one_and_never_leaves_early() {
        let t0 = Instant::now();
        let mut pacer = VideoPacer::new(8_000.0); // 1 ms per byte
        pacer.push_frame(t0, 1, vec![vec![0; 10]]);
        pacer.push_frame(t0 + Duration::from_millis(3), 2, vec![vec![0; 10]]);
        pacer.push_frame(t0 + Duration::from_millis(50), 3, vec![vec![0; 10]]);
        let due: Vec<_> = std::iter::from_fn(|| pacer.pop_due(t0 + Duration::from_secs(1)))
            .map(|p| (p.ts, p.at.duration_since(t0).as_millis()))
            .collect();
        assert_eq!(due, vec![(1, 0), (2, 10), (3, 50)]);
    }
}
