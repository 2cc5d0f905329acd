//! FLV tag bodies as RTMP carries them (audio message 8, video message 9): parsing what an
//! encoder sends and building what RTMP players and pushes get. H.264 as AVC (sequence
//! header = AVCDecoderConfigurationRecord, pictures = length-prefixed NAL units with a
//! composition time), audio as AAC, MP3 or G.711; Enhanced RTMP's FourCC headers are
//! recognised so they can be refused by name.
//!
//! Sans-IO; used by the RTMP bridge on the control thread. Invariants: every length is checked
//! against the bytes present; a tag that lies about its lengths is an error, never a panic;
//! at most [`AVC_PARAMETER_SETS_MAX`] parameter sets of each kind are read.

use super::g711::Law;

/// Parameter sets of each kind read from one AVC sequence header (encoders send one each).
pub const AVC_PARAMETER_SETS_MAX: usize = 16;

const CODEC_AVC: u8 = 7;
const SOUND_MP3: u8 = 2;
const SOUND_ALAW: u8 = 7;
const SOUND_MULAW: u8 = 8;
const SOUND_AAC: u8 = 10;
const SOUND_EX_HEADER: u8 = 9;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("empty tag")]
    Empty,
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("{0}")]
    Unsupported(String),
}

/// The AVCDecoderConfigurationRecord of an AVC sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    /// Bytes in each NAL unit's length prefix (1, 2 or 4).
    pub nal_length_bytes: u8,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag<'a> {
    AvcSequenceHeader(AvcConfig),
    /// One picture: length-prefixed NAL units.
    AvcPicture {
        keyframe: bool,
        /// Presentation minus decode time, ms (non-zero means B-frames).
        composition_ms: i32,
        data: &'a [u8],
    },
    AvcEndOfSequence,
    /// An information or command frame (frame type 5): carries no picture.
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// An AudioSpecificConfig.
    AacSequenceHeader(&'a [u8]),
    AacRaw(&'a [u8]),
    Mp3 {
        data: &'a [u8],
    },
    G711 {
        law: Law,
        data: &'a [u8],
    },
}

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 2)?;
    Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

/// The composition time field: a signed 24-bit big-endian count of milliseconds.
fn si24(bytes: &[u8]) -> Option<i32> {
    let b = bytes.get(..3)?;
    let unsigned = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    Some((unsigned << 8) >> 8)
}

pub fn parse_video(body: &[u8]) -> Result<VideoTag<'_>, FlvError> {
    let &first = body.first().ok_or(FlvError::Empty)?;
    if first & 0x80 != 0 {
        let fourcc = body.get(1..5).map(String::from_utf8_lossy).unwrap_or_default();
        return Err(FlvError::Unsupported(format!(
            "Enhanced RTMP video ({fourcc}) is not supported: send H.264"
        )));
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if frame_type == 5 {
        return Ok(VideoTag::Info);
    }
    if codec != CODEC_AVC {
        let name = match codec {
            2 => "Sorenson H.263",
            3 => "Screen video",
            4 | 5 => "On2 VP6",
            6 => "Screen video 2",
            12 => "HEVC",
            13 => "AV1",
            _ => "this codec",
        };
        return Err(FlvError::Unsupported(format!(
            "{name} video is not supported: send H.264"
        )));
    }
    let packet_type = *body.get(1).ok_or(FlvError::Truncated("AVC header"))?;
    let composition_ms = body
        .get(2..)
        .and_then(si24)
        .ok_or(FlvError::Truncated("AVC header"))?;
    let data = body.get(5..).unwrap_or_default();
    match packet_type {
        0 => Ok(VideoTag::AvcSequenceHeader(parse_avc_config(data)?)),
        1 => Ok(VideoTag::AvcPicture {
            keyframe: frame_type == 1,
            composition_ms,
            data,
        }),
        2 => Ok(VideoTag::AvcEndOfSequence),
        other => Err(FlvError::Unsupported(format!("AVC packet type {other}"))),
    }
}

