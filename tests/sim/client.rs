//! A simulated participant: the room SDK's behaviour as a sans-IO state machine on the load
//! generator's `PeerCore`s. It connects, joins its room, publishes one stream, plays every
//! other participant's stream as the example pages do (on `STATE` and `PUBLISHED`), answers
//! pings, and drops a stream when its final status arrives.
//!
//! Fed server frames and time by the world, it queues the frames it sends in `outbox` and
//! owns one `PeerCore` per stream, each at its own address.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use webcall::ids::SessionId;
use webcall_loadtest::peer::{PeerCore, PeerOutput, PeerState, PublisherMedia};
use webcall_loadtest::wcs::incoming::{self, RoomEventKind, ServerMessage, StateEntry};
use webcall_loadtest::wcs::messages::{self, ConnectionOptions, StreamRequest};
use webcall_loadtest::{AudioCodec, PayloadTypes, PlayCodecs, StreamStatus, VideoCodec};

use super::net::Rng;

/// Frames per second the simulated cameras send: low, so a virtual minute of a room of four
/// takes well under a second of real time, and high enough for several keyframe gates.
pub const SIM_VIDEO_FPS: u32 = 10;
/// How long a participant waits for a stream's peer connection before it gives up on it and
/// starts it again.
pub const STREAM_CONNECT_MAX: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publish,
    Play,
}

pub struct Stream {
    pub name: String,
    pub role: Role,
    pub core: PeerCore,
    /// When the core wants `handle_timeout`.
    pub deadline: Instant,
    pub created: Instant,
    /// The last status the server sent for it.
    pub status: Option<String>,
}

pub struct Participant {
    pub index: u8,
    pub login: String,
    pub room: String,
    pub session: Option<SessionId>,
    /// Frames to send, oldest first (the world carries them to the server).
    pub outbox: Vec<String>,
    /// What happened, for the trace.
    pub events: Vec<String>,
    /// Streams by `mediaSessionId`.
    pub streams: BTreeMap<String, Stream>,
    join_op: Option<String>,
    in_room: bool,
    ops: u64,
    streams_made: u16,
    publishes: u32,
    rng: Rng,
    /// The media path is cut: the peers neither send nor receive (signaling goes on).
    pub media_cut: bool,
}

impl Participant {
    pub fn new(index: u8, room: &str, seed: u64) -> Self {
        Participant {
            index,
            login: format!("p{index}"),
            room: room.to_owned(),
            session: None,
            outbox: Vec::new(),
            events: Vec::new(),
            streams: BTreeMap::new(),
            join_op: None,
            in_room: false,
            ops: 0,
            streams_made: 0,
            publishes: 0,
            rng: Rng::new(seed ^ (u64::from(index) << 56)),
            media_cut: false,
        }
    }

    /// The socket opened as `session`: say who we are.
    pub fn connect(&mut self, session: SessionId) {
        self.session = Some(session);
        self.outbox
            .push(messages::connection(&ConnectionOptions::room(&self.login)));
    }

    /// The socket closed (we closed it, or the server did): every stream is gone.
    pub fn disconnected(&mut self) {
        self.session = None;
        self.in_room = false;
        self.join_op = None;
        self.streams.clear();
    }

    pub fn join(&mut self) {
        let op = self.next_op();
        self.outbox.push(messages::join(&op, &self.room));
        self.join_op = Some(op);
    }

    /// `leave`: the server ends our streams; like the SDK we drop them at once.
    pub fn leave(&mut self) {
        let op = self.next_op();
        self.outbox.push(messages::leave(&op, &self.room));
        self.in_room = false;
        self.streams.clear();
    }

    fn next_op(&mut self) -> String {
        self.ops += 1;
        format!("{}-op{}", self.login, self.ops)
    }

