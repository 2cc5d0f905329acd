//! Opus (libopus, BSD licence) for audio the server must turn into or out of Opus: the
//! recorder's G.711 narrowband encoder, and the RTMP bridge's general encoder and decoder.
//!
//! libopus is loaded at run time (`libopus.so.0`, Debian's `libopus0`, which ffmpeg and the
//! browsers already pull in), so building webcall needs no C library and a host without it
//! still runs: recordings of G.711 publishers then get silence, and say so in their JSON, and
//! the RTMP bridge refuses to transcode audio.
//!
//! Used on recorder writer threads and RTMP transcoder threads only (never a worker); one
//! encoder or decoder belongs to one stream. Invariants: the library is opened once per process
//! and never closed; every call checks its return value; every buffer handed to libopus is at
//! least as long as the length passed with it; a state is destroyed exactly once (on drop).

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use super::transcode::TranscodeError;

/// Samples per channel of one 20 ms frame at 48 kHz.
pub const OPUS_FRAME_SAMPLES: usize = 960;
/// The largest packet asked for (RFC 6716 allows 1275 bytes per frame).
const PACKET_BYTES_MAX: usize = 1500;
/// The longest a packet decodes to: 120 ms at 48 kHz, per channel.
const DECODED_SAMPLES_MAX: usize = 5760;
const OPUS_APPLICATION_VOIP: c_int = 2048;
/// Music and speech alike: what an RTMP publisher sends.
const OPUS_APPLICATION_AUDIO: c_int = 2049;
/// What libopus accepts for a bitrate (bit/s).
const BITRATE_RANGE: std::ops::RangeInclusive<i32> = 6_000..=510_000;
const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
const OPUS_SET_BANDWIDTH_REQUEST: c_int = 4008;
const OPUS_BANDWIDTH_NARROWBAND: c_int = 1101;
/// G.711 carries 64 kbit/s of narrowband speech; Opus keeps it at a third of that.
const NARROWBAND_BITRATE_BPS: c_int = 24_000;

type CreateFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_int) -> *mut c_void;
type EncodeFn = unsafe extern "C" fn(*mut c_void, *const i16, c_int, *mut u8, i32) -> i32;
type DestroyFn = unsafe extern "C" fn(*mut c_void);
type CtlFn = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;
type DecoderCreateFn = unsafe extern "C" fn(i32, c_int, *mut c_int) -> *mut c_void;
type DecodeFn = unsafe extern "C" fn(*mut c_void, *const u8, i32, *mut i16, c_int, c_int) -> c_int;

struct Library {
    create: CreateFn,
    encode: EncodeFn,
    destroy: DestroyFn,
    ctl: CtlFn,
    decoder_create: DecoderCreateFn,
    decode: DecodeFn,
    decoder_destroy: DestroyFn,
}

static LIBRARY: OnceLock<Option<Library>> = OnceLock::new();

fn library() -> Option<&'static Library> {
    LIBRARY
        .get_or_init(|| {
            // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is cast to the
            // signature libopus declares for it (opus.h), and the handle stays open for the
            // process, so the pointers never dangle.
            unsafe {
                let handle = libc::dlopen(c"libopus.so.0".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                if handle.is_null() {
                    tracing::warn!(
                        "libopus.so.0 not found: G.711 recordings get silent audio and RTMP audio \
                         is not transcoded (install libopus0)"
                    );
                    return None;
                }
                let symbol = |name: &std::ffi::CStr| {
                    let pointer = libc::dlsym(handle, name.as_ptr());
                    (!pointer.is_null()).then_some(pointer)
                };
                let (create, encode, destroy, ctl) = (
                    symbol(c"opus_encoder_create")?,
                    symbol(c"opus_encode")?,
                    symbol(c"opus_encoder_destroy")?,
                    symbol(c"opus_encoder_ctl")?,
                );
                let (decoder_create, decode, decoder_destroy) = (
                    symbol(c"opus_decoder_create")?,
                    symbol(c"opus_decode")?,
                    symbol(c"opus_decoder_destroy")?,
                );
                Some(Library {
                    create: std::mem::transmute::<*mut c_void, CreateFn>(create),
                    encode: std::mem::transmute::<*mut c_void, EncodeFn>(encode),
                    destroy: std::mem::transmute::<*mut c_void, DestroyFn>(destroy),
                    ctl: std::mem::transmute::<*mut c_void, CtlFn>(ctl),
                    decoder_create: std::mem::transmute::<*mut c_void, DecoderCreateFn>(decoder_create),
                    decode: std::mem::transmute::<*mut c_void, DecodeFn>(decode),
                    decoder_destroy: std::mem::transmute::<*mut c_void, DestroyFn>(decoder_destroy),
                })
            }
        })
        .as_ref()
}

/// A 48 kHz Opus encoder of 20 ms frames: mono narrowband speech for the recorder, or mono or
/// stereo full-band audio for the RTMP bridge.
pub struct OpusEncoder {
    state: *mut c_void,
    library: &'static Library,
    packet: Vec<u8>,
    channels: usize,
}

// The state is owned by this value alone and libopus keeps no thread-local state.
unsafe impl Send for OpusEncoder {}

