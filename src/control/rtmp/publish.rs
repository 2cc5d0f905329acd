//! One RTMP encoder's stream, from FLV tags to what the room gets: H.264 pictures become
//! RTP for the stream's ingest endpoint (never re-encoded), AAC and MP3 go to an audio thread
//! that makes Opus, G.711 passes through, and every tag also feeds the stream's FLV source
//! for RTMP players and pushes.
//!
//! Control thread, one per publishing connection. Invariants: nothing reaches the worker
//! before the first keyframe (the stream is published then, with the tracks the sequence
//! headers described); RTP sequence numbers of each track increase by one per packet;
//! video RTP time is the picture's presentation time at 90 kHz; a B-frame under the `reject`
//! policy, an unsupported codec or a broken tag ends the publish with a reason, never the
//! process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use str0m::media::{MediaKind, Mid, Pt};

use super::audio::{AudioFormat, ToOpusThread};
use super::sources::{FlvTag, HeaderKind, PublisherToken, Sources, TagKind};
use crate::config::BframePolicy;
use crate::forward::IncomingRtp;
use crate::ids::PeerId;
use crate::media::clock::SenderClock;
use crate::media::flv::{self, AudioTag, AvcConfig, VideoTag};
use crate::media::g711::Law;
use crate::media::h264_packetize::H264Packetizer;
use crate::sdp::{StreamTracks, TrackCodec};
use crate::worker::commands::{Command, WorkerHandle};

pub const VIDEO_PT: u8 = 96;
pub const OPUS_PT: u8 = 111;
/// G.711 leaves in 20 ms packets (160 samples at 8 kHz), whatever the encoder's tag size.
const G711_PACKET_BYTES: usize = 160;

/// Why a publish ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("B-frames are not supported in WebRTC: set bframes=0")]
    BFrames,
    #[error("{0}")]
    Unsupported(String),
    #[error("Invalid {0}")]
    Invalid(String),
}

/// Where the stream's RTP goes once it is published.
#[derive(Clone)]
pub struct IngestSink {
    pub worker: WorkerHandle,
    pub peer: PeerId,
    /// Batches the worker's full queue refused (the bridge's counter).
    pub dropped: Arc<AtomicU64>,
    /// Frames the stream's audio thread had no room for (the bridge's counter).
    pub audio_dropped: Arc<AtomicU64>,
}

