//! Recording end to end, over a real WebSocket and real UDP, with real encoded media (libx264,
//! libvpx and libopus clips looped by the Rust client) on each I/O backend.
//!
//! Proves: `publishStream` with `record: true` makes `PUBLISHING` carry `recordName`; H.264 +
//! Opus, VP8 + Opus and VP8 + PCMU (decoded and encoded to Opus) each become an MP4 that ffmpeg decodes without a word,
//! with both tracks as long as what was sent, a keyframe first, pictures that are not black
//! and (Opus) the sent 440 Hz tone at its level; the recordings list and `/records/FILE` with
//! ranges serve them; REST starts and stops a recording of a live stream, with its errors and
//! the admin rule; the room timeline pads a later participant's file with black and silence;
//! a publisher who comes back within the resume window continues its file; `kill -9` leaves
//! files that the next start finishes, playable to within a second of the kill; a disk that
//! fails fails only the recording, with the publisher told why while its players go on; a
//! room's composite appears when its last recording ends; a flash-and-beep clip measures the
//! files' A/V offset.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use webcall_loadtest::media::encode::{default_cache_dir, load_or_encode_tone, Clips, VideoSpec};
use webcall_loadtest::{
    play, AudioCodec, PlayCodecs, PublishOptions, Publisher, StreamStatus, VideoCodec, WcsSession,
};

use support::{backends, packets_of, unique, Io, Server, T};

/// The A/V measurement takes this exclusively; every other test here shares it. The Rust
/// client's sender reports carry the instant it wrote each packet, so seven other tests
/// sharing two cores with it would put their scheduling delays into the measurement.
static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn clips(codec: VideoCodec) -> Clips {
    let spec = VideoSpec {
        codec,
        width: 640,
        height: 360,
        bitrate_bps: 600_000,
    };
    load_or_encode_tone(&default_cache_dir(), Some(spec)).expect("encode the test clips with ffmpeg")
}

/// Publish with `record` and wait for `PUBLISHING`; returns the publisher and `recordName`.
async fn publish_recorded(
    session: &WcsSession,
    name: &str,
    video: VideoCodec,
    audio: AudioCodec,
    room: Option<&str>,
    record: bool,
) -> (Publisher, Option<String>) {
    let (publisher, status) = publish_recorded_status(session, name, video, audio, room, record).await;
    (publisher, status.record_name)
}

/// [`publish_recorded`], returning the whole `PUBLISHING` status.
async fn publish_recorded_status(
    session: &WcsSession,
    name: &str,
    video: VideoCodec,
    audio: AudioCodec,
    room: Option<&str>,
    record: bool,
) -> (Publisher, webcall_loadtest::StreamStatusEvent) {
    let mut options = PublishOptions::new(name).video(Some(video)).audio(Some(audio));
    options.record = record;
    options.room = room.map(str::to_owned);
    options.clips = Some(clips(video));
    options.keyframe_interval = None;
    let publisher = Publisher::start(session, options).await.expect("publish");
    let status = publisher
        .wait_status(StreamStatus::Publishing, T)
        .await
        .expect("PUBLISHING");
    (publisher, status)
}

async fn recordings(server: &Server) -> Vec<Value> {
    let (status, _, body) = server.http("GET", "/rest-api/recordings", &[], b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    v["recordings"].as_array().cloned().unwrap_or_default()
}

/// Poll the recordings list until `file` is finished; returns its entry.
async fn finished(server: &Server, file: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let list = recordings(server).await;
        if let Some(entry) = list
            .iter()
            .find(|e| e["file"] == file && e["state"] == "finished")
        {
            return entry.clone();
        }
        assert!(Instant::now() < deadline, "{file} not finished: {list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ffprobe(path: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", entries, "-of", "compact"])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/install-test-deps.sh installs ffmpeg)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (codec, duration) of each stream.
fn streams(path: &Path) -> Vec<(String, f64)> {
    ffprobe(path, "stream=codec_name,duration")
        .lines()
        .map(|l| {
            let field = |k: &str| {
                l.split('|')
                    .find_map(|f| f.strip_prefix(k))
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("codec_name="), field("duration=").parse().unwrap_or(-1.0))
        })
        .collect()
}

