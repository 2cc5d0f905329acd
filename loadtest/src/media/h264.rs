//! Synthetic H.264 (constrained baseline, profile-level-id 42e01f) and its RTP packetizer.
//!
//! Owns parameter-set and slice generation and RFC 6184 packetization mode 1 (single NAL
//! unit, STAP-A, FU-A). The SPS and PPS are syntactically valid (a parser reads back the
//! picture size); slices carry a valid header followed by filler bytes, which is enough for
//! keyframe detection, SPS parsing and recording, not for decoding pictures.
//! Invariants: NAL units never contain three-byte start codes (emulation prevention is
//! applied), and no packet produced by [`packetize`] exceeds the given MTU.

use super::bits::{add_emulation_prevention, remove_emulation_prevention, BitReader, BitWriter};
use crate::error::{Error, Result};

/// Coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// Coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub const NAL_PPS: u8 = 8;
/// RTP aggregation packet (RFC 6184).
pub const NAL_STAP_A: u8 = 24;
/// RTP fragmentation unit (RFC 6184).
pub const NAL_FU_A: u8 = 28;

/// The profile-level-id the generated SPS declares (constrained baseline, level 3.1).
pub const PROFILE_LEVEL_ID: u32 = 0x42e01f;
const LOG2_MAX_FRAME_NUM: u8 = 4;

/// An SPS NAL unit (header byte included) for a `width` × `height` picture; both are
/// rounded up to whole macroblocks and cropped back with frame cropping.
pub fn sps(width: u16, height: u16) -> Vec<u8> {
    let mbs_w = u32::from(width.max(16)).div_ceil(16);
    let mbs_h = u32::from(height.max(16)).div_ceil(16);
    let mut w = BitWriter::new();
    w.bits(PROFILE_LEVEL_ID, 24); // profile_idc 66, constraint flags 0xe0, level_idc 31
    w.ue(0); // seq_parameter_set_id
    w.ue(u32::from(LOG2_MAX_FRAME_NUM) - 4);
    w.ue(2); // pic_order_cnt_type
    w.ue(1); // max_num_ref_frames
    w.bit(false); // gaps_in_frame_num_value_allowed_flag
    w.ue(mbs_w - 1);
    w.ue(mbs_h - 1);
    w.bit(true); // frame_mbs_only_flag
    w.bit(true); // direct_8x8_inference_flag
    let crop_right = (mbs_w * 16 - u32::from(width.max(16))) / 2;
    let crop_bottom = (mbs_h * 16 - u32::from(height.max(16))) / 2;
    let cropping = crop_right != 0 || crop_bottom != 0;
    w.bit(cropping);
    if cropping {
        w.ue(0);
        w.ue(crop_right);
        w.ue(0);
        w.ue(crop_bottom);
    }
    w.bit(false); // vui_parameters_present_flag
    nal(3, NAL_SPS, &w.finish_rbsp())
}

/// The matching PPS NAL unit.
pub fn pps() -> Vec<u8> {
    let mut w = BitWriter::new();
    w.ue(0); // pic_parameter_set_id
    w.ue(0); // seq_parameter_set_id
    w.bit(false); // entropy_coding_mode_flag (CAVLC)
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.bits(0, 2); // weighted_bipred_idc
    w.se(0); // pic_init_qp_minus26
    w.se(0); // pic_init_qs_minus26
    w.se(0); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    nal(3, NAL_PPS, &w.finish_rbsp())
}

/// A slice NAL unit of about `size` bytes: IDR (I slice) or non-IDR (P slice).
pub fn slice(idr: bool, frame_num: u32, idr_pic_id: u32, size: usize, seed: u32) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.ue(0); // first_mb_in_slice
    w.ue(if idr { 7 } else { 5 }); // slice_type: I or P (all slices of the picture)
    w.ue(0); // pic_parameter_set_id
    w.bits(frame_num % (1 << LOG2_MAX_FRAME_NUM), LOG2_MAX_FRAME_NUM);
    if idr {
        w.ue(idr_pic_id % 65_536);
    } else {
        w.bit(false); // num_ref_idx_active_override_flag
        w.bit(false); // ref_pic_list_modification_flag_l0
    }
    if idr {
        w.bit(false); // no_output_of_prior_pics_flag
        w.bit(false); // long_term_reference_flag
    } else {
        w.bit(false); // adaptive_ref_pic_marking_mode_flag
    }
    w.se(0); // slice_qp_delta
    w.ue(0); // disable_deblocking_filter_idc
    w.se(0); // slice_alpha_c0_offset_div2
    w.se(0); // slice_beta_offset_div2
    let mut rbsp = w.finish_rbsp();
    // Filler: never zero, so no start-code emulation can arise.
    let mut x = seed | 1;
    while rbsp.len() + 1 < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        rbsp.push((x % 255) as u8 + 1);
    }
    nal(
        if idr { 3 } else { 2 },
        if idr { NAL_IDR } else { NAL_SLICE },
        &rbsp,
    )
}

fn nal(nri: u8, kind: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut out = vec![(nri << 5) | kind];
    out.extend_from_slice(&add_emulation_prevention(rbsp));
    out
}

