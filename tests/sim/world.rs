//! The simulated world: the server's directory and its workers (the real `Directory`,
//! `WorkerState` and worker turn, on `SimIo`), the participants, the signaling channel and the
//! network between them, all on one virtual clock.
//!
//! A step: due scenario actions, signaling frames to the directory, datagrams to their
//! receivers, a turn of every worker that has work, notifications to the directory, frames to
//! the participants, the participants' peers' timers; then every invariant is checked.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::Hasher;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use webcall::control::directory::{Directory, DirectoryLimits, Effect};
use webcall::forward::ForwardFault;
use webcall::ids::{PeerId, SessionId, WorkerId};
use webcall::sdp::PeerEnv;
use webcall::worker::commands::{Command, Notification, PeerRole};
use webcall::worker::counters::{CounterTable, WorkerCounter};
use webcall::worker::io::SimIo;
use webcall::worker::notify::{NotificationSink, Notifier};
use webcall::worker::state::{WorkerProbe, WorkerSetup, WorkerState};
use webcall::worker::turn::{run_turn, Staging};

use super::check::{Accepted, Checker, Totals};
use super::client::Participant;
use super::net::{LinkConditions, Network, Rng};

/// Notifications control's queue holds in the simulation: tiny, so the worker's backlog
/// (`notify.rs`) is exercised by every run.
const SIM_NOTIFICATION_QUEUE: usize = 2;
/// The shortest step of virtual time, so a timer that asks for "now" again cannot stall it.
const STEP_MIN: Duration = Duration::from_micros(100);

/// What a participant does when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Connect,
    Leave,
    Rejoin,
    Disconnect,
    /// The participant's media path is cut: its peers go silent (its WebSocket stays up).
    CutMedia,
}

pub struct Plan {
    pub at: Duration,
    pub participant: usize,
    pub action: Action,
}

pub struct Scenario {
    pub participants: usize,
    pub duration: Duration,
    pub plans: Vec<Plan>,
    pub conditions: LinkConditions,
    pub workers: usize,
    pub fault: bool,
}

/// A run's outcome.
#[derive(Debug)]
pub struct Report {
    pub trace_hash: u64,
    /// Peers the directory still held at the end.
    pub peers_left: usize,
    /// Notifications that waited in a worker's backlog because control's queue was full.
    pub notifications_deferred: u64,
    pub totals: Totals,
    pub steps: u64,
    pub lost: u64,
}

struct QueueSink {
    queue: Arc<Mutex<VecDeque<Notification>>>,
}

impl NotificationSink for QueueSink {
    fn offer(&mut self, notification: Notification) -> Result<(), Notification> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.len() >= SIM_NOTIFICATION_QUEUE {
            return Err(notification);
        }
        queue.push_back(notification);
        Ok(())
    }

    fn wake(&mut self) {}
}

struct Probe(Arc<Mutex<Vec<Accepted>>>);

impl WorkerProbe for Probe {
    fn accepted(&mut self, publisher: PeerId, packet: &webcall::forward::IncomingRtp) {
        let mut accepted = self.0.lock().unwrap_or_else(|p| p.into_inner());
        accepted.push(Accepted::from_packet(publisher, packet));
    }
}

struct SimWorker {
    state: WorkerState,
    io: SimIo,
    staging: Staging,
    addr: SocketAddr,
    commands: VecDeque<Command>,
    notifications: Arc<Mutex<VecDeque<Notification>>>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
}

/// FNV-1a over the trace's lines: stable across processes and platforms. With
/// `WEBCALL_SIM_TRACE=1` the lines are printed too.
struct Trace {
    hash: u64,
    print: bool,
}

impl Trace {
    fn new() -> Self {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            print: std::env::var_os("WEBCALL_SIM_TRACE").is_some(),
        }
    }

    fn line(&mut self, at: Duration, text: &str) {
        let line = format!("{}|{text}\n", at.as_micros());
        if self.print {
            print!("{line}");
        }
        for byte in line.bytes() {
            self.write_u8(byte);
        }
    }
}

