//! Turning a recording's fragmented MP4 into a progressive one with `moov` first (faststart),
//! after a clean stop and, at start-up, for a file a crash left unfinished: the fragments are
//! read back up to the last complete one, their samples become the sample tables, and their
//! bytes are copied behind the new head.
//!
//! Runs on a writer thread (or the start-up recovery), never on a worker. Invariants: the
//! source is only read; the result is written under a temporary name, synced, and renamed
//! into place, so a crash during finishing leaves the fragmented file, still playable and
//! still journaled; memory is the sample tables (12 bytes a sample) and one copy buffer.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::meta::RECORD_FILE_MODE;
use crate::media::fmp4::{progressive_head, Chunk, TrackConfig};
use crate::media::fmp4_read::{box_header, parse_moof};

/// The largest `moof` read (we write a few KiB; a second of 1000 samples is 12 KiB).
const MOOF_BYTES_MAX: u64 = 4 << 20;
/// Bytes copied at a time.
const COPY_BUFFER_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the file holds no complete fragment")]
    Empty,
}

/// What a finished file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub duration_ms: u64,
    pub size_bytes: u64,
}

/// A chunk and where its bytes are in the fragmented source.
struct Located {
    chunk: Chunk,
    source_offset: u64,
    len: u64,
}

/// Read the fragments of `source` (stopping at the first incomplete or inconsistent one).
fn read_fragments(file: &mut File, tracks: &[TrackConfig]) -> std::io::Result<Vec<Located>> {
    let file_len = file.metadata()?.len();
    let mut located = Vec::new();
    let mut position = 0u64;
    let mut header = [0u8; 16];
    while position + 8 <= file_len {
        file.seek(SeekFrom::Start(position))?;
        let available = usize::try_from((file_len - position).min(16)).unwrap_or(16);
        file.read_exact(&mut header[..available])?;
        let Some(boxed) = box_header(&header[..available]) else {
            break;
        };
        let Some(end) = position.checked_add(boxed.size).filter(|end| *end <= file_len) else {
            break; // cut by a crash
        };
        if &boxed.kind == b"moof" {
            if boxed.size > MOOF_BYTES_MAX {
                break;
            }
            let mut moof = vec![0u8; usize::try_from(boxed.size).unwrap_or(0)];
            file.seek(SeekFrom::Start(position))?;
            file.read_exact(&mut moof)?;
            let Some(runs) = parse_moof(&moof) else {
                break;
            };
            // The mdat that follows must be whole, and every run inside it.
            file.seek(SeekFrom::Start(end))?;
            let mut mdat_header = [0u8; 16];
            let available = usize::try_from((file_len.saturating_sub(end)).min(16)).unwrap_or(0);
            file.read_exact(&mut mdat_header[..available])?;
            let Some(mdat) = box_header(&mdat_header[..available]).filter(|h| &h.kind == b"mdat") else {
                break;
            };
            let Some(mdat_end) = end.checked_add(mdat.size).filter(|e| *e <= file_len) else {
                break;
            };
            let mut fragment = Vec::new();
            for run in runs {
                let len: u64 = run.samples.iter().map(|s| u64::from(s.size)).sum();
                let start = position + run.data_offset;
                let track = usize::try_from(run.track_id).unwrap_or(0).wrapping_sub(1);
                if start < end || start + len > mdat_end || track >= tracks.len() {
                    fragment.clear();
                    break;
                }
                fragment.push(Located {
                    chunk: Chunk {
                        track,
                        samples: run.samples,
                    },
                    source_offset: start,
                    len,
                });
            }
            if fragment.is_empty() {
                break;
            }
            located.extend(fragment);
            position = mdat_end;
        } else {
            position = end; // ftyp, moov, or the mdat just read
        }
    }
    Ok(located)
}

