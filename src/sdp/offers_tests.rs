//! Offers captured from WebRTC stacks webcall did not write (`tests/offers/`, sources in its
//! README), negotiated as publisher and as player; and offers whose directions do not fit
//! what they ask for.

use std::time::Instant;

use super::negotiate::{negotiate_player, negotiate_publisher, NegotiationError, PeerEnv, StreamTracks};
use super::sdp_scan::scan_offer;

macro_rules! offer {
    ($file:literal) => {
        ($file, include_str!(concat!("../../tests/offers/", $file)))
    };
}

const PUBLISH_OFFERS: [(&str, &str); 7] = [
    offer!("chromium_publish.sdp"),
    offer!("firefox_publish.sdp"),
    offer!("aiortc_publish.sdp"),
    offer!("webrtcbin_publish_max_bundle.sdp"),
    offer!("webrtcbin_publish_max_compat.sdp"),
    offer!("safari_publish_audio.sdp"),
    offer!("safari_h264_video.sdp"),
];

const PLAY_OFFERS: [(&str, &str); 4] = [
    offer!("chromium_play.sdp"),
    offer!("firefox_play.sdp"),
    offer!("aiortc_play.sdp"),
    offer!("webrtcbin_play_max_bundle.sdp"),
];

fn env() -> PeerEnv {
    super::install_crypto_provider();
    PeerEnv {
        candidate: "127.0.0.1:31000".parse().unwrap(),
        dtls_cert: super::generate_dtls_cert().unwrap(),
    }
}

fn codecs(tracks: &StreamTracks) -> (Option<&str>, Option<&str>) {
    (
        tracks.video.as_ref().map(|t| t.name.as_str()),
        tracks.audio.as_ref().map(|t| t.name.as_str()),
    )
}

/// The direction of each section an answer accepts (port not 0).
fn accepted_directions(answer: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut accepted = false;
    for line in answer.lines() {
        if line.starts_with("m=") {
            accepted = line.split(' ').nth(1) != Some("0");
        } else if accepted && matches!(line, "a=sendonly" | "a=recvonly" | "a=sendrecv" | "a=inactive") {
            out.push(line);
        }
    }
    out
}

/// The m-lines of an answer that reject their section (port 0).
fn rejected_sections(answer: &str) -> Vec<&str> {
    answer
        .lines()
        .filter(|l| l.starts_with("m=") && l.split(' ').nth(1) == Some("0"))
        .collect()
}