fn assert_decodes_clean(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{} decodes: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffmpeg filter output (stderr) over the file, or over [from, from + length) seconds.
fn filter_log(path: &Path, filter: &str, video: bool, window: Option<(f64, f64)>) -> String {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "info"]);
    if let Some((from, _)) = window {
        command.args(["-ss", &from.to_string()]);
    }
    command.arg("-i").arg(path);
    if let Some((_, length)) = window {
        command.args(["-t", &length.to_string()]);
    }
    let kind = if video { ["-an", "-vf"] } else { ["-vn", "-af"] };
    let out = command
        .args(kind)
        .arg(filter)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Seconds of black from the file's start (0 when it does not start black).
fn leading_black(path: &Path) -> f64 {
    filter_log(path, "blackdetect=d=0.1:pix_th=0.1", true, None)
        .lines()
        .filter_map(|l| l.split("black_start:").nth(1))
        .filter_map(|rest| {
            let start: f64 = rest.split_whitespace().next()?.parse().ok()?;
            let end: f64 = rest
                .split("black_end:")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            (start < 0.1).then_some(end)
        })
        .next()
        .unwrap_or(0.0)
}

/// `volumedetect`'s (mean, max) in dB over a window of the audio.
fn volume(path: &Path, window: Option<(f64, f64)>) -> (f64, f64) {
    let log = filter_log(path, "volumedetect", false, window);
    let read = |key: &str| {
        log.lines()
            .find_map(|l| l.split(key).nth(1))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    (read("mean_volume:"), read("max_volume:"))
}

/// The frequency with the most energy in a second of the audio (ffmpeg `astats` cannot say;
/// count zero crossings of the decoded samples instead).
fn dominant_hz(path: &Path, from: f64) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &from.to_string(), "-i"])
        .arg(path)
        .args(["-t", "1", "-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap();
    let samples: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 48_000.0)
}

fn first_video_frame_is_key(path: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame",
            "-read_intervals",
            "%+#1",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().starts_with('1')
}

fn records(server: &Server) -> PathBuf {
    server.dir().join("records")
}

backends!(three_codecs_record_and_serve => three_codecs_record_and_serve_uring, three_codecs_record_and_serve_mmsg);

