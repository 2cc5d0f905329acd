//! The good room: one publisher and one player in a room of their own, over real UDP from
//! 127.0.0.1, flowing through the whole run; and what its player received in each phase.
//!
//! Owns [`GoodRoom`] and [`MediaFigures`]. The player's packet log is drained into a
//! [`MediaLog`] (video sequence numbers, RTP timestamps and arrival times) every time the
//! monitor ticks. A phase is the span between two [`Mark`]s; its video is the sequence range
//! the player had not yet reached at the first mark up to the highest number it had at the
//! second, so a packet repaired (NACK/RTX) after the phase ended still counts as received, and
//! loss is what of that range never arrived. Figures are computed once the run is over.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::addr;
use crate::error::Result;
use crate::media::{AudioCodec, Kind, VideoCodec};
use crate::peer::{PlayOptions, Player, PublishOptions, Publisher};
use crate::wcs::{SessionConfig, WcsSession};

/// The good room's name.
const GOOD_ROOM: &str = "abuse-good-room";
/// Deadline of each step of setting the good room up (connect, join, publish, play).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Video packets the player must have before the run starts (a few frames' worth).
const FIRST_VIDEO_PACKETS: u64 = 10;
/// The good room's video bitrate: a webcam's, and enough packets (about 110 a second) that
/// one lost packet in a three-second phase is well under the one-point loss margin.
const VIDEO_BITRATE_BPS: u32 = 1_000_000;
/// Deadline of the good room's orderly stop at the end.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// What the good player received in one phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaFigures {
    /// Distinct video RTP packets received of the phase's sequence range.
    pub video_packets: u64,
    /// Distinct video frames (RTP timestamps) among them.
    pub video_frames: u64,
    /// Video packets the range held (highest − first + 1).
    pub video_expected: u64,
    /// `100 × (expected − received) / expected`; 0 when nothing was expected.
    pub loss_pct: f64,
    /// Longest time without a video packet arriving within the phase (edges included).
    pub longest_gap_ms: u64,
    /// Audio RTP packets received during the phase.
    pub audio_packets: u64,
}

/// Where the player stood at one instant.
#[derive(Debug, Clone)]
pub struct Mark {
    /// When.
    pub at: Instant,
    highest: HashMap<u32, u64>,
    audio_packets: u64,
}

/// Video packets received so far, per SSRC.
#[derive(Debug, Default)]
struct MediaLog {
    /// SSRC → extended sequence number → RTP timestamp.
    video: HashMap<u32, BTreeMap<u64, u32>>,
    video_arrivals: Vec<Instant>,
}

/// One publisher and one player of its stream, in their own room.
#[derive(Debug)]
pub struct GoodRoom {
    publisher: Publisher,
    player: Player,
    log: Mutex<MediaLog>,
    _sessions: (WcsSession, WcsSession),
}

impl GoodRoom {
    /// Connects both from 127.0.0.1, publishes `video` + Opus, plays it, and waits for the
    /// first video packets.
    pub async fn start(ws_url: &str, video: VideoCodec) -> Result<Self> {
        let config = |login: &str| SessionConfig {
            timeout: SETUP_TIMEOUT,
            ..SessionConfig::room(login)
        };
        let local = addr::GOOD.into();
        let alice = WcsSession::connect_from(ws_url, local, config("good-publisher")).await?;
        alice.join(GOOD_ROOM).await?;
        let bob = WcsSession::connect_from(ws_url, local, config("good-player")).await?;
        bob.join(GOOD_ROOM).await?;
        let name = crate::peer::room_stream_name(GOOD_ROOM, "good-publisher");
        let mut publish = PublishOptions::new(&name)
            .room(GOOD_ROOM)
            .video(Some(video))
            .audio(Some(AudioCodec::Opus));
        publish.timeout = SETUP_TIMEOUT;
        publish.video_bitrate_bps = Some(VIDEO_BITRATE_BPS);
        let publisher = Publisher::publish(&alice, publish).await?;
        let mut play = PlayOptions::new(&name).room(GOOD_ROOM);
        play.timeout = SETUP_TIMEOUT;
        let player = Player::play(&bob, play).await?;
        player
            .wait_packets(Kind::Video, FIRST_VIDEO_PACKETS, SETUP_TIMEOUT)
            .await?;
        let room = GoodRoom {
            publisher,
            player,
            log: Mutex::new(MediaLog::default()),
            _sessions: (alice, bob),
        };
        room.drain();
        Ok(room)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, MediaLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves what the player logged since the last call into the media log.
    pub fn drain(&self) {
        let packets = self.player.take_received();
        let mut log = self.log();
        for p in packets.into_iter().filter(|p| p.kind == Kind::Video) {
            log.video.entry(p.ssrc).or_default().insert(p.seq, p.rtp_time);
            log.video_arrivals.push(p.arrival);
        }
    }

    /// Drains, then notes where the player stands now.
    pub fn mark(&self) -> Mark {
        self.drain();
        let log = self.log();
        Mark {
            at: Instant::now(),
            highest: log
                .video
                .iter()
                .filter_map(|(ssrc, seqs)| Some((*ssrc, *seqs.keys().next_back()?)))
                .collect(),
            audio_packets: self.player.stats().audio_packets_received,
        }
    }

    /// Video packets the player has received in all.
    pub fn video_packets(&self) -> u64 {
        self.player.stats().video_packets_received
    }

    /// What arrived between two marks (call once the run is over, so late repairs count).
    pub fn figures(&self, from: &Mark, to: &Mark) -> MediaFigures {
        self.drain();
        let log = self.log();
        let (mut received, mut expected) = (0u64, 0u64);
        let mut frames = BTreeSet::new();
        for (ssrc, seqs) in &log.video {
            let Some(&hi) = to.highest.get(ssrc) else {
                continue;
            };
            let lo = match from.highest.get(ssrc) {
                Some(h) => h + 1,
                None => seqs.keys().next().copied().unwrap_or(hi),
            };
            if hi < lo {
                continue;
            }
            expected += hi - lo + 1;
            for (_, ts) in seqs.range(lo..=hi) {
                received += 1;
                frames.insert((*ssrc, *ts));
            }
        }
        let mut arrivals: Vec<Instant> = log
            .video_arrivals
            .iter()
            .copied()
            .filter(|t| *t >= from.at && *t <= to.at)
            .collect();
        arrivals.sort_unstable();
        let edges = std::iter::once(from.at)
            .chain(arrivals.iter().copied())
            .chain(std::iter::once(to.at));
        let longest_gap = edges
            .clone()
            .zip(edges.skip(1))
            .map(|(a, b)| b.saturating_duration_since(a))
            .max()
            .unwrap_or_default();
        let loss_pct = match expected {
            0 => 0.0,
            e => 100.0 * e.saturating_sub(received) as f64 / e as f64,
        };
        MediaFigures {
            video_packets: received,
            video_frames: frames.len() as u64,
            video_expected: expected,
            loss_pct,
            longest_gap_ms: longest_gap.as_millis() as u64,
            audio_packets: to.audio_packets.saturating_sub(from.audio_packets),
        }
    }

    /// Stops the player and the publisher (bounded; errors ignored: the run is over).
    pub async fn stop(self) {
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.player.stop()).await;
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.publisher.stop()).await;
    }
}
