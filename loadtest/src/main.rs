//! The `webcall-loadtest` command: parses the command line into a [`LoadConfig`], runs the
//! load, prints the human table and writes the JSON report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use webcall_loadtest::load::{self, LoadConfig, Scenario, Target};
use webcall_loadtest::VideoCodec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Codec {
    H264,
    Vp8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Media {
    /// Real VP8/H.264 and Opus, encoded once by ffmpeg and cached.
    Clip,
    /// Generated frames of exactly the bitrate's size (see --keyframe-factor).
    Synthetic,
}

/// Load generator for webcall (and Janus): emulated browsers on the wire, one thread.
#[derive(Debug, Parser)]
#[command(name = "webcall-loadtest", version)]
struct Args {
    /// Server kind.
    #[arg(long, value_enum, default_value = "webcall")]
    target: Target,
    /// Signalling WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/")]
    url: String,
    /// Scenario.
    #[arg(long, value_enum, default_value = "livestream")]
    scenario: Scenario,
    /// Livestream subscribers / audio-room listeners.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Audio-room speakers.
    #[arg(long, default_value_t = 10)]
    publishers: usize,
    /// Meeting participants.
    #[arg(long, default_value_t = 5)]
    participants: usize,
    /// Pairs: rooms of two.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Measurement window, seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Warm-up between the last join and the window, seconds.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Subscriber sessions started per second.
    #[arg(long, default_value_t = 200.0)]
    ramp: f64,
    /// Joins in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Video codec of the publishers.
    #[arg(long, value_enum, default_value = "h264")]
    codec: Codec,
    /// Video bitrate per publisher, kbit/s.
    #[arg(long, default_value_t = 1500)]
    video_kbps: u32,
    /// What publishers send: real media encoded once by ffmpeg (needs ffmpeg the first
    /// time), or synthetic frames of exactly the bitrate's size.
    #[arg(long, value_enum, default_value = "clip")]
    media: Media,
    /// Where encoded clips are cached (default: $XDG_CACHE_HOME or ~/.cache, webcall-loadtest).
    #[arg(long)]
    media_dir: Option<PathBuf>,
    /// Pace video like a browser: a frame's packets leave at F times the bitrate (Chrome: 2.5)
    /// instead of all at the frame's instant; 0: bursts.
    #[arg(long, default_value_t = 0.0)]
    pace_factor: f64,
    /// Synthetic media: keyframe size in delta frames (1: every frame alike; browsers send 5-10).
    #[arg(long, default_value_t = 1)]
    keyframe_factor: u32,
    /// Largest video RTP payload, bytes (1150: about 1200-byte SRTP datagrams).
    #[arg(long, default_value_t = 1150)]
    payload: usize,
    /// One subscriber in N decrypts (delay, NACK, loss after NACK); 1: all, 0: none.
    #[arg(long, default_value_t = 1)]
    decrypt_every: usize,
    /// Publishers ask webcall to record their streams (`publishStream` with `record: true`).
    #[arg(long)]
    record: bool,
    /// Server process to sample (CPU time, PSS) from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Deadline of each signalling wait, seconds.
    #[arg(long, default_value_t = 20.0)]
    timeout: f64,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Args {
    fn config(&self) -> LoadConfig {
        let mut c = LoadConfig::new(&self.url);
        c.target = self.target;
        c.scenario = self.scenario;
        c.subscribers = self.subscribers;
        c.publishers = self.publishers;
        c.participants = self.participants;
        c.rooms = self.rooms;
        c.duration = Duration::from_secs_f64(self.duration.max(0.1));
        c.warmup = Duration::from_secs_f64(self.warmup.max(0.0));
        c.ramp_per_s = self.ramp;
        c.concurrency = self.concurrency;
        c.video = match self.codec {
            Codec::H264 => VideoCodec::H264,
            Codec::Vp8 => VideoCodec::Vp8,
        };
        c.video_bitrate_bps = self.video_kbps.saturating_mul(1000);
        c.keyframe_factor = self.keyframe_factor;
        c.media = match self.media {
            Media::Clip => load::MediaSource::Clip {
                cache_dir: self
                    .media_dir
                    .clone()
                    .unwrap_or_else(webcall_loadtest::media::encode::default_cache_dir),
            },
            Media::Synthetic => load::MediaSource::Synthetic,
        };
        c.payload_max = self.payload.clamp(64, 1400);
        c.pacing_factor = (self.pace_factor > 0.0).then_some(self.pace_factor.min(100.0));
        c.decrypt_every = self.decrypt_every;
        c.record = self.record;
        c.server_pid = self.server_pid;
        c.timeout = Duration::from_secs_f64(self.timeout.max(1.0));
        c
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let report = match load::run(&args.config()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("webcall-loadtest: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, report.to_json()) {
            eprintln!("webcall-loadtest: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if !report.server_alive {
        eprintln!(
            "webcall-loadtest: the server went away during the window; the figures above are not a measurement"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
