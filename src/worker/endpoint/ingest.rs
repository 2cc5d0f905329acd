//! The ingest endpoint: a publisher whose "network" is the control thread. The RTMP bridge
//! turns an encoder's FLV into RTP there and hands each picture's (or audio frame's) packets
//! over in one [`Command::IngestRtp`](crate::worker::commands::Command); forwarding then
//! treats them like a browser's. It keeps the current group of pictures so a player that
//! joins late starts at once on its keyframe instead of waiting for the encoder's next one
//! (an RTMP encoder cannot be asked for a keyframe).
//!
//! Runs on the worker that owns the stream. Invariants: packets are forwarded in the order
//! control sent them; the first batch makes the endpoint connected (control announces the
//! stream then); the cached group starts with a keyframe batch and holds at most
//! [`GOP_CACHE_BYTES_MAX`] payload bytes (a longer group is not cached, and late players of it
//! wait for the next keyframe like any player does).

use std::time::{Duration, Instant};

use super::PollEffects;
use crate::forward::IncomingRtp;

/// Video payload bytes one ingest keeps for late players: two seconds of 1080p at 8 Mbit/s.
pub const GOP_CACHE_BYTES_MAX: usize = 2 << 20;
/// An ingest has no timers of its own (control ends it when the encoder goes).
const INGEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

pub struct Ingest {
    pending: Vec<IncomingRtp>,
    connected: bool,
    /// Video packets since the last keyframe, while they fit.
    gop: Vec<IncomingRtp>,
    gop_bytes: usize,
    gop_valid: bool,
    timeout: Instant,
}

impl Ingest {
    pub fn new(now: Instant) -> Self {
        Ingest {
            pending: Vec::new(),
            connected: false,
            gop: Vec::new(),
            gop_bytes: 0,
            gop_valid: false,
            timeout: now + INGEST_TIMEOUT,
        }
    }

    /// One batch from control: `keyframe` says it starts a keyframe, `video` that it is video.
    pub fn push(&mut self, keyframe: bool, video: bool, packets: Vec<IncomingRtp>) {
        if video {
            if keyframe {
                self.gop.clear();
                self.gop_bytes = 0;
                self.gop_valid = true;
            }
            if self.gop_valid {
                let bytes: usize = packets.iter().map(|p| p.payload.len()).sum();
                if self.gop_bytes.saturating_add(bytes) > GOP_CACHE_BYTES_MAX {
                    self.gop.clear();
                    self.gop_bytes = 0;
                    self.gop_valid = false;
                } else {
                    self.gop_bytes += bytes;
                    self.gop.extend(packets.iter().cloned());
                }
            }
        }
        self.pending.extend(packets);
    }

    /// The cached group of pictures, oldest first (empty when none is cached).
    pub fn cached_gop(&self) -> &[IncomingRtp] {
        if self.gop_valid {
            &self.gop
        } else {
            &[]
        }
    }

    pub fn poll(&mut self, effects: &mut PollEffects) -> Instant {
        if !self.pending.is_empty() {
            if !self.connected {
                self.connected = true;
                effects.connected = true;
            }
            effects.rtp.append(&mut self.pending);
        }
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use str0m::media::Pt;

    use super::*;

    fn packet(seq: u64, bytes: usize) -> IncomingRtp {
        IncomingRtp {
            pt: Pt::from(96),
            seq,
            ts: 0,
            marker: true,
            arrival: Instant::now(),
            payload: Arc::from(vec![0u8; bytes]),
            sender: None,
        }
    }

    #[test]
    fn the_cache_holds_the_group_since_the_last_keyframe() {
        let mut ingest = Ingest::new(Instant::now());
        ingest.push(false, true, vec![packet(1, 10)]);
        assert!(
            ingest.cached_gop().is_empty(),
            "nothing before the first keyframe"
        );
        ingest.push(true, true, vec![packet(2, 10), packet(3, 10)]);
        ingest.push(false, true, vec![packet(4, 10)]);
        ingest.push(false, false, vec![packet(1, 10)]);
        let seqs: Vec<u64> = ingest.cached_gop().iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        let mut effects = PollEffects::default();
        ingest.poll(&mut effects);
        assert!(effects.connected);
        assert_eq!(effects.rtp.len(), 5);
        effects.clear();
        ingest.poll(&mut effects);
        assert!(!effects.connected && effects.rtp.is_empty());
    }

    #[test]
    fn a_group_too_large_is_not_cached() {
        let mut ingest = Ingest::new(Instant::now());
        ingest.push(true, true, vec![packet(1, GOP_CACHE_BYTES_MAX)]);
        assert_eq!(ingest.cached_gop().len(), 1);
        ingest.push(false, true, vec![packet(2, 1)]);
        assert!(ingest.cached_gop().is_empty());
        ingest.push(false, true, vec![packet(3, 1)]);
        assert!(
            ingest.cached_gop().is_empty(),
            "stays uncached until the next keyframe"
        );
        ingest.push(true, true, vec![packet(4, 1)]);
        assert_eq!(ingest.cached_gop().len(), 1);
    }
}
