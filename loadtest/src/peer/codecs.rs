//! Codec lists and payload types offered by the client peer.
//!
//! Owns the mapping from "which codecs this peer offers" to str0m's `CodecConfig`, with
//! browser-like payload-type numbering: [`PayloadTypes::chrome`] (the default) and
//! [`PayloadTypes::firefox`] (different numbers, to exercise payload-type rewriting in the
//! server). Video codecs always carry RTX and the nack/pli/fir/transport-cc feedback str0m
//! adds by default; H.264 is constrained baseline 42e01f with packetization-mode 1.

use str0m::format::{Codec, CodecConfig, FormatParams};
use str0m::media::{Frequency, Pt};

use crate::media::{h264, AudioCodec, VideoCodec};

/// Payload type numbers the peer uses in its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadTypes {
    /// VP8 and its RTX.
    pub vp8: (u8, u8),
    /// H.264 42e01f packetization-mode 1 and its RTX.
    pub h264: (u8, u8),
    /// Opus.
    pub opus: u8,
    /// PCMU (static 0).
    pub pcmu: u8,
    /// PCMA (static 8).
    pub pcma: u8,
}

impl PayloadTypes {
    /// Numbers Chromium uses.
    pub const fn chrome() -> Self {
        PayloadTypes {
            vp8: (96, 97),
            h264: (106, 107),
            opus: 111,
            pcmu: 0,
            pcma: 8,
        }
    }

    /// Numbers Firefox uses.
    pub const fn firefox() -> Self {
        PayloadTypes {
            vp8: (120, 124),
            h264: (126, 127),
            opus: 109,
            pcmu: 0,
            pcma: 8,
        }
    }
}

impl Default for PayloadTypes {
    fn default() -> Self {
        Self::chrome()
    }
}

/// Codecs a player offers to receive. The offer lists them in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayCodecs {
    /// Video codecs; empty means no video m-line.
    pub video: Vec<VideoCodec>,
    /// Audio codecs; empty means no audio m-line.
    pub audio: Vec<AudioCodec>,
}

impl PlayCodecs {
    /// Like Chromium: VP8 and H.264 video, Opus, PCMU and PCMA audio.
    pub fn browser() -> Self {
        PlayCodecs {
            video: vec![VideoCodec::Vp8, VideoCodec::H264],
            audio: vec![AudioCodec::Opus, AudioCodec::Pcmu, AudioCodec::Pcma],
        }
    }

    /// Like Debian's Firefox ESR: no H.264.
    pub fn no_h264() -> Self {
        PlayCodecs {
            video: vec![VideoCodec::Vp8],
            ..Self::browser()
        }
    }

    /// Exactly one video and one audio codec.
    pub fn only(video: Option<VideoCodec>, audio: Option<AudioCodec>) -> Self {
        PlayCodecs {
            video: video.into_iter().collect(),
            audio: audio.into_iter().collect(),
        }
    }
}

impl Default for PlayCodecs {
    fn default() -> Self {
        Self::browser()
    }
}

/// Fills `cc` (cleared first) with the given codecs. G.711 is written without a channel
/// count (`PCMU/8000`, as browsers do): str0m does not match `PCMU/8000/1` against it.
pub(crate) fn configure(
    cc: &mut CodecConfig,
    video: &[VideoCodec],
    audio: &[AudioCodec],
    pts: &PayloadTypes,
) {
    cc.clear();
    for a in audio {
        match a {
            AudioCodec::Opus => cc.add_config(
                Pt::from(pts.opus),
                None,
                Codec::Opus,
                Frequency::FORTY_EIGHT_KHZ,
                Some(2),
                FormatParams {
                    min_p_time: Some(10),
                    use_inband_fec: Some(true),
                    ..Default::default()
                },
            ),
            AudioCodec::Pcmu => cc.add_config(
                Pt::from(pts.pcmu),
                None,
                Codec::PCMU,
                Frequency::EIGHT_KHZ,
                None,
                FormatParams::default(),
            ),
            AudioCodec::Pcma => cc.add_config(
                Pt::from(pts.pcma),
                None,
                Codec::PCMA,
                Frequency::EIGHT_KHZ,
                None,
                FormatParams::default(),
            ),
        }
    }
    for v in video {
        match v {
            VideoCodec::Vp8 => cc.add_config(
                Pt::from(pts.vp8.0),
                Some(Pt::from(pts.vp8.1)),
                Codec::Vp8,
                Frequency::NINETY_KHZ,
                None,
                FormatParams::default(),
            ),
            VideoCodec::H264 => cc.add_h264(
                Pt::from(pts.h264.0),
                Some(Pt::from(pts.h264.1)),
                true,
                h264::PROFILE_LEVEL_ID,
            ),
        }
    }
}

/// A negotiated codec, from str0m's codec enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaCodec {
    /// Video.
    Video(VideoCodec),
    /// Audio.
    Audio(AudioCodec),
}

/// Maps str0m's codec to ours (`None` for codecs this client does not handle).
pub(crate) fn from_str0m(c: Codec) -> Option<MediaCodec> {
    Some(match c {
        Codec::H264 => MediaCodec::Video(VideoCodec::H264),
        Codec::Vp8 => MediaCodec::Video(VideoCodec::Vp8),
        Codec::Opus => MediaCodec::Audio(AudioCodec::Opus),
        Codec::PCMU => MediaCodec::Audio(AudioCodec::Pcmu),
        Codec::PCMA => MediaCodec::Audio(AudioCodec::Pcma),
        _ => return None,
    })
}
