//! Black H.264 pictures at a stream's own resolution, profile and level, for the recorder's
//! padding (the time before a stream's first keyframe, or before a late participant joined the
//! room's timeline): an IDR picture, and P pictures that repeat it with every macroblock
//! skipped. A tiny encoder, not a table: the pictures are exact and cost a few bytes per
//! macroblock.
//!
//! The IDR's first macroblock is I_PCM (raw samples: luma 16, chroma 128, video black); every
//! other one is Intra 16x16 DC prediction with no residual, so it copies its neighbours' black.
//! CAVLC, no deblocking, picture order count type 2. The parameter sets use ids of their own
//! ([`BLACK_SPS_ID`], [`BLACK_PPS_ID`]) so they can sit in one `avcC` beside the stream's own
//! (which browsers and encoders number 0) and the recording keeps one sample entry.
//!
//! Pure code, run on a recorder writer thread. Invariants: every NAL unit returned is a
//! complete NAL (header byte, emulation prevention applied), without a start code or length.

use super::bits::{add_emulation_prevention, BitWriter};

/// `seq_parameter_set_id` of the black pictures' SPS (the highest allowed).
pub const BLACK_SPS_ID: u32 = 31;
/// `pic_parameter_set_id` of their PPS (the highest allowed).
pub const BLACK_PPS_ID: u32 = 255;
/// `log2_max_frame_num_minus4`: frame numbers count to 65,535 before they wrap.
const LOG2_MAX_FRAME_NUM_MINUS4: u32 = 12;
const FRAME_NUM_BITS: u32 = LOG2_MAX_FRAME_NUM_MINUS4 + 4;
/// The largest picture made, in macroblocks (8K UHD is 32,400): bounds the work and the size.
pub const BLACK_MACROBLOCKS_MAX: u32 = 36_864;

const NAL_SPS: u8 = 0x67; // nal_ref_idc 3, type 7
const NAL_PPS: u8 = 0x68; // nal_ref_idc 3, type 8
const NAL_IDR: u8 = 0x65; // nal_ref_idc 3, type 5
const NAL_P: u8 = 0x41; // nal_ref_idc 2, type 1

/// Profiles whose SPS carries the chroma format and bit depth fields.
const PROFILES_WITH_CHROMA_FIELDS: [u8; 12] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];

/// What the black pictures copy from the stream they stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlackParams {
    pub width: u32,
    pub height: u32,
    pub profile_idc: u8,
    /// The `constraint_set` flags byte of the stream's SPS.
    pub constraint_flags: u8,
    pub level_idc: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlackError {
    #[error("picture size {width}x{height} is empty or over {BLACK_MACROBLOCKS_MAX} macroblocks")]
    Size { width: u32, height: u32 },
}

/// The parameter sets and pictures for one size.
#[derive(Debug, Clone)]
pub struct BlackH264 {
    params: BlackParams,
    width_mbs: u32,
    height_mbs: u32,
    sps: Vec<u8>,
    pps: Vec<u8>,
    idr: Vec<u8>,
}

impl BlackH264 {
    pub fn new(params: BlackParams) -> Result<Self, BlackError> {
        let size = BlackError::Size {
            width: params.width,
            height: params.height,
        };
        let width_mbs = params.width.div_ceil(16);
        let height_mbs = params.height.div_ceil(16);
        let mbs = width_mbs.checked_mul(height_mbs).ok_or(size.clone())?;
        if mbs == 0 || mbs > BLACK_MACROBLOCKS_MAX {
            return Err(size);
        }
        let mut black = BlackH264 {
            params,
            width_mbs,
            height_mbs,
            sps: Vec::new(),
            pps: Vec::new(),
            idr: Vec::new(),
        };
        black.sps = nal(NAL_SPS, black.sps_rbsp());
        black.pps = nal(NAL_PPS, pps_rbsp());
        black.idr = nal(NAL_IDR, black.idr_rbsp(0));
        Ok(black)
    }

