use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;
use crate::media::clock::SenderClock;
use crate::record::test_media::{
    duration_of, h264_and_opus, is_idr, leading_black_seconds, probe_decodes, x264_access_units, Scratch,
    Timed,
};

/// Feed `frames` in arrival order, finish, and return the file's bytes with the other events.
fn mux(
    mut muxer: Muxer,
    mut frames: Vec<TapFrame>,
    room_origin: &mut Option<Instant>,
) -> (Vec<u8>, Vec<MuxEvent>, Muxer) {
    frames.sort_by_key(|f| f.arrival);
    let mut file = Vec::new();
    let mut others = Vec::new();
    let mut drain = |muxer: &mut Muxer, file: &mut Vec<u8>| {
        while let Some(event) = muxer.poll() {
            match event {
                MuxEvent::Init { bytes, .. } | MuxEvent::Fragment { bytes } => {
                    if let Some(header) = crate::media::fmp4_read::box_header(&bytes) {
                        if &header.kind == b"moof" {
                            assert!(
                                bytes.len() <= FRAGMENT_BYTES_MAX + 64 * 1024,
                                "fragment of {} bytes",
                                bytes.len()
                            );
                        }
                    }
                    file.extend_from_slice(&bytes)
                }
                other => others.push(other),
            }
        }
    };
    for frame in frames {
        muxer.push(frame, room_origin);
        drain(&mut muxer, &mut file);
    }
    muxer.finish(room_origin);
    drain(&mut muxer, &mut file);
    (file, others, muxer)
}

fn h264_frames(timed: &Timed, seconds: u32) -> Vec<TapFrame> {
    x264_access_units(640, 360, seconds)
        .into_iter()
        .enumerate()
        .map(|(i, unit)| {
            let key = is_idr(&unit);
            timed.video(i as u32, FramePayload::H264(unit), key)
        })
        .collect()
}

fn write(scratch: &Scratch, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = scratch.0.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// One entry (`dts`, `duration`) of every video packet, as ffprobe reads the file.
fn video_packets(path: &std::path::Path, entry: &str) -> Vec<i64> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg(format!("packet={entry}"))
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Every video picture's decode time is on the 30-a-second grid (3,000 ticks at 90 kHz): off
/// it, ffmpeg guesses a rate under 30 from the average and gives two pictures one output time.
fn assert_video_on_grid(path: &std::path::Path) {
    let dts = video_packets(path, "dts");
    assert!(!dts.is_empty());
    let off: Vec<&i64> = dts.iter().filter(|d| *d % 3000 != 0).collect();
    assert!(off.is_empty(), "pictures off the grid: {off:?}");
}

fn assert_near(value: f64, want: f64, within: f64, what: &str) {
    assert!(
        (value - want).abs() <= within,
        "{what}: {value}, want {want} ± {within}"
    );
}

#[test]
fn h264_and_opus_decode_with_both_tracks_as_long_as_sent() {
    let scratch = Scratch::new("mux-h264");
    let frames = h264_and_opus(&Timed::new(Instant::now()), 3);
    let (file, events, muxer) = mux(Muxer::new(Some(VideoCodec::H264)), frames, &mut None);
    let probe = probe_decodes(&write(&scratch, "a.mp4", &file));
    assert!(
        probe[0].contains("codec_name=h264|width=640|height=360"),
        "{probe:?}"
    );
    assert!(probe[1].contains("codec_name=opus"), "{probe:?}");
    assert_near(duration_of(&probe[0]), 3.0, 0.1, "video");
    assert_near(duration_of(&probe[1]), 3.0, 0.1, "audio");
    assert!(matches!(
        events.first(),
        Some(MuxEvent::Resolution {
            at_ms: 0,
            width: 640,
            height: 360
        })
    ));
    assert_eq!(muxer.stats.frames_dropped, 0);
    assert_eq!(
        leading_black_seconds(&scratch.0.join("a.mp4")),
        0.0,
        "no black: the stream starts at once"
    );
}

#[test]
fn a_later_stream_on_the_room_timeline_starts_with_black_and_silence() {
    let scratch = Scratch::new("mux-late");
    let t0 = Instant::now() + Duration::from_secs(3);
    let frames = h264_and_opus(&Timed::new(t0), 3);
    let mut room = Some(t0 - Duration::from_secs(3));
    let (file, events, _) = mux(Muxer::new(Some(VideoCodec::H264)), frames, &mut room);
    let path = write(&scratch, "late.mp4", &file);
    let probe = probe_decodes(&path);
    assert_near(duration_of(&probe[0]), 6.0, 0.1, "video");
    assert_near(duration_of(&probe[1]), 6.0, 0.1, "audio");
    assert_near(leading_black_seconds(&path), 3.0, 0.15, "black head");
    assert_video_on_grid(&path);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, MuxEvent::Silence { from_ms: 0, to_ms } if (2980..=3020).contains(to_ms))),
        "{events:?}"
    );
}

