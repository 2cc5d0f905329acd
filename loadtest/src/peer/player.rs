//! The playing role: `playStream` with a receive-only offer, then a log of what arrives.
//!
//! Owns [`PlayOptions`] and [`Player`]. The offer lists the codecs of [`PlayCodecs`] (a
//! browser's list by default, or fewer to provoke `No common codecs`), audio m-line first.
//! Every received RTP packet is logged (see `recorder`); `request_keyframe` sends a PLI
//! on the incoming video stream through str0m.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::codecs::{PayloadTypes, PlayCodecs};
use super::core::{PeerCore, PeerState};
use super::driver::Command;
use super::recorder::{PeerStats, ReceivedPacket};
use super::stream::{StreamParams, StreamPeer};
use crate::error::{Error, Result};
use crate::media::Kind;
use crate::wcs::{StreamStatus, StreamStatusEvent, WcsSession};

/// What to play and how.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// Stream name.
    pub stream_name: String,
    /// Room, sent as `custom: {name: ROOM}`.
    pub room: Option<String>,
    /// Codecs offered.
    pub accept: PlayCodecs,
    /// Payload type numbering of the offer.
    pub payload_types: PayloadTypes,
    /// Address of the local UDP socket.
    pub bind_ip: IpAddr,
    /// Deadline for `setRemoteSDP` and for `PLAYING`.
    pub timeout: Duration,
    /// Most received packets kept in the log (counters keep counting past it).
    pub log_max: usize,
    /// Keep the host candidate in the offer (false: strip it, as the SDK's offers have
    /// none and the ICE-lite server learns the address from connectivity checks).
    pub offer_candidates: bool,
    /// Drop every Nth incoming video RTP datagram before the peer sees it (a lossy path),
    /// so the server's retransmissions can be tested.
    pub drop_video_every: Option<u32>,
}

impl PlayOptions {
    /// Browser codecs, outside any room.
    pub fn new(stream_name: impl Into<String>) -> Self {
        PlayOptions {
            stream_name: stream_name.into(),
            room: None,
            accept: PlayCodecs::browser(),
            payload_types: PayloadTypes::default(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            timeout: Duration::from_secs(10),
            offer_candidates: false,
            log_max: 200_000,
            drop_video_every: None,
        }
    }

    /// Drops every `every`th incoming video RTP datagram (see [`PlayOptions::drop_video_every`]).
    pub fn drop_video_every(mut self, every: u32) -> Self {
        self.drop_video_every = Some(every);
        self
    }

    /// Plays inside `room`.
    pub fn room(mut self, room: impl Into<String>) -> Self {
        self.room = Some(room.into());
        self
    }

    /// Offers only these codecs.
    pub fn accept(mut self, accept: PlayCodecs) -> Self {
        self.accept = accept;
        self
    }
}

/// A played stream.
#[derive(Debug)]
pub struct Player {
    inner: StreamPeer,
}

/// Plays `stream_name` and waits for `PLAYING`; a `FAILED` (e.g. `No common codecs`,
/// `Stream not found`) is `Error::StreamFailed` with the server's `info`.
pub async fn play(
    session: &WcsSession,
    stream_name: &str,
    room: Option<String>,
    accept: PlayCodecs,
) -> Result<Player> {
    let mut opts = PlayOptions::new(stream_name).accept(accept);
    opts.room = room;
    Player::play(session, opts).await
}

impl Player {
    /// Sends `playStream`, applies the answer, starts the peer; does not wait for `PLAYING`.
    pub async fn start(session: &WcsSession, opts: PlayOptions) -> Result<Self> {
        let params = StreamParams {
            name: &opts.stream_name,
            room: opts.room.as_deref(),
            published: false,
            has_audio: true,
            has_video: true,
            record: false,
            bind_ip: opts.bind_ip,
            timeout: opts.timeout,
            offer_candidates: opts.offer_candidates,
            log_max: opts.log_max,
        };
        let (accept, pts, log_max) = (&opts.accept, &opts.payload_types, opts.log_max);
        let drop_video_every = opts.drop_video_every;
        let inner = StreamPeer::start(session, params, |local, now| {
            let (mut core, offer) = PeerCore::player(local, accept, pts, log_max, now)?;
            if let Some(every) = drop_video_every {
                core.inject_video_loss(every);
            }
            Ok((core, offer))
        })
        .await?;
        Ok(Player { inner })
    }

