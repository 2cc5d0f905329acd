//! Contract tests of [`DatagramIo`], run against real loopback sockets for both backends.
//!
//! Each check is written once and instantiated per backend by `both_backends!`. io_uring
//! checks skip with a printed reason when io_uring cannot be set up here, unless
//! `WEBCALL_REQUIRE_URING=1` is set (then they fail). Test-only code.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::mmsg::MmsgIo;
use super::uring::UringIo;
use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Mmsg,
    Uring,
}

/// Open `backend` on `bind`; None (with the reason printed) when io_uring is unavailable.
fn open_backend(backend: Backend, bind: &str, gso: bool) -> Option<(Box<dyn DatagramIo>, RawFd)> {
    let config = IoConfig {
        gso,
        ..IoConfig::new(bind.parse().unwrap())
    };
    match backend {
        Backend::Mmsg => {
            let io = MmsgIo::open(&config).expect("mmsg backend");
            let fd = io.socket().as_raw_fd();
            Some((Box::new(io), fd))
        }
        Backend::Uring => match UringIo::open(&config) {
            Ok(io) => {
                let fd = io.socket().as_raw_fd();
                Some((Box::new(io), fd))
            }
            Err(error) if std::env::var_os("WEBCALL_REQUIRE_URING").is_none() => {
                let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled");
                println!("SKIP io_uring test: {error} (io_uring_disabled = {disabled:?})");
                None
            }
            Err(error) => panic!("io_uring required but unavailable: {error}"),
        },
    }
}

/// `open_backend`, or return from the calling test when io_uring is unavailable.
macro_rules! open_or_skip {
    ($($arg:expr),*) => {
        match open_backend($($arg),*) {
            Some(opened) => opened,
            None => return,
        }
    };
}

macro_rules! both_backends {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[test]
            fn mmsg() {
                super::$check(super::Backend::Mmsg);
            }
            #[test]
            fn uring() {
                super::$check(super::Backend::Uring);
            }
        }
    )*};
}

both_backends!(
    receives_batches_with_sources_and_bytes,
    sends_groups_intact_gso_on,
    sends_groups_intact_gso_off,
    sends_on_dual_stack_and_ipv6,
    waker_and_timeout_end_waits,
    dead_peer_does_not_stop_io,
    oversized_datagrams_are_counted,
    full_queue_flushes_itself,
    gso_refused_by_kernel_falls_back,
);

/// Receive until `want` datagrams arrived or 3 s passed.
fn receive_all(io: &mut dyn DatagramIo, want: usize) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < want && Instant::now() < deadline {
        let n = io
            .receive(Some(Duration::from_millis(50)), &mut |meta, bytes| {
                assert_eq!(meta.len, bytes.len());
                got.push((meta.source, bytes.to_vec()));
            })
            .unwrap();
        assert!(
            n <= RECV_BATCH_DATAGRAMS_MAX,
            "a receive delivers at most one batch"
        );
    }
    got
}

/// A datagram of `len` bytes whose content encodes `seq`.
fn payload(seq: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq.wrapping_mul(31) + i) as u8).collect()
}

/// Plain sockets that hold everything a test sends them until read (4 MiB buffers).
fn receivers(count: usize, bind: &str) -> Vec<UdpSocket> {
    let make = || {
        let socket = socket2::Socket::from(UdpSocket::bind(bind).unwrap());
        socket.set_recv_buffer_size(4 << 20).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        UdpSocket::from(socket)
    };
    (0..count).map(|_| make()).collect()
}

fn read_all(socket: &UdpSocket, want: usize) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        got.push(buf[..n].to_vec());
        if got.len() == want {
            break;
        }
    }
    got
}

fn receives_batches_with_sources_and_bytes(backend: Backend) {
    let (mut io, _) = open_or_skip!(backend, "127.0.0.1:0", true);
    let senders = receivers(2, "127.0.0.1:0");
    let sizes = [0, 1, 20, 172, 1200, 1499, DATAGRAM_BYTES_MAX];
    // 400 datagrams before the first receive: more than the io_uring buffer ring holds, so its
    // multishot receive runs dry and must be re-armed.
    let count = 400;
    for seq in 0..count {
        let sender = &senders[seq % 2];
        sender
            .send_to(&payload(seq, sizes[seq % sizes.len()]), io.local_addr())
            .unwrap();
    }
    let got = receive_all(io.as_mut(), count);
    assert_eq!(got.len(), count, "{:?}", io.stats());
    for (seq, (source, bytes)) in got.iter().enumerate() {
        assert_eq!(*source, senders[seq % 2].local_addr().unwrap());
        assert_eq!(*bytes, payload(seq, sizes[seq % sizes.len()]), "datagram {seq}");
    }
    let stats = io.stats();
    assert_eq!(stats.datagrams_received, count as u64);
    if backend == Backend::Uring {
        assert!(
            stats.recv_rearms > 0,
            "buffer ring exhaustion re-armed: {stats:?}"
        );
    }
}

