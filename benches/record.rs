//! What recording costs, per recorded packet: on the worker (the recorder tap: H.264 packets
//! joined into access units, Opus passed on, each frame put on the writer's queue) and on the
//! writer (the muxer: placing a frame, cutting fragments; no disk). The container's overhead
//! (file bytes against payload bytes) is printed once as `# record-overhead`.
//!
//! Run: `cargo bench --bench record` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use str0m::media::{MediaKind, Mid, Pt};
use webcall::forward::rewrite::Rewritten;
use webcall::forward::OutgoingRtp;
use webcall::ids::RecordingId;
use webcall::record::frame::{FramePayload, RecordedAudio, TapFrame, VideoCodec};
use webcall::record::muxer::{MuxEvent, Muxer, OPUS_SILENCE};
use webcall::record::queue::{WriterInput, WriterQueue};
use webcall::record::RecordingShared;
use webcall::worker::endpoint::{RecorderSpec, RecorderTap};

/// A 1 Mbit/s 30 fps picture (about 4.2 kB) in FU-A packets of at most 1100 bytes.
fn fu_a_packets(keyframe: bool) -> Vec<Vec<u8>> {
    let nal_type = if keyframe { 5u8 } else { 1 };
    let body: Vec<u8> = (0..4200u32).map(|i| (i * 7) as u8 | 1).collect();
    let chunks: Vec<&[u8]> = body.chunks(1098).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i == last { 0x40 } else { 0 };
            let mut p = vec![0x7c, start | end | nal_type];
            p.extend_from_slice(chunk);
            p
        })
        .collect()
}

fn outgoing(seq: u64, ts: u32, marker: bool, payload: &[u8], now: Instant) -> OutgoingRtp {
    OutgoingRtp {
        header: Rewritten {
            pt: Pt::from(102),
            seq,
            ts,
        },
        marker,
        arrival: now,
        payload: Arc::from(payload),
        sender: None,
    }
}

fn tap(c: &mut Criterion) {
    let (tx, rx) = crossbeam_channel::bounded(1 << 16);
    let queue = WriterQueue::new(tx, Arc::new(AtomicUsize::new(0)));
    let spec = RecorderSpec {
        recording: RecordingId(1),
        queue: queue.clone(),
        shared: Arc::new(RecordingShared::default()),
        video: Some(VideoCodec::H264),
        audio: Some(RecordedAudio::Opus),
    };
    let now = Instant::now();
    let mut tap = RecorderTap::new(spec, now);
    let packets = fu_a_packets(false);
    let opus = vec![0x78u8; 80];
    let mut group = c.benchmark_group("record_tap");
    group.throughput(Throughput::Elements(1));
    let (mut seq, mut frame) = (1u64, 0u32);
    group.bench_function("h264_packet", |b| {
        b.iter(|| {
            let index = (seq % packets.len() as u64) as usize;
            if index == 0 {
                frame += 1;
            }
            let rtp = outgoing(
                seq,
                frame * 3000,
                index + 1 == packets.len(),
                &packets[index],
                now,
            );
            seq += 1;
            tap.write_batch(std::iter::once((Mid::from("1"), MediaKind::Video, rtp)));
            while let Ok(input) = rx.try_recv() {
                if let WriterInput::Frame(_, f) = input {
                    queue.taken(f.bytes());
                    black_box(f);
                }
            }
        })
    });
    let mut audio_seq = 1u64;
    group.bench_function("opus_packet", |b| {
        b.iter(|| {
            let rtp = outgoing(audio_seq, audio_seq as u32 * 960, true, &opus, now);
            audio_seq += 1;
            tap.write_batch(std::iter::once((Mid::from("0"), MediaKind::Audio, rtp)));
            while let Ok(input) = rx.try_recv() {
                if let WriterInput::Frame(_, f) = input {
                    queue.taken(f.bytes());
                    black_box(f);
                }
            }
        })
    });
    group.finish();
}

/// A stream's frames: 30 fps video of `picture` bytes (a keyframe each second) and 50 Opus
/// packets a second, in arrival order.
fn frames(seconds: u32, picture: usize, t0: Instant) -> Vec<TapFrame> {
    let black = webcall::media::black_h264::BlackH264::new(webcall::media::black_h264::BlackParams {
        width: 640,
        height: 480,
        profile_idc: 66,
        constraint_flags: 0xc0,
        level_idc: 31,
    })
    .expect("black pictures");
    let mut out = Vec::new();
    for i in 0..seconds * 30 {
        let key = i % 30 == 0;
        let mut nals = Vec::new();
        if key {
            nals.push(black.sps().to_vec());
            nals.push(black.pps().to_vec());
        }
        let mut slice = vec![if key { 0x65 } else { 0x41 }];
        slice.resize(picture, 0x5a);
        nals.push(slice);
        out.push(TapFrame {
            rtp_ts: i * 3000,
            arrival: t0 + Duration::from_micros(u64::from(i) * 33_333),
            sender: None,
            keyframe: key,
            payload: FramePayload::H264(nals),
        });
    }
    let opus: Arc<[u8]> = Arc::from(vec![0x78u8; 80]);
    for i in 0..seconds * 50 {
        out.push(TapFrame {
            rtp_ts: i * 960,
            arrival: t0 + Duration::from_millis(u64::from(i) * 20),
            sender: None,
            keyframe: true,
            payload: FramePayload::Opus(opus.clone()),
        });
    }
    out.sort_by_key(|f| f.arrival);
    out
}

fn muxer(c: &mut Criterion) {
    let t0 = Instant::now();
    // The container's overhead at 1 Mbit/s video and 32 kbit/s audio, 20 s.
    let sample = frames(20, 4166, t0);
    let payload: usize = sample.iter().map(TapFrame::bytes).sum();
    let mut m = Muxer::new(Some(VideoCodec::H264));
    let mut origin = None;
    let mut written = 0usize;
    for frame in sample {
        m.push(frame, &mut origin);
        while let Some(event) = m.poll() {
            if let MuxEvent::Init { bytes, .. } | MuxEvent::Fragment { bytes } = event {
                written += bytes.len();
            }
        }
    }
    m.finish(&mut origin);
    while let Some(event) = m.poll() {
        if let MuxEvent::Init { bytes, .. } | MuxEvent::Fragment { bytes } = event {
            written += bytes.len();
        }
    }
    println!(
        "# record-overhead: {written} bytes written for {payload} bytes of payload: {:.2} %",
        (written as f64 - payload as f64) * 100.0 / payload as f64
    );

    let stream = frames(10, 4166, t0);
    let mut group = c.benchmark_group("record_writer");
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.bench_function("muxer_10s_stream", |b| {
        b.iter(|| {
            let mut m = Muxer::new(Some(VideoCodec::H264));
            let mut origin = None;
            let mut bytes = 0usize;
            for frame in stream.iter().cloned() {
                m.push(frame, &mut origin);
                while let Some(event) = m.poll() {
                    if let MuxEvent::Fragment { bytes: b } = event {
                        bytes += b.len();
                    }
                }
            }
            black_box(bytes)
        })
    });
    group.finish();
    black_box(OPUS_SILENCE);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = tap, muxer
}
criterion_main!(benches);
