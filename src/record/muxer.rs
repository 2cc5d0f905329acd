//! One recording's MP4 muxer: frames in, the init segment and fragments out, with every
//! stretch of the file filled (black video or Opus silence before a stream's first frame,
//! for the head the room's timeline asks for, and over gaps), both tracks always present,
//! and audio and video placed by the sender's own clock.
//!
//! Sans-IO, owned by a writer thread: fed frames and the time, polled for [`MuxEvent`]s.
//! Invariants: the file starts on a keyframe (black pictures before the stream's first);
//! track 1 is video and track 2 Opus audio, whatever the publisher sent; a fragment holds at
//! most [`FRAGMENT_DURATION_MAX`] or [`FRAGMENT_BYTES_MAX`]; what waits for the head is
//! bounded by [`HEAD_HOLD_MAX`] and [`HEAD_HOLD_BYTES_MAX`].
//!
//! Timing: a track's RTP time gives the spacing of its samples (never arrival jitter). Where
//! a track starts on the file's timeline comes from arrival times on the server's clock (the
//! earliest arrival less the RTP time elapsed, the sample with the least delay), so a sender
//! whose wall clock is off by seconds still lands at the right offset. Once the publisher's
//! sender reports for both tracks are known, audio is moved so that the two tracks' offset is
//! the one the sender's clock gives (lip sync within the reports' precision).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::frame::{FramePayload, TapFrame, VideoCodec};
use super::track::{Pending, Track};
use crate::media::black_h264::{BlackH264, BlackParams};
use crate::media::black_vp8::black_vp8_keyframe;
use crate::media::fmp4::{fragment, init_segment, TrackConfig};
use crate::media::h264::nal_type;
use crate::media::h264_sps::parse_sps;

/// A fragment is cut once a track holds this much time (the most a crash can lose).
pub const FRAGMENT_DURATION_MAX: Duration = Duration::from_secs(1);
/// ... or this many bytes.
pub const FRAGMENT_BYTES_MAX: usize = 256 * 1024;
/// How long audio waits for the stream's first keyframe (which gives the picture size)
/// before the head is written with black pictures of [`BLACK_SIZE_DEFAULT`].
pub const HEAD_HOLD_MAX: Duration = Duration::from_secs(5);
/// The most frame bytes held for the head.
pub const HEAD_HOLD_BYTES_MAX: usize = 256 * 1024;
/// Picture size of black video when the stream never showed its own.
pub const BLACK_SIZE_DEFAULT: (u16, u16) = (640, 480);
/// Pictures are placed on a grid of 30 a second (the most browsers send): a picture's time
/// moves by at most half a slot (17 ms), two pictures never share a slot, and every
/// duration is a whole number of slots, so players and ffmpeg (which takes a file's frame
/// rate from its durations) see the rate they expect. Black padding fills whole slots.
const VIDEO_SLOT_TICKS: i64 = 3_000;
const BLACK_FRAME_TICKS: i64 = VIDEO_SLOT_TICKS;
/// Black H.264 padding has an IDR this often (in pictures), so it can be seeked into.
const BLACK_IDR_INTERVAL: u32 = 30;
/// An Opus frame of 20 ms at 48 kHz.
const OPUS_FRAME_TICKS: i64 = 960;
/// Opus's 20 ms silence frame (CELT, full band, mono).
pub const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];
/// The last video picture's duration: one slot.
const VIDEO_FRAME_TICKS_DEFAULT: u32 = VIDEO_SLOT_TICKS as u32;
/// A track that has no sample of its own waiting is padded at each cut up to this long
/// before the other's end, so a first keyframe arriving a little late still has its place.
const PAD_LAG: Duration = Duration::from_millis(500);
/// Lip-sync corrections smaller than this are not worth a discontinuity.
const SYNC_CORRECTION_MIN_MICROS: i64 = 10_000;
const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// What the muxer produced, in order.
#[derive(Debug)]
pub enum MuxEvent {
    /// The head: `ftyp` + `moov`. `tracks` go in the journal.
    Init {
        tracks: Vec<TrackConfig>,
        bytes: Vec<u8>,
    },
    Fragment {
        bytes: Vec<u8>,
    },
    /// The picture size changed at `at_ms` of the file (the first picture included).
    Resolution {
        at_ms: u64,
        width: u16,
        height: u16,
    },
    /// Audio silence was filled in from `from_ms` to `to_ms` (muted or no audio).
    Silence {
        from_ms: u64,
        to_ms: u64,
    },
}

