//! H.264 over RTP (RFC 6184), sending side: one access unit's NAL units in, RTP payloads out
//! (a single NAL unit packet when it fits, FU-A fragments when it does not, and the SPS and
//! PPS together in one STAP-A ahead of every IDR picture).
//!
//! Sans-IO; used by the RTMP bridge on the control thread to turn an encoder's FLV pictures
//! into the packets a worker forwards. Invariants: no payload is longer than the
//! packetizer's `payload_bytes_max`; the last payload of an access unit carries the marker;
//! parameter sets precede every IDR, whether the encoder sent them in band or only in its
//! sequence header; NAL units the encoder sent in band that WebRTC receivers must not get
//! (access unit delimiters, filler, end of sequence/stream) are dropped.

use super::h264::{nal_type, NAL_TYPE_AUD, NAL_TYPE_IDR, NAL_TYPE_PPS, NAL_TYPE_SPS};

/// The largest RTP payload we build: a 1200-byte payload keeps an SRTP packet with
/// extensions under the 1280-byte IPv6 minimum MTU that browsers assume.
pub const RTP_PAYLOAD_BYTES_MAX: usize = 1200;
const NAL_TYPE_END_OF_SEQUENCE: u8 = 10;
const NAL_TYPE_END_OF_STREAM: u8 = 11;
const NAL_TYPE_FILLER: u8 = 12;
const NAL_TYPE_STAP_A: u8 = 24;
const NAL_TYPE_FU_A: u8 = 28;

/// One RTP payload with its marker bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPayload {
    pub payload: Vec<u8>,
    pub marker: bool,
}

/// Turns access units into RTP payloads, keeping the stream's latest parameter sets.
#[derive(Debug)]
pub struct H264Packetizer {
    payload_bytes_max: usize,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl Default for H264Packetizer {
    fn default() -> Self {
        H264Packetizer::new(RTP_PAYLOAD_BYTES_MAX)
    }
}

impl H264Packetizer {
    /// `payload_bytes_max` is at least 3 (a FU-A header and one byte).
    pub fn new(payload_bytes_max: usize) -> Self {
        H264Packetizer {
            payload_bytes_max: payload_bytes_max.max(3),
            sps: None,
            pps: None,
        }
    }

    /// The parameter sets from a sequence header (they precede the next IDR).
    pub fn set_parameter_sets(&mut self, sps: Option<Vec<u8>>, pps: Option<Vec<u8>>) {
        if sps.is_some() {
            self.sps = sps;
        }
        if pps.is_some() {
            self.pps = pps;
        }
    }

    pub fn sps(&self) -> Option<&[u8]> {
        self.sps.as_deref()
    }

    /// Packetize one access unit. Returns nothing for an access unit with no NAL unit to send.
    pub fn packetize<'a>(&mut self, nals: impl IntoIterator<Item = &'a [u8]>) -> Vec<RtpPayload> {
        let mut send: Vec<&[u8]> = Vec::new();
        let mut idr = false;
        for nal in nals {
            match nal_type(nal) {
                None
                | Some(NAL_TYPE_AUD | NAL_TYPE_END_OF_SEQUENCE | NAL_TYPE_END_OF_STREAM | NAL_TYPE_FILLER) => {
                    continue
                }
                Some(NAL_TYPE_SPS) => self.sps = Some(nal.to_vec()),
                Some(NAL_TYPE_PPS) => self.pps = Some(nal.to_vec()),
                Some(NAL_TYPE_IDR) => {
                    idr = true;
                    send.push(nal);
                }
                Some(_) => send.push(nal),
            }
        }
        let mut out = Vec::new();
        if send.is_empty() {
            return out;
        }
        if idr {
            self.parameter_sets(&mut out);
        }
        for nal in send {
            self.nal(nal, &mut out);
        }
        if let Some(last) = out.last_mut() {
            last.marker = true;
        }
        out
    }