#[test]
fn audio_before_the_first_keyframe_is_kept_and_video_padded_black() {
    let scratch = Scratch::new("mux-head");
    let t0 = Instant::now();
    let mut timed = Timed::new(t0);
    let audio: Vec<TapFrame> = (0..150).map(|i| timed.audio(i)).collect();
    // Video starts a second later (and a few ms off the audio's 20 ms beat, as real arrival
    // times are), with two pictures that cannot start a file.
    timed.t0 = t0 + Duration::from_millis(1007);
    let units = x264_access_units(640, 360, 2);
    let mut frames = vec![
        timed.video(0, FramePayload::H264(units[1].clone()), false),
        timed.video(1, FramePayload::H264(units[2].clone()), false),
    ];
    frames.extend(units.into_iter().enumerate().map(|(i, unit)| {
        let key = is_idr(&unit);
        timed.video(i as u32 + 2, FramePayload::H264(unit), key)
    }));
    frames.extend(audio);
    let (file, _, muxer) = mux(Muxer::new(Some(VideoCodec::H264)), frames, &mut None);
    let path = write(&scratch, "head.mp4", &file);
    let probe = probe_decodes(&path);
    assert_near(duration_of(&probe[1]), 3.0, 0.1, "audio from its first frame");
    assert_near(duration_of(&probe[0]), 3.0, 0.1, "video as long");
    assert_near(
        leading_black_seconds(&path),
        1.066,
        0.15,
        "black until the keyframe",
    );
    assert_video_on_grid(&path);
    assert_eq!(muxer.stats.frames_dropped, 2);
}

#[test]
fn sender_reports_set_lip_sync_whatever_the_arrival_delay_or_clock_skew() {
    let t0 = Instant::now();
    let mut timed = Timed::new(t0);
    // Audio's path is 300 ms slower; the sender's wall clock is 7 s ahead of ours. Both RTP
    // starts were sampled at the same sender instant.
    timed.audio_delay = Duration::from_millis(300);
    let skewed = UNIX_EPOCH + Duration::from_secs(1_800_000_007);
    timed.video_report = Some(SenderClock {
        ntp: skewed,
        rtp: timed.video_rtp0,
    });
    timed.audio_report = Some(SenderClock {
        ntp: skewed,
        rtp: timed.audio_rtp0,
    });
    let mut frames = h264_frames(&timed, 2);
    frames.extend((0..100).map(|i| timed.audio(i)));
    let (_, _, muxer) = mux(Muxer::new(Some(VideoCodec::H264)), frames, &mut None);
    let video = muxer.video.base_micros().unwrap();
    let audio = muxer.audio.base_micros().unwrap();
    assert!((audio - video).abs() <= 40_000, "A/V offset {} µs", audio - video);
    assert!(muxer.synced);
}

