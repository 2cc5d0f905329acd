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

use self::head::vp8_size;
use self::padding::Black;
use super::frame::{FramePayload, TapFrame, VideoCodec};
use super::track::{Pending, Track};
use crate::media::fmp4::{fragment, TrackConfig};

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
        self.video
            .emit_pending(self.video.pending.as_ref().map_or(0, |p| p.ticks) + VIDEO_SLOT_TICKS);
        self.audio
            .emit_pending(self.audio.pending.as_ref().map_or(0, |p| p.ticks) + OPUS_FRAME_TICKS);
        self.video.restart();
        self.audio.restart();
        self.synced = false;
    }

    /// End the file: the waiting samples get their durations, both tracks end together, and
    /// the last fragment goes out (a head still waiting is written first).
    pub fn finish(&mut self, room_origin: &mut Option<Instant>) {
        if !self.started() {
            let held = matches!(&self.head, Head::Holding { held, .. } if !held.is_empty());
            if !held {
                return; // nothing was ever recorded
            }
            self.write_head(room_origin);
        }
        let audio_end = self
            .audio
            .pending
            .as_ref()
            .map_or(self.audio.cursor, |p| p.ticks + OPUS_FRAME_TICKS);
        let video_end = self
            .video
            .pending
            .as_ref()
            .map_or(self.video.cursor, |p| p.ticks + VIDEO_SLOT_TICKS);
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

mod head;
mod padding;
#[cfg(test)]
mod tests;
