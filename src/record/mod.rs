//! Recording: every published stream to its own MP4, a room's files on one timeline.
//!
//! The worker's recorder tap (`worker/endpoint/recorder.rs`) depacketizes a publisher's
//! packets into [`frame::TapFrame`]s and hands them to a writer thread's bounded queue
//! ([`queue`]); the writer ([`writer`]) runs each recording's sans-IO [`muxer::Muxer`] and
//! does all file I/O: fragments while recording, the journal ([`meta`]), the faststart file
//! at the end ([`finalize`]). [`service`] starts the writers and finishes what a crash left.
//! Workers never touch the disk.

mod files;
pub mod finalize;
pub mod frame;
pub mod merge;
pub mod meta;
pub mod muxer;
pub mod queue;
pub mod service;
pub mod template;
#[cfg(test)]
mod test_media;
mod track;
pub mod transcode;
pub mod writer;

pub use queue::{RecordFailure, RecorderEvent, RecordingShared, WriterQueue};
pub use service::{RecorderClient, RecorderService, RecorderSettings};
