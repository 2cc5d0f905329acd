//! Loss injected on purpose into a player's incoming video, before str0m sees it: the way to
//! test that the server repairs losses from its retransmission history (NACK → RTX).
//!
//! Sans-IO, owned by one `PeerCore`. Invariants: only RTP datagrams of one SSRC are dropped —
//! the first seen carrying more than [`VIDEO_DATAGRAM_BYTES_MIN`] bytes, which is video (audio
//! packets are smaller) — so RTCP, audio and retransmissions (RTX has its own SSRC) all pass.

/// An RTP datagram at least this big is video: Opus and G.711 packets stay well below it.
pub const VIDEO_DATAGRAM_BYTES_MIN: usize = 400;
const RTP_HEADER_BYTES: usize = 12;

#[derive(Debug, Clone)]
pub struct InjectedLoss {
    every: u64,
    video_ssrc: Option<u32>,
    seen: u64,
    dropped: u64,
}

impl InjectedLoss {
    /// Drops every `every`th video RTP datagram (`every` of 0 or 1 would drop everything:
    /// taken as 2).
    pub fn every(every: u32) -> Self {
        InjectedLoss {
            every: u64::from(every.max(2)),
            video_ssrc: None,
            seen: 0,
            dropped: 0,
        }
    }

    /// Video datagrams dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether to drop this incoming datagram.
    pub fn drops(&mut self, datagram: &[u8]) -> bool {
        let Some(ssrc) = rtp_ssrc(datagram) else {
            return false;
        };
        let video_ssrc = match self.video_ssrc {
            Some(video) => video,
            None if datagram.len() >= VIDEO_DATAGRAM_BYTES_MIN => *self.video_ssrc.insert(ssrc),
            None => return false,
        };
        if ssrc != video_ssrc {
            return false;
        }
        self.seen += 1;
        let drop = self.seen.is_multiple_of(self.every);
        self.dropped += u64::from(drop);
        drop
    }
}

/// The SSRC of an RTP (not RTCP, STUN or DTLS) datagram.
fn rtp_ssrc(datagram: &[u8]) -> Option<u32> {
    let header = datagram.get(..RTP_HEADER_BYTES)?;
    let version_2 = header[0] >> 6 == 2;
    // RFC 5761: with RTCP multiplexed, a second byte of 192..=223 is an RTCP packet type.
    let rtcp = (192..=223).contains(&header[1]);
    (version_2 && !rtcp).then(|| u32::from_be_bytes([header[8], header[9], header[10], header[11]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(ssrc: u32, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[0] = 0x80;
        d[1] = 96;
        d[8..12].copy_from_slice(&ssrc.to_be_bytes());
        d
    }

    #[test]
    fn drops_every_nth_video_datagram_only() {
        let mut loss = InjectedLoss::every(3);
        let audio = rtp(1, 100);
        let video = rtp(2, 1200);
        let rtx = rtp(3, 1200);
        let mut rtcp = rtp(2, 100);
        rtcp[1] = 201;
        let dropped: Vec<bool> = (0..6).map(|_| loss.drops(&video)).collect();
        assert_eq!(dropped, [false, false, true, false, false, true]);
        assert!(!loss.drops(&audio) && !loss.drops(&rtx) && !loss.drops(&rtcp));
        assert!(!loss.drops(&[0x16, 0xfe, 0xfd]), "DTLS passes");
        assert_eq!(loss.dropped(), 2);
    }

    #[test]
    fn small_packets_before_the_first_video_do_not_choose_the_ssrc() {
        let mut loss = InjectedLoss::every(2);
        assert!(!loss.drops(&rtp(1, 100)));
        assert!(!loss.drops(&rtp(1, 100)));
        assert!(!loss.drops(&rtp(2, 900)));
        assert!(
            loss.drops(&rtp(2, 300)),
            "the video SSRC's small packets count too"
        );
    }
}
