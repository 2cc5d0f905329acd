//! A recorder writer thread: every recording it was given, its muxer, its file and journal,
//! the room timelines of its rooms, and the disk checks.
//!
//! Runs on its own thread (never a worker's core, see `service.rs`); the only code that
//! writes recordings. Invariants: each fragment is written and `fdatasync`ed before the next
//! frame is taken; a recording that cannot be written fails alone (its tap is told to stop,
//! control is told why) and what it wrote is still finished; a closed recording waits
//! [`OpenRecording::resume_window`] for its publisher before it is finished; every room's
//! recordings go to one writer, so the room's timeline is plain state here.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tokio::sync::Notify;

use super::files::{
    compose_room, create_unique, free_bytes, unique_name, write_failure, write_room_manifest, write_synced,
};
use super::finalize::finalize;
use super::frame::{FramePayload, TapFrame};
use super::meta::{self, Interval, RecordingMeta, RecordingState, Resolution, EVENTS_PER_RECORDING_MAX};
use super::muxer::{MuxEvent, Muxer};
use super::queue::{OpenRecording, RecordFailure, RecorderEvent, RecordingShared, WriterInput, WriterQueue};
use super::template::{NameTemplate, NameValues};
use super::transcode::G711ToOpus;
use crate::ids::RecordingId;

/// How often the writer looks at the disk's free space, heads waiting for a keyframe, and
/// recordings waiting for their publisher.
const TICK_INTERVAL: Duration = Duration::from_millis(100);
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// A closed recording waits this much longer than control does before it is finished, so a
/// reconnect control accepted always finds its file still open.
const RESUME_MARGIN: Duration = Duration::from_secs(2);

pub struct WriterSetup {
    pub dir: PathBuf,
    pub min_free_bytes: u64,
    pub events: Sender<RecorderEvent>,
    pub control_wakeup: Arc<Notify>,
    /// Tests: every write past this many bytes fails as a full disk would.
    pub fault_after_bytes: Option<u64>,
    /// Compose a room's files into one MP4 when its last recording ends.
    pub room_composite: bool,
}

struct Recording {
    /// Ids that wrote to this file, the current one last.
    ids: Vec<RecordingId>,
    meta: RecordingMeta,
    muxer: Muxer,
    file: File,
    path: PathBuf,
    room_timeline: bool,
    /// File time zero when the room's timeline does not pad this file.
    own_origin: Option<Instant>,
    closing_since: Option<Instant>,
    resume_window: Duration,
    template: Arc<NameTemplate>,
    values: NameValues,
    shared: Arc<RecordingShared>,
    /// G.711 audio becomes Opus here.
    transcoder: Option<G711ToOpus>,
    /// Scratch for the transcoder's output.
    transcoded: Vec<TapFrame>,
}

/// A room's recordings on this writer share its timeline.
#[derive(Default)]
struct RoomTimeline {
    origin: Option<Instant>,
    recordings: usize,
}

struct Writer {
    setup: WriterSetup,
    queue: WriterQueue,
    recordings: HashMap<u64, Recording>,
    by_id: HashMap<RecordingId, u64>,
    next_key: u64,
    rooms: HashMap<String, RoomTimeline>,
    anchor: (Instant, SystemTime),
    written: u64,
    last_disk_check: Instant,
}

