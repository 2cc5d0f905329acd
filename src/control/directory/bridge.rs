//! The directory's entry points for the RTMP bridge: an RTMP connection is a session like a
//! WebSocket's (its frames go to the bridge's task instead of a socket), an encoder joins its
//! room and publishes through an ingest endpoint, and an RTMP player of a browser's stream
//! plays it through a tap.
//!
//! Runs on the control thread. Invariants: a second RTMP publish of the same room login or
//! stream name closes the older RTMP session first (an encoder that reconnects is not locked
//! out by its own stale connection), while a browser's login or name is never taken over;
//! an RTMP session is in `sessions` like any other, so closing it frees all it holds.

use std::time::Instant;

use super::recording::{tapped_audio, video_codec};
use super::{Directory, Effect, PeerKind, Published, RoomError, Session, SessionId, StreamError};
use crate::ids::{MediaSessionId, PeerId, RoomName, StreamName, WorkerId};
use crate::record::frame::VideoCodec;
use crate::sdp::StreamTracks;
use crate::worker::commands::{EndpointSpec, PeerRole};
use crate::worker::endpoint::BridgeTapSpec;

/// Where an encoder's ingest lives: the bridge sends its packets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestStarted {
    pub peer: PeerId,
    pub worker: WorkerId,
}

/// What an RTMP player gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeSource {
    /// A stream another RTMP connection publishes: the bridge passes its FLV through.
    Rtmp(StreamName),
    /// A browser's stream: a tap now feeds the player's queue.
    Tap { name: StreamName, peer: PeerId },
}

impl Directory {
    /// An RTMP connection's session, established with its login and what its token (or
    /// `--auth none`) grants.
    pub fn open_bridge_session(&mut self, id: SessionId, grants: crate::auth::Grants) {
        let session = Session {
            login: Some(grants.login.clone()),
            grants: Some(grants),
            wcs_id: super::recording::wcs_session_id(),
            bridge: true,
            ..Session::default()
        };
        self.sessions.insert(id, session);
    }

    /// A WHIP or WHEP resource's session: like an RTMP connection's (it takes over from an older
    /// one with its login, and a viewer names its room instead of joining), but its media is a
    /// WebRTC peer's.
    pub fn open_whip_session(&mut self, id: SessionId, grants: crate::auth::Grants) {
        self.open_bridge_session(id, grants);
        if let Some(session) = self.sessions.get_mut(&id) {
            session.whip = true;
        }
    }

    /// Join `room` as an RTMP encoder, taking over from an RTMP session with the same login
    /// (`--duplicate-login reject-new` refuses the newer instead).
    pub fn join_bridge(&mut self, id: SessionId, room: &RoomName) -> Result<(), RoomError> {
        self.check_join_grant(id, room, false)?;
        let login = self.login_of(id).ok_or(RoomError::NotEstablished)?.clone();
        let holder = self
            .rooms
            .get(room)
            .and_then(|r| r.participants.iter().find(|(l, _)| *l == login))
            .map(|(_, session)| *session);
        if let Some(holder) = holder.filter(|h| *h != id && self.is_bridge(*h)) {
            if self.limits.duplicate_login == crate::config::DuplicateLogin::RejectNew {
                return Err(RoomError::LoginTaken {
                    login,
                    room: room.clone(),
                });
            }
            self.take_over(holder);
        }
        self.join(id, room)
    }

