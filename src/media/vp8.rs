//! VP8 over RTP (RFC 7741), receiving side: RTP payloads in, whole frames out (the VP8 payload
//! descriptor stripped, the partitions joined), each with its RTP timestamp, whether it is a
//! keyframe, and for keyframes the picture size from the frame header.
//!
//! Sans-IO, fed packets in sequence order. Invariants: a frame is complete only when it began
//! with a packet whose S bit is set at partition 0, its packets' sequence numbers are
//! contiguous, and the marker (or a new timestamp) ended it; anything else is dropped and the
//! frame reported damaged, so the caller asks for a keyframe instead of writing a broken one.
//! Frames grow to at most [`VP8_FRAME_BYTES_MAX`].

/// The largest frame kept.
pub const VP8_FRAME_BYTES_MAX: usize = 8 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vp8Frame {
    pub rtp_timestamp: u32,
    pub data: Vec<u8>,
    pub keyframe: bool,
    /// From a keyframe's header: (width, height) without the scaling bits.
    pub size: Option<(u16, u16)>,
    pub damaged: bool,
}

#[derive(Debug, Default)]
pub struct Vp8Depacketizer {
    current: Option<Vp8Frame>,
    started: bool,
    last_seq: Option<u64>,
    ready: std::collections::VecDeque<Vp8Frame>,
}

/// The VP8 payload descriptor's length and whether it starts partition 0 (RFC 7741 §4.2).
fn descriptor(payload: &[u8]) -> Option<(usize, bool)> {
    let first = *payload.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    let mut len = 1;
    if extended {
        let x = *payload.get(1)?;
        len = 2;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let picture = *payload.get(len)?;
            len += if picture & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            len += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            len += 1; // TID / KEYIDX
        }
    }
    (len <= payload.len()).then_some((len, start))
}

/// Keyframe and size from the first bytes of a frame (RFC 6386 §9.1).
fn frame_header(data: &[u8]) -> (bool, Option<(u16, u16)>) {
    let Some(&tag) = data.first() else {
        return (false, None);
    };
    let keyframe = tag & 0x01 == 0;
    if !keyframe || data.get(3..6) != Some(&[0x9d, 0x01, 0x2a][..]) {
        return (keyframe, None);
    }
    let size = match (data.get(6..8), data.get(8..10)) {
        (Some(w), Some(h)) => Some((
            u16::from_le_bytes([w[0], w[1]]) & 0x3fff,
            u16::from_le_bytes([h[0], h[1]]) & 0x3fff,
        )),
        _ => None,
    };
    (keyframe, size)
}

impl Vp8Depacketizer {
    pub fn push(&mut self, seq: u64, timestamp: u32, marker: bool, payload: &[u8]) {
        if self.last_seq.is_some_and(|last| seq <= last) {
            return;
        }
        let gap = self.last_seq.is_some_and(|last| seq != last.wrapping_add(1));
        self.last_seq = Some(seq);
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.rtp_timestamp != timestamp)
        {
            self.finish();
        }
        let Some((skip, start)) = descriptor(payload) else {
            self.damage(timestamp);
            return;
        };
        let data = payload.get(skip..).unwrap_or_default();
        if start {
            if self.current.is_some() {
                self.finish();
            }
            self.current = Some(Vp8Frame {
                rtp_timestamp: timestamp,
                ..Vp8Frame::default()
            });
            self.started = true;
        } else if gap || !self.started {
            self.damage(timestamp);
        }
        if let Some(frame) = self.current.as_mut().filter(|f| !f.damaged) {
            if frame.data.len() + data.len() > VP8_FRAME_BYTES_MAX {
                frame.damaged = true;
            } else {
                frame.data.extend_from_slice(data);
            }
        }
        if marker {
            self.finish();
        }
    }

    pub fn pop(&mut self) -> Option<Vp8Frame> {
        self.ready.pop_front()
    }

    pub fn flush(&mut self) {
        self.finish();
    }

    fn damage(&mut self, timestamp: u32) {
        let frame = self.current.get_or_insert_with(|| Vp8Frame {
            rtp_timestamp: timestamp,
            ..Vp8Frame::default()
        });
        frame.damaged = true;
        frame.data.clear();
        self.started = false;
    }

    fn finish(&mut self) {
        let Some(mut frame) = self.current.take() else {
            return;
        };
        self.started = false;
        if !frame.damaged {
            let (keyframe, size) = frame_header(&frame.data);
            frame.keyframe = keyframe;
            frame.size = size;
        }
        if frame.damaged || !frame.data.is_empty() {
            self.ready.push_back(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyframe's first bytes: tag (key, shown), start code, 640x480.
    const KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];

    #[test]
    fn partitions_join_into_a_keyframe_with_its_size() {
        let mut d = Vp8Depacketizer::default();
        let mut first = vec![0x90, 0x80, 0x05]; // X, S; PictureID 5
        first.extend_from_slice(&KEY);
        d.push(7, 3000, false, &first);
        d.push(8, 3000, true, &[0x80, 0x80, 0x05, 0xaa, 0xbb]);
        let frame = d.pop().unwrap();
        assert!(frame.keyframe && !frame.damaged);
        assert_eq!(frame.size, Some((640, 480)));
        assert_eq!(frame.data.len(), KEY.len() + 2);
        assert_eq!(frame.data.get(KEY.len()..), Some(&[0xaa, 0xbb][..]));
    }

    #[test]
    fn a_gap_damages_the_frame_and_a_frame_without_its_start_is_damaged() {
        let mut d = Vp8Depacketizer::default();
        d.push(1, 10, false, &[0x10, 0x01, 0, 0]);
        d.push(3, 10, true, &[0x00, 5]);
        assert!(d.pop().unwrap().damaged);
        d.push(4, 20, true, &[0x00, 6]); // no S bit
        assert!(d.pop().unwrap().damaged);
        d.push(5, 30, true, &[0x10, 0x01, 0, 0]);
        let frame = d.pop().unwrap();
        assert!(!frame.damaged && !frame.keyframe);
    }

    #[test]
    fn junk_never_panics() {
        let mut d = Vp8Depacketizer::default();
        let mut state = 0x1234_5678_u32;
        for seq in 0..20_000u64 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let payload: Vec<u8> = (0..(state % 12) as usize).map(|i| (state >> i) as u8).collect();
            d.push(seq * 2 / 3, state % 4, state.is_multiple_of(3), &payload);
            while d.pop().is_some() {}
        }
    }
}
