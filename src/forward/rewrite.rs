//! Per-player, per-track RTP rewriting: the player's own payload type, a sequence space that
//! starts at the first forwarded packet and stays continuous, and a fixed timestamp offset.
//!
//! Sans-IO, owned by the worker that owns the stream. Invariants: the first forwarded video packet
//! starts a keyframe (the player's decoder can start there); an output sequence number is
//! `input - first_input + first_output`, so gaps mirror the publisher's losses (NACKs stay
//! meaningful) and the player's SRTP rollover counter starts at 0.

use str0m::media::Pt;

/// Where a player's sequence space starts: below 2^15 so that the first packets cannot roll the
/// 16-bit sequence number over before the player's SRTP context has seen them.
pub const OUTPUT_SEQ_START_MAX: u64 = 1 << 15;

#[derive(Debug, Clone)]
pub struct TrackRewriter {
    out_pt: Pt,
    gate_on_keyframe: bool,
    out_seq_first: u64,
    ts_offset: u32,
    in_seq_first: Option<u64>,
}

/// See [`TrackRewriter::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackStart {
    pub in_seq_first: u64,
    pub out_seq_first: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub pt: Pt,
    pub seq: u64,
    pub ts: u32,
}

impl TrackRewriter {
    /// `seed` picks the output's starting sequence number and timestamp offset.
    pub fn new(out_pt: Pt, gate_on_keyframe: bool, seed: u64) -> Self {
        TrackRewriter {
            out_pt,
            gate_on_keyframe,
            out_seq_first: seed % OUTPUT_SEQ_START_MAX,
            ts_offset: (seed >> 16) as u32,
            in_seq_first: None,
        }
    }

    /// Where the track started: the first input sequence number it forwarded and the output
    /// number that became, once it has forwarded one.
    pub fn start(&self) -> Option<TrackStart> {
        Some(TrackStart {
            in_seq_first: self.in_seq_first?,
            out_seq_first: self.out_seq_first,
        })
    }

    /// Whether this track still waits for a keyframe before it forwards anything.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.gate_on_keyframe && self.in_seq_first.is_none()
    }

    /// Rewrite one incoming packet, or `None` to drop it (before the first keyframe, or older than
    /// the first forwarded packet).
    pub fn rewrite(&mut self, in_seq: u64, in_ts: u32, starts_keyframe: bool) -> Option<Rewritten> {
        let first = match self.in_seq_first {
            Some(first) => first,
            None if self.gate_on_keyframe && !starts_keyframe => return None,
            None => {
                self.in_seq_first = Some(in_seq);
                in_seq
            }
        };
        let offset = in_seq.checked_sub(first)?;
        let seq = self.out_seq_first.checked_add(offset)?;
        // Continuity: the output is the input shifted by one constant, so gaps mirror losses.
        debug_assert_eq!(seq - self.out_seq_first, in_seq - first);
        Some(Rewritten {
            pt: self.out_pt,
            seq,
            ts: in_ts.wrapping_add(self.ts_offset),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_waits_for_a_keyframe_then_stays_continuous() {
        let mut video = TrackRewriter::new(Pt::from(102), true, 0x1234_5678_9abc);
        assert!(video.waiting_for_keyframe());
        assert_eq!(video.rewrite(70_000, 1000, false), None);
        let first = video.rewrite(70_001, 1000, true).unwrap();
        assert_eq!(first.pt, Pt::from(102));
        assert!(first.seq < OUTPUT_SEQ_START_MAX);
        assert!(!video.waiting_for_keyframe());
        let mut last = first.seq;
        for (i, in_seq) in (70_002..70_100).enumerate() {
            let out = video.rewrite(in_seq, 1000 + 3000 * i as u32, false).unwrap();
            assert_eq!(out.seq, last + 1, "continuous");
            last = out.seq;
        }
    }

    #[test]
    fn gaps_mirror_losses_and_old_packets_drop() {
        let mut audio = TrackRewriter::new(Pt::from(111), false, 5);
        let a = audio.rewrite(10, 0, false).unwrap();
        let b = audio.rewrite(13, 960, false).unwrap();
        assert_eq!(b.seq - a.seq, 3);
        assert_eq!(audio.rewrite(9, 0, false), None);
        let reordered = audio.rewrite(12, 0, false).unwrap();
        assert_eq!(reordered.seq, b.seq - 1);
    }

    #[test]
    fn timestamps_shift_by_a_fixed_offset_and_wrap() {
        let mut audio = TrackRewriter::new(Pt::from(0), false, u64::MAX);
        let a = audio.rewrite(1, u32::MAX - 10, false).unwrap();
        let b = audio.rewrite(2, 150, false).unwrap();
        assert_eq!(b.ts.wrapping_sub(a.ts), 161);
    }
}
