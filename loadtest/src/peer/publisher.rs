//! The publishing role: `publishStream` with a send-only offer, then synthetic media.
//!
//! Owns [`PublishOptions`] and [`Publisher`]. The flow matches the SDK's `publish()`:
//! offer (audio m-line first, then video) → `publishStream` (with `custom: {name: ROOM}`
//! in a room) → `setRemoteSDP` answer → ICE/DTLS → `PUBLISHING`. Like a browser, media
//! starts as soon as DTLS is up, not when `PUBLISHING` arrives: a server that waits for
//! media before reporting `PUBLISHING` still works.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::codecs::PayloadTypes;
use super::core::{PeerCore, PeerState, PublisherMedia};
use super::driver::Command;
use super::outgoing::KEYFRAME_INTERVAL;
use super::recorder::PeerStats;
use super::stream::{StreamParams, StreamPeer};
use crate::error::Result;
use crate::media::{AudioCodec, VideoCodec};
use crate::wcs::{StreamStatus, StreamStatusEvent, WcsSession};

/// What to publish and how.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Stream name (see [`room_stream_name`] for the SDK's room naming).
    pub stream_name: String,
    /// Room, sent as `custom: {name: ROOM}`.
    pub room: Option<String>,
    /// Video codec; `None` for audio only.
    pub video: Option<VideoCodec>,
    /// Audio codec; `None` for video only.
    pub audio: Option<AudioCodec>,
    /// Picture size written into SPS / VP8 keyframes.
    pub width: u16,
    /// Picture height.
    pub height: u16,
    /// Payload type numbering of the offer.
    pub payload_types: PayloadTypes,
    /// `record` flag of `publishStream`.
    pub record: bool,
    /// Periodic keyframes (default [`KEYFRAME_INTERVAL`]); `None`: only the first frame
    /// and on PLI/FIR, as browsers do.
    pub keyframe_interval: Option<Duration>,
    /// Send media once connected (false: connect but stay silent).
    pub send_media: bool,
    /// Address of the local UDP socket (port chosen by the OS).
    pub bind_ip: IpAddr,
    /// Deadline for `setRemoteSDP` and for `PUBLISHING`.
    pub timeout: Duration,
    /// Keep the host candidate in the offer (false: strip it, as the SDK's offers have
    /// none and the ICE-lite server learns the address from connectivity checks).
    pub offer_candidates: bool,
    /// Send real encoded media (looped clips) instead of synthetic payloads.
    pub clips: Option<crate::media::encode::Clips>,
    /// Synthetic video frames sized for this bitrate (in payloads of at most
    /// [`crate::media::MAX_RTP_PAYLOAD`] bytes, paced like a browser) instead of the default
    /// one small packet per frame; ignored with `clips`.
    pub video_bitrate_bps: Option<u32>,
}

impl PublishOptions {
    /// H.264 + Opus, 640×480, outside any room.
    pub fn new(stream_name: impl Into<String>) -> Self {
        PublishOptions {
            stream_name: stream_name.into(),
            room: None,
            video: Some(VideoCodec::H264),
            audio: Some(AudioCodec::Opus),
            width: 640,
            height: 480,
            payload_types: PayloadTypes::default(),
            record: false,
            keyframe_interval: Some(KEYFRAME_INTERVAL),
            send_media: true,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            timeout: Duration::from_secs(10),
            offer_candidates: false,
            clips: None,
            video_bitrate_bps: None,
        }
    }

    /// Publishes into `room`.
    pub fn room(mut self, room: impl Into<String>) -> Self {
        self.room = Some(room.into());
        self
    }

    /// Sets the video codec (`None`: no video m-line).
    pub fn video(mut self, codec: Option<VideoCodec>) -> Self {
        self.video = codec;
        self
    }

    /// Sets the audio codec (`None`: no audio m-line).
    pub fn audio(mut self, codec: Option<AudioCodec>) -> Self {
        self.audio = codec;
        self
    }
}

/// The SDK's room stream name: `ROOM-LOGIN-XXXX` with four random hex digits.
pub fn room_stream_name(room: &str, login: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{room}-{login}-{}", id.get(..4).unwrap_or("0000"))
}

/// A published stream.
#[derive(Debug)]
pub struct Publisher {
    inner: StreamPeer,
}

/// Publishes and waits for `PUBLISHING` (see [`Publisher::publish`]).
pub async fn publish(session: &WcsSession, opts: PublishOptions) -> Result<Publisher> {
    Publisher::publish(session, opts).await
}

