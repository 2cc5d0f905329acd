use super::*;

const PUBLISH_OFFER: &str = include_str!("testdata/chrome_publish_offer.sdp");
const PLAY_OFFER: &str = include_str!("testdata/chrome_play_offer.sdp");

fn env() -> PeerEnv {
    crate::sdp::install_crypto_provider();
    PeerEnv {
        candidate: "127.0.0.1:31000".parse().unwrap(),
        dtls_cert: crate::sdp::generate_dtls_cert().unwrap(),
    }
}

/// Remove every codec named `name` (and its RTX) from an offer, like the SDK's `stripCodecs`.
fn strip(sdp: &str, name: &str) -> String {
    let sections = scan_offer(sdp).unwrap();
    let mut pts: Vec<u8> = Vec::new();
    for codec in sections.iter().flat_map(|s| &s.codecs) {
        if codec.name == name {
            pts.push(codec.pt);
            pts.extend(codec.rtx_pt);
        }
    }
    sdp.lines()
        .filter(|line| !pts.iter().any(|pt| line.contains(&format!(":{pt} "))))
        .map(|line| {
            if line.starts_with("m=") {
                line.split(' ')
                    .filter(|w| w.parse::<u8>().map(|pt| !pts.contains(&pt)).unwrap_or(true))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\r\n")
        .collect()
}

#[test]
fn publisher_keeps_the_first_supported_codecs() {
    let negotiated = negotiate_publisher(PUBLISH_OFFER, &env(), Instant::now()).unwrap();
    let video = negotiated.tracks.video.unwrap();
    assert_eq!((video.name.as_str(), *video.pt), ("VP8", 96));
    assert_eq!(video.rtx_pt, Some(Pt::from(97)));
    let audio = negotiated.tracks.audio.unwrap();
    assert_eq!((audio.name.as_str(), *audio.pt), ("OPUS", 111));
    assert!(negotiated.answer_sdp.contains("VP8/90000"));
    assert!(!negotiated.answer_sdp.contains("H264"));
    assert!(negotiated.answer_sdp.contains("a=ice-lite"));
    assert!(negotiated.answer_sdp.contains(&negotiated.local_ufrag));
    assert!(negotiated.answer_sdp.contains("127.0.0.1 31000"));
}

#[test]
fn publisher_without_vp8_gets_h264_packetization_mode_1() {
    let offer = strip(PUBLISH_OFFER, "VP8");
    let negotiated = negotiate_publisher(&offer, &env(), Instant::now()).unwrap();
    let video = negotiated.tracks.video.unwrap();
    assert_eq!((video.name.as_str(), *video.pt), ("H264", 102));
    assert!(negotiated.answer_sdp.contains("H264/90000"));
}

#[test]
fn player_gets_the_publishers_codec_at_its_own_payload_type() {
    let env = env();
    let source = negotiate_publisher(&strip(PUBLISH_OFFER, "VP8"), &env, Instant::now())
        .unwrap()
        .tracks;
    let negotiated = negotiate_player(PLAY_OFFER, &source, &env, Instant::now()).unwrap();
    let video = negotiated.tracks.video.unwrap();
    assert_eq!(video.name, "H264");
    assert_eq!(video.fmtp_param_profile(), Some("4200".into()));
    assert!(negotiated.answer_sdp.contains("a=sendonly"));
    assert!(!negotiated.answer_sdp.contains("VP8"));
}

#[test]
fn transport_wide_feedback_only_for_publishers() {
    const TWCC: &str = "transport-wide-cc-extensions";
    let env = env();
    let publisher = negotiate_publisher(PUBLISH_OFFER, &env, Instant::now()).unwrap();
    assert!(
        publisher.answer_sdp.contains(TWCC),
        "the browser's send-side estimate needs it"
    );
    let player = negotiate_player(PLAY_OFFER, &publisher.tracks, &env, Instant::now()).unwrap();
    assert!(!player.answer_sdp.contains(TWCC), "{}", player.answer_sdp);
    assert!(player.answer_sdp.contains("urn:ietf:params:rtp-hdrext:sdes:mid"));
}

#[test]
fn player_without_the_publishers_codec_fails_with_no_common_codecs() {
    let env = env();
    let source = negotiate_publisher(PUBLISH_OFFER, &env, Instant::now())
        .unwrap()
        .tracks;
    let offer = strip(PLAY_OFFER, "VP8");
    let error = negotiate_player(&offer, &source, &env, Instant::now())
        .err()
        .unwrap();
    assert_eq!(error, NegotiationError::NoCommonCodecs);
}

#[test]
fn garbage_offers_fail_cleanly() {
    let env = env();
    for offer in [
        "",
        "hello",
        "v=0\r\nm=video 9 X 1\r\n",
        "v=0\r\na=fingerprint:sha-256 AA\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
    ] {
        assert!(
            negotiate_publisher(offer, &env, Instant::now()).is_err(),
            "{offer:?}"
        );
    }
}

impl TrackCodec {
    fn fmtp_param_profile(&self) -> Option<String> {
        self.fmtp
            .split(';')
            .find_map(|p| p.trim().strip_prefix("profile-level-id="))
            .map(|v| v[..4].to_owned())
    }
}

/// A source track like an RTMP encoder's: H.264 of the given profile-level-id.
fn h264_source(profile_level_id: &str) -> StreamTracks {
    StreamTracks {
        video: Some(TrackCodec {
            kind: MediaKind::Video,
            mid: Mid::from("0"),
            pt: Pt::from(96),
            rtx_pt: None,
            name: "H264".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: format!(
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile_level_id}"
            ),
        }),
        audio: None,
    }
}

#[test]
fn a_player_gets_a_profile_its_decoder_covers_when_none_matches() {
    let env = env();
    // This offer has baseline, constrained baseline and main: a main-profile source matches
    // exactly, a high-profile one has no decoder here.
    let main = negotiate_player(PLAY_OFFER, &h264_source("4d0028"), &env, Instant::now()).unwrap();
    assert_eq!(
        main.tracks.video.unwrap().fmtp_param_profile(),
        Some("4d00".into())
    );
    let high = negotiate_player(PLAY_OFFER, &h264_source("640028"), &env, Instant::now());
    assert!(matches!(high, Err(NegotiationError::NoCommonCodecs)));
    // Chromium offers high 4:4:4 (f400) and no plain high: that decoder takes high.
    let with_high444 = PLAY_OFFER.replace("profile-level-id=4d001f", "profile-level-id=f4001f");
    let high = negotiate_player(&with_high444, &h264_source("640028"), &env, Instant::now()).unwrap();
    assert_eq!(
        high.tracks.video.unwrap().fmtp_param_profile(),
        Some("f400".into())
    );
    // Constrained baseline exactly when offered.
    let cb = negotiate_player(PLAY_OFFER, &h264_source("42e01e"), &env, Instant::now()).unwrap();
    assert_eq!(cb.tracks.video.unwrap().fmtp_param_profile(), Some("42e0".into()));
}

#[test]
fn a_video_only_stream_rejects_the_players_audio_with_a_format_it_can_parse() {
    let env = env();
    let played = negotiate_player(PLAY_OFFER, &h264_source("42e01f"), &env, Instant::now()).unwrap();
    let answer = &played.answer_sdp;
    let m_audio = answer
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .expect("the audio section is answered");
    let words: Vec<&str> = m_audio.split_whitespace().collect();
    assert_eq!(words.get(1), Some(&"0"), "rejected: {m_audio}");
    let offered_first = PLAY_OFFER
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap();
    assert_eq!(
        words.get(3),
        Some(&offered_first),
        "the offer's first audio format: {m_audio}"
    );
    let audio = answer.split("m=video").next().unwrap();
    assert!(
        audio.contains(&format!("a=rtpmap:{offered_first} ")),
        "with its rtpmap: {answer}"
    );
}

fn h264(plid: &str) -> OfferCodec {
    OfferCodec {
        pt: 102,
        name: "H264".to_owned(),
        clock_rate: 90_000,
        channels: None,
        fmtp: format!("packetization-mode=1;profile-level-id={plid}"),
        rtx_pt: None,
    }
}

#[test]
fn h264_profiles_are_read_from_the_constraint_flags() {
    use H264Profile::*;
    for (plid, profile) in [
        ("42e01f", ConstrainedBaseline),
        ("42c00d", ConstrainedBaseline), // GStreamer's x264 with profile=constrained-baseline
        ("42401f", ConstrainedBaseline),
        ("4d801f", ConstrainedBaseline),
        ("58c01f", ConstrainedBaseline),
        ("42001f", Baseline),
        ("4d001f", Main),
        ("640c1f", ConstrainedHigh),
        ("64001f", High),
        ("f4001f", High444),
    ] {
        assert_eq!(h264_profile(&h264(plid)), Some(profile), "{plid}");
    }
    assert_eq!(h264_profile(&h264("zz")), None);
    assert!(decodes(Main, ConstrainedBaseline));
    assert!(!decodes(ConstrainedBaseline, Baseline));
    assert!(decodes(High444, High));
    assert!(!decodes(High, High444));
}
