//! Signalling of the load's streams over the WCS WebSocket protocol, with the peers handed
//! to the load engine instead of a thread each.
//!
//! Owns the two flows a browser runs per stream: `publishStream` with a send-only offer and
//! `playStream` with a receive-only offer; each waits for the `setRemoteSDP` answer, applies
//! it, gives the [`PeerCore`] to the engine (ICE and DTLS start there) and then waits for
//! `PUBLISHING` / `PLAYING`. Offers carry no candidates, like the SDK's (the ICE-lite server
//! learns each peer's address from its checks). A terminal status on the way is an error
//! carrying the server's `info`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::engine::{EngineHandle, NewPeer};
use super::slot::{Measure, PtMap, Role};
use crate::error::{Error, Result};
use crate::peer::stream::strip_candidates;
use crate::peer::{LoadProfile, PayloadTypes, PeerCore, PlayCodecs, PublisherMedia};
use crate::wcs::messages::{self, StreamRequest};
use crate::wcs::session::stream_failed;
use crate::wcs::{StreamStatus, WcsSession};

/// One stream to set up.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec<'a> {
    /// Stream name.
    pub name: &'a str,
    /// Room, if the stream lives in one.
    pub room: Option<&'a str>,
    /// Deadline of each wait.
    pub timeout: Duration,
    /// When the participant began joining (join time counts from here).
    pub started: Instant,
    /// `record` flag of `publishStream` (the server records the stream).
    pub record: bool,
}

/// Publishes `media` as `spec.name`; returns once the server reports `PUBLISHING`.
pub async fn publish(
    engine: &EngineHandle,
    session: &WcsSession,
    spec: StreamSpec<'_>,
    media: &PublisherMedia,
    profile: LoadProfile,
) -> Result<SocketAddr> {
    let make = |local: SocketAddr, now: Instant| {
        let (mut core, offer) = PeerCore::publisher(local, media, now)?;
        core.set_load_profile(profile);
        Ok((core, offer))
    };
    let flags = (media.audio.is_some(), media.video.is_some());
    let pts = PtMap::new(media.payload_types);
    stream(
        engine,
        session,
        spec,
        true,
        flags,
        Role::Publisher,
        pts,
        None,
        make,
    )
    .await
}

/// Plays `spec.name` offering `accept`; returns once the server reports `PLAYING`.
pub async fn play(
    engine: &EngineHandle,
    session: &WcsSession,
    spec: StreamSpec<'_>,
    accept: &PlayCodecs,
    measure: Measure,
) -> Result<()> {
    let pts = PayloadTypes::default();
    let role = Role::Subscriber {
        decrypt: measure.decrypt,
    };
    let plays = measure.publisher;
    let make = |local: SocketAddr, now: Instant| {
        let (mut core, offer) = PeerCore::player(local, accept, &pts, 0, now)?;
        core.set_send_log(measure.send_log);
        Ok((core, offer))
    };
    stream(
        engine,
        session,
        spec,
        false,
        (true, true),
        role,
        PtMap::new(pts),
        plays,
        make,
    )
    .await
    .map(|_| ())
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    engine: &EngineHandle,
    session: &WcsSession,
    spec: StreamSpec<'_>,
    published: bool,
    (has_audio, has_video): (bool, bool),
    role: Role,
    pts: PtMap,
    plays: Option<std::net::Ipv4Addr>,
    make: impl FnOnce(SocketAddr, Instant) -> Result<(PeerCore, String)>,
) -> Result<SocketAddr> {
    let local = engine.next_addr();
    let (mut core, offer) = make(local, Instant::now())?;
    let offer = strip_candidates(&offer);
    let msid = uuid::Uuid::new_v4().to_string();
    let req = StreamRequest {
        media_session_id: &msid,
        name: spec.name,
        sdp: &offer,
        room: spec.room,
        has_video,
        has_audio,
        record: published && spec.record,
    };
    let text = match published {
        true => messages::publish_stream(&req),
        false => messages::play_stream(&req),
    };
    session.watch_stream(&msid);
    let result = async {
        session.send_text(&text)?;
        let answer = session.wait_remote_sdp(&msid, spec.timeout).await?;
        core.accept_answer(&answer)?;
        engine.add(NewPeer {
            core,
            role,
            local,
            started: spec.started,
            pts,
            plays,
        })?;
        let want = match published {
            true => StreamStatus::Publishing,
            false => StreamStatus::Playing,
        };
        let deadline = Instant::now() + spec.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let s = session.next_stream_status(&msid, left).await?;
            if s.status == want {
                return Ok(local);
            }
            if s.status.is_terminal() {
                return Err(stream_failed(&s));
            }
        }
    }
    .await;
    session.unwatch_stream(&msid);
    result.map_err(|e| match e {
        Error::Timeout { what, after } => Error::Timeout {
            what: format!("{what} of {}", spec.name),
            after,
        },
        other => other,
    })
}
