//! How a peer's DTLS ends, as its WebSocket session hears it: a certificate that does not
//! match the offer's fingerprint, a fatal alert, a handshake that never completes after ICE
//! connected, and a clean close. Each is a real str0m client (the load generator's peer) over
//! UDP on loopback, whose datagrams the test filters, against the real server.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use support::{Io, Server};
use webcall_loadtest::peer::{PeerCore, PeerOutput, PublisherMedia};
use webcall_loadtest::wcs::messages::{publish_stream, StreamRequest};
use webcall_loadtest::{AudioCodec, PayloadTypes, StreamStatus, VideoCodec, WcsSession};

/// What the test does with one datagram the client sends.
enum Verdict {
    Pass,
    Drop,
    Replace(Vec<u8>),
}

/// A DTLS record's first byte (RFC 7983 §7: 20 to 63).
fn is_dtls(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|b| (20..=63).contains(b))
}

/// A fatal `handshake_failure` alert in epoch 0, as a DTLS 1.2 record.
const FATAL_ALERT: [u8; 15] = [21, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 40];

/// Start a publisher whose offer `mangle` may change, and drive it on a thread with `filter`
/// deciding each outgoing datagram; `close_after` closes it cleanly that long after the answer.
/// Returns when the answer arrived, and the stream's media session id.
async fn publish(
    session: &WcsSession,
    name: &str,
    mangle: impl FnOnce(String) -> String,
    mut filter: impl FnMut(&[u8]) -> Verdict + Send + 'static,
    close_after: Option<Duration>,
) -> (Instant, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let media = PublisherMedia {
        video: Some((VideoCodec::H264, 320, 240)),
        audio: Some(AudioCodec::Opus),
        payload_types: PayloadTypes::default(),
        keyframe_interval: Some(Duration::from_secs(1)),
    };
    let (mut core, offer) =
        PeerCore::publisher(socket.local_addr().unwrap(), &media, Instant::now()).expect("publisher");
    let offer = mangle(offer);
    let msid = uuid::Uuid::new_v4().to_string();
    session.watch_stream(&msid);
    let request = StreamRequest {
        media_session_id: &msid,
        name,
        sdp: &offer,
        room: None,
        has_video: true,
        has_audio: true,
        record: false,
    };
    session.send_text(&publish_stream(&request)).expect("send");
    let answer = session
        .wait_remote_sdp(&msid, Duration::from_secs(5))
        .await
        .expect("an answer");
    core.accept_answer(&answer).expect("answer accepted");
    let answered = Instant::now();
    std::thread::spawn(move || {
        let local: SocketAddr = socket.local_addr().unwrap();
        let mut buf = vec![0u8; 2048];
        let close_at = close_after.map(|d| answered + d);
        let mut closed = false;
        let end = answered + Duration::from_secs(20);
        while Instant::now() < end && core.is_alive() {
            if close_at.is_some_and(|at| Instant::now() >= at) && !closed {
                closed = true;
                core.close();
            }
            let deadline = loop {
                match core.poll_output() {
                    Ok(PeerOutput::Transmit(t)) => match filter(&t.contents) {
                        Verdict::Pass => drop(socket.send_to(&t.contents, t.destination)),
                        Verdict::Drop => {}
                        Verdict::Replace(bytes) => drop(socket.send_to(&bytes, t.destination)),
                    },
                    Ok(PeerOutput::Timeout(t)) => break t,
                    Err(_) => break Instant::now() + Duration::from_millis(10),
                }
            };
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(20));
            socket.set_read_timeout(Some(wait)).unwrap();
            if let Ok((n, source)) = socket.recv_from(&mut buf) {
                if source != local {
                    let _ = core.handle_receive(Instant::now(), source, &buf[..n]);
                }
            }
            let _ = core.handle_timeout(Instant::now());
        }
    });
    (answered, msid)
}

/// The stream's statuses until its last one, which is returned with when it came.
async fn last_status(session: &WcsSession, msid: &str, within: Duration) -> (StreamStatus, String, Instant) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = session
            .next_stream_status(msid, left)
            .await
            .expect("the stream's last status in time");
        if matches!(
            event.status,
            StreamStatus::Failed | StreamStatus::Unpublished | StreamStatus::Stopped
        ) {
            return (event.status, event.info.unwrap_or_default(), Instant::now());
        }
    }
}

