//! Per-subscriber work of one forwarded packet, in isolation: the RTP rewrite alone
//! (`TrackRewriter`: payload type, sequence and timestamp), then rewrite + str0m write + SRTP
//! encrypt + the poll that yields the datagram, on one player connected in memory (the SRTP
//! profile str0m negotiates with itself: AEAD_AES_128_GCM). Sizes: a 1200-byte video packet
//! and a 100-byte Opus packet.
//!
//! Run: `cargo bench --bench rewrite` (add `-- --quick` for a short run).

mod support;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use str0m::media::{MediaKind, Mid, Pt};
use webcall::forward::rewrite::TrackRewriter;
use webcall::forward::OutgoingRtp;
use webcall::ids::PeerId;
use webcall::sdp::{PeerEnv, StreamTracks, TrackCodec};
use webcall::worker::endpoint::{PollEffects, TransmitSink, WebRtcPeer};

#[derive(Default)]
struct CountingSink {
    datagrams: u64,
}

impl TransmitSink for CountingSink {
    fn transmit(&mut self, _peer: PeerId, _destination: SocketAddr, _datagram: &[u8]) {
        self.datagrams += 1;
    }
}

fn track(kind: MediaKind) -> TrackCodec {
    let video = kind == MediaKind::Video;
    TrackCodec {
        kind,
        mid: Mid::from(if video { "1" } else { "0" }),
        pt: Pt::from(if video { 96 } else { 111 }),
        rtx_pt: video.then(|| Pt::from(97)),
        name: if video { "VP8" } else { "OPUS" }.into(),
        clock_rate: if video { 90_000 } else { 48_000 },
        channels: (!video).then_some(2),
        fmtp: if video { "" } else { "minptime=10;useinbandfec=1" }.into(),
    }
}

fn rewrite_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("rewrite");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    let mut rw = TrackRewriter::new(Pt::from(102), true, 0x1234_5678_9abc);
    rw.rewrite(1000, 0, true);
    let mut seq = 1000u64;
    group.bench_function("track_rewriter", |b| {
        b.iter(|| {
            seq += 1;
            black_box(rw.rewrite(black_box(seq), black_box(seq as u32 * 3000), false))
        })
    });
    group.finish();
}

fn rewrite_encrypt(c: &mut Criterion) {
    webcall::sdp::install_crypto_provider();
    let env = PeerEnv {
        candidate: "127.0.0.1:31000".parse().unwrap(),
        dtls_cert: webcall::sdp::generate_dtls_cert().unwrap(),
    };
    let source = StreamTracks {
        video: Some(track(MediaKind::Video)),
        audio: Some(track(MediaKind::Audio)),
    };
    let mut group = c.benchmark_group("rewrite_encrypt_gcm");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    for (name, kind, len) in [
        ("video_1200B", MediaKind::Video, 1200),
        ("opus_100B", MediaKind::Audio, 100),
    ] {
        let mut now = Instant::now();
        let player = support::connect_player(&source, &env, 21_000, &mut now);
        let out = match kind {
            MediaKind::Video => player.tracks.video.clone(),
            MediaKind::Audio => player.tracks.audio.clone(),
        }
        .expect("player negotiated the track");
        let mut peer = WebRtcPeer::new(PeerId(1), player.server);
        let mut rw = TrackRewriter::new(out.pt, false, 77);
        let mut payload = vec![0u8; len];
        payload[..5].copy_from_slice(&[0x10, 0x00, 0x9d, 0x01, 0x2a]);
        let payload: Arc<[u8]> = payload.into();
        let (mut sink, mut effects, mut seq) = (CountingSink::default(), PollEffects::default(), 5000u64);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                seq += 1;
                now += Duration::from_micros(100);
                let r = rw.rewrite(seq, seq as u32 * 960, false).expect("forwarded");
                let rtp = OutgoingRtp {
                    header: r,
                    marker: true,
                    arrival: now,
                    payload: payload.clone(),
                    sender: None,
                };
                peer.write_batch(std::iter::once((out.mid, kind, rtp))).unwrap();
                peer.advance(now).unwrap();
                peer.poll(&mut sink, &mut effects).unwrap();
                effects.clear();
            })
        });
        assert!(sink.datagrams > 0, "the player produced datagrams");
    }
    group.finish();
}

criterion_group!(benches, rewrite_only, rewrite_encrypt);
criterion_main!(benches);
