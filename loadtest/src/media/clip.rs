//! Pre-encoded media clips: real VP8, H.264 and Opus made by an encoder, split into frames
//! and packets for the publisher to send in a loop.
//!
//! Owns the container parsing, as pure code over bytes: IVF (VP8 frames), H.264 Annex B
//! (access units, one per frame, delimited by access unit delimiters) and Ogg (Opus
//! packets). Making the files is `media::encode`'s job; sending them is the publisher's.
//! Invariants: every length read from a file is checked against the bytes present (a
//! truncated or foreign file is an error, never a panic); a video clip is non-empty and
//! starts with a keyframe, so looping back to frame 0 is always a clean restart; AUD and SEI
//! NAL units are dropped (browsers send neither).

use crate::error::{Error, Result};

use super::VideoCodec;

/// NAL unit types dropped from a clip: supplemental enhancement information and access unit
/// delimiters (the delimiters only mark where a frame starts in the file).
const NAL_SEI: u8 = 6;
const NAL_AUD: u8 = 9;
const NAL_IDR: u8 = super::h264::NAL_IDR;

/// One coded video frame of a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipFrame {
    /// A VP8 frame (frame tag first).
    Vp8(Vec<u8>),
    /// The NAL units of one H.264 access unit, without start codes.
    H264(Vec<Vec<u8>>),
}

impl ClipFrame {
    /// Whether the frame can be decoded on its own.
    pub fn is_keyframe(&self) -> bool {
        match self {
            // VP8 frame tag: bit 0 is 0 on a key frame (RFC 6386 9.1).
            ClipFrame::Vp8(data) => data.first().is_some_and(|b| b & 1 == 0),
            ClipFrame::H264(nals) => nals
                .iter()
                .any(|n| n.first().is_some_and(|h| h & 0x1f == NAL_IDR)),
        }
    }

    /// Coded bytes of the frame.
    pub fn len(&self) -> usize {
        match self {
            ClipFrame::Vp8(data) => data.len(),
            ClipFrame::H264(nals) => nals.iter().map(Vec::len).sum(),
        }
    }

    /// Whether the frame has no coded bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The frames of one video clip, in decode order, starting with a keyframe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoClip {
    codec: VideoCodec,
    frames: Vec<ClipFrame>,
}

impl VideoClip {
    /// Parses a clip file: IVF for VP8, Annex B for H.264.
    pub fn parse(codec: VideoCodec, bytes: &[u8]) -> Result<Self> {
        let frames = match codec {
            VideoCodec::Vp8 => parse_ivf(bytes)?,
            VideoCodec::H264 => parse_annex_b(bytes)?,
        };
        match frames.first() {
            None => Err(Error::Media("clip has no frames".into())),
            Some(first) if !first.is_keyframe() => {
                Err(Error::Media("clip does not start with a keyframe".into()))
            }
            Some(_) => Ok(VideoClip { codec, frames }),
        }
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// The frames (never empty).
    pub fn frames(&self) -> &[ClipFrame] {
        &self.frames
    }

    /// Frame `index`, looping: index `len` is frame 0 again. `None` never happens (a clip
    /// has frames by construction) but is not a panic if it did.
    pub fn frame(&self, index: u64) -> Option<&ClipFrame> {
        let len = self.frames.len().max(1) as u64;
        self.frames.get(usize::try_from(index % len).ok()?)
    }
}

/// The packets of one Opus clip, 20 ms each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioClip {
    packets: Vec<Vec<u8>>,
}

impl AudioClip {
    /// Parses an Ogg Opus file.
    /// Every packet must hold 20 ms of audio: the publisher sends one per 20 ms.
    pub fn parse_ogg_opus(bytes: &[u8]) -> Result<Self> {
        let packets = parse_ogg_opus(bytes)?;
        if packets.is_empty() {
            return Err(Error::Media("Opus clip has no audio packets".into()));
        }
        if let Some(odd) = packets.iter().find(|p| opus_packet_us(p) != Some(20_000)) {
            return Err(Error::Media(format!(
                "Opus clip has a packet of {:?} µs, not 20 ms",
                opus_packet_us(odd)
            )));
        }
        Ok(AudioClip { packets })
    }

    /// Packet `index`, looping.
    pub fn packet(&self, index: u64) -> &[u8] {
        let len = self.packets.len().max(1) as u64;
        let at = usize::try_from(index % len).unwrap_or(0);
        self.packets.get(at).map(Vec::as_slice).unwrap_or_default()
    }

    /// Number of packets before the clip loops.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the clip has no packets (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
}

