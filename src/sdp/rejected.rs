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

/// Static payload types a rejected section may name without an `a=rtpmap` in the offer.
fn static_rtpmap(pt: &str) -> Option<&'static str> {
    match pt {
        "0" => Some("PCMU/8000"),
        "8" => Some("PCMA/8000"),
        "9" => Some("G722/8000"),
        _ => None,
    }
}

/// Split an SDP into its session part and its m-sections, by line.
fn sections(sdp: &str) -> (Vec<&str>, Vec<Vec<&str>>) {
    let mut head = Vec::new();
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(section) = sections.last_mut() {
            section.push(line);
        } else {
            head.push(line);
        }
    }
    (head, sections)
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

/// Rewrite each rejected section of `answer` to list the offer's first format of that section
/// with its rtpmap.
pub fn describe_rejected_sections(answer: &str, offer: &str) -> String {
    let (head, answer_sections) = sections(answer);
    let (_, offer_sections) = sections(offer);
    let mut changed = false;
    let mut rewritten: Vec<(usize, String, String)> = Vec::new();
    for (index, section) in answer_sections.iter().enumerate() {
        let Some(m_line) = section.first() else {
            continue;
        };
        let words: Vec<&str> = m_line.split_whitespace().collect();
        let rejected = words.get(1) == Some(&"0");
        let has_rtpmap = section.iter().any(|l| l.starts_with("a=rtpmap:"));
        if !rejected || has_rtpmap {
            continue;
        }
        let (Some(kind), Some(proto)) = (words.first(), words.get(2)) else {
            continue;
        };
        let Some((pt, rtpmap)) = offer_sections.get(index).and_then(|s| first_format(s)) else {
            continue;
        };
        rewritten.push((
            index,
            format!("{kind} 0 {proto} {pt}"),
            format!("a=rtpmap:{pt} {rtpmap}"),
        ));
    }
    let mut owned: Vec<Vec<String>> = answer_sections
        .iter()
        .map(|s| s.iter().map(|l| (*l).to_owned()).collect())
        .collect();
    for (index, m_line, rtpmap) in rewritten {
        let Some(section) = owned.get_mut(index) else {
            continue;
        };
        let Some(first) = section.first_mut() else {
            continue;
        };
        *first = m_line;
        // After the m-line's c= and a=mid lines, where a format's attributes belong.
        let at = section
            .iter()
            .position(|l| l.starts_with("a=") && !l.starts_with("a=mid:"))
            .unwrap_or(section.len());
        section.insert(at, rtpmap);
        changed = true;
    }
    if !changed {
        return answer.to_owned();
    }
    let mut out: Vec<String> = head.iter().map(|l| (*l).to_owned()).collect();
    out.extend(owned.into_iter().flatten());
    let mut text = out.join("\r\n");
    text.push_str("\r\n");
    text
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