async fn three_codecs_record_and_serve(io: Io) {
    let _guard = EXCLUSIVE.read().await;
    let server = Server::start(io, 2, &["--record-resume-window", "0"]);
    let session = server.connect(&unique("rec")).await;
    let cases = [
        (VideoCodec::H264, AudioCodec::Opus, "h264"),
        (VideoCodec::Vp8, AudioCodec::Opus, "vp8"),
        (VideoCodec::Vp8, AudioCodec::Pcmu, "vp8"),
    ];
    let mut publishers = Vec::new();
    for (video, audio, _) in cases {
        let name = unique("recorded");
        let (publisher, record_name) = publish_recorded(&session, &name, video, audio, None, true).await;
        let file = record_name.expect("PUBLISHING carries recordName");
        assert!(file.starts_with("stream-") && file.ends_with(".mp4"), "{file}");
        assert!(file.contains(publisher.media_session_id()), "{file}: WCS naming");
        publishers.push((publisher, file, Instant::now()));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut sent_seconds = Vec::new();
    for (publisher, _, started) in &publishers {
        sent_seconds.push(started.elapsed().as_secs_f64());
        publisher.stop().await.expect("unpublish");
    }
    for (((publisher, file, _), (video, audio, codec)), sent) in
        publishers.iter().zip(cases).zip(sent_seconds)
    {
        let entry = finished(&server, file, Duration::from_secs(15)).await;
        assert_eq!(entry["stream"], publisher.name());
        assert_eq!(
            entry["videoCodec"],
            if video == VideoCodec::H264 { "H264" } else { "VP8" }
        );
        let path = records(&server).join(file);
        assert_decodes_clean(&path);
        let found = streams(&path);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, codec, "{found:?}");
        assert_eq!(found[1].0, "opus", "{found:?}");
        for (stream, duration) in &found {
            assert!(
                (duration - sent).abs() <= 0.3,
                "{stream}: {duration} s recorded of {sent:.2} s sent"
            );
        }
        assert!(
            (found[0].1 - found[1].1).abs() <= 0.3,
            "tracks end together: {found:?}"
        );
        assert!(first_video_frame_is_key(&path), "{file}: a keyframe first");
        assert!(leading_black(&path) < 0.5, "{file}: live pictures from the start");
        if audio == AudioCodec::Opus {
            let (mean, _) = volume(&path, Some((2.0, 4.0)));
            assert!(
                (-24.0..=-18.0).contains(&mean),
                "{file}: the tone's level, mean {mean} dB"
            );
            let hz = dominant_hz(&path, 3.0);
            assert!((420.0..=460.0).contains(&hz), "{file}: the 440 Hz tone, {hz} Hz");
        } else {
            // The client's PCMU is a 200 Hz square wave at ±120 (-48.7 dBFS), now in Opus.
            assert_eq!(entry["sourceAudioCodec"], "PCMU");
            let (mean, _) = volume(&path, Some((2.0, 4.0)));
            assert!(
                (-56.0..=-44.0).contains(&mean),
                "{file}: the G.711 wave's level, mean {mean} dB"
            );
            let hz = dominant_hz(&path, 3.0);
            assert!((180.0..=220.0).contains(&hz), "{file}: the 200 Hz wave, {hz} Hz");
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    // The file over HTTP, whole and by range.
    let file = &publishers[0].1;
    let bytes = std::fs::read(records(&server).join(file)).unwrap();
    let (status, head, body) = server.http("GET", &format!("/records/{file}"), &[], b"").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, bytes);
    assert!(head.to_lowercase().contains("accept-ranges: bytes"), "{head}");
    let (status, head, body) = server
        .http(
            "GET",
            &format!("/records/{file}"),
            &[("Range", "bytes=100-1099")],
            b"",
        )
        .await;
    assert_eq!(status, 206, "{head}");
    assert_eq!(body, bytes[100..1100]);
    assert!(
        head.contains(&format!("bytes 100-1099/{}", bytes.len())),
        "{head}"
    );
    let (status, _, _) = server.http("GET", "/records/..%2Fserver.log", &[], b"").await;
    assert_eq!(status, 404);
    let (status, _, _) = server.http("GET", "/records/nope.mp4", &[], b"").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_starts_and_stops_recording_with_clear_errors_and_the_admin_rule() {
    let _guard = EXCLUSIVE.read().await;
    let dir = std::env::temp_dir().join(format!("webcall-it-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("admin.key");
    std::fs::write(&key_file, "0123456789abcdef-secret\n").unwrap();
    let key_arg = key_file.display().to_string();
    let server = Server::start_in(dir, Io::Mmsg, 1, &["--admin-key-file", &key_arg], &[]);
    let auth = [("Authorization", "Bearer 0123456789abcdef-secret")];
    let session = server.connect(&unique("rest")).await;
    let name = unique("live");
    let (publisher, record_name) =
        publish_recorded(&session, &name, VideoCodec::H264, AudioCodec::Opus, None, false).await;
    assert_eq!(record_name, None, "not recorded unless asked");

    let body = json!({ "mediaSessionId": publisher.media_session_id() }).to_string();
    let (status, _, answer) = server
        .http("POST", "/rest-api/stream/startRecording", &[], body.as_bytes())
        .await;
    assert_eq!(
        status,
        401,
        "the key is required: {}",
        String::from_utf8_lossy(&answer)
    );
    let wrong = [("Authorization", "Bearer nope")];
    let (status, _, _) = server
        .http("POST", "/rest-api/stream/startRecording", &wrong, body.as_bytes())
        .await;
    assert_eq!(status, 401);
    let (status, _, answer) = server
        .http("POST", "/rest-api/stream/startRecording", &auth, body.as_bytes())
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let file = answer["recordName"].as_str().expect("recordName").to_owned();
    let (status, _, answer) = server
        .http("POST", "/rest-api/stream/startRecording", &auth, body.as_bytes())
        .await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&answer));
    let (status, _, answer) = server
        .http(
            "POST",
            "/rest-api/stream/startRecording",
            &auth,
            br#"{"name":"nobody"}"#,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&answer).unwrap()["error"],
        "no published stream matches"
    );
    let (status, _, _) = server
        .http("POST", "/rest-api/stream/startRecording", &auth, b"{not json")
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = server
        .http(
            "POST",
            "/rest-api/stream/startRecording",
            &auth,
            &vec![b' '; 20_000],
        )
        .await;
    assert_eq!(status, 413);

    tokio::time::sleep(Duration::from_secs(3)).await;
    let by_name = json!({ "name": name }).to_string();
    let (status, _, _) = server
        .http(
            "POST",
            "/rest-api/stream/stopRecording",
            &auth,
            by_name.as_bytes(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = server
        .http(
            "POST",
            "/rest-api/stream/stopRecording",
            &auth,
            by_name.as_bytes(),
        )
        .await;
    assert_eq!(status, 409, "already stopped");
    // Stopped on purpose: finished at once, not after the 10 s resume window.
    let deadline = Instant::now() + Duration::from_secs(5);
    let entry = loop {
        let (status, _, list) = server.http("GET", "/rest-api/recordings", &auth, b"").await;
        assert_eq!(status, 200);
        let list: Value = serde_json::from_slice(&list).unwrap();
        if let Some(e) = list["recordings"].as_array().and_then(|l| {
            l.iter()
                .find(|e| e["file"] == file && e["state"] == "finished")
                .cloned()
        }) {
            break e;
        }
        assert!(Instant::now() < deadline, "not finished: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let duration = entry["duration"].as_f64().unwrap() / 1000.0;
    assert!((2.5..=4.0).contains(&duration), "{duration} s of a 3 s recording");
    let (status, _, _) = server.http("GET", "/rest-api/recordings", &[], b"").await;
    assert_eq!(status, 401, "listing needs the key too");
    assert!(publisher.stats().video_packets_sent > 0);
    let path = records(&server).join(&file);
    assert_decodes_clean(&path);
}

/// The room timeline, a reconnect that continues a file, and a crash that the next start
/// repairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_timeline_resume_and_kill_nine() {
    let _guard = EXCLUSIVE.read().await;
    let extra = ["--record-room-timeline", "--record-resume-window", "4s"];
    let server = Server::start(Io::Mmsg, 1, &extra);
    let room = unique("room");
    let alice = server.connect("alice").await;
    // Alice records everything she publishes in the room: she joins with `record`.
    alice
        .send_data("join", json!({ "name": room, "record": true }))
        .await
        .unwrap();
    let (_alice_stream, alice_file) = publish_recorded(
        &alice,
        &unique("alice"),
        VideoCodec::H264,
        AudioCodec::Opus,
        Some(&room),
        false,
    )
    .await;
    let alice_file = alice_file.expect("Alice's recordName (join with record)");
    let alice_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let bob = server.connect("bob").await;
    bob.join(&room).await.unwrap();
    let (bob_stream, bob_file) = publish_recorded(
        &bob,
        &unique("bob"),
        VideoCodec::Vp8,
        AudioCodec::Opus,
        Some(&room),
        true,
    )
    .await;
    let bob_file = bob_file.expect("Bob's recordName");
    let bob_offset = alice_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Bob's connection drops; he is back within the window and continues his file.
    drop(bob_stream);
    bob.abort();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bob = server.connect("bob").await;
    bob.join(&room).await.unwrap();
    let (_bob_stream, again) = publish_recorded(
        &bob,
        &unique("bob"),
        VideoCodec::Vp8,
        AudioCodec::Opus,
        Some(&room),
        true,
    )
    .await;
    assert_eq!(
        again.as_deref(),
        Some(bob_file.as_str()),
        "the same file continues"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A crash while both record.
    let alice_seconds = alice_started.elapsed().as_secs_f64();
    let dir = server.kill9();
    let alice_path = dir.join("records").join(&alice_file);
    let bob_path = dir.join("records").join(&bob_file);
    let meta: Value = serde_json::from_slice(
        &std::fs::read(dir.join("records").join(format!("{alice_file}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        meta["state"], "recording",
        "the journal says the file is unfinished"
    );
    let server = Server::start_in(dir, Io::Mmsg, 1, &extra, &[]);
    let alice_entry = finished(&server, &alice_file, Duration::from_secs(10)).await;
    finished(&server, &bob_file, Duration::from_secs(10)).await;
    assert_decodes_clean(&alice_path);
    assert_decodes_clean(&bob_path);
    let alice_streams = streams(&alice_path);
    let bob_streams = streams(&bob_path);
    // At most the last fragment (1 s) is lost to the kill.
    let alice_duration = alice_streams[0].1;
    assert!(
        (alice_seconds - 1.5..=alice_seconds + 0.5).contains(&alice_duration),
        "Alice's file: {alice_streams:?} of {alice_seconds:.2} s"
    );
    assert_eq!(
        alice_entry["timelineStart"],
        finished(&server, &bob_file, T).await["timelineStart"]
    );
    // Bob's file is on Alice's timeline: it starts with black and silence for the time
    // before he published, and ends with Alice's (both were cut by the same kill).
    let black = leading_black(&bob_path);
    assert!(
        (black - bob_offset).abs() <= 0.5,
        "Bob's black head: {black} s, published {bob_offset:.2} s after Alice"
    );
    let (_, head_max) = volume(&bob_path, Some((0.0, black - 0.3)));
    assert!(head_max <= -50.0, "silence at Bob's head: {head_max} dB");
    let (mean, _) = volume(&bob_path, Some((black + 0.5, 1.0)));
    assert!(mean > -30.0, "Bob's tone after the head: {mean} dB");
    assert!(
        (bob_streams[0].1 - alice_duration).abs() <= 1.2,
        "{bob_streams:?} vs {alice_streams:?}"
    );
    let manifest = std::fs::read_dir(records(&server))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".manifest.json"))
        .expect("a room manifest");
    let manifest: Value = serde_json::from_slice(&std::fs::read(manifest.path()).unwrap()).unwrap();
    assert_eq!(
        manifest["recordings"].as_array().map(Vec::len),
        Some(2),
        "{manifest}"
    );
    assert_eq!(manifest["padded"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_fails_only_the_recording() {
    let _guard = EXCLUSIVE.read().await;
    let dir = std::env::temp_dir().join(format!("webcall-it-{}", uuid::Uuid::new_v4().simple()));
    let env = [("WEBCALL_RECORD_FAIL_AFTER_BYTES", "300000")];
    let server = Server::start_in(dir, Io::Mmsg, 1, &["--record-resume-window", "0"], &env);
    let session = server.connect(&unique("disk")).await;
    let name = unique("filling");
    let (publisher, file) =
        publish_recorded(&session, &name, VideoCodec::H264, AudioCodec::Opus, None, true).await;
    let file = file.expect("recordName");
    let viewer = server.connect(&unique("viewer")).await;
    let player = play(&viewer, &name, None, PlayCodecs::default())
        .await
        .expect("play");
    let status = publisher
        .next_status(Duration::from_secs(20))
        .await
        .expect("a status about the recording");
    assert_eq!(status.status, StreamStatus::Publishing);
    assert_eq!(status.info.as_deref(), Some("Recording failed: disk full"));
    assert_eq!(status.record_name.as_deref(), Some(file.as_str()));
    let before = packets_of(&player);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        packets_of(&player) > before + 20,
        "the stream flows on to its player"
    );
    let deadline = Instant::now() + T;
    loop {
        let list = recordings(&server).await;
        if let Some(entry) = list
            .iter()
            .find(|e| e["file"] == file.as_str() && e["state"] == "failed")
        {
            assert_eq!(entry["error"], "Recording failed: disk full");
            break;
        }
        assert!(Instant::now() < deadline, "{list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_decodes_clean(&records(&server).join(&file));

    // Below the free-space minimum a recording is refused at once, the stream still publishes.
    let server = Server::start(Io::Mmsg, 1, &["--record-min-free-bytes", "18446744073709551615"]);
    let session = server.connect(&unique("full")).await;
    let (_publisher, status) = publish_recorded_status(
        &session,
        &unique("refused"),
        VideoCodec::Vp8,
        AudioCodec::Opus,
        None,
        true,
    )
    .await;
    assert_eq!(status.record_name, None, "no file");
    assert_eq!(
        status.info.as_deref(),
        Some("Recording failed: less than 18446744073709551615 bytes free on the recording disk")
    );
}

/// A clip with a white flash and a 1 kHz beep on the same instant every second (all-intra
/// H.264, so a keyframe request never restarts the picture against the sound).
fn flash_and_beep_clips(dir: &Path) -> Clips {
    use std::sync::Arc;
    use webcall_loadtest::media::clip::{AudioClip, VideoClip};
    std::fs::create_dir_all(dir).unwrap();
    let video = dir.join("flash.h264");
    let audio = dir.join("beep.ogg");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("color=c=black:s=320x240:r=30:d=10,drawbox=enable='lt(mod(t\\,1)\\,0.03)':c=white:t=fill")
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-g",
            "1",
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-x264-params", "aud=1", "-f", "h264"])
        .arg(&video)
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("aevalsrc=exprs='if(lt(mod(t\\,1)\\,0.1)\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000:d=10")
        .args([
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-frame_duration",
            "20",
            "-application",
            "lowdelay",
            "-f",
            "ogg",
        ])
        .arg(&audio)
        .status()
        .unwrap();
    assert!(status.success());
    let video = VideoClip::parse(VideoCodec::H264, &std::fs::read(&video).unwrap()).unwrap();
    let audio = AudioClip::parse_ogg_opus(&std::fs::read(&audio).unwrap()).unwrap();
    Clips {
        video: Some(Arc::new(video)),
        audio: Arc::new(audio),
    }
}

/// The times of flashes (mean luma jumps above half) in the file's video.
fn flash_times(path: &Path) -> Vec<f64> {
    let source = format!("movie={},signalstats", path.display());
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "lavfi", "-i", &source])
        .args([
            "-show_entries",
            "frame=pts_time:frame_tags=lavfi.signalstats.YAVG",
            "-of",
            "csv=p=0",
        ])
        .output()
        .unwrap();
    let mut times = Vec::new();
    let mut lit = false;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split(',');
        let (Some(t), Some(y)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(t), Ok(y)) = (t.parse::<f64>(), y.parse::<f64>()) else {
            continue;
        };
        if y > 128.0 && !lit {
            times.push(t);
        }
        lit = y > 128.0;
    }
    times
}

/// The onsets of beeps (the first loud sample after silence) in the file's audio.
fn beep_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap();
    let samples: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut times = Vec::new();
    let mut quiet_since = 0usize;
    for (i, s) in samples.iter().enumerate() {
        if s.unsigned_abs() > 4000 {
            if i - quiet_since > 24_000 {
                times.push(i as f64 / 48_000.0);
            }
            quiet_since = i;
        }
    }
    times
}

/// What no peer publishes: the A/V offset of a recording, from a clip whose flash and beep
/// are on the same instant. Printed as `# av-offset`; within 40 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_av_offset_of_a_recording_stays_within_40_ms() {
    let _alone = EXCLUSIVE.write().await;
    let server = Server::start(Io::Mmsg, 1, &["--record-resume-window", "0"]);
    let session = server.connect(&unique("sync")).await;
    let mut options = PublishOptions::new(unique("flash"))
        .video(Some(VideoCodec::H264))
        .audio(Some(AudioCodec::Opus));
    options.record = true;
    options.keyframe_interval = None;
    options.clips = Some(flash_and_beep_clips(&default_cache_dir().join("av-sync-v1")));
    let publisher = Publisher::start(&session, options).await.expect("publish");
    let file = publisher
        .wait_status(StreamStatus::Publishing, T)
        .await
        .expect("PUBLISHING")
        .record_name
        .expect("recordName");
    tokio::time::sleep(Duration::from_secs(12)).await;
    publisher.stop().await.unwrap();
    finished(&server, &file, Duration::from_secs(15)).await;
    let path = records(&server).join(&file);
    assert_decodes_clean(&path);
    let flashes = flash_times(&path);
    let beeps = beep_times(&path);
    assert!(
        flashes.len() >= 10 && beeps.len() >= 10,
        "flashes {flashes:?}, beeps {beeps:?}"
    );
    // Only the clips' first pass: the client loops a 10 s video clip and an Opus clip of one
    // packet more (ffmpeg's pre-skip), so from the second pass on it sends the beep 20 ms late.
    let mut offsets: Vec<f64> = beeps
        .iter()
        .filter(|b| **b < 9.5)
        .filter_map(|b| {
            let nearest = flashes
                .iter()
                .min_by(|x, y| (*x - b).abs().total_cmp(&(*y - b).abs()))?;
            Some((b - nearest) * 1000.0)
        })
        .collect();
    offsets.sort_by(f64::total_cmp);
    let median = offsets[offsets.len() / 2];
    let worst = offsets.iter().fold(0.0f64, |w, o| w.max(o.abs()));
    println!("# av-offset: median {median:.1} ms (audio after video when positive), worst {worst:.1} ms over {} beeps", offsets.len());
    assert!(worst <= 40.0, "A/V offsets {offsets:?} ms");
}

/// `--record-room-composite`: when the room's last recording ends, its files become one MP4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_composite_is_written_when_its_last_recording_ends() {
    let _guard = EXCLUSIVE.read().await;
    let extra = [
        "--record-room-timeline",
        "--record-room-composite",
        "--record-resume-window",
        "0",
    ];
    let server = Server::start(Io::Mmsg, 1, &extra);
    let room = unique("composite");
    let mut publishers = Vec::new();
    for login in ["ann", "ben"] {
        let session = server.connect(login).await;
        session.join(&room).await.unwrap();
        let name = unique(login);
        let (publisher, _) = publish_recorded(
            &session,
            &name,
            VideoCodec::H264,
            AudioCodec::Opus,
            Some(&room),
            true,
        )
        .await;
        publishers.push((session, publisher));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (_, publisher) in &publishers {
        publisher.stop().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let composite = loop {
        let found = std::fs::read_dir(records(&server))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy().starts_with("room-") && n.to_string_lossy().ends_with(".mp4")
                })
            });
        // ffmpeg writes the file from the start with +faststart: wait for it to be whole.
        if let Some(path) = found.filter(|p| streams(p).len() == 2) {
            break path;
        }
        assert!(
            Instant::now() < deadline,
            "no room composite in {}",
            records(&server).display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_decodes_clean(&composite);
    let found = streams(&composite);
    assert_eq!(found[0].0, "h264");
    assert!((found[0].1 - 6.0).abs() <= 1.0, "{found:?}");
}

/// A template with `{duration}` names the file when it ends: `PUBLISHING` has the provisional
/// name, the list the final one, and the provisional file is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_with_the_duration_names_the_file_at_the_end() {
    let _guard = EXCLUSIVE.read().await;
    let extra = [
        "--record-name-template",
        "{login}_{streamName}_{duration}ms",
        "--record-resume-window",
        "0",
    ];
    let server = Server::start(Io::Mmsg, 1, &extra);
    let session = server.connect("carol").await;
    let name = unique("named");
    let (publisher, provisional) =
        publish_recorded(&session, &name, VideoCodec::Vp8, AudioCodec::Opus, None, true).await;
    let provisional = provisional.expect("recordName");
    assert_eq!(provisional, format!("carol_{name}_ms.mp4"), "no duration yet");
    tokio::time::sleep(Duration::from_secs(3)).await;
    publisher.stop().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let list = recordings(&server).await;
        if let Some(entry) = list
            .iter()
            .find(|e| e["stream"] == name.as_str() && e["state"] == "finished")
        {
            break entry.clone();
        }
        assert!(Instant::now() < deadline, "{list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let file = entry["file"].as_str().unwrap();
    let duration = entry["duration"].as_u64().unwrap();
    assert_eq!(file, format!("carol_{name}_{duration}ms.mp4"));
    assert!(records(&server).join(file).is_file());
    assert!(
        !records(&server).join(&provisional).exists(),
        "the provisional file is gone"
    );
    assert_decodes_clean(&records(&server).join(file));
}