fn u16_le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// VP8 frames of an IVF file: a 32-byte file header, then per frame a 4-byte size, an
/// 8-byte timestamp and the frame.
fn parse_ivf(b: &[u8]) -> Result<Vec<ClipFrame>> {
    let bad = |what: &str| Error::Media(format!("IVF: {what}"));
    if b.get(..4) != Some(b"DKIF") {
        return Err(bad("no DKIF signature"));
    }
    if b.get(8..12) != Some(b"VP80") {
        return Err(bad("not VP8"));
    }
    let mut at = usize::from(u16_le(b, 6).ok_or_else(|| bad("truncated header"))?);
    let mut frames = Vec::new();
    while at < b.len() {
        let size = u32_le(b, at).ok_or_else(|| bad("truncated frame header"))? as usize;
        let start = at.checked_add(12).ok_or_else(|| bad("offset overflow"))?;
        let end = start.checked_add(size).ok_or_else(|| bad("offset overflow"))?;
        let data = b.get(start..end).ok_or_else(|| bad("truncated frame"))?;
        if !data.is_empty() {
            frames.push(ClipFrame::Vp8(data.to_vec()));
        }
        at = end;
    }
    Ok(frames)
}

/// NAL units of an Annex B byte stream (start codes `00 00 01` or `00 00 00 01`).
fn annex_b_nals(b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(b.len(), |next| next - 3);
        // A four-byte start code leaves its leading zero at the end of the previous NAL.
        while end > start && b[end - 1] == 0 {
            end -= 1;
        }
        if let Some(nal) = b.get(start..end).filter(|n| !n.is_empty()) {
            nals.push(nal);
        }
    }
    nals
}

/// H.264 access units of an Annex B stream written with access unit delimiters.
fn parse_annex_b(b: &[u8]) -> Result<Vec<ClipFrame>> {
    let mut frames = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut saw_delimiter = false;
    for nal in annex_b_nals(b) {
        match nal.first().map(|h| h & 0x1f) {
            Some(NAL_AUD) => {
                saw_delimiter = true;
                if !current.is_empty() {
                    frames.push(ClipFrame::H264(std::mem::take(&mut current)));
                }
            }
            Some(NAL_SEI) | None => {}
            Some(_) => current.push(nal.to_vec()),
        }
    }
    if !current.is_empty() {
        frames.push(ClipFrame::H264(current));
    }
    if !saw_delimiter {
        return Err(Error::Media(
            "H.264: no access unit delimiters, cannot tell frames apart".into(),
        ));
    }
    Ok(frames)
}

/// Audio duration of one Opus packet, in microseconds, from its TOC byte (RFC 6716 3.1).
fn opus_packet_us(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame_us = match config {
        0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
        12..=15 => [10_000, 20_000][usize::from(config % 2)],
        _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
    };
    let frames = match toc & 0b11 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    Some(frame_us * frames)
}

