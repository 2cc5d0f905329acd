//! Media code shared by the recorder and the RTMP bridge: RTP (de)packetizers, bitstream
//! helpers, and the black pictures that pad a recording. Sans-IO and free of worker and
//! control types: fed payloads, it returns frames and bytes.

pub mod bits;
pub mod black_h264;
pub mod black_vp8;
pub mod clock;
pub mod fmp4;
pub mod fmp4_read;
pub mod g711;
pub mod h264;
pub mod h264_sps;
pub mod opus_encoder;
pub mod vp8;
mod vp8_tables;