fn check_sends(backend: Backend, gso: bool) {
    let (mut io, _) = open_or_skip!(backend, "127.0.0.1:0", gso);
    let peers = receivers(3, "127.0.0.1:0");
    // Runs of mixed sizes per destination: full segments, a short tail, then a new size.
    let runs: [(usize, &[usize]); 6] = [
        (0, &[1200, 1200, 1200, 1200, 500]),
        (1, &[100, 100, 100]),
        (0, &[1200, 1200]),
        (2, &[1400; 70]),
        (1, &[900, 1000, 50, 50]),
        (0, &[30, 30, 30, 30, 30, 30, 30]),
    ];
    let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    for (seq, (peer, sizes)) in runs.iter().enumerate() {
        for (i, &len) in sizes.iter().enumerate() {
            let bytes = payload(seq * 100 + i, len);
            io.queue_send(peers[*peer].local_addr().unwrap(), &bytes);
            expected[*peer].push(bytes);
        }
    }
    io.flush().unwrap();
    for (peer, want) in peers.iter().zip(&expected) {
        assert_eq!(read_all(peer, want.len()), *want, "in order and intact");
    }
    let stats = io.stats();
    let total: usize = expected.iter().map(Vec::len).sum();
    assert_eq!(stats.datagrams_sent, total as u64, "{stats:?}");
    assert_eq!((stats.send_dropped, stats.send_errors), (0, 0));
    assert_eq!(stats.gso_enabled, gso);
    assert_eq!(stats.gso_batches > 0, gso, "{stats:?}");
    io.flush().unwrap(); // an empty flush is a no-op
    assert_eq!(io.stats().datagrams_sent, total as u64);
}

fn sends_groups_intact_gso_on(backend: Backend) {
    check_sends(backend, true);
}

fn sends_groups_intact_gso_off(backend: Backend) {
    check_sends(backend, false);
}

fn sends_on_dual_stack_and_ipv6(backend: Backend) {
    let (mut io, _) = open_or_skip!(backend, "[::]:0", true);
    let port = io.local_addr().port();
    let v4 = receivers(1, "127.0.0.1:0").remove(0);
    let v6 = receivers(1, "[::1]:0").remove(0);
    for seq in 0..3 {
        io.queue_send(v4.local_addr().unwrap(), &payload(seq, 300));
        io.queue_send(v6.local_addr().unwrap(), &payload(seq, 300));
    }
    io.flush().unwrap();
    assert_eq!(read_all(&v4, 3).len(), 3);
    assert_eq!(read_all(&v6, 3).len(), 3);
    v4.send_to(b"v4", ("127.0.0.1", port)).unwrap();
    v6.send_to(b"v6", ("::1", port)).unwrap();
    let mut sources: Vec<_> = receive_all(io.as_mut(), 2).into_iter().map(|(s, _)| s).collect();
    sources.sort();
    let mut want = vec![v4.local_addr().unwrap(), v6.local_addr().unwrap()];
    want.sort();
    assert_eq!(sources, want, "IPv4-mapped sources come back as IPv4");
}

fn waker_and_timeout_end_waits(backend: Backend) {
    let (mut io, _) = open_or_skip!(backend, "127.0.0.1:0", true);
    let mut ignore = |_: RecvMeta, _: &[u8]| panic!("no datagram expected");
    let start = Instant::now();
    assert_eq!(io.receive(Some(Duration::ZERO), &mut ignore).unwrap(), 0);
    assert!(start.elapsed() < Duration::from_millis(50), "ZERO does not block");

    let start = Instant::now();
    assert_eq!(
        io.receive(Some(Duration::from_millis(150)), &mut ignore).unwrap(),
        0
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(140) && waited < Duration::from_millis(400),
        "{waited:?}"
    );

    let waker = io.waker();
    let start = Instant::now();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        waker.wake();
    });
    assert_eq!(io.receive(None, &mut ignore).unwrap(), 0);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    thread.join().unwrap();

    // A wake before the wait is not lost; once consumed, the next wait blocks again.
    io.waker().wake();
    let start = Instant::now();
    io.receive(Some(Duration::from_secs(2)), &mut ignore).unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
    let start = Instant::now();
    io.receive(Some(Duration::from_millis(100)), &mut ignore).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(90), "wake consumed");
}

