//! The forwarding path in memory: one publisher packet fanned out to N connected players —
//! routing, per-player rewriting, str0m's RTP write, SRTP encryption and the poll that yields the
//! datagram — with no kernel in the way. Throughput is per forwarded packet.
//!
//! Run: `cargo bench --bench forward` (add `-- --quick` for a short run).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use str0m::media::{MediaKind, Mid, Pt};
use webcall::peer::{PeerEnv, StreamTracks, TrackCodec};
use webcall::room::{IncomingRtp, Router};
use webcall::worker::commands::{PeerId, PeerRole};
use webcall::worker::peer_slot::{PeerSlot, PollEffects, TransmitSink};

/// Counts datagrams instead of sending them.
#[derive(Default)]
struct CountingSink {
    datagrams: u64,
    bytes: u64,
}

impl TransmitSink for CountingSink {
    fn transmit(&mut self, _peer: PeerId, _destination: SocketAddr, datagram: &[u8]) {
        self.datagrams += 1;
        self.bytes += datagram.len() as u64;
    }
}

fn source_tracks() -> StreamTracks {
    StreamTracks {
        video: Some(TrackCodec {
            kind: MediaKind::Video,
            mid: Mid::from("1"),
            pt: Pt::from(96),
            rtx_pt: Some(Pt::from(97)),
            name: "VP8".into(),
            clock_rate: 90_000,
            channels: None,
            fmtp: String::new(),
        }),
        audio: Some(TrackCodec {
            kind: MediaKind::Audio,
            mid: Mid::from("0"),
            pt: Pt::from(111),
            rtx_pt: None,
            name: "OPUS".into(),
            clock_rate: 48_000,
            channels: Some(2),
            fmtp: "minptime=10;useinbandfec=1".into(),
        }),
    }
}

struct Fanout {
    router: Router,
    players: Vec<PeerSlot>,
    publisher: PeerId,
    sink: CountingSink,
    effects: PollEffects,
    now: Instant,
    seq: u64,
    payload: std::sync::Arc<[u8]>,
}

impl Fanout {
    fn new(players: usize) -> Self {
        webcall::peer::install_crypto_provider();
        let env = PeerEnv {
            candidate: "127.0.0.1:31000".parse().unwrap(),
            dtls_cert: webcall::peer::generate_dtls_cert().unwrap(),
        };
        let source = source_tracks();
        let publisher = PeerId(0);
        let mut router = Router::default();
        router.add_publisher(publisher, source.clone());
        let mut now = Instant::now();
        let mut slots = Vec::with_capacity(players);
        for i in 0..players {
            let peer = PeerId(i as u64 + 1);
            let connected = support::connect_player(&source, &env, 20_000 + i as u16, &mut now);
            router
                .add_player(peer, publisher, &connected.tracks, i as u64 * 7919)
                .unwrap();
            slots.push(PeerSlot::new(
                peer,
                PeerRole::Player { publisher },
                connected.server,
                now,
            ));
        }
        // A 1200-byte VP8 keyframe start, so every player's gate opens on the first packet.
        let mut payload = vec![0u8; 1200];
        payload[..5].copy_from_slice(&[0x10, 0x00, 0x9d, 0x01, 0x2a]);
        Fanout {
            router,
            players: slots,
            publisher,
            sink: CountingSink::default(),
            effects: PollEffects::default(),
            now,
            seq: 1000,
            payload: payload.into(),
        }
    }

    fn forward_one(&mut self, writes: &mut Vec<webcall::room::PlayerWrite>) {
        self.seq += 1;
        self.now += Duration::from_micros(100);
        let packet = IncomingRtp {
            pt: Pt::from(96),
            seq: self.seq,
            ts: (self.seq * 3000) as u32,
            marker: true,
            arrival: self.now,
            payload: self.payload.clone(),
        };
        self.router.forward(self.publisher, &packet, writes);
        for write in writes.drain(..) {
            let index = (write.player.0 - 1) as usize;
            let slot = &mut self.players[index];
            slot.write(write.mid, write.kind, write.rtp).unwrap();
            slot.advance(self.now).unwrap();
            slot.poll(&mut self.sink, &mut self.effects).unwrap();
            self.effects.clear();
        }
    }
}

impl Fanout {
    /// One frame of `FRAME_PACKETS` packets to every player, written the way the worker
    /// applies a turn: all of a player's packets, then one advance and poll.
    fn forward_frame(&mut self, writes: &mut Vec<webcall::room::PlayerWrite>) {
        self.now += Duration::from_micros(100);
        for i in 0..FRAME_PACKETS {
            self.seq += 1;
            let packet = IncomingRtp {
                pt: Pt::from(96),
                seq: self.seq,
                ts: (self.seq / FRAME_PACKETS as u64 * 3000) as u32,
                marker: i + 1 == FRAME_PACKETS,
                arrival: self.now,
                payload: self.payload.clone(),
            };
            self.router.forward(self.publisher, &packet, writes);
        }
        writes.sort_by_key(|w| w.player.0);
        for group in writes.chunk_by(|a, b| a.player == b.player) {
            let index = (group[0].player.0 - 1) as usize;
            let slot = &mut self.players[index];
            slot.write_batch(group.iter().map(|w| (w.mid, w.kind, w.rtp.clone())))
                .unwrap();
            slot.advance(self.now).unwrap();
            slot.poll(&mut self.sink, &mut self.effects).unwrap();
            self.effects.clear();
        }
        writes.clear();
    }
}

/// A group measured for 3 s after 1 s of warm-up, in 20 samples: shorter than criterion's
/// defaults, and a fan-out iteration (up to 100 players) is long enough for 20 to be steady.
fn short_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    group
}

/// Packets in the frame of the frame bench: a 1.5 Mbit/s, 30 fps frame in 1200-byte packets.
const FRAME_PACKETS: usize = 6;

fn fanout_frames(c: &mut Criterion) {
    let mut group = short_group(c, "fanout_frame_6x1200B_vp8");
    for players in [10usize, 100] {
        let mut bench = Fanout::new(players);
        let mut writes = Vec::with_capacity(players * FRAME_PACKETS);
        bench.forward_frame(&mut writes);
        assert!(bench.sink.datagrams > 0, "players produced datagrams");
        group.throughput(Throughput::Elements((players * FRAME_PACKETS) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(players), &players, |b, _| {
            b.iter(|| bench.forward_frame(&mut writes));
        });
    }
    group.finish();
}

fn fanout(c: &mut Criterion) {
    let mut group = short_group(c, "fanout_1200B_vp8");
    for players in [1usize, 10, 100] {
        let mut bench = Fanout::new(players);
        let mut writes = Vec::with_capacity(players);
        // Checked before measuring, so a filtered-out benchmark does not fail the run.
        bench.forward_one(&mut writes);
        assert!(bench.sink.datagrams > 0, "players produced datagrams");
        group.throughput(Throughput::Elements(players as u64));
        group.bench_with_input(BenchmarkId::from_parameter(players), &players, |b, _| {
            b.iter(|| bench.forward_one(&mut writes));
        });
    }
    group.finish();
}

criterion_group!(benches, fanout, fanout_frames);
criterion_main!(benches);