/// Write the progressive form of the fragmented `source` to `destination`.
pub fn finalize(
    source: &Path,
    tracks: &[TrackConfig],
    destination: &Path,
) -> Result<Finished, FinalizeError> {
    let mut input = File::open(source)?;
    let located = read_fragments(&mut input, tracks)?;
    if located.is_empty() {
        return Err(FinalizeError::Empty);
    }
    let chunks: Vec<Chunk> = located.iter().map(|l| l.chunk.clone()).collect();
    let head = progressive_head(tracks, &chunks);
    drop(chunks);
    let mut temporary = destination.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let output = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(RECORD_FILE_MODE)
        .open(&temporary)?;
    let mut writer = BufWriter::with_capacity(COPY_BUFFER_BYTES, output);
    writer.write_all(&head)?;
    let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
    let mut written = head.len() as u64;
    for part in &located {
        input.seek(SeekFrom::Start(part.source_offset))?;
        let mut left = part.len;
        while left > 0 {
            let step = usize::try_from(left.min(COPY_BUFFER_BYTES as u64)).unwrap_or(COPY_BUFFER_BYTES);
            let slice = buffer.get_mut(..step).unwrap_or_default();
            input.read_exact(slice)?;
            writer.write_all(slice)?;
            left -= step as u64;
        }
        written += part.len;
    }
    let output = writer.into_inner().map_err(|e| e.into_error())?;
    output.sync_data()?;
    drop(output);
    std::fs::rename(&temporary, destination)?;
    let duration_ms = tracks
        .iter()
        .enumerate()
        .map(|(index, track)| {
            let ticks: u64 = located
                .iter()
                .filter(|l| l.chunk.track == index)
                .flat_map(|l| l.chunk.samples.iter())
                .map(|s| u64::from(s.duration))
                .sum();
            ticks * 1000 / u64::from(track.timescale().max(1))
        })
        .max()
        .unwrap_or(0);
    Ok(Finished {
        duration_ms,
        size_bytes: written,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::record::frame::VideoCodec;
    use crate::record::muxer::{MuxEvent, Muxer};
    use crate::record::test_media::{duration_of, h264_and_opus, probe_decodes, Scratch, Timed};

    /// Three seconds of H.264 and Opus, fragmented; returns the file and its tracks.
    fn fragmented() -> (Vec<u8>, Vec<TrackConfig>) {
        let mut frames = h264_and_opus(&Timed::new(Instant::now()), 3);
        frames.sort_by_key(|f| f.arrival);
        let mut muxer = Muxer::new(Some(VideoCodec::H264));
        let mut origin = None;
        for frame in frames {
            muxer.push(frame, &mut origin);
        }
        muxer.finish(&mut origin);
        let (mut file, mut tracks) = (Vec::new(), Vec::new());
        while let Some(event) = muxer.poll() {
            match event {
                MuxEvent::Init { bytes, tracks: t } => {
                    tracks = t;
                    file.extend(bytes);
                }
                MuxEvent::Fragment { bytes } => file.extend(bytes),
                _ => {}
            }
        }
        (file, tracks)
    }

    #[test]
    fn a_finished_file_is_progressive_with_moov_first_and_plays_whole() {
        let scratch = Scratch::new("finalize");
        let (file, tracks) = fragmented();
        let source = scratch.0.join("f.mp4");
        std::fs::write(&source, &file).unwrap();
        let destination = scratch.0.join("p.mp4");
        let finished = finalize(&source, &tracks, &destination).unwrap();
        assert!((2950..=3100).contains(&finished.duration_ms), "{finished:?}");
        let bytes = std::fs::read(&destination).unwrap();
        assert_eq!(&bytes[4..8], b"ftyp");
        let ftyp = box_header(&bytes).unwrap().size as usize;
        assert_eq!(&bytes[ftyp + 4..ftyp + 8], b"moov", "faststart");
        let probe = probe_decodes(&destination);
        assert!((duration_of(&probe[0]) - 3.0).abs() < 0.1, "{probe:?}");
        assert!((duration_of(&probe[1]) - 3.0).abs() < 0.1, "{probe:?}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&destination).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    /// A file cut anywhere (a crash mid-write) finishes with its complete fragments.
    #[test]
    fn a_file_cut_by_a_crash_finishes_up_to_its_last_whole_fragment() {
        let scratch = Scratch::new("finalize-cut");
        let (file, tracks) = fragmented();
        let source = scratch.0.join("cut.mp4");
        let destination = scratch.0.join("cut-final.mp4");
        let mut last = 0;
        for cut in [file.len() - 1, file.len() * 2 / 3, file.len() / 2] {
            std::fs::write(&source, &file[..cut]).unwrap();
            let finished = finalize(&source, &tracks, &destination).unwrap();
            assert!(finished.duration_ms >= 1000, "{cut}: {finished:?}");
            assert!(last == 0 || finished.duration_ms <= last);
            last = finished.duration_ms;
            probe_decodes(&destination);
        }
        std::fs::write(&source, &file[..200]).unwrap();
        assert!(matches!(
            finalize(&source, &tracks, &destination),
            Err(FinalizeError::Empty)
        ));
    }
}