    /// Publish an encoder's stream through an ingest endpoint. It is announced (`PUBLISHING`,
    /// `PUBLISHED`) when the worker reports its first packets.
    pub fn publish_ingest(
        &mut self,
        id: SessionId,
        media_session_id: &MediaSessionId,
        name: &StreamName,
        room: Option<&RoomName>,
        tracks: StreamTracks,
        now: Instant,
    ) -> Result<IngestStarted, StreamError> {
        let login = self.check_new_stream(id, room)?;
        if self.drain_refusal().is_some() {
            return Err(StreamError::ShuttingDown);
        }
        self.check_publish_grant(id, name.as_str(), room, &tracks, false)?;
        if let Some(existing) = self.published.get(name) {
            let holder = self.peers.get(&existing.peer).map(|info| info.session);
            match holder {
                Some(holder) if holder != id && self.is_bridge(holder) => self.take_over(holder),
                _ => return Err(StreamError::NameInUse),
            }
        }
        let worker = self.stream_worker(room)?;
        let role = (PeerKind::Publisher, PeerRole::Publisher);
        let peer = self.add_endpoint(
            id,
            media_session_id,
            name,
            worker,
            role,
            tracks.clone(),
            EndpointSpec::Ingest,
        );
        self.published.insert(
            name.clone(),
            Published {
                peer,
                login,
                room: room.cloned(),
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
        if self.wants_recording(id, room, false) {
            if let Err(error) = self.start_recording(name, now) {
                tracing::warn!(stream = %name, %error, "recording not started");
            }
        }
        Ok(IngestStarted { peer, worker })
    }

    /// The stream an RTMP player of `wanted` gets: in a room, the stream of that name there,
    /// else participant `wanted`'s camera (its first stream whose name does not say
    /// "screen"); outside rooms, the plain stream of that name.
    pub fn resolve_bridge_stream(&self, room: Option<&RoomName>, wanted: &str) -> Option<StreamName> {
        let exact = StreamName::new(wanted);
        if let Some(published) = self.published.get(&exact) {
            if published.room.as_ref() == room {
                return Some(exact);
            }
        }
        let room = room?;
        let mut candidates: Vec<&StreamName> = self
            .published
            .iter()
            .filter(|(_, p)| p.room.as_ref() == Some(room) && p.login.as_str() == wanted)
            .map(|(name, _)| name)
            .collect();
        candidates.sort_by_key(|name| name.as_str().to_ascii_lowercase().contains("screen"));
        candidates.first().map(|name| (*name).clone())
    }

    /// Play `name` for an RTMP player session: a stream fed by RTMP passes through the bridge;
    /// a browser's H.264 stream gets a tap whose frames go to `frames`.
    pub fn play_bridge(
        &mut self,
        id: SessionId,
        media_session_id: &MediaSessionId,
        name: &StreamName,
        frames: tokio::sync::mpsc::Sender<crate::record::frame::TapFrame>,
        dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<BridgeSource, StreamError> {
        self.check_new_stream(id, None)?;
        let source = self.published.get(name).ok_or(StreamError::NotFound)?;
        self.check_play_grant(id, source.room.as_ref())?;
        let source_session = self.peers.get(&source.peer).map(|info| info.session);
        if source_session.is_some_and(|s| self.is_rtmp(s)) {
            return Ok(BridgeSource::Rtmp(name.clone()));
        }
        let video = video_codec(&source.tracks);
        if video == Some(VideoCodec::Vp8) {
            return Err(StreamError::Vp8OverRtmp);
        }
        let audio = tapped_audio(&source.tracks);
        if video.is_none() && audio.is_none() {
            return Err(StreamError::Negotiation(
                crate::sdp::NegotiationError::NoCommonCodecs,
            ));
        }
        let (worker, publisher, tracks) = (source.worker, source.peer, source.tracks.clone());
        let spec = BridgeTapSpec {
            frames,
            video,
            audio,
            dropped,
        };
        let role = (PeerKind::Player, PeerRole::Player { publisher });
        let spec = EndpointSpec::BridgeTap(Box::new(spec));
        let peer = self.add_endpoint(id, media_session_id, name, worker, role, tracks, spec);
        if let Some(source) = self.published.get_mut(name) {
            source.players.push(peer);
        }
        Ok(BridgeSource::Tap {
            name: name.clone(),
            peer,
        })
    }

    /// Whether anything on a worker takes the stream's packets (a player, a tap, a recording):
    /// without one, an encoder's audio need not be transcoded.
    pub fn has_listeners(&self, name: &StreamName) -> bool {
        self.published
            .get(name)
            .is_some_and(|p| !p.players.is_empty() || p.recording.is_some())
    }

    pub fn is_published(&self, name: &StreamName) -> bool {
        self.published.contains_key(name)
    }

    /// Whether the stream's publisher is still this session's peer `peer`.
    pub fn publishes(&self, name: &StreamName, peer: PeerId) -> bool {
        self.published.get(name).is_some_and(|p| p.peer == peer)
    }

    /// Whether any RTMP connection is in `room` (our SDK then prefers H.264 there).
    pub fn room_has_bridge(&self, room: &RoomName) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|r| r.participants.iter().any(|(_, s)| self.is_rtmp(*s)))
    }

    /// An RTMP connection (not a WHIP/WHEP resource).
    pub(super) fn is_rtmp(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| s.bridge && !s.whip)
    }

    pub(super) fn is_bridge(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| s.bridge)
    }

    fn take_over(&mut self, holder: SessionId) {
        tracing::info!(session = %holder, "RTMP connection taken over by a newer one");
        self.close_session(holder);
        self.effects.push(Effect::Disconnect(holder));
    }
}
