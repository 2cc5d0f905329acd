//! Corrections to an offer before str0m reads it, on the control thread.
//!
//! RFC 8843 lets an offerer mark a bundled m-section `a=bundle-only` with port 0: it is to be
//! used only inside the BUNDLE group (GStreamer's webrtcbin with `max-bundle` offers every
//! section after the first this way). str0m, like an offer without BUNDLE, reads port 0 as a
//! rejected section and answers `m=audio 0`, so the stream silently loses that track. A
//! bundle-only section the BUNDLE group names is given the placeholder port 9, as JSEP offers
//! write every bundled section, and its `a=bundle-only` is dropped; the answer then accepts it
//! like any bundled section.
//!
//! An SFU's peer connection carries media one way, so each section's direction is narrowed to
//! what that way allows before str0m answers ([`narrow_directions`]): a publisher's `sendrecv`
//! is read as `sendonly` (answered `recvonly`: nothing comes back) and its `recvonly` as
//! `inactive`; a player's `sendrecv` as `recvonly` (answered `sendonly`) and its `sendonly` as
//! `inactive`. str0m would otherwise mirror `sendrecv` and promise media that never comes, or
//! take media from a player. Invariant: every other line is kept as it was.

use std::borrow::Cow;

use super::answer_fixup::{is_rejected, join_lines, split_sections};

/// Which way the peer connection carries media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The client sends (a publisher).
    FromClient,
    /// The client receives (a player).
    ToClient,
}

/// The offer with each m-section's direction narrowed to `flow` (borrowed when nothing
/// changes). Session-level direction lines are left alone: WebRTC offers put them in sections.
pub fn narrow_directions(offer: &str, flow: Flow) -> Cow<'_, str> {
    let narrowed = |attr: &str| -> Option<&'static str> {
        match (flow, attr) {
            (Flow::FromClient, "sendrecv") => Some("a=sendonly"),
            (Flow::FromClient, "recvonly") => Some("a=inactive"),
            (Flow::ToClient, "sendrecv") => Some("a=recvonly"),
            (Flow::ToClient, "sendonly") => Some("a=inactive"),
            _ => None,
        }
    };
    let (head, sections) = split_sections(offer);
    let changes = |line: &str| line.trim().strip_prefix("a=").and_then(narrowed);
    if !sections.iter().flatten().any(|line| changes(line).is_some()) {
        return Cow::Borrowed(offer);
    }
    let mut lines: Vec<&str> = head;
    for line in sections.iter().flatten() {
        lines.push(changes(line).unwrap_or(line));
    }
    Cow::Owned(join_lines(lines))
}

/// The mids the session's `a=group:BUNDLE` lines name.
fn bundled_mids<'a>(head: &[&'a str]) -> Vec<&'a str> {
    head.iter()
        .filter_map(|line| line.trim().strip_prefix("a=group:BUNDLE"))
        .flat_map(str::split_whitespace)
        .collect()
}

fn mid_of<'a>(section: &[&'a str]) -> Option<&'a str> {
    section
        .iter()
        .find_map(|line| line.trim().strip_prefix("a=mid:").map(str::trim))
}

fn is_bundle_only_line(line: &str) -> bool {
    line.trim() == "a=bundle-only"
}

/// The offer with its bundle-only sections given port 9 (borrowed when it has none).
pub fn accept_bundle_only(offer: &str) -> Cow<'_, str> {
    let (head, sections) = split_sections(offer);
    let bundled = bundled_mids(&head);
    let wanted = |section: &[&str]| {
        is_rejected(section)
            && section.iter().any(|l| is_bundle_only_line(l))
            && mid_of(section).is_some_and(|mid| bundled.contains(&mid))
    };
    if !sections.iter().any(|s| wanted(s)) {
        return Cow::Borrowed(offer);
    }
    let mut m_lines: Vec<String> = Vec::new();
    for section in &sections {
        if wanted(section) {
            if let Some(m_line) = section.first() {
                let mut words: Vec<&str> = m_line.split(' ').collect();
                if let Some(port) = words.get_mut(1) {
                    *port = "9";
                }
                m_lines.push(words.join(" "));
            }
        }
    }
    let mut rewritten = m_lines.iter();
    let mut lines: Vec<&str> = head;
    for section in &sections {
        if wanted(section) {
            if let Some(m_line) = rewritten.next() {
                lines.push(m_line);
            }
            lines.extend(section.iter().skip(1).filter(|l| !is_bundle_only_line(l)));
        } else {
            lines.extend(section.iter().copied());
        }
    }
    Cow::Owned(join_lines(lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_BUNDLE: &str = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE video0 audio1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:video0\r\na=rtpmap:96 VP8/90000\r\n\
        m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=bundle-only\r\na=mid:audio1\r\na=rtpmap:111 OPUS/48000/2\r\n";

    #[test]
    fn a_bundle_only_section_in_the_group_gets_port_9() {
        let fixed = accept_bundle_only(MAX_BUNDLE);
        assert!(fixed.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), "{fixed}");
        assert!(!fixed.contains("a=bundle-only"));
        assert!(fixed.contains("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:video0"));
        assert!(fixed.contains("a=mid:audio1\r\na=rtpmap:111 OPUS/48000/2"));
    }

    #[test]
    fn a_rejected_section_stays_rejected() {
        // Port 0 without bundle-only: the offerer does not want it.
        let rejected = MAX_BUNDLE.replace("a=bundle-only\r\n", "");
        assert!(matches!(accept_bundle_only(&rejected), Cow::Borrowed(_)));
        // bundle-only but outside the group: not ours to use.
        let outside = MAX_BUNDLE.replace("a=group:BUNDLE video0 audio1", "a=group:BUNDLE video0");
        assert!(matches!(accept_bundle_only(&outside), Cow::Borrowed(_)));
    }

    #[test]
    fn directions_are_narrowed_to_the_way_media_flows() {
        let offer = "v=0\r\nm=audio 9 X 0\r\na=sendrecv\r\nm=video 9 X 96\r\na=recvonly\r\n\
            m=video 9 X 96\r\na=sendonly\r\nm=audio 9 X 0\r\na=inactive\r\n";
        let directions = |sdp: &str| -> Vec<String> {
            sdp.lines()
                .filter(|l| l.ends_with("only") || l.ends_with("recv") || l.ends_with("inactive"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            directions(&narrow_directions(offer, Flow::FromClient)),
            ["a=sendonly", "a=inactive", "a=sendonly", "a=inactive"]
        );
        assert_eq!(
            directions(&narrow_directions(offer, Flow::ToClient)),
            ["a=recvonly", "a=recvonly", "a=inactive", "a=inactive"]
        );
        let publish = "v=0\r\nm=audio 9 X 0\r\na=sendonly\r\n";
        assert!(matches!(
            narrow_directions(publish, Flow::FromClient),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn an_offer_without_bundle_only_is_borrowed() {
        let plain = MAX_BUNDLE
            .replace("m=audio 0", "m=audio 9")
            .replace("a=bundle-only\r\n", "");
        assert!(matches!(accept_bundle_only(&plain), Cow::Borrowed(_)));
    }
}