#[test]
fn without_reports_arrival_places_each_track() {
    let t0 = Instant::now();
    let mut timed = Timed::new(t0);
    timed.audio_delay = Duration::from_millis(200);
    let mut frames = h264_frames(&timed, 1);
    frames.extend((0..50).map(|i| timed.audio(i)));
    let (_, _, muxer) = mux(Muxer::new(Some(VideoCodec::H264)), frames, &mut None);
    let offset = muxer.audio.base_micros().unwrap() - muxer.video.base_micros().unwrap();
    assert!((offset - 200_000).abs() <= 1_000, "{offset}");
    assert!(!muxer.synced);
}

#[test]
fn audio_only_gets_black_video_and_video_only_gets_silence() {
    let scratch = Scratch::new("mux-one");
    let timed = Timed::new(Instant::now());
    let (file, _, _) = mux(
        Muxer::new(None),
        (0..100).map(|i| timed.audio(i)).collect(),
        &mut None,
    );
    let path = write(&scratch, "audio-only.mp4", &file);
    let probe = probe_decodes(&path);
    assert!(
        probe[0].contains("codec_name=h264|width=640|height=480"),
        "{probe:?}"
    );
    assert_near(duration_of(&probe[0]), 2.0, 0.1, "black video");
    assert_near(leading_black_seconds(&path), 2.0, 0.15, "all black");

    let key = crate::media::black_vp8::black_vp8_keyframe(320, 240).unwrap();
    let frames = (0..60)
        .map(|i| timed.video(i, FramePayload::Vp8(key.clone()), true))
        .collect();
    let (file, _, _) = mux(Muxer::new(Some(VideoCodec::Vp8)), frames, &mut None);
    let probe = probe_decodes(&write(&scratch, "video-only.mp4", &file));
    assert!(
        probe[0].contains("codec_name=vp8|width=320|height=240"),
        "{probe:?}"
    );
    assert!(probe[1].contains("codec_name=opus"), "{probe:?}");
    assert_near(
        duration_of(&probe[1]),
        duration_of(&probe[0]),
        0.1,
        "silence as long as the video",
    );
}

#[test]
fn a_gap_in_audio_becomes_silence() {
    let timed = Timed::new(Instant::now());
    let frames = (0..50).chain(100..150).map(|i| timed.audio(i)).collect();
    let (_, events, muxer) = mux(Muxer::new(None), frames, &mut None);
    assert!(
        events.iter().any(|e| matches!(
            e,
            MuxEvent::Silence {
                from_ms: 1000,
                to_ms: 2000
            }
        )),
        "{events:?}"
    );
    assert_eq!(muxer.duration_ms(), 3000);
}