impl Hasher for Trace {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.hash ^= u64::from(*byte);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

pub struct World {
    start: Instant,
    now: Instant,
    net: Network,
    directory: Directory,
    workers: Vec<SimWorker>,
    participants: Vec<Participant>,
    plans: VecDeque<Plan>,
    sessions: BTreeMap<SessionId, usize>,
    to_server: VecDeque<(Instant, SessionId, String)>,
    to_client: VecDeque<(Instant, SessionId, String)>,
    next_session: u64,
    signaling_rng: Rng,
    webhooks: super::webhook_check::WebhookCheck,
    checker: Checker,
    trace: Trace,
    /// The answer just sent, waiting for the worker command that carries its peer.
    answered: Option<(SessionId, String)>,
    /// Which client address receives for which server peer, once known.
    peer_sessions: BTreeMap<PeerId, (SessionId, String)>,
    /// Endpoints a worker ended whose `PeerFailed` is still in the worker's backlog.
    unreported_failures: BTreeSet<PeerId>,
    /// Something the lifetime check looks at changed in this step.
    control_changed: bool,
    steps: u64,
}

impl World {
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        super::seeded_dtls::install();
        super::seeded_dtls::reset(seed);
        webcall::sdp::install_crypto_provider();
        // str0m's non-cryptographic ids (SSRCs, msids) come from this thread's generator.
        fastrand::seed(seed);
        let start = Instant::now();
        // One certificate for every run of the process, as the server makes one for all its
        // peers (generating a key per run would cost more than a short run).
        static CERT: std::sync::OnceLock<webcall::sdp::DtlsCert> = std::sync::OnceLock::new();
        let cert = CERT
            .get_or_init(|| webcall::sdp::generate_dtls_cert().expect("DTLS certificate"))
            .clone();
        let mut envs = Vec::new();
        let mut workers = Vec::new();
        for index in 0..scenario.workers {
            let addr: SocketAddr = ([127, 0, 0, 1], 31000 + index as u16).into();
            envs.push(PeerEnv {
                candidate: addr,
                dtls_cert: cert.clone(),
            });
            let notifications = Arc::new(Mutex::new(VecDeque::new()));
            let sink = QueueSink {
                queue: notifications.clone(),
            };
            let setup = WorkerSetup {
                id: WorkerId(index),
                candidate: addr,
                peer_timeout: Duration::from_secs(30),
                seed: seed
                    .wrapping_add(index as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15),
            };
            let mut state = WorkerState::new(
                setup,
                Notifier::new(Box::new(sink)),
                Arc::new(CounterTable::default()),
                start,
            );
            let accepted = Arc::new(Mutex::new(Vec::new()));
            state.set_probe(Box::new(Probe(accepted.clone())));
            workers.push(SimWorker {
                state,
                io: SimIo::new(addr).expect("sim io"),
                staging: Staging::default(),
                addr,
                commands: VecDeque::new(),
                notifications,
                accepted,
            });
        }
        let limits = DirectoryLimits {
            room_capacity: 16,
            session_streams_max: 64,
            duplicate_login: Default::default(),
        };
        let participants = (0..scenario.participants)
            .map(|i| Participant::new(i as u8 + 1, "room", seed))
            .collect();
        let mut plans: Vec<&Plan> = scenario.plans.iter().collect();
        plans.sort_by_key(|p| (p.at, p.participant));
        World {
            start,
            now: start,
            net: Network::new(seed, scenario.conditions),
            directory: Directory::new(limits, envs),
            workers,
            participants,
            plans: plans
                .into_iter()
                .map(|p| Plan {
                    at: p.at,
                    participant: p.participant,
                    action: p.action,
                })
                .collect(),
            sessions: BTreeMap::new(),
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            next_session: 1,
            signaling_rng: Rng::new(seed ^ 0x5167_4e41_4c00),
            webhooks: Default::default(),
            checker: Checker::default(),
            trace: Trace::new(),
            answered: None,
            peer_sessions: BTreeMap::new(),
            unreported_failures: BTreeSet::new(),
            control_changed: false,
            steps: 0,
        }
    }

    /// Make the fan-out skip the first player it sees (the fault-injection test).
    fn inject_fault_if_asked(&mut self, fault: bool, player: PeerId) {
        if fault {
            for worker in &mut self.workers {
                worker.state.inject_fault(Some(ForwardFault::SkipPlayer(player)));
            }
        }
    }

    fn elapsed(&self) -> Duration {
        self.now.saturating_duration_since(self.start)
    }

    fn record(&mut self, text: &str) {
        let at = self.elapsed();
        self.trace.line(at, text);
    }

    /// Run the scenario; an `Err` names the broken invariant and when.
    pub fn run(mut self, scenario: &Scenario) -> Result<Report, String> {
        let end = self.start + scenario.duration;
        let mut faulted = false;
        while self.now < end {
            self.step().map_err(|e| format!("at {:?}: {e}", self.elapsed()))?;
            if scenario.fault && !faulted {
                if let Some(player) = self.checker_first_player() {
                    self.inject_fault_if_asked(true, player);
                    faulted = true;
                }
            }
            let next = self.next_event().min(end).max(self.now + STEP_MIN);
            self.now = next;
        }
        self.finish(scenario)
    }