/// Packetizes the NAL units of one access unit: consecutive small units share a STAP-A,
/// a unit larger than `mtu` is split into FU-As, any other goes alone.
pub fn packetize(nals: &[Vec<u8>], mtu: usize) -> Vec<Vec<u8>> {
    let mtu = mtu.max(16);
    let mut packets = Vec::new();
    let mut group: Vec<&[u8]> = Vec::new();
    let mut group_len = 1; // STAP-A header byte
    for unit in nals.iter().filter(|n| !n.is_empty()) {
        if unit.len() > mtu {
            flush(&mut group, &mut packets);
            group_len = 1;
            fragment(unit, mtu, &mut packets);
        } else {
            if group_len + 2 + unit.len() > mtu {
                flush(&mut group, &mut packets);
                group_len = 1;
            }
            group.push(unit);
            group_len += 2 + unit.len();
        }
    }
    flush(&mut group, &mut packets);
    packets
}

fn flush(group: &mut Vec<&[u8]>, packets: &mut Vec<Vec<u8>>) {
    match group.as_slice() {
        [] => {}
        [one] => packets.push(one.to_vec()),
        many => {
            let nri = many.iter().filter_map(|n| n.first()).map(|b| b & 0x60).max();
            let mut p = vec![nri.unwrap_or(0) | NAL_STAP_A];
            for n in many {
                p.extend_from_slice(&(n.len() as u16).to_be_bytes());
                p.extend_from_slice(n);
            }
            packets.push(p);
        }
    }
    group.clear();
}

fn fragment(unit: &[u8], mtu: usize, packets: &mut Vec<Vec<u8>>) {
    let Some((&header, body)) = unit.split_first() else {
        return;
    };
    let chunks: Vec<&[u8]> = body.chunks(mtu - 2).collect();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.into_iter().enumerate() {
        let fu = u8::from(i == 0) << 7 | u8::from(i == last) << 6 | (header & 0x1f);
        let mut p = vec![(header & 0xe0) | NAL_FU_A, fu];
        p.extend_from_slice(chunk);
        packets.push(p);
    }
}

/// Reads the picture size back from an SPS NAL unit (only the subset [`sps`] writes plus
/// the high-profile chroma fields are understood).
pub fn sps_dimensions(sps_nal: &[u8]) -> Result<(u32, u32)> {
    let (&header, body) = sps_nal
        .split_first()
        .ok_or_else(|| Error::Media("empty SPS".into()))?;
    if header & 0x1f != NAL_SPS {
        return Err(Error::Media(format!("NAL type {} is not an SPS", header & 0x1f)));
    }
    let rbsp = remove_emulation_prevention(body);
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // sps id
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128) {
        if r.ue()? == 3 {
            r.bit()?;
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? {
            return Err(Error::Media("scaling matrices are not supported".into()));
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => return Err(Error::Media("pic_order_cnt_type 1 is not supported".into())),
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps
    let w_mbs = r.ue()? + 1;
    let h_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?;
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? {
        (cl, cr, ct, cb) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let mul = if frame_mbs_only { 1 } else { 2 };
    let width = (w_mbs * 16).saturating_sub(2 * (cl + cr));
    let height = (h_units * 16 * mul).saturating_sub(2 * mul * (ct + cb));
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sps_round_trip_and_header() {
        for (w, h) in [(640u16, 480u16), (320, 240), (1280, 720), (642, 362)] {
            let s = sps(w, h);
            assert_eq!(&s[..4], &[0x67, 0x42, 0xe0, 0x1f]);
            assert_eq!(sps_dimensions(&s).unwrap(), (u32::from(w), u32::from(h)));
        }
        assert_eq!(pps()[0], 0x68);
        assert!(sps_dimensions(&pps()).is_err());
        assert!(sps_dimensions(&[]).is_err());
        assert!(sps_dimensions(&[0x67, 0x42]).is_err());
    }

    #[test]
    fn slices_have_types_and_no_start_codes() {
        let idr = slice(true, 0, 1, 1800, 7);
        let p = slice(false, 3, 0, 500, 9);
        assert_eq!((idr[0] & 0x1f, p[0] & 0x1f), (NAL_IDR, NAL_SLICE));
        assert!(idr.len() >= 1799 && idr.len() <= 1810, "{}", idr.len());
        for n in [&idr, &p, &sps(640, 480), &pps()] {
            assert!(!n.windows(3).any(|w| w == [0, 0, 1] || w == [0, 0, 0]));
        }
    }

    #[test]
    fn keyframe_packetization() {
        let nals = vec![sps(640, 480), pps(), slice(true, 0, 0, 1800, 1)];
        let packets = packetize(&nals, 1100);
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[0][0] & 0x1f, NAL_STAP_A);
        assert_eq!(packets[1][0] & 0x1f, NAL_FU_A);
        assert_eq!(packets[1][1], 0x80 | NAL_IDR); // start
        assert_eq!(packets[2][1], 0x40 | NAL_IDR); // end
        assert!(packets.iter().all(|p| p.len() <= 1100));
        // Reassembling the FU-As gives the IDR back.
        let mut idr = vec![(packets[1][0] & 0xe0) | (packets[1][1] & 0x1f)];
        idr.extend_from_slice(&packets[1][2..]);
        idr.extend_from_slice(&packets[2][2..]);
        assert_eq!(idr, nals[2]);
    }

    #[test]
    fn small_units_go_alone_or_aggregated() {
        let one = packetize(&[slice(false, 1, 0, 400, 3)], 1100);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0][0] & 0x1f, NAL_SLICE);
        let all = packetize(&[sps(320, 240), pps(), slice(true, 0, 0, 300, 2)], 1100);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0][0], 0x60 | NAL_STAP_A);
    }
}