#[test]
fn a_vp8_resolution_change_is_noted_and_plays_through() {
    let scratch = Scratch::new("mux-vp8");
    let timed = Timed::new(Instant::now());
    let small = crate::media::black_vp8::black_vp8_keyframe(320, 240).unwrap();
    let large = crate::media::black_vp8::black_vp8_keyframe(640, 480).unwrap();
    let mut frames: Vec<TapFrame> = (0..60)
        .map(|i| {
            timed.video(
                i,
                FramePayload::Vp8(if i < 30 { small.clone() } else { large.clone() }),
                true,
            )
        })
        .collect();
    frames.extend((0..100).map(|i| timed.audio(i)));
    let (file, events, _) = mux(Muxer::new(Some(VideoCodec::Vp8)), frames, &mut None);
    probe_decodes(&write(&scratch, "vp8.mp4", &file));
    let sizes: Vec<(u64, u16)> = events
        .iter()
        .filter_map(|e| match e {
            MuxEvent::Resolution { at_ms, width, .. } => Some((*at_ms, *width)),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [(0, 320), (1000, 640)]);
}

#[test]
fn an_h264_resolution_change_keeps_its_sps_in_band_and_decodes() {
    let scratch = Scratch::new("mux-h264-size");
    let timed = Timed::new(Instant::now());
    let mut units = x264_access_units(640, 360, 1);
    units.extend(x264_access_units(320, 240, 1));
    let frames: Vec<TapFrame> = units
        .into_iter()
        .enumerate()
        .map(|(i, unit)| {
            let key = is_idr(&unit);
            timed.video(i as u32, FramePayload::H264(unit), key)
        })
        .collect();
    let (file, events, _) = mux(Muxer::new(Some(VideoCodec::H264)), frames, &mut None);
    let probe = probe_decodes(&write(&scratch, "size.mp4", &file));
    assert_near(duration_of(&probe[0]), 2.0, 0.1, "both halves");
    assert!(
        events.iter().any(|e| matches!(
            e,
            MuxEvent::Resolution {
                at_ms: 1000,
                width: 320,
                height: 240
            }
        )),
        "{events:?}"
    );
}

/// A browser's timestamps jitter and its encoder drops pictures under load: the file still
/// keeps one picture per slot, so ffmpeg reads a steady rate and decodes without a word.
#[test]
fn jittery_and_dropped_pictures_land_on_slots() {
    let scratch = Scratch::new("mux-jitter");
    let timed = Timed::new(Instant::now());
    let units = x264_access_units(640, 360, 3);
    let mut frames = Vec::new();
    let mut state = 11u32;
    for (i, unit) in units.into_iter().enumerate() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let jitter = i64::from((state >> 16) % 1500) - 750; // ±8 ms
        let mut frame = {
            let key = is_idr(&unit);
            timed.video(i as u32, FramePayload::H264(unit), key)
        };
        // Every seventh picture comes 1.5 slots late, as from a 20 fps stretch.
        let late = if i % 7 == 3 { 1500 } else { 0 };
        frame.rtp_ts = frame.rtp_ts.wrapping_add((jitter + late) as u32);
        frames.push(frame);
    }
    frames.extend((0..150).map(|i| timed.audio(i)));
    let (file, _, _) = mux(Muxer::new(Some(VideoCodec::H264)), frames, &mut None);
    let path = write(&scratch, "jitter.mp4", &file);
    probe_decodes(&path);
    let durations = video_packets(&path, "duration");
    assert!(durations.len() > 80);
    assert!(
        durations.iter().all(|d| d % 3000 == 0),
        "whole slots: {durations:?}"
    );
}

/// A publisher that comes back continues the file: its new RTP timeline starts where its
/// arrival says, the gap is black (beginning with an IDR, never a picture that refers to the
/// old stream's) and silence, and the whole file decodes.
#[test]
fn a_resumed_stream_continues_after_a_black_gap() {
    let scratch = Scratch::new("mux-resume");
    let t0 = Instant::now();
    let first = h264_and_opus(&Timed::new(t0), 2);
    let mut again = Timed::new(t0 + Duration::from_secs(3));
    again.video_rtp0 = 7_777_777;
    again.audio_rtp0 = 1_234_567;
    let second = h264_and_opus(&again, 2);
    let mut muxer = Muxer::new(Some(VideoCodec::H264));
    let mut origin = None;
    let mut file = Vec::new();
    let drain = |muxer: &mut Muxer, file: &mut Vec<u8>| {
        while let Some(event) = muxer.poll() {
            if let MuxEvent::Init { bytes, .. } | MuxEvent::Fragment { bytes } = event {
                file.extend(bytes);
            }
        }
    };
    let mut sorted = first;
    sorted.sort_by_key(|f| f.arrival);
    for frame in sorted {
        muxer.push(frame, &mut origin);
    }
    drain(&mut muxer, &mut file);
    muxer.resume();
    let mut sorted = second;
    sorted.sort_by_key(|f| f.arrival);
    for frame in sorted {
        muxer.push(frame, &mut origin);
    }
    muxer.finish(&mut origin);
    drain(&mut muxer, &mut file);
    let path = write(&scratch, "resume.mp4", &file);
    let probe = probe_decodes(&path);
    assert_near(duration_of(&probe[0]), 5.0, 0.15, "video: 2 s, the gap, 2 s");
    assert_video_on_grid(&path);
    assert_near(duration_of(&probe[1]), 5.0, 0.15, "audio too");
}