    fn checker_first_player(&self) -> Option<PeerId> {
        self.peer_sessions
            .keys()
            .copied()
            .find(|peer| self.is_player(*peer))
    }

    fn is_player(&self, peer: PeerId) -> bool {
        let Some((session, msid)) = self.peer_sessions.get(&peer) else {
            return false;
        };
        let Some(index) = self.sessions.get(session) else {
            return false;
        };
        self.participants
            .get(*index)
            .and_then(|p| p.streams.get(msid))
            .is_some_and(|s| s.role == super::client::Role::Play)
    }

    fn next_event(&self) -> Instant {
        let mut next = self.now + Duration::from_secs(1);
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = next.min(at);
            }
        };
        consider(self.net.next_arrival());
        consider(self.to_server.front().map(|f| f.0));
        consider(self.to_client.front().map(|f| f.0));
        consider(self.plans.front().map(|p| self.start + p.at));
        for worker in &self.workers {
            consider(Some(worker.state.next_deadline(self.now)));
        }
        for participant in &self.participants {
            consider(participant.next_deadline());
        }
        next
    }

    fn signaling_delay(&mut self) -> Duration {
        Duration::from_millis(2) + self.signaling_rng.up_to(Duration::from_millis(6))
    }

    fn queue_to_server(&mut self, session: SessionId, frame: String) {
        let delay = self.signaling_delay();
        let at = self
            .to_server
            .back()
            .map_or(self.now + delay, |b| b.0.max(self.now + delay));
        self.to_server.push_back((at, session, frame));
    }

    fn queue_to_client(&mut self, session: SessionId, frame: String) {
        let delay = self.signaling_delay();
        let at = self
            .to_client
            .back()
            .map_or(self.now + delay, |b| b.0.max(self.now + delay));
        self.to_client.push_back((at, session, frame));
    }

    fn step(&mut self) -> Result<(), String> {
        self.steps += 1;
        self.control_changed = false;
        self.run_plans();
        while self.to_server.front().is_some_and(|f| f.0 <= self.now) {
            let Some((_, session, frame)) = self.to_server.pop_front() else {
                break;
            };
            if self.sessions.contains_key(&session) {
                self.directory.handle_frame(session, &frame, self.now);
                self.apply_effects();
            }
        }
        while let Some(datagram) = self.net.pop_due(self.now) {
            if let Some(worker) = self.workers.iter_mut().find(|w| w.addr == datagram.to) {
                worker.io.deliver(datagram.from, &datagram.bytes);
                continue;
            }
            let now = self.now;
            let mut out = Vec::new();
            for participant in &mut self.participants {
                participant.receive(
                    now,
                    datagram.from,
                    datagram.to,
                    &datagram.bytes,
                    &mut |from, to, bytes| out.push((from, to, bytes)),
                );
            }
            for (from, to, bytes) in out {
                self.net.send(now, from, to, bytes);
            }
        }
        for index in 0..self.workers.len() {
            self.worker_turn(index)?;
        }
        while self.to_client.front().is_some_and(|f| f.0 <= self.now) {
            let Some((_, session, frame)) = self.to_client.pop_front() else {
                break;
            };
            let Some(&index) = self.sessions.get(&session) else {
                continue;
            };
            let now = self.now;
            if let Some(participant) = self.participants.get_mut(index) {
                participant.handle(now, &frame);
            }
            self.flush_participant(index);
        }
        let now = self.now;
        let mut out = Vec::new();
        for participant in &mut self.participants {
            participant.poll(now, &mut |from, to, bytes| out.push((from, to, bytes)));
        }
        for (from, to, bytes) in out {
            self.net.send(now, from, to, bytes);
        }
        for index in 0..self.participants.len() {
            self.flush_participant(index);
        }
        self.net.commit();
        // Only a step that moved control-plane state can break a lifetime.
        if self.control_changed {
            self.check_lifetimes()?;
        }
        Ok(())
    }

    /// Send a participant's queued frames and trace its events.
    fn flush_participant(&mut self, index: usize) {
        let Some(participant) = self.participants.get_mut(index) else {
            return;
        };
        let frames = std::mem::take(&mut participant.outbox);
        let events = std::mem::take(&mut participant.events);
        let (login, session) = (participant.login.clone(), participant.session);
        for event in events {
            self.record(&format!("{login} {event}"));
        }
        if let Some(session) = session {
            for frame in frames {
                self.queue_to_server(session, frame);
            }
        }
    }

    fn run_plans(&mut self) {
        while self.plans.front().is_some_and(|p| self.start + p.at <= self.now) {
            let Some(plan) = self.plans.pop_front() else {
                break;
            };
            let Some(participant) = self.participants.get_mut(plan.participant) else {
                continue;
            };
            let login = participant.login.clone();
            match plan.action {
                Action::Connect => {
                    let session = SessionId(self.next_session);
                    self.next_session += 1;
                    self.directory.open_session(session);
                    self.sessions.insert(session, plan.participant);
                    participant.connect(session);
                }
                Action::Leave => participant.leave(),
                Action::Rejoin => participant.join(),
                Action::CutMedia => participant.media_cut = true,
                Action::Disconnect => {
                    if let Some(session) = participant.session {
                        participant.disconnected();
                        self.sessions.remove(&session);
                        self.directory.close_session(session);
                        self.apply_effects();
                    }
                }
            }
            self.record(&format!("{login} does {:?}", plan.action));
            self.flush_participant(plan.participant);
        }
    }

    /// Carry out the directory's effects as the hub does.
    fn apply_effects(&mut self) {
        self.control_changed = true;
        for effect in self.directory.take_effects() {
            match effect {
                Effect::Send(session, message) => {
                    if let webcall::control::signaling::protocol::ServerMessage::RemoteSdp {
                        media_session_id,
                        ..
                    } = &message
                    {
                        self.answered = Some((session, media_session_id.to_string()));
                    }
                    if self.sessions.contains_key(&session) {
                        self.queue_to_client(session, message.to_json());
                    }
                }
                Effect::Worker(worker, command) => {
                    if let Command::EndpointAdd(add) = &command {
                        if let Some((session, msid)) = self.answered.take() {
                            // Where that client receives: its participant made the stream
                            // before asking for it.
                            let addr = self
                                .sessions
                                .get(&session)
                                .and_then(|i| self.participants.get(*i))
                                .and_then(|p| p.stream_addr(&msid));
                            if let Some(addr) = addr {
                                self.checker.player_at(addr, add.peer);
                            }
                            self.peer_sessions.insert(add.peer, (session, msid));
                        }
                    }
                    if let Some(worker) = self.workers.get_mut(worker.0) {
                        worker.commands.push_back(command);
                    }
                }
                // The simulated clients never ask to record.
                Effect::RecordStart(_)
                | Effect::RecordFinish(..)
                | Effect::Disconnect(_)
                | Effect::Revoke(_)
                | Effect::GoAway(_) => {}
                Effect::Webhook(event) => self.webhooks.see(&event),
            }
        }
    }

    fn worker_turn(&mut self, index: usize) -> Result<(), String> {
        let now = self.now;
        let Some(worker) = self.workers.get_mut(index) else {
            return Ok(());
        };
        let due =
            worker.io.pending() > 0 || !worker.commands.is_empty() || worker.state.next_deadline(now) <= now;
        if !due {
            return Ok(());
        }
        let commands: Vec<Command> = worker.commands.drain(..).collect();
        let before: BTreeSet<PeerId> = worker.state.peers().collect();
        let removed_by_command: BTreeSet<PeerId> = commands
            .iter()
            .filter_map(|c| match c {
                Command::PeerRemove { peer } => Some(*peer),
                _ => None,
            })
            .collect();
        for command in &commands {
            match command {
                Command::EndpointAdd(add) => {
                    if let PeerRole::Player { publisher } = add.role {
                        self.checker.player_added(index, add.peer, publisher);
                    }
                }
                Command::PeerRemove { peer } => self.checker.removed(*peer),
                Command::IngestRtp { .. }
                | Command::SetMuted { .. }
                | Command::Stall(_)
                | Command::Shutdown => {}
            }
        }
        let Some(worker) = self.workers.get_mut(index) else {
            return Ok(());
        };
        let clock = move || now;
        run_turn(
            &mut worker.state,
            &mut worker.io,
            &mut worker.staging,
            &clock,
            &mut commands.into_iter(),
        );
        let sent = worker.io.take_sent();
        let accepted = std::mem::take(&mut *worker.accepted.lock().unwrap_or_else(|p| p.into_inner()));
        // What control's queue holds now; the rest waits in the worker's backlog for its next
        // turn, as it would on the server.
        let notifications: Vec<Notification> = worker
            .notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        let addr = worker.addr;
        let on_worker: BTreeSet<PeerId> = worker.state.peers().collect();
        // Endpoints the worker ended on its own in this turn (silence, DTLS end, a panic): the
        // model forgets them and, for a publisher, its players, whose expectations this turn
        // are void (the fan-out stopped part-way through the turn).
        let gone: BTreeSet<PeerId> = before
            .difference(&on_worker)
            .filter(|p| !removed_by_command.contains(p))
            .copied()
            .collect();
        for peer in &gone {
            self.unreported_failures.insert(*peer);
            self.control_changed = true;
            self.checker.removed(*peer);
        }
        self.checker.accepted(&accepted);
        let state = &self.workers[index].state;
        self.checker.egress(state, &sent, &gone)?;
        for (to, bytes) in sent {
            self.net.send(now, addr, to, bytes);
        }
        for notification in notifications {
            match &notification {
                Notification::PeerConnected { peer } => {
                    self.checker.connected(*peer);
                    self.record(&format!("{peer} connected"));
                }
                Notification::PeerFailed { peer, failure } => {
                    self.unreported_failures.remove(peer);
                    self.record(&format!("{peer} failed {failure:?}"));
                }
            }
            self.directory.handle_notification(notification);
            self.apply_effects();
        }
        Ok(())
    }

    /// No peer, stream or session outlives its owner.
    fn check_lifetimes(&self) -> Result<(), String> {
        self.directory.check().map_err(|e| e.to_string())?;
        self.webhooks.verdict()?;
        for (index, worker) in self.workers.iter().enumerate() {
            let on_worker: BTreeSet<PeerId> = worker.state.peers().collect();
            let in_directory: BTreeSet<PeerId> = self
                .directory
                .peers()
                .filter(|(_, w)| w.0 == index)
                .map(|(p, _)| p)
                .collect();
            let pending_adds: BTreeSet<PeerId> = worker
                .commands
                .iter()
                .filter_map(|c| match c {
                    Command::EndpointAdd(add) => Some(add.peer),
                    _ => None,
                })
                .collect();
            let missing: Vec<_> = in_directory
                .difference(&on_worker)
                .filter(|p| !pending_adds.contains(p) && !self.unreported_failures.contains(p))
                .collect();
            let pending_removes: BTreeSet<PeerId> = worker
                .commands
                .iter()
                .filter_map(|c| match c {
                    Command::PeerRemove { peer } => Some(*peer),
                    _ => None,
                })
                .collect();
            let extra: Vec<_> = on_worker
                .difference(&in_directory)
                .filter(|p| !pending_removes.contains(p))
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                return Err(format!(
                    "worker {index} holds {on_worker:?} but the directory {in_directory:?} (missing {missing:?}, extra {extra:?})"
                ));
            }
        }
        let counts = self.directory.counts();
        let live = self.participants.iter().filter(|p| p.session.is_some()).count();
        if counts.sessions != live || self.sessions.len() != live {
            return Err(format!(
                "{} sessions in the directory, {live} participants connected",
                counts.sessions
            ));
        }
        Ok(())
    }

    fn finish(mut self, scenario: &Scenario) -> Result<Report, String> {
        // Every stream that has been up for a while carries media.
        let settle = Duration::from_secs(6);
        for participant in self.participants.iter().filter(|p| !p.media_cut) {
            for (msid, stream) in &participant.streams {
                if self.now.saturating_duration_since(stream.created) < settle {
                    continue;
                }
                let stats = stream.core.stats();
                let (video, audio) = match stream.role {
                    super::client::Role::Play => (stats.video_packets_received, stats.audio_packets_received),
                    super::client::Role::Publish => (stats.video_packets_sent, stats.audio_packets_sent),
                };
                if video == 0 || audio == 0 {
                    return Err(format!(
                        "{} stream {msid} ({}) up since {:?} moved video {video} / audio {audio}",
                        participant.login,
                        stream.name,
                        stream.created.saturating_duration_since(self.start)
                    ));
                }
            }
        }
        let _ = scenario;
        let lines: Vec<String> = self
            .participants
            .iter()
            .flat_map(|p| {
                p.streams.iter().map(move |(msid, s)| {
                    let st = s.core.stats();
                    format!(
                        "final {} {msid} {} v{} a{} kf{}",
                        p.login,
                        s.name,
                        st.video_packets_received,
                        st.audio_packets_received,
                        st.keyframes_received
                    )
                })
            })
            .collect();
        for line in lines {
            self.record(&line);
        }
        let totals = self.checker.totals;
        self.record(&format!("totals {totals:?} lost {}", self.net.lost));
        let notifications_deferred = self
            .workers
            .iter()
            .map(|w| w.state.counters().get(WorkerCounter::NotificationsDeferred))
            .sum();
        Ok(Report {
            peers_left: self.directory.counts().peers,
            notifications_deferred,
            trace_hash: self.trace.finish(),
            totals,
            steps: self.steps,
            lost: self.net.lost,
        })
    }
}
