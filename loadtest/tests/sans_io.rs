//! `PeerCore` is sans-IO: drive a publisher against a str0m ICE-lite answerer through
//! in-memory queues on a virtual clock (no sockets, no sleeping), and check the media
//! clock, RTP shapes and the PLI → keyframe path.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use webcall_loadtest::media::detect;
use webcall_loadtest::peer::{PeerCore, PeerOutput, PeerState, PublisherMedia};
use webcall_loadtest::{AudioCodec, PayloadTypes, VideoCodec};

#[test]
fn publisher_on_a_virtual_clock() {
    webcall_loadtest::peer::install_crypto_provider();
    let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let server: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let t0 = Instant::now();
    let mut now = t0;
    let media = PublisherMedia {
        video: Some((VideoCodec::H264, 640, 480)),
        audio: Some(AudioCodec::Opus),
        payload_types: PayloadTypes::chrome(),
        keyframe_interval: Some(webcall_loadtest::peer::KEYFRAME_INTERVAL),
    };
    let (mut core, offer) = PeerCore::publisher(client, &media, now).unwrap();
    let mut rtc: Rtc = RtcConfig::new().set_ice_lite(true).set_rtp_mode(true).build(now);
    rtc.add_local_candidate(Candidate::host(server, "udp").unwrap());
    let answer = rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
        .unwrap();
    core.accept_answer(&answer.to_sdp_string()).unwrap();

    let mut mids: Vec<(Mid, MediaKind)> = Vec::new();
    let (mut video, mut audio, mut keyframes) = (Vec::new(), 0u32, Vec::new());
    let mut pli_at = None;
    // str0m's contract: poll each side to a timeout after every input, so datagrams are
    // queued and delivered one at a time.
    let (mut to_server, mut to_client) = (VecDeque::new(), VecDeque::new());
    while now < t0 + Duration::from_millis(3500) {
        loop {
            while let PeerOutput::Transmit(t) = core.poll_output().unwrap() {
                to_server.push_back(t.contents.to_vec());
            }
            loop {
                match rtc.poll_output().unwrap() {
                    Output::Transmit(t) => to_client.push_back(t.contents.to_vec()),
                    Output::Timeout(_) => break,
                    Output::Event(Event::MediaAdded(m)) => mids.push((m.mid, m.kind)),
                    Output::Event(Event::RtpPacket(p)) => {
                        let mid = rtc.direct_api().stream_rx(&p.header.ssrc).map(|s| s.mid());
                        let kind = mids.iter().find(|m| Some(m.0) == mid).map(|m| m.1);
                        if kind == Some(MediaKind::Video) {
                            if detect::h264_is_keyframe(&p.payload) {
                                keyframes.push((now - t0, p.header.timestamp));
                            }
                            video.push((p.header.timestamp, p.header.marker, *p.seq_no));
                        } else {
                            audio += 1;
                        }
                    }
                    Output::Event(_) => {}
                }
            }
            if let Some(d) = to_server.pop_front() {
                let r = Receive::new(Protocol::Udp, client, server, &d).unwrap();
                rtc.handle_input(Input::Receive(now, r)).unwrap();
            } else if let Some(d) = to_client.pop_front() {
                core.handle_receive(now, server, &d).unwrap();
            } else {
                break;
            }
        }
        if pli_at.is_none() && now - t0 > Duration::from_millis(1000) && !video.is_empty() {
            let vmid = mids.iter().find(|m| m.1 == MediaKind::Video).unwrap().0;
            let mut api = rtc.direct_api();
            api.stream_rx_by_mid(vmid, None)
                .unwrap()
                .request_keyframe(KeyframeRequestKind::Pli);
            pli_at = Some(now - t0);
        }
        now += Duration::from_millis(1);
        core.handle_timeout(now).unwrap();
        rtc.handle_input(Input::Timeout(now)).unwrap();
    }

    assert_eq!(core.state(), &PeerState::Connected);
    let frames: std::collections::BTreeSet<u32> = video.iter().map(|v| v.0).collect();
    assert!(
        (100..=106).contains(&frames.len()),
        "about 30 fps: {}",
        frames.len()
    );
    assert!((170..=176).contains(&audio), "50 packets/s: {audio}");
    assert_eq!(
        video.iter().filter(|v| v.1).count(),
        frames.len(),
        "one marker per frame"
    );
    assert!(
        video.windows(2).all(|w| w[1].2 == w[0].2 + 1),
        "contiguous sequence numbers"
    );
    assert!(
        video.windows(2).all(|w| w[1].0.wrapping_sub(w[0].0) % 3000 == 0),
        "90 kHz / 30 fps"
    );
    let stats = core.stats();
    assert_eq!(stats.pli_received, 1);
    // Keyframes: the first frame, the one answering the PLI (at 1 s), and the periodic one
    // 2 s after that.
    let kf_frames: std::collections::BTreeSet<u32> = keyframes.iter().map(|k| k.1).collect();
    assert_eq!(kf_frames.len(), 3, "{keyframes:?}");
    assert_eq!(stats.keyframes_sent, 3);
    let pli = pli_at.unwrap();
    assert!(keyframes
        .iter()
        .any(|k| k.0 > pli && k.0 < pli + Duration::from_millis(100)));
}
