//! The hub: the directory plus the means to carry out its effects — each session's outbox and
//! each worker's command queue. Shared by the control thread's tasks behind a mutex that is
//! never held across an `.await` (the runtime is single-threaded, so it is never contended).
//!
//! Invariants: after every call into the directory, all queued effects are applied before the
//! lock is released; a session whose outbox is full is cut off (its task sees the closed
//! channel and closes the socket) rather than allowed to grow memory without bound; a removal
//! that finds its worker's queue full is kept and sent again (on the next call and on the
//! control thread's retry tick) until the worker takes it, so no peer outlives its stream on a
//! worker; an add that does not fit fails its stream at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::mpsc;

use super::directory::{Directory, Effect, RecordStart};
use super::signaling::protocol::ServerMessage;
use crate::ids::Login;
use crate::ids::{SessionId, WorkerId};
use crate::record::queue::WriterInput;
use crate::record::{RecordFailure, RecorderClient, RecorderEvent};
use crate::worker::commands::{
    Command, EndpointAdd, EndpointSpec, Notification, PeerFailure, PeerRole, WorkerHandle,
};
use crate::worker::endpoint::RecorderSpec;

/// Frames queued for one session's socket. A room of 16 produces a few dozen events per join;
/// a client that lets thousands pile up is not reading and is disconnected.
pub const SESSION_OUTBOX_MESSAGES_MAX: usize = 4096;

pub type SharedHub = Arc<Mutex<Hub>>;

/// Where a session's frames go: a WebSocket's task (as JSON text) or an RTMP connection's
/// task (as messages it interprets).
enum Outbox {
    WebSocket(mpsc::Sender<String>),
    Bridge(mpsc::Sender<ServerMessage>),
}

pub struct Hub {
    directory: Directory,
    outboxes: HashMap<SessionId, Outbox>,
    workers: Vec<WorkerHandle>,
    /// Removals their worker's queue had no room for, oldest first.
    pending_removes: Vec<(WorkerId, Command)>,
    next_session: u64,
    recorder: Option<RecorderClient>,
}

impl Hub {
    pub fn new(directory: Directory, workers: Vec<WorkerHandle>) -> Self {
        Hub {
            directory,
            outboxes: HashMap::new(),
            workers,
            pending_removes: Vec::new(),
            next_session: 1,
            recorder: None,
        }
    }

    pub fn shared(self) -> SharedHub {
        Arc::new(Mutex::new(self))
    }

