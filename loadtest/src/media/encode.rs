//! Making the pre-encoded clips with ffmpeg, once, and caching them on disk.
//!
//! Owns the encoder settings and the cache: a clip is named after everything that shapes it
//! (codec, picture size, frame rate, bitrate, length, and [`CLIP_SETTINGS_VERSION`] for the
//! encoder settings), so a cached file is reused by every later run asking for the same media
//! and a different request makes a new file. Runs on the
//! thread that starts a load, before any peer exists. Invariants: a file is written under a
//! temporary name and renamed into place, so a run (or a concurrent test) never reads half a
//! clip; the encoder settings are those of a real-time WebRTC sender (no B-frames, no
//! look-ahead, constant bitrate with a short buffer, constrained baseline H.264), with the
//! only keyframe at the start of the clip: a publisher restarts the clip to answer PLI/FIR.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::error::{Error, Result};

use super::clip::{AudioClip, VideoClip};
use super::{VideoCodec, VIDEO_FPS};

/// Length of every clip; a publisher loops it (and restarts it on a keyframe request).
pub const CLIP_SECONDS: u32 = 10;
/// Opus bitrate of the audio clip, a browser's default for a voice/camera call.
pub const OPUS_BITRATE_BPS: u32 = 32_000;
/// Bumped whenever the encoder settings below change, so a cache made with older settings
/// is not reused (the version is part of every clip's file name).
pub const CLIP_SETTINGS_VERSION: u32 = 1;
/// Largest clip file read back: 10 s at 50 Mbit/s, far above any sensible load bitrate,
/// so a wrong file in the cache cannot exhaust memory.
pub const CLIP_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// The video clip wanted: codec, picture size and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoSpec {
    /// Codec.
    pub codec: VideoCodec,
    /// Picture width in pixels.
    pub width: u16,
    /// Picture height in pixels.
    pub height: u16,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
}

impl VideoSpec {
    fn file_name(&self) -> String {
        let (name, ext) = match self.codec {
            VideoCodec::Vp8 => ("vp8", "ivf"),
            VideoCodec::H264 => ("h264", "h264"),
        };
        format!(
            "{name}-{}x{}-{VIDEO_FPS}fps-{}kbps-{CLIP_SECONDS}s-v{CLIP_SETTINGS_VERSION}.{ext}",
            self.width,
            self.height,
            self.bitrate_bps / 1000
        )
    }

    fn ffmpeg_args(&self, out: &Path) -> Vec<String> {
        let kbps = (self.bitrate_bps / 1000).max(1);
        let mut args = strings(FFMPEG_GENERATED_INPUT);
        args.push(format!(
            "testsrc2=size={}x{}:rate={VIDEO_FPS}",
            self.width, self.height
        ));
        let frames = (CLIP_SECONDS * VIDEO_FPS).to_string();
        let rate = format!("{kbps}k");
        let buffer = format!("{}k", (kbps / 2).max(1));
        let common = [
            "-frames:v",
            &frames,
            "-b:v",
            &rate,
            "-maxrate",
            &rate,
            "-bufsize",
            &buffer,
            "-g",
            &frames,
            "-keyint_min",
            &frames,
            "-pix_fmt",
            "yuv420p",
        ];
        args.extend(strings(&common));
        let codec: &[&str] = match self.codec {
            VideoCodec::Vp8 => &[
                "-c:v",
                "libvpx",
                "-minrate",
                &rate,
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-auto-alt-ref",
                "0",
                "-lag-in-frames",
                "0",
                "-error-resilient",
                "1",
                "-f",
                "ivf",
            ],
            VideoCodec::H264 => &[
                "-c:v",
                "libx264",
                "-profile:v",
                "baseline",
                "-level",
                "3.1",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-bf",
                "0",
                "-sc_threshold",
                "0",
                "-x264-params",
                "aud=1",
                "-f",
                "h264",
            ],
        };
        args.extend(strings(codec));
        args.push(out.display().to_string());
        args
    }
}

/// The clips one load sends: the video clip, if the load has video, and the Opus clip.
#[derive(Debug, Clone)]
pub struct Clips {
    /// Video, looped per publisher.
    pub video: Option<Arc<VideoClip>>,
    /// Opus audio, 20 ms packets, looped per publisher.
    pub audio: Arc<AudioClip>,
}

/// Where clips are cached unless told otherwise: `$XDG_CACHE_HOME/webcall-loadtest`, else
/// `~/.cache/webcall-loadtest`, else the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    // The XDG spec says to ignore a relative (or empty) XDG_CACHE_HOME.
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("webcall-loadtest")
}

