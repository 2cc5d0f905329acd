//! The messages into a writer thread and out of it, and the bounded queue the workers' taps
//! put frames on.
//!
//! Taps (on workers) and the control thread send; one writer thread receives. Invariants: a
//! tap never blocks: a full queue (in messages or in bytes) drops the frame and fails only
//! that recording; the queue's bytes are counted when sent and given back when taken, so a
//! stalled disk holds at most [`WRITER_QUEUE_BYTES_MAX`] per writer.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use super::frame::{TapFrame, VideoCodec};
use super::meta::RecordingMeta;
use super::template::{NameTemplate, NameValues};
use crate::ids::RecordingId;

/// Messages one writer's queue holds: 20 s of 50 recordings' audio and video.
pub const WRITER_QUEUE_DEPTH: usize = 1 << 16;
/// Frame bytes one writer's queue holds before taps drop (a disk stalled for seconds).
pub const WRITER_QUEUE_BYTES_MAX: usize = 64 << 20;

/// Why a recording ended early. `Display` is the `info` the publisher gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordFailure {
    #[error("Recording failed: disk full")]
    DiskFull,
    #[error("Recording failed: less than {min_free_bytes} bytes free on the recording disk")]
    LowDisk { min_free_bytes: u64 },
    #[error("Recording failed: the disk cannot keep up")]
    QueueFull,
    #[error("Recording failed: write error")]
    Write,
    #[error("Recording failed: the record directory cannot be written")]
    Directory,
    #[error("Recording failed: recording is stopping")]
    ShuttingDown,
}

/// State a tap and the writer share for one recording.
#[derive(Debug, Default)]
pub struct RecordingShared {
    /// The writer gave up on the recording: the tap stops sending.
    pub failed: AtomicBool,
    /// The tap ended but its `Close` found the queue full: the writer closes it on its tick.
    pub closed: AtomicBool,
    /// A frame found the queue full: the tap stopped, the writer fails the recording.
    pub overflowed: AtomicBool,
    /// Pictures the tap could not assemble (a loss NACK did not repair) or dropped while it
    /// waited for the keyframe it asked for.
    pub frames_damaged: AtomicU64,
}

/// Everything a writer needs to start (or continue) a recording.
pub struct OpenRecording {
    pub id: RecordingId,
    /// The JSON as it starts (state `recording`, no tracks yet).
    pub meta: RecordingMeta,
    pub video: Option<VideoCodec>,
    /// Pad the head to the room's timeline.
    pub room_timeline: bool,
    /// A recording whose publisher reconnected: continue its file.
    pub resume_of: Option<RecordingId>,
    /// How long a closed recording waits for its publisher to come back.
    pub resume_window: Duration,
    /// For naming the file at the end.
    pub template: Arc<NameTemplate>,
    pub values: NameValues,
    pub shared: Arc<RecordingShared>,
}

pub enum WriterInput {
    Open(Box<OpenRecording>),
    Frame(RecordingId, TapFrame),
    /// The tap ended (publisher gone or recording stopped).
    Close(RecordingId),
    /// The recording was stopped on purpose: finish it without waiting for a reconnect.
    Finish(RecordingId),
    /// Finish every recording now and end the thread.
    Shutdown,
}

/// What a writer tells the control thread.
#[derive(Debug, Clone)]
pub enum RecorderEvent {
    Failed {
        id: RecordingId,
        failure: RecordFailure,
    },
    Finished {
        id: RecordingId,
        meta: Box<RecordingMeta>,
    },
}

/// A writer's input queue, as taps and the control thread hold it.
#[derive(Clone)]
pub struct WriterQueue {
    sender: Sender<WriterInput>,
    queued_bytes: Arc<AtomicUsize>,
}

/// The frame did not fit: the recording fails.
#[derive(Debug)]
pub struct QueueFull;

impl WriterQueue {
    pub fn new(sender: Sender<WriterInput>, queued_bytes: Arc<AtomicUsize>) -> Self {
        WriterQueue { sender, queued_bytes }
    }

    pub fn frame(&self, id: RecordingId, frame: TapFrame) -> Result<(), QueueFull> {
        let bytes = frame.bytes();
        if self.queued_bytes.load(Ordering::Relaxed) + bytes > WRITER_QUEUE_BYTES_MAX {
            return Err(QueueFull);
        }
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        match self.sender.try_send(WriterInput::Frame(id, frame)) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                Err(QueueFull)
            }
        }
    }

    /// `false` when the queue had no room (the writer then reads `shared.closed`).
    pub fn close(&self, id: RecordingId) -> bool {
        !matches!(
            self.sender.try_send(WriterInput::Close(id)),
            Err(TrySendError::Full(_))
        )
    }

    /// A control message (an open); `false` when the queue is full or the writer gone.
    pub fn control(&self, input: WriterInput) -> bool {
        self.sender.try_send(input).is_ok()
    }

    /// Ask the writer to finish everything, waiting for room (at shutdown only).
    pub fn shutdown(&self) {
        let _ = self.sender.send(WriterInput::Shutdown);
    }

    /// Give back the bytes of a frame taken off the queue (the writer calls this).
    pub fn taken(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}
