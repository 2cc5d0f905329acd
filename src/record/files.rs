//! The recorder's file work beside the writer loop: synced writes (a full disk read as such),
//! names that do not collide, free space, room manifests rebuilt from the files' JSON, and the
//! room composite run in the background.
//!
//! Runs on writer threads (the composite on a thread of its own) and in the start-up recovery.
//! Invariants: a file is created `0640` and never overwritten (`create_new`); a write counts
//! as done only after `fdatasync`.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::meta::{self, Manifest, ManifestEntry, RecordingMeta, RECORD_FILE_MODE};
use super::queue::RecordFailure;
use super::template::sanitise;

/// Names tried when a file of the wanted name already exists (`NAME-1.mp4`, …).
const NAME_COLLISIONS_MAX: u32 = 1000;

/// What a failed write means for the recording: a full disk (or quota), else a write error.
pub(super) fn write_failure(error: &std::io::Error) -> RecordFailure {
    if error.raw_os_error() == Some(libc::ENOSPC) || error.raw_os_error() == Some(libc::EDQUOT) {
        RecordFailure::DiskFull
    } else {
        tracing::warn!(%error, "recording write failed");
        RecordFailure::Write
    }
}

/// Write `bytes` and `fdatasync`; `fault_after` is the tests' full-disk hook.
pub(super) fn write_synced(
    file: &mut File,
    bytes: &[u8],
    written: &mut u64,
    fault_after: Option<u64>,
) -> Result<(), RecordFailure> {
    if fault_after.is_some_and(|limit| *written + bytes.len() as u64 > limit) {
        return Err(write_failure(&std::io::Error::from_raw_os_error(libc::ENOSPC)));
    }
    file.write_all(bytes).map_err(|e| write_failure(&e))?;
    file.sync_data().map_err(|e| write_failure(&e))?;
    *written += bytes.len() as u64;
    Ok(())
}

/// Create `name` in `dir` (0640), or `NAME-1.mp4`, … if it exists; returns the name used.
pub(super) fn create_unique(dir: &Path, name: &str) -> std::io::Result<(File, String)> {
    let mut candidate = name.to_owned();
    for n in 1..=NAME_COLLISIONS_MAX {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(RECORD_FILE_MODE)
            .open(dir.join(&candidate));
        match opened {
            Ok(file) => return Ok((file, candidate)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                candidate = with_suffix(name, n);
            }
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free file name",
    ))
}

/// `wanted`, or a suffixed form of it that no file (other than `ours`) has.
pub(super) fn unique_name(dir: &Path, wanted: &str, ours: &str) -> String {
    let mut candidate = wanted.to_owned();
    for n in 1..=NAME_COLLISIONS_MAX {
        if candidate == ours || !dir.join(&candidate).exists() {
            return candidate;
        }
        candidate = with_suffix(wanted, n);
    }
    ours.to_owned()
}

pub(super) fn with_suffix(name: &str, n: u32) -> String {
    let stem = name.strip_suffix(".mp4").unwrap_or(name);
    format!("{}-{n}.mp4", sanitise(stem))
}

/// Rewrite a room timeline's manifest from the JSON of its files.
pub fn write_room_manifest(dir: &Path, room: &str, timeline_start_ms: u64) {
    let metas: Vec<RecordingMeta> = meta::list(dir)
        .into_iter()
        .filter(|m| m.room.as_deref() == Some(room) && m.timeline_start_ms == Some(timeline_start_ms))
        .collect();
    let padded = metas.iter().any(|m| m.room_timeline);
    let recordings: Vec<ManifestEntry> = metas
        .into_iter()
        .map(|m| {
            let head_ms = m
                .silences
                .first()
                .filter(|s| s.from_ms == 0)
                .map_or(0, |s| s.to_ms);
            ManifestEntry {
                stream_offset_ms: m.offset_ms + if padded { head_ms } else { 0 },
                file: m.file,
                stream: m.stream,
                login: m.login,
                state: m.state,
                offset_ms: m.offset_ms,
                duration_ms: m.duration_ms,
                video_codec: m.video_codec,
                audio_codec: m.audio_codec,
                resolutions: m.resolutions,
                silences: m.silences,
            }
        })
        .collect();
    let manifest = Manifest {
        room: room.to_owned(),
        timeline_start_ms,
        padded,
        recordings,
    };
    if let Err(error) = meta::write_manifest(dir, &manifest) {
        tracing::warn!(%error, room, "cannot write the room's manifest");
    }
}

/// Compose a finished room's files into `room-ROOM-START.mp4` beside its manifest, on a
/// thread of its own at the lowest priority (ffmpeg takes seconds to minutes; the writer must
/// not wait for it).
pub(super) fn compose_room(dir: &Path, room: &str, timeline_start_ms: u64) {
    let name = meta::manifest_name(room, timeline_start_ms);
    let stem = name.trim_end_matches(".manifest.json").to_owned();
    let manifest = dir.join(&name);
    let output = dir.join(format!("{stem}.mp4"));
    // Written under a hidden name and renamed when whole, so nobody reads half a file.
    let partial = dir.join(format!(".composing-{stem}.mp4"));
    let spawned = std::thread::Builder::new()
        .name("webcall-compose".to_owned())
        .spawn(move || {
            // SAFETY: setpriority on this thread (0) with a plain integer.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            }
            let options = super::merge::MergeOptions {
                manifest,
                output: partial.clone(),
                tile: super::merge::TILE_DEFAULT,
                print: false,
                quiet: true,
            };
            let result = super::merge::merge(&options)
                .map_err(|e| e.to_string())
                .and_then(|()| std::fs::rename(&partial, &output).map_err(|e| e.to_string()));
            match result {
                Ok(()) => tracing::info!(file = %output.display(), "room composite written"),
                Err(error) => {
                    let _ = std::fs::remove_file(&partial);
                    tracing::warn!(%error, "room composite failed");
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the room composite");
    }
}

/// Bytes free for an unprivileged writer on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a properly sized, writable
    // `statvfs` that the call fills in; nothing is retained past the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    // The fields are `c_ulong`: u64 here, u32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    (result == 0).then_some(free)
}
