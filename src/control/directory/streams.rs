//! Stream commands of the directory: publish, play, stop, and the end of a peer for any reason.
//!
//! Invariants: a peer is added to a worker only after its answer was produced; every ended peer
//! gets exactly one final status (`UNPUBLISHED`, `STOPPED` or `FAILED`) on its session, if the
//! session is still open; a publisher's end stops all of its players.

use std::time::Instant;

use super::{Directory, EndReason, PeerInfo, PeerKind, Published, SessionId, StreamError};
use crate::control::signaling::protocol::{RoomEvent, ServerMessage, StreamRequest, StreamStatus};
use crate::control::webhooks::WebhookEvent;
use crate::ids::{Login, MediaSessionId, PeerId, RoomName, StreamName, WorkerId};
use crate::sdp::sdp_scan::scan_offer;
use crate::sdp::{negotiate_player, negotiate_publisher, Negotiated, NegotiationError};
use crate::worker::commands::{Command, EndpointAdd, EndpointSpec, PeerRole};

impl Directory {
    pub(super) fn publish(&mut self, id: SessionId, request: StreamRequest, now: Instant) {
        if self.refuse_reused_id(id, "publishStream", &request.media_session_id) {
            return;
        }
        let StreamRequest {
            media_session_id,
            name,
            sdp,
            room,
            record: request_record,
        } = request;
        let result = self.check_new_stream(id, room.as_ref()).and_then(|login| {
            if self.drain_refusal().is_some() {
                return Err(StreamError::ShuttingDown);
            }
            if self.published.contains_key(&name) {
                return Err(StreamError::NameInUse);
            }
            let worker = self.stream_worker(room.as_ref())?;
            let env = self
                .envs
                .get(worker.0)
                .ok_or(StreamError::Internal("no media worker"))?;
            let negotiated = negotiate_publisher(&sdp, env, now)?;
            self.check_publish_grant(
                id,
                name.as_str(),
                room.as_ref(),
                &negotiated.tracks,
                request_record,
            )?;
            Ok((login, worker, negotiated))
        });
        let (login, worker, negotiated) = match result {
            Ok(ok) => ok,
            Err(error) => return self.refuse_stream(id, &media_session_id, &name, &error),
        };
        let record = self.wants_recording(id, room.as_ref(), request_record);
        let tracks = negotiated.tracks.clone();
        let peer = self.add_peer(
            id,
            &media_session_id,
            &name,
            worker,
            PeerKind::Publisher,
            PeerRole::Publisher,
            negotiated,
        );
        self.published.insert(
            name.clone(),
            Published {
                peer,
                login,
                room,
                worker,
                tracks,
                announced: false,
                players: Vec::new(),
                recording: None,
                recording_failure: None,
                muted_audio: false,
                muted_video: false,
            },
        );
        if record {
            if let Err(error) = self.start_recording(&name, now) {
                tracing::warn!(stream = %name, %error, "recording not started");
            }
        }
    }

    pub(super) fn play(&mut self, id: SessionId, request: StreamRequest, now: Instant) {
        if self.refuse_reused_id(id, "playStream", &request.media_session_id) {
            return;
        }
        let StreamRequest {
            media_session_id,
            name,
            sdp,
            room,
            ..
        } = request;
        let result = self.check_new_stream(id, None).and_then(|_| {
            // A name nobody publishes first; then an offer that is not SDP; then a publisher
            // that has not reached PUBLISHING (no media yet, or never): it has no stream to
            // play, and the client hears `Stream not found`, not an answer that stays silent.
            let source = self.published.get(&name).ok_or(StreamError::NotFound)?;
            scan_offer(&sdp).map_err(NegotiationError::Sdp)?;
            if !source.announced {
                return Err(StreamError::NotFound);
            }
            self.check_play_grant(id, source.room.as_ref())?;
            if let Some(stream_room) = &source.room {
                // A WHEP viewer is not a participant: like an RTMP player it names the room
                // (its grants cover it) instead of joining.
                let member = self
                    .sessions
                    .get(&id)
                    .is_some_and(|s| s.rooms.contains(stream_room));
                let bridge_names_it = self.is_bridge(id) && room.as_ref() == Some(stream_room);
                if !(member || bridge_names_it) || room.as_ref().is_some_and(|r| r != stream_room) {
                    return Err(StreamError::RestrictedAccess);
                }
            }
            let env = self
                .envs
                .get(source.worker.0)
                .ok_or(StreamError::Internal("no media worker"))?;
            let negotiated = negotiate_player(&sdp, &source.tracks, env, now)?;
            Ok((source.worker, source.peer, negotiated))
        });
        let (worker, publisher, negotiated) = match result {
            Ok(ok) => ok,
            Err(error) => return self.refuse_stream(id, &media_session_id, &name, &error),
        };
        let role = PeerRole::Player { publisher };
        let peer = self.add_peer(
            id,
            &media_session_id,
            &name,
            worker,
            PeerKind::Player,
            role,
            negotiated,
        );
        if let Some(source) = self.published.get_mut(&name) {
            source.players.push(peer);
        }
    }

