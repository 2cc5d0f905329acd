//! MP4 (ISO/IEC 14496-12) for recording: fragmented while a recording runs (the init segment,
//! `ftyp` + `moov` with an `avc1` or `Opus` sample entry per track and `mvex`, then `moof` +
//! `mdat` fragments), so a file plays up to its last complete fragment after a crash; and
//! progressive with `moov` first (faststart, full sample tables) once it is finished.
//!
//! Sans-IO: fed track descriptions and samples, returns bytes; a writer thread puts them on
//! disk. Invariants: every box's size is patched in after its content (no size is guessed);
//! `trun` data offsets point inside the fragment's own `mdat` (`default-base-is-moof`).

/// What one track carries (kept in a recording's journal, so a crashed file can be finished).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "codec")]
pub enum TrackConfig {
    /// H.264 in AVCC form (4-byte lengths), parameter sets in the sample entry's `avcC`.
    H264 {
        width: u16,
        height: u16,
        sps: Vec<Vec<u8>>,
        pps: Vec<Vec<u8>>,
    },
    /// VP8 frames as sent (`vp08` with a `vpcC`).
    Vp8 { width: u16, height: u16 },
    /// Opus at 48 kHz.
    Opus { channels: u8, pre_skip: u16 },
}

impl TrackConfig {
    /// Ticks per second of the track's media time.
    pub fn timescale(&self) -> u32 {
        match self {
            TrackConfig::H264 { .. } | TrackConfig::Vp8 { .. } => 90_000,
            TrackConfig::Opus { .. } => 48_000,
        }
    }

    pub fn is_video(&self) -> bool {
        !matches!(self, TrackConfig::Opus { .. })
    }

    /// The picture size of a video track.
    pub fn size(&self) -> Option<(u16, u16)> {
        match self {
            TrackConfig::H264 { width, height, .. } | TrackConfig::Vp8 { width, height } => {
                Some((*width, *height))
            }
            TrackConfig::Opus { .. } => None,
        }
    }
}

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleInfo {
    /// In the track's timescale.
    pub duration: u32,
    pub size: u32,
    pub keyframe: bool,
}

/// One track's run of samples in a fragment; their bytes follow in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRun {
    /// 1-based, in the order of the init segment's tracks.
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: Vec<SampleInfo>,
}

/// Builds one box: `open` writes a placeholder size, `close` patches it.
struct Boxes {
    out: Vec<u8>,
    open: Vec<usize>,
}

impl Boxes {
    fn new() -> Self {
        Boxes {
            out: Vec::new(),
            open: Vec::new(),
        }
    }

    fn open(&mut self, kind: &[u8; 4]) {
        self.open.push(self.out.len());
        self.out.extend_from_slice(&[0, 0, 0, 0]);
        self.out.extend_from_slice(kind);
    }