    pub fn params(&self) -> BlackParams {
        self.params
    }

    pub fn sps(&self) -> &[u8] {
        &self.sps
    }

    pub fn pps(&self) -> &[u8] {
        &self.pps
    }

    /// The black IDR picture (`idr_pic_id` 0).
    pub fn idr(&self) -> &[u8] {
        &self.idr
    }

    /// The `n`th picture after the IDR (n ≥ 1): every macroblock skipped.
    pub fn repeat(&self, n: u32) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(0); // first_mb_in_slice
        w.ue(5); // slice_type: P, all slices
        w.ue(BLACK_PPS_ID);
        w.bits(FRAME_NUM_BITS, n % (1 << FRAME_NUM_BITS));
        w.bit(false); // num_ref_idx_active_override_flag
        w.bit(false); // ref_pic_list_modification_flag_l0
        w.bit(false); // adaptive_ref_pic_marking_mode_flag
        w.se(0); // slice_qp_delta
        w.ue(1); // disable_deblocking_filter_idc
        w.ue(self.width_mbs * self.height_mbs); // mb_skip_run: the whole picture
        nal(NAL_P, w.finish_rbsp())
    }

    fn sps_rbsp(&self) -> Vec<u8> {
        let p = self.params;
        let mut w = BitWriter::default();
        w.bits(8, u32::from(p.profile_idc));
        w.bits(8, u32::from(p.constraint_flags));
        w.bits(8, u32::from(p.level_idc));
        w.ue(BLACK_SPS_ID);
        if PROFILES_WITH_CHROMA_FIELDS.contains(&p.profile_idc) {
            w.ue(1); // chroma_format_idc: 4:2:0
            w.ue(0); // bit_depth_luma_minus8
            w.ue(0); // bit_depth_chroma_minus8
            w.bit(false); // qpprime_y_zero_transform_bypass_flag
            w.bit(false); // seq_scaling_matrix_present_flag
        }
        w.ue(LOG2_MAX_FRAME_NUM_MINUS4);
        w.ue(2); // pic_order_cnt_type: output order is decoding order
        w.ue(1); // max_num_ref_frames
        w.bit(false); // gaps_in_frame_num_value_allowed_flag
        w.ue(self.width_mbs - 1);
        w.ue(self.height_mbs - 1);
        w.bit(true); // frame_mbs_only_flag
        w.bit(true); // direct_8x8_inference_flag
                     // 4:2:0 progressive: cropping counts in units of 2 samples both ways.
        let crop_right = (self.width_mbs * 16 - p.width) / 2;
        let crop_bottom = (self.height_mbs * 16 - p.height) / 2;
        let cropping = crop_right > 0 || crop_bottom > 0;
        w.bit(cropping);
        if cropping {
            w.ue(0);
            w.ue(crop_right);
            w.ue(0);
            w.ue(crop_bottom);
        }
        w.bit(false); // vui_parameters_present_flag
        w.finish_rbsp()
    }

    fn idr_rbsp(&self, idr_pic_id: u32) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(0); // first_mb_in_slice
        w.ue(7); // slice_type: I, all slices
        w.ue(BLACK_PPS_ID);
        w.bits(FRAME_NUM_BITS, 0);
        w.ue(idr_pic_id);
        w.bit(false); // no_output_of_prior_pics_flag
        w.bit(false); // long_term_reference_flag
        w.se(0); // slice_qp_delta
        w.ue(1); // disable_deblocking_filter_idc
        for row in 0..self.height_mbs {
            for column in 0..self.width_mbs {
                if row == 0 && column == 0 {
                    pcm_black_macroblock(&mut w);
                } else {
                    // I_16x16_2_0_0: DC prediction, no chroma or luma AC coefficients.
                    w.ue(3);
                    w.ue(0); // intra_chroma_pred_mode: DC
                    w.se(0); // mb_qp_delta
                             // Intra16x16DCLevel with no coefficient: coeff_token for TotalCoeff 0,
                             // chosen by nC, the coefficient count of the neighbours (an I_PCM
                             // neighbour counts 16, the others 0).
                    let next_to_pcm = (row == 0 && column == 1) || (row == 1 && column == 0);
                    if next_to_pcm {
                        w.bits(6, 0b000011); // nC >= 8
                    } else {
                        w.bit(true); // 0 <= nC < 2
                    }
                }
            }
        }
        w.finish_rbsp()
    }
}

