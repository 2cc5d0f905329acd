//! `--target janus`: the same scenarios, media and measurements against Janus's VideoRoom
//! plugin, over its WebSocket JSON API.
//!
//! Mapping: every room of the plan (or, for the livestream and the audio room, one room per
//! run) is a VideoRoom room, created on first use. A publisher attaches a handle, joins as
//! `publisher`, and sends `publish` with its offer; Janus answers. A subscriber attaches a
//! handle per played stream, joins as `subscriber` to the publisher's feed, receives Janus's
//! offer, answers it (a [`PeerCore::answerer`]) and sends `start`. Offers and answers carry
//! their host candidates (Janus runs full ICE and learns nothing from checks alone), then a
//! trickle `completed`. The peers run in the same engine as against webcall.
//!
//! Janus gathers no ICE candidates on loopback interfaces, so against a Janus on 127.0.0.1
//! no media flows (ICE fails and the publisher's feed never becomes subscribable:
//! `428 No such feed`, retried until the deadline). `loadtest/compare.sh` runs Janus in a
//! network namespace reached over a veth pair instead.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use serde_json::{json, Value};

use super::engine::{EngineHandle, NewPeer};
use super::janus_api::JanusConn;
use super::slot::{Measure, PtMap, Role};
use crate::error::{Error, Result};
use crate::peer::{LoadProfile, PeerCore, PlayCodecs, PublisherMedia};

const PLUGIN: &str = "janus.plugin.videoroom";
/// Janus's error code for "room already exists".
const ROOM_EXISTS: &str = "427";
/// Janus's error code for "no such feed" (yet).
const NO_SUCH_FEED: &str = "428";
/// Pause between subscription attempts to a feed that is not up yet.
const FEED_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// The VideoRoom room id of a plan room (or of the run, for `None`).
pub fn room_id(tag: &str, room: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    (tag, room.unwrap_or("all")).hash(&mut h);
    h.finish() % 1_000_000_000 + 1
}

fn sdp_of(v: &Value) -> Result<String> {
    v.pointer("/jsep/sdp")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Protocol(format!("janus: no jsep in {v}")))
}

async fn ensure_room(conn: &JanusConn, handle: u64, room: u64, cfg_video: &str) -> Result<()> {
    let create = json!({
        "request": "create", "room": room, "publishers": 1000, "bitrate": 0,
        "fir_freq": 0, "audiocodec": "opus", "videocodec": cfg_video, "notify_joining": false,
    });
    match conn.message(handle, create, None).await {
        Ok(_) => Ok(()),
        Err(Error::Refused { info, .. }) if info.starts_with(ROOM_EXISTS) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Publishes into `room`; returns the publisher's feed id.
pub async fn publish(
    engine: &EngineHandle,
    conn: &JanusConn,
    room: u64,
    display: &str,
    media: &PublisherMedia,
    profile: LoadProfile,
    started: Instant,
) -> Result<u64> {
    let h = conn.attach(PLUGIN).await?;
    let codec = match media.video.map(|v| v.0) {
        Some(crate::media::VideoCodec::Vp8) => "vp8",
        _ => "h264",
    };
    ensure_room(conn, h, room, codec).await?;
    let join = json!({"request": "join", "ptype": "publisher", "room": room, "display": display});
    let joined = conn.message(h, join, None).await?;
    let feed = joined
        .pointer("/plugindata/data/id")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Protocol(format!("janus: no feed id in {joined}")))?;
    let local = engine.next_addr();
    let (mut core, offer) = PeerCore::publisher(local, media, Instant::now())?;
    core.set_load_profile(profile);
    let body = json!({"request": "publish", "audio": media.audio.is_some(), "video": media.video.is_some()});
    let answered = conn
        .message(h, body, Some(json!({"type": "offer", "sdp": offer})))
        .await?;
    core.accept_answer(&sdp_of(&answered)?)?;
    engine.add(NewPeer {
        core,
        role: Role::Publisher,
        local,
        started,
        pts: PtMap::new(media.payload_types),
        plays: None,
    })?;
    conn.trickle_done(h)?;
    Ok(feed)
}

/// Subscribes to `feed` in `room`, answering Janus's offer.
pub async fn play(
    engine: &EngineHandle,
    conn: &JanusConn,
    room: u64,
    feed: u64,
    accept: &PlayCodecs,
    measure: Measure,
    started: Instant,
) -> Result<()> {
    let h = conn.attach(PLUGIN).await?;
    let join = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": feed}]});
    // A feed exists for subscribers only once its publisher's PeerConnection is up.
    let deadline = Instant::now() + conn.timeout();
    let attached = loop {
        match conn.message(h, join.clone(), None).await {
            Err(Error::Refused { info, .. })
                if info.starts_with(NO_SUCH_FEED) && Instant::now() < deadline =>
            {
                tokio::time::sleep(FEED_RETRY).await;
            }
            other => break other?,
        }
    };
    let offer = sdp_of(&attached)?;
    let local = engine.next_addr();
    let (mut core, answer) = PeerCore::answerer(local, &offer, accept, 0, Instant::now())?;
    core.set_send_log(measure.send_log);
    engine.add(NewPeer {
        core,
        role: Role::Subscriber {
            decrypt: measure.decrypt,
        },
        local,
        started,
        plays: None,
        pts: PtMap::from_sdp(&offer),
    })?;
    let start = json!({"request": "start", "room": room});
    conn.message(h, start, Some(json!({"type": "answer", "sdp": answer})))
        .await?;
    conn.trickle_done(h)?;
    Ok(())
}
