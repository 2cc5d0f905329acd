//! The muxer's head: the sample entry taken from the stream's first keyframe (SPS and PPS, or
//! a VP8 header's size, beside the black pictures' own parameter sets), where each track
//! starts on the file's timeline, and the H.264 samples' AVCC form with its parameter sets.
//!
//! Part of the muxer (same thread, same invariants; see `mod.rs`).

use std::time::{Duration, Instant};

use super::padding::Black;
use super::{ticks_between, Head, MuxEvent, Muxer, BLACK_SIZE_DEFAULT, NAL_AUD, NAL_PPS, NAL_SPS};
use crate::media::black_h264::{BlackH264, BlackParams};
use crate::media::black_vp8::black_vp8_keyframe;
use crate::media::fmp4::{init_segment, TrackConfig};
use crate::media::h264::nal_type;
use crate::media::h264_sps::parse_sps;
use crate::record::frame::{FramePayload, TapFrame, VideoCodec};
use crate::record::track::Track;

impl Muxer {
    pub(super) fn write_head(&mut self, room_origin: &mut Option<Instant>) {
        let Head::Holding { held, .. } = std::mem::replace(&mut self.head, Head::Written) else {
            return;
        };
        let first_key = held.iter().find(|f| f.is_video() && f.keyframe);
        let config = self.video_config(first_key);
        // Where each track starts, on the server's clock: the least-delayed frame's arrival
        // less the RTP time elapsed since the track's first frame.
        let mut video_start = None;
        let mut audio_start = None;
        let mut video = Track::new(90_000);
        let mut audio = Track::new(48_000);
        for frame in &held {
            let (track, start) = if frame.is_video() {
                (&mut video, &mut video_start)
            } else {
                (&mut audio, &mut audio_start)
            };
            let ext = track.extend(frame.rtp_ts, frame.sender);
            let (first_ext, earliest) = start.get_or_insert((ext, frame.arrival));
            let elapsed = Duration::from_micros(
                u64::try_from((ext - *first_ext).max(0) * 1_000_000 / i64::from(track.timescale))
                    .unwrap_or(0),
            );
            if let Some(candidate) = frame.arrival.checked_sub(elapsed) {
                *earliest = (*earliest).min(candidate);
            }
        }
        let own_start = [video_start, audio_start]
            .into_iter()
            .flatten()
            .map(|(_, at)| at)
            .min();
        let origin = match (*room_origin, own_start) {
            (Some(origin), _) => origin,
            (None, Some(start)) => {
                *room_origin = Some(start);
                start
            }
            (None, None) => return, // finish() of an empty head: nothing to write
        };
        self.origin = Some(origin);
        for (track, start) in [(&mut self.video, video_start), (&mut self.audio, audio_start)] {
            if let Some((first_ext, at)) = start {
                // A fresh unwrapper gives the first frame its raw value, as `extend` will
                // when the held frames are placed.
                track.start_at(first_ext, ticks_between(origin, at, track.timescale));
            }
        }
        let tracks = vec![
            config,
            TrackConfig::Opus {
                channels: 2,
                pre_skip: 0,
            },
        ];
        self.events.push_back(MuxEvent::Init {
            bytes: init_segment(&tracks),
            tracks,
        });
        if let Some((width, height)) = self.size {
            self.events.push_back(MuxEvent::Resolution {
                at_ms: 0,
                width,
                height,
            });
        }
        for frame in held {
            self.place(frame);
        }
    }

