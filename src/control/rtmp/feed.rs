//! What an RTMP player or push sends: a stream's FLV tags, from one of two sources. A stream
//! an RTMP encoder publishes is its own tags (from [`super::sources`]); a browser's stream
//! comes from a tap on its worker as frames, made into FLV here: H.264 access units as AVC
//! pictures (the sequence header re-sent only when the parameter sets change), Opus as AAC
//! from an audio thread, G.711 as it is.
//!
//! Control thread, one per player. Invariants: the first video tag a player gets is a
//! keyframe preceded by its sequence header; timestamps are milliseconds from the first
//! frame, each track following its own RTP clock from the arrival of its first frame (so
//! audio and video stay aligned to within that first arrival's jitter); dropping a feed
//! closes its directory session (which removes the tap).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::audio::ToAacThread;
use super::sources::{FeedItem, FlvTag, TagKind, PLAYER_QUEUE_TAGS};
use super::Bridge;
use crate::auth::Grants;
use crate::control::directory::{BridgeSource, StreamError};
use crate::control::hub::lock;
use crate::control::signaling::protocol::{ServerMessage, StreamStatus};
use crate::ids::{Login, MediaSessionId, RoomName, SessionId, StreamName};
use crate::media::clock::RtpUnwrapper;
use crate::media::flv;
use crate::media::h264::{nal_type, NAL_TYPE_PPS, NAL_TYPE_SPS};
use crate::media::opus_to_aac::AacOut;
use crate::record::frame::{FramePayload, TapFrame};

/// Frames a tap queues for the bridge (about two seconds of 30 fps video with its audio).
pub const TAP_QUEUE_FRAMES: usize = 256;

pub enum Feed {
    Rtmp {
        name: String,
        queue: mpsc::Receiver<FeedItem>,
        bridge: Arc<Bridge>,
    },
    Tap(Box<TapFeed>),
}

impl Feed {
    /// Open the stream `wanted` (in `room`, or a plain stream) for a player.
    pub fn open(
        bridge: &Arc<Bridge>,
        room: Option<&RoomName>,
        wanted: &str,
        grants: Grants,
    ) -> Result<(Feed, StreamName), StreamError> {
        let mut hub = lock(&bridge.hub);
        let name = hub
            .directory()
            .resolve_bridge_stream(room, wanted)
            .ok_or(StreamError::NotFound)?;
        Self::open_name(bridge, &mut hub, name, grants)
    }

    /// Open a stream by its exact name, in a room or not (a push, which an administrator
    /// started: it may play anything).
    pub fn open_exact(bridge: &Arc<Bridge>, name: &str) -> Result<(Feed, StreamName), StreamError> {
        let mut hub = lock(&bridge.hub);
        let name = StreamName::new(name);
        if !hub.directory().is_published(&name) {
            return Err(StreamError::NotFound);
        }
        let grants = Grants::everything(Login::new(format!("rtmp-push-{}", bridge.next_id())));
        Self::open_name(bridge, &mut hub, name, grants)
    }

    fn open_name(
        bridge: &Arc<Bridge>,
        hub: &mut crate::control::hub::Hub,
        name: StreamName,
        grants: Grants,
    ) -> Result<(Feed, StreamName), StreamError> {
        let (outbox, statuses) = mpsc::channel(64);
        let session = hub.open_bridge_session(grants, outbox);
        let (frames, frames_rx) = mpsc::channel(TAP_QUEUE_FRAMES);
        let media_session_id = MediaSessionId::new(uuid::Uuid::new_v4().to_string());
        let dropped = bridge.counters.tap_frames_dropped.clone();
        let played =
            hub.with_directory(|d| d.play_bridge(session, &media_session_id, &name, frames, dropped));
        match played {
            Ok(BridgeSource::Rtmp(name)) => {
                hub.close_session(session);
                let queue = lock_sources(bridge).subscribe(name.as_str());
                Ok((
                    Feed::Rtmp {
                        name: name.as_str().to_owned(),
                        queue,
                        bridge: bridge.clone(),
                    },
                    name,
                ))
            }
            Ok(BridgeSource::Tap { name, .. }) => {
                let feed = TapFeed {
                    bridge: bridge.clone(),
                    session,
                    frames: frames_rx,
                    statuses,
                    ready: VecDeque::new(),
                    base: None,
                    video: TrackClock::default(),
                    audio: TrackClock::default(),
                    sps: None,
                    pps: None,
                    started: false,
                    aac: None,
                    aac_out: None,
                    aac_header_sent: false,
                };
                Ok((Feed::Tap(Box::new(feed)), name))
            }
            Err(error) => {
                hub.close_session(session);
                Err(error)
            }
        }
    }

    /// An item that is ready now, without waiting (to batch a player's writes).
    pub fn try_next(&mut self) -> Option<FeedItem> {
        match self {
            Feed::Rtmp { queue, .. } => queue.try_recv().ok(),
            Feed::Tap(tap) => tap.ready.pop_front(),
        }
    }

    /// The next item for the player; `None` when the stream cannot feed it any more.
    pub async fn next(&mut self) -> Option<FeedItem> {
        match self {
            Feed::Rtmp { queue, .. } => queue.recv().await,
            Feed::Tap(tap) => tap.next().await,
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        match self {
            Feed::Rtmp { name, bridge, queue } => {
                queue.close();
                lock_sources(bridge).prune(name);
            }
            Feed::Tap(tap) => lock(&tap.bridge.hub).close_session(tap.session),
        }
    }
}

fn lock_sources(bridge: &Bridge) -> std::sync::MutexGuard<'_, super::sources::Sources> {
    bridge.sources.lock().unwrap_or_else(|p| p.into_inner())
}

