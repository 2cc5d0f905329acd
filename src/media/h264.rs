//! H.264 over RTP (RFC 6184), receiving side: RTP payloads (single NAL units, STAP-A
//! aggregates, FU-A fragments) in, access units out, each a list of NAL units with the RTP
//! timestamp they share and whether they hold an IDR picture.
//!
//! Sans-IO, fed packets in sequence order by whoever owns the stream (a recorder writer, the
//! RTMP bridge). Invariants: a fragment that arrives without its start, or after a gap in the
//! sequence numbers, drops the NAL unit it belongs to and marks the access unit damaged (the
//! caller asks for a keyframe rather than write a smeared picture); every length is checked
//! against the bytes left; a NAL unit grows to at most [`NAL_BYTES_MAX`] and an access unit to
//! [`ACCESS_UNIT_BYTES_MAX`], past which it is dropped and counted as damaged.

/// The largest NAL unit reassembled from fragments: a 4K intra picture at a high bitrate fits.
pub const NAL_BYTES_MAX: usize = 4 << 20;
/// The largest access unit kept.
pub const ACCESS_UNIT_BYTES_MAX: usize = 8 << 20;

pub const NAL_TYPE_NON_IDR: u8 = 1;
pub const NAL_TYPE_IDR: u8 = 5;
pub const NAL_TYPE_SEI: u8 = 6;
pub const NAL_TYPE_SPS: u8 = 7;
pub const NAL_TYPE_PPS: u8 = 8;
pub const NAL_TYPE_AUD: u8 = 9;
const NAL_TYPE_STAP_A: u8 = 24;
const NAL_TYPE_FU_A: u8 = 28;

pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// One picture's NAL units.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessUnit {
    pub rtp_timestamp: u32,
    pub nals: Vec<Vec<u8>>,
    /// Holds an IDR slice.
    pub keyframe: bool,
    /// A packet of it was lost or malformed: some NAL units are missing.
    pub damaged: bool,
}

impl AccessUnit {
    pub fn bytes(&self) -> usize {
        self.nals.iter().map(Vec::len).sum()
    }
}

/// RTP payloads in, access units out.
#[derive(Debug, Default)]
pub struct H264Depacketizer {
    current: Option<AccessUnit>,
    /// A FU-A NAL unit being reassembled.
    fragment: Option<Vec<u8>>,
    last_seq: Option<u64>,
    /// Access units finished, oldest first.
    ready: std::collections::VecDeque<AccessUnit>,
}

impl H264Depacketizer {
    /// Feed one packet: extended sequence number, RTP timestamp, marker bit, payload.
    pub fn push(&mut self, seq: u64, timestamp: u32, marker: bool, payload: &[u8]) {
        let gap = self.last_seq.is_some_and(|last| seq != last.wrapping_add(1));
        if self.last_seq.is_some_and(|last| seq <= last) {
            return; // a duplicate or a late packet: its place has passed
        }
        self.last_seq = Some(seq);
        if self
            .current
            .as_ref()
            .is_some_and(|au| au.rtp_timestamp != timestamp)
        {
            self.finish();
        }
        let au = self.current.get_or_insert_with(|| AccessUnit {
            rtp_timestamp: timestamp,
            ..AccessUnit::default()
        });
        if gap {
            au.damaged = true;
            self.fragment = None;
        }
        let Some(&header) = payload.first() else {
            return;
        };
        match header & 0x1f {
            NAL_TYPE_STAP_A => self.stap_a(payload),
            NAL_TYPE_FU_A => self.fu_a(payload),
            1..=23 => self.nal(payload.to_vec()),
            _ => self.damage(), // STAP-B, MTAP, FU-B: not sent in WebRTC
        }
        if marker {
            self.finish();
        }
    }

    /// The next finished access unit.
    pub fn pop(&mut self) -> Option<AccessUnit> {
        self.ready.pop_front()
    }

    /// Finish what is pending (the stream ended).
    pub fn flush(&mut self) {
        self.finish();
    }

    fn damage(&mut self) {
        if let Some(au) = self.current.as_mut() {
            au.damaged = true;
        }
    }

    fn nal(&mut self, nal: Vec<u8>) {
        let Some(au) = self.current.as_mut() else {
            return;
        };
        if nal.is_empty() || au.bytes().saturating_add(nal.len()) > ACCESS_UNIT_BYTES_MAX {
            au.damaged = true;
            return;
        }
        if nal_type(&nal) == Some(NAL_TYPE_IDR) {
            au.keyframe = true;
        }
        au.nals.push(nal);
    }

