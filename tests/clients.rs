//! The standard-client matrix: WebRTC stacks nobody on the project wrote, publishing over WHIP
//! and playing over WHEP through a real server, each player asserting decoded video frames and
//! audio (aiortc also the tone's frequency, so G.711 must arrive as the same 440 Hz):
//!
//! - aiortc (pip, in the venv `tests/clients/setup.sh` makes): VP8 and H.264 with Opus, PCMU and
//!   PCMA, each played by aiortc;
//! - GStreamer's webrtcbin (Debian's packages, its default RSA DTLS certificate) with
//!   `max-bundle` (bundle-only sections) and `max-compat`, publishing and playing;
//! - mixed pairs: aiortc → webrtcbin, webrtcbin → aiortc (webrtcbin → a browser and a browser's
//!   WHIP page → the official SDK are in `tests/browser/whip.test.mjs`);
//! - a WHIP publisher's H.264 played by ffmpeg over RTMP;
//! - an RSA client whose offer carries a wrong fingerprint, refused at once and counted.
//!
//! Prints each player's time from offer to first decoded frame. The scripts in
//! `tests/clients/` are the documentation of how to use webcall from those stacks.

mod support;

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Io, Server};

/// How long a publisher runs: long enough for its player to start (a few hundred ms), connect
/// and decode [`PLAY_SECONDS`].
const PUBLISH_SECONDS: &str = "9";
const PLAY_SECONDS: &str = "4";
/// A player retries a 404 this long while its publisher connects.
const WAIT_SECONDS: &str = "4";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// This host's address that is not loopback: webrtcbin's ICE (libnice) pairs no loopback
/// candidate, so the server must announce a real one.
fn media_ip() -> IpAddr {
    let probe = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .expect("a route to find this host's address");
    assert!(
        !probe.ip().is_loopback(),
        "this host has no non-loopback IPv4 address for webrtcbin to reach"
    );
    probe.ip()
}

#[derive(Clone, Copy, Debug)]
enum Stack {
    Aiortc,
    Webrtcbin,
}

fn client(stack: Stack, args: &[&str]) -> Child {
    let mut command = match stack {
        Stack::Aiortc => {
            let python = std::env::var_os("WEBCALL_CLIENTS_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target/clients-venv"))
                .join("bin/python");
            assert!(
                python.exists(),
                "{} is missing: run tests/clients/setup.sh",
                python.display()
            );
            let mut c = Command::new(python);
            c.arg(root().join("tests/clients/aiortc_whip.py"));
            c
        }
        Stack::Webrtcbin => {
            let mut c = Command::new("/usr/bin/python3");
            c.arg(root().join("tests/clients/gst_whip.py"));
            c
        }
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client")
}