/// Audio packets of an Ogg Opus stream (the `OpusHead` and `OpusTags` headers left out).
fn parse_ogg_opus(b: &[u8]) -> Result<Vec<Vec<u8>>> {
    let bad = |what: &str| Error::Media(format!("Ogg: {what}"));
    let mut packets = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut at = 0;
    while at < b.len() {
        if b.get(at..at + 4) != Some(b"OggS") {
            return Err(bad("lost page sync"));
        }
        let segments = usize::from(*b.get(at + 26).ok_or_else(|| bad("truncated page"))?);
        let table = b
            .get(at + 27..at + 27 + segments)
            .ok_or_else(|| bad("truncated segment table"))?;
        let mut data = at + 27 + segments;
        for &lacing in table {
            let end = data + usize::from(lacing);
            partial.extend_from_slice(b.get(data..end).ok_or_else(|| bad("truncated page body"))?);
            data = end;
            if lacing < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        at = data;
    }
    let mut packets = packets.into_iter().peekable();
    if !packets.next().is_some_and(|p| p.starts_with(b"OpusHead")) {
        return Err(bad("not an Opus stream"));
    }
    if !packets.next().is_some_and(|p| p.starts_with(b"OpusTags")) {
        return Err(bad("no OpusTags header"));
    }
    Ok(packets.filter(|p| !p.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = b"DKIF".to_vec();
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(b"VP80");
        out.resize(32, 0);
        for (i, f) in frames.iter().enumerate() {
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(i as u64).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    #[test]
    fn ivf_frames_loop_from_the_keyframe() {
        let file = ivf(&[&[0x10, 1, 2], &[0x11, 3], &[0x11, 4, 5, 6]]);
        let clip = VideoClip::parse(VideoCodec::Vp8, &file).unwrap();
        assert_eq!(clip.frames().len(), 3);
        assert!(clip.frame(0).unwrap().is_keyframe());
        assert!(!clip.frame(1).unwrap().is_keyframe());
        assert_eq!(clip.frame(3), clip.frame(0), "index 3 loops to frame 0");
        assert_eq!(clip.frame(2).unwrap().len(), 4);
    }

    #[test]
    fn truncated_or_foreign_files_are_errors() {
        let file = ivf(&[&[0x10, 1, 2, 3]]);
        for cut in 0..file.len() {
            let _ = VideoClip::parse(VideoCodec::Vp8, &file[..cut]);
        }
        assert!(VideoClip::parse(VideoCodec::Vp8, &file[..file.len() - 1]).is_err());
        assert!(VideoClip::parse(VideoCodec::Vp8, b"RIFF....").is_err());
        let delta_first = ivf(&[&[0x11, 1]]);
        assert!(VideoClip::parse(VideoCodec::Vp8, &delta_first).is_err());
        assert!(
            VideoClip::parse(VideoCodec::H264, &[0, 0, 1, 0x65, 1, 2]).is_err(),
            "no AUD"
        );
        assert!(AudioClip::parse_ogg_opus(b"OggS").is_err());
        assert!(AudioClip::parse_ogg_opus(&[0xff; 64]).is_err());
    }

    #[test]
    fn annex_b_access_units_split_at_delimiters_without_aud_and_sei() {
        let stream = [
            &[0, 0, 0, 1, 0x09, 0xf0][..],
            &[0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f],
            &[0, 0, 1, 0x68, 0xce],
            &[0, 0, 1, 0x06, 0x05, 0x01],
            &[0, 0, 1, 0x65, 0x88, 0x80],
            &[0, 0, 0, 1, 0x09, 0xf0],
            &[0, 0, 1, 0x41, 0x9a, 0x00, 0x00, 0x03, 0x01],
        ]
        .concat();
        let clip = VideoClip::parse(VideoCodec::H264, &stream).unwrap();
        let frames = clip.frames();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0],
            ClipFrame::H264(vec![
                vec![0x67, 0x42, 0xe0, 0x1f],
                vec![0x68, 0xce],
                vec![0x65, 0x88, 0x80]
            ])
        );
        assert!(frames[0].is_keyframe());
        assert_eq!(frames[1], ClipFrame::H264(vec![vec![0x41, 0x9a, 0, 0, 3, 1]]));
        assert!(!frames[1].is_keyframe());
    }

    fn ogg_page(packets: &[&[u8]]) -> Vec<u8> {
        let mut table = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            let mut left = p.len();
            while left >= 255 {
                table.push(255u8);
                left -= 255;
            }
            table.push(left as u8);
            body.extend_from_slice(p);
        }
        let mut page = b"OggS".to_vec();
        page.resize(26, 0);
        page.push(table.len() as u8);
        page.extend_from_slice(&table);
        page.extend_from_slice(&body);
        page
    }

    #[test]
    fn ogg_opus_packets_follow_the_two_headers() {
        let long = vec![0x78; 300];
        let file = [
            ogg_page(&[b"OpusHead\x01\x01"]),
            ogg_page(&[b"OpusTags...."]),
            ogg_page(&[&[0x78, 1, 2], &long, &[0x78, 3]]),
        ]
        .concat();
        let forty_ms = [
            ogg_page(&[b"OpusHead\x01\x01"]),
            ogg_page(&[b"OpusTags...."]),
            ogg_page(&[&[0x78 | 1, 1, 2]]),
        ]
        .concat();
        assert!(
            AudioClip::parse_ogg_opus(&forty_ms).is_err(),
            "two 20 ms frames per packet"
        );
        assert_eq!(opus_packet_us(&[0x08]), Some(20_000), "SILK 20 ms");
        assert_eq!(
            opus_packet_us(&[0xfb, 0x03]),
            Some(60_000),
            "CELT 20 ms, code 3, M = 3"
        );
        let clip = AudioClip::parse_ogg_opus(&file).unwrap();
        assert_eq!(clip.len(), 3);
        assert_eq!(clip.packet(0), &[0x78, 1, 2]);
        assert_eq!(
            clip.packet(1).len(),
            300,
            "a packet laced over 255 bytes stays whole"
        );
        assert_eq!(clip.packet(4), clip.packet(1), "loops");
        let vorbis = [ogg_page(&[b"\x01vorbis"]), ogg_page(&[b"x"])].concat();
        assert!(AudioClip::parse_ogg_opus(&vorbis).is_err());
    }
}