async fn metric(server: &Server, name: &str) -> u64 {
    let (status, _, body) = server.http("GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_endings_are_prompt_and_named() {
    let mut server = Server::start(Io::Mmsg, 1, &[]);
    let session = WcsSession::connect(&server.ws_url(), "dtls")
        .await
        .expect("connect");

    // A certificate that does not match the offer's fingerprint.
    let wrong_fingerprint = |offer: String| {
        offer
            .lines()
            .map(|line| match line.strip_prefix("a=fingerprint:sha-256 ") {
                Some(hex) => format!("a=fingerprint:sha-256 {}", hex.chars().rev().collect::<String>()),
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    };
    let (answered, msid) = publish(&session, "fp", wrong_fingerprint, |_| Verdict::Pass, None).await;
    let (status, info, at) = last_status(&session, &msid, Duration::from_secs(5)).await;
    assert_eq!(
        (status, info.as_str()),
        (StreamStatus::Failed, "Failed by DTLS fingerprint error")
    );
    assert!(at - answered < Duration::from_secs(2), "took {:?}", at - answered);

    // A fatal alert in place of the client's first flight.
    let mut sent_alert = false;
    let alert = move |datagram: &[u8]| {
        if is_dtls(datagram) && !sent_alert {
            sent_alert = true;
            Verdict::Replace(FATAL_ALERT.to_vec())
        } else if is_dtls(datagram) {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    };
    let (answered, msid) = publish(&session, "alert", |o| o, alert, None).await;
    let (status, info, at) = last_status(&session, &msid, Duration::from_secs(5)).await;
    assert_eq!(
        (status, info.as_str()),
        (StreamStatus::Failed, "Failed by DTLS error")
    );
    assert!(at - answered < Duration::from_secs(1), "took {:?}", at - answered);

    // ICE connects, DTLS never does: its datagrams are lost.
    let lost = |datagram: &[u8]| {
        if is_dtls(datagram) {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    };
    let (answered, msid) = publish(&session, "silent", |o| o, lost, None).await;
    let (status, info, at) = last_status(&session, &msid, Duration::from_secs(15)).await;
    assert_eq!(
        (status, info.as_str()),
        (StreamStatus::Failed, "Failed by DTLS timeout")
    );
    let took = at - answered;
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(12),
        "took {took:?}"
    );

    // A clean close (close_notify) once publishing: an ordinary end, not a failure.
    let (_, msid) = publish(
        &session,
        "closer",
        |o| o,
        |_| Verdict::Pass,
        Some(Duration::from_secs(2)),
    )
    .await;
    let (status, info, _) = last_status(&session, &msid, Duration::from_secs(6)).await;
    assert_eq!(
        (status, info.as_str()),
        (StreamStatus::Unpublished, "Stopped by user")
    );

    // A close whose close_notify is lost: its RTCP BYE (and no RTP after it) ends it, as
    // Firefox's close() does, which sends only BYE.
    // The handshake is long done 1.5 s in; the close comes at 2 s: DTLS lost from 1.5 s on.
    let lose_dtls_from = Instant::now() + Duration::from_millis(1500);
    let bye_only = move |datagram: &[u8]| {
        if is_dtls(datagram) && Instant::now() >= lose_dtls_from {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    };
    let (_, msid) = publish(&session, "byer", |o| o, bye_only, Some(Duration::from_secs(2))).await;
    let (status, info, _) = last_status(&session, &msid, Duration::from_secs(8)).await;
    assert_eq!(
        (status, info.as_str()),
        (StreamStatus::Unpublished, "Stopped by user")
    );

    // Every failed name is free again, and the failures were counted.
    for name in ["fp", "alert", "silent"] {
        let (_, msid) = publish(
            &session,
            name,
            |o| o,
            |_| Verdict::Pass,
            Some(Duration::from_secs(1)),
        )
        .await;
        let (status, info, _) = last_status(&session, &msid, Duration::from_secs(6)).await;
        assert_eq!(
            (status, info.as_str()),
            (StreamStatus::Unpublished, "Stopped by user"),
            "{name}"
        );
    }
    assert_eq!(metric(&server, "webcall_worker_dtls_failures_total").await, 2);
    assert_eq!(metric(&server, "webcall_worker_dtls_timeouts_total").await, 1);
    let log = server.log();
    for reason in [
        "Failed by DTLS fingerprint error",
        "Failed by DTLS error",
        "Failed by DTLS timeout",
    ] {
        assert_eq!(
            log.lines()
                .filter(|l| l.contains(reason) && l.contains("INFO"))
                .count(),
            1,
            "logged once at info: {reason}"
        );
    }
    server.stop();
}
