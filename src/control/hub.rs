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

use super::admission::Admission;
use super::directory::{Directory, Effect, RecordStart};
use super::output::SessionOutput;
use super::signaling::protocol::{ClientMessage, ConnectionRequest, ParseFailure, ServerMessage};
use super::webhooks::{WebhookEvent, Webhooks};
use crate::auth::{AuthMode, AuthRefusal, DenyList, Grants};
use crate::ids::{Login, RoomName};
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

/// Where a session's frames go: a WebSocket's task (as JSON text, within its byte budget) or an
/// RTMP connection's task (as messages it interprets).
enum Outbox {
    WebSocket(mpsc::Sender<String>, Arc<SessionOutput>),
    Bridge(mpsc::Sender<ServerMessage>),
}

/// How sessions are admitted: the token rule and the revoked token ids.
pub struct Access {
    pub auth: AuthMode,
    pub deny: DenyList,
}

pub struct Hub {
    directory: Directory,
    outboxes: HashMap<SessionId, Outbox>,
    workers: Vec<WorkerHandle>,
    /// Removals their worker's queue had no room for, oldest first.
    pending_removes: Vec<(WorkerId, Command)>,
    next_session: u64,
    recorder: Option<RecorderClient>,
    access: Access,
    admission: Option<Arc<Admission>>,
    /// Sessions closed since start (the memory trim looks for change).
    sessions_closed: u64,
    /// Recordings opened on a writer and not yet reported finished or failed (a drain waits
    /// for them).
    open_recordings: std::collections::BTreeSet<crate::ids::RecordingId>,
    /// Recordings that failed (to open, or on their writer) since start.
    recordings_failed: u64,
    /// How long joins took, from their frame's arrival (the hook's answer included).
    join_latency: super::metrics::LatencyHistogram,
    /// The operator's webhooks, when `--webhook-url` is set.
    webhooks: Option<Webhooks>,
}

impl Hub {
    pub fn new(directory: Directory, workers: Vec<WorkerHandle>, access: Access) -> Self {
        Hub {
            access,
            admission: None,
            sessions_closed: 0,
            open_recordings: Default::default(),
            recordings_failed: 0,
            join_latency: Default::default(),
            webhooks: None,
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

    pub fn open_session(&mut self, outbox: mpsc::Sender<String>, output: Arc<SessionOutput>) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        self.outboxes.insert(id, Outbox::WebSocket(outbox, output));
        self.directory.open_session(id);
        id
    }

    /// An RTMP connection's session, established with what its token (or `--auth none`) grants.
    pub fn open_bridge_session(&mut self, grants: Grants, outbox: mpsc::Sender<ServerMessage>) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        self.outboxes.insert(id, Outbox::Bridge(outbox));
        self.directory.open_bridge_session(id, grants);
        id
    }