fn dead_peer_does_not_stop_io(backend: Backend) {
    let (mut io, fd) = open_or_skip!(backend, "127.0.0.1:0", true);
    // IP_RECVERR makes the kernel report ICMP port-unreachable on this unconnected socket
    // (ECONNREFUSED on later calls): the worst case for a dead peer.
    let on: libc::c_int = 1;
    // SAFETY: valid fd, pointer to a live c_int of the given size.
    let rc = unsafe {
        let opt = (&on as *const libc::c_int).cast();
        libc::setsockopt(fd, libc::IPPROTO_IP, libc::IP_RECVERR, opt, 4)
    };
    assert_eq!(rc, 0);
    let live = receivers(1, "127.0.0.1:0").remove(0);
    // Bound while `live` holds its port, so the two differ; closed on drop.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for round in 0..5 {
        for seq in 0..4 {
            io.queue_send(dead, &payload(seq, 200));
            io.queue_send(live.local_addr().unwrap(), &payload(round * 10 + seq, 200));
        }
        io.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5)); // let the ICMP errors land
        let _ = io.receive(Some(Duration::ZERO), &mut |_, _| {});
    }
    assert_eq!(
        read_all(&live, 20).len(),
        20,
        "live peer got every round: {:?}",
        io.stats()
    );
    live.send_to(b"still receiving", io.local_addr()).unwrap();
    let got = receive_all(io.as_mut(), 1);
    assert_eq!(got.len(), 1, "{:?}", io.stats());
    assert_eq!(got[0].1, b"still receiving");
    println!("{backend:?} dead peer stats: {:?}", io.stats());
}

fn oversized_datagrams_are_counted(backend: Backend) {
    let (mut io, _) = open_or_skip!(backend, "127.0.0.1:0", true);
    let peer = receivers(1, "127.0.0.1:0").remove(0);
    peer.send_to(&[7; DATAGRAM_BYTES_MAX + 1000], io.local_addr())
        .unwrap();
    peer.send_to(b"after", io.local_addr()).unwrap();
    let got = receive_all(io.as_mut(), 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, b"after");
    assert_eq!(io.stats().datagrams_truncated, 1);

    io.queue_send(peer.local_addr().unwrap(), &[1; DATAGRAM_BYTES_MAX + 1]);
    io.queue_send(peer.local_addr().unwrap(), b"fits");
    io.flush().unwrap();
    assert_eq!(read_all(&peer, 1), vec![b"fits".to_vec()]);
    assert_eq!(io.stats().send_dropped, 1);
}

fn full_queue_flushes_itself(backend: Backend) {
    let (mut io, _) = open_or_skip!(backend, "127.0.0.1:0", true);
    let peer = receivers(1, "127.0.0.1:0").remove(0);
    let count = SEND_QUEUE_DATAGRAMS_MAX * 2 + 100;
    for seq in 0..count {
        io.queue_send(peer.local_addr().unwrap(), &payload(seq, 100));
    }
    io.flush().unwrap();
    let got = read_all(&peer, count);
    assert_eq!(got.len(), count, "{:?}", io.stats());
    assert!(got
        .iter()
        .enumerate()
        .all(|(seq, bytes)| *bytes == payload(seq, 100)));
    assert_eq!(
        (io.stats().datagrams_sent, io.stats().send_dropped),
        (count as u64, 0)
    );
}

fn gso_refused_by_kernel_falls_back(backend: Backend) {
    let (mut io, fd) = open_or_skip!(backend, "127.0.0.1:0", true);
    if !io.stats().gso_enabled {
        println!("SKIP: no UDP GSO on this kernel");
        return;
    }
    // SO_NO_CHECK makes the kernel refuse GSO sends with EINVAL, as a device without
    // checksum offload refuses them with EIO.
    let on: libc::c_int = 1;
    // SAFETY: valid fd, pointer to a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            (&on as *const libc::c_int).cast(),
            4,
        )
    };
    assert_eq!(rc, 0);
    let peers = receivers(2, "127.0.0.1:0");
    let mut want = vec![Vec::new(), Vec::new()];
    for seq in 0..30 {
        let peer = seq / 10 % 2;
        let bytes = payload(seq, if seq % 10 == 9 { 100 } else { 1000 });
        io.queue_send(peers[peer].local_addr().unwrap(), &bytes);
        want[peer].push(bytes);
    }
    io.flush().unwrap();
    for (peer, want) in peers.iter().zip(&want) {
        assert_eq!(read_all(peer, want.len()), *want);
    }
    let stats = io.stats();
    assert!(!stats.gso_enabled);
    assert_eq!(
        (stats.datagrams_sent, stats.gso_batches, stats.send_errors),
        (30, 0, 0),
        "{stats:?}"
    );
}
