//! The media a publisher sends from a real clip decodes: ffmpeg encodes small VP8 and H.264
//! clips, the publisher's source packetizes a loop and a half of each with a keyframe request
//! in the middle (which restarts the clip), and what a depacketizer reassembles from those
//! RTP payloads goes back to ffmpeg, which must decode every frame without an error.
//! Needs ffmpeg on the PATH (`scripts/install-test-deps.sh` installs it).

use std::path::Path;
use std::process::Command;

use webcall_loadtest::media::encode::{self, VideoSpec, CLIP_SECONDS};
use webcall_loadtest::media::{VideoCodec, VideoSource, VIDEO_FPS};

const MTU: usize = 1150;
const VP8_DESCRIPTOR_LEN: usize = 4;

fn frames_to_send() -> usize {
    (CLIP_SECONDS * VIDEO_FPS * 3 / 2) as usize
}

/// Payloads of each frame sent, with a keyframe request at frame 100.
fn send(codec: VideoCodec, dir: &Path) -> Vec<Vec<Vec<u8>>> {
    let spec = VideoSpec {
        codec,
        width: 320,
        height: 180,
        bitrate_bps: 200_000,
    };
    let clips = encode::load_or_encode(dir, Some(spec)).expect("ffmpeg makes the clip");
    let clip = clips.video.expect("video clip");
    let mut src = VideoSource::new(codec, 320, 180);
    (0..frames_to_send())
        .map(|i| src.next_clip_frame(&clip, i == 100, MTU).packets)
        .collect()
}

/// VP8 (RFC 7741): strip the payload descriptor, concatenate a frame's packets.
fn vp8_ivf(frames: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = b"DKIF".to_vec();
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"VP80");
    out.extend_from_slice(&320u16.to_le_bytes());
    out.extend_from_slice(&180u16.to_le_bytes());
    out.extend_from_slice(&VIDEO_FPS.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.resize(32, 0);
    for (i, packets) in frames.iter().enumerate() {
        let frame: Vec<u8> = packets
            .iter()
            .flat_map(|p| p[VP8_DESCRIPTOR_LEN..].iter().copied())
            .collect();
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(i as u64).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// H.264 (RFC 6184): single NAL units, STAP-A and FU-A back to an Annex B stream.
fn h264_annex_b(frames: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fu: Vec<u8> = Vec::new();
    for p in frames.iter().flatten() {
        match p[0] & 0x1f {
            24 => {
                let mut rest = &p[1..];
                while rest.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.extend_from_slice(&rest[2..2 + len]);
                    rest = &rest[2 + len..];
                }
            }
            28 => {
                if p[1] & 0x80 != 0 {
                    fu = vec![(p[0] & 0xe0) | (p[1] & 0x1f)];
                }
                fu.extend_from_slice(&p[2..]);
                if p[1] & 0x40 != 0 {
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.append(&mut fu);
                }
            }
            _ => {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(p);
            }
        }
    }
    out
}

/// Decodes `file` with ffmpeg; returns (frames decoded, what ffmpeg reported as errors).
fn decode(file: &Path) -> (usize, String) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    (frames, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn check(codec: VideoCodec, name: &str, container: fn(&[Vec<Vec<u8>>]) -> Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("webcall-clips-{}-{name}", std::process::id()));
    let frames = send(codec, &dir.join("cache"));
    assert!(frames.iter().all(|f| f.iter().all(|p| p.len() <= MTU)));
    let file = dir.join(name);
    std::fs::write(&file, container(&frames)).unwrap();
    let (decoded, errors) = decode(&file);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(errors.trim().is_empty(), "{codec:?} decode errors: {errors}");
    assert_eq!(decoded, frames_to_send(), "{codec:?}: every sent frame decodes");
}

#[test]
fn vp8_clip_payloads_decode() {
    check(VideoCodec::Vp8, "sent.ivf", vp8_ivf);
}

#[test]
fn h264_clip_payloads_decode() {
    check(VideoCodec::H264, "sent.h264", h264_annex_b);
}
