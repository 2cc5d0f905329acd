//! What one DTLS 1.2 handshake costs dimpl's server: CPU time inside its calls, bytes it
//! allocates during the handshake, and bytes it still holds once connected, for an OpenSSL
//! client with an ECDSA P-256 certificate and with an RSA 2048 one. A measurement, not a
//! check: `vendor/test-dimpl.sh --measure` runs it in release (ignored otherwise).

#[path = "ossl/mod.rs"]
mod ossl_helper;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dimpl::{Config, Dtls, Output};

use ossl_helper::{DtlsCertOptions, DtlsPKeyType, OsslDtlsCert, OsslDtlsImpl};

/// Counts what is allocated and freed while the current thread runs the server.
struct Counting;

thread_local! {
    static IN_SERVER: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_SERVER.with(Cell::get) {
            ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if IN_SERVER.with(Cell::get) {
            FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Run `f` as server work: timed into `cpu`, its allocations counted.
fn server<R>(cpu: &mut Duration, f: impl FnOnce() -> R) -> R {
    IN_SERVER.with(|s| s.set(true));
    let started = Instant::now();
    let result = f();
    *cpu += started.elapsed();
    IN_SERVER.with(|s| s.set(false));
    result
}

struct Cost {
    cpu: Duration,
    allocated: u64,
    retained: i64,
}

/// One handshake's cost; None when the server refused the client (upstream dimpl refuses RSA).
fn one_handshake(key: DtlsPKeyType, server_cert: &dimpl::DtlsCertificate) -> Option<Cost> {
    let cert = OsslDtlsCert::new(DtlsCertOptions {
        pkey_type: key,
        ..Default::default()
    });
    let mut client = OsslDtlsImpl::new(cert).expect("client");
    client.set_active(true);
    let (allocated0, freed0) = (ALLOCATED.load(Ordering::Relaxed), FREED.load(Ordering::Relaxed));
    let mut cpu = Duration::ZERO;
    let config = Arc::new(Config::default());
    let mut dtls = server(&mut cpu, || {
        let mut s = Dtls::new_12(config, server_cert.clone(), Instant::now());
        s.set_active(false);
        s
    });
    let mut events = VecDeque::new();
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    for _ in 0..40 {
        server(&mut cpu, || dtls.handle_timeout(Instant::now())).expect("timeout");
        if client.handle_handshake(&mut events).is_err() {
            return None;
        }
        while let Some(datagram) = client.poll_datagram() {
            if server(&mut cpu, || dtls.handle_packet(&datagram)).is_err() {
                return None;
            }
        }
        let mut out = Vec::new();
        server(&mut cpu, || loop {
            match dtls.poll_output(&mut buf) {
                Output::Packet(p) => out.push(p.to_vec()),
                Output::Connected => connected = true,
                Output::Timeout(_) => break,
                _ => {}
            }
        });
        for p in out {
            let _ = client.handle_receive(&p, &mut events);
        }
        if connected && client.is_connected() {
            break;
        }
    }
    if !connected {
        return None;
    }
    let allocated = ALLOCATED.load(Ordering::Relaxed) - allocated0;
    let retained = allocated as i64 - (FREED.load(Ordering::Relaxed) - freed0) as i64;
    drop(dtls); // freed outside the count: `retained` is what a connected server holds
    Some(Cost {
        cpu,
        allocated,
        retained,
    })
}

#[test]
#[ignore = "a measurement: vendor/test-dimpl.sh --measure"]
fn handshake_cost_per_client_key() {
    const HANDSHAKES: u32 = 200;
    let server_cert = dimpl::certificate::generate_self_signed_certificate().expect("cert");
    for (name, key) in [("ECDSA P-256", DtlsPKeyType::EcDsaP256), ("RSA 2048", DtlsPKeyType::Rsa2048)] {
        // One handshake first to warm up (lazy statics, the crypto provider).
        if one_handshake(key.clone(), &server_cert).is_none() {
            println!("# dimpl server, {name} client: refused");
            continue;
        }
        let mut cpu = Duration::ZERO;
        let (mut allocated, mut retained) = (0u64, 0i64);
        for _ in 0..HANDSHAKES {
            let cost = one_handshake(key.clone(), &server_cert).expect("the handshake completed");
            cpu += cost.cpu;
            allocated += cost.allocated;
            retained += cost.retained;
        }
        println!(
            "# dimpl server, {name} client: {:.0} us CPU, {} KiB allocated, {} KiB held once connected, per handshake ({HANDSHAKES})",
            cpu.as_secs_f64() * 1e6 / f64::from(HANDSHAKES),
            allocated / u64::from(HANDSHAKES) / 1024,
            retained / i64::from(HANDSHAKES) / 1024,
        );
    }
}
