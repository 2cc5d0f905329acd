//! The RTMP bridge's audio threads: AAC or MP3 from an encoder to Opus for the room, and Opus
//! from a browser to AAC for an RTMP player or push. Transcoding never runs on a media
//! worker nor on the control thread: each transcoded stream has one thread, fed over a
//! bounded queue.
//!
//! Invariants: a full queue drops the frame (counted) rather than block the control thread;
//! a frame the decoder refuses is skipped and counted, never fatal; the thread ends when its
//! feeder drops the handle, and a bad configuration is refused before a thread starts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;

use str0m::media::Pt;

use super::publish::{IngestSink, TimeBase, OPUS_PT};
use crate::forward::IncomingRtp;
use crate::media::aac_config::AudioSpecificConfig;
use crate::media::aac_to_opus::AacToOpus;
use crate::media::g711::Law;
use crate::media::mp3_to_opus::Mp3ToOpus;
use crate::media::opus_to_aac::{AacOut, OpusToAac};
use crate::media::transcode::TranscodeError;

/// Frames waiting for one audio thread: two seconds of AAC (at 1024 samples per frame and
/// 48 kHz) or of Opus.
pub const AUDIO_QUEUE_FRAMES: usize = 100;
/// Bitrate of the AAC we send RTMP players and pushes (AAC-LC stereo at 48 kHz).
pub const AAC_BITRATE_BPS: u32 = 128_000;

/// An encoder's audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioFormat {
    Aac(AudioSpecificConfig),
    Mp3 { sample_rate: u32, channels: u8 },
    G711(Law),
}

impl AudioFormat {
    pub fn aac(audio_specific_config: &[u8]) -> Result<Self, TranscodeError> {
        let config = AudioSpecificConfig::parse(audio_specific_config)?;
        // Refuse what cannot be decoded now, not on the first frame.
        AacToOpus::new(&config, 64_000)?;
        Ok(AudioFormat::Aac(config))
    }

    /// MP3's rate and channels from the FLV tag's first byte.
    pub fn mp3(body: &[u8]) -> Self {
        let flags = body.first().copied().unwrap_or(0x2f);
        let sample_rate = match (flags >> 4, (flags >> 2) & 3) {
            (14, _) => 8_000,
            (_, 0) => 5_512,
            (_, 1) => 11_025,
            (_, 2) => 22_050,
            _ => 44_100,
        };
        AudioFormat::Mp3 {
            sample_rate,
            channels: (flags & 1) + 1,
        }
    }
}

enum ToOpusJob {
    Frame { data: Vec<u8>, pts_ms: u32 },
    Reconfigure(AudioFormat),
}

trait ToOpus: Send {
    fn push(
        &mut self,
        data: &[u8],
        pts_ms: u32,
    ) -> Result<Vec<crate::media::aac_to_opus::OpusOut>, TranscodeError>;
}

impl ToOpus for AacToOpus {
    fn push(
        &mut self,
        data: &[u8],
        pts_ms: u32,
    ) -> Result<Vec<crate::media::aac_to_opus::OpusOut>, TranscodeError> {
        AacToOpus::push(self, data, pts_ms)
    }
}

impl ToOpus for Mp3ToOpus {
    fn push(
        &mut self,
        data: &[u8],
        pts_ms: u32,
    ) -> Result<Vec<crate::media::aac_to_opus::OpusOut>, TranscodeError> {
        Mp3ToOpus::push(self, data, pts_ms)
    }
}

fn decoder(format: &AudioFormat, bitrate_bps: u32) -> Result<Box<dyn ToOpus>, TranscodeError> {
    Ok(match format {
        AudioFormat::Aac(config) => Box::new(AacToOpus::new(config, bitrate_bps)?),
        AudioFormat::Mp3 {
            sample_rate,
            channels,
        } => Box::new(Mp3ToOpus::new(*sample_rate, *channels, bitrate_bps)?),
        AudioFormat::G711(_) => return Err(TranscodeError::InvalidParameter("G.711 passes through".into())),
    })
}

/// An encoder's AAC or MP3 → Opus RTP for its ingest.
pub struct ToOpusThread {
    jobs: SyncSender<ToOpusJob>,
    dropped: Arc<AtomicU64>,
}