    /// The video sample entry: from the first keyframe (its SPS, or a VP8 header's size), or
    /// black pictures of the default size. The black pictures' own parameter sets sit beside
    /// the stream's in one `avcC`.
    pub(super) fn video_config(&mut self, first_key: Option<&TapFrame>) -> TrackConfig {
        let (default_w, default_h) = BLACK_SIZE_DEFAULT;
        match (self.video_codec, first_key.map(|f| &f.payload)) {
            (Some(VideoCodec::Vp8), payload) => {
                let size = match payload {
                    Some(FramePayload::Vp8(data)) => vp8_size(data),
                    _ => None,
                };
                let (width, height) = size.unwrap_or(BLACK_SIZE_DEFAULT);
                self.size = size;
                self.black = black_vp8_keyframe(width, height).ok().map(Black::Vp8);
                TrackConfig::Vp8 { width, height }
            }
            (codec, payload) => {
                let nals = match payload {
                    Some(FramePayload::H264(nals)) if codec == Some(VideoCodec::H264) => nals.as_slice(),
                    _ => &[],
                };
                let sps = nals.iter().find(|n| nal_type(n) == Some(NAL_SPS));
                let pps = nals.iter().find(|n| nal_type(n) == Some(NAL_PPS));
                let info = sps.and_then(|s| parse_sps(s));
                let params = BlackParams {
                    width: u32::from(info.map_or(default_w, |i| i.width)),
                    height: u32::from(info.map_or(default_h, |i| i.height)),
                    profile_idc: info.map_or(66, |i| i.profile_idc),
                    constraint_flags: info.map_or(0xc0, |i| i.constraint_flags),
                    level_idc: info.map_or(31, |i| i.level_idc),
                };
                let pictures = BlackH264::new(params).or_else(|_| {
                    BlackH264::new(BlackParams {
                        width: u32::from(default_w),
                        height: u32::from(default_h),
                        ..params
                    })
                });
                let (mut sps_list, mut pps_list) = (Vec::new(), Vec::new());
                if let (Some(sps), Some(pps), Some(_)) = (sps, pps, info) {
                    sps_list.push(sps.clone());
                    pps_list.push(pps.clone());
                    self.entry_sps = Some(sps.clone());
                    self.entry_pps = Some(pps.clone());
                    self.size = info.map(|i| (i.width, i.height));
                }
                if let Ok(pictures) = &pictures {
                    sps_list.push(pictures.sps().to_vec());
                    pps_list.push(pictures.pps().to_vec());
                }
                let (width, height) = self.size.unwrap_or(BLACK_SIZE_DEFAULT);
                self.black = pictures.ok().map(|pictures| Black::H264 { pictures, next: 0 });
                TrackConfig::H264 {
                    width,
                    height,
                    sps: sps_list,
                    pps: pps_list,
                }
            }
        }
    }

    pub(super) fn note_h264_size(&mut self, nals: &[Vec<u8>], at_ms: u64) {
        if let Some(info) = nals
            .iter()
            .find(|n| nal_type(n) == Some(NAL_SPS))
            .and_then(|s| parse_sps(s))
        {
            self.note_size((info.width, info.height), at_ms);
        }
    }

    pub(super) fn note_size(&mut self, size: (u16, u16), at_ms: u64) {
        if self.size != Some(size) {
            self.size = Some(size);
            self.events.push_back(MuxEvent::Resolution {
                at_ms,
                width: size.0,
                height: size.1,
            });
        }
    }

    /// AVCC sample bytes: 4-byte lengths; access unit delimiters dropped, and parameter sets
    /// that repeat the sample entry's. A changed SPS stays in band with its PPS (a decoder
    /// drops the PPSs of an SPS that changed), where decoders read them.
    pub(super) fn avcc(&self, nals: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::with_capacity(nals.iter().map(|n| n.len() + 4).sum());
        let new_sps = nals
            .iter()
            .any(|n| nal_type(n) == Some(NAL_SPS) && self.entry_sps.as_ref() != Some(n));
        for nal in nals {
            let kind = nal_type(nal);
            let repeats_entry = !new_sps
                && ((kind == Some(NAL_SPS) && self.entry_sps.as_ref() == Some(nal))
                    || (kind == Some(NAL_PPS) && self.entry_pps.as_ref() == Some(nal)));
            if kind == Some(NAL_AUD) || repeats_entry || nal.is_empty() {
                continue;
            }
            out.extend_from_slice(&u32::try_from(nal.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(nal);
        }
        out
    }
}

/// A VP8 keyframe header's picture size.
pub(super) fn vp8_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.first()? & 1 != 0 || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let height = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}