/// Loads the clips from `dir`, encoding (with ffmpeg) whichever is missing.
/// Blocks for as long as ffmpeg runs (a second or two per missing clip).
pub fn load_or_encode(dir: &Path, video: Option<VideoSpec>) -> Result<Clips> {
    std::fs::create_dir_all(dir).map_err(|e| at_path(dir, e.into()))?;
    let video = match video {
        Some(spec) => {
            let path = ensure(dir, &spec.file_name(), |out| spec.ffmpeg_args(out))?;
            let clip = read_clip(&path).and_then(|b| VideoClip::parse(spec.codec, &b));
            Some(Arc::new(clip.map_err(|e| at_path(&path, e))?))
        }
        None => None,
    };
    let name = format!(
        "opus-{}kbps-{CLIP_SECONDS}s-v{CLIP_SETTINGS_VERSION}.ogg",
        OPUS_BITRATE_BPS / 1000
    );
    let path = ensure(dir, &name, opus_args)?;
    let audio = read_clip(&path).and_then(|b| AudioClip::parse_ogg_opus(&b));
    let audio = Arc::new(audio.map_err(|e| at_path(&path, e))?);
    Ok(Clips { video, audio })
}

/// [`load_or_encode`] with a 440 Hz sine (ffmpeg's `sine`, peak -18 dBFS) for audio, so a
/// recording's audio can be checked for its tone and level.
pub fn load_or_encode_tone(dir: &Path, video: Option<VideoSpec>) -> Result<Clips> {
    let clips = load_or_encode(dir, video)?;
    let name = format!("opus-sine440-{CLIP_SECONDS}s-v{CLIP_SETTINGS_VERSION}.ogg");
    let path = ensure(dir, &name, |out| {
        let mut args = opus_args(out);
        if let Some(source) = args.iter_mut().find(|a| a.starts_with("anoisesrc=")) {
            *source = "sine=frequency=440:sample_rate=48000".to_owned();
        }
        args
    })?;
    let audio = read_clip(&path).and_then(|b| AudioClip::parse_ogg_opus(&b));
    let audio = Arc::new(audio.map_err(|e| at_path(&path, e))?);
    Ok(Clips {
        video: clips.video,
        audio,
    })
}

/// Names the file an error is about, and how to get a fresh one.
fn at_path(path: &Path, error: Error) -> Error {
    Error::Media(format!(
        "{}: {error} (delete it to have ffmpeg make it again)",
        path.display()
    ))
}

fn opus_args(out: &Path) -> Vec<String> {
    let seconds = CLIP_SECONDS.to_string();
    let rate = format!("{}k", OPUS_BITRATE_BPS / 1000);
    let mut args = strings(FFMPEG_GENERATED_INPUT);
    args.extend(strings(&[
        // Pink noise never repeats a packet, like speech.
        "anoisesrc=color=pink:amplitude=0.1:sample_rate=48000",
        "-t",
        &seconds,
        "-ac",
        "1",
        "-c:a",
        "libopus",
        "-b:a",
        &rate,
        "-frame_duration",
        "20",
        "-application",
        "voip",
        "-f",
        "ogg",
    ]));
    args.push(out.display().to_string());
    args
}

/// ffmpeg's options before a generated (lavfi) input, which follows them.
const FFMPEG_GENERATED_INPUT: &[&str] = &[
    "-nostdin",
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
];

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn read_clip(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)?.len();
    if len > CLIP_FILE_BYTES_MAX {
        return Err(Error::Media(format!(
            "{} is {len} bytes, more than the {CLIP_FILE_BYTES_MAX} a clip may have",
            path.display()
        )));
    }
    Ok(std::fs::read(path)?)
}

/// The path of `name` in `dir`, running ffmpeg with `args(temporary path)` first if absent.
fn ensure(dir: &Path, name: &str, args: impl Fn(&Path) -> Vec<String>) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    // Unique per call: two loads in one process (parallel tests) may make the same clip.
    let partial = dir.join(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
    let output = Command::new("ffmpeg")
        .args(args(&partial))
        .output()
        .map_err(|e| {
            Error::Media(format!(
                "cannot run ffmpeg to make the {name} clip ({e}); install ffmpeg \
             (apt-get install ffmpeg) or use --media synthetic"
            ))
        })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::Media(format!(
            "ffmpeg failed making {name}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    if let Err(e) = std::fs::rename(&partial, &path) {
        let _ = std::fs::remove_file(&partial);
        return Err(at_path(&path, e.into()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_names_carry_everything_that_shapes_them() {
        let spec = VideoSpec {
            codec: VideoCodec::H264,
            width: 1280,
            height: 720,
            bitrate_bps: 1_500_000,
        };
        assert_eq!(spec.file_name(), "h264-1280x720-30fps-1500kbps-10s-v1.h264");
        let vp8 = VideoSpec {
            codec: VideoCodec::Vp8,
            bitrate_bps: 800_000,
            ..spec
        };
        assert_eq!(vp8.file_name(), "vp8-1280x720-30fps-800kbps-10s-v1.ivf");
        let args = vp8.ffmpeg_args(Path::new("/x/out.ivf"));
        assert!(args.windows(2).any(|w| w == ["-b:v", "800k"]));
        assert!(
            args.windows(2).any(|w| w == ["-g", "300"]),
            "one keyframe per clip"
        );
        assert_eq!(args.last().map(String::as_str), Some("/x/out.ivf"));
    }
}
