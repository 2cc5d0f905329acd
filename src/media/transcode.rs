//! What the RTMP bridge's audio transcoders share: their error type and the timeline that
//! turns "samples emitted" into output timestamps.
//!
//! Runs on a transcoder thread (never a media worker), inside whichever transcoder owns it.
//! Invariants: output timestamps are derived from the count of output samples, never copied
//! from input, so they neither drift nor jitter; they are anchored at the first input
//! timestamp; they strictly increase (wrapping u32 arithmetic) even when the input resets
//! backwards; an input gap of more than [`REANCHOR_MS`] moves them forward by the gap. All
//! arithmetic on peer-supplied timestamps wraps or saturates, so no input can panic.

use thiserror::Error;

/// The one error type of the audio transcoders.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TranscodeError {
    /// An AudioSpecificConfig (or other codec configuration) that cannot be read.
    #[error("invalid audio configuration: {0}")]
    InvalidConfig(String),
    /// A well-formed configuration of an AAC object type this bridge does not decode.
    #[error("AAC profile {name} (object type {object_type}) is not supported: use AAC-LC")]
    UnsupportedProfile { object_type: u8, name: &'static str },
    /// Channel configuration 0 (a program config element) or one above 7.
    #[error("unsupported channel configuration {0}")]
    UnsupportedChannels(u8),
    /// A sample rate outside what a codec or the resampler accepts.
    #[error("unsupported sample rate {0} Hz")]
    UnsupportedSampleRate(u32),
    /// A caller-supplied parameter (bitrate, channel count) out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// `libopus.so.0` could not be loaded (install Debian's libopus0).
    #[error("libopus.so.0 is not available (install libopus0)")]
    OpusUnavailable,
    /// libopus returned an error code.
    #[error("libopus {operation} failed with code {code}")]
    Opus { operation: &'static str, code: i32 },
    /// An empty input packet.
    #[error("empty audio packet")]
    EmptyPacket,
    /// A packet the decoder rejected; the transcoder stays usable for the next one.
    #[error("undecodable audio packet: {0}")]
    Decode(String),
    /// The encoder refused its input (a bug or an impossible configuration).
    #[error("audio encoder failed: {0}")]
    Encode(String),
}

/// How far (in milliseconds) an input timestamp may stray from where the sample count puts it
/// before the timeline re-anchors.
pub const REANCHOR_MS: u64 = 200;

/// Output timestamps for one transcoded stream.
///
/// The input clock (`in_clock` units per second: 1000 for FLV milliseconds, 48 000 for Opus RTP)
/// and the output clock are independent of the sample rates on either side.
#[derive(Debug, Clone)]
pub struct Timeline {
    in_clock: u32,
    out_clock: u32,
    out_rate: u32,
    /// Input timestamp of the first sample consumed since the last anchor.
    in_anchor: u32,
    /// Input samples consumed since the last anchor, and their rate.
    in_samples: u64,
    in_rate: u32,
    /// Output timestamp (unwrapped, output clock units) of the first sample emitted since the
    /// last anchor, and the samples emitted since then.
    out_anchor: u64,
    out_samples: u64,
    /// The last timestamp handed out, unwrapped.
    last_out: Option<u64>,
    started: bool,
    reanchors: u64,
}

impl Timeline {
    /// `out_rate` is the output sample rate; every clock and rate must be non-zero.
    pub fn new(in_clock: u32, out_clock: u32, out_rate: u32) -> Result<Self, TranscodeError> {
        if in_clock == 0 || out_clock == 0 || out_rate == 0 {
            return Err(TranscodeError::InvalidParameter("a zero clock rate".into()));
        }
        Ok(Timeline {
            in_clock,
            out_clock,
            out_rate,
            in_anchor: 0,
            in_samples: 0,
            in_rate: 1,
            out_anchor: 0,
            out_samples: 0,
            last_out: None,
            started: false,
            reanchors: 0,
        })
    }

    /// Record an input packet stamped `ts` (input clock) that decoded to `samples` samples per
    /// channel at `sample_rate`. Re-anchors on the first packet, on a rate change and when `ts`
    /// is more than [`REANCHOR_MS`] away from where the samples so far put it.
    pub fn on_input(&mut self, ts: u32, samples: u64, sample_rate: u32) {
        let sample_rate = sample_rate.max(1);
        if !self.started {
            self.started = true;
            self.in_anchor = ts;
            self.in_rate = sample_rate;
            self.out_anchor = convert(u64::from(ts), self.in_clock, self.out_clock);
        } else {
            let expected = self
                .in_anchor
                .wrapping_add(convert(self.in_samples, self.in_rate, self.in_clock) as u32);
            // Wrapping distance, read as signed: the u32 clock may wrap between packets.
            let delta = i64::from(ts.wrapping_sub(expected) as i32);
            let limit = (REANCHOR_MS * u64::from(self.in_clock) / 1000) as i64;
            if delta.abs() > limit || sample_rate != self.in_rate {
                self.reanchor(ts, delta.max(0).unsigned_abs(), sample_rate);
            }
        }
        self.in_samples = self.in_samples.saturating_add(samples);
    }

    fn reanchor(&mut self, ts: u32, gap_in_clock: u64, sample_rate: u32) {
        self.reanchors = self.reanchors.saturating_add(1);
        // The output goes on from where it is, plus the gap when the input jumped forward; a
        // backward jump (a reset) just continues, so timestamps never go back.
        let position = self.out_anchor.saturating_add(self.emitted_out());
        self.out_anchor = position.saturating_add(convert(gap_in_clock, self.in_clock, self.out_clock));
        self.out_samples = 0;
        self.in_anchor = ts;
        self.in_samples = 0;
        self.in_rate = sample_rate;
    }

    fn emitted_out(&self) -> u64 {
        convert(self.out_samples, self.out_rate, self.out_clock)
    }

    /// The timestamp (output clock, wrapping) of the next output packet, which carries
    /// `samples` samples per channel; advances the timeline past it.
    pub fn next_output(&mut self, samples: u32) -> u32 {
        let mut ts = self.out_anchor.saturating_add(self.emitted_out());
        if let Some(last) = self.last_out {
            // Rounding to a coarse output clock (milliseconds) must not repeat a timestamp.
            if ts <= last {
                ts = last.saturating_add(1);
            }
        }
        self.last_out = Some(ts);
        self.out_samples = self.out_samples.saturating_add(u64::from(samples));
        ts as u32
    }

    /// How many times the timeline re-anchored after the first packet (gaps, resets).
    pub fn reanchors(&self) -> u64 {
        self.reanchors
    }
}

/// `value` in units of `from` per second, expressed in units of `to` per second (floor).
fn convert(value: u64, from: u32, to: u32) -> u64 {
    let scaled = u128::from(value) * u128::from(to) / u128::from(from.max(1));
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_samples_not_input_jitter() {
        let mut t = Timeline::new(1000, 48_000, 48_000).unwrap();
        t.on_input(1000, 1024, 44_100);
        assert_eq!(t.next_output(960), 48_000);
        // Input stamped 3 ms late: ignored, the samples decide.
        t.on_input(1026, 1024, 44_100);
        assert_eq!(t.next_output(960), 48_960);
        assert_eq!(t.reanchors(), 0);
    }

    #[test]
    fn a_gap_moves_forward_and_a_reset_never_goes_back() {
        let mut t = Timeline::new(1000, 48_000, 48_000).unwrap();
        t.on_input(0, 960, 48_000);
        assert_eq!(t.next_output(960), 0);
        // Expected at 20 ms, arrives at 1020 ms: a one-second gap.
        t.on_input(1020, 960, 48_000);
        assert_eq!(t.next_output(960), 960 + 48_000);
        // Reset to 0: continues right after the last packet.
        t.on_input(0, 960, 48_000);
        assert_eq!(t.next_output(960), 960 + 48_000 + 960);
        assert_eq!(t.reanchors(), 2);
    }

    #[test]
    fn input_wrap_is_not_a_jump_and_output_wraps() {
        let mut t = Timeline::new(48_000, 1000, 48_000).unwrap();
        let start = u32::MAX - 959;
        t.on_input(start, 960, 48_000);
        let first = t.next_output(1024);
        t.on_input(start.wrapping_add(960), 960, 48_000);
        let second = t.next_output(1024);
        assert_eq!(second, first + 21, "1024 samples at 48 kHz are 21.33 ms");
        assert_eq!(t.reanchors(), 0);

        let mut t = Timeline::new(1000, 48_000, 48_000).unwrap();
        t.on_input(u32::MAX / 48, 960, 48_000);
        let a = t.next_output(960);
        let b = t.next_output(960);
        assert_eq!(b, a.wrapping_add(960), "RTP timestamps wrap");
    }

    #[test]
    fn millisecond_output_never_repeats() {
        let mut t = Timeline::new(48_000, 1000, 48_000).unwrap();
        t.on_input(0, 48_000, 48_000);
        let stamps: Vec<u32> = (0..10).map(|_| t.next_output(1)).collect();
        assert!(stamps.windows(2).all(|w| w[1] > w[0]), "{stamps:?}");
        assert!(Timeline::new(0, 1000, 48_000).is_err());
    }
}
