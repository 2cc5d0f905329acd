//! What a subscriber measures from the RTP it receives: loss, reordering, duplicates and
//! RFC 3550 interarrival jitter, per stream, from the clear RTP header of each datagram.
//!
//! Pure and sans-IO (arrival times come in as arguments). SRTP leaves the RTP header in the
//! clear, so these counters need no decryption and cost a few nanoseconds per packet.
//! [`SeqWindow`] counts a sequence number as lost when it leaves a 1024-packet window without
//! having arrived, so late (reordered or repaired) packets inside the window are not loss.

use std::time::{Duration, Instant};

/// Sequence numbers tracked behind the highest one.
const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// The clear fields of an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHead {
    /// Payload type.
    pub pt: u8,
    /// 16-bit sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// SSRC.
    pub ssrc: u32,
}

/// Parses the RTP header of a datagram; `None` for STUN, DTLS, RTCP or garbage.
pub fn rtp_head(d: &[u8]) -> Option<RtpHead> {
    let b0 = *d.first()?;
    let b1 = *d.get(1)?;
    if b0 >> 6 != 2 || d.len() < 12 {
        return None;
    }
    let pt = b1 & 0x7f;
    if (64..96).contains(&pt) {
        return None; // RTCP (RFC 5761 demultiplexing)
    }
    let u16_at = |i: usize| Some(u16::from_be_bytes([*d.get(i)?, *d.get(i + 1)?]));
    let u32_at = |i: usize| Some(u32::from_be_bytes(d.get(i..i + 4)?.try_into().ok()?));
    Some(RtpHead {
        pt,
        seq: u16_at(2)?,
        ts: u32_at(4)?,
        ssrc: u32_at(8)?,
    })
}

/// Extends a 16-bit sequence number next to the highest extended one seen.
pub fn extend_seq(highest: Option<u64>, seq: u16) -> u64 {
    let Some(h) = highest else {
        return u64::from(seq) + (1 << 16);
    };
    let base = h & !0xffff;
    let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
    candidates
        .into_iter()
        .map(|c| c.wrapping_add(u64::from(seq)))
        .min_by_key(|c| c.abs_diff(h))
        .unwrap_or(h)
}

/// Loss, reordering and duplicates of one sequence space.
#[derive(Debug, Clone, Default)]
pub struct SeqWindow {
    first: Option<u64>,
    highest: Option<u64>,
    bits: [u64; WORDS],
    /// Distinct packets received.
    pub received: u64,
    /// Packets that left the window without arriving.
    pub lost: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// Packets that arrived twice.
    pub duplicates: u64,
    /// Packets older than the window (counted neither received nor lost again).
    pub too_late: u64,
}

fn slot(seq: u64) -> (usize, u64) {
    let slot = (seq % WINDOW) as usize;
    (slot / 64, 1u64 << (slot % 64))
}

impl SeqWindow {
    fn is_set(&self, seq: u64) -> bool {
        let (w, m) = slot(seq);
        self.bits.get(w).is_some_and(|x| x & m != 0)
    }

    fn set(&mut self, seq: u64, on: bool) {
        let (w, m) = slot(seq);
        if let Some(x) = self.bits.get_mut(w) {
            if on {
                *x |= m;
            } else {
                *x &= !m;
            }
        }
    }

