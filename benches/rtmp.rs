//! What the RTMP bridge costs per unit of media, off the workers: an encoder's AAC to Opus
//! (decode, resample 44.1 → 48 kHz, encode) and a browser's Opus to AAC for RTMP players, each
//! per second of stereo audio; and an encoder's picture to RTP (FLV parsing, NAL splitting,
//! RFC 6184 packetization) per picture.
//!
//! Run: `cargo bench --bench rtmp` (add `-- --quick` for a short run). Needs libopus
//! (`libopus.so.0`, Debian's libopus0); without it the audio benches say so and are skipped.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use webcall::media::aac_to_opus::AacToOpus;
use webcall::media::flv;
use webcall::media::h264_packetize::H264Packetizer;
use webcall::media::opus_encoder::OpusEncoder;
use webcall::media::opus_to_aac::OpusToAac;

/// One second of a 440 Hz stereo tone as 20 ms Opus packets (96 kbit/s).
fn opus_second() -> Option<Vec<Vec<u8>>> {
    let mut encoder = OpusEncoder::new(2, 96_000).ok()?;
    let mut packets = Vec::new();
    for frame in 0..50 {
        let pcm: Vec<i16> = (0..960)
            .flat_map(|i| {
                let t = f64::from(frame * 960 + i) / 48_000.0;
                let v = ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
                [v, v]
            })
            .collect();
        packets.push(encoder.encode(&pcm)?);
    }
    Some(packets)
}

fn audio(c: &mut Criterion) {
    let Some(opus) = opus_second() else {
        println!("# rtmp bench: libopus is not available; audio benches skipped");
        return;
    };
    let mut group = c.benchmark_group("rtmp_audio");
    group.throughput(Throughput::Elements(1)); // one second of audio
    group.bench_function("opus_to_aac_per_second", |b| {
        b.iter(|| {
            let mut to_aac = OpusToAac::new(2, 128_000, 48_000).expect("an AAC encoder");
            let mut out = 0;
            for (i, packet) in opus.iter().enumerate() {
                out += to_aac.push(packet, (i * 960) as u32).map_or(0, |f| f.len());
            }
            black_box(out)
        })
    });
    // AAC made from the same tone, as an encoder would send it (48 kHz stereo).
    let mut to_aac = OpusToAac::new(2, 128_000, 48_000).expect("an AAC encoder");
    let config = to_aac.config();
    let mut aac = Vec::new();
    for round in 0..3u32 {
        for (i, packet) in opus.iter().enumerate() {
            let ts = (round * 50 + i as u32) * 960;
            aac.extend(to_aac.push(packet, ts).unwrap_or_default());
        }
    }
    let second: Vec<_> = aac.into_iter().skip(20).take(47).collect();
    group.bench_function("aac_to_opus_per_second", |b| {
        b.iter(|| {
            let mut to_opus = AacToOpus::new(&config, 96_000).expect("an Opus encoder");
            let mut out = 0;
            for frame in &second {
                out += to_opus.push(&frame.data, frame.pts_ms).map_or(0, |p| p.len());
            }
            black_box(out)
        })
    });
    group.finish();
}

fn video(c: &mut Criterion) {
    // A 1 Mbit/s 30 fps picture (about 4.2 kB) as an FLV tag body.
    let slice: Vec<u8> = std::iter::once(0x41)
        .chain((0..4200u32).map(|i| (i * 7) as u8 | 1))
        .collect();
    let body = flv::avc_picture(false, 0, [slice.as_slice()]);
    let mut packetizer = H264Packetizer::default();
    let mut group = c.benchmark_group("rtmp_video");
    group.throughput(Throughput::Elements(1));
    group.bench_function("flv_picture_to_rtp", |b| {
        b.iter(|| {
            let Ok(flv::VideoTag::AvcPicture { data, .. }) = flv::parse_video(black_box(&body)) else {
                return 0;
            };
            let nals = flv::split_nal_units(data, 4).unwrap_or_default();
            packetizer.packetize(nals).len()
        })
    });
    group.finish();
}

criterion_group!(benches, audio, video);
criterion_main!(benches);
