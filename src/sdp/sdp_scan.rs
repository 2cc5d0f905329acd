//! A bounded, read-only scan of an SDP offer: per m-section its kind, mid, direction and codecs.
//!
//! Runs on the control thread before any `Rtc` is built, so codec choices (the publisher's one
//! video and one audio codec; a player's match for them) are ours and explicit. It never panics:
//! every line is split with checked lookups, counts are capped, unparsable lines are skipped.

/// Media sections an offer may carry: a WCS stream is one audio and one video m-line; browsers
/// add a data channel at most. Anything past this is refused rather than negotiated.
pub const SDP_MEDIA_SECTIONS_MAX: usize = 16;
/// Codec entries (rtpmap lines) per m-section: payload types are 7 bits.
pub const SDP_CODECS_PER_SECTION_MAX: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Audio,
    Video,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionDirection {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferCodec {
    pub pt: u8,
    /// Upper-cased encoding name: `VP8`, `H264`, `OPUS`, `PCMU`, ...
    pub name: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    /// The `a=fmtp` parameters, as written.
    pub fmtp: String,
    /// The RTX payload type whose `apt` names this one.
    pub rtx_pt: Option<u8>,
}

impl OfferCodec {
    /// An `a=fmtp` parameter's value, e.g. `packetization-mode`.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSection {
    pub kind: SectionKind,
    pub mid: Option<String>,
    pub direction: SectionDirection,
    /// In the order the offer lists them on its m-line: the offerer's preference.
    pub codecs: Vec<OfferCodec>,
    pub port_zero: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpScanError {
    #[error("SDP is empty or not an SDP")]
    NotSdp,
    #[error("SDP has no media")]
    NoMedia,
    #[error("SDP has more than {SDP_MEDIA_SECTIONS_MAX} media sections")]
    TooManySections,
    #[error("SDP has no DTLS fingerprint")]
    NoFingerprint,
}

/// Scan an offer. Checks the shape WebRTC needs (a version line, media, a fingerprint) but leaves
/// full validation to str0m.
pub fn scan_offer(sdp: &str) -> Result<Vec<OfferSection>, SdpScanError> {
    let mut lines = sdp.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("v=0") {
        return Err(SdpScanError::NotSdp);
    }
    let mut sections: Vec<OfferSection> = Vec::new();
    let mut payload_order: Vec<Vec<u8>> = Vec::new();
    let mut fingerprint = false;
    for line in lines {
        if let Some(rest) = line.strip_prefix("m=") {
            if sections.len() == SDP_MEDIA_SECTIONS_MAX {
                return Err(SdpScanError::TooManySections);
            }
            let mut words = rest.split_whitespace();
            let kind = match words.next() {
                Some("audio") => SectionKind::Audio,
                Some("video") => SectionKind::Video,
                _ => SectionKind::Other,
            };
            let port_zero = words.next() == Some("0");
            let _proto = words.next();
            let pts = words
                .filter_map(|w| w.parse::<u8>().ok())
                .filter(|pt| *pt < 128)
                .collect();
            payload_order.push(pts);
            sections.push(OfferSection {
                kind,
                mid: None,
                direction: SectionDirection::SendRecv,
                codecs: Vec::new(),
                port_zero,
            });
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        if attr.starts_with("fingerprint:") {
            fingerprint = true;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        match attr {
            "sendrecv" => section.direction = SectionDirection::SendRecv,
            "sendonly" => section.direction = SectionDirection::SendOnly,
            "recvonly" => section.direction = SectionDirection::RecvOnly,
            "inactive" => section.direction = SectionDirection::Inactive,
            _ => {}
        }
        if let Some(mid) = attr.strip_prefix("mid:") {
            section.mid = Some(mid.trim().to_owned());
        } else if let Some(rtpmap) = attr.strip_prefix("rtpmap:") {
            if section.codecs.len() < SDP_CODECS_PER_SECTION_MAX {
                if let Some(codec) = parse_rtpmap(rtpmap) {
                    section.codecs.push(codec);
                }
            }
        } else if let Some(fmtp) = attr.strip_prefix("fmtp:") {
            if let Some((pt, params)) = fmtp.split_once(' ') {
                if let Ok(pt) = pt.parse::<u8>() {
                    if let Some(codec) = section.codecs.iter_mut().find(|c| c.pt == pt) {
                        codec.fmtp = params.trim().to_owned();
                    }
                }
            }
        }
    }
    if sections.is_empty() {
        return Err(SdpScanError::NoMedia);
    }
    if !fingerprint {
        return Err(SdpScanError::NoFingerprint);
    }
    for (section, order) in sections.iter_mut().zip(payload_order) {
        link_rtx(section);
        section
            .codecs
            .sort_by_key(|c| order.iter().position(|pt| *pt == c.pt).unwrap_or(usize::MAX));
    }
    Ok(sections)
}

fn parse_rtpmap(rtpmap: &str) -> Option<OfferCodec> {
    let (pt, encoding) = rtpmap.split_once(' ')?;
    let pt = pt.parse::<u8>().ok().filter(|pt| *pt < 128)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next()?.to_ascii_uppercase();
    let clock_rate = parts.next()?.parse::<u32>().ok()?;
    let channels = parts.next().and_then(|c| c.parse::<u8>().ok());
    Some(OfferCodec {
        pt,
        name,
        clock_rate,
        channels,
        fmtp: String::new(),
        rtx_pt: None,
    })
}

/// Point each codec at the RTX payload type whose `apt=` names it.
fn link_rtx(section: &mut OfferSection) {
    let links: Vec<(u8, u8)> = section
        .codecs
        .iter()
        .filter(|c| c.name == "RTX")
        .filter_map(|rtx| Some((rtx.fmtp_param("apt")?.parse::<u8>().ok()?, rtx.pt)))
        .collect();
    for (apt, rtx_pt) in links {
        if let Some(codec) = section.codecs.iter_mut().find(|c| c.pt == apt) {
            codec.rtx_pt = Some(rtx_pt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const CHROME_PUBLISH_OFFER: &str = include_str!("testdata/chrome_publish_offer.sdp");

    #[test]
    fn scans_a_browser_offer() {
        let sections = scan_offer(CHROME_PUBLISH_OFFER).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].kind, SectionKind::Audio);
        assert_eq!(sections[0].codecs[0].name, "OPUS");
        assert_eq!(sections[0].codecs[0].channels, Some(2));
        assert_eq!(sections[1].kind, SectionKind::Video);
        assert_eq!(sections[1].direction, SectionDirection::SendOnly);
        let vp8 = &sections[1].codecs[0];
        assert_eq!(vp8.name, "VP8");
        assert_eq!(vp8.rtx_pt, Some(97));
        let h264 = sections[1].codecs.iter().find(|c| c.name == "H264").unwrap();
        assert!(h264.fmtp_param("profile-level-id").is_some());
    }

    #[test]
    fn refuses_what_is_not_an_offer() {
        assert_eq!(scan_offer(""), Err(SdpScanError::NotSdp));
        assert_eq!(scan_offer("garbage\r\nmore"), Err(SdpScanError::NotSdp));
        assert_eq!(
            scan_offer("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"),
            Err(SdpScanError::NoMedia)
        );
        assert_eq!(
            scan_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"),
            Err(SdpScanError::NoFingerprint)
        );
        let many = format!(
            "v=0\r\n{}",
            "m=audio 9 RTP/AVP 0\r\n".repeat(SDP_MEDIA_SECTIONS_MAX + 1)
        );
        assert_eq!(scan_offer(&many), Err(SdpScanError::TooManySections));
    }

    #[test]
    fn odd_lines_are_skipped_not_fatal() {
        let sdp = "v=0\r\na=fingerprint:sha-256 AA\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 300 x\r\na=rtpmap:\r\na=rtpmap:96\r\na=rtpmap:96 VP8/notanumber\r\na=rtpmap:999 VP8/90000\r\na=fmtp:96\r\na=rtpmap:96 VP8/90000\r\n";
        let sections = scan_offer(sdp).unwrap();
        assert_eq!(sections[0].codecs.len(), 1);
    }
}