    /// [`Player::start`], then waits for `PLAYING`.
    pub async fn play(session: &WcsSession, opts: PlayOptions) -> Result<Self> {
        let timeout = opts.timeout;
        let p = Self::start(session, opts).await?;
        p.wait_status(StreamStatus::Playing, timeout).await?;
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

    /// Counters (packets per kind, keyframes, PLI sent).
    pub fn stats(&self) -> PeerStats {
        self.inner.stats()
    }

    /// Peer connection state.
    pub fn state(&self) -> PeerState {
        self.inner.state()
    }

    /// A copy of every logged packet so far.
    pub fn received(&self) -> Vec<ReceivedPacket> {
        self.inner.snapshot(|s| s.received.clone())
    }

    /// Takes the logged packets (the log restarts empty).
    pub fn take_received(&self) -> Vec<ReceivedPacket> {
        self.inner.snapshot(|s| std::mem::take(&mut s.received))
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

    /// Waits until at least `n` packets of `kind` have arrived in total.
    pub async fn wait_packets(&self, kind: Kind, n: u64, timeout: Duration) -> Result<PeerStats> {
        self.wait_stats(timeout, |s| match kind {
            Kind::Audio => s.audio_packets_received >= n,
            Kind::Video => s.video_packets_received >= n,
        })
        .await
    }

    /// Waits for a logged packet matching `pred` (searching the whole log) and returns it.
    pub async fn wait_received(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&ReceivedPacket) -> bool,
    ) -> Result<ReceivedPacket> {
        self.inner
            .driver
            .wait_until("a matching packet", timeout, |s| {
                s.received.iter().find(|p| pred(p)).cloned()
            })
            .await
    }

    /// Sends a PLI for the incoming video. Fails while no video packet has arrived.
    pub async fn request_keyframe(&self) -> Result<()> {
        self.keyframe_request(false).await
    }

    /// Sends a FIR for the incoming video. Fails while no video packet has arrived.
    pub async fn request_fir(&self) -> Result<()> {
        self.keyframe_request(true).await
    }

    async fn keyframe_request(&self, fir: bool) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.driver.send(Command::RequestKeyframe(fir, tx))?;
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(Error::InvalidArgument("no incoming video stream yet".into())),
            Ok(Err(_)) => Err(Error::PeerGone),
            Err(_) => Err(Error::timeout("keyframe request", Duration::from_secs(2))),
        }
    }

    /// The next status event of this stream.
    pub async fn next_status(&self, timeout: Duration) -> Result<StreamStatusEvent> {
        self.inner.next_status(timeout).await
    }

    /// Waits for `status`; a terminal status first is `Error::StreamFailed` (waiting for
    /// `STOPPED` itself is fine).
    pub async fn wait_status(&self, status: StreamStatus, timeout: Duration) -> Result<StreamStatusEvent> {
        self.inner.wait_status(status, timeout).await
    }

    /// Closes the peer connection (DTLS close_notify) without any WCS message.
    pub fn close_media(&self) -> Result<()> {
        self.inner.driver.send(Command::Close)
    }

    /// Stops the peer connection without a word to anyone: no close_notify, no WCS message.
    pub fn vanish_media(&self) -> Result<()> {
        self.inner.driver.send(Command::Vanish)
    }

    /// Sends `stopStream` without waiting.
    pub fn send_stop(&self) -> Result<()> {
        self.inner.send_stop()
    }

    /// Sends `stopStream`, waits for the terminal status (`STOPPED` expected), closes the
    /// peer.
    pub async fn stop(&self) -> Result<StreamStatusEvent> {
        self.inner.stop().await
    }
}