/// Counts a recording reports when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MuxStats {
    pub frames_dropped: u64,
    pub video_samples: u64,
    pub audio_samples: u64,
}

enum Head {
    /// Frames wait for the first video keyframe.
    Holding {
        held: VecDeque<TapFrame>,
        held_bytes: usize,
        since: Option<Instant>,
    },
    Written,
}

enum Black {
    H264 { pictures: BlackH264, next: u32 },
    Vp8(Vec<u8>),
}

pub struct Muxer {
    video_codec: Option<VideoCodec>,
    head: Head,
    /// File time zero.
    origin: Option<Instant>,
    video: Track,
    audio: Track,
    /// The sample entry's parameter sets (H.264), stripped from samples that repeat them.
    entry_sps: Option<Vec<u8>>,
    entry_pps: Option<Vec<u8>>,
    size: Option<(u16, u16)>,
    black: Option<Black>,
    /// The video track's last sample is black padding (so more black continues its run;
    /// black after real pictures starts with a black IDR, never a picture that refers back).
    in_black: bool,
    synced: bool,
    /// Silence being filled in, (from, to) in ms: reported once real audio follows it.
    silence: Option<(u64, u64)>,
    sequence: u32,
    events: VecDeque<MuxEvent>,
    pub stats: MuxStats,
}

impl Muxer {
    /// `video`: the publisher's video codec, or `None` for black video throughout.
    pub fn new(video: Option<VideoCodec>) -> Self {
        Muxer {
            video_codec: video,
            head: Head::Holding {
                held: VecDeque::new(),
                held_bytes: 0,
                since: None,
            },
            origin: None,
            video: Track::new(90_000),
            audio: Track::new(48_000),
            entry_sps: None,
            entry_pps: None,
            size: None,
            black: None,
            in_black: false,
            synced: false,
            silence: None,
            sequence: 1,
            events: VecDeque::new(),
            stats: MuxStats::default(),
        }
    }

    pub fn poll(&mut self) -> Option<MuxEvent> {
        self.events.pop_front()
    }

    /// Whether the head (and so the file's start) is written.
    pub fn started(&self) -> bool {
        matches!(self.head, Head::Written)
    }

