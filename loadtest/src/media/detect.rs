//! Keyframe detection on single RTP payloads (H.264 and VP8), and VP8 descriptor parsing.
//!
//! Owns the checks a player uses to say "this packet starts a keyframe". They read only
//! the payload handed in, check every length against the bytes left and return `false` or
//! an error on anything truncated or malformed: payloads come from the network.

use super::h264::{NAL_FU_A, NAL_IDR, NAL_SPS, NAL_STAP_A};
use super::VideoCodec;
use crate::error::{Error, Result};

/// NAL unit types an H.264 RTP payload starts (for an FU-A: only when S=1).
pub fn h264_nal_types(payload: &[u8]) -> Result<Vec<u8>> {
    let first = *payload
        .first()
        .ok_or_else(|| Error::Media("empty H.264 payload".into()))?;
    match first & 0x1f {
        0 => Err(Error::Media("NAL type 0".into())),
        NAL_STAP_A => {
            let mut types = Vec::new();
            let mut rest = payload.get(1..).unwrap_or_default();
            while !rest.is_empty() {
                let [hi, lo, tail @ ..] = rest else {
                    return Err(Error::Media("STAP-A: truncated size".into()));
                };
                let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                let header = tail
                    .get(..len)
                    .and_then(|u| u.first())
                    .ok_or_else(|| Error::Media("STAP-A: unit empty or overruns packet".into()))?;
                types.push(header & 0x1f);
                rest = tail.get(len..).unwrap_or_default();
            }
            Ok(types)
        }
        NAL_FU_A => {
            let fu = *payload
                .get(1)
                .ok_or_else(|| Error::Media("FU-A: no header".into()))?;
            Ok(if fu & 0x80 != 0 {
                vec![fu & 0x1f]
            } else {
                Vec::new()
            })
        }
        t @ 1..=23 => Ok(vec![t]),
        t => Err(Error::Media(format!("unsupported packetization type {t}"))),
    }
}

/// True when the payload carries an SPS or the start of an IDR slice.
pub fn h264_is_keyframe(payload: &[u8]) -> bool {
    h264_nal_types(payload)
        .map(|t| t.iter().any(|&t| t == NAL_IDR || t == NAL_SPS))
        .unwrap_or(false)
}

/// The parsed VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// S: start of a VP8 partition.
    pub start: bool,
    /// Partition index.
    pub partition: u8,
    /// PictureID (7 or 15 bits), when present.
    pub picture_id: Option<u16>,
    /// TL0PICIDX, when present.
    pub tl0_pic_idx: Option<u8>,
    /// Descriptor length: the VP8 payload starts here.
    pub len: usize,
}

/// Parses the VP8 RTP payload descriptor.
pub fn vp8_descriptor(payload: &[u8]) -> Result<Vp8Descriptor> {
    let err = |what: &str| Error::Media(format!("VP8 descriptor: {what}"));
    let b0 = *payload.first().ok_or_else(|| err("empty"))?;
    let mut d = Vp8Descriptor {
        start: b0 & 0x10 != 0,
        partition: b0 & 0x07,
        picture_id: None,
        tl0_pic_idx: None,
        len: 1,
    };
    if b0 & 0x80 != 0 {
        let x = *payload.get(1).ok_or_else(|| err("truncated X"))?;
        d.len = 2;
        if x & 0x80 != 0 {
            let p0 = *payload.get(d.len).ok_or_else(|| err("truncated PictureID"))?;
            if p0 & 0x80 != 0 {
                let p1 = *payload.get(d.len + 1).ok_or_else(|| err("truncated PictureID"))?;
                d.picture_id = Some(u16::from(p0 & 0x7f) << 8 | u16::from(p1));
                d.len += 2;
            } else {
                d.picture_id = Some(u16::from(p0));
                d.len += 1;
            }
        }
        if x & 0x40 != 0 {
            d.tl0_pic_idx = Some(*payload.get(d.len).ok_or_else(|| err("truncated TL0PICIDX"))?);
            d.len += 1;
        }
        if x & 0x30 != 0 {
            payload.get(d.len).ok_or_else(|| err("truncated TID/KEYIDX"))?;
            d.len += 1;
        }
    }
    Ok(d)
}

/// True when the payload starts a VP8 keyframe (S=1, partition 0, P bit 0).
pub fn vp8_is_keyframe(payload: &[u8]) -> bool {
    match vp8_descriptor(payload) {
        Ok(d) if d.start && d.partition == 0 => payload.get(d.len).map(|b| b & 0x01 == 0).unwrap_or(false),
        _ => false,
    }
}

/// Keyframe check for either video codec.
pub fn is_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => h264_is_keyframe(payload),
        VideoCodec::Vp8 => vp8_is_keyframe(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{h264, vp8, VideoSource};

    #[test]
    fn generated_h264_keyframes_are_detected() {
        let mut src = VideoSource::new(VideoCodec::H264, 640, 480);
        let key = src.next_frame(true);
        assert!(key.keyframe);
        assert!(h264_is_keyframe(&key.packets[0]));
        assert_eq!(h264_nal_types(&key.packets[0]).unwrap(), vec![7, 8]);
        assert!(h264_is_keyframe(&key.packets[1]), "FU-A start of the IDR");
        assert!(!h264_is_keyframe(&key.packets[2]), "FU-A continuation");
        for _ in 0..40 {
            let delta = src.next_frame(false);
            assert!(delta.packets.iter().all(|p| !h264_is_keyframe(p)));
            assert!((1..=3).contains(&delta.packets.len()));
        }
    }

    #[test]
    fn generated_vp8_keyframes_are_detected() {
        let mut src = VideoSource::new(VideoCodec::Vp8, 640, 480);
        let key = src.next_frame(true);
        assert!(vp8_is_keyframe(&key.packets[0]));
        assert!(!vp8_is_keyframe(&key.packets[1]), "S=0");
        let d = vp8_descriptor(&key.packets[0]).unwrap();
        assert_eq!((d.start, d.partition, d.len), (true, 0, 4));
        for _ in 0..40 {
            let delta = src.next_frame(false);
            assert!(delta.packets.iter().all(|p| !vp8_is_keyframe(p)));
        }
    }

    #[test]
    fn short_descriptor_forms() {
        // No X: one byte, then a keyframe tag.
        assert!(vp8_is_keyframe(&[0x10, 0x00, 0, 0]));
        // X with 7-bit PictureID, TL0PICIDX and TID.
        let d = vp8_descriptor(&[0x90, 0xe0, 0x05, 0x07, 0x40, 0x00]).unwrap();
        assert_eq!((d.picture_id, d.tl0_pic_idx, d.len), (Some(5), Some(7), 5));
    }

    #[test]
    fn malformed_payloads_are_not_keyframes() {
        let stap_lying = [0x78, 0x00, 0x10, 0x67];
        let stap_zero = [0x78, 0x00, 0x00];
        let stap_odd = [0x78, 0x00, 0x01, 0x67, 0x00];
        for p in [
            &[][..],
            &[0x7c],
            &stap_lying,
            &stap_zero,
            &stap_odd,
            &[0x00],
            &[0x7e, 0],
        ] {
            assert!(!h264_is_keyframe(p), "{p:?}");
        }
        for p in [&[][..], &[0x90], &[0x90, 0x80, 0x80], &[0x90, 0x40], &[0x10]] {
            assert!(!vp8_is_keyframe(p), "{p:?}");
        }
        assert!(!vp8_is_keyframe(&vp8::descriptor(true, 1)));
        assert!(!h264_is_keyframe(&h264::pps()));
    }
}