#[test]
fn offers_of_every_stack_negotiate() {
    let env = env();
    let expected = [
        (Some("VP8"), Some("OPUS")),
        (Some("VP8"), Some("OPUS")),
        (Some("H264"), Some("PCMU")),
        (Some("VP8"), Some("OPUS")),
        (Some("H264"), Some("PCMA")),
        (None, Some("OPUS")),
        (Some("H264"), None),
    ];
    let mut sources = Vec::new();
    for ((file, offer), expected) in PUBLISH_OFFERS.iter().zip(expected) {
        assert!(scan_offer(offer).is_ok(), "{file} scans");
        let negotiated =
            negotiate_publisher(offer, &env, Instant::now()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(codecs(&negotiated.tracks), expected, "{file}");
        let accepted = usize::from(expected.0.is_some()) + usize::from(expected.1.is_some());
        let answered = accepted_directions(&negotiated.answer_sdp);
        assert_eq!(
            answered,
            vec!["a=recvonly"; accepted],
            "{file}: each published track is received\n{}",
            negotiated.answer_sdp
        );
        if *file == "webrtcbin_publish_max_bundle.sdp" {
            // Its audio is `m=audio 0` + `a=bundle-only`: accepted, not rejected.
            assert_eq!(
                rejected_sections(&negotiated.answer_sdp),
                Vec::<&str>::new(),
                "{file}"
            );
        }
        sources.push((*file, negotiated.tracks));
    }
    // Every player plays every browser-like source (VP8/Opus, H.264 constrained baseline or
    // baseline with G.711); Safari's constrained high at level 5.2 needs a high decoder.
    for (source_file, source) in sources.iter().filter(|(f, _)| !f.starts_with("safari_h264")) {
        for (file, offer) in PLAY_OFFERS {
            // Firefox without OpenH264 (Debian's, headless) offers no H.264.
            let h264_source = source.video.as_ref().is_some_and(|v| v.name == "H264");
            if h264_source && !offer.contains("H264/90000") {
                let refused = negotiate_player(offer, source, &env, Instant::now());
                assert!(
                    matches!(refused, Err(NegotiationError::NoCommonCodecs)),
                    "{file} playing {source_file}"
                );
                continue;
            }
            let negotiated = negotiate_player(offer, source, &env, Instant::now())
                .unwrap_or_else(|e| panic!("{file} playing {source_file}: {e}"));
            assert_eq!(
                codecs(&negotiated.tracks),
                codecs(source),
                "{file} playing {source_file}"
            );
            let tracks = usize::from(source.video.is_some()) + usize::from(source.audio.is_some());
            let sending = accepted_directions(&negotiated.answer_sdp);
            assert_eq!(
                sending,
                vec!["a=sendonly"; tracks],
                "{file} playing {source_file}\n{}",
                negotiated.answer_sdp
            );
        }
    }
}

#[test]
fn sections_that_do_not_send_are_not_published() {
    let env = env();
    let (_, chromium) = PUBLISH_OFFERS[0];
    // Audio offered inactive: the stream is video only, and the answer says inactive too.
    let inactive_audio = chromium.replacen("a=sendonly", "a=inactive", 1);
    let first_is_audio = chromium.find("m=audio") < chromium.find("m=video");
    let negotiated = negotiate_publisher(&inactive_audio, &env, Instant::now()).unwrap();
    let expected = if first_is_audio {
        (Some("VP8"), None)
    } else {
        (None, Some("OPUS"))
    };
    assert_eq!(codecs(&negotiated.tracks), expected);
    assert!(
        negotiated.answer_sdp.contains("a=inactive") || !rejected_sections(&negotiated.answer_sdp).is_empty(),
        "the inactive section is answered inactive or rejected\n{}",
        negotiated.answer_sdp
    );
    assert_eq!(
        accepted_directions(&negotiated.answer_sdp)
            .iter()
            .filter(|d| **d == "a=recvonly")
            .count(),
        1
    );

    // A "publisher" that only wants to receive offers nothing to publish.
    let receive_only = chromium.replace("a=sendonly", "a=recvonly");
    assert!(negotiate_publisher(&receive_only, &env, Instant::now()).is_err());
}

#[test]
fn a_player_section_that_only_sends_gets_no_media() {
    let env = env();
    let source = negotiate_publisher(PUBLISH_OFFERS[0].1, &env, Instant::now())
        .unwrap()
        .tracks;
    let (_, play) = PLAY_OFFERS[0];
    // Its first section offers to send: nothing is sent to it; the other section plays.
    let mixed = play.replacen("a=recvonly", "a=sendonly", 1);
    let negotiated = negotiate_player(&mixed, &source, &env, Instant::now()).unwrap();
    assert_eq!(
        negotiated.tracks.video.is_some() as u8 + negotiated.tracks.audio.is_some() as u8,
        1,
        "one track plays\n{}",
        negotiated.answer_sdp
    );
    let sending = accepted_directions(&negotiated.answer_sdp);
    assert_eq!(
        sending.iter().filter(|d| **d == "a=sendonly").count(),
        1,
        "{}",
        negotiated.answer_sdp
    );
    assert!(
        !sending.contains(&"a=recvonly"),
        "nothing is taken from a player\n{}",
        negotiated.answer_sdp
    );
    // Every section only sends, or is inactive: nothing to play.
    let all_send = play.replace("a=recvonly", "a=sendonly");
    assert!(negotiate_player(&all_send, &source, &env, Instant::now()).is_err());
    let all_inactive = play.replace("a=recvonly", "a=inactive");
    assert!(negotiate_player(&all_inactive, &source, &env, Instant::now()).is_err());
}