impl OpusEncoder {
    /// A full-band encoder (OPUS_APPLICATION_AUDIO) of `channels` (1 or 2) at `bitrate_bps`
    /// (6 000 - 510 000).
    pub fn new(channels: u8, bitrate_bps: i32) -> Result<Self, TranscodeError> {
        if !(1..=2).contains(&channels) {
            return Err(TranscodeError::InvalidParameter(format!(
                "{channels} Opus channels"
            )));
        }
        if !BITRATE_RANGE.contains(&bitrate_bps) {
            return Err(TranscodeError::InvalidParameter(format!(
                "Opus bitrate {bitrate_bps} bit/s"
            )));
        }
        let library = library().ok_or(TranscodeError::OpusUnavailable)?;
        let mut error: c_int = 0;
        // SAFETY: valid arguments per opus.h; `error` is a live out-parameter.
        let state =
            unsafe { (library.create)(48_000, c_int::from(channels), OPUS_APPLICATION_AUDIO, &mut error) };
        if state.is_null() || error != 0 {
            return Err(TranscodeError::Opus {
                operation: "encoder_create",
                code: error,
            });
        }
        let encoder = OpusEncoder {
            state,
            library,
            packet: vec![0; PACKET_BYTES_MAX],
            channels: usize::from(channels),
        };
        // SAFETY: `state` is a live encoder; the request takes one opus_int32.
        let code = unsafe { (library.ctl)(state, OPUS_SET_BITRATE_REQUEST, bitrate_bps) };
        if code != 0 {
            return Err(TranscodeError::Opus {
                operation: "set_bitrate",
                code,
            });
        }
        Ok(encoder)
    }

    /// The channel count each frame interleaves.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// `None` when libopus is not installed or refuses.
    pub fn narrowband() -> Option<Self> {
        let library = library()?;
        let mut error: c_int = 0;
        // SAFETY: valid arguments per opus.h; `error` is a live out-parameter.
        let state = unsafe { (library.create)(48_000, 1, OPUS_APPLICATION_VOIP, &mut error) };
        if state.is_null() || error != 0 {
            return None;
        }
        // SAFETY: `state` is a live encoder; both requests take one opus_int32.
        unsafe {
            (library.ctl)(state, OPUS_SET_BITRATE_REQUEST, NARROWBAND_BITRATE_BPS);
            (library.ctl)(state, OPUS_SET_BANDWIDTH_REQUEST, OPUS_BANDWIDTH_NARROWBAND);
        }
        Some(OpusEncoder {
            state,
            library,
            packet: vec![0; PACKET_BYTES_MAX],
            channels: 1,
        })
    }

    /// Encode one 20 ms frame ([`OPUS_FRAME_SAMPLES`] samples per channel, interleaved);
    /// `None` on a wrong length or an encoder error.
    pub fn encode(&mut self, pcm: &[i16]) -> Option<Vec<u8>> {
        if pcm.len() != OPUS_FRAME_SAMPLES * self.channels {
            return None;
        }
        // SAFETY: `pcm` holds exactly one frame of every channel; `packet` is writable for its
        // whole length, which is what we pass as the maximum.
        let written = unsafe {
            (self.library.encode)(
                self.state,
                pcm.as_ptr(),
                OPUS_FRAME_SAMPLES as c_int,
                self.packet.as_mut_ptr(),
                PACKET_BYTES_MAX as i32,
            )
        };
        let written = usize::try_from(written).ok()?;
        Some(self.packet.get(..written)?.to_vec())
    }
}

impl Drop for OpusEncoder {
    fn drop(&mut self) {
        // SAFETY: `state` came from opus_encoder_create and is destroyed only here.
        unsafe { (self.library.destroy)(self.state) }
    }
}

/// A 48 kHz Opus decoder to interleaved i16 of a fixed channel count (libopus mixes or
/// duplicates whatever the packets carry).
pub struct OpusDecoder {
    state: *mut c_void,
    library: &'static Library,
    pcm: Vec<i16>,
    channels: usize,
    /// Samples per channel of the last good packet: what concealment stands in for.
    last_samples: usize,
}

// As for the encoder: the state is owned by this value alone.
unsafe impl Send for OpusDecoder {}

