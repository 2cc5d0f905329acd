//! Reading back the fragmented MP4 a recording writes: box headers, and each `moof`'s track
//! runs (track, decode time, where its bytes are, and its samples), so a file can be turned
//! into a progressive one after a clean stop or a crash.
//!
//! Pure code over bytes that may be cut anywhere (a crash mid-write): every length is
//! checked, an inconsistent box is `None`, never a panic. Reads what `fmp4.rs` writes and the
//! common `tfhd`/`trun` forms besides.

use super::fmp4::SampleInfo;

/// Samples one `trun` may declare: a second of 1 kHz audio is 1000; far above what we write.
const RUN_SAMPLES_MAX: u32 = 100_000;

/// A box header: its whole size (header included), its type, and the header's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub size: u64,
    pub kind: [u8; 4],
    pub header_len: usize,
}

/// The header at the start of `bytes` (`size` 0, "to the end", is refused: we never write it).
pub fn box_header(bytes: &[u8]) -> Option<BoxHeader> {
    let size32 = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (size, header_len) = match size32 {
        0 => return None,
        1 => (u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?), 16),
        n => (u64::from(n), 8),
    };
    (size >= header_len as u64).then_some(BoxHeader {
        size,
        kind,
        header_len,
    })
}

/// One track's run of samples in a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRun {
    pub track_id: u32,
    pub base_decode_time: u64,
    /// Where the run's first sample starts, counted from the start of the `moof`.
    pub data_offset: u64,
    pub samples: Vec<SampleInfo>,
}

/// The runs of one whole `moof` box (header included).
pub fn parse_moof(moof: &[u8]) -> Option<Vec<ParsedRun>> {
    let header = box_header(moof)?;
    if &header.kind != b"moof" || header.size != moof.len() as u64 {
        return None;
    }
    let mut runs = Vec::new();
    for (kind, body) in children(moof.get(header.header_len..)?)? {
        if &kind == b"traf" {
            runs.extend(parse_traf(body)?);
        }
    }
    Some(runs)
}

/// The (type, body) of each box in `bytes`, which must hold whole boxes only.
fn children(mut bytes: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = box_header(bytes)?;
        let size = usize::try_from(header.size).ok()?;
        let body = bytes.get(header.header_len..size)?;
        out.push((header.kind, body));
        bytes = bytes.get(size..)?;
    }
    Some(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Option<u32> {
        let v = u32::from_be_bytes(self.bytes.get(self.at..self.at + 4)?.try_into().ok()?);
        self.at += 4;
        Some(v)
    }

    fn u64(&mut self) -> Option<u64> {
        let v = u64::from_be_bytes(self.bytes.get(self.at..self.at + 8)?.try_into().ok()?);
        self.at += 8;
        Some(v)
    }
}

#[derive(Default)]
struct TrackDefaults {
    duration: Option<u32>,
    size: Option<u32>,
    flags: Option<u32>,
}

fn parse_traf(traf: &[u8]) -> Option<Vec<ParsedRun>> {
    let mut track_id = None;
    let mut defaults = TrackDefaults::default();
    let mut base_decode_time = 0;
    let mut runs = Vec::new();
    for (kind, body) in children(traf)? {
        let mut r = Reader { bytes: body, at: 0 };
        let version_flags = r.u32()?;
        let (version, flags) = (version_flags >> 24, version_flags & 0x00ff_ffff);
        match &kind {
            b"tfhd" => {
                track_id = Some(r.u32()?);
                if flags & 0x01 != 0 {
                    r.u64()?; // base data offset: we only read default-base-is-moof files
                    return None;
                }
                if flags & 0x02 != 0 {
                    r.u32()?;
                }
                if flags & 0x08 != 0 {
                    defaults.duration = Some(r.u32()?);
                }
                if flags & 0x10 != 0 {
                    defaults.size = Some(r.u32()?);
                }
                if flags & 0x20 != 0 {
                    defaults.flags = Some(r.u32()?);
                }
            }
            b"tfdt" => {
                base_decode_time = if version == 1 {
                    r.u64()?
                } else {
                    u64::from(r.u32()?)
                };
            }
            b"trun" => {
                let count = r.u32()?;
                if count > RUN_SAMPLES_MAX {
                    return None;
                }
                let data_offset = if flags & 0x01 != 0 { r.u32()? } else { return None };
                let first_flags = if flags & 0x04 != 0 { Some(r.u32()?) } else { None };
                let mut samples = Vec::with_capacity(count as usize);
                for index in 0..count {
                    let duration = if flags & 0x100 != 0 {
                        r.u32()?
                    } else {
                        defaults.duration?
                    };
                    let size = if flags & 0x200 != 0 {
                        r.u32()?
                    } else {
                        defaults.size?
                    };
                    let mut sample_flags = if flags & 0x400 != 0 {
                        r.u32()?
                    } else {
                        defaults.flags.unwrap_or(0)
                    };
                    if index == 0 {
                        sample_flags = first_flags.unwrap_or(sample_flags);
                    }
                    if flags & 0x800 != 0 {
                        r.u32()?; // composition offset: none in what we write
                    }
                    samples.push(SampleInfo {
                        duration,
                        size,
                        keyframe: sample_flags & 0x0001_0000 == 0,
                    });
                }
                runs.push(ParsedRun {
                    track_id: track_id?,
                    base_decode_time,
                    data_offset: u64::from(data_offset),
                    samples,
                });
            }
            _ => {}
        }
    }
    Some(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::fmp4::{fragment, TrackRun};

    fn runs() -> Vec<TrackRun> {
        vec![
            TrackRun {
                track_id: 1,
                base_decode_time: 90_000,
                samples: vec![
                    SampleInfo {
                        duration: 3000,
                        size: 5,
                        keyframe: true,
                    },
                    SampleInfo {
                        duration: 3000,
                        size: 3,
                        keyframe: false,
                    },
                ],
            },
            TrackRun {
                track_id: 2,
                base_decode_time: 48_000,
                samples: vec![SampleInfo {
                    duration: 960,
                    size: 3,
                    keyframe: true,
                }],
            },
        ]
    }

    #[test]
    fn reads_back_what_fragment_writes() {
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        let bytes = fragment(7, &runs(), &data);
        let moof = box_header(&bytes).unwrap();
        let parsed = parse_moof(&bytes[..moof.size as usize]).unwrap();
        assert_eq!(parsed.len(), 2);
        for (parsed, written) in parsed.iter().zip(runs()) {
            assert_eq!(parsed.track_id, written.track_id);
            assert_eq!(parsed.base_decode_time, written.base_decode_time);
            assert_eq!(parsed.samples, written.samples);
        }
        let first = parsed[0].data_offset as usize;
        assert_eq!(&bytes[first..first + 8], &data[..8]);
        let second = parsed[1].data_offset as usize;
        assert_eq!(&bytes[second..second + 3], &data[8..]);
    }

    #[test]
    fn cut_or_corrupted_boxes_are_none_not_panics() {
        let bytes = fragment(1, &runs(), &[0; 11]);
        let moof_len = box_header(&bytes).unwrap().size as usize;
        for cut in 0..moof_len {
            assert_eq!(parse_moof(&bytes[..cut]), None);
        }
        let mut state = 1u32;
        for _ in 0..3000 {
            let mut junk = bytes[..moof_len].to_vec();
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let at = (state as usize >> 8) % junk.len();
            junk[at] = (state >> 24) as u8;
            let _ = parse_moof(&junk);
        }
    }
}
