//! Recording in the directory: which published streams record, into which file, and what
//! starting, stopping and failing a recording does. Starting one queues an
//! [`Effect::RecordStart`](super::Effect) that the hub carries out (the writer opens the
//! file, the worker adds the tap); stopping one removes the tap from its worker.
//!
//! Control thread only. Invariants: a stream has at most one recording; a recording's tap
//! is removed with its stream; a publisher who comes back (same room and login) within the
//! resume window continues the file it left, under the same name.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Directory, Effect, SessionId};
use crate::control::signaling::protocol::{ServerMessage, StreamStatus};
use crate::ids::{Login, MediaSessionId, PeerId, RecordingId, RoomName, StreamName, WorkerId};
use crate::record::frame::{Law, RecordedAudio, VideoCodec};
use crate::record::meta::{RecordingMeta, RecordingState};
use crate::record::queue::OpenRecording;
use crate::record::template::{NameTemplate, NameValues};
use crate::record::{RecordFailure, RecordingShared};
use crate::sdp::StreamTracks;

/// How recording works in this server (from the configuration).
#[derive(Debug, Clone)]
pub struct RecordPolicy {
    pub template: Arc<NameTemplate>,
    pub room_timeline: bool,
    pub resume_window: Duration,
}

/// A stream's running recording.
#[derive(Debug, Clone)]
pub(super) struct ActiveRecording {
    pub id: RecordingId,
    /// The tap's endpoint on the publisher's worker.
    pub tap: PeerId,
    pub file: String,
}

/// A recording whose publisher just left: a return within the window continues it.
#[derive(Debug, Clone)]
pub(super) struct EndedRecording {
    pub id: RecordingId,
    pub file: String,
    pub ended: Instant,
    /// The writer that holds it (as in [`RecordStart::writer_key`]).
    pub writer_key: String,
}

/// What the hub does for a new recording.
pub struct RecordStart {
    pub worker: WorkerId,
    pub publisher: PeerId,
    pub tap: PeerId,
    pub tracks: StreamTracks,
    /// Picks the writer: the room, or a plain stream's name.
    pub writer_key: String,
    pub video: Option<VideoCodec>,
    pub audio: Option<RecordedAudio>,
    pub open: OpenRecording,
}

/// Why a REST call about recording was refused; `Display` is the JSON `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    #[error("no published stream matches")]
    NotFound,
    #[error("the stream is already being recorded")]
    AlreadyRecording,
    #[error("the stream is not being recorded")]
    NotRecording,
    #[error("recording is not available on this server")]
    Unavailable,
}

/// Which stream a REST call means: WCS's `mediaSessionId`, or the stream's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelector {
    MediaSessionId(MediaSessionId),
    Name(StreamName),
}

/// A WCS-looking session id (26 characters of base32) for `{sessionId}` in file names.
pub(super) fn wcs_session_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut value = uuid::Uuid::new_v4().as_u128();
    (0..26)
        .map(|_| {
            let c = ALPHABET.get((value & 31) as usize).copied().unwrap_or(b'0');
            value >>= 5;
            char::from(c)
        })
        .collect()
}

/// The audio a tap takes from a publisher with these tracks.
pub(super) fn tapped_audio(tracks: &StreamTracks) -> Option<RecordedAudio> {
    match tracks.audio.as_ref()?.name.as_str() {
        "OPUS" => Some(RecordedAudio::Opus),
        "PCMU" => Some(RecordedAudio::G711(Law::Mu)),
        "PCMA" => Some(RecordedAudio::G711(Law::A)),
        _ => None,
    }
}

pub(super) fn video_codec(tracks: &StreamTracks) -> Option<VideoCodec> {
    match tracks.video.as_ref()?.name.as_str() {
        "H264" => Some(VideoCodec::H264),
        "VP8" => Some(VideoCodec::Vp8),
        _ => None,
    }
}

impl Directory {
    pub fn set_record_policy(&mut self, policy: RecordPolicy) {
        self.record_policy = Some(policy);
    }

