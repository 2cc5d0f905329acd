//! Synthetic VP8 frames and their RTP payload descriptor (RFC 7741).
//!
//! Owns frame generation (a valid 3-byte frame tag; keyframes add the start code
//! `9d 01 2a` and the picture size) and packetization. Every packet carries the descriptor
//! browsers send: X=1, I=1 with a 15-bit PictureID, partition index 0; S=1 only on the
//! first packet of a frame. Invariant: no packet exceeds the given MTU.

/// The descriptor length this packetizer writes (X, I, M + 15-bit PictureID).
pub const DESCRIPTOR_LEN: usize = 4;

/// A VP8 frame of about `size` bytes (at least 10).
pub fn frame(keyframe: bool, width: u16, height: u16, size: usize, seed: u32) -> Vec<u8> {
    let size = size.max(10);
    let first_part = ((size - 10) / 2).clamp(1, (1 << 19) - 1) as u32;
    // Frame tag: key_frame (0 = key), version 0, show_frame 1, first_part_size.
    let tag = (first_part << 5) | (1 << 4) | u32::from(!keyframe);
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        out.extend_from_slice(&(width & 0x3fff).to_le_bytes());
        out.extend_from_slice(&(height & 0x3fff).to_le_bytes());
    }
    let mut x = seed | 1;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    out
}

/// The payload descriptor for one packet.
pub fn descriptor(start: bool, picture_id: u16) -> [u8; DESCRIPTOR_LEN] {
    let pid = picture_id & 0x7fff;
    [
        0x80 | if start { 0x10 } else { 0 }, // X, S, PID 0
        0x80,                                // I
        0x80 | (pid >> 8) as u8,             // M, PictureID high
        pid as u8,
    ]
}

/// Splits one frame into RTP payloads of at most `mtu` bytes.
pub fn packetize(frame: &[u8], picture_id: u16, mtu: usize) -> Vec<Vec<u8>> {
    let room = mtu.max(DESCRIPTOR_LEN + 1) - DESCRIPTOR_LEN;
    frame
        .chunks(room)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = descriptor(i == 0, picture_id).to_vec();
            p.extend_from_slice(chunk);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_layout() {
        let f = frame(true, 640, 480, 2000, 3);
        assert_eq!(f.len(), 2000);
        assert_eq!(f[0] & 1, 0, "P bit 0 on keyframes");
        assert_eq!(&f[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([f[6], f[7]]), 640);
        assert_eq!(u16::from_le_bytes([f[8], f[9]]), 480);
        let d = frame(false, 640, 480, 400, 3);
        assert_eq!(d[0] & 1, 1, "P bit 1 on deltas");
        assert_eq!(d[0] & 0x10, 0x10, "show_frame");
    }

    #[test]
    fn packets() {
        let f = frame(true, 320, 240, 2000, 1);
        let p = packetize(&f, 0x1234, 1100);
        assert_eq!(p.len(), 2);
        assert_eq!(&p[0][..4], &[0x90, 0x80, 0x92, 0x34]);
        assert_eq!(p[1][0], 0x80, "continuation has S=0");
        assert!(p.iter().all(|x| x.len() <= 1100));
        let joined: Vec<u8> = p.iter().flat_map(|x| x[4..].to_vec()).collect();
        assert_eq!(joined, f);
    }
}
