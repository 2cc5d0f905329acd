//! An Opus encoder (libopus, BSD licence) for audio the recorder must turn into Opus (G.711).
//!
//! libopus is loaded at run time (`libopus.so.0`, Debian's `libopus0`, which ffmpeg and the
//! browsers already pull in), so building webcall needs no C library and a host without it
//! still runs: recordings of G.711 publishers then get silence, and say so in their JSON.
//!
//! Used on recorder writer threads only (never a worker); one encoder belongs to one
//! recording. Invariants: the library is opened once per process and never closed; every
//! call checks its return value; an encoder is destroyed exactly once (on drop).

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// Samples per channel of one 20 ms frame at 48 kHz.
pub const OPUS_FRAME_SAMPLES: usize = 960;
/// The largest packet asked for (RFC 6716 allows 1275 bytes per frame).
const PACKET_BYTES_MAX: usize = 1500;
const OPUS_APPLICATION_VOIP: c_int = 2048;
const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
const OPUS_SET_BANDWIDTH_REQUEST: c_int = 4008;
const OPUS_BANDWIDTH_NARROWBAND: c_int = 1101;
/// G.711 carries 64 kbit/s of narrowband speech; Opus keeps it at a third of that.
const NARROWBAND_BITRATE_BPS: c_int = 24_000;

type CreateFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_int) -> *mut c_void;
type EncodeFn = unsafe extern "C" fn(*mut c_void, *const i16, c_int, *mut u8, i32) -> i32;
type DestroyFn = unsafe extern "C" fn(*mut c_void);
type CtlFn = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;

struct Library {
    create: CreateFn,
    encode: EncodeFn,
    destroy: DestroyFn,
    ctl: CtlFn,
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
                        "libopus.so.0 not found: G.711 recordings get silent audio (install libopus0)"
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
                Some(Library {
                    create: std::mem::transmute::<*mut c_void, CreateFn>(create),
                    encode: std::mem::transmute::<*mut c_void, EncodeFn>(encode),
                    destroy: std::mem::transmute::<*mut c_void, DestroyFn>(destroy),
                    ctl: std::mem::transmute::<*mut c_void, CtlFn>(ctl),
                })
            }
        })
        .as_ref()
}

/// A mono 48 kHz Opus encoder for narrowband speech.
pub struct OpusEncoder {
    state: *mut c_void,
    library: &'static Library,
    packet: Vec<u8>,
}

// The state is owned by this value alone and libopus keeps no thread-local state.
unsafe impl Send for OpusEncoder {}

impl OpusEncoder {
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
        })
    }

    /// Encode one 20 ms frame ([`OPUS_FRAME_SAMPLES`] samples); `None` on a wrong length or
    /// an encoder error.
    pub fn encode(&mut self, pcm: &[i16]) -> Option<Vec<u8>> {
        if pcm.len() != OPUS_FRAME_SAMPLES {
            return None;
        }
        // SAFETY: `pcm` holds exactly one frame; `packet` is writable for its whole length,
        // which is what we pass as the maximum.
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
}
