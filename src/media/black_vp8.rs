//! Black VP8 keyframes at any picture size, for the recorder's padding of a VP8 stream (the
//! time before its first keyframe, or before a late participant joined the room's timeline).
//! A tiny encoder of one flat picture, not a table (RFC 6386).
//!
//! Every macroblock is DC-predicted. The first one carries a single second-order (Y2) DC
//! coefficient that takes luma from the predictor's 128 down to 15 (video black; chroma
//! stays 128); every other macroblock is skipped and copies its neighbours. No loop filter,
//! one token partition, default probabilities (no updates). Each picture is a keyframe of
//! about 3.5 bits per macroblock, so any of them can start playback.
//!
//! Pure code, run on a recorder writer thread. Invariants: the output is one complete frame
//! (frame tag, keyframe header, both partitions); sizes are those VP8 can code (1–16383).

use super::vp8_tables::{COEF_UPDATE_PROBS, DEFAULT_COEF_PROBS};

/// The quantizer index: the coarsest, so the one coefficient is small.
const Q_INDEX: u32 = 127;
/// The Y2 DC coefficient (quantized) that, at [`Q_INDEX`], turns the 128 of the first
/// macroblock's predictor into luma 15: -23 × 314 (the Y2 DC step) gives -7222; the inverse
/// WHT makes each block's DC (-7222 + 3) >> 3 = -903, the inverse DCT each pixel's residual
/// (-903 + 4) >> 3 = -113.
const Y2_DC_LEVEL: u32 = 23;
/// `prob_skip_false`: nearly every macroblock is skipped.
const PROB_SKIP_FALSE: u8 = 1;
const KF_YMODE_PROBS: [u8; 3] = [145, 156, 163];
const KF_UV_MODE_PROB_DC: u8 = 142;
/// Extra-bit probabilities of DCT_CAT4 (values 19–34).
const CAT4_PROBS: [u8; 4] = [176, 155, 140, 135];
const CAT4_BASE: u32 = 19;
/// The largest side VP8's frame header can carry.
pub const VP8_SIDE_MAX: u16 = 16_383;

const BLOCK_TYPE_Y_AFTER_Y2: usize = 0;
const BLOCK_TYPE_Y2: usize = 1;
const BLOCK_TYPE_CHROMA: usize = 2;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlackVp8Error {
    #[error("VP8 cannot code a {0}x{1} picture")]
    Size(u16, u16),
}

/// One black keyframe of `width` × `height`.
pub fn black_vp8_keyframe(width: u16, height: u16) -> Result<Vec<u8>, BlackVp8Error> {
    if width == 0 || height == 0 || width > VP8_SIDE_MAX || height > VP8_SIDE_MAX {
        return Err(BlackVp8Error::Size(width, height));
    }
    let macroblocks = u32::from(width.div_ceil(16)) * u32::from(height.div_ceil(16));
    let first = first_partition(macroblocks);
    let tokens = token_partition();
    let first_len = u32::try_from(first.len()).unwrap_or(u32::MAX) & 0x7_ffff;
    // Frame tag: keyframe (bit 0 clear), version 0, shown, first partition size.
    let tag = (1u32 << 4) | (first_len << 5);
    let mut out = Vec::with_capacity(10 + first.len() + tokens.len());
    out.extend_from_slice(&tag.to_le_bytes()[..3]);
    out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
    out.extend_from_slice(&width.to_le_bytes()); // no scaling
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&first);
    out.extend_from_slice(&tokens);
    Ok(out)
}

fn first_partition(macroblocks: u32) -> Vec<u8> {
    let mut e = BoolEncoder::new();
    e.literal(1, 0); // color space
    e.literal(1, 0); // clamping required
    e.literal(1, 0); // no segmentation
    e.literal(1, 0); // filter type
    e.literal(6, 0); // loop filter level 0: none
    e.literal(3, 0); // sharpness
    e.literal(1, 0); // no loop filter deltas
    e.literal(2, 0); // one token partition
    e.literal(7, Q_INDEX);
    for _ in 0..5 {
        e.literal(1, 0); // no quantizer deltas
    }
    e.literal(1, 0); // refresh_entropy_probs: this frame's probabilities are not kept
    for prob in COEF_UPDATE_PROBS.iter().flatten().flatten().flatten() {
        e.bool(*prob, false); // no update
    }
    e.literal(1, 1); // mb_no_coeff_skip
    e.literal(8, u32::from(PROB_SKIP_FALSE));
    for index in 0..macroblocks {
        e.bool(PROB_SKIP_FALSE, index != 0); // skipped, but for the first
                                             // DC_PRED in the keyframe luma tree: "100".
        e.bool(KF_YMODE_PROBS[0], true);
        e.bool(KF_YMODE_PROBS[1], false);
        e.bool(KF_YMODE_PROBS[2], false);
        e.bool(KF_UV_MODE_PROB_DC, false); // chroma DC_PRED: "0"
    }
    e.finish()
}