/// The client's JSON report (its last stdout line), after it exits.
fn report(child: Child, what: &str) -> Value {
    let output = child.wait_with_output().expect("the client ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "{what}: no report (exit {:?})\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// One publisher and its player.
struct Pair {
    what: String,
    publisher: (Stack, Vec<String>),
    player: (Stack, Vec<String>),
    /// aiortc's player also reports the tone's frequency.
    check_tone: bool,
}

fn pair(server: &Server, n: usize, publish: (Stack, &[&str]), play: Stack, play_args: &[&str]) -> Pair {
    let base = format!("http://{}", server.http);
    let name = format!("c{n}");
    let mut publisher: Vec<String> = vec!["publish".into(), format!("{base}/whip/{name}")];
    publisher.extend(publish.1.iter().map(|s| s.to_string()));
    publisher.extend(["--seconds".into(), PUBLISH_SECONDS.into()]);
    let mut player: Vec<String> = vec!["play".into(), format!("{base}/whep/{name}")];
    player.extend(play_args.iter().map(|s| s.to_string()));
    player.extend([
        "--seconds".into(),
        PLAY_SECONDS.into(),
        "--wait".into(),
        WAIT_SECONDS.into(),
    ]);
    Pair {
        what: format!(
            "{:?} {} -> {:?} {}",
            publish.0,
            publish.1.join(" "),
            play,
            play_args.join(" ")
        ),
        publisher: (publish.0, publisher),
        player: (play, player),
        check_tone: matches!(play, Stack::Aiortc),
    }
}

fn args(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// Run `pairs` at once; assert what each player decoded; return its first-frame times.
fn run_batch(pairs: &[Pair]) -> Vec<(String, u64)> {
    let publishers: Vec<Child> = pairs
        .iter()
        .map(|p| client(p.publisher.0, &args(&p.publisher.1)))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let players: Vec<Child> = pairs
        .iter()
        .map(|p| client(p.player.0, &args(&p.player.1)))
        .collect();
    let mut times = Vec::new();
    for (pair, player) in pairs.iter().zip(players) {
        let got = report(player, &pair.what);
        assert_eq!(got["error"], Value::Null, "{}: {got}", pair.what);
        let frames = got["video_frames"].as_u64().unwrap_or(0);
        let audio = got["audio_frames"]
            .as_u64()
            .or_else(|| got["audio_buffers"].as_u64())
            .unwrap_or(0);
        assert!(
            frames >= 30,
            "{}: decoded {frames} video frames: {got}",
            pair.what
        );
        assert!(audio >= 50, "{}: decoded {audio} audio frames: {got}", pair.what);
        let peak = got["audio_peak_db"].as_f64().unwrap_or(-200.0);
        assert!(
            peak > -30.0,
            "{}: the tone arrived at {peak} dB: {got}",
            pair.what
        );
        if pair.check_tone {
            let hz = got["audio_hz"].as_f64().unwrap_or(0.0);
            assert!(
                (425.0..455.0).contains(&hz),
                "{}: the tone is {hz} Hz: {got}",
                pair.what
            );
        }
        times.push((pair.what.clone(), got["first_frame_ms"].as_u64().unwrap_or(0)));
    }
    for (pair, publisher) in pairs.iter().zip(publishers) {
        let got = report(publisher, &pair.what);
        assert_eq!(got["error"], Value::Null, "{} (publisher): {got}", pair.what);
    }
    times
}

async fn dtls_failures(server: &Server) -> u64 {
    let (status, _, body) = server.http("GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("webcall_worker_dtls_failures_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_clients_publish_and_play() {
    let ip = media_ip().to_string();
    let rtmp = webcall_loadtest::server::free_tcp()
        .expect("a free port")
        .to_string();
    let mut server = Server::start(Io::Uring, 2, &["--media-ip", &ip, "--rtmp", &rtmp]);
    let started = Instant::now();

    use Stack::{Aiortc, Webrtcbin};
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let batches: Vec<Vec<Pair>> = vec![
        vec![
            pair(
                &server,
                next(),
                (Aiortc, &["--video", "vp8", "--audio", "opus"]),
                Aiortc,
                &[],
            ),
            pair(
                &server,
                next(),
                (Aiortc, &["--video", "vp8", "--audio", "pcmu"]),
                Aiortc,
                &[],
            ),
            pair(
                &server,
                next(),
                (Aiortc, &["--video", "vp8", "--audio", "pcma"]),
                Aiortc,
                &[],
            ),
        ],
        vec![
            pair(
                &server,
                next(),
                (Aiortc, &["--video", "h264", "--audio", "opus"]),
                Aiortc,
                &[],
            ),
            pair(
                &server,
                next(),
                (Aiortc, &["--video", "h264", "--audio", "pcmu"]),
                Aiortc,
                &[],
            ),
            pair(
                &server,
                next(),
                (Aiortc, &["--video", "h264", "--audio", "pcma"]),
                Aiortc,
                &[],
            ),
        ],
        vec![
            pair(
                &server,
                next(),
                (
                    Webrtcbin,
                    &[
                        "--bundle-policy",
                        "max-bundle",
                        "--video",
                        "vp8",
                        "--audio",
                        "opus",
                    ],
                ),
                Webrtcbin,
                &["--bundle-policy", "max-compat"],
            ),
            pair(
                &server,
                next(),
                (
                    Webrtcbin,
                    &[
                        "--bundle-policy",
                        "max-compat",
                        "--video",
                        "h264",
                        "--audio",
                        "pcma",
                    ],
                ),
                Webrtcbin,
                &["--bundle-policy", "max-bundle"],
            ),
        ],
        vec![
            pair(
                &server,
                next(),
                (Aiortc, &["--video", "h264", "--audio", "pcmu"]),
                Webrtcbin,
                &[],
            ),
            pair(
                &server,
                next(),
                (
                    Webrtcbin,
                    &[
                        "--bundle-policy",
                        "max-bundle",
                        "--video",
                        "vp8",
                        "--audio",
                        "pcmu",
                    ],
                ),
                Aiortc,
                &[],
            ),
        ],
    ];
    let mut times = Vec::new();
    for batch in &batches {
        times.extend(run_batch(batch));
    }

    // A WHIP publisher's H.264 played by an RTMP player (ffmpeg): the bridge taps a WebRTC
    // stream whatever signaling brought it.
    let url = format!("http://{}/whip/to-rtmp", server.http);
    let publisher = client(
        Aiortc,
        &[
            "publish",
            &url,
            "--video",
            "h264",
            "--audio",
            "opus",
            "--seconds",
            "9",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let played = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostats",
            "-i",
            &format!("rtmp://{rtmp}/live/to-rtmp"),
        ])
        .args(["-t", "4", "-f", "null", "-", "-progress", "pipe:1"])
        .output()
        .expect("ffmpeg runs");
    let progress = String::from_utf8_lossy(&played.stdout);
    let frames = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let stderr = String::from_utf8_lossy(&played.stderr);
    assert!(
        frames >= 60,
        "ffmpeg decoded {frames} frames of the WHIP stream over RTMP: {stderr}"
    );
    assert!(stderr.contains("Video: h264"), "{stderr}");
    let got = report(publisher, "WHIP to RTMP publisher");
    assert_eq!(got["error"], Value::Null, "{got}");

    // An RSA client (webrtcbin) whose offer names another certificate's fingerprint: refused
    // as soon as its handshake shows the certificate, and counted.
    let before = dtls_failures(&server).await;
    let url = format!("http://{}/whip/wrong-fingerprint", server.http);
    let spawned = Instant::now();
    let mangled = client(
        Webrtcbin,
        &["publish", &url, "--seconds", "4", "--mangle-fingerprint"],
    );
    let mut refused_after = None;
    while spawned.elapsed() < Duration::from_secs(4) {
        if dtls_failures(&server).await > before {
            refused_after = Some(spawned.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = report(mangled, "wrong fingerprint");
    assert_eq!(
        got["ended_by_server"], true,
        "the server ended the refused client's resource: {got}"
    );
    let refused_after = refused_after.expect("the wrong fingerprint was refused and counted");
    assert!(
        server.log().contains("Failed by DTLS fingerprint error"),
        "the refusal is logged with its reason"
    );

    eprintln!("offer to first decoded frame (ms):");
    for (what, ms) in &times {
        eprintln!("  {ms:>5}  {what}");
    }
    eprintln!(
        "wrong fingerprint refused {} ms after the client started; matrix took {:.1} s",
        refused_after.as_millis(),
        started.elapsed().as_secs_f64()
    );
    server.stop();
}