/// The writer thread's body: until `Shutdown` (or every sender gone), then finish all.
pub fn run(setup: WriterSetup, input: Receiver<WriterInput>, queue: WriterQueue) {
    let now = Instant::now();
    let mut writer = Writer {
        setup,
        queue,
        recordings: HashMap::new(),
        by_id: HashMap::new(),
        next_key: 1,
        rooms: HashMap::new(),
        anchor: (now, SystemTime::now()),
        written: 0,
        last_disk_check: now,
    };
    let mut next_tick = now + TICK_INTERVAL;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match input.recv_timeout(wait) {
            Ok(WriterInput::Open(open)) => writer.open(*open),
            Ok(WriterInput::Frame(id, frame)) => {
                writer.queue.taken(frame.bytes());
                writer.frame(id, frame);
            }
            Ok(WriterInput::Close(id)) => writer.close(id, Instant::now()),
            Ok(WriterInput::Finish(id)) => writer.finish_soon(id, Instant::now()),
            Ok(WriterInput::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if now >= next_tick {
            writer.tick(now);
            next_tick = now + TICK_INTERVAL;
        }
    }
    let keys: Vec<u64> = writer.recordings.keys().copied().collect();
    for key in keys {
        writer.finish(key, None);
    }
}

impl Writer {
    fn event(&self, event: RecorderEvent) {
        let _ = self.setup.events.send(event);
        self.setup.control_wakeup.notify_one();
    }

    fn refuse(&self, open: &OpenRecording, failure: RecordFailure) {
        tracing::warn!(recording = %open.id, file = %open.meta.file, %failure, "recording not started");
        open.shared.failed.store(true, Ordering::Relaxed);
        self.event(RecorderEvent::Failed { id: open.id, failure });
    }

    fn open(&mut self, open: OpenRecording) {
        if let Some(key) = open.resume_of.and_then(|old| self.by_id.get(&old).copied()) {
            if let Some(recording) = self.recordings.get_mut(&key) {
                tracing::info!(recording = %open.id, file = %recording.meta.file, "publisher back: the recording continues");
                recording.ids.push(open.id);
                recording.closing_since = None;
                recording.shared = open.shared;
                recording.muxer.resume();
                self.by_id.insert(open.id, key);
                return;
            }
        }
        if free_bytes(&self.setup.dir).is_some_and(|free| free < self.setup.min_free_bytes) {
            let min_free_bytes = self.setup.min_free_bytes;
            return self.refuse(&open, RecordFailure::LowDisk { min_free_bytes });
        }
        let OpenRecording {
            id,
            mut meta,
            video,
            room_timeline,
            resume_window,
            template,
            values,
            shared,
            ..
        } = open;
        let created = create_unique(&self.setup.dir, &meta.file);
        let (file, name) = match created {
            Ok(created) => created,
            Err(error) => {
                tracing::warn!(%error, dir = %self.setup.dir.display(), "cannot create a recording file");
                shared.failed.store(true, Ordering::Relaxed);
                return self.event(RecorderEvent::Failed {
                    id,
                    failure: RecordFailure::Directory,
                });
            }
        };
        meta.file = name;
        if let Err(error) = meta::write_meta(&self.setup.dir, &meta) {
            tracing::warn!(%error, "cannot write a recording's journal");
            let _ = std::fs::remove_file(self.setup.dir.join(&meta.file));
            shared.failed.store(true, Ordering::Relaxed);
            return self.event(RecorderEvent::Failed {
                id,
                failure: RecordFailure::Directory,
            });
        }
        if let Some(room) = &meta.room {
            self.rooms.entry(room.clone()).or_default().recordings += 1;
        }
        tracing::info!(recording = %id, file = %meta.file, "recording started");
        let key = self.next_key;
        self.next_key += 1;
        self.by_id.insert(id, key);
        let path = self.setup.dir.join(&meta.file);
        self.recordings.insert(
            key,
            Recording {
                ids: vec![id],
                meta,
                muxer: Muxer::new(video),
                file,
                path,
                room_timeline,
                own_origin: None,
                closing_since: None,
                resume_window,
                template,
                values,
                shared,
                transcoder: None,
                transcoded: Vec::new(),
            },
        );
    }

    fn frame(&mut self, id: RecordingId, frame: TapFrame) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        let Some(recording) = self.recordings.get_mut(&key) else {
            return;
        };
        if recording.ids.last() != Some(&id) {
            return; // a reconnected publisher's old tap, still draining
        }
        if matches!(frame.payload, FramePayload::G711 { .. }) {
            let transcoder = recording.transcoder.get_or_insert_with(G711ToOpus::default);
            let mut frames = std::mem::take(&mut recording.transcoded);
            transcoder.push(frame, &mut frames);
            let (muxer, origin) = muxer_and_origin(&mut self.rooms, recording);
            for frame in frames.drain(..) {
                muxer.push(frame, origin);
            }
            recording.transcoded = frames;
        } else {
            let (muxer, origin) = muxer_and_origin(&mut self.rooms, recording);
            muxer.push(frame, origin);
        }
        self.drain(key);
    }

    fn close(&mut self, id: RecordingId, now: Instant) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        let Some(recording) = self.recordings.get_mut(&key) else {
            return;
        };
        if recording.ids.last() == Some(&id) && recording.closing_since.is_none() {
            recording.closing_since = Some(now);
            if recording.resume_window.is_zero() {
                self.finish(key, None);
            }
        }
    }

    /// Finish on the next tick, after the frames already queued (no resume window).
    fn finish_soon(&mut self, id: RecordingId, now: Instant) {
        let Some(recording) = self.by_id.get(&id).and_then(|key| self.recordings.get_mut(key)) else {
            return;
        };
        if recording.ids.last() == Some(&id) {
            recording.resume_window = Duration::ZERO;
            recording.closing_since.get_or_insert(now);
        }
    }

    fn tick(&mut self, now: Instant) {
        let overflowed: Vec<u64> = self
            .recordings
            .iter()
            .filter(|(_, r)| {
                r.shared.overflowed.load(Ordering::Relaxed) && !r.shared.failed.load(Ordering::Relaxed)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in overflowed {
            self.fail(key, RecordFailure::QueueFull);
        }
        let mut due = Vec::new();
        for (key, recording) in &mut self.recordings {
            if recording.closing_since.is_none() && recording.shared.closed.load(Ordering::Relaxed) {
                recording.closing_since = Some(now);
            }
            match recording.closing_since {
                Some(since)
                    if now.saturating_duration_since(since) >= recording.resume_window + RESUME_MARGIN =>
                {
                    due.push(*key)
                }
                Some(since) if recording.resume_window.is_zero() && since <= now => due.push(*key),
                _ => {
                    let (muxer, origin) = muxer_and_origin(&mut self.rooms, recording);
                    muxer.tick(now, origin);
                }
            }
        }
        let mut keys: Vec<u64> = self.recordings.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.drain(key);
        }
        for key in due {
            self.finish(key, None);
        }
        if now.saturating_duration_since(self.last_disk_check) >= DISK_CHECK_INTERVAL {
            self.last_disk_check = now;
            if free_bytes(&self.setup.dir).is_some_and(|free| free < self.setup.min_free_bytes) {
                let running: Vec<u64> = self.recordings.keys().copied().collect();
                for key in running {
                    tracing::warn!(dir = %self.setup.dir.display(), "recording disk below its free-space minimum");
                    self.fail(key, RecordFailure::DiskFull);
                }
            }
        }
    }

    /// Write what the muxer produced; a write error fails the recording.
    fn drain(&mut self, key: u64) {
        let failure = self.write_events(key);
        if let Err(failure) = failure {
            self.fail(key, failure);
        }
    }

    fn write_events(&mut self, key: u64) -> Result<(), RecordFailure> {
        let fault_after = self.setup.fault_after_bytes;
        let dir = self.setup.dir.clone();
        let anchor = self.anchor;
        let Some(recording) = self.recordings.get_mut(&key) else {
            return Ok(());
        };
        while let Some(event) = recording.muxer.poll() {
            match event {
                MuxEvent::Init { tracks, bytes } => {
                    write_synced(&mut recording.file, &bytes, &mut self.written, fault_after)?;
                    recording.meta.size_bytes += bytes.len() as u64;
                    recording.meta.tracks = tracks;
                    let origin = recording.muxer.origin();
                    let room_origin = recording
                        .meta
                        .room
                        .as_ref()
                        .and_then(|r| self.rooms.get_mut(r))
                        .map(|room| *room.origin.get_or_insert(origin.unwrap_or_else(Instant::now)));
                    let epoch = |at: Instant| epoch_ms(anchor, at);
                    if let Some(origin) = origin {
                        recording.meta.start_time_ms = epoch(origin);
                        if let Some(room_origin) = room_origin {
                            recording.meta.timeline_start_ms = Some(epoch(room_origin));
                            recording.meta.offset_ms =
                                u64::try_from(origin.saturating_duration_since(room_origin).as_millis())
                                    .unwrap_or(0);
                        }
                    }
                    meta::write_meta(&dir, &recording.meta).map_err(|e| write_failure(&e))?;
                }
                MuxEvent::Fragment { bytes } => {
                    write_synced(&mut recording.file, &bytes, &mut self.written, fault_after)?;
                    recording.meta.size_bytes += bytes.len() as u64;
                    recording.meta.duration_ms = recording.muxer.duration_ms();
                }
                MuxEvent::Resolution { at_ms, width, height } => {
                    if recording.meta.resolutions.len() < EVENTS_PER_RECORDING_MAX {
                        recording
                            .meta
                            .resolutions
                            .push(Resolution { at_ms, width, height });
                    }
                }
                MuxEvent::Silence { from_ms, to_ms } => {
                    if recording.meta.silences.len() < EVENTS_PER_RECORDING_MAX {
                        recording.meta.silences.push(Interval { from_ms, to_ms });
                    }
                }
            }
        }
        Ok(())
    }

    /// The recording cannot go on: tell its tap and control, and finish what it wrote.
    fn fail(&mut self, key: u64, failure: RecordFailure) {
        let Some(recording) = self.recordings.get(&key) else {
            return;
        };
        recording.shared.failed.store(true, Ordering::Relaxed);
        if let Some(id) = recording.ids.last() {
            tracing::warn!(recording = %id, file = %recording.meta.file, %failure, "recording failed");
            self.event(RecorderEvent::Failed {
                id: *id,
                failure: failure.clone(),
            });
        }
        self.finish(key, Some(failure));
    }

    /// End the recording: the last fragment, then the faststart file (named now if the
    /// template waits for the end), its JSON and the room's manifest.
    fn finish(&mut self, key: u64, failure: Option<RecordFailure>) {
        let mut failure = failure;
        if failure.is_none() {
            if let Some(recording) = self.recordings.get_mut(&key) {
                let (muxer, origin) = muxer_and_origin(&mut self.rooms, recording);
                muxer.finish(origin);
            }
            if let Err(written) = self.write_events(key) {
                failure = Some(written);
            }
        }
        let Some(recording) = self.recordings.remove(&key) else {
            return;
        };
        for id in &recording.ids {
            self.by_id.remove(id);
        }
        let mut room_done = false;
        if let Some(room) = recording.meta.room.clone() {
            if let Some(timeline) = self.rooms.get_mut(&room) {
                timeline.recordings = timeline.recordings.saturating_sub(1);
                if timeline.recordings == 0 {
                    self.rooms.remove(&room);
                    room_done = true;
                }
            }
        }
        let dir = self.setup.dir.clone();
        let old_meta = recording.meta.path_in(&dir);
        if recording.meta.tracks.is_empty() {
            tracing::info!(file = %recording.meta.file, "recording ended before any media; no file kept");
            let _ = std::fs::remove_file(&recording.path);
            let _ = std::fs::remove_file(&old_meta);
            return;
        }
        let _ = recording.file.sync_data();
        let mut meta = recording.meta.clone();
        meta.duration_ms = recording.muxer.duration_ms();
        let final_name = if meta.named_at_end && failure.is_none() {
            let mut values = recording.values.clone();
            values.start_time_ms = meta.start_time_ms;
            values.end_time_ms = Some(meta.start_time_ms + meta.duration_ms);
            values.duration_ms = Some(meta.duration_ms);
            let wanted = format!("{}.mp4", recording.template.render(&values));
            unique_name(&dir, &wanted, &meta.file)
        } else {
            meta.file.clone()
        };
        let destination = dir.join(&final_name);
        match finalize(&recording.path, &meta.tracks, &destination) {
            Ok(finished) => {
                meta.duration_ms = finished.duration_ms;
                meta.size_bytes = finished.size_bytes;
                if destination != recording.path {
                    let _ = std::fs::remove_file(&recording.path);
                }
                meta.file = final_name;
            }
            Err(error) => {
                tracing::warn!(file = %meta.file, %error, "recording could not be finished; the fragmented file stays");
                failure.get_or_insert(RecordFailure::Write);
            }
        }
        meta.state = if failure.is_some() {
            RecordingState::Failed
        } else {
            RecordingState::Finished
        };
        meta.error = failure.map(|f| f.to_string());
        if let Err(error) = meta::write_meta(&dir, &meta) {
            tracing::warn!(file = %meta.file, %error, "cannot write a recording's JSON");
        }
        if meta.path_in(&dir) != old_meta {
            let _ = std::fs::remove_file(&old_meta);
        }
        if let (Some(room), Some(start)) = (&meta.room, meta.timeline_start_ms) {
            write_room_manifest(&dir, room, start);
            if room_done && self.setup.room_composite {
                compose_room(&dir, room, start);
            }
        }
        tracing::info!(
            file = %meta.file,
            duration_ms = meta.duration_ms,
            size = meta.size_bytes,
            frames_dropped = recording.muxer.stats.frames_dropped,
            frames_damaged = recording.shared.frames_damaged.load(Ordering::Relaxed),
            "recording finished"
        );
        if let Some(id) = recording.ids.last() {
            self.event(RecorderEvent::Finished {
                id: *id,
                meta: Box::new(meta),
            });
        }
    }
}

/// The origin the recording's muxer places its file against: the room's when the room's
/// timeline pads this file, else its own.
fn muxer_and_origin<'a>(
    rooms: &'a mut HashMap<String, RoomTimeline>,
    recording: &'a mut Recording,
) -> (&'a mut Muxer, &'a mut Option<Instant>) {
    let Recording {
        muxer,
        own_origin,
        meta,
        room_timeline,
        ..
    } = recording;
    let origin = match (&meta.room, *room_timeline) {
        (Some(room), true) => &mut rooms.entry(room.clone()).or_default().origin,
        _ => own_origin,
    };
    (muxer, origin)
}

fn epoch_ms(anchor: (Instant, SystemTime), at: Instant) -> u64 {
    let (instant, system) = anchor;
    let wall = if at >= instant {
        system + (at - instant)
    } else {
        system - (instant - at)
    };
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
}