    /// A full box: version and flags after the type.
    fn open_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.open(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    fn close(&mut self) {
        if let Some(start) = self.open.pop() {
            let size = u32::try_from(self.out.len() - start).unwrap_or(u32::MAX);
            if let Some(slot) = self.out.get_mut(start..start + 4) {
                slot.copy_from_slice(&size.to_be_bytes());
            }
        }
    }

    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn zeros(&mut self, n: usize) {
        self.out.resize(self.out.len() + n, 0);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// The unity transformation matrix of `mvhd` and `tkhd`.
    fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

/// `ftyp` with its major brand, minor version and compatible brands.
fn ftyp(b: &mut Boxes, major: &[u8; 4], minor: u32, compatible: &[&[u8; 4]]) {
    b.open(b"ftyp");
    b.bytes(major);
    b.u32(minor);
    for brand in compatible {
        b.bytes(*brand);
    }
    b.close();
}

/// `mvhd` in a 1 kHz movie timescale; the next track id follows the `tracks` ones.
fn mvhd(b: &mut Boxes, duration_ms: u32, tracks: usize) {
    b.open_full(b"mvhd", 0, 0);
    b.u32(0); // creation time
    b.u32(0); // modification time
    b.u32(1000); // timescale
    b.u32(duration_ms);
    b.u32(0x0001_0000); // rate
    b.u16(0x0100); // volume
    b.zeros(10);
    b.matrix();
    b.zeros(24);
    b.u32(u32::try_from(tracks).unwrap_or(u32::MAX).saturating_add(1)); // next track id
    b.close();
}

/// `ftyp` + `moov` for `tracks` (track ids 1, 2, … in order).
pub fn init_segment(tracks: &[TrackConfig]) -> Vec<u8> {
    let mut b = Boxes::new();
    ftyp(
        &mut b,
        b"iso6",
        0,
        &[b"iso6", b"isom", b"mp41", b"avc1", b"vp08", b"opus"],
    );
    b.open(b"moov");
    mvhd(&mut b, 0, tracks.len()); // duration unknown: fragments follow
    for (index, track) in tracks.iter().enumerate() {
        let id = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
        trak(&mut b, id, track, None);
    }
    b.open(b"mvex");
    for index in 0..tracks.len() {
        b.open_full(b"trex", 0, 0);
        b.u32(u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1));
        b.u32(1); // default sample description index
        b.u32(0);
        b.u32(0);
        b.u32(0);
        b.close();
    }
    b.close();
    b.close();
    b.out
}

/// A progressive track's sample tables; `None` for a fragmented file's empty ones.
struct Tables<'a> {
    samples: &'a [SampleInfo],
    /// (file offset, samples) of each of the track's chunks, in file order.
    chunks: &'a [(u64, u32)],
    /// Track duration in the movie timescale (1000).
    movie_duration: u32,
    wide_offsets: bool,
}

fn trak(b: &mut Boxes, id: u32, track: &TrackConfig, tables: Option<&Tables<'_>>) {
    let video = track.is_video();
    let media_duration: u64 = tables.map_or(0, |t| t.samples.iter().map(|s| u64::from(s.duration)).sum());
    b.open(b"trak");
    b.open_full(b"tkhd", 0, 0x3); // enabled, in movie
    b.u32(0);
    b.u32(0);
    b.u32(id);
    b.u32(0);
    b.u32(tables.map_or(0, |t| t.movie_duration));
    b.zeros(8);
    b.u16(0); // layer
    b.u16(0); // alternate group
    b.u16(if video { 0 } else { 0x0100 }); // volume
    b.u16(0);
    b.matrix();
    let (width, height) = track.size().unwrap_or((0, 0));
    b.u32(u32::from(width) << 16);
    b.u32(u32::from(height) << 16);
    b.close();
    b.open(b"mdia");
    b.open_full(b"mdhd", 0, 0);
    b.u32(0);
    b.u32(0);
    b.u32(track.timescale());
    b.u32(u32::try_from(media_duration).unwrap_or(u32::MAX));
    b.u16(0x55c4); // language: und
    b.u16(0);
    b.close();
    b.open_full(b"hdlr", 0, 0);
    b.u32(0);
    b.bytes(if video { b"vide" } else { b"soun" });
    b.zeros(12);
    b.bytes(if video {
        b"VideoHandler\0"
    } else {
        b"SoundHandler\0"
    });
    b.close();
    b.open(b"minf");
    if video {
        b.open_full(b"vmhd", 0, 1);
        b.zeros(8);
    } else {
        b.open_full(b"smhd", 0, 0);
        b.zeros(4);
    }
    b.close();
    b.open(b"dinf");
    b.open_full(b"dref", 0, 0);
    b.u32(1);
    b.open_full(b"url ", 0, 1); // media in this file
    b.close();
    b.close();
    b.close();
    b.open(b"stbl");
    b.open_full(b"stsd", 0, 0);
    b.u32(1);
    sample_entry(b, track);
    b.close();
    match tables {
        None => {
            for kind in [b"stts", b"stsc", b"stco"] {
                b.open_full(kind, 0, 0);
                b.u32(0);
                b.close();
            }
            b.open_full(b"stsz", 0, 0);
            b.u32(0);
            b.u32(0);
            b.close();
        }
        Some(tables) => sample_tables(b, video, tables),
    }
    b.close(); // stbl
    b.close(); // minf
    b.close(); // mdia
    b.close(); // trak
}

fn sample_tables(b: &mut Boxes, video: bool, t: &Tables<'_>) {
    // stts: runs of equal durations.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for sample in t.samples {
        match runs.last_mut() {
            Some((count, duration)) if *duration == sample.duration => *count += 1,
            _ => runs.push((1, sample.duration)),
        }
    }
    b.open_full(b"stts", 0, 0);
    b.u32(u32::try_from(runs.len()).unwrap_or(u32::MAX));
    for (count, duration) in runs {
        b.u32(count);
        b.u32(duration);
    }
    b.close();
    if video {
        let sync: Vec<u32> = (1u32..)
            .zip(t.samples)
            .filter(|(_, s)| s.keyframe)
            .map(|(n, _)| n)
            .collect();
        b.open_full(b"stss", 0, 0);
        b.u32(u32::try_from(sync.len()).unwrap_or(u32::MAX));
        for n in sync {
            b.u32(n);
        }
        b.close();
    }
    b.open_full(b"stsz", 0, 0);
    b.u32(0);
    b.u32(u32::try_from(t.samples.len()).unwrap_or(u32::MAX));
    for sample in t.samples {
        b.u32(sample.size);
    }
    b.close();
    b.open_full(b"stsc", 0, 0);
    b.u32(u32::try_from(t.chunks.len()).unwrap_or(u32::MAX));
    for (index, (_, samples)) in (1u32..).zip(t.chunks) {
        b.u32(index);
        b.u32(*samples);
        b.u32(1);
    }
    b.close();
    if t.wide_offsets {
        b.open_full(b"co64", 0, 0);
        b.u32(u32::try_from(t.chunks.len()).unwrap_or(u32::MAX));
        for (offset, _) in t.chunks {
            b.u64(*offset);
        }
    } else {
        b.open_full(b"stco", 0, 0);
        b.u32(u32::try_from(t.chunks.len()).unwrap_or(u32::MAX));
        for (offset, _) in t.chunks {
            b.u32(u32::try_from(*offset).unwrap_or(u32::MAX));
        }
    }
    b.close();
}