impl OpusDecoder {
    /// A decoder to `channels` (1 or 2) at 48 kHz.
    pub fn new(channels: u8) -> Result<Self, TranscodeError> {
        if !(1..=2).contains(&channels) {
            return Err(TranscodeError::InvalidParameter(format!(
                "{channels} Opus channels"
            )));
        }
        let library = library().ok_or(TranscodeError::OpusUnavailable)?;
        let mut error: c_int = 0;
        // SAFETY: valid arguments per opus.h; `error` is a live out-parameter.
        let state = unsafe { (library.decoder_create)(48_000, c_int::from(channels), &mut error) };
        if state.is_null() || error != 0 {
            return Err(TranscodeError::Opus {
                operation: "decoder_create",
                code: error,
            });
        }
        let channels = usize::from(channels);
        Ok(OpusDecoder {
            state,
            library,
            pcm: vec![0; DECODED_SAMPLES_MAX * channels],
            channels,
            last_samples: OPUS_FRAME_SAMPLES,
        })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decode one packet to interleaved i16 (its duration × channels samples).
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[i16], TranscodeError> {
        if packet.is_empty() {
            return Err(TranscodeError::EmptyPacket);
        }
        let length = i32::try_from(packet.len())
            .map_err(|_| TranscodeError::Decode("oversized Opus packet".into()))?;
        self.run(packet.as_ptr(), length, DECODED_SAMPLES_MAX)
    }

    /// Packet loss concealment: `samples` per channel (at most 120 ms; 0 means the length of
    /// the last packet) of libopus's best guess at what was lost.
    pub fn conceal(&mut self, samples: usize) -> Result<&[i16], TranscodeError> {
        let samples = if samples == 0 {
            self.last_samples
        } else {
            samples.min(DECODED_SAMPLES_MAX)
        };
        self.run(std::ptr::null(), 0, samples)
    }

    fn run(&mut self, data: *const u8, length: i32, samples: usize) -> Result<&[i16], TranscodeError> {
        // SAFETY: `data` is null (concealment, with length 0) or points at `length` readable
        // bytes; `pcm` holds DECODED_SAMPLES_MAX × channels samples and `samples` is at most
        // DECODED_SAMPLES_MAX, so libopus never writes past it.
        let decoded = unsafe {
            (self.library.decode)(
                self.state,
                data,
                length,
                self.pcm.as_mut_ptr(),
                samples as c_int,
                0,
            )
        };
        let decoded = usize::try_from(decoded).map_err(|_| TranscodeError::Opus {
            operation: "decode",
            code: decoded,
        })?;
        if !data.is_null() {
            self.last_samples = decoded.max(1);
        }
        self.pcm
            .get(..decoded * self.channels)
            .ok_or(TranscodeError::Opus {
                operation: "decode",
                code: -1,
            })
    }
}

impl Drop for OpusDecoder {
    fn drop(&mut self) {
        // SAFETY: `state` came from opus_decoder_create and is destroyed only here.
        unsafe { (self.library.decoder_destroy)(self.state) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_tone_into_opus_packets() {
        let Some(mut encoder) = OpusEncoder::narrowband() else {
            panic!("libopus.so.0 is installed with ffmpeg (scripts/install-test-deps.sh)");
        };
        let tone: Vec<i16> = (0..OPUS_FRAME_SAMPLES)
            .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 48_000.0).sin() * 8000.0) as i16)
            .collect();
        let packet = encoder.encode(&tone).expect("a packet");
        assert!(!packet.is_empty() && packet.len() < 400, "{} bytes", packet.len());
        assert_eq!(encoder.encode(&tone[..100]), None, "one whole frame only");
    }

    #[test]
    fn a_stereo_tone_survives_an_opus_round_trip() {
        let mut encoder = OpusEncoder::new(2, 96_000).expect("libopus.so.0 (libopus0)");
        let mut decoder = OpusDecoder::new(2).unwrap();
        let mut decoded = Vec::new();
        for frame in 0..50 {
            let pcm: Vec<i16> = (0..OPUS_FRAME_SAMPLES)
                .flat_map(|i| {
                    let t = (frame * OPUS_FRAME_SAMPLES + i) as f64 / 48_000.0;
                    let s = ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
                    [s, s]
                })
                .collect();
            let packet = encoder.encode(&pcm).expect("a packet");
            decoded.extend_from_slice(decoder.decode(&packet).unwrap());
        }
        assert_eq!(decoded.len(), 50 * OPUS_FRAME_SAMPLES * 2);
        let tail = &decoded[decoded.len() / 2..];
        let crossings = tail
            .windows(4)
            .step_by(2)
            .filter(|w| w[0] < 0 && w[2] >= 0)
            .count();
        // 0.5 s of 440 Hz.
        assert!((215..=225).contains(&crossings), "{crossings} crossings");
        assert_eq!(decoder.conceal(0).unwrap().len(), OPUS_FRAME_SAMPLES * 2);
        assert!(
            encoder.encode(&pcm_of(OPUS_FRAME_SAMPLES)).is_none(),
            "stereo wants two channels"
        );
    }

    #[test]
    fn refuses_bad_parameters_and_packets() {
        assert!(OpusEncoder::new(3, 64_000).is_err());
        assert!(OpusEncoder::new(1, 1_000).is_err());
        assert!(OpusDecoder::new(0).is_err());
        let mut decoder = OpusDecoder::new(1).unwrap();
        assert_eq!(decoder.decode(&[]).unwrap_err(), TranscodeError::EmptyPacket);
        for seed in 0u32..500 {
            let packet: Vec<u8> = (0..1 + seed % 40)
                .map(|i| (seed.wrapping_mul(2_654_435_761) >> (i % 24)) as u8)
                .collect();
            // Garbage either decodes to something of a valid length or is refused.
            if let Ok(pcm) = decoder.decode(&packet) {
                assert!(pcm.len() <= DECODED_SAMPLES_MAX);
            }
        }
    }

    fn pcm_of(samples: usize) -> Vec<i16> {
        vec![0; samples]
    }
}