fn pps_rbsp() -> Vec<u8> {
    let mut w = BitWriter::default();
    w.ue(BLACK_PPS_ID);
    w.ue(BLACK_SPS_ID);
    w.bit(false); // entropy_coding_mode_flag: CAVLC
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.bits(2, 0); // weighted_bipred_idc
    w.se(0); // pic_init_qp_minus26
    w.se(0); // pic_init_qs_minus26
    w.se(0); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    w.finish_rbsp()
}

/// I_PCM with video black: luma 16, chroma 128.
fn pcm_black_macroblock(w: &mut BitWriter) {
    w.ue(25); // mb_type: I_PCM
    w.align_zero(); // pcm_alignment_zero_bit
    for _ in 0..256 {
        w.byte(16);
    }
    for _ in 0..128 {
        w.byte(128);
    }
}

fn nal(header: u8, rbsp: Vec<u8>) -> Vec<u8> {
    let mut out = vec![header];
    out.extend(add_emulation_prevention(&rbsp));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annex_b(black: &BlackH264, repeats: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |nal: &[u8]| {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        };
        push(black.sps());
        push(black.pps());
        push(black.idr());
        for n in 1..=repeats {
            push(&black.repeat(n));
        }
        out
    }

    /// ffmpeg decodes the pictures to raw 4:2:0: luma 16 and chroma 128 is video black.
    fn decode_yuv(stream: &[u8], name: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("webcall-black-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("black.h264");
        std::fs::write(&input, stream).unwrap();
        let output = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "h264", "-i"])
            .arg(&input)
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
            .output()
            .expect("ffmpeg runs (scripts/install-test-deps.sh installs it)");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    #[test]
    fn pictures_decode_to_black_at_odd_sizes_and_profiles() {
        for (width, height, profile, constraints, level) in [
            (640u32, 480u32, 66u8, 0xe0u8, 30u8),
            (1280, 720, 100, 0x00, 31),
            (854, 482, 77, 0x40, 31),
            (16, 16, 66, 0xe0, 10),
        ] {
            let params = BlackParams {
                width,
                height,
                profile_idc: profile,
                constraint_flags: constraints,
                level_idc: level,
            };
            let black = BlackH264::new(params).unwrap();
            let yuv = decode_yuv(&annex_b(&black, 9), &format!("{width}x{height}"));
            let luma = (width * height) as usize;
            let chroma = (width.div_ceil(2) * height.div_ceil(2)) as usize;
            let frame = luma + 2 * chroma;
            assert_eq!(
                yuv.len(),
                frame * 10,
                "{width}x{height}: ten pictures of the stream's size"
            );
            for (index, picture) in yuv.chunks(frame).enumerate() {
                let (y, uv) = picture.split_at(luma);
                assert!(
                    y.iter().all(|&s| s == 16) && uv.iter().all(|&s| s == 128),
                    "{width}x{height} picture {index}: not video black"
                );
            }
        }
    }

    #[test]
    fn sizes_out_of_bounds_are_refused() {
        let params = |width, height| BlackParams {
            width,
            height,
            profile_idc: 66,
            constraint_flags: 0,
            level_idc: 30,
        };
        assert!(BlackH264::new(params(0, 480)).is_err());
        assert!(BlackH264::new(params(65_536, 65_536)).is_err());
        assert!(BlackH264::new(params(u32::MAX, u32::MAX)).is_err());
    }
}
