//! The load's configuration: target, scenario and every knob, with the defaults the
//! command line shows.
//!
//! Owns [`LoadConfig`] (plain data, built by the CLI or by tests with [`LoadConfig::new`])
//! and the scenario and target enums. Units are in the names (`_bps`, `_s`, `_per_s`).

use std::time::Duration;

use crate::media::VideoCodec;

/// Which server the load is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// webcall over the WCS WebSocket room protocol.
    Webcall,
    /// Janus VideoRoom over its WebSocket JSON API.
    Janus,
}

/// What the load does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// One publisher (video + audio), N subscribers.
    Livestream,
    /// K participants in one room, everyone plays everyone.
    Meeting,
    /// P audio-only speakers, N listeners playing each of them.
    AudioRoom,
    /// R rooms of two, each playing the other.
    Pairs,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Livestream => "livestream",
            Scenario::Meeting => "meeting",
            Scenario::AudioRoom => "audio-room",
            Scenario::Pairs => "pairs",
        }
    }
}

/// Everything a load run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Server kind.
    pub target: Target,
    /// Signalling URL (`ws://127.0.0.1:8080/` for webcall, `ws://127.0.0.1:8188/` for Janus).
    pub url: String,
    /// Scenario.
    pub scenario: Scenario,
    /// Livestream subscribers; audio-room listeners.
    pub subscribers: usize,
    /// Audio-room speakers.
    pub publishers: usize,
    /// Meeting participants.
    pub participants: usize,
    /// Pairs: number of rooms of two.
    pub rooms: usize,
    /// Measurement window.
    pub duration: Duration,
    /// Time between the last join and the window.
    pub warmup: Duration,
    /// Subscriber sessions started per second.
    pub ramp_per_s: f64,
    /// Joins in flight at once.
    pub concurrency: usize,
    /// Video codec of publishers.
    pub video: VideoCodec,
    /// Video bitrate of each publisher.
    pub video_bitrate_bps: u32,
    /// A keyframe's size in delta frames (1: all frames alike; at most `KEYFRAME_FACTOR_MAX`).
    pub keyframe_factor: u32,
    /// Largest video RTP payload (1150 makes about 1200-byte SRTP datagrams).
    pub payload_max: usize,
    /// What publishers send.
    pub media: MediaSource,
    /// Publishers pace video like a browser at this multiple of the bitrate; `None`: each
    /// frame leaves as one burst at its instant.
    pub pacing_factor: Option<f64>,
    /// One subscriber in this many decrypts (delay, NACK, loss after NACK); 1: all; 0: none.
    pub decrypt_every: usize,
    /// Publishers ask the server to record their streams (`record: true`).
    pub record: bool,
    /// Server process to sample (CPU, PSS).
    pub server_pid: Option<u32>,
    /// Deadline of each signalling wait.
    pub timeout: Duration,
}

/// What publishers send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// Real VP8/H.264 and Opus, encoded once by ffmpeg at the load's bitrate and cached in
    /// `cache_dir`; keyframes are as large as the encoder makes them.
    Clip {
        /// Where clips are kept between runs.
        cache_dir: std::path::PathBuf,
    },
    /// Generated frames of exactly the bitrate's size (`keyframe_factor` sets keyframes),
    /// with valid headers and filler: an exact, steady packet rate, no encoder needed.
    Synthetic,
}

impl MediaSource {
    /// Name in reports: `clip` or `synthetic`.
    pub fn name(&self) -> &'static str {
        match self {
            MediaSource::Clip { .. } => "clip",
            MediaSource::Synthetic => "synthetic",
        }
    }
}

impl LoadConfig {
    /// A livestream of 10 subscribers against `url` with the command line's defaults.
    pub fn new(url: &str) -> Self {
        LoadConfig {
            target: Target::Webcall,
            url: url.to_string(),
            scenario: Scenario::Livestream,
            subscribers: 10,
            publishers: 10,
            participants: 5,
            rooms: 10,
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(3),
            ramp_per_s: 200.0,
            concurrency: 64,
            video: VideoCodec::H264,
            video_bitrate_bps: 1_500_000,
            keyframe_factor: 1,
            payload_max: 1150,
            media: MediaSource::Clip {
                cache_dir: crate::media::encode::default_cache_dir(),
            },
            pacing_factor: None,
            decrypt_every: 1,
            record: false,
            server_pid: None,
            timeout: Duration::from_secs(20),
        }
    }

    /// Whether subscriber number `i` decrypts.
    pub fn decrypts(&self, i: usize) -> bool {
        self.decrypt_every != 0 && i.is_multiple_of(self.decrypt_every)
    }
}