/// A track's samples and its chunks' (file offset, sample count).
type TrackLayout = (Vec<SampleInfo>, Vec<(u64, u32)>);

/// One run of one track's samples, contiguous in the progressive file's `mdat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Index into the tracks (0-based).
    pub track: usize,
    pub samples: Vec<SampleInfo>,
}

/// The head of a progressive MP4 with `moov` first (faststart): `ftyp`, `moov` with every
/// sample table, and the `mdat` header. The chunks' bytes follow it, in `chunks` order; a
/// chunk whose track is out of range is left out of the tables (its bytes must be too).
pub fn progressive_head(tracks: &[TrackConfig], chunks: &[Chunk]) -> Vec<u8> {
    let data_len: u64 = chunks
        .iter()
        .flat_map(|c| c.samples.iter())
        .map(|s| u64::from(s.size))
        .sum();
    // Offsets depend on the moov's size and the size on nothing but the counts: lay it out
    // once with zero offsets, then again with the real ones.
    // 64-bit chunk offsets when the file may pass 4 GiB (with room for any moov).
    let wide_offsets = data_len > u64::from(u32::MAX) - (256 << 20);
    let first = head_with_offsets(tracks, chunks, 0, data_len, wide_offsets);
    let head = head_with_offsets(tracks, chunks, first.len() as u64, data_len, wide_offsets);
    debug_assert_eq!(
        head.len(),
        first.len(),
        "the head's size depends only on the counts"
    );
    head
}

/// `head_len`: the length of the whole head (ftyp, moov, mdat header), where the data starts.
fn head_with_offsets(
    tracks: &[TrackConfig],
    chunks: &[Chunk],
    head_len: u64,
    data_len: u64,
    wide_offsets: bool,
) -> Vec<u8> {
    let mut per_track: Vec<TrackLayout> = vec![(Vec::new(), Vec::new()); tracks.len()];
    let mut position = head_len;
    for chunk in chunks {
        let bytes: u64 = chunk.samples.iter().map(|s| u64::from(s.size)).sum();
        if let Some((samples, offsets)) = per_track.get_mut(chunk.track) {
            offsets.push((position, u32::try_from(chunk.samples.len()).unwrap_or(u32::MAX)));
            samples.extend_from_slice(&chunk.samples);
        }
        position += bytes;
    }
    let durations_ms: Vec<u32> = tracks
        .iter()
        .zip(&per_track)
        .map(|(track, (samples, _))| {
            let ticks: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();
            u32::try_from(ticks * 1000 / u64::from(track.timescale())).unwrap_or(u32::MAX)
        })
        .collect();
    let mut b = Boxes::new();
    ftyp(
        &mut b,
        b"isom",
        0x200,
        &[b"isom", b"iso2", b"mp41", b"avc1", b"vp08", b"opus"],
    );
    b.open(b"moov");
    mvhd(
        &mut b,
        durations_ms.iter().copied().max().unwrap_or(0),
        tracks.len(),
    );
    for (index, (track, (samples, offsets))) in tracks.iter().zip(&per_track).enumerate() {
        let tables = Tables {
            samples,
            chunks: offsets,
            movie_duration: durations_ms.get(index).copied().unwrap_or(0),
            wide_offsets,
        };
        let id = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
        trak(&mut b, id, track, Some(&tables));
    }
    b.close();
    // The mdat header: a 64-bit size when the data does not fit 32 bits.
    if data_len + 8 > u64::from(u32::MAX) {
        b.u32(1);
        b.bytes(b"mdat");
        b.u64(data_len + 16);
    } else {
        b.u32(u32::try_from(data_len + 8).unwrap_or(u32::MAX));
        b.bytes(b"mdat");
    }
    b.out
}

