//! One track of a recording on the file's timeline: where its RTP time starts in file ticks,
//! the sample waiting for its duration, and the samples of the fragment being built.
//!
//! Sans-IO, owned by a recording's muxer on a writer thread. Invariants: samples are
//! contiguous in file time (each starts where the last ended, `cursor`), so a file's decode
//! times never jump or overlap; a sample's duration is known only when the next one's start
//! is, so the newest real sample waits in `pending`.

use crate::media::clock::{RtpUnwrapper, SenderClock};
use crate::media::fmp4::{SampleInfo, TrackRun};

/// Where the track's RTP time meets the file's.
#[derive(Debug, Clone, Copy)]
struct Start {
    first_ext: i64,
    base_ticks: i64,
}

/// A real sample whose duration waits for the next one.
#[derive(Debug)]
pub struct Pending {
    pub ticks: i64,
    pub data: Vec<u8>,
    pub keyframe: bool,
}

#[derive(Debug)]
pub struct Track {
    /// File ticks per second, equal to the codec's RTP clock (90 kHz video, 48 kHz Opus).
    pub timescale: u32,
    unwrap: RtpUnwrapper,
    start: Option<Start>,
    last_ext: i64,
    /// The publisher's last sender report on this track.
    pub sender: Option<SenderClock>,
    /// File ticks where the next sample starts.
    pub cursor: i64,
    pub pending: Option<Pending>,
    /// Real frames placed (not padding).
    pub real_samples: u64,
    run_start: i64,
    samples: Vec<SampleInfo>,
    data: Vec<u8>,
}

impl Track {
    pub fn new(timescale: u32) -> Self {
        Track {
            timescale,
            unwrap: RtpUnwrapper::default(),
            start: None,
            last_ext: 0,
            sender: None,
            cursor: 0,
            pending: None,
            real_samples: 0,
            run_start: 0,
            samples: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Extend a frame's RTP timestamp and remember the sender report it came with.
    pub fn extend(&mut self, rtp: u32, sender: Option<SenderClock>) -> i64 {
        let ext = self.unwrap.unwrap(rtp);
        self.last_ext = self.last_ext.max(ext);
        if self.start.is_none() {
            self.last_ext = ext;
        }
        if sender.is_some() {
            self.sender = sender;
        }
        ext
    }

    pub fn started(&self) -> bool {
        self.start.is_some()
    }

    /// Tie RTP time `first_ext` to file tick `base_ticks`.
    pub fn start_at(&mut self, first_ext: i64, base_ticks: i64) {
        self.start = Some(Start {
            first_ext,
            base_ticks,
        });
    }

    /// Move the track's base by `ticks` (lip-sync correction).
    pub fn shift(&mut self, ticks: i64) {
        if let Some(start) = self.start.as_mut() {
            start.base_ticks += ticks;
        }
    }

    /// A new RTP timeline follows (the publisher reconnected): start again from its first frame.
    pub fn restart(&mut self) {
        self.unwrap.reset();
        self.start = None;
        self.sender = None;
    }

    /// The file tick of an extended RTP time.
    pub fn ticks_of(&self, ext: i64) -> Option<i64> {
        let start = self.start?;
        Some(start.base_ticks + (ext - start.first_ext))
    }

    /// File ticks in microseconds.
    pub fn micros(&self, ticks: i64) -> i64 {
        ticks * 1_000_000 / i64::from(self.timescale.max(1))
    }

    pub fn ticks_from_micros(&self, micros: i64) -> i64 {
        micros * i64::from(self.timescale) / 1_000_000
    }

    /// The sender's wall time (µs) of the track's first RTP time, from its last report.
    pub fn sender_micros_at_start(&self) -> Option<i64> {
        let start = self.start?;
        let report = self.sender?;
        let now = report.sender_micros(self.last_ext as u32, self.timescale)?;
        Some(now - (self.last_ext - start.first_ext) * 1_000_000 / i64::from(self.timescale))
    }

    /// The track's base in file microseconds.
    pub fn base_micros(&self) -> Option<i64> {
        Some(self.micros(self.start?.base_ticks))
    }

    /// Append a sample at the cursor.
    pub fn push(&mut self, duration: u32, bytes: &[u8], keyframe: bool) {
        if self.samples.is_empty() {
            self.run_start = self.cursor;
        }
        self.samples.push(SampleInfo {
            duration,
            size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            keyframe,
        });
        self.data.extend_from_slice(bytes);
        self.cursor += i64::from(duration);
    }

    /// Emit the pending sample, lasting until `until` (at least one tick).
    pub fn emit_pending(&mut self, until: i64) {
        if let Some(pending) = self.pending.take() {
            let duration = u32::try_from((until - pending.ticks).max(1)).unwrap_or(u32::MAX);
            self.cursor = pending.ticks;
            self.push(duration, &pending.data, pending.keyframe);
        }
    }

    /// Bytes and ticks buffered for the fragment being built.
    pub fn buffered(&self) -> (usize, i64) {
        if self.samples.is_empty() {
            (0, 0)
        } else {
            (self.data.len(), self.cursor - self.run_start)
        }
    }

    /// The fragment's run of this track, if it has samples.
    pub fn take_run(&mut self, track_id: u32) -> Option<(TrackRun, Vec<u8>)> {
        if self.samples.is_empty() {
            return None;
        }
        let run = TrackRun {
            track_id,
            base_decode_time: u64::try_from(self.run_start).unwrap_or(0),
            samples: std::mem::take(&mut self.samples),
        };
        Some((run, std::mem::take(&mut self.data)))
    }
}