pub fn parse_avc_config(record: &[u8]) -> Result<AvcConfig, FlvError> {
    let truncated = FlvError::Truncated("AVC sequence header");
    let header = record.get(..6).ok_or(truncated.clone())?;
    if header[0] != 1 {
        return Err(FlvError::Unsupported("AVC configuration version is not 1".into()));
    }
    let nal_length_bytes = (header[4] & 0x03) + 1;
    if nal_length_bytes == 3 {
        return Err(FlvError::Unsupported("3-byte NAL unit lengths".into()));
    }
    let mut at = 6;
    let read_sets = |count: usize, at: &mut usize| -> Result<Vec<Vec<u8>>, FlvError> {
        let mut sets = Vec::new();
        for _ in 0..count.min(AVC_PARAMETER_SETS_MAX) {
            let len = u16_at(record, *at).ok_or(truncated.clone())?;
            let set = record.get(*at + 2..*at + 2 + len).ok_or(truncated.clone())?;
            sets.push(set.to_vec());
            *at += 2 + len;
        }
        Ok(sets)
    };
    let sps = read_sets(usize::from(header[5] & 0x1f), &mut at)?;
    let pps_count = usize::from(*record.get(at).ok_or(truncated.clone())?);
    at += 1;
    let pps = read_sets(pps_count, &mut at)?;
    Ok(AvcConfig {
        profile: header[1],
        compatibility: header[2],
        level: header[3],
        nal_length_bytes,
        sps,
        pps,
    })
}

/// Split a picture's length-prefixed NAL units.
pub fn split_nal_units(data: &[u8], nal_length_bytes: u8) -> Result<Vec<&[u8]>, FlvError> {
    let width = usize::from(nal_length_bytes);
    let mut rest = data;
    let mut nals = Vec::new();
    while !rest.is_empty() {
        let prefix = rest.get(..width).ok_or(FlvError::Truncated("NAL unit length"))?;
        let len = prefix.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let nal = rest
            .get(width..width.saturating_add(len))
            .ok_or(FlvError::Truncated("NAL unit"))?;
        if !nal.is_empty() {
            nals.push(nal);
        }
        rest = rest.get(width + len..).unwrap_or_default();
    }
    Ok(nals)
}

pub fn parse_audio(body: &[u8]) -> Result<AudioTag<'_>, FlvError> {
    let &first = body.first().ok_or(FlvError::Empty)?;
    let format = first >> 4;
    match format {
        SOUND_AAC => {
            let packet_type = *body.get(1).ok_or(FlvError::Truncated("AAC header"))?;
            let data = body.get(2..).unwrap_or_default();
            match packet_type {
                0 => Ok(AudioTag::AacSequenceHeader(data)),
                _ => Ok(AudioTag::AacRaw(data)),
            }
        }
        SOUND_MP3 | 14 => Ok(AudioTag::Mp3 {
            data: body.get(1..).unwrap_or_default(),
        }),
        SOUND_ALAW | SOUND_MULAW => {
            if first & 0x01 != 0 {
                return Err(FlvError::Unsupported(
                    "stereo G.711 is not supported: send mono".into(),
                ));
            }
            let law = if format == SOUND_ALAW { Law::A } else { Law::Mu };
            Ok(AudioTag::G711 {
                law,
                data: body.get(1..).unwrap_or_default(),
            })
        }
        SOUND_EX_HEADER => {
            let fourcc = body.get(1..5).map(String::from_utf8_lossy).unwrap_or_default();
            Err(FlvError::Unsupported(format!(
                "Enhanced RTMP audio ({fourcc}) is not supported: send AAC"
            )))
        }
        other => {
            let name = match other {
                0 | 3 => "Linear PCM",
                1 => "ADPCM",
                4..=6 => "Nellymoser",
                11 => "Speex",
                _ => "this codec",
            };
            Err(FlvError::Unsupported(format!(
                "{name} audio is not supported: send AAC"
            )))
        }
    }
}

/// An AVC sequence header tag body for the given parameter sets.
pub fn avc_sequence_header(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut body = vec![0x17, 0, 0, 0, 0, 1];
    body.extend_from_slice(&[
        sps.get(1).copied().unwrap_or(0x42),
        sps.get(2).copied().unwrap_or(0),
        sps.get(3).copied().unwrap_or(0x1f),
        0xff,
        0xe1,
    ]);
    body.extend_from_slice(&(sps.len().min(0xffff) as u16).to_be_bytes());
    body.extend_from_slice(sps.get(..sps.len().min(0xffff)).unwrap_or_default());
    body.push(1);
    body.extend_from_slice(&(pps.len().min(0xffff) as u16).to_be_bytes());
    body.extend_from_slice(pps.get(..pps.len().min(0xffff)).unwrap_or_default());
    body
}

/// A picture tag body: NAL units with 4-byte length prefixes.
pub fn avc_picture<'a>(
    keyframe: bool,
    composition_ms: i32,
    nals: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let cts = composition_ms.to_be_bytes();
    let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, cts[1], cts[2], cts[3]];
    for nal in nals {
        body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        body.extend_from_slice(nal);
    }
    body
}

