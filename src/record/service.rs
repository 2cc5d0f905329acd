//! The recorder as the rest of the server sees it: the writer threads (started once, kept
//! off the workers' cores), which writer a recording goes to, finishing what a crash left
//! unfinished at start-up, and the stop that finishes every file.
//!
//! Built by `main` before the control thread starts; used by the control thread. Invariants:
//! all recordings of one room go to the same writer (the room's timeline lives there); the
//! recovery runs before any writer exists, so it never races a live recording.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver};
use tokio::sync::Notify;

use super::files;
use super::finalize::finalize;
use super::meta::{self, RecordingState};
use super::queue::{
    OpenRecording, RecordFailure, RecorderEvent, WriterInput, WriterQueue, WRITER_QUEUE_DEPTH,
};
use super::writer::{self, WriterSetup};

/// Writer threads: file I/O is mostly waiting for the disk, and `fdatasync`s of different
/// files overlap on two.
pub const RECORD_WRITER_THREADS: usize = 2;
/// Environment variable that makes writes fail as a full disk would after so many bytes
/// (the fault tests' hook; never set in production).
pub const FAULT_ENV: &str = "WEBCALL_RECORD_FAIL_AFTER_BYTES";

#[derive(Debug, thiserror::Error)]
pub enum RecorderStartError {
    #[error("cannot create the record directory {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
    #[error("cannot start a recorder writer thread: {0}")]
    Thread(std::io::Error),
}

pub struct RecorderSettings {
    pub dir: PathBuf,
    pub min_free_bytes: u64,
    /// Compose a room's files when its last recording ends.
    pub room_composite: bool,
    /// Cores the media workers are pinned to; writers keep off them where others exist.
    pub worker_cores: Vec<usize>,
}

pub struct RecorderService {
    client: RecorderClient,
    threads: Vec<JoinHandle<()>>,
}

/// What the control thread holds of the recorder: the writers' queues and the directory.
#[derive(Clone)]
pub struct RecorderClient {
    dir: PathBuf,
    writers: Vec<WriterQueue>,
}

impl RecorderService {
    /// Finish files a crash left, then start the writers. Events for control arrive on the
    /// returned receiver, each followed by a ring of `control_wakeup`.
    pub fn start(
        settings: RecorderSettings,
        control_wakeup: Arc<Notify>,
    ) -> Result<(RecorderService, Receiver<RecorderEvent>), RecorderStartError> {
        let dir = settings.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| RecorderStartError::Directory {
            path: dir.clone(),
            source,
        })?;
        recover(&dir);
        let fault_after_bytes = std::env::var(FAULT_ENV).ok().and_then(|v| v.parse().ok());
        let (events, events_rx) = unbounded();
        let mut writers = Vec::new();
        let mut threads = Vec::new();
        let spare_cores = spare_cores(&settings.worker_cores);
        for index in 0..RECORD_WRITER_THREADS {
            let (tx, rx) = bounded(WRITER_QUEUE_DEPTH);
            let queue = WriterQueue::new(tx, Arc::new(AtomicUsize::new(0)));
            let setup = WriterSetup {
                dir: dir.clone(),
                min_free_bytes: settings.min_free_bytes,
                events: events.clone(),
                control_wakeup: control_wakeup.clone(),
                fault_after_bytes,
                room_composite: settings.room_composite,
            };
            let thread_queue = queue.clone();
            let cores = spare_cores.clone();
            let thread = std::thread::Builder::new()
                .name(format!("webcall-record-{index}"))
                .spawn(move || {
                    keep_off_worker_cores(&cores);
                    writer::run(setup, rx, thread_queue);
                })
                .map_err(RecorderStartError::Thread)?;
            writers.push(queue);
            threads.push(thread);
        }
        Ok((
            RecorderService {
                client: RecorderClient { dir, writers },
                threads,
            },
            events_rx,
        ))
    }

    pub fn client(&self) -> RecorderClient {
        self.client.clone()
    }

    /// Finish every recording and wait for the writers.
    pub fn shutdown(self) {
        for writer in &self.client.writers {
            writer.shutdown();
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

impl RecorderClient {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The writer for a room (or a plain stream's name).
    pub fn writer_for(&self, key: &str) -> Option<&WriterQueue> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % self.writers.len().max(1) as u64).unwrap_or(0);
        self.writers.get(index)
    }

    /// Hand a recording to its writer; the queue its tap will use comes back.
    pub fn open(&self, key: &str, open: OpenRecording) -> Result<WriterQueue, RecordFailure> {
        let writer = self.writer_for(key).ok_or(RecordFailure::Directory)?;
        if writer.control(WriterInput::Open(Box::new(open))) {
            Ok(writer.clone())
        } else {
            Err(RecordFailure::QueueFull)
        }
    }
}

/// Finish every recording a crash left in state `recording`: its complete fragments become
/// a faststart file; one with no media is removed.
pub fn recover(dir: &Path) {
    let mut manifests = Vec::new();
    for mut meta in meta::list(dir) {
        if meta.state != RecordingState::Recording {
            continue;
        }
        let path = dir.join(&meta.file);
        let json = meta.path_in(dir);
        if meta.tracks.is_empty() || !path.is_file() {
            tracing::info!(file = %meta.file, "unfinished recording without media removed");
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&json);
            continue;
        }
        match finalize(&path, &meta.tracks, &path) {
            Ok(finished) => {
                meta.duration_ms = finished.duration_ms;
                meta.size_bytes = finished.size_bytes;
                meta.state = RecordingState::Finished;
                meta.error = Some("finished after the server stopped uncleanly".to_owned());
                tracing::info!(file = %meta.file, duration_ms = meta.duration_ms, "unfinished recording finished");
            }
            Err(error) => {
                tracing::warn!(file = %meta.file, %error, "unfinished recording could not be finished");
                meta.state = RecordingState::Failed;
                meta.error = Some(format!("could not be finished: {error}"));
            }
        }
        if let Err(error) = meta::write_meta(dir, &meta) {
            tracing::warn!(file = %meta.file, %error, "cannot write a recording's JSON");
        }
        if let (Some(room), Some(start)) = (meta.room.clone(), meta.timeline_start_ms) {
            manifests.push((room, start));
        }
    }
    manifests.sort();
    manifests.dedup();
    for (room, start) in manifests {
        files::write_room_manifest(dir, &room, start);
    }
}

fn spare_cores(worker_cores: &[usize]) -> Vec<usize> {
    let all: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    all.into_iter().filter(|c| !worker_cores.contains(c)).collect()
}

/// Run on the cores no worker is pinned to; with none left, at a lower priority, so the
/// scheduler gives a worker's core to its worker first.
fn keep_off_worker_cores(cores: &[usize]) {
    if cores.is_empty() {
        // SAFETY: setpriority on the calling thread (tid 0 = this thread on Linux) with a
        // plain integer; no memory is passed.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        }
        return;
    }
    // SAFETY: `set` is a zeroed cpu_set_t that CPU_SET fills with ids below its size; the
    // call reads it for this thread (pid 0) and keeps nothing.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for core in cores {
            if *core < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(*core, &mut set);
            }
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::debug!("recorder writer could not set its cores");
        }
    }
}
