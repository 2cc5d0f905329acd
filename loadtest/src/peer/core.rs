//! [`PeerCore`]: one client WebRTC peer connection, sans-IO, around a str0m `Rtc`.
//!
//! Owns the `Rtc` (RTP mode, full ICE, one host candidate), the offer/answer exchange, the
//! publisher's [`Outgoing`] media clock and the player's [`Recorder`]. It never reads the
//! clock or touches a socket: the caller feeds datagrams and time and sends what it polls.
//!
//! Driving contract (str0m's, extended with the media clock): after `new_*`,
//! `accept_answer`, `handle_receive`, `handle_timeout`, `request_keyframe` or `close`,
//! call [`PeerCore::poll_output`] until it returns [`PeerOutput::Timeout`]; call
//! `handle_timeout` no later than that instant. A str0m error ends the peer in
//! [`PeerState::Failed`] rather than propagating a panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::codecs::{self, PayloadTypes, PlayCodecs};
use super::loss::InjectedLoss;
use super::outgoing::Outgoing;
use super::recorder::{PeerStats, ReceivedPacket, Recorder};
use crate::error::{Error, Result};
use crate::media::{AudioCodec, VideoCodec, VideoSource};

#[path = "core_load.rs"]
mod load_ext;

/// Connection state of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    /// Offer made, no answer applied yet.
    New,
    /// Answer applied, ICE/DTLS in progress.
    Connecting,
    /// DTLS up, media may flow.
    Connected,
    /// ICE lost the path (may recover).
    Disconnected,
    /// Closed locally or by the remote.
    Closed,
    /// Ended by an error.
    Failed(String),
}

/// What the caller must do next.
#[derive(Debug)]
pub enum PeerOutput {
    /// Send this datagram.
    Transmit(Transmit),
    /// Call `handle_timeout` at this instant (or on the next datagram).
    Timeout(Instant),
}

/// What a publisher sends.
#[derive(Debug, Clone)]
pub struct PublisherMedia {
    /// Video codec and picture size, if any.
    pub video: Option<(VideoCodec, u16, u16)>,
    /// Audio codec, if any.
    pub audio: Option<AudioCodec>,
    /// Payload type numbering of the offer.
    pub payload_types: PayloadTypes,
    /// Periodic keyframes; `None`: only the first frame and on PLI/FIR, like a browser.
    pub keyframe_interval: Option<Duration>,
}

/// Installs str0m's crypto provider for the process (idempotent).
pub fn install_crypto_provider() {
    str0m::crypto::from_feature_flags().install_process_default();
}

/// One client peer connection (see the module docs for the driving contract).
#[derive(Debug)]
pub struct PeerCore {
    rtc: Rtc,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    state: PeerState,
    outgoing: Option<Outgoing>,
    recorder: Recorder,
    video_mid: Option<Mid>,
    stats: PeerStats,
    now: Instant,
    /// Incoming video dropped on purpose (tests of the server's repairs).
    injected_loss: Option<InjectedLoss>,
}

fn build(
    local: SocketAddr,
    video: &[VideoCodec],
    audio: &[AudioCodec],
    pts: &PayloadTypes,
    now: Instant,
) -> Result<Rtc> {
    install_crypto_provider();
    let mut cfg = Rtc::builder().set_rtp_mode(true);
    codecs::configure(cfg.codec_config(), video, audio, pts);
    let mut rtc = cfg.build(now);
    let cand = Candidate::host(local, "udp").map_err(|e| Error::Rtc(e.to_string()))?;
    rtc.add_local_candidate(cand);
    Ok(rtc)
}