    /// Whether a new stream of this session in `room` records (its publish asked, or the
    /// session joined the room with `record: true`).
    pub(super) fn wants_recording(&self, id: SessionId, room: Option<&RoomName>, asked: bool) -> bool {
        asked
            || room.is_some_and(|room| {
                self.sessions
                    .get(&id)
                    .is_some_and(|s| s.recorded_rooms.contains(room))
            })
    }

    /// Start recording a published stream; the file's name comes back.
    pub(super) fn start_recording(
        &mut self,
        name: &StreamName,
        now: Instant,
    ) -> Result<String, RecordingError> {
        let policy = self.record_policy.clone().ok_or(RecordingError::Unavailable)?;
        let published = self.published.get(name).ok_or(RecordingError::NotFound)?;
        if published.recording.is_some() {
            return Err(RecordingError::AlreadyRecording);
        }
        let publisher = published.peer;
        let info = self.peers.get(&publisher).ok_or(RecordingError::NotFound)?;
        let media_session_id = info.media_session_id.to_string();
        let wcs_id = self
            .sessions
            .get(&info.session)
            .ok_or(RecordingError::NotFound)?
            .wcs_id
            .clone();
        let (room, login, worker, tracks) = (
            published.room.clone(),
            published.login.clone(),
            published.worker,
            published.tracks.clone(),
        );
        self.prune_ended_recordings(now, policy.resume_window);
        let resume_key = (room.clone(), login.clone());
        let resumed = self.ended_recordings.remove(&resume_key);
        let video = video_codec(&tracks);
        let audio = tapped_audio(&tracks);
        let source_audio = tracks.audio.as_ref().map(|t| t.name.clone());
        let start_time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        let values = NameValues {
            stream_name: name.to_string(),
            login: login.to_string(),
            room: room.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            media_session_id: media_session_id.clone(),
            session_id: wcs_id.clone(),
            start_time_ms,
            end_time_ms: None,
            duration_ms: None,
            video_codec: video.map_or("none", VideoCodec::name).to_owned(),
            audio_codec: "opus".to_owned(),
        };
        let file = match &resumed {
            Some(ended) => ended.file.clone(),
            None => format!("{}.mp4", policy.template.render(&values)),
        };
        let id = RecordingId(self.next_recording);
        self.next_recording += 1;
        let tap = PeerId(self.next_peer);
        self.next_peer += 1;
        let meta = RecordingMeta {
            file: file.clone(),
            state: RecordingState::Recording,
            stream: name.to_string(),
            room: room.as_ref().map(|r| r.to_string()),
            login: login.to_string(),
            media_session_id,
            session_id: wcs_id,
            start_time_ms,
            duration_ms: 0,
            size_bytes: 0,
            video_codec: video.unwrap_or(VideoCodec::H264).name().to_owned(),
            audio_codec: "opus".to_owned(),
            source_audio_codec: source_audio.filter(|codec| codec != "OPUS"),
            timeline_start_ms: None,
            offset_ms: 0,
            tracks: Vec::new(),
            resolutions: Vec::new(),
            silences: Vec::new(),
            named_at_end: policy.template.named_at_end(),
            room_timeline: policy.room_timeline && room.is_some(),
            error: None,
        };
        let open = OpenRecording {
            id,
            meta,
            video,
            room_timeline: policy.room_timeline,
            resume_of: resumed.map(|ended| ended.id),
            resume_window: policy.resume_window,
            template: policy.template.clone(),
            values,
            shared: Arc::new(RecordingShared::default()),
        };
        let writer_key = room.as_ref().map_or_else(|| name.to_string(), |r| r.to_string());
        self.effects.push(Effect::RecordStart(Box::new(RecordStart {
            worker,
            publisher,
            tap,
            tracks,
            writer_key,
            video,
            audio,
            open,
        })));
        if let Some(published) = self.published.get_mut(name) {
            published.recording = Some(ActiveRecording {
                id,
                tap,
                file: file.clone(),
            });
        }
        Ok(file)
    }

    /// Stop a stream's recording (REST): the tap goes, the writer finishes the file.
    pub(super) fn stop_recording(&mut self, name: &StreamName) -> Result<String, RecordingError> {
        let published = self.published.get_mut(name).ok_or(RecordingError::NotFound)?;
        let recording = published.recording.take().ok_or(RecordingError::NotRecording)?;
        let worker = published.worker;
        let writer_key = published
            .room
            .as_ref()
            .map_or_else(|| name.to_string(), |r| r.to_string());
        self.effects.push(Effect::Worker(
            worker,
            crate::worker::commands::Command::PeerRemove { peer: recording.tap },
        ));
        self.effects.push(Effect::RecordFinish(recording.id, writer_key));
        Ok(recording.file)
    }