    /// The highest extended sequence number seen.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Records an arrival of the extended sequence number `seq`.
    pub fn push(&mut self, seq: u64) {
        let (Some(h), Some(first)) = (self.highest, self.first) else {
            (self.first, self.highest) = (Some(seq), Some(seq));
            self.set(seq, true);
            self.received += 1;
            return;
        };
        if seq > h {
            if seq - h > WINDOW {
                // Everything in the old window is settled, and so is what the jump skipped.
                self.lost += self.missing_between(h.saturating_sub(WINDOW - 1).max(first), h);
                self.lost += (seq - WINDOW).saturating_sub(h);
                self.bits = [0; WORDS];
            } else {
                for s in h + 1..=seq {
                    if let Some(old) = s.checked_sub(WINDOW) {
                        if old >= first && !self.is_set(old) {
                            self.lost += 1;
                        }
                    }
                    self.set(s, false);
                }
            }
            self.highest = Some(seq);
            self.set(seq, true);
            self.received += 1;
        } else if h - seq >= WINDOW {
            self.too_late += 1;
        } else if self.is_set(seq) {
            self.duplicates += 1;
        } else {
            self.set(seq, true);
            self.received += 1;
            self.reordered += 1;
            self.first = Some(first.min(seq));
        }
    }

    fn missing_between(&self, from: u64, to: u64) -> u64 {
        (from..=to).filter(|s| !self.is_set(*s)).count() as u64
    }

    /// Packets still missing in the window, ignoring the newest `margin` sequence numbers
    /// (they may yet arrive or be repaired).
    pub fn missing_now(&self, margin: u64) -> u64 {
        let (Some(h), Some(first)) = (self.highest, self.first) else {
            return 0;
        };
        let from = h.saturating_sub(WINDOW - 1).max(first);
        match h.checked_sub(margin) {
            Some(to) if to >= from => self.missing_between(from, to),
            _ => 0,
        }
    }
}

/// RFC 3550 interarrival jitter of one stream, in RTP clock units.
#[derive(Debug, Clone, Default)]
pub struct Jitter {
    last: Option<(Instant, u32)>,
    jitter: f64,
}

impl Jitter {
    /// Feeds one arrival of a packet with RTP timestamp `ts` at clock `rate` (Hz).
    pub fn push(&mut self, arrival: Instant, ts: u32, rate: u32) {
        if let Some((t0, ts0)) = self.last {
            let wall = if arrival >= t0 {
                arrival.duration_since(t0).as_secs_f64()
            } else {
                -t0.duration_since(arrival).as_secs_f64()
            };
            let d = wall * f64::from(rate) - f64::from(ts.wrapping_sub(ts0) as i32);
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.last = Some((arrival, ts));
    }

    /// The current estimate as a duration.
    pub fn value(&self, rate: u32) -> Duration {
        Duration::from_secs_f64(self.jitter / f64::from(rate.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_reorder_duplicates() {
        let mut w = SeqWindow::default();
        let mut h = None;
        for s in [65530u16, 65531, 65533, 65532, 65532, 0, 1, 5] {
            let e = extend_seq(h, s);
            h = Some(h.map_or(e, |x: u64| x.max(e)));
            w.push(e);
        }
        assert_eq!(w.received, 7);
        assert_eq!((w.reordered, w.duplicates), (1, 1));
        assert_eq!(w.missing_now(0), 5, "65534, 65535, 2, 3, 4");
        for s in 6..3000u16 {
            let e = extend_seq(h, s);
            h = Some(e);
            w.push(e);
        }
        assert_eq!(w.lost, 5);
        assert_eq!(w.missing_now(0), 0);
    }

    #[test]
    fn header_and_jitter() {
        let d = [0x80, 0xe0, 0x12, 0x34, 0, 0, 0, 9, 1, 2, 3, 4, 0xaa];
        let h = rtp_head(&d).unwrap();
        assert_eq!((h.pt, h.seq, h.ts, h.ssrc), (96, 0x1234, 9, 0x01020304));
        assert!(
            rtp_head(&[0x80, 0xc8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(),
            "RTCP SR"
        );
        assert!(rtp_head(&[0x00, 0x01, 0, 0]).is_none(), "STUN");
        let mut j = Jitter::default();
        let t = Instant::now();
        for i in 0..100u32 {
            j.push(t + Duration::from_millis(u64::from(i) * 20), i * 960, 48_000);
        }
        assert!(j.value(48_000) < Duration::from_micros(10));
    }
}