    fn parameter_sets(&self, out: &mut Vec<RtpPayload>) {
        let sets: Vec<&[u8]> = [self.sps.as_deref(), self.pps.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let stap_bytes = 1 + sets.iter().map(|nal| 2 + nal.len()).sum::<usize>();
        let fits = sets.iter().all(|nal| u16::try_from(nal.len()).is_ok());
        if sets.len() == 2 && fits && stap_bytes <= self.payload_bytes_max {
            let nri = sets
                .iter()
                .map(|nal| nal.first().map_or(0, |b| b & 0x60))
                .max()
                .unwrap_or(0);
            let mut payload = Vec::with_capacity(stap_bytes);
            payload.push(nri | NAL_TYPE_STAP_A);
            for nal in sets {
                payload.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                payload.extend_from_slice(nal);
            }
            out.push(RtpPayload {
                payload,
                marker: false,
            });
        } else {
            for nal in sets {
                self.nal(nal, out);
            }
        }
    }

    fn nal(&self, nal: &[u8], out: &mut Vec<RtpPayload>) {
        if nal.len() <= self.payload_bytes_max {
            out.push(RtpPayload {
                payload: nal.to_vec(),
                marker: false,
            });
            return;
        }
        let Some((&header, body)) = nal.split_first() else {
            return;
        };
        let indicator = (header & 0xe0) | NAL_TYPE_FU_A;
        let kind = header & 0x1f;
        let chunk = self.payload_bytes_max - 2;
        let count = body.len().div_ceil(chunk);
        for (index, piece) in body.chunks(chunk).enumerate() {
            let mut fu_header = kind;
            if index == 0 {
                fu_header |= 0x80;
            }
            if index + 1 == count {
                fu_header |= 0x40;
            }
            let mut payload = Vec::with_capacity(piece.len() + 2);
            payload.push(indicator);
            payload.push(fu_header);
            payload.extend_from_slice(piece);
            out.push(RtpPayload {
                payload,
                marker: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::H264Depacketizer;

    fn round_trip(packetizer: &mut H264Packetizer, nals: &[Vec<u8>]) -> crate::media::h264::AccessUnit {
        let payloads = packetizer.packetize(nals.iter().map(Vec::as_slice));
        let mut depacketizer = H264Depacketizer::default();
        for (seq, payload) in payloads.iter().enumerate() {
            depacketizer.push(seq as u64 + 1, 9000, payload.marker, &payload.payload);
        }
        depacketizer.pop().expect("one access unit")
    }

    #[test]
    fn large_nal_units_are_fragmented_and_reassemble() {
        let mut packetizer = H264Packetizer::new(100);
        let idr: Vec<u8> = std::iter::once(0x65).chain((0..1000).map(|i| i as u8)).collect();
        packetizer.set_parameter_sets(Some(vec![0x67, 1, 2, 3]), Some(vec![0x68, 4]));
        let payloads = packetizer.packetize([idr.as_slice()]);
        assert!(payloads.iter().all(|p| p.payload.len() <= 100));
        assert_eq!(payloads.iter().filter(|p| p.marker).count(), 1);
        assert!(payloads.last().is_some_and(|p| p.marker));
        assert_eq!(
            payloads.first().map(|p| p.payload[0] & 0x1f),
            Some(NAL_TYPE_STAP_A)
        );
        let au = round_trip(&mut packetizer, std::slice::from_ref(&idr));
        assert!(au.keyframe && !au.damaged);
        assert_eq!(au.nals, vec![vec![0x67, 1, 2, 3], vec![0x68, 4], idr]);
    }

    #[test]
    fn in_band_parameter_sets_are_kept_and_delimiters_dropped() {
        let mut packetizer = H264Packetizer::default();
        let nals = vec![vec![0x09, 0xf0], vec![0x67, 9], vec![0x68, 8], vec![0x65, 1, 2]];
        let au = round_trip(&mut packetizer, &nals);
        assert_eq!(au.nals, vec![vec![0x67, 9], vec![0x68, 8], vec![0x65, 1, 2]]);
        // A later IDR without them in band still gets them.
        let au = round_trip(&mut packetizer, &[vec![0x65, 3]]);
        assert_eq!(au.nals, vec![vec![0x67, 9], vec![0x68, 8], vec![0x65, 3]]);
        // A non-IDR picture goes alone.
        let au = round_trip(&mut packetizer, &[vec![0x41, 7]]);
        assert_eq!(au.nals, vec![vec![0x41, 7]]);
    }

    #[test]
    fn nothing_to_send_gives_no_packets() {
        let mut packetizer = H264Packetizer::default();
        assert!(packetizer.packetize([[0x09u8, 0xf0].as_slice(), &[]]).is_empty());
    }
}