    /// A WHIP or WHEP resource's session (see `Directory::open_whip_session`).
    pub fn open_whip_session(&mut self, grants: Grants, outbox: mpsc::Sender<ServerMessage>) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        self.outboxes.insert(id, Outbox::Bridge(outbox));
        self.directory.open_whip_session(id, grants);
        id
    }

    /// A client frame as its session's task parsed it (and the application's hook let through).
    pub fn message(&mut self, id: SessionId, parsed: Result<ClientMessage, ParseFailure>, now: Instant) {
        self.message_received_at(id, parsed, now, now);
    }

    /// [`Hub::message`] for a frame that arrived at `received` (before the application's hook
    /// decided it): a join's latency is counted from then.
    pub fn message_received_at(
        &mut self,
        id: SessionId,
        parsed: Result<ClientMessage, ParseFailure>,
        received: Instant,
        now: Instant,
    ) {
        let is_join = matches!(
            &parsed,
            Ok(ClientMessage::SendData {
                command: super::signaling::protocol::AppCommand::Join { .. },
                ..
            })
        );
        self.handle_message(id, parsed, now);
        if is_join {
            self.join_latency.observe(received.elapsed());
        }
    }

    fn handle_message(&mut self, id: SessionId, parsed: Result<ClientMessage, ParseFailure>, now: Instant) {
        match parsed {
            // A second `connection` is refused as such, whatever its token.
            Ok(ClientMessage::Connection(request)) if self.directory.session_login(id).is_some() => self
                .directory
                .handle_message(id, ClientMessage::Connection(request), now),
            Ok(ClientMessage::Connection(request)) => match self.authorize(id, &request) {
                Ok(grants) => self.directory.connect(id, request, grants),
                Err(refusal) => {
                    tracing::info!(session = %id, reason = refusal.log_detail(), "connection refused");
                    self.directory.refuse_connection(id, &refusal.to_string());
                }
            },
            Ok(message) => self.directory.handle_message(id, message, now),
            Err(failure) => self.directory.refuse(id, failure),
        }
        self.apply();
    }

    /// What a connecting session may do: its token's grants, or everything under `--auth none`.
    pub fn authorize(&self, id: SessionId, request: &ConnectionRequest) -> Result<Grants, AuthRefusal> {
        let fallback = || Login::new(format!("user-{}", id.0));
        self.verify_token(request.token.as_deref(), request.login.as_ref(), fallback)
    }

    /// Verify a token (from a connection, an RTMP URL) for `login` (what the client asked for,
    /// if anything; `fallback` when it asked for nothing and tokens are not required).
    pub fn verify_token(
        &self,
        token: Option<&str>,
        login: Option<&Login>,
        fallback: impl FnOnce() -> Login,
    ) -> Result<Grants, AuthRefusal> {
        self.access
            .auth
            .verify(token, login, fallback, &self.access.deny, crate::auth::now_unix())
    }

    /// Refuse a session's `connection` (the application's hook said no) and close it.
    pub fn refuse_connection(&mut self, id: SessionId, info: &str) {
        tracing::info!(session = %id, "connection refused by the application's hook");
        self.directory.refuse_connection(id, info);
        self.apply();
    }

    /// Kick `login` (from `room`, when given); false when no such participant.
    pub fn kick(&mut self, login: &Login, room: Option<&RoomName>) -> bool {
        let kicked = self.directory.kick(login, room);
        self.apply();
        kicked
    }

    /// A drain began: new sessions, joins and publishes are refused from now on.
    pub fn begin_drain(&mut self) {
        self.directory.begin_drain();
        self.apply();
    }

    /// The drain's end: every stream ends, every participant leaves, every session closes as
    /// going away (its queued frames are written first).
    pub fn end_all_sessions(&mut self) {
        self.directory.end_all_sessions(super::directory::SHUTTING_DOWN);
        self.apply();
    }

    pub fn recordings_failed(&self) -> u64 {
        self.recordings_failed
    }

    pub fn join_latency(&self) -> &super::metrics::LatencyHistogram {
        &self.join_latency
    }

    /// Recordings not yet finished on their writer.
    pub fn open_recordings(&self) -> usize {
        self.open_recordings.len()
    }

    pub fn sessions_closed(&self) -> u64 {
        self.sessions_closed
    }

    pub fn set_admission(&mut self, admission: Arc<Admission>) {
        self.admission = Some(admission);
    }

    pub fn close_session(&mut self, id: SessionId) {
        self.sessions_closed = self.sessions_closed.wrapping_add(1);
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
                    Effect::Disconnect(id) => self.cut_off(id),
                    Effect::GoAway(id) => {
                        if let Some(Outbox::WebSocket(_, output)) = self.outboxes.remove(&id) {
                            output.go_away();
                        }
                    }
                    Effect::Revoke(revocation) => {
                        let now = crate::auth::now_unix();
                        if let Err(error) =
                            self.access
                                .deny
                                .deny(&revocation.jti, revocation.expires_unix, now)
                        {
                            tracing::error!(%error, "the revoked token list could not be saved");
                        }
                    }
                    Effect::Webhook(event) => self.webhook(event),
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
            self.recordings_failed += 1;
            self.directory.recording_failed(id, &RecordFailure::Directory);
            return;
        };
        let queue = match recorder.open(&writer_key, open) {
            Ok(queue) => {
                self.open_recordings.insert(id);
                queue
            }
            Err(failure) => {
                self.recordings_failed += 1;
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
            meter: None,
        };
        self.send_to_worker(worker, Command::EndpointAdd(Box::new(add)));
    }

    /// A writer's report: a failure reaches the publisher; a finished file is logged there.
    pub fn recorder_event(&mut self, event: RecorderEvent) {
        match event {
            RecorderEvent::Failed { id, failure } => {
                self.recordings_failed += 1;
                self.open_recordings.remove(&id);
                self.directory.recording_failed(id, &failure)
            }
            RecorderEvent::Finished { id, meta } => {
                self.open_recordings.remove(&id);
                tracing::debug!(recording = %id, file = %meta.file, "recording finished");
                self.webhook(WebhookEvent::RecordingFinished {
                    room: meta.room.clone().unwrap_or_default(),
                    stream: meta.stream.clone(),
                    file: meta.file.clone(),
                    duration_ms: meta.duration_ms,
                    size_bytes: meta.size_bytes,
                });
            }
        }
        self.apply();
    }

    pub fn set_webhooks(&mut self, webhooks: Option<Webhooks>) {
        self.webhooks = webhooks;
    }

    pub fn webhooks(&self) -> Option<&Webhooks> {
        self.webhooks.as_ref()
    }

    /// Queue `event` for the operator's webhooks, if any.
    pub fn webhook(&self, event: WebhookEvent) {
        if let Some(webhooks) = &self.webhooks {
            webhooks.emit(event);
        }
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
            // Media: the bridge's next keyframe repairs a dropped batch (counted by `send`). A
            // mute that did not fit is answered as failed by the admin route that sent it.
            Command::IngestRtp { .. } | Command::SetMuted { .. } | Command::Stall(_) | Command::Shutdown => {}
        }
    }

    fn deliver(&mut self, id: SessionId, message: ServerMessage) {
        let Some(outbox) = self.outboxes.get(&id) else {
            return;
        };
        let sent = match outbox {
            Outbox::WebSocket(outbox, output) => {
                let text = message.to_json();
                let bytes = text.len();
                if !output.reserve(bytes) {
                    if let Some(admission) = &self.admission {
                        admission
                            .counters
                            .sessions_over_output_cap
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    false
                } else if outbox.try_send(text).is_err() {
                    output.release(bytes);
                    false
                } else {
                    true
                }
            }
            Outbox::Bridge(outbox) => outbox.try_send(message).is_ok(),
        };
        if !sent {
            tracing::info!(session = %id, "session is not reading its frames; disconnecting it");
            self.cut_off(id);
            // Free what it held now (its room sees it leave), not when its task gets to it.
            self.directory.close_session(id);
        }
    }

    /// Drop a session's outbox and wake its task to close the socket now, even mid-write.
    fn cut_off(&mut self, id: SessionId) {
        if let Some(Outbox::WebSocket(_, output)) = self.outboxes.remove(&id) {
            output.cut();
        }
    }
}

/// Lock the hub; a panic while it was held (a bug) must not take every other session down.
pub fn lock(hub: &SharedHub) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