    fn next_addr(&mut self) -> SocketAddr {
        self.streams_made += 1;
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, self.index, 1));
        SocketAddr::new(ip, 5000 + self.streams_made)
    }

    fn next_msid(&mut self) -> String {
        format!("{}-m{}", self.login, self.streams_made)
    }

    /// A server frame arrived.
    pub fn handle(&mut self, now: Instant, text: &str) {
        let Ok(message) = incoming::parse(text) else {
            self.events.push(format!("unparsable {text}"));
            return;
        };
        match message {
            ServerMessage::Ping => self.outbox.push(messages::pong()),
            ServerMessage::GetUserData(_) => {
                self.events.push("established".into());
                self.join();
            }
            ServerMessage::DataStatus(status) => {
                self.events.push(format!(
                    "data {} {}",
                    status.status,
                    status.info.unwrap_or_default()
                ));
                if status.accepted && self.join_op.as_deref() == Some(status.operation_id.as_str()) {
                    self.join_op = None;
                    self.in_room = true;
                    self.publish(now);
                }
            }
            ServerMessage::RoomEvent(event) => self.room_event(now, event.kind),
            ServerMessage::SetRemoteSdp {
                media_session_id,
                sdp,
            } => {
                if let Some(stream) = self.streams.get_mut(&media_session_id) {
                    if let Err(error) = stream.core.accept_answer(&sdp) {
                        self.events
                            .push(format!("answer refused {media_session_id}: {error}"));
                    }
                    stream.deadline = now;
                }
            }
            ServerMessage::StreamStatus(status) => {
                self.events.push(format!(
                    "status {} {}",
                    status.media_session_id,
                    status.status.as_wire()
                ));
                let terminal = matches!(
                    status.status,
                    StreamStatus::Stopped | StreamStatus::Failed | StreamStatus::Unpublished
                );
                if terminal {
                    self.streams.remove(&status.media_session_id);
                } else if let Some(stream) = self.streams.get_mut(&status.media_session_id) {
                    stream.status = Some(status.status.as_wire().to_owned());
                }
            }
            ServerMessage::Fail { info, .. } => {
                self.events.push(format!("fail {}", info.unwrap_or_default()))
            }
            ServerMessage::Pong | ServerMessage::Other { .. } => {}
        }
    }

    fn room_event(&mut self, now: Instant, kind: RoomEventKind) {
        match kind {
            RoomEventKind::State(entries) => {
                self.events.push(format!("STATE {}", entries.len()));
                for entry in entries {
                    if let StateEntry::Stream { name, .. } = entry {
                        self.play(now, &name);
                    }
                }
            }
            RoomEventKind::Published { login, name } => {
                self.events.push(format!("PUBLISHED {login} {name}"));
                if self.in_room && login != self.login {
                    self.play(now, &name);
                }
            }
            RoomEventKind::Joined(login) => self.events.push(format!("JOINED {login}")),
            RoomEventKind::Left(login) => self.events.push(format!("LEFT {login}")),
            RoomEventKind::Unpublished { login, name } => {
                self.events.push(format!("UNPUBLISHED {login} {name}"))
            }
            RoomEventKind::Failed { login, name } => self.events.push(format!("FAILED {login} {name}")),
            RoomEventKind::Message { from, text } => self.events.push(format!("MESSAGE {from} {text}")),
            RoomEventKind::Other { name, .. } => self.events.push(format!("other {name}")),
        }
    }

    fn publish(&mut self, now: Instant) {
        self.publishes += 1;
        let name = format!("{}-{}-{}", self.room, self.login, self.publishes);
        let media = PublisherMedia {
            video: Some((VideoCodec::Vp8, 320, 240)),
            audio: Some(AudioCodec::Opus),
            payload_types: PayloadTypes::chrome(),
            keyframe_interval: None,
        };
        let addr = self.next_addr();
        let seed = self.rng.next_u64();
        let Ok((mut core, offer)) = PeerCore::publisher_seeded(addr, &media, seed, now) else {
            self.events.push("publisher refused".into());
            return;
        };
        core.set_video_fps(SIM_VIDEO_FPS);
        let msid = self.next_msid();
        self.outbox.push(messages::publish_stream(&StreamRequest {
            media_session_id: &msid,
            name: &name,
            sdp: &offer,
            room: Some(&self.room),
            has_video: true,
            has_audio: true,
            record: false,
        }));
        self.add_stream(msid, name, Role::Publish, core, now);
    }

    fn play(&mut self, now: Instant, name: &str) {
        let playing = self.streams.values().any(|s| s.name == name);
        if playing || name.contains(&format!("-{}-", self.login)) {
            return;
        }
        let addr = self.next_addr();
        let Ok((core, offer)) =
            PeerCore::player(addr, &PlayCodecs::browser(), &PayloadTypes::chrome(), 0, now)
        else {
            self.events.push("player refused".into());
            return;
        };
        let msid = self.next_msid();
        self.outbox.push(messages::play_stream(&StreamRequest {
            media_session_id: &msid,
            name,
            sdp: &offer,
            room: Some(&self.room),
            has_video: true,
            has_audio: true,
            record: false,
        }));
        self.add_stream(msid, name.to_owned(), Role::Play, core, now);
    }

    fn add_stream(&mut self, msid: String, name: String, role: Role, core: PeerCore, now: Instant) {
        let stream = Stream {
            name,
            role,
            core,
            deadline: now,
            created: now,
            status: None,
        };
        self.streams.insert(msid, stream);
    }

    /// The earliest instant one of our peers wants time.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.media_cut {
            return None;
        }
        self.streams.values().map(|s| s.deadline).min()
    }

    /// Give every peer that is due its time, and send what each wants to send.
    pub fn poll(&mut self, now: Instant, send: &mut dyn FnMut(SocketAddr, SocketAddr, Vec<u8>)) {
        if self.media_cut {
            return;
        }
        for stream in self.streams.values_mut() {
            if stream.deadline > now {
                continue;
            }
            let _ = stream.core.handle_timeout(now);
            drain(stream, send);
        }
        self.retry_dead_streams(now);
    }

    /// A peer connection that died on our side, or has not connected [`STREAM_CONNECT_MAX`]
    /// after it was made (its DTLS handshake's retransmissions were all lost, say: dimpl's
    /// client stops resending after four tries), is stopped and started again, as an
    /// application on the SDK does when a stream fails.
    fn retry_dead_streams(&mut self, now: Instant) {
        let dead: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                let stuck = *s.core.state() != PeerState::Connected
                    && now.saturating_duration_since(s.created) > STREAM_CONNECT_MAX;
                !s.core.is_alive() || stuck
            })
            .map(|(msid, _)| msid.clone())
            .collect();
        for msid in dead {
            let Some(stream) = self.streams.remove(&msid) else {
                continue;
            };
            self.events
                .push(format!("peer {msid} died: {:?}", stream.core.state()));
            match stream.role {
                Role::Publish => {
                    self.outbox.push(messages::unpublish_stream(&msid, &stream.name));
                    if self.in_room {
                        self.publish(now);
                    }
                }
                Role::Play => {
                    self.outbox.push(messages::stop_stream(&msid, &stream.name));
                    if self.in_room {
                        self.play(now, &stream.name);
                    }
                }
            }
        }
    }

    /// A datagram for the peer at `to`.
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        send: &mut dyn FnMut(SocketAddr, SocketAddr, Vec<u8>),
    ) {
        if self.media_cut {
            return;
        }
        if let Some(stream) = self.streams.values_mut().find(|s| s.core.local_addr() == to) {
            let _ = stream.core.handle_receive(now, from, bytes);
            drain(stream, send);
        }
    }

    /// The address of the stream with `msid`, if it is still held.
    pub fn stream_addr(&self, msid: &str) -> Option<SocketAddr> {
        self.streams.get(msid).map(|s| s.core.local_addr())
    }
}

fn drain(stream: &mut Stream, send: &mut dyn FnMut(SocketAddr, SocketAddr, Vec<u8>)) {
    let local = stream.core.local_addr();
    loop {
        match stream.core.poll_output() {
            Ok(PeerOutput::Transmit(transmit)) => {
                send(local, transmit.destination, transmit.contents.to_vec())
            }
            Ok(PeerOutput::Timeout(at)) => {
                stream.deadline = at;
                return;
            }
            Err(_) => {
                stream.deadline = stream.created + std::time::Duration::from_secs(3600 * 24);
                return;
            }
        }
    }
}
