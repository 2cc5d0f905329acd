//! The worker's demultiplexer in isolation: which peer a datagram belongs to, among 10k peers.
//! Three paths: a learned remote address (every media packet), a STUN binding request from an
//! address not learned yet (routed by the USERNAME ufrag), and a datagram for no peer.
//!
//! Run: `cargo bench --bench demux` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use webcall::ids::PeerId;
use webcall::worker::demux::Demux;

const PEERS: u64 = 10_000;

fn addr(i: u64) -> SocketAddr {
    let ip = [127, 1, (i >> 8) as u8, i as u8];
    SocketAddr::from((ip, 40_000 + (i % 1000) as u16))
}

fn ufrag(i: u64) -> String {
    format!("u{i:07x}")
}

/// A STUN binding request whose USERNAME is `ours:theirs`.
fn binding_request(username: &str) -> Vec<u8> {
    let name = username.as_bytes();
    let padded = (name.len() + 3) & !3;
    let mut attrs = vec![0x00, 0x06];
    attrs.extend_from_slice(&(name.len() as u16).to_be_bytes());
    attrs.extend_from_slice(name);
    attrs.resize(4 + padded, 0);
    // PRIORITY, ICE-CONTROLLING, MESSAGE-INTEGRITY and FINGERPRINT follow in a real check.
    attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 0x6e, 0x7f, 0x1e, 0xff]);
    attrs.extend_from_slice(&[0x80, 0x2a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
    attrs.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
    attrs.extend_from_slice(&[0xab; 20]);
    attrs.extend_from_slice(&[0x80, 0x28, 0x00, 0x04, 9, 9, 9, 9]);
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    msg.extend_from_slice(&[7; 12]);
    msg.extend_from_slice(&attrs);
    msg
}

fn demux(c: &mut Criterion) {
    let mut demux = Demux::default();
    for i in 0..PEERS {
        demux.add_peer(PeerId(i), &ufrag(i));
        demux.learn_addr(PeerId(i), addr(i));
    }
    assert_eq!(demux.peers(), PEERS as usize);
    let rtp = {
        let mut p = vec![0x80, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        p.resize(1200, 0x5a);
        p
    };
    let checks: Vec<(SocketAddr, Vec<u8>)> = (0..1024)
        .map(|i| {
            let peer = i * 9 % PEERS;
            let from = SocketAddr::from(([127, 2, 0, 1], 50_000 + i as u16));
            (from, binding_request(&format!("{}:remote{i}", ufrag(peer))))
        })
        .collect();

    let mut group = c.benchmark_group("demux_10k_peers");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("learned_address", |b| {
        b.iter(|| {
            i = (i + 7919) % PEERS;
            assert_eq!(demux.route(black_box(addr(i)), black_box(&rtp)), Some(PeerId(i)));
        })
    });
    let mut k = 0usize;
    group.bench_function("stun_ufrag", |b| {
        b.iter(|| {
            k = (k + 1) % checks.len();
            let (from, check) = &checks[k];
            assert!(demux.route(black_box(*from), black_box(check)).is_some());
        })
    });
    let stranger = SocketAddr::from(([127, 3, 0, 1], 9));
    group.bench_function("unknown_address", |b| {
        b.iter(|| demux.route(black_box(stranger), black_box(&rtp)))
    });
    group.finish();
}

criterion_group!(benches, demux);
criterion_main!(benches);