impl ToOpusThread {
    pub fn spawn(
        format: &AudioFormat,
        bitrate_bps: u32,
        sink: IngestSink,
        time: TimeBase,
    ) -> Result<Self, TranscodeError> {
        let first = decoder(format, bitrate_bps)?;
        let (jobs, receiver) = sync_channel(AUDIO_QUEUE_FRAMES);
        let dropped = sink.audio_dropped.clone();
        std::thread::Builder::new()
            .name("webcall-rtmp-audio".into())
            .spawn(move || to_opus_loop(first, bitrate_bps, receiver, sink, time))
            .map_err(|e| TranscodeError::InvalidParameter(format!("no audio thread: {e}")))?;
        Ok(ToOpusThread { jobs, dropped })
    }

    pub fn push(&self, data: &[u8], pts_ms: u32) {
        let job = ToOpusJob::Frame {
            data: data.to_vec(),
            pts_ms,
        };
        if let Err(TrySendError::Full(_)) = self.jobs.try_send(job) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reconfigure(&self, format: &AudioFormat) {
        let _ = self.jobs.try_send(ToOpusJob::Reconfigure(format.clone()));
    }
}

fn to_opus_loop(
    mut decoder_now: Box<dyn ToOpus>,
    bitrate_bps: u32,
    jobs: Receiver<ToOpusJob>,
    sink: IngestSink,
    time: TimeBase,
) {
    let mut seq: u64 = 1;
    let mut refused: u64 = 0;
    while let Ok(job) = jobs.recv() {
        match job {
            ToOpusJob::Reconfigure(format) => match decoder(&format, bitrate_bps) {
                Ok(next) => decoder_now = next,
                Err(error) => tracing::warn!(%error, "RTMP audio configuration refused; keeping the old one"),
            },
            ToOpusJob::Frame { data, pts_ms } => match decoder_now.push(&data, pts_ms) {
                Ok(packets) => {
                    let arrival = Instant::now();
                    let packets: Vec<IncomingRtp> = packets
                        .into_iter()
                        .map(|out| {
                            let packet = IncomingRtp {
                                pt: Pt::from(OPUS_PT),
                                seq,
                                ts: out.ts48,
                                marker: false,
                                arrival,
                                payload: Arc::from(out.data),
                                sender: Some(time.clock(out.ts48 / 48, 48)),
                            };
                            seq += 1;
                            packet
                        })
                        .collect();
                    sink.send(false, false, packets);
                }
                Err(error) => {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::debug!(%error, refused, "RTMP audio frame skipped");
                    }
                }
            },
        }
    }
}

/// A browser's Opus → AAC for an RTMP player or push: frames in, AAC access units out on a
/// queue the player's task reads.
pub struct ToAacThread {
    jobs: SyncSender<(Vec<u8>, u32)>,
    pub config: AudioSpecificConfig,
    dropped: Arc<AtomicU64>,
}

/// AAC frames made for one player, read by its task.
pub const AAC_OUT_QUEUE_FRAMES: usize = 100;

impl ToAacThread {
    /// `dropped` counts the Opus packets its full queue refuses.
    pub fn spawn(
        channels: u8,
        dropped: Arc<AtomicU64>,
    ) -> Result<(Self, tokio::sync::mpsc::Receiver<AacOut>), TranscodeError> {
        let encoder = OpusToAac::new(channels, AAC_BITRATE_BPS, 48_000)?;
        let config = encoder.config();
        let (jobs, receiver) = sync_channel::<(Vec<u8>, u32)>(AUDIO_QUEUE_FRAMES);
        let (out, out_rx) = tokio::sync::mpsc::channel(AAC_OUT_QUEUE_FRAMES);
        std::thread::Builder::new()
            .name("webcall-rtmp-aac".into())
            .spawn(move || {
                let mut encoder = encoder;
                while let Ok((packet, ts48)) = receiver.recv() {
                    let Ok(frames) = encoder.push(&packet, ts48) else {
                        continue; // a broken packet: skipped
                    };
                    for frame in frames {
                        if out.blocking_send(frame).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| TranscodeError::InvalidParameter(format!("no audio thread: {e}")))?;
        Ok((
            ToAacThread {
                jobs,
                config,
                dropped,
            },
            out_rx,
        ))
    }

    pub fn push(&self, packet: &[u8], ts48: u32) {
        if let Err(TrySendError::Full(_)) = self.jobs.try_send((packet.to_vec(), ts48)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