fn sample_entry(b: &mut Boxes, track: &TrackConfig) {
    match track {
        TrackConfig::H264 {
            width,
            height,
            sps,
            pps,
        } => {
            visual_sample_entry(b, b"avc1", *width, *height);
            b.open(b"avcC");
            let first = sps.first().map(Vec::as_slice).unwrap_or_default();
            b.u8(1);
            b.u8(first.get(1).copied().unwrap_or(66)); // profile
            b.u8(first.get(2).copied().unwrap_or(0)); // compatibility
            b.u8(first.get(3).copied().unwrap_or(30)); // level
            b.u8(0xff); // 4-byte NAL lengths
            let count = |n: usize| u8::try_from(n).unwrap_or(u8::MAX);
            b.u8(0xe0 | (count(sps.len()) & 0x1f));
            for set in sps.iter().take(31) {
                b.u16(u16::try_from(set.len()).unwrap_or(u16::MAX));
                b.bytes(set);
            }
            b.u8(count(pps.len()));
            for set in pps.iter().take(255) {
                b.u16(u16::try_from(set.len()).unwrap_or(u16::MAX));
                b.bytes(set);
            }
            b.close();
            b.close();
        }
        TrackConfig::Vp8 { width, height } => {
            visual_sample_entry(b, b"vp08", *width, *height);
            b.open_full(b"vpcC", 1, 0);
            b.u8(0); // profile
            b.u8(31); // level 3.1
            b.u8((8 << 4) | (1 << 1)); // 8 bits, 4:2:0 co-located, limited range
            b.u8(1); // BT.709 primaries, transfer and matrix
            b.u8(1);
            b.u8(1);
            b.u16(0); // no codec initialization data
            b.close();
            b.close();
        }
        TrackConfig::Opus { channels, pre_skip } => {
            b.open(b"Opus");
            b.zeros(6);
            b.u16(1);
            b.zeros(8);
            b.u16(u16::from(*channels));
            b.u16(16); // sample size
            b.u32(0);
            b.u32(48_000 << 16);
            b.open(b"dOps");
            b.u8(0); // version
            b.u8(*channels);
            b.u16(*pre_skip);
            b.u32(48_000);
            b.u16(0); // output gain
            b.u8(0); // channel mapping family
            b.close();
            b.close();
        }
    }
}

/// A visual sample entry's header, left open for its codec box.
fn visual_sample_entry(b: &mut Boxes, kind: &[u8; 4], width: u16, height: u16) {
    b.open(kind);
    b.zeros(6);
    b.u16(1); // data reference index
    b.zeros(16);
    b.u16(width);
    b.u16(height);
    b.u32(0x0048_0000); // 72 dpi
    b.u32(0x0048_0000);
    b.u32(0);
    b.u16(1); // frame count
    b.zeros(32); // compressor name
    b.u16(0x0018); // depth
    b.u16(0xffff); // pre-defined
}

