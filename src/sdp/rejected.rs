//! Rejected m-sections of an answer, written as clients can parse them: str0m writes a
//! rejected section as `m=audio 0 UDP/TLS/RTP/SAVPF 0` with no `a=rtpmap`, which aiortc cannot
//! read (it throws when an audio+video player plays a video-only stream, as for every screen
//! share). RFC 8866 wants at least one format listed; listing the first one the offer gave,
//! with its `a=rtpmap`, is what browsers write and every stack reads.
//!
//! Control thread, on the answer text before it goes to the client. Invariants: only sections
//! with port 0 change; a section that already has an `a=rtpmap` is left alone; the offer's
//! sections are matched by position (an answer has exactly the offer's m-lines, in order); a
//! line that cannot be understood leaves its section as it was.

use super::answer_fixup::{is_rejected, join_lines, split_sections};

/// Static payload types a rejected section may name without an `a=rtpmap` in the offer.
fn static_rtpmap(pt: &str) -> Option<&'static str> {
    match pt {
        "0" => Some("PCMU/8000"),
        "8" => Some("PCMA/8000"),
        "9" => Some("G722/8000"),
        _ => None,
    }
}

/// The offer section's first format and its rtpmap value (`opus/48000/2`).
fn first_format<'a>(section: &[&'a str]) -> Option<(&'a str, String)> {
    let pt = section.first()?.split_whitespace().nth(3)?;
    let prefix = format!("a=rtpmap:{pt} ");
    let rtpmap = section
        .iter()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(str::to_owned)
        .or_else(|| static_rtpmap(pt).map(str::to_owned))?;
    Some((pt, rtpmap))
}

/// A rejected answer section rewritten to name `offer`'s first format with its rtpmap; None
/// when it is accepted, already has an rtpmap, or there is nothing sure to write.
fn described(section: &[&str], offer: Option<&Vec<&str>>) -> Option<Vec<String>> {
    if !is_rejected(section) || section.iter().any(|l| l.starts_with("a=rtpmap:")) {
        return None;
    }
    let (m_line, rest) = section.split_first()?;
    let mut words = m_line.split_whitespace();
    let (kind, _port, proto) = (words.next()?, words.next()?, words.next()?);
    let (pt, rtpmap) = first_format(offer?)?;
    // After the section's c= and a=mid lines, where a format's attributes belong.
    let at = rest
        .iter()
        .position(|l| l.starts_with("a=") && !l.starts_with("a=mid:"))
        .unwrap_or(rest.len());
    let mut lines = vec![format!("{kind} 0 {proto} {pt}")];
    lines.extend(rest.iter().take(at).map(|l| (*l).to_owned()));
    lines.push(format!("a=rtpmap:{pt} {rtpmap}"));
    lines.extend(rest.iter().skip(at).map(|l| (*l).to_owned()));
    Some(lines)
}

/// Rewrite each rejected section of `answer` to list the offer's first format of that section
/// with its rtpmap.
pub fn describe_rejected_sections(answer: &str, offer: &str) -> String {
    let (head, answer_sections) = split_sections(answer);
    let (_, offer_sections) = split_sections(offer);
    let rewritten: Vec<Option<Vec<String>>> = answer_sections
        .iter()
        .enumerate()
        .map(|(index, section)| described(section, offer_sections.get(index)))
        .collect();
    if rewritten.iter().all(Option::is_none) {
        return answer.to_owned();
    }
    let mut out: Vec<&str> = head;
    for (section, new) in answer_sections.iter().zip(&rewritten) {
        match new {
            Some(lines) => out.extend(lines.iter().map(String::as_str)),
            None => out.extend(section.iter().copied()),
        }
    }
    join_lines(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n";
    const ANSWER: &str = "v=0\r\no=- 3 4 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 1\r\n\
        m=audio 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=inactive\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n";

    #[test]
    fn a_rejected_section_lists_the_offers_first_format_with_its_rtpmap() {
        let fixed = describe_rejected_sections(ANSWER, OFFER);
        let audio = fixed.split("m=video").next().unwrap();
        assert!(audio.contains("m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n"), "{fixed}");
        assert!(
            audio.contains("a=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=inactive"),
            "{fixed}"
        );
        let video = fixed.split("m=video").nth(1).unwrap();
        assert_eq!(
            video,
            ANSWER.split("m=video").nth(1).unwrap(),
            "the accepted section is untouched"
        );
        assert!(fixed.ends_with("\r\n"));
    }

    #[test]
    fn static_types_and_odd_input_are_handled_without_guessing() {
        let offer = "v=0\r\nm=audio 9 RTP/SAVPF 8\r\na=mid:0\r\n";
        let answer = "v=0\r\nm=audio 0 RTP/SAVPF 0\r\na=mid:0\r\n";
        let fixed = describe_rejected_sections(answer, offer);
        assert!(
            fixed.contains("m=audio 0 RTP/SAVPF 8\r\na=mid:0\r\na=rtpmap:8 PCMA/8000"),
            "{fixed}"
        );
        // A dynamic type without an rtpmap in the offer: nothing to write, left alone.
        let offer = "v=0\r\nm=audio 9 RTP/SAVPF 101\r\n";
        assert_eq!(describe_rejected_sections(answer, offer), answer);
        assert_eq!(describe_rejected_sections("garbage", OFFER), "garbage");
        assert_eq!(describe_rejected_sections(ANSWER, "garbage"), ANSWER);
        let accepted = "v=0\r\nm=audio 9 RTP/SAVPF 111\r\n";
        assert_eq!(describe_rejected_sections(accepted, OFFER), accepted);
    }
}