    fn stap_a(&mut self, payload: &[u8]) {
        let mut rest = payload.get(1..).unwrap_or_default();
        while !rest.is_empty() {
            let Some(size) = rest
                .get(..2)
                .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
            else {
                return self.damage();
            };
            let Some(nal) = rest.get(2..2 + size) else {
                return self.damage();
            };
            self.nal(nal.to_vec());
            rest = rest.get(2 + size..).unwrap_or_default();
        }
    }

    fn fu_a(&mut self, payload: &[u8]) {
        let (Some(&indicator), Some(&header)) = (payload.first(), payload.get(1)) else {
            return self.damage();
        };
        let data = payload.get(2..).unwrap_or_default();
        let start = header & 0x80 != 0;
        let end = header & 0x40 != 0;
        if start {
            let mut nal = Vec::with_capacity(data.len() * 4 + 1);
            nal.push((indicator & 0xe0) | (header & 0x1f));
            nal.extend_from_slice(data);
            self.fragment = Some(nal);
        } else if let Some(nal) = self.fragment.as_mut() {
            if nal.len() + data.len() > NAL_BYTES_MAX {
                self.fragment = None;
                return self.damage();
            }
            nal.extend_from_slice(data);
        } else {
            return self.damage(); // a middle or end without its start
        }
        if end {
            if let Some(nal) = self.fragment.take() {
                self.nal(nal);
            }
        }
    }

    fn finish(&mut self) {
        if self.fragment.take().is_some() {
            self.damage();
        }
        if let Some(au) = self.current.take() {
            if !au.nals.is_empty() || au.damaged {
                self.ready.push_back(au);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fu(start: bool, end: bool, nal_type: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![
            0x60 | NAL_TYPE_FU_A,
            (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type,
        ];
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn stap_a_and_fu_a_make_one_keyframe() {
        let mut d = H264Depacketizer::default();
        let sps = [0x67, 1, 2, 3];
        let pps = [0x68, 4];
        let mut stap = vec![0x78];
        for nal in [&sps[..], &pps[..]] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(nal);
        }
        d.push(10, 900, false, &stap);
        d.push(11, 900, false, &fu(true, false, NAL_TYPE_IDR, &[9, 9]));
        d.push(12, 900, false, &fu(false, false, NAL_TYPE_IDR, &[8]));
        d.push(13, 900, true, &fu(false, true, NAL_TYPE_IDR, &[7]));
        let au = d.pop().unwrap();
        assert_eq!(au.nals, vec![sps.to_vec(), pps.to_vec(), vec![0x65, 9, 9, 8, 7]]);
        assert!(au.keyframe && !au.damaged);
        assert_eq!(au.rtp_timestamp, 900);
        assert!(d.pop().is_none());
    }

    #[test]
    fn a_lost_fragment_damages_the_picture_and_the_next_one_is_clean() {
        let mut d = H264Depacketizer::default();
        d.push(1, 100, false, &fu(true, false, NAL_TYPE_NON_IDR, &[1]));
        d.push(3, 100, true, &fu(false, true, NAL_TYPE_NON_IDR, &[2])); // 2 lost
        let au = d.pop().unwrap();
        assert!(au.damaged && au.nals.is_empty());
        d.push(4, 200, true, &[0x41, 5, 6]);
        let au = d.pop().unwrap();
        assert!(!au.damaged && !au.keyframe);
        assert_eq!(au.nals, vec![vec![0x41, 5, 6]]);
    }

    #[test]
    fn a_new_timestamp_closes_an_access_unit_without_a_marker() {
        let mut d = H264Depacketizer::default();
        d.push(1, 100, false, &[0x41, 1]);
        d.push(2, 200, false, &[0x41, 2]);
        assert_eq!(d.pop().map(|a| a.rtp_timestamp), Some(100));
        d.flush();
        assert_eq!(d.pop().map(|a| a.rtp_timestamp), Some(200));
    }

    #[test]
    fn lying_lengths_and_junk_never_panic() {
        let mut d = H264Depacketizer::default();
        let mut seq = 0;
        let mut state = 0x9e37_79b9_u32;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let len = (state % 40) as usize;
            let payload: Vec<u8> = (0..len).map(|i| (state >> (i % 24)) as u8).collect();
            seq += 1 + u64::from(state.is_multiple_of(3));
            d.push(seq, state % 7, state.is_multiple_of(5), &payload);
            while d.pop().is_some() {}
        }
        d.push(seq + 1, 1, true, &[0x78, 0xff, 0xff, 1]); // STAP-A claiming 65535 bytes
        assert!(d.pop().unwrap().damaged);
    }
}
