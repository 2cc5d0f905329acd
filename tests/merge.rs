//! `webcall merge` on a three-person room: files made with ffmpeg (red, green and blue
//! pictures with a tone each) and a manifest that puts them at 0, 2 and 4 s; the merged MP4
//! shows each tile from its offset on (black before), in a 2x2 grid, and `--print` shows the
//! command it ran. A missing manifest is a clear error.

mod support;

use std::path::Path;
use std::process::Command;

use support::ffprobe_duration;

fn make_clip(path: &Path, color: &str, seconds: u32, hz: u32) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("color=c={color}:s=320x240:r=30:d={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency={hz}:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-shortest",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg (scripts/install-test-deps.sh installs it)");
    assert!(status.success());
}

/// The RGB of the pixel at (x, y) of the picture at `second`.
fn pixel(path: &Path, second: f64, x: usize, y: usize, width: usize) -> [u8; 3] {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &second.to_string(), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    let at = (y * width + x) * 3;
    [out.stdout[at], out.stdout[at + 1], out.stdout[at + 2]]
}

fn lit(rgb: [u8; 3]) -> bool {
    rgb.iter().any(|&c| c > 100)
}

#[test]
fn three_participants_appear_at_their_offsets() {
    let dir = std::env::temp_dir().join(format!("webcall-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    make_clip(&dir.join("a.mp4"), "red", 7, 300);
    make_clip(&dir.join("b.mp4"), "green", 5, 500);
    make_clip(&dir.join("c.mp4"), "blue", 3, 700);
    let entry = |file: &str, offset_ms: u64, duration_ms: u64| {
        serde_json::json!({
            "file": file, "stream": file, "login": file, "state": "finished",
            "offsetMs": offset_ms, "streamOffsetMs": offset_ms, "durationMs": duration_ms,
            "videoCodec": "H264", "audioCodec": "opus", "resolutions": [], "silences": []
        })
    };
    let manifest = serde_json::json!({
        "room": "room-1", "timelineStartMs": 1_700_000_000_000u64, "padded": false,
        "recordings": [entry("a.mp4", 0, 7000), entry("b.mp4", 2000, 5000), entry("c.mp4", 4000, 3000)]
    });
    let manifest_path = dir.join("room-room-1-1700000000000.manifest.json");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let output = dir.join("room.mp4");
    let run = Command::new(env!("CARGO_BIN_EXE_webcall"))
        .arg("merge")
        .arg(&manifest_path)
        .arg("-o")
        .arg(&output)
        .args(["--tile", "320x240", "--print"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        printed.starts_with("ffmpeg ") && printed.contains("xstack=inputs=3"),
        "{printed}"
    );

    // 2x2 tiles of 320x240: a at (0,0), b at (320,0), c at (0,240).
    let width = 640;
    let centres = [(160, 120), (480, 120), (160, 360)];
    for (second, shown) in [
        (1.0, [true, false, false]),
        (3.0, [true, true, false]),
        (5.0, [true, true, true]),
    ] {
        for ((x, y), want) in centres.iter().zip(shown) {
            let rgb = pixel(&output, second, *x, *y, width);
            assert_eq!(lit(rgb), want, "at {second} s the tile at ({x}, {y}) is {rgb:?}");
        }
    }
    let duration = ffprobe_duration(&output);
    assert!((duration - 7.0).abs() < 0.2, "{duration}");

    let missing = Command::new(env!("CARGO_BIN_EXE_webcall"))
        .args(["merge", "/nonexistent/manifest.json", "-o"])
        .arg(dir.join("x.mp4"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the manifest"));
    let _ = std::fs::remove_dir_all(&dir);
}
