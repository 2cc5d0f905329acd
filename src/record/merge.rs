//! `webcall merge MANIFEST -o room.mp4`: one MP4 of a whole room from its manifest, with
//! ffmpeg (Debian's, found on PATH). Each participant's file is a tile of a grid that fits
//! their number (side by side for two), appearing at its offset on the room timeline and
//! black before and after; the audio of all is mixed.
//!
//! Runs in the `webcall merge` process, never in the server. Invariants: the ffmpeg command
//! is built from the manifest alone (files relative to it), and is exactly what `--print`
//! shows; a missing ffmpeg or file is a clear error, not a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::meta::{read_manifest, Manifest, RecordingState};

/// Tile size in the merged picture.
pub const TILE_DEFAULT: (u32, u32) = (640, 360);
/// Frames per second of the merged picture.
const MERGE_FPS: u32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot read the manifest {path}: {source}")]
    Manifest { path: PathBuf, source: std::io::Error },
    #[error("the manifest lists no recording whose file is there")]
    Empty,
    #[error("ffmpeg is not on PATH: install Debian's ffmpeg (apt-get install ffmpeg)")]
    NoFfmpeg,
    #[error("ffmpeg failed ({0})")]
    Ffmpeg(std::process::ExitStatus),
    #[error("cannot run ffmpeg: {0}")]
    Run(std::io::Error),
}

#[derive(Debug, Clone)]
pub struct MergeOptions {
    pub manifest: PathBuf,
    pub output: PathBuf,
    pub tile: (u32, u32),
    /// Print the ffmpeg command before running it.
    pub print: bool,
    /// Keep ffmpeg's output to itself (the server's background composite).
    pub quiet: bool,
}

/// One tile's input.
#[derive(Debug, Clone, PartialEq)]
struct Input {
    path: PathBuf,
    offset_s: f64,
    duration_s: f64,
}

fn inputs(manifest: &Manifest, dir: &Path) -> Vec<Input> {
    manifest
        .recordings
        .iter()
        .filter(|r| r.state != RecordingState::Recording)
        .map(|r| Input {
            path: dir.join(&r.file),
            offset_s: r.offset_ms as f64 / 1000.0,
            duration_s: r.duration_ms as f64 / 1000.0,
        })
        .filter(|i| i.path.is_file())
        .collect()
}

/// (columns, rows) of a grid for `n` tiles: as square as it gets, wider than tall.
pub fn grid(n: usize) -> (usize, usize) {
    let mut columns = 1;
    while columns * columns < n {
        columns += 1;
    }
    let rows = n.div_ceil(columns.max(1)).max(1);
    (columns, rows)
}

/// The ffmpeg arguments that compose `inputs` into `output`.
fn ffmpeg_args(inputs: &[Input], output: &Path, (width, height): (u32, u32)) -> Vec<String> {
    let total = inputs
        .iter()
        .map(|i| i.offset_s + i.duration_s)
        .fold(0.0f64, f64::max);
    let mut args: Vec<String> = vec!["-hide_banner".into(), "-y".into()];
    for input in inputs {
        args.push("-i".into());
        args.push(input.path.display().to_string());
    }
    let (columns, _) = grid(inputs.len());
    let mut filter = String::new();
    let mut layout = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let tail = (total - input.offset_s - input.duration_s).max(0.0);
        filter.push_str(&format!(
            "[{i}:v]fps={MERGE_FPS},scale={width}:{height}:force_original_aspect_ratio=decrease,\
             pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,setpts=PTS-STARTPTS,\
             tpad=start_duration={:.3}:stop_mode=add:stop_duration={tail:.3}:color=black[v{i}];",
            input.offset_s
        ));
        filter.push_str(&format!(
            "[{i}:a]aresample=48000,asetpts=PTS-STARTPTS,adelay={}:all=1,apad=whole_dur={total:.3}[a{i}];",
            (input.offset_s * 1000.0).round() as u64
        ));
        let (column, row) = (i % columns, i / columns);
        layout.push(format!("{}_{}", column as u32 * width, row as u32 * height));
    }
    let videos: String = (0..inputs.len()).map(|i| format!("[v{i}]")).collect();
    let audios: String = (0..inputs.len()).map(|i| format!("[a{i}]")).collect();
    if inputs.len() == 1 {
        filter.push_str("[v0]null[video];[a0]anull[audio]");
    } else {
        filter.push_str(&format!(
            "{videos}xstack=inputs={}:layout={}:fill=black[video];{audios}amix=inputs={}:duration=longest:normalize=0[audio]",
            inputs.len(),
            layout.join("|"),
            inputs.len()
        ));
    }
    args.extend(
        [
            "-filter_complex",
            &filter,
            "-map",
            "[video]",
            "-map",
            "[audio]",
            "-t",
            &format!("{total:.3}"),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
        ]
        .map(str::to_owned),
    );
    args.push(output.display().to_string());
    args
}

/// Quote an argument for a POSIX shell, where it needs it.
fn shell_quote(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Compose the room's files into one MP4.
pub fn merge(options: &MergeOptions) -> Result<(), MergeError> {
    let manifest = read_manifest(&options.manifest).map_err(|source| MergeError::Manifest {
        path: options.manifest.clone(),
        source,
    })?;
    let dir = options.manifest.parent().unwrap_or_else(|| Path::new("."));
    let inputs = inputs(&manifest, dir);
    if inputs.is_empty() {
        return Err(MergeError::Empty);
    }
    let mut args = ffmpeg_args(&inputs, &options.output, options.tile);
    if options.quiet {
        args.splice(0..0, ["-nostdin", "-loglevel", "error"].map(str::to_owned));
    }
    if options.print {
        let line: Vec<String> = std::iter::once("ffmpeg".to_owned())
            .chain(args.iter().map(|a| shell_quote(a)))
            .collect();
        println!("{}", line.join(" "));
    }
    let mut command = Command::new("ffmpeg");
    command.args(&args);
    if options.quiet {
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    }
    let status = command.status().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            MergeError::NoFfmpeg
        } else {
            MergeError::Run(e)
        }
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(MergeError::Ffmpeg(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_fit_the_participants() {
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(2), (2, 1));
        assert_eq!(grid(3), (2, 2));
        assert_eq!(grid(4), (2, 2));
        assert_eq!(grid(5), (3, 2));
        assert_eq!(grid(9), (3, 3));
        assert_eq!(grid(10), (4, 3));
    }

    #[test]
    fn each_tile_waits_for_its_offset_and_pads_to_the_end() {
        let inputs = [
            Input {
                path: "a.mp4".into(),
                offset_s: 0.0,
                duration_s: 6.0,
            },
            Input {
                path: "b.mp4".into(),
                offset_s: 2.5,
                duration_s: 1.5,
            },
        ];
        let args = ffmpeg_args(&inputs, Path::new("out.mp4"), (320, 240));
        let filter = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(
            filter.contains("[1:v]fps=30")
                && filter.contains("tpad=start_duration=2.500:stop_mode=add:stop_duration=2.000"),
            "{filter}"
        );
        assert!(filter.contains("adelay=2500:all=1"), "{filter}");
        assert!(filter.contains("xstack=inputs=2:layout=0_0|320_0"), "{filter}");
        assert_eq!(args.last().map(String::as_str), Some("out.mp4"));
        assert_eq!(shell_quote("[a]b c"), "'[a]b c'");
    }
}
