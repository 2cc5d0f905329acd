//! Media code shared by the recorder and the RTMP bridge: RTP (de)packetizers, FLV tags,
//! bitstream helpers, the black pictures that pad a recording, and the audio transcoders
//! (AAC and MP3 to Opus, Opus to AAC) with their resampler. Sans-IO and free of worker and
//! control types: fed payloads, it returns frames and bytes.

pub mod aac_config;
pub mod aac_to_opus;
pub mod bits;
pub mod black_h264;
pub mod black_vp8;
pub mod clock;
pub mod flv;
pub mod fmp4;
pub mod fmp4_read;
pub mod g711;
pub mod h264;
pub mod h264_packetize;
pub mod h264_sps;
pub mod mp3_to_opus;
pub mod opus_encoder;
pub mod opus_framer;
pub mod opus_to_aac;
pub mod resample;
pub mod transcode;
pub mod vp8;
mod vp8_tables;