impl IngestSink {
    pub fn send(&self, keyframe: bool, video: bool, packets: Vec<IncomingRtp>) {
        if packets.is_empty() {
            return;
        }
        let command = Command::IngestRtp {
            peer: self.peer,
            keyframe,
            video,
            packets,
        };
        if self.worker.send(command).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The wall clock of the stream's RTMP time 0, for the sender clocks a recording syncs by.
#[derive(Debug, Clone, Copy)]
pub struct TimeBase {
    pub wall_at_zero: SystemTime,
}

impl TimeBase {
    /// The sender clock at RTMP time `ms` of a track whose RTP time is RTMP milliseconds ×
    /// `per_ms` (RTP time 0 is RTMP time 0 on every track). Given with every packet, so it
    /// stays within the 2^31 ticks a clock covers.
    pub fn clock(&self, ms: u32, per_ms: u32) -> SenderClock {
        SenderClock {
            ntp: self.wall_at_zero + std::time::Duration::from_millis(u64::from(ms)),
            rtp: ms.wrapping_mul(per_ms),
        }
    }
}

/// What the connection must do after a tag.
#[derive(Debug, PartialEq)]
pub enum PublishStep {
    Nothing,
    /// The first keyframe is here: publish with these tracks, then call [`Publisher::attach`]
    /// and feed the same tag again.
    Ready(Box<StreamTracks>),
}

pub struct Publisher {
    pub name: String,
    token: PublisherToken,
    bframes: BframePolicy,
    opus_bitrate_bps: u32,
    avc: Option<AvcConfig>,
    packetizer: H264Packetizer,
    audio: Option<AudioFormat>,
    /// The encoder's metadata or tags announced video: wait for its keyframe to publish.
    expects_video: bool,
    sink: Option<IngestSink>,
    time: TimeBase,
    video_seq: u64,
    g711_seq: u64,
    to_opus: Option<ToOpusThread>,
    last_keyframe_ms: Option<u32>,
    /// Something in the room takes the audio (a WebRTC player, a recording): transcode it.
    transcode_audio: bool,
    /// The encoder's keyframe interval, as measured (ms).
    pub keyframe_interval_ms: Option<u32>,
    pub bframes_seen: u64,
}

impl Publisher {
    pub fn new(name: String, token: PublisherToken, bframes: BframePolicy, opus_bitrate_bps: u32) -> Self {
        Publisher {
            name,
            token,
            bframes,
            opus_bitrate_bps,
            avc: None,
            packetizer: H264Packetizer::default(),
            audio: None,
            expects_video: false,
            sink: None,
            time: TimeBase {
                wall_at_zero: SystemTime::now(),
            },
            video_seq: 1,
            g711_seq: 1,
            to_opus: None,
            last_keyframe_ms: None,
            transcode_audio: true,
            keyframe_interval_ms: None,
            bframes_seen: 0,
        }
    }

    pub fn token(&self) -> PublisherToken {
        self.token
    }

    /// Whether AAC and MP3 are transcoded to Opus now: only while something takes the
    /// stream's audio (RTMP players get the encoder's own tags either way).
    pub fn set_transcode_audio(&mut self, on: bool) {
        self.transcode_audio = on;
    }

    /// `onMetaData` said the stream has video.
    pub fn expect_video(&mut self) {
        self.expects_video = true;
    }

    /// `onMetaData` named the audio codec (FLV's sound format number): G.711 and MP3 have no
    /// sequence header, so the metadata is how the tracks know them before the first keyframe.
    pub fn expect_audio(&mut self, sound_format: u8, stereo: bool, sample_rate: u32) {
        if self.audio.is_some() {
            return;
        }
        self.audio = match sound_format {
            7 if !stereo => Some(AudioFormat::G711(Law::A)),
            8 if !stereo => Some(AudioFormat::G711(Law::Mu)),
            2 => Some(AudioFormat::Mp3 {
                sample_rate: if sample_rate == 0 { 44_100 } else { sample_rate },
                channels: if stereo { 2 } else { 1 },
            }),
            _ => None,
        };
    }

    /// The stream is published: its RTP goes to `sink`. Starts the audio thread if needed.
    pub fn attach(&mut self, sink: IngestSink) -> Result<(), PublishError> {
        if let Some(AudioFormat::Aac(_) | AudioFormat::Mp3 { .. }) = &self.audio {
            let format = self
                .audio
                .clone()
                .ok_or_else(|| PublishError::Invalid("audio".into()))?;
            let thread = ToOpusThread::spawn(&format, self.opus_bitrate_bps, sink.clone(), self.time)
                .map_err(|e| PublishError::Unsupported(e.to_string()))?;
            self.to_opus = Some(thread);
        }
        self.sink = Some(sink);
        Ok(())
    }

    pub fn published(&self) -> bool {
        self.sink.is_some()
    }

    fn tracks(&self) -> StreamTracks {
        let video = self.avc.as_ref().map(|avc| {
            let sps = avc.sps.first().map(Vec::as_slice).unwrap_or_default();
            TrackCodec {
                kind: MediaKind::Video,
                mid: Mid::from("0"),
                pt: Pt::from(VIDEO_PT),
                rtx_pt: None,
                name: "H264".into(),
                clock_rate: 90_000,
                channels: None,
                fmtp: format!(
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={}",
                    profile_level_id(sps)
                ),
            }
        });
        let audio = self.audio.as_ref().map(|format| match format {
            AudioFormat::G711(law) => TrackCodec {
                kind: MediaKind::Audio,
                mid: Mid::from("1"),
                pt: Pt::from(g711_pt(*law)),
                rtx_pt: None,
                name: match law {
                    Law::Mu => "PCMU".into(),
                    Law::A => "PCMA".into(),
                },
                clock_rate: 8_000,
                channels: None,
                fmtp: String::new(),
            },
            AudioFormat::Aac(_) | AudioFormat::Mp3 { .. } => TrackCodec {
                kind: MediaKind::Audio,
                mid: Mid::from("1"),
                pt: Pt::from(OPUS_PT),
                rtx_pt: None,
                name: "OPUS".into(),
                clock_rate: 48_000,
                channels: Some(2),
                fmtp: "minptime=10;useinbandfec=1".into(),
            },
        });
        StreamTracks { video, audio }
    }

    pub fn video(
        &mut self,
        sources: &mut Sources,
        timestamp_ms: u32,
        body: &[u8],
    ) -> Result<PublishStep, PublishError> {
        let tag = flv::parse_video(body).map_err(|e| match e {
            flv::FlvError::Unsupported(reason) => PublishError::Unsupported(reason),
            other => PublishError::Invalid(format!("video tag: {other}")),
        })?;
        let flv_tag = |keyframe: bool| FlvTag::new(TagKind::Video, timestamp_ms, Arc::from(body), keyframe);
        match tag {
            VideoTag::Info | VideoTag::AvcEndOfSequence => Ok(PublishStep::Nothing),
            VideoTag::AvcSequenceHeader(config) => {
                self.expects_video = true;
                self.packetizer
                    .set_parameter_sets(config.sps.first().cloned(), config.pps.first().cloned());
                self.avc = Some(config);
                sources.header(&self.name, self.token, HeaderKind::Video, flv_tag(false));
                Ok(PublishStep::Nothing)
            }
            VideoTag::AvcPicture {
                keyframe,
                composition_ms,
                data,
            } => {
                self.expects_video = true;
                if composition_ms != 0 {
                    self.bframes_seen += 1;
                    if self.bframes == BframePolicy::Reject {
                        return Err(PublishError::BFrames);
                    }
                }
                let Some(avc) = &self.avc else {
                    return Ok(PublishStep::Nothing); // no sequence header yet: undecodable
                };
                if !self.published() {
                    return Ok(if keyframe {
                        PublishStep::Ready(Box::new(self.tracks()))
                    } else {
                        PublishStep::Nothing
                    });
                }
                if keyframe {
                    if let Some(last) = self.last_keyframe_ms {
                        self.keyframe_interval_ms = Some(timestamp_ms.wrapping_sub(last));
                    }
                    self.last_keyframe_ms = Some(timestamp_ms);
                }
                let nals = flv::split_nal_units(data, avc.nal_length_bytes)
                    .map_err(|e| PublishError::Invalid(format!("video tag: {e}")))?;
                let payloads = self.packetizer.packetize(nals);
                let pts = timestamp_ms.wrapping_add_signed(composition_ms);
                let rtp_ts = pts.wrapping_mul(90);
                let arrival = Instant::now();
                let sender = Some(self.time.clock(pts, 90));
                let packets: Vec<IncomingRtp> = payloads
                    .into_iter()
                    .map(|p| {
                        let seq = self.video_seq;
                        self.video_seq += 1;
                        IncomingRtp {
                            pt: Pt::from(VIDEO_PT),
                            seq,
                            ts: rtp_ts,
                            marker: p.marker,
                            arrival,
                            payload: Arc::from(p.payload),
                            sender,
                        }
                    })
                    .collect();
                if let Some(sink) = &self.sink {
                    sink.send(keyframe, true, packets);
                }
                sources.media(&self.name, self.token, flv_tag(keyframe));
                Ok(PublishStep::Nothing)
            }
        }
    }

    pub fn audio(
        &mut self,
        sources: &mut Sources,
        timestamp_ms: u32,
        body: &[u8],
    ) -> Result<PublishStep, PublishError> {
        let tag = flv::parse_audio(body).map_err(|e| match e {
            flv::FlvError::Unsupported(reason) => PublishError::Unsupported(reason),
            other => PublishError::Invalid(format!("audio tag: {other}")),
        })?;
        let flv_tag = FlvTag::new(TagKind::Audio, timestamp_ms, Arc::from(body), false);
        match tag {
            AudioTag::AacSequenceHeader(config) => {
                let format =
                    AudioFormat::aac(config).map_err(|e| PublishError::Unsupported(e.to_string()))?;
                if self.published() && self.audio.as_ref() != Some(&format) {
                    if let Some(thread) = &self.to_opus {
                        thread.reconfigure(&format);
                    }
                }
                self.audio = Some(format);
                sources.header(&self.name, self.token, HeaderKind::Audio, flv_tag);
                return Ok(PublishStep::Nothing);
            }
            AudioTag::AacRaw(frame) => {
                if !matches!(self.audio, Some(AudioFormat::Aac(_))) {
                    return Ok(PublishStep::Nothing); // no AudioSpecificConfig yet
                }
                if let Some(thread) = self.to_opus.as_ref().filter(|_| self.transcode_audio) {
                    thread.push(frame, timestamp_ms);
                }
            }
            AudioTag::Mp3 { data } => {
                if self.audio.is_none() {
                    self.audio = Some(AudioFormat::mp3(body));
                }
                if let Some(thread) = self.to_opus.as_ref().filter(|_| self.transcode_audio) {
                    thread.push(data, timestamp_ms);
                }
            }
            AudioTag::G711 { law, data } => {
                match self.audio {
                    None => self.audio = Some(AudioFormat::G711(law)),
                    Some(AudioFormat::G711(current)) if current == law => {}
                    Some(_) => {
                        return Err(PublishError::Unsupported(
                            "the audio codec changed mid-stream".into(),
                        ))
                    }
                }
                self.g711(law, timestamp_ms, data);
            }
        }
        if !self.published() && !self.expects_video && self.audio.is_some() {
            return Ok(PublishStep::Ready(Box::new(self.tracks())));
        }
        if self.published() {
            sources.media(&self.name, self.token, flv_tag);
        }
        Ok(PublishStep::Nothing)
    }

    fn g711(&mut self, law: Law, timestamp_ms: u32, data: &[u8]) {
        let Some(sink) = &self.sink else {
            return;
        };
        let arrival = Instant::now();
        let sender = Some(self.time.clock(timestamp_ms, 8));
        let start = timestamp_ms.wrapping_mul(8);
        let packets: Vec<IncomingRtp> = data
            .chunks(G711_PACKET_BYTES)
            .zip(0u32..)
            .map(|(chunk, index)| {
                let seq = self.g711_seq;
                self.g711_seq += 1;
                IncomingRtp {
                    pt: Pt::from(g711_pt(law)),
                    seq,
                    ts: start.wrapping_add(index * G711_PACKET_BYTES as u32),
                    marker: false,
                    arrival,
                    payload: Arc::from(chunk),
                    sender,
                }
            })
            .collect();
        sink.send(false, false, packets);
    }
}

fn g711_pt(law: Law) -> u8 {
    match law {
        Law::Mu => 0,
        Law::A => 8,
    }
}

/// The `profile-level-id` browsers offer for the SPS's profile (their answer must name the
/// same profile: constrained baseline is `42e0`, whatever other constraint bits an encoder
/// sets), with the SPS's level.
pub fn profile_level_id(sps: &[u8]) -> String {
    let (profile, constraints, level) = match sps.get(1..4) {
        Some(&[p, c, l]) => (p, c, l),
        _ => (66, 0xe0, 0x1f),
    };
    let (profile, constraints) = match profile {
        66 if constraints & 0x40 != 0 => (66, 0xe0),
        66 => (66, 0x00),
        77 => (77, 0x00),
        100 => (100, 0x00),
        other => (other, constraints),
    };
    format!("{profile:02x}{constraints:02x}{level:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_map_to_what_browsers_offer() {
        assert_eq!(profile_level_id(&[0x67, 66, 0xc0, 0x1e]), "42e01e");
        assert_eq!(profile_level_id(&[0x67, 66, 0x80, 0x1f]), "42001f");
        assert_eq!(profile_level_id(&[0x67, 100, 0x00, 0x28]), "640028");
        assert_eq!(profile_level_id(&[0x67, 77, 0x40, 0x1f]), "4d001f");
        assert_eq!(profile_level_id(&[]), "42e01f");
    }

    #[test]
    fn nothing_is_published_before_a_keyframe_and_bframes_are_refused() {
        let mut sources = Sources::default();
        let token = sources.start("s");
        let mut publisher = Publisher::new("s".into(), token, BframePolicy::Reject, 96_000);
        let header = flv::avc_sequence_header(&[0x67, 100, 0, 0x1f], &[0x68, 1]);
        assert_eq!(
            publisher.video(&mut sources, 0, &header),
            Ok(PublishStep::Nothing)
        );
        let delta = flv::avc_picture(false, 0, [[0x41u8, 1].as_slice()]);
        assert_eq!(publisher.video(&mut sources, 0, &delta), Ok(PublishStep::Nothing));
        let key = flv::avc_picture(true, 0, [[0x65u8, 1].as_slice()]);
        let Ok(PublishStep::Ready(tracks)) = publisher.video(&mut sources, 33, &key) else {
            panic!("the keyframe makes it ready");
        };
        assert!(tracks.video.is_some_and(|v| v.fmtp.ends_with("64001f")));
        let bframe = flv::avc_picture(false, 66, [[0x41u8, 1].as_slice()]);
        assert_eq!(
            publisher.video(&mut sources, 66, &bframe),
            Err(PublishError::BFrames)
        );
    }

    #[test]
    fn bad_tags_are_errors_not_panics() {
        let mut sources = Sources::default();
        let token = sources.start("s");
        let mut publisher = Publisher::new("s".into(), token, BframePolicy::Pass, 96_000);
        for body in [
            &[][..],
            &[0x17],
            &[0x17, 0],
            &[0x1c, 1, 0, 0, 0],
            &[0xaf, 0, 0xff],
        ] {
            let _ = publisher.video(&mut sources, 0, body);
            let _ = publisher.audio(&mut sources, 0, body);
        }
        assert!(
            publisher.audio(&mut sources, 0, &[0xb2, 1]).is_err(),
            "Speex is refused"
        );
    }
}