    /// Answer a refused publish or play with FAILED and the refusal's text.
    fn refuse_stream(
        &mut self,
        id: SessionId,
        media_session_id: &MediaSessionId,
        name: &StreamName,
        error: &StreamError,
    ) {
        if matches!(error, StreamError::Negotiation(_) | StreamError::Internal(_)) {
            tracing::debug!(session = %id, stream = %name, detail = error.detail(), "stream refused");
        }
        self.send_status(
            id,
            media_session_id,
            name,
            StreamStatus::Failed,
            Some(error.to_string()),
        );
    }

    /// A `mediaSessionId` the session already uses names its live stream: refuse with `fail`
    /// rather than a FAILED status, which the SDK would apply to that live stream.
    fn refuse_reused_id(
        &mut self,
        id: SessionId,
        api_method: &str,
        media_session_id: &MediaSessionId,
    ) -> bool {
        let reused = self
            .sessions
            .get(&id)
            .is_some_and(|s| s.streams.contains_key(media_session_id));
        if reused {
            self.fail(
                id,
                api_method,
                Some(media_session_id.to_string()),
                "MediaSessionId is already in use",
            );
        }
        reused
    }

    /// The worker a new stream goes to: its room's, or the least loaded for a plain stream.
    pub(super) fn stream_worker(&self, room: Option<&RoomName>) -> Result<WorkerId, StreamError> {
        match room {
            Some(room) => self
                .rooms
                .get(room)
                .map(|r| r.worker)
                .ok_or(StreamError::Internal("the session's room is gone")),
            None => Ok(self.least_loaded_worker()),
        }
    }

    /// Common checks for a new stream; returns the session's login.
    pub(super) fn check_new_stream(
        &self,
        id: SessionId,
        room: Option<&RoomName>,
    ) -> Result<Login, StreamError> {
        let session = self.sessions.get(&id).ok_or(StreamError::NotEstablished)?;
        let login = session.login.clone().ok_or(StreamError::NotEstablished)?;
        if session.streams.len() >= self.limits.session_streams_max {
            return Err(StreamError::TooManyStreams(self.limits.session_streams_max));
        }
        if let Some(room) = room {
            if !session.rooms.contains(room) {
                return Err(StreamError::NotJoined(room.clone()));
            }
        }
        Ok(login)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_peer(
        &mut self,
        id: SessionId,
        media_session_id: &MediaSessionId,
        name: &StreamName,
        worker: WorkerId,
        kind: PeerKind,
        role: PeerRole,
        negotiated: Negotiated,
    ) -> PeerId {
        let Negotiated {
            rtc,
            answer_sdp,
            local_ufrag,
            tracks,
        } = negotiated;
        self.send(
            id,
            ServerMessage::RemoteSdp {
                media_session_id: media_session_id.clone(),
                sdp: answer_sdp,
            },
        );
        let spec = EndpointSpec::WebRtc { rtc, local_ufrag };
        self.add_endpoint(id, media_session_id, name, worker, (kind, role), tracks, spec)
    }

    /// Queue the endpoint's add on its worker and record the peer everywhere it belongs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_endpoint(
        &mut self,
        id: SessionId,
        media_session_id: &MediaSessionId,
        name: &StreamName,
        worker: WorkerId,
        (kind, role): (PeerKind, PeerRole),
        tracks: crate::sdp::StreamTracks,
        spec: EndpointSpec,
    ) -> PeerId {
        let peer = PeerId(self.next_peer);
        self.next_peer += 1;
        // A publisher's bitrate is shown by the admin API.
        let meter = (kind == PeerKind::Publisher).then(Default::default);
        let add = EndpointAdd {
            peer,
            role,
            tracks,
            spec,
            meter: meter.clone(),
        };
        self.effects
            .push(super::Effect::Worker(worker, Command::EndpointAdd(Box::new(add))));
        if let Some(load) = self.worker_load.get_mut(worker.0) {
            *load += 1;
        }
        if let Some(session) = self.sessions.get_mut(&id) {
            session.streams.insert(media_session_id.clone(), peer);
        }
        let info = PeerInfo {
            kind,
            session: id,
            media_session_id: media_session_id.clone(),
            stream: name.clone(),
            worker,
            meter,
        };
        self.peers.insert(peer, info);
        peer
    }

