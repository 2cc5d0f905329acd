//! Corrections to the SDP answers str0m writes, applied on the control thread before an answer
//! goes to the client.
//!
//! str0m writes our ICE candidates into the first m-section. When that section is rejected
//! (port 0: e.g. the audio of a video-only screen share being played), the browser ignores it
//! and, BUNDLE naming only the accepted section, never learns an address to check. The
//! candidates belong in the accepted (bundle-tag) section, so they are moved there. The
//! section splitting here is shared with `rejected.rs`.

/// An SDP split by line into its session part and its m-sections (each starting with its
/// `m=` line).
pub(super) fn split_sections(sdp: &str) -> (Vec<&str>, Vec<Vec<&str>>) {
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

/// A section whose m-line has port 0.
pub(super) fn is_rejected(section: &[&str]) -> bool {
    section.first().and_then(|m| m.split_whitespace().nth(1)) == Some("0")
}

/// Lines joined as an SDP: CRLF after each.
pub(super) fn join_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text
}

/// Move candidate lines out of rejected m-sections into the first accepted one.
pub fn move_candidates_to_accepted_section(sdp: &str) -> String {
    let (head, sections) = split_sections(sdp);
    let is_candidate = |line: &&str| line.starts_with("a=candidate:") || *line == "a=end-of-candidates";
    let Some(accepted) = sections.iter().position(|s| !is_rejected(s)) else {
        return sdp.to_owned();
    };
    let moved: Vec<&str> = sections
        .iter()
        .filter(|s| is_rejected(s))
        .flat_map(|s| s.iter().copied().filter(is_candidate))
        .collect();
    let accepted_has_candidates = sections.get(accepted).is_some_and(|s| s.iter().any(is_candidate));
    if moved.is_empty() || accepted_has_candidates {
        return sdp.to_owned();
    }
    let mut out: Vec<&str> = head;
    for (index, section) in sections.iter().enumerate() {
        if is_rejected(section) {
            out.extend(section.iter().copied().filter(|l| !is_candidate(l)));
        } else {
            out.extend(section.iter().copied());
            if index == accepted {
                out.extend(moved.iter().copied());
            }
        }
    }
    join_lines(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIDEO_ONLY_ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 1\r\n\
        m=audio 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=candidate:1 1 udp 2130706175 127.0.0.1 31000 typ host\r\na=end-of-candidates\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n";

    #[test]
    fn candidates_leave_a_rejected_section_for_the_accepted_one() {
        let fixed = move_candidates_to_accepted_section(VIDEO_ONLY_ANSWER);
        let video = fixed.split("m=video").nth(1).unwrap();
        let audio = fixed
            .split("m=video")
            .next()
            .unwrap()
            .split("m=audio")
            .nth(1)
            .unwrap();
        assert!(video.contains("a=candidate:1 1 udp 2130706175 127.0.0.1 31000 typ host"));
        assert!(video.contains("a=end-of-candidates"));
        assert!(!audio.contains("a=candidate"));
        assert!(fixed.ends_with("\r\n"));
    }

    #[test]
    fn answers_that_are_fine_are_left_alone() {
        let fine = "v=0\r\nm=audio 9 X 0\r\na=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\nm=video 9 X 96\r\n";
        assert_eq!(move_candidates_to_accepted_section(fine), fine);
        assert_eq!(move_candidates_to_accepted_section("garbage"), "garbage");
        let all_rejected = "v=0\r\nm=audio 0 X 0\r\na=candidate:1\r\n";
        assert_eq!(move_candidates_to_accepted_section(all_rejected), all_rejected);
    }
}