    /// The file's length so far, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        let end = self
            .video
            .micros(self.video.cursor)
            .max(self.audio.micros(self.audio.cursor));
        u64::try_from(end / 1000).unwrap_or(0)
    }

    /// File time zero, once the head is written.
    pub fn origin(&self) -> Option<Instant> {
        self.origin
    }

    /// Feed one frame. `room_origin` is the room timeline's start (set by the first recording
    /// of the room that writes its head), or this recording's own when there is no timeline.
    pub fn push(&mut self, frame: TapFrame, room_origin: &mut Option<Instant>) {
        match &mut self.head {
            Head::Holding {
                held,
                held_bytes,
                since,
            } => {
                let arrival = frame.arrival;
                since.get_or_insert(arrival);
                let opens = self.video_codec.is_none() || (frame.is_video() && frame.keyframe);
                if frame.is_video() && !frame.keyframe && held.iter().all(|f| !f.is_video()) {
                    self.stats.frames_dropped += 1; // a picture the file cannot start from
                } else if *held_bytes + frame.bytes() > HEAD_HOLD_BYTES_MAX {
                    self.stats.frames_dropped += 1;
                } else {
                    *held_bytes += frame.bytes();
                    held.push_back(frame);
                }
                if opens {
                    self.write_head(room_origin);
                } else {
                    self.tick(arrival, room_origin);
                }
            }
            Head::Written => self.place(frame),
        }
    }

    /// Let time pass: a head that waited [`HEAD_HOLD_MAX`] for a keyframe is written.
    pub fn tick(&mut self, now: Instant, room_origin: &mut Option<Instant>) {
        if let Head::Holding {
            since: Some(since), ..
        } = &self.head
        {
            if now.saturating_duration_since(*since) >= HEAD_HOLD_MAX {
                self.write_head(room_origin);
            }
        }
    }

    /// The publisher reconnected: its new RTP timelines continue this file after a gap.
    pub fn resume(&mut self) {
        self.video.emit_pending(
            self.video.pending.as_ref().map_or(0, |p| p.ticks) + i64::from(self.video_frame_ticks()),
        );
        self.audio
            .emit_pending(self.audio.pending.as_ref().map_or(0, |p| p.ticks) + OPUS_FRAME_TICKS);
        self.video.restart();
        self.audio.restart();
        self.synced = false;
    }

    /// End the file: the waiting samples get their durations, both tracks end together, and
    /// the last fragment goes out. `now` ends a head still waiting.
    pub fn finish(&mut self, now: Instant, room_origin: &mut Option<Instant>) {
        if !self.started() {
            let held = matches!(&self.head, Head::Holding { held, .. } if !held.is_empty());
            if !held {
                return; // nothing was ever recorded
            }
            self.write_head(room_origin);
        }
        let _ = now;
        let audio_end = self
            .audio
            .pending
            .as_ref()
            .map_or(self.audio.cursor, |p| p.ticks + OPUS_FRAME_TICKS);
        let video_end = self.video.pending.as_ref().map_or(self.video.cursor, |p| {
            p.ticks + i64::from(self.video_frame_ticks())
        });
        let end_micros = self.audio.micros(audio_end).max(self.video.micros(video_end));
        let video_until = self.video.ticks_from_micros(end_micros);
        if self.video.pending.is_some() {
            self.video.emit_pending(video_until.max(video_end));
        } else {
            self.fill_black(video_until);
        }
        let audio_until = self.audio.ticks_from_micros(end_micros);
        self.audio.emit_pending(audio_end);
        self.fill_silence(audio_until);
        self.report_silence();
        self.cut();
    }

    fn video_frame_ticks(&self) -> u32 {
        VIDEO_FRAME_TICKS_DEFAULT
    }

    fn write_head(&mut self, room_origin: &mut Option<Instant>) {
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
    fn video_config(&mut self, first_key: Option<&TapFrame>) -> TrackConfig {
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

    /// Put one frame on its track, filling any gap before it.
    fn place(&mut self, frame: TapFrame) {
        let is_video = frame.is_video();
        let track = if is_video {
            &mut self.video
        } else {
            &mut self.audio
        };
        let ext = track.extend(frame.rtp_ts, frame.sender);
        if !track.started() {
            if is_video && !frame.keyframe {
                self.stats.frames_dropped += 1;
                return;
            }
            let Some(origin) = self.origin else {
                return;
            };
            let base = ticks_between(origin, frame.arrival, track.timescale);
            track.start_at(ext, base);
        }
        self.sync_tracks();
        let track = if is_video {
            &mut self.video
        } else {
            &mut self.audio
        };
        let Some(ticks) = track.ticks_of(ext) else {
            return;
        };
        if is_video {
            self.place_video(ticks, frame);
        } else {
            self.place_audio(ticks, frame);
        }
        self.cut_if_full();
    }

    fn place_video(&mut self, ticks: i64, frame: TapFrame) {
        let track = &mut self.video;
        let slot = (ticks + VIDEO_SLOT_TICKS / 2).div_euclid(VIDEO_SLOT_TICKS) * VIDEO_SLOT_TICKS;
        let ticks = match &track.pending {
            // A picture whose slot is taken goes in the next one.
            Some(pending) => slot.max(pending.ticks + VIDEO_SLOT_TICKS),
            None => slot.max(track.cursor),
        };
        let at_ms = u64::try_from(self.video.micros(ticks) / 1000).unwrap_or(0);
        let data = match frame.payload {
            FramePayload::H264(nals) => {
                if frame.keyframe {
                    self.note_h264_size(&nals, at_ms);
                }
                self.avcc(&nals)
            }
            FramePayload::Vp8(data) => {
                if frame.keyframe {
                    if let Some(size) = vp8_size(&data) {
                        self.note_size(size, at_ms);
                    }
                }
                data
            }
            FramePayload::Opus(_) | FramePayload::G711 { .. } => return,
        };
        let track = &mut self.video;
        let mut ticks = ticks;
        if track.pending.is_some() {
            track.emit_pending(ticks);
        } else if ticks > track.cursor {
            self.fill_black(ticks);
            ticks = self.video.cursor; // less than a picture's gap was left
        }
        self.in_black = false;
        let track = &mut self.video;
        track.real_samples += 1;
        self.stats.video_samples += 1;
        track.pending = Some(Pending {
            ticks,
            data,
            keyframe: frame.keyframe,
        });
    }

    fn place_audio(&mut self, ticks: i64, frame: TapFrame) {
        let FramePayload::Opus(data) = frame.payload else {
            return;
        };
        let track = &mut self.audio;
        let floor = track
            .pending
            .as_ref()
            .map_or(track.cursor, |p| p.ticks + OPUS_FRAME_TICKS);
        if ticks < floor - OPUS_FRAME_TICKS / 2 {
            self.stats.frames_dropped += 1; // a duplicate, or audio moved back by lip sync
            return;
        }
        let ticks = ticks.max(floor);
        if let Some(pending) = &track.pending {
            let end = pending.ticks + OPUS_FRAME_TICKS;
            track.emit_pending(if ticks - pending.ticks > OPUS_FRAME_TICKS * 3 / 2 {
                end
            } else {
                ticks
            });
        }
        let mut ticks = ticks;
        if ticks > self.audio.cursor {
            self.fill_silence(ticks);
            ticks = self.audio.cursor; // less than a frame's gap was left
        }
        self.report_silence();
        let track = &mut self.audio;
        track.real_samples += 1;
        self.stats.audio_samples += 1;
        track.pending = Some(Pending {
            ticks,
            data: data.to_vec(),
            keyframe: true,
        });
    }

    /// Move audio so the tracks' offset is the sender's, once both of its reports are known.
    fn sync_tracks(&mut self) {
        if self.synced {
            return;
        }
        let (Some(video_sender), Some(audio_sender)) = (
            self.video.sender_micros_at_start(),
            self.audio.sender_micros_at_start(),
        ) else {
            return;
        };
        let (Some(video_base), Some(audio_base)) = (self.video.base_micros(), self.audio.base_micros())
        else {
            return;
        };
        self.synced = true;
        let wanted_audio_base = video_base - (video_sender - audio_sender);
        let correction = wanted_audio_base - audio_base;
        if correction.abs() >= SYNC_CORRECTION_MIN_MICROS {
            tracing::debug!(
                correction_us = correction,
                "recording: audio moved to the sender's lip sync"
            );
            let ticks = self.audio.ticks_from_micros(correction);
            self.audio.shift(ticks);
        }
    }

    fn note_h264_size(&mut self, nals: &[Vec<u8>], at_ms: u64) {
        if let Some(info) = nals
            .iter()
            .find(|n| nal_type(n) == Some(NAL_SPS))
            .and_then(|s| parse_sps(s))
        {
            self.note_size((info.width, info.height), at_ms);
        }
    }

    fn note_size(&mut self, size: (u16, u16), at_ms: u64) {
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
    fn avcc(&self, nals: &[Vec<u8>]) -> Vec<u8> {
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

    /// Black pictures on the video track up to file tick `until`, at the padding's rate; the
    /// last one absorbs a remainder. A gap shorter than one picture is left (the next picture
    /// starts at the cursor), since players cannot take pictures microseconds apart.
    fn fill_black(&mut self, until: i64) {
        let mut left = until - self.video.cursor;
        if left >= BLACK_FRAME_TICKS && !self.in_black {
            if let Some(Black::H264 { next, .. }) = &mut self.black {
                *next = 0;
            }
        }
        while left >= BLACK_FRAME_TICKS {
            let duration = if left < 2 * BLACK_FRAME_TICKS {
                left
            } else {
                BLACK_FRAME_TICKS
            };
            left -= duration;
            let duration = u32::try_from(duration).unwrap_or(1);
            let (bytes, keyframe) = match &mut self.black {
                Some(Black::H264 { pictures, next }) => {
                    // An IDR each second so the padding can be seeked into.
                    let idr = *next % BLACK_IDR_INTERVAL == 0;
                    let nal = if idr {
                        pictures.idr().to_vec()
                    } else {
                        pictures.repeat(*next % BLACK_IDR_INTERVAL)
                    };
                    *next += 1;
                    let mut bytes = u32::try_from(nal.len()).unwrap_or(0).to_be_bytes().to_vec();
                    bytes.extend_from_slice(&nal);
                    (bytes, idr)
                }
                Some(Black::Vp8(frame)) => (frame.clone(), true),
                None => return,
            };
            self.video.push(duration, &bytes, keyframe);
            self.in_black = true;
        }
    }

    /// Opus silence on the audio track up to file tick `until` (as [`Muxer::fill_black`]).
    fn fill_silence(&mut self, until: i64) {
        let from = self.audio.cursor;
        while self.audio.cursor < until {
            let duration = (until - self.audio.cursor).min(OPUS_FRAME_TICKS);
            self.audio
                .push(u32::try_from(duration).unwrap_or(1), &OPUS_SILENCE, true);
        }
        if self.audio.cursor > from {
            let ms = |ticks: i64| u64::try_from(ticks / 48).unwrap_or(0);
            let (from_ms, to_ms) = (ms(from), ms(self.audio.cursor));
            match &mut self.silence {
                Some((_, end)) if *end == from_ms => *end = to_ms,
                _ => {
                    self.report_silence();
                    self.silence = Some((from_ms, to_ms));
                }
            }
        }
    }

    fn report_silence(&mut self) {
        if let Some((from_ms, to_ms)) = self.silence.take() {
            self.events.push_back(MuxEvent::Silence { from_ms, to_ms });
        }
    }

    fn cut_if_full(&mut self) {
        let (video_bytes, video_ticks) = self.video.buffered();
        let (audio_bytes, audio_ticks) = self.audio.buffered();
        let longest = self.video.micros(video_ticks).max(self.audio.micros(audio_ticks));
        if video_bytes + audio_bytes >= FRAGMENT_BYTES_MAX
            || longest >= i64::try_from(FRAGMENT_DURATION_MAX.as_micros()).unwrap_or(i64::MAX)
        {
            self.pad_idle_tracks();
            self.cut();
        }
    }

    /// A track with no sample of its own waiting (no video yet, no audio at all) follows the
    /// other, [`PAD_LAG`] behind, so the file never holds one track without the other.
    fn pad_idle_tracks(&mut self) {
        let end = self
            .video
            .micros(self.video.cursor)
            .max(self.audio.micros(self.audio.cursor));
        let target = end - i64::try_from(PAD_LAG.as_micros()).unwrap_or(0);
        if self.video.pending.is_none() && self.video.real_samples == 0 {
            let until = self.video.ticks_from_micros(target);
            self.fill_black(until);
        }
        if self.audio.pending.is_none() && !self.audio.started() {
            let until = self.audio.ticks_from_micros(target);
            self.fill_silence(until);
        }
    }

    fn cut(&mut self) {
        let mut runs = Vec::new();
        let mut data = Vec::new();
        for (track, id) in [
            (&mut self.video, VIDEO_TRACK_ID),
            (&mut self.audio, AUDIO_TRACK_ID),
        ] {
            if let Some((run, bytes)) = track.take_run(id) {
                runs.push(run);
                data.extend_from_slice(&bytes);
            }
        }
        if runs.is_empty() {
            return;
        }
        self.events.push_back(MuxEvent::Fragment {
            bytes: fragment(self.sequence, &runs, &data),
        });
        self.sequence = self.sequence.wrapping_add(1);
    }
}

/// `at` in ticks of `timescale` after `origin` (negative before it).
fn ticks_between(origin: Instant, at: Instant, timescale: u32) -> i64 {
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    let signed = if at >= origin {
        micros(at - origin)
    } else {
        -micros(origin - at)
    };
    signed * i64::from(timescale) / 1_000_000
}

/// A VP8 keyframe header's picture size.
fn vp8_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.first()? & 1 != 0 || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let height = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
#[path = "muxer_tests.rs"]
mod tests;