    pub fn open_session(&mut self, outbox: mpsc::Sender<String>) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        self.outboxes.insert(id, Outbox::WebSocket(outbox));
        self.directory.open_session(id);
        id
    }

    /// An RTMP connection's session, established with `login`.
    pub fn open_bridge_session(&mut self, login: Login, outbox: mpsc::Sender<ServerMessage>) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        self.outboxes.insert(id, Outbox::Bridge(outbox));
        self.directory.open_bridge_session(id, login);
        id
    }

    pub fn frame(&mut self, id: SessionId, text: &str, now: Instant) {
        self.directory.handle_frame(id, text, now);
        self.apply();
    }

    pub fn close_session(&mut self, id: SessionId) {
        self.outboxes.remove(&id);
        self.directory.close_session(id);
        self.apply();
    }

    pub fn notification(&mut self, notification: Notification) {
        self.directory.handle_notification(notification);
        self.apply();
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn workers(&self) -> &[WorkerHandle] {
        &self.workers
    }

    /// Send again the removals a full queue refused; the control thread calls this on a tick.
    pub fn retry_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending_removes);
        for (worker, command) in pending {
            self.send_to_worker(worker, command);
        }
    }

    /// Removals still waiting for room in a worker's queue.
    pub fn pending_removes(&self) -> usize {
        self.pending_removes.len()
    }

    fn apply(&mut self) {
        self.retry_pending();
        loop {
            let effects = self.directory.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                match effect {
                    Effect::Send(id, message) => self.deliver(id, message),
                    Effect::Disconnect(id) => {
                        self.outboxes.remove(&id);
                    }
                    Effect::Worker(worker, command) => self.send_to_worker(worker, command),
                    Effect::RecordStart(start) => self.start_recording(*start),
                    Effect::RecordFinish(id, writer_key) => {
                        if let Some(writer) = self.recorder.as_ref().and_then(|r| r.writer_for(&writer_key)) {
                            // A full queue leaves it to the resume window: later, not lost.
                            let _ = writer.control(WriterInput::Finish(id));
                        }
                    }
                }
            }
        }
    }

    /// Open the recording on its writer, then add its tap to the publisher's worker (after
    /// the publisher, whose add was queued first). A refusal reaches the publisher.
    fn start_recording(&mut self, start: RecordStart) {
        let RecordStart {
            worker,
            publisher,
            tap,
            tracks,
            writer_key,
            video,
            audio,
            open,
        } = start;
        let (id, shared) = (open.id, open.shared.clone());
        let Some(recorder) = &self.recorder else {
            self.directory.recording_failed(id, &RecordFailure::Directory);
            return;
        };
        let queue = match recorder.open(&writer_key, open) {
            Ok(queue) => queue,
            Err(failure) => {
                self.directory.recording_failed(id, &failure);
                return;
            }
        };
        let spec = RecorderSpec {
            recording: id,
            queue,
            shared,
            video,
            audio,
        };
        let add = EndpointAdd {
            peer: tap,
            role: PeerRole::Player { publisher },
            tracks,
            spec: EndpointSpec::Recorder(Box::new(spec)),
        };
        self.send_to_worker(worker, Command::EndpointAdd(Box::new(add)));
    }

    /// A writer's report: a failure reaches the publisher; a finished file is logged there.
    pub fn recorder_event(&mut self, event: RecorderEvent) {
        match event {
            RecorderEvent::Failed { id, failure } => self.directory.recording_failed(id, &failure),
            RecorderEvent::Finished { id, meta } => {
                tracing::debug!(recording = %id, file = %meta.file, "recording finished");
            }
        }
        self.apply();
    }

    pub fn set_recorder(&mut self, recorder: RecorderClient) {
        self.recorder = Some(recorder);
    }

    pub fn recorder(&self) -> Option<&RecorderClient> {
        self.recorder.as_ref()
    }

    /// The directory, for calls that change it (REST); effects are applied after `f`.
    pub fn with_directory<R>(&mut self, f: impl FnOnce(&mut Directory) -> R) -> R {
        let result = f(&mut self.directory);
        self.apply();
        result
    }

    fn send_to_worker(&mut self, worker: WorkerId, command: Command) {
        let Some(handle) = self.workers.get(worker.0) else {
            return;
        };
        let Err(command) = handle.send(command) else {
            return;
        };
        match command {
            Command::EndpointAdd(add) if matches!(add.spec, EndpointSpec::Recorder(_)) => {
                tracing::warn!(%worker, peer = %add.peer, "worker command queue full; the recording does not start");
                if let EndpointSpec::Recorder(spec) = add.spec {
                    self.directory
                        .recording_failed(spec.recording, &RecordFailure::QueueFull);
                }
            }
            Command::EndpointAdd(add) => {
                tracing::error!(%worker, peer = %add.peer, "worker command queue full; failing the stream");
                let failure = PeerFailure::Internal;
                self.directory.handle_notification(Notification::PeerFailed {
                    peer: add.peer,
                    failure,
                });
            }
            remove @ Command::PeerRemove { .. } => {
                tracing::warn!(%worker, "worker command queue full; the removal will be sent again");
                self.pending_removes.push((worker, remove));
            }
            // Media: the bridge's next keyframe repairs a dropped batch (counted by `send`).
            Command::IngestRtp { .. } | Command::Shutdown => {}
        }
    }

    fn deliver(&mut self, id: SessionId, message: ServerMessage) {
        let Some(outbox) = self.outboxes.get(&id) else {
            return;
        };
        let sent = match outbox {
            Outbox::WebSocket(outbox) => outbox.try_send(message.to_json()).is_ok(),
            Outbox::Bridge(outbox) => outbox.try_send(message).is_ok(),
        };
        if !sent {
            tracing::warn!(session = %id, "session is not reading its frames; disconnecting it");
            self.outboxes.remove(&id);
        }
    }
}

/// Lock the hub; a panic while it was held (a bug) must not take every other session down.
pub fn lock(hub: &SharedHub) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