    /// The publisher of a recorded stream ended: remove the tap and remember the recording
    /// for a return within the window.
    pub(super) fn end_recording_with_stream(
        &mut self,
        room: Option<RoomName>,
        login: Login,
        worker: WorkerId,
        recording: ActiveRecording,
        writer_key: String,
        now: Instant,
    ) {
        self.effects.push(Effect::Worker(
            worker,
            crate::worker::commands::Command::PeerRemove { peer: recording.tap },
        ));
        // Draining: nobody can come back to continue the file; finish it now.
        if self.draining {
            self.effects.push(Effect::RecordFinish(recording.id, writer_key));
            return;
        }
        if let Some(policy) = &self.record_policy {
            let window = policy.resume_window;
            self.prune_ended_recordings(now, window);
            if !window.is_zero() {
                self.ended_recordings.insert(
                    (room, login),
                    EndedRecording {
                        id: recording.id,
                        file: recording.file,
                        ended: now,
                        writer_key,
                    },
                );
            }
        }
    }

    fn prune_ended_recordings(&mut self, now: Instant, window: Duration) {
        self.ended_recordings
            .retain(|_, ended| now.saturating_duration_since(ended.ended) < window);
    }

    /// A writer gave up on a recording (or could not start it): the publisher hears why, on
    /// a `PUBLISHING` status (its stream goes on), and the tap goes.
    pub fn recording_failed(&mut self, id: RecordingId, failure: &RecordFailure) {
        let Some((name, published)) = self
            .published
            .iter_mut()
            .find(|(_, p)| p.recording.as_ref().is_some_and(|r| r.id == id))
        else {
            return;
        };
        let Some(recording) = published.recording.take() else {
            return;
        };
        let (name, worker, publisher) = (name.clone(), published.worker, published.peer);
        if !published.announced {
            // Said with `PUBLISHING` when it comes, not before the stream publishes.
            published.recording_failure = Some(failure.to_string());
        }
        let announced = published.announced;
        self.effects.push(Effect::Worker(
            worker,
            crate::worker::commands::Command::PeerRemove { peer: recording.tap },
        ));
        if !announced {
            return;
        }
        let Some(info) = self.peers.get(&publisher) else {
            return;
        };
        let (session, media_session_id) = (info.session, info.media_session_id.clone());
        self.send(
            session,
            ServerMessage::StreamStatus {
                media_session_id,
                name,
                status: StreamStatus::Publishing,
                info: Some(failure.to_string()),
                record_name: Some(recording.file),
            },
        );
    }

    /// REST: start recording the selected stream.
    pub fn start_recording_of(
        &mut self,
        selector: &StreamSelector,
        now: Instant,
    ) -> Result<String, RecordingError> {
        let name = self.select_stream(selector)?;
        self.start_recording(&name, now)
    }

    /// REST: stop recording the selected stream.
    pub fn stop_recording_of(&mut self, selector: &StreamSelector) -> Result<String, RecordingError> {
        let name = self.select_stream(selector)?;
        self.stop_recording(&name)
    }

    fn select_stream(&self, selector: &StreamSelector) -> Result<StreamName, RecordingError> {
        match selector {
            StreamSelector::Name(name) => self
                .published
                .contains_key(name)
                .then(|| name.clone())
                .ok_or(RecordingError::NotFound),
            StreamSelector::MediaSessionId(id) => self
                .published
                .iter()
                .find(|(_, p)| {
                    self.peers
                        .get(&p.peer)
                        .is_some_and(|info| info.media_session_id == *id)
                })
                .map(|(name, _)| name.clone())
                .ok_or(RecordingError::NotFound),
        }
    }

    /// The file a stream records to, if it records.
    pub(super) fn record_name(&self, name: &StreamName) -> Option<String> {
        Some(self.published.get(name)?.recording.as_ref()?.file.clone())
    }
}
