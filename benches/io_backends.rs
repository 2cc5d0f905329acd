//! Both UDP I/O backends sending batches over loopback: io_uring against recvmmsg/sendmmsg,
//! with and without UDP GSO. One iteration queues a batch of 1200-byte datagrams (a video frame
//! for one subscriber, so GSO can take it whole) and flushes it; a thread on the other core
//! drains the receiver. Throughput is per datagram.
//!
//! Run: `cargo bench --bench io_backends` (add `-- --quick` for a short run).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use webcall::config::IoChoice;
use webcall::worker::io::{open, IoConfig};

const DATAGRAM_BYTES: usize = 1200;
const BATCH_DATAGRAMS: usize = 32;

struct Drain {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drain {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                let _ = socket.recv(&mut buf);
            }
        });
        Drain {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn send_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("udp_send_1200B_batch32");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    group.throughput(Throughput::Elements(BATCH_DATAGRAMS as u64));
    let payload = vec![0x5au8; DATAGRAM_BYTES];
    for (name, choice) in [("uring", IoChoice::Uring), ("mmsg", IoChoice::Mmsg)] {
        for gso in [true, false] {
            let drain = Drain::start();
            let mut config = IoConfig::new("127.0.0.1:0".parse().unwrap());
            config.gso = gso;
            let Ok(mut io) = open(choice, &config) else {
                eprintln!("{name}: backend unavailable here, skipped");
                continue;
            };
            let id = BenchmarkId::new(name, if gso { "gso" } else { "no_gso" });
            group.bench_function(id, |b| {
                b.iter(|| {
                    for _ in 0..BATCH_DATAGRAMS {
                        io.queue_send(drain.addr, &payload);
                    }
                    io.flush().unwrap();
                })
            });
            drop(drain);
        }
    }
    group.finish();
}

criterion_group!(benches, send_batches);
criterion_main!(benches);
