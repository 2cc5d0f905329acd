//! Recording: every published stream to its own MP4, a room's files on one timeline.
//!
//! The worker's recorder tap (`worker/endpoint/recorder.rs`) depacketizes a publisher's
//! packets into [`frame::TapFrame`]s and hands them to a writer thread's bounded queue; the
//! writer runs each recording's sans-IO [`muxer::Muxer`] and does all file I/O. Workers never
//! touch the disk.

pub mod finalize;
pub mod frame;
pub mod meta;
pub mod muxer;
pub mod template;
#[cfg(test)]
mod test_media;
mod track;