/// The first byte of our AAC tags: AAC, 44 kHz flag, 16-bit, stereo (players read the real
/// rate and channels from the AudioSpecificConfig).
const AAC_FLAGS: u8 = (SOUND_AAC << 4) | 0x0f;

pub fn aac_sequence_header(audio_specific_config: &[u8]) -> Vec<u8> {
    let mut body = vec![AAC_FLAGS, 0];
    body.extend_from_slice(audio_specific_config);
    body
}

pub fn aac_raw(frame: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(frame.len() + 2);
    body.extend_from_slice(&[AAC_FLAGS, 1]);
    body.extend_from_slice(frame);
    body
}

/// G.711 at 8 kHz mono, 16-bit decoded size (ffmpeg's own flags for it).
pub fn g711(law: Law, data: &[u8]) -> Vec<u8> {
    let format = match law {
        Law::A => SOUND_ALAW,
        Law::Mu => SOUND_MULAW,
    };
    let mut body = Vec::with_capacity(data.len() + 1);
    body.push((format << 4) | 0x02);
    body.extend_from_slice(data);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_header_round_trips() {
        let sps = [0x67, 0x64, 0x00, 0x1f, 0xac];
        let pps = [0x68, 0xee, 0x3c];
        let body = avc_sequence_header(&sps, &pps);
        let VideoTag::AvcSequenceHeader(config) = parse_video(&body).expect("parses") else {
            panic!("not a sequence header");
        };
        assert_eq!(
            (config.profile, config.level, config.nal_length_bytes),
            (0x64, 0x1f, 4)
        );
        assert_eq!(config.sps, vec![sps.to_vec()]);
        assert_eq!(config.pps, vec![pps.to_vec()]);
    }

    #[test]
    fn pictures_round_trip_with_negative_composition_time() {
        let nals: [&[u8]; 2] = [&[0x65, 1, 2], &[0x06, 5]];
        let body = avc_picture(true, -40, nals);
        let VideoTag::AvcPicture {
            keyframe,
            composition_ms,
            data,
        } = parse_video(&body).expect("parses")
        else {
            panic!("not a picture");
        };
        assert!(keyframe);
        assert_eq!(composition_ms, -40);
        assert_eq!(split_nal_units(data, 4).expect("splits"), nals.to_vec());
    }

    #[test]
    fn lying_lengths_are_errors() {
        assert_eq!(parse_video(&[]), Err(FlvError::Empty));
        assert!(parse_video(&[0x17, 0]).is_err());
        assert!(parse_video(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0xff, 0xff, 1]).is_err());
        assert!(split_nal_units(&[0, 0, 0, 9, 0x65], 4).is_err());
        assert!(split_nal_units(&[0xff, 0xff, 0xff, 0xff], 4).is_err());
        assert!(split_nal_units(&[0, 0], 4).is_err());
        let mut many = vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xff];
        many.extend(std::iter::repeat_n([0u8, 0], 40).flatten());
        many.push(0);
        let VideoTag::AvcSequenceHeader(config) = parse_video(&many).expect("empty sets parse") else {
            panic!("not a sequence header");
        };
        assert_eq!(config.sps.len(), AVC_PARAMETER_SETS_MAX);
    }

    #[test]
    fn other_codecs_are_refused_by_name() {
        let hevc = parse_video(&[0x1c, 0, 0, 0, 0]).unwrap_err().to_string();
        assert!(hevc.contains("HEVC"), "{hevc}");
        let enhanced = parse_video(b"\x90hvc1").unwrap_err().to_string();
        assert!(enhanced.contains("hvc1"), "{enhanced}");
        let speex = parse_audio(&[0xb2, 0]).unwrap_err().to_string();
        assert!(speex.contains("Speex"), "{speex}");
        let opus = parse_audio(b"\x90Opus").unwrap_err().to_string();
        assert!(opus.contains("Opus"), "{opus}");
    }

    #[test]
    fn audio_tags_parse() {
        assert_eq!(
            parse_audio(&aac_sequence_header(&[0x12, 0x10])),
            Ok(AudioTag::AacSequenceHeader(&[0x12, 0x10]))
        );
        assert_eq!(parse_audio(&aac_raw(&[1, 2])), Ok(AudioTag::AacRaw(&[1, 2])));
        assert_eq!(
            parse_audio(&g711(Law::Mu, &[0xff])),
            Ok(AudioTag::G711 {
                law: Law::Mu,
                data: &[0xff]
            })
        );
        assert!(matches!(
            parse_audio(&[0x2f, 0xff, 0xfb]),
            Ok(AudioTag::Mp3 { .. })
        ));
    }
}