    pub(super) fn peer_connected(&mut self, peer: PeerId) {
        let Some(info) = self.peers.get(&peer) else {
            return;
        };
        let (session, media_session_id, stream) =
            (info.session, info.media_session_id.clone(), info.stream.clone());
        match info.kind {
            PeerKind::Player => {
                self.send_status(session, &media_session_id, &stream, StreamStatus::Playing, None)
            }
            PeerKind::Publisher => {
                let Some(published) = self.published.get_mut(&stream) else {
                    return;
                };
                if published.announced {
                    return;
                }
                published.announced = true;
                let (login, room) = (published.login.clone(), published.room.clone());
                let event = WebhookEvent::StreamPublished {
                    room: room.as_ref().map_or_else(String::new, ToString::to_string),
                    stream: stream.to_string(),
                    login: login.to_string(),
                    session_id: session.0,
                    audio_codec: published.tracks.audio.as_ref().map(|t| t.name.clone()),
                    video_codec: published.tracks.video.as_ref().map(|t| t.name.clone()),
                };
                let failure = published.recording_failure.take();
                self.webhook(event);
                let record_name = self.record_name(&stream);
                self.send(
                    session,
                    ServerMessage::StreamStatus {
                        media_session_id,
                        name: stream.clone(),
                        status: StreamStatus::Publishing,
                        info: failure,
                        record_name,
                    },
                );
                if let Some(room) = room {
                    self.broadcast_room(&room, session, RoomEvent::Published { login, name: stream });
                }
            }
        }
    }

    /// `unPublishStream` / `stopStream`: idempotent; an id this session does not hold is ignored
    /// (the SDK stops its streams again after a `leave` that already ended them).
    pub(super) fn stop_by_client(&mut self, id: SessionId, media_session_id: &MediaSessionId) {
        let peer = self
            .sessions
            .get(&id)
            .and_then(|s| s.streams.get(media_session_id))
            .copied();
        if let Some(peer) = peer {
            self.end_peer(peer, EndReason::ClientStop);
        }
    }

    /// End a peer: free it on its worker, send its final status, and for a publisher tell the
    /// room and stop every player.
    pub(super) fn end_peer(&mut self, peer: PeerId, reason: EndReason) {
        let Some(info) = self.peers.remove(&peer) else {
            return;
        };
        self.effects
            .push(super::Effect::Worker(info.worker, Command::PeerRemove { peer }));
        if let Some(load) = self.worker_load.get_mut(info.worker.0) {
            *load = load.saturating_sub(1);
        }
        let session_open = match self.sessions.get_mut(&info.session) {
            Some(session) => {
                session.streams.remove(&info.media_session_id);
                reason != EndReason::SessionClosed
            }
            None => false,
        };
        let (status, status_info) = match (info.kind, reason) {
            (_, EndReason::Failed(text)) => (StreamStatus::Failed, Some(text.to_owned())),
            (PeerKind::Publisher, EndReason::Ended(text)) => {
                (StreamStatus::Unpublished, Some(text.to_owned()))
            }
            (PeerKind::Player, EndReason::Ended(text)) => (StreamStatus::Stopped, Some(text.to_owned())),
            (PeerKind::Publisher, _) => (StreamStatus::Unpublished, None),
            (PeerKind::Player, EndReason::PublisherGone) => (
                StreamStatus::Stopped,
                Some("Stopped by publisher stop".to_owned()),
            ),
            (PeerKind::Player, _) => (StreamStatus::Stopped, None),
        };
        if session_open {
            self.send_status(
                info.session,
                &info.media_session_id,
                &info.stream,
                status,
                status_info,
            );
        }
        match info.kind {
            PeerKind::Player => {
                if let Some(source) = self.published.get_mut(&info.stream) {
                    source.players.retain(|p| *p != peer);
                }
            }
            PeerKind::Publisher => {
                let Some(mut published) = self.published.remove(&info.stream) else {
                    return;
                };
                if let Some(recording) = published.recording.take() {
                    let (room, login) = (published.room.clone(), published.login.clone());
                    let writer_key = room
                        .as_ref()
                        .map_or_else(|| info.stream.to_string(), |r| r.to_string());
                    let worker = published.worker;
                    self.end_recording_with_stream(
                        room,
                        login,
                        worker,
                        recording,
                        writer_key,
                        Instant::now(),
                    );
                }
                if published.announced {
                    self.webhook(WebhookEvent::StreamUnpublished {
                        room: published
                            .room
                            .as_ref()
                            .map_or_else(String::new, ToString::to_string),
                        stream: info.stream.to_string(),
                        login: published.login.to_string(),
                        session_id: info.session.0,
                        reason: reason.webhook_reason().to_owned(),
                    });
                }
                if let (true, Some(room)) = (published.announced, &published.room) {
                    let (login, name) = (published.login.clone(), info.stream.clone());
                    let event = match reason {
                        EndReason::Failed(_) => RoomEvent::Failed { login, name },
                        _ => RoomEvent::Unpublished { login, name },
                    };
                    self.broadcast_room(room, info.session, event);
                }
                for player in published.players {
                    self.end_peer(player, EndReason::PublisherGone);
                }
            }
        }
    }
}