impl Publisher {
    /// Sends `publishStream`, applies the answer and starts the peer; returns without
    /// waiting for `PUBLISHING`. A `FAILED` before the answer is `Error::StreamFailed`.
    pub async fn start(session: &WcsSession, opts: PublishOptions) -> Result<Self> {
        let media = PublisherMedia {
            video: opts.video.map(|c| (c, opts.width, opts.height)),
            audio: opts.audio,
            payload_types: opts.payload_types,
            keyframe_interval: opts.keyframe_interval,
        };
        let params = StreamParams {
            name: &opts.stream_name,
            room: opts.room.as_deref(),
            published: true,
            has_audio: opts.audio.is_some(),
            has_video: opts.video.is_some(),
            record: opts.record,
            bind_ip: opts.bind_ip,
            timeout: opts.timeout,
            offer_candidates: opts.offer_candidates,
            log_max: 0,
        };
        let send = opts.send_media;
        let clips = opts.clips.clone();
        let bitrate = opts.video_bitrate_bps;
        let inner = StreamPeer::start(session, params, |local, now| {
            let (mut core, offer) = PeerCore::publisher(local, &media, now)?;
            core.set_sending(send);
            if let Some(clips) = clips {
                core.set_load_profile(crate::peer::outgoing::LoadProfile {
                    video_bitrate_bps: 500_000,
                    keyframe_factor: 1,
                    payload_max: crate::media::MAX_RTP_PAYLOAD,
                    stamp: false,
                    send_log: None,
                    clips: Some(clips),
                    pacing_factor: None,
                });
            } else if let Some(video_bitrate_bps) = bitrate {
                core.set_load_profile(crate::peer::outgoing::LoadProfile {
                    video_bitrate_bps,
                    keyframe_factor: 1,
                    payload_max: crate::media::MAX_RTP_PAYLOAD,
                    stamp: false,
                    send_log: None,
                    clips: None,
                    pacing_factor: Some(crate::peer::pacer::BROWSER_PACING_FACTOR),
                });
            }
            Ok((core, offer))
        })
        .await?;
        Ok(Publisher { inner })
    }

    /// [`Publisher::start`], then waits for `PUBLISHING`.
    pub async fn publish(session: &WcsSession, opts: PublishOptions) -> Result<Self> {
        let timeout = opts.timeout;
        let p = Self::start(session, opts).await?;
        p.wait_status(StreamStatus::Publishing, timeout).await?;
        Ok(p)
    }

    /// Stream name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The `mediaSessionId` of this stream.
    pub fn media_session_id(&self) -> &str {
        &self.inner.media_session_id
    }

    /// Counters (packets, keyframes, PLI/FIR received).
    pub fn stats(&self) -> PeerStats {
        self.inner.stats()
    }

    /// Peer connection state.
    pub fn state(&self) -> PeerState {
        self.inner.state()
    }

    /// The video codec the answer accepted (`None` if video was rejected or not offered).
    pub fn video_codec(&self) -> Option<VideoCodec> {
        self.inner.snapshot(|s| s.video_codec)
    }

    /// Waits for DTLS to be up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        self.inner.wait_connected(timeout).await
    }

    /// Waits until `pred` holds on the counters; returns them.
    pub async fn wait_stats(
        &self,
        timeout: Duration,
        pred: impl FnMut(&PeerStats) -> bool,
    ) -> Result<PeerStats> {
        self.inner.wait_stats(timeout, pred).await
    }

    /// The next status event of this stream.
    pub async fn next_status(&self, timeout: Duration) -> Result<StreamStatusEvent> {
        self.inner.next_status(timeout).await
    }

    /// Waits for `status`; a terminal status first is `Error::StreamFailed`.
    pub async fn wait_status(&self, status: StreamStatus, timeout: Duration) -> Result<StreamStatusEvent> {
        self.inner.wait_status(status, timeout).await
    }

    /// Sends a keyframe as the next frame.
    pub fn force_keyframe(&self) -> Result<()> {
        self.inner.driver.send(Command::ForceKeyframe)
    }

    /// Pauses or resumes media (the connection stays up).
    pub fn set_sending(&self, on: bool) -> Result<()> {
        self.inner.driver.send(Command::SetSending(on))
    }

    /// Closes the peer connection without any WCS message (the media path vanishes).
    pub fn close_media(&self) -> Result<()> {
        self.inner.driver.send(Command::Close)
    }

    /// Sends `unPublishStream` without waiting.
    pub fn send_stop(&self) -> Result<()> {
        self.inner.send_stop()
    }

    /// Sends `unPublishStream`, waits for the terminal status (`UNPUBLISHED` expected),
    /// and closes the peer.
    pub async fn stop(&self) -> Result<StreamStatusEvent> {
        self.inner.stop().await
    }
}
