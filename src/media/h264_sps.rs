//! Reading an H.264 sequence parameter set (ITU-T H.264 7.3.2.1) for what a recording needs
//! of it: profile, constraints, level and the cropped picture size.
//!
//! Pure code over a peer's bytes: every read is bounded ([`BitReader`] answers `None` past
//! the end), so a truncated or hostile SPS is `None`, never a panic.

use super::bits::{remove_emulation_prevention, BitReader};

/// Profiles whose SPS carries chroma format, bit depths and scaling lists.
const HIGH_PROFILES: [u8; 12] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];
/// Bounds on the counts an SPS declares, so junk cannot make the parser loop.
const REF_FRAMES_IN_CYCLE_MAX: u32 = 255;
const SIDE_MACROBLOCKS_MAX: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub width: u16,
    pub height: u16,
}

/// Parse an SPS NAL unit (header byte included, emulation prevention in place).
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let rbsp = remove_emulation_prevention(nal.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > REF_FRAMES_IN_CYCLE_MAX {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let height_mbs = height_units.checked_mul(if frame_mbs_only { 1 } else { 2 })?;
    if width_mbs > SIDE_MACROBLOCKS_MAX || height_mbs > SIDE_MACROBLOCKS_MAX {
        return None;
    }
    let (mut width, mut height) = (width_mbs * 16, height_mbs * 16);
    if r.bit()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_x, crop_y) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let crop_y = crop_y * if frame_mbs_only { 1 } else { 2 };
        width = width.checked_sub(left.checked_add(right)?.checked_mul(crop_x)?)?;
        height = height.checked_sub(top.checked_add(bottom)?.checked_mul(crop_y)?)?;
    }
    Some(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        width: u16::try_from(width).ok().filter(|w| *w > 0)?,
        height: u16::try_from(height).ok().filter(|h| *h > 0)?,
    })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: u32) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::black_h264::{BlackH264, BlackParams};

    #[test]
    fn reads_back_the_black_pictures_sps_with_cropping() {
        for (width, height, profile_idc) in [(640, 480, 66), (1280, 720, 100), (642, 362, 66), (34, 18, 77)] {
            let black = BlackH264::new(BlackParams {
                width,
                height,
                profile_idc,
                constraint_flags: 0xc0,
                level_idc: 31,
            })
            .unwrap();
            let info = parse_sps(black.sps()).unwrap();
            assert_eq!((info.width, info.height), (width as u16, height as u16));
            assert_eq!(
                (info.profile_idc, info.constraint_flags, info.level_idc),
                (profile_idc, 0xc0, 31)
            );
        }
    }

    #[test]
    fn junk_and_truncation_are_none() {
        assert_eq!(parse_sps(&[]), None);
        assert_eq!(parse_sps(&[0x68, 1, 2, 3]), None);
        let black = BlackH264::new(BlackParams {
            width: 640,
            height: 480,
            profile_idc: 66,
            constraint_flags: 0,
            level_idc: 30,
        })
        .unwrap();
        let sps = black.sps();
        for cut in 0..sps.len() - 1 {
            let _ = parse_sps(&sps[..cut]);
        }
        let mut state = 7u32;
        for _ in 0..2000 {
            let bytes: Vec<u8> = std::iter::once(0x67)
                .chain((0..24).map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (state >> 16) as u8
                }))
                .collect();
            let _ = parse_sps(&bytes);
        }
    }
}