/// The first macroblock's tokens: Y2 with its DC level, then end-of-block for the sixteen
/// luma and eight chroma blocks. Every context is 0 (no neighbour has coefficients) except
/// Y2's second position, which follows a value above one.
fn token_partition() -> Vec<u8> {
    let mut e = BoolEncoder::new();
    let y2 = &DEFAULT_COEF_PROBS[BLOCK_TYPE_Y2][0][0];
    // DCT_CAT4 is "1111101" through nodes 0, 1, 2, 3, 6, 8, 9.
    for (node, bit) in [
        (0, true),
        (1, true),
        (2, true),
        (3, true),
        (6, true),
        (8, false),
        (9, true),
    ] {
        e.bool(y2[node], bit);
    }
    let extra = Y2_DC_LEVEL - CAT4_BASE;
    for (i, prob) in CAT4_PROBS.iter().enumerate() {
        e.bool(*prob, (extra >> (3 - i)) & 1 == 1);
    }
    e.bool(128, true); // negative
    e.bool(DEFAULT_COEF_PROBS[BLOCK_TYPE_Y2][1][2][0], false); // EOB at position 1 (band 1)
    for _ in 0..16 {
        // Luma blocks start at position 1 (band 1) when Y2 carries their DC.
        e.bool(DEFAULT_COEF_PROBS[BLOCK_TYPE_Y_AFTER_Y2][1][0][0], false);
    }
    for _ in 0..8 {
        e.bool(DEFAULT_COEF_PROBS[BLOCK_TYPE_CHROMA][0][0][0], false);
    }
    e.finish()
}

/// RFC 6386 section 7.3's boolean entropy encoder.
struct BoolEncoder {
    out: Vec<u8>,
    range: u32,
    bottom: u32,
    bit_count: i32,
}

impl BoolEncoder {
    fn new() -> Self {
        BoolEncoder {
            out: Vec::new(),
            range: 255,
            bottom: 0,
            bit_count: 24,
        }
    }

    fn carry(&mut self) {
        for byte in self.out.iter_mut().rev() {
            if *byte == 255 {
                *byte = 0;
            } else {
                *byte += 1;
                return;
            }
        }
    }

    fn bool(&mut self, prob: u8, value: bool) {
        let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
        if value {
            self.bottom = self.bottom.wrapping_add(split);
            self.range -= split;
        } else {
            self.range = split;
        }
        while self.range < 128 {
            self.range <<= 1;
            if self.bottom & (1 << 31) != 0 {
                self.carry();
            }
            self.bottom <<= 1;
            self.bit_count -= 1;
            if self.bit_count == 0 {
                self.out.push((self.bottom >> 24) as u8);
                self.bottom &= (1 << 24) - 1;
                self.bit_count = 8;
            }
        }
    }

    fn literal(&mut self, bits: u32, value: u32) {
        for i in (0..bits).rev() {
            self.bool(128, (value >> i) & 1 == 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let mut c = self.bit_count;
        let mut v = self.bottom;
        if c < 32 && v & (1u32 << (32 - c)) != 0 {
            self.carry();
        }
        v <<= c & 7;
        c >>= 3;
        while c > 0 {
            v <<= 8;
            c -= 1;
        }
        for _ in 0..4 {
            self.out.push((v >> 24) as u8);
            v <<= 8;
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffmpeg decodes the frame (as IVF) to the size asked for, luma black, chroma neutral.
    fn decode_gray(width: u16, height: u16) -> Vec<u8> {
        let frame = black_vp8_keyframe(width, height).unwrap();
        let mut ivf = Vec::new();
        ivf.extend_from_slice(b"DKIF");
        ivf.extend_from_slice(&0u16.to_le_bytes());
        ivf.extend_from_slice(&32u16.to_le_bytes());
        ivf.extend_from_slice(b"VP80");
        ivf.extend_from_slice(&width.to_le_bytes());
        ivf.extend_from_slice(&height.to_le_bytes());
        ivf.extend_from_slice(&30u32.to_le_bytes());
        ivf.extend_from_slice(&1u32.to_le_bytes());
        ivf.extend_from_slice(&2u32.to_le_bytes());
        ivf.extend_from_slice(&0u32.to_le_bytes());
        for pts in 0..2u64 {
            ivf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            ivf.extend_from_slice(&pts.to_le_bytes());
            ivf.extend_from_slice(&frame);
        }
        let dir = std::env::temp_dir().join(format!(
            "webcall-black-vp8-{}-{width}x{height}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("black.ivf");
        std::fs::write(&input, ivf).unwrap();
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&input)
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
            .output()
            .expect("ffmpeg runs (scripts/install-test-deps.sh installs it)");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn black_keyframes_decode_to_black_at_their_size() {
        for (width, height) in [(640u16, 480u16), (320, 240), (33, 17), (1280, 720)] {
            let pixels = decode_gray(width, height);
            let (w, h) = (usize::from(width), usize::from(height));
            let luma = w * h;
            let chroma = w.div_ceil(2) * h.div_ceil(2);
            assert_eq!(
                pixels.len(),
                2 * (luma + 2 * chroma),
                "{width}x{height}: two frames"
            );
            let (y, uv) = pixels[..luma + 2 * chroma].split_at(luma);
            assert!(y.iter().all(|&v| v <= 16), "{width}x{height}: luma black");
            assert!(uv.iter().all(|&v| v == 128), "{width}x{height}: chroma neutral");
        }
    }

    #[test]
    fn a_frame_costs_a_few_bits_per_macroblock() {
        let frame = black_vp8_keyframe(1280, 720).unwrap();
        assert!(frame.len() < 2500, "{} bytes for 3600 macroblocks", frame.len());
        assert_eq!(frame[0] & 1, 0, "keyframe");
    }

    #[test]
    fn sizes_vp8_cannot_code_are_refused() {
        assert_eq!(black_vp8_keyframe(0, 10), Err(BlackVp8Error::Size(0, 10)));
        assert!(black_vp8_keyframe(16_384, 10).is_err());
    }
}
