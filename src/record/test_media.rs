//! Test media for the recorder's unit tests: real H.264 access units from ffmpeg's libx264
//! (so files decode), black VP8, Opus silence, frames timed like a publisher's, and
//! ffprobe/ffmpeg checks of a written file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frame::{FramePayload, TapFrame};
use super::muxer::OPUS_SILENCE;
use crate::media::clock::SenderClock;

/// `seconds` of 30 fps testsrc at `width` x `height` as H.264 access units (NALs without
/// start codes), a keyframe each second. Cached per size in the temp directory.
pub fn x264_access_units(width: u16, height: u16, seconds: u32) -> Vec<Vec<Vec<u8>>> {
    let path = std::env::temp_dir().join(format!("webcall-test-{width}x{height}-{seconds}s.h264"));
    if !path.is_file() {
        let partial = path.with_extension(format!("{}.part", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={width}x{height}:rate=30"))
            .args([
                "-t",
                &seconds.to_string(),
                "-c:v",
                "libx264",
                "-profile:v",
                "baseline",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-x264-params", "keyint=30:aud=1:bframes=0", "-f", "h264"])
            .arg(&partial)
            .status()
            .expect("ffmpeg runs (scripts/install-test-deps.sh installs it)");
        assert!(status.success());
        std::fs::rename(&partial, &path).unwrap();
    }
    split_annex_b(&std::fs::read(&path).unwrap())
}

/// Access units of an Annex B stream whose units each begin with an AUD.
fn split_annex_b(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut nals = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if bytes[i] == 0 && bytes[i + 1] == 0 && bytes[i + 2] == 1 {
            if let Some(s) = start {
                let mut end = i;
                while end > s && bytes[end - 1] == 0 {
                    end -= 1;
                }
                nals.push(bytes[s..end].to_vec());
            }
            start = Some(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        nals.push(bytes[s..].to_vec());
    }
    let mut units: Vec<Vec<Vec<u8>>> = Vec::new();
    for nal in nals {
        if nal.first().map(|b| b & 0x1f) == Some(9) || units.is_empty() {
            units.push(Vec::new());
        }
        if let Some(unit) = units.last_mut() {
            unit.push(nal);
        }
    }
    units.retain(|u| u.iter().any(|n| matches!(n[0] & 0x1f, 1 | 5)));
    units
}

/// `seconds` of 640x360 H.264 pictures from libx264 and of Opus silence, as `timed` sends them.
pub fn h264_and_opus(timed: &Timed, seconds: u32) -> Vec<TapFrame> {
    let mut frames: Vec<TapFrame> = x264_access_units(640, 360, seconds)
        .into_iter()
        .enumerate()
        .map(|(i, unit)| {
            let key = is_idr(&unit);
            timed.video(i as u32, FramePayload::H264(unit), key)
        })
        .collect();
    frames.extend((0..seconds * 50).map(|i| timed.audio(i)));
    frames
}

pub fn is_idr(unit: &[Vec<u8>]) -> bool {
    unit.iter().any(|n| n[0] & 0x1f == 5)
}

/// A publisher's frames: video at 30 fps and Opus every 20 ms, arriving on time from `t0`
/// plus `video_delay`/`audio_delay`, RTP times from the given starts.
pub struct Timed {
    pub t0: Instant,
    pub video_rtp0: u32,
    pub audio_rtp0: u32,
    pub video_delay: Duration,
    pub audio_delay: Duration,
    pub video_report: Option<SenderClock>,
    pub audio_report: Option<SenderClock>,
}

impl Timed {
    pub fn new(t0: Instant) -> Self {
        Timed {
            t0,
            video_rtp0: 1_000,
            audio_rtp0: 50_000,
            video_delay: Duration::ZERO,
            audio_delay: Duration::ZERO,
            video_report: None,
            audio_report: None,
        }
    }

    pub fn video(&self, index: u32, payload: FramePayload, keyframe: bool) -> TapFrame {
        TapFrame {
            rtp_ts: self.video_rtp0.wrapping_add(index * 3000),
            arrival: self.t0 + Duration::from_micros(u64::from(index) * 33_333) + self.video_delay,
            sender: self.video_report,
            keyframe,
            payload,
        }
    }

    pub fn audio(&self, index: u32) -> TapFrame {
        TapFrame {
            rtp_ts: self.audio_rtp0.wrapping_add(index * 960),
            arrival: self.t0 + Duration::from_millis(u64::from(index) * 20) + self.audio_delay,
            sender: self.audio_report,
            keyframe: true,
            payload: FramePayload::Opus(Arc::from(&OPUS_SILENCE[..])),
        }
    }
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "webcall-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// ffprobe's `stream=codec_name,width,height,duration` for each stream, and a check that
/// ffmpeg decodes the whole file without a word.
pub fn probe_decodes(path: &Path) -> Vec<String> {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,duration",
            "-of",
            "compact",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "{} decodes: {}",
        path.display(),
        String::from_utf8_lossy(&decode.stderr)
    );
    String::from_utf8_lossy(&probe.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `duration=` of a probe line, in seconds.
pub fn duration_of(line: &str) -> f64 {
    line.split('|')
        .find_map(|f| f.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .unwrap_or(-1.0)
}

/// Seconds of black at the start of the video (ffmpeg `blackdetect`), 0 when none.
pub fn leading_black_seconds(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(path)
        .args(["-vf", "blackdetect=d=0.1:pix_th=0.1", "-an", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .filter_map(|l| l.split("black_start:").nth(1))
        .filter_map(|rest| {
            let start: f64 = rest.split_whitespace().next()?.parse().ok()?;
            let end: f64 = rest
                .split("black_end:")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            (start < 0.05).then_some(end)
        })
        .next()
        .unwrap_or(0.0)
}
