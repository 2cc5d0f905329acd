//! What is known of each recording on disk: a JSON file beside its MP4 (`NAME.mp4.json`),
//! which is the journal while the recording runs (state `recording`: a crash leaves it so,
//! and the next start finishes the file) and the catalog entry after it; and each room
//! timeline's manifest, the list of the room's files with their offsets.
//!
//! Written on a writer thread (and at start-up by the recovery), read by the control
//! thread for `GET /rest-api/recordings`. Invariants: every write is a temporary file
//! renamed into place, so a reader or a crash sees the old or the new JSON, never half.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::media::fmp4::TrackConfig;

/// The suffix of a recording's JSON beside its file.
pub const META_SUFFIX: &str = ".json";
/// Recording files and their JSON are readable by the owner and its group only.
pub const RECORD_FILE_MODE: u32 = 0o640;
/// The largest recording JSON read back (resolution changes and silences are bounded, see
/// [`EVENTS_PER_RECORDING_MAX`]).
pub const META_BYTES_MAX: u64 = 1 << 20;
/// Resolution changes and silences kept per recording; later ones are counted, not listed.
pub const EVENTS_PER_RECORDING_MAX: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingState {
    Recording,
    Finished,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub at_ms: u64,
    pub width: u16,
    pub height: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    pub from_ms: u64,
    pub to_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingMeta {
    /// The MP4's file name in the record directory.
    pub file: String,
    pub state: RecordingState,
    pub stream: String,
    pub room: Option<String>,
    pub login: String,
    pub media_session_id: String,
    pub session_id: String,
    /// When the file's time zero is, in ms since the UNIX epoch.
    pub start_time_ms: u64,
    pub duration_ms: u64,
    pub size_bytes: u64,
    /// The file's video codec (`H264`, `VP8`; black H.264 when the stream had no video).
    pub video_codec: String,
    pub audio_codec: String,
    /// What the publisher sent, when it differs from the file (`PCMU` became Opus silence).
    pub source_audio_codec: Option<String>,
    /// The room timeline this file is on (its start, ms since the epoch), if in a room.
    pub timeline_start_ms: Option<u64>,
    /// Where the file starts on that timeline.
    pub offset_ms: u64,
    /// The sample entries, once the head is written (what finishing a crashed file needs).
    pub tracks: Vec<TrackConfig>,
    pub resolutions: Vec<Resolution>,
    pub silences: Vec<Interval>,
    /// The template names the file at the end (`{endTime}`, `{duration}`).
    pub named_at_end: bool,
    /// The file was padded to its room's timeline (`--record-room-timeline`).
    #[serde(default)]
    pub room_timeline: bool,
    pub error: Option<String>,
}

impl RecordingMeta {
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}{META_SUFFIX}", self.file))
    }
}

/// Write `bytes` to `path` through a temporary file and a rename; `sync` waits for the disk.
pub fn write_atomically(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(RECORD_FILE_MODE)
        .open(&temporary)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    drop(file);
    std::fs::rename(&temporary, path)
}

pub fn write_meta(dir: &Path, meta: &RecordingMeta) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    write_atomically(&meta.path_in(dir), &bytes, true)
}

pub fn read_meta(path: &Path) -> std::io::Result<RecordingMeta> {
    let len = std::fs::metadata(path)?.len();
    if len > META_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "{len} bytes is more than a recording's JSON may have"
        )));
    }
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

/// Every recording JSON in `dir`, sorted by start time; unreadable ones are skipped (logged).
pub fn list(dir: &Path) -> Vec<RecordingMeta> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut metas: Vec<RecordingMeta> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".mp4.json")
        })
        .filter_map(|e| match read_meta(&e.path()) {
            Ok(meta) => Some(meta),
            Err(error) => {
                tracing::debug!(path = %e.path().display(), %error, "recording JSON unreadable; skipped");
                None
            }
        })
        .collect();
    metas.sort_by(|a, b| (a.start_time_ms, &a.file).cmp(&(b.start_time_ms, &b.file)));
    metas
}

/// One room timeline's files, for `webcall merge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub room: String,
    pub timeline_start_ms: u64,
    /// Whether the files were padded to start together (`--record-room-timeline`).
    pub padded: bool,
    pub recordings: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    pub file: String,
    pub stream: String,
    pub login: String,
    pub state: RecordingState,
    /// Where the file's time zero is on the room timeline (0 for every padded file).
    pub offset_ms: u64,
    /// Where the stream itself began on the room timeline.
    pub stream_offset_ms: u64,
    pub duration_ms: u64,
    pub video_codec: String,
    pub audio_codec: String,
    pub resolutions: Vec<Resolution>,
    pub silences: Vec<Interval>,
}

/// The manifest's file name for a room timeline.
pub fn manifest_name(room: &str, timeline_start_ms: u64) -> String {
    format!(
        "room-{}-{timeline_start_ms}.manifest.json",
        super::template::sanitise(room)
    )
}

pub fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
    write_atomically(
        &dir.join(manifest_name(&manifest.room, manifest.timeline_start_ms)),
        &bytes,
        false,
    )
}

pub fn read_manifest(path: &Path) -> std::io::Result<Manifest> {
    let len = std::fs::metadata(path)?.len();
    if len > META_BYTES_MAX * 16 {
        return Err(std::io::Error::other("the manifest is too large"));
    }
    serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
}