impl PeerCore {
    fn offer(
        now: Instant,
        mut rtc: Rtc,
        local: SocketAddr,
        dir: Direction,
        audio: bool,
        video: bool,
        log_max: usize,
    ) -> Result<(Self, String, Option<Mid>, Option<Mid>)> {
        let mut recorder = Recorder::new(log_max);
        let mut api = rtc.sdp_api();
        let stream_id = uuid::Uuid::new_v4().simple().to_string();
        let amid = audio.then(|| api.add_media(MediaKind::Audio, dir, Some(stream_id.clone()), None, None));
        let vmid = video.then(|| api.add_media(MediaKind::Video, dir, Some(stream_id), None, None));
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| Error::InvalidArgument("an offer needs audio or video".into()))?;
        if let Some(m) = amid {
            recorder.add_mid(m, MediaKind::Audio);
        }
        if let Some(m) = vmid {
            recorder.add_mid(m, MediaKind::Video);
        }
        let core = PeerCore {
            rtc,
            local,
            pending: Some(pending),
            state: PeerState::New,
            outgoing: None,
            recorder,
            video_mid: vmid,
            stats: PeerStats::default(),
            now,
            injected_loss: None,
        };
        Ok((core, offer.to_sdp_string(), amid, vmid))
    }

    /// A publisher with send-only m-lines (audio first, like a browser); returns the offer.
    pub fn publisher(local: SocketAddr, media: &PublisherMedia, now: Instant) -> Result<(Self, String)> {
        Self::publisher_seeded(local, media, uuid::Uuid::new_v4().as_u64_pair().0, now)
    }

    /// [`Self::publisher`] with the media clock's phase and the RTP sequence and timestamp
    /// starts drawn from `seed`, so a simulation replays exactly.
    pub fn publisher_seeded(
        local: SocketAddr,
        media: &PublisherMedia,
        seed: u64,
        now: Instant,
    ) -> Result<(Self, String)> {
        let video: Vec<_> = media.video.iter().map(|v| v.0).collect();
        let audio: Vec<_> = media.audio.iter().copied().collect();
        let rtc = build(local, &video, &audio, &media.payload_types, now)?;
        let dir = Direction::SendOnly;
        let (mut core, sdp, amid, vmid) = Self::offer(
            now,
            rtc,
            local,
            dir,
            media.audio.is_some(),
            media.video.is_some(),
            0,
        )?;
        let video = vmid
            .zip(media.video)
            .map(|(m, (c, w, h))| (m, VideoSource::new(c, w, h)));
        let audio = amid.zip(media.audio);
        core.outgoing = Some(Outgoing::new(video, audio, media.keyframe_interval, seed));
        Ok((core, sdp))
    }

    /// A player with receive-only m-lines listing `accept`; returns the offer.
    /// At most `log_max` received packets are kept between two `take_received` calls.
    pub fn player(
        local: SocketAddr,
        accept: &PlayCodecs,
        pts: &PayloadTypes,
        log_max: usize,
        now: Instant,
    ) -> Result<(Self, String)> {
        let rtc = build(local, &accept.video, &accept.audio, pts, now)?;
        let (core, sdp, _, _) = Self::offer(
            now,
            rtc,
            local,
            Direction::RecvOnly,
            !accept.audio.is_empty(),
            !accept.video.is_empty(),
            log_max,
        )?;
        Ok((core, sdp))
    }

    /// Drop every `every`th incoming video RTP datagram before str0m sees it, as a lossy path
    /// would; str0m NACKs the gaps and the server's retransmissions fill them.
    pub fn inject_video_loss(&mut self, every: u32) {
        self.injected_loss = Some(InjectedLoss::every(every));
    }

    /// Applies the server's answer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<()> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| Error::Sdp("no pending offer".into()))?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| Error::Sdp(e.to_string()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        if let Some(out) = &mut self.outgoing {
            out.bind(&self.rtc)?;
        }
        self.state = PeerState::Connecting;
        Ok(())
    }

    /// Feeds one received datagram. Unparsable datagrams are ignored.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> Result<()> {
        if let Some(loss) = &mut self.injected_loss {
            if loss.drops(data) {
                self.stats.video_datagrams_dropped_on_purpose = loss.dropped();
                return Ok(());
            }
        }
        let Ok(r) = Receive::new(Protocol::Udp, source, self.local, data) else {
            return Ok(());
        };
        self.now = self.now.max(now);
        if !self.rtc.is_alive() {
            return Ok(());
        }
        let res = self.rtc.handle_input(Input::Receive(now, r));
        self.check(res)
    }

    /// Advances time: str0m's timers and the media clock.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<()> {
        self.now = self.now.max(now);
        if !self.rtc.is_alive() {
            return Ok(());
        }
        let res = self.rtc.handle_input(Input::Timeout(now));
        self.check(res)?;
        if self.state == PeerState::Connected {
            if let Some(out) = &mut self.outgoing {
                let res = out.tick(&mut self.rtc, now, &mut self.stats);
                self.check(res)?;
            }
        }
        Ok(())
    }

    fn check<T>(&mut self, res: std::result::Result<T, impl Into<Error>>) -> Result<T> {
        res.map_err(|e| {
            let e: Error = e.into();
            self.state = PeerState::Failed(e.to_string());
            self.rtc.disconnect();
            e
        })
    }

    /// Next datagram to send, or when to call `handle_timeout`.
    pub fn poll_output(&mut self) -> Result<PeerOutput> {
        loop {
            if !self.rtc.is_alive() {
                if !matches!(self.state, PeerState::Failed(_)) {
                    self.state = PeerState::Closed;
                }
                return Ok(PeerOutput::Timeout(self.now + Duration::from_secs(3600)));
            }
            let out = self.rtc.poll_output();
            match self.check(out)? {
                Output::Transmit(t) => return Ok(PeerOutput::Transmit(t)),
                Output::Timeout(t) => {
                    let media = self.outgoing.as_ref().and_then(|o| o.next_deadline());
                    return Ok(PeerOutput::Timeout(media.map_or(t, |m| m.min(t))));
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.state = PeerState::Connected;
                if let Some(out) = &mut self.outgoing {
                    out.start(self.now);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.state = PeerState::Disconnected;
            }
            Event::IceConnectionStateChange(IceConnectionState::Connected)
                if self.state == PeerState::Disconnected =>
            {
                self.state = PeerState::Connected;
            }
            Event::Closed => self.state = PeerState::Closed,
            Event::KeyframeRequest(req) => {
                match req.kind {
                    KeyframeRequestKind::Pli => self.stats.pli_received += 1,
                    KeyframeRequestKind::Fir => self.stats.fir_received += 1,
                }
                if let Some(out) = &mut self.outgoing {
                    out.request_keyframe();
                }
            }
            Event::RtpPacket(p) => self.recorder.on_packet(&mut self.rtc, p, &mut self.stats),
            _ => {}
        }
    }

    /// Sends a PLI (or, with `fir`, a FIR) for the incoming video stream. False when no
    /// video has arrived yet.
    pub fn request_keyframe(&mut self, fir: bool) -> bool {
        let Some(mid) = self.video_mid else {
            return false;
        };
        let mut api = self.rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(mid, None) else {
            return false;
        };
        if fir {
            rx.request_keyframe(KeyframeRequestKind::Fir);
            self.stats.fir_sent += 1;
        } else {
            rx.request_keyframe(KeyframeRequestKind::Pli);
            self.stats.pli_sent += 1;
        }
        true
    }

    /// Publisher: make the next video frame a keyframe.
    pub fn force_keyframe(&mut self) {
        if let Some(out) = &mut self.outgoing {
            out.request_keyframe();
        }
    }

    /// Publisher: pause or resume writing media (the connection stays up).
    pub fn set_sending(&mut self, on: bool) {
        if let Some(out) = &mut self.outgoing {
            out.sending = on;
        }
    }

    /// Publisher: the video codec kept after negotiation.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        self.outgoing.as_ref().and_then(|o| o.video_codec())
    }

    /// Starts a graceful close (RTCP BYE, DTLS close_notify); keep polling to drain it.
    pub fn close(&mut self) {
        if self.rtc.close().is_err() {
            self.rtc.disconnect();
        }
    }

    /// False once the peer has fully closed.
    pub fn is_alive(&self) -> bool {
        self.rtc.is_alive()
    }

    /// Current state.
    pub fn state(&self) -> &PeerState {
        &self.state
    }

    /// Counters.
    pub fn stats(&self) -> &PeerStats {
        &self.stats
    }

    /// Packets received since the last call.
    pub fn take_received(&mut self) -> Vec<ReceivedPacket> {
        self.recorder.take()
    }

    /// The local host candidate address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}