/// One `moof` + `mdat`: `runs` describe the samples, `data` holds their bytes in the same
/// order (all of the first run's, then the next run's).
pub fn fragment(sequence: u32, runs: &[TrackRun], data: &[u8]) -> Vec<u8> {
    let mut b = Boxes::new();
    b.open(b"moof");
    b.open_full(b"mfhd", 0, 0);
    b.u32(sequence);
    b.close();
    let mut offsets = Vec::new();
    for run in runs {
        b.open(b"traf");
        b.open_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
        b.u32(run.track_id);
        b.close();
        b.open_full(b"tfdt", 1, 0);
        b.u64(run.base_decode_time);
        b.close();
        // data offset, sample duration, size and flags present.
        b.open_full(b"trun", 0, 0x0001 | 0x0100 | 0x0200 | 0x0400);
        b.u32(u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
        offsets.push(b.out.len());
        b.u32(0); // data offset, patched below
        for sample in &run.samples {
            b.u32(sample.duration);
            b.u32(sample.size);
            // A sync sample depends on nothing; the others are not sync samples.
            b.u32(if sample.keyframe { 0x0200_0000 } else { 0x0101_0000 });
        }
        b.close();
        b.close();
    }
    b.close(); // moof
    let moof_len = b.out.len();
    let mut position = moof_len + 8; // after the mdat header
    for (run, offset_at) in runs.iter().zip(offsets) {
        let offset = u32::try_from(position).unwrap_or(u32::MAX);
        if let Some(slot) = b.out.get_mut(offset_at..offset_at + 4) {
            slot.copy_from_slice(&offset.to_be_bytes());
        }
        position += run.samples.iter().map(|s| s.size as usize).sum::<usize>();
    }
    b.open(b"mdat");
    b.bytes(data);
    b.close();
    b.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::black_h264::{BlackH264, BlackParams};

    /// Opus's 20 ms silence frame (CELT, full band, mono).
    const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

    /// Black video of `width` x `height` and mono Opus, as the tests' two tracks.
    fn black_tracks(width: u16, height: u16) -> (BlackH264, [TrackConfig; 2]) {
        let black = BlackH264::new(BlackParams {
            width: u32::from(width),
            height: u32::from(height),
            profile_idc: 66,
            constraint_flags: 0xe0,
            level_idc: 30,
        })
        .unwrap();
        let tracks = [
            TrackConfig::H264 {
                width,
                height,
                sps: vec![black.sps().to_vec()],
                pps: vec![black.pps().to_vec()],
            },
            TrackConfig::Opus {
                channels: 1,
                pre_skip: 312,
            },
        ];
        (black, tracks)
    }

    /// Write `file`, have ffprobe count its frames (`entries` per stream) and ffmpeg decode it
    /// without a word; returns ffprobe's compact output.
    fn probe_and_decode(name: &str, file: &[u8], entries: &str) -> String {
        let path = std::env::temp_dir().join(format!("webcall-{name}-{}.mp4", std::process::id()));
        std::fs::write(&path, file).unwrap();
        let probe = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", entries])
            .args(["-count_frames", "-of", "compact"])
            .arg(&path)
            .output()
            .expect("ffprobe runs (scripts/install-test-deps.sh installs ffmpeg)");
        let text = String::from_utf8_lossy(&probe.stdout).into_owned();
        assert!(
            probe.status.success() && probe.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&probe.stderr)
        );
        let decode = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            decode.status.success() && decode.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&decode.stderr)
        );
        let _ = std::fs::remove_file(&path);
        text
    }

    fn avcc(nal: &[u8]) -> Vec<u8> {
        let mut out = (nal.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(nal);
        out
    }

    /// Two seconds of black video (30 fps) and Opus silence, in two fragments: ffmpeg reads
    /// both tracks with the right size and duration and decodes them without a word.
    #[test]
    fn a_fragmented_file_plays_in_ffmpeg() {
        let (black, tracks) = black_tracks(320, 240);
        let mut file = init_segment(&tracks);
        for second in 0..2u32 {
            let mut data = Vec::new();
            let mut video = Vec::new();
            for frame in 0..30u32 {
                let n = second * 30 + frame;
                let sample = if n == 0 {
                    avcc(black.idr())
                } else {
                    avcc(&black.repeat(n))
                };
                video.push(SampleInfo {
                    duration: 3000,
                    size: sample.len() as u32,
                    keyframe: n == 0,
                });
                data.extend(sample);
            }
            let audio: Vec<SampleInfo> = (0..50)
                .map(|_| SampleInfo {
                    duration: 960,
                    size: 3,
                    keyframe: true,
                })
                .collect();
            for _ in 0..50 {
                data.extend_from_slice(&OPUS_SILENCE);
            }
            let runs = [
                TrackRun {
                    track_id: 1,
                    base_decode_time: u64::from(second) * 90_000,
                    samples: video,
                },
                TrackRun {
                    track_id: 2,
                    base_decode_time: u64::from(second) * 48_000,
                    samples: audio,
                },
            ];
            file.extend(fragment(second + 1, &runs, &data));
        }
        let text = probe_and_decode(
            "fmp4",
            &file,
            "stream=codec_name,width,height,duration,nb_read_frames",
        );
        assert!(text.contains("codec_name=h264|width=320|height=240"), "{text}");
        assert!(text.contains("nb_read_frames=60"), "60 pictures: {text}");
        assert!(text.contains("codec_name=opus"), "{text}");
        assert!(text.contains("nb_read_frames=100"), "100 Opus frames: {text}");
        println!("{text}");
    }

    /// The same media as a progressive file with moov first: ffmpeg reads both tracks whole.
    #[test]
    fn a_progressive_faststart_file_plays_in_ffmpeg() {
        let (black, tracks) = black_tracks(176, 144);
        let mut chunks = Vec::new();
        let mut data = Vec::new();
        for second in 0..3u32 {
            let mut video = Vec::new();
            for frame in 0..30u32 {
                let n = second * 30 + frame;
                let sample = if n % 60 == 0 {
                    avcc(black.idr())
                } else {
                    avcc(&black.repeat(n % 60))
                };
                video.push(SampleInfo {
                    duration: 3000,
                    size: sample.len() as u32,
                    keyframe: n % 60 == 0,
                });
                data.extend(sample);
            }
            chunks.push(Chunk {
                track: 0,
                samples: video,
            });
            let audio = vec![
                SampleInfo {
                    duration: 960,
                    size: 3,
                    keyframe: true
                };
                50
            ];
            for _ in 0..50 {
                data.extend_from_slice(&OPUS_SILENCE);
            }
            chunks.push(Chunk {
                track: 1,
                samples: audio,
            });
        }
        let mut file = progressive_head(&tracks, &chunks);
        assert_eq!(file.get(4..8), Some(&b"ftyp"[..]));
        let moov_at = u32::from_be_bytes(file[0..4].try_into().unwrap()) as usize;
        assert_eq!(
            file.get(moov_at + 4..moov_at + 8),
            Some(&b"moov"[..]),
            "moov right after ftyp"
        );
        file.extend(data);
        let text = probe_and_decode("progressive", &file, "stream=codec_name,duration,nb_read_frames");
        assert!(
            text.contains("codec_name=h264|duration=3.000000|nb_read_frames=90"),
            "{text}"
        );
        assert!(
            text.contains("codec_name=opus|duration=3.000000|nb_read_frames=150"),
            "{text}"
        );
    }

    /// One second of black VP8 (10 fps) and Opus silence: `vp08` with its `vpcC` plays.
    #[test]
    fn a_vp8_file_plays_in_ffmpeg() {
        let black = crate::media::black_vp8::black_vp8_keyframe(320, 240).unwrap();
        let tracks = [
            TrackConfig::Vp8 {
                width: 320,
                height: 240,
            },
            TrackConfig::Opus {
                channels: 2,
                pre_skip: 0,
            },
        ];
        let mut file = init_segment(&tracks);
        let video = TrackRun {
            track_id: 1,
            base_decode_time: 0,
            samples: vec![
                SampleInfo {
                    duration: 9000,
                    size: black.len() as u32,
                    keyframe: true
                };
                10
            ],
        };
        let audio = TrackRun {
            track_id: 2,
            base_decode_time: 0,
            samples: vec![
                SampleInfo {
                    duration: 960,
                    size: 3,
                    keyframe: true
                };
                50
            ],
        };
        let mut data = black.repeat(10);
        data.extend(OPUS_SILENCE.repeat(50));
        file.extend(fragment(1, &[video, audio], &data));
        let probe = probe_and_decode("vp8", &file, "stream=codec_name,width,height,nb_read_frames");
        assert!(
            probe.contains("codec_name=vp8|width=320|height=240|nb_read_frames=10"),
            "{probe}"
        );
        assert!(probe.contains("codec_name=opus"), "{probe}");
    }
}