/// Milliseconds of one track: its first frame's arrival, then its own RTP clock.
#[derive(Default)]
struct TrackClock {
    first: Option<(i64, u64)>,
    unwrapper: RtpUnwrapper,
}

impl TrackClock {
    fn ms(&mut self, rtp: u32, clock_rate: u32, arrival_ms: u64) -> u32 {
        let unwrapped = self.unwrapper.unwrap(rtp);
        let (first_rtp, first_ms) = *self.first.get_or_insert((unwrapped, arrival_ms));
        let since = unwrapped.saturating_sub(first_rtp).max(0) as u64 * 1000 / u64::from(clock_rate.max(1));
        (first_ms + since) as u32
    }
}

pub struct TapFeed {
    bridge: Arc<Bridge>,
    session: SessionId,
    frames: mpsc::Receiver<TapFrame>,
    /// The directory's statuses for the tap (its publisher stopped, it failed).
    statuses: mpsc::Receiver<ServerMessage>,
    ready: VecDeque<FeedItem>,
    base: Option<Instant>,
    video: TrackClock,
    audio: TrackClock,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// A keyframe went out (pictures before it are dropped).
    started: bool,
    aac: Option<ToAacThread>,
    aac_out: Option<mpsc::Receiver<AacOut>>,
    aac_header_sent: bool,
}

impl TapFeed {
    async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            tokio::select! {
                frame = self.frames.recv() => match frame {
                    Some(frame) => self.frame(frame),
                    None => return None, // the tap went with its publisher
                },
                status = self.statuses.recv() => match status {
                    // The tap ended: stopped with its publisher, or failed.
                    None
                    | Some(ServerMessage::StreamStatus {
                        status: StreamStatus::Stopped | StreamStatus::Failed | StreamStatus::Unpublished,
                        ..
                    }) => return None,
                    Some(_) => {}
                },
                aac = recv_aac(&mut self.aac_out) => match aac {
                    Some(out) => self.aac_frame(out),
                    None => self.aac_out = None,
                },
            }
        }
    }

    fn arrival_ms(&mut self, arrival: Instant) -> u64 {
        let base = *self.base.get_or_insert(arrival);
        arrival.saturating_duration_since(base).as_millis() as u64
    }

    fn frame(&mut self, frame: TapFrame) {
        let arrival_ms = self.arrival_ms(frame.arrival);
        match frame.payload {
            FramePayload::H264(nals) => {
                if !self.started && !frame.keyframe {
                    return;
                }
                let ms = self.video.ms(frame.rtp_ts, 90_000, arrival_ms);
                let mut pictures: Vec<&[u8]> = Vec::with_capacity(nals.len());
                let (mut sps, mut pps) = (None, None);
                for nal in &nals {
                    match nal_type(nal) {
                        Some(NAL_TYPE_SPS) => sps = Some(nal.clone()),
                        Some(NAL_TYPE_PPS) => pps = Some(nal.clone()),
                        _ => pictures.push(nal),
                    }
                }
                let changed = (sps.is_some() && sps != self.sps) || (pps.is_some() && pps != self.pps);
                if changed {
                    self.sps = sps.or(self.sps.take());
                    self.pps = pps.or(self.pps.take());
                }
                let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
                    return; // nothing decodable until the parameter sets came
                };
                if changed || !self.started {
                    self.push(TagKind::Video, ms, flv::avc_sequence_header(sps, pps), false);
                }
                self.started = true;
                self.push(
                    TagKind::Video,
                    ms,
                    flv::avc_picture(frame.keyframe, 0, pictures),
                    frame.keyframe,
                );
            }
            FramePayload::Opus(packet) => {
                let ms = self.audio.ms(frame.rtp_ts, 48_000, arrival_ms);
                if self.aac.is_none() {
                    match ToAacThread::spawn(2, self.bridge.counters.audio_frames_dropped.clone()) {
                        Ok((thread, out)) => {
                            self.aac = Some(thread);
                            self.aac_out = Some(out);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "no AAC encoder for an RTMP player; audio is left out");
                            return;
                        }
                    }
                }
                if let Some(thread) = &self.aac {
                    // The encoder's clock is the track's milliseconds at 48 kHz.
                    thread.push(&packet, ms.wrapping_mul(48));
                }
            }
            FramePayload::G711 { law, data } => {
                let ms = self.audio.ms(frame.rtp_ts, 8_000, arrival_ms);
                self.push(TagKind::Audio, ms, flv::g711(law, &data), false);
            }
            FramePayload::Vp8(_) => {}
        }
    }

    fn aac_frame(&mut self, out: AacOut) {
        if !self.aac_header_sent {
            let Some(config) = self.aac.as_ref().map(|t| t.config.to_bytes()) else {
                return;
            };
            self.aac_header_sent = true;
            self.push(
                TagKind::Audio,
                out.pts_ms,
                flv::aac_sequence_header(&config),
                false,
            );
        }
        self.push(TagKind::Audio, out.pts_ms, flv::aac_raw(&out.data), false);
    }

    fn push(&mut self, kind: TagKind, timestamp_ms: u32, body: Vec<u8>, keyframe: bool) {
        if self.ready.len() >= PLAYER_QUEUE_TAGS {
            self.ready.clear(); // far behind: start again from the next keyframe
            self.started = false;
        }
        self.ready.push_back(FeedItem::Tag(FlvTag::new(
            kind,
            timestamp_ms,
            Arc::from(body),
            keyframe,
        )));
    }
}

async fn recv_aac(out: &mut Option<mpsc::Receiver<AacOut>>) -> Option<AacOut> {
    match out {
        Some(out) => out.recv().await,
        None => std::future::pending().await,
    }
}
