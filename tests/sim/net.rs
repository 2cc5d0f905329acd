//! The simulated network: datagrams between addresses with loss, duplication, delay and jitter
//! (so reordering), all drawn from seeded generators, on the simulation's virtual clock.
//!
//! Each directed link (from, to) has its own generator, seeded from the run's seed and the
//! two addresses, so one link's traffic never shifts another's draws. Datagrams sent at the
//! same virtual instant are put in a canonical order (by link, then by their clear header
//! bytes) before their fates are drawn: str0m may emit two simultaneous packets of
//! different streams in either order (its stream maps are hashed), and which of them a
//! link loses must not depend on that. Deliveries due at the same instant leave in that
//! order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// SplitMix64: small, fast and good enough for choosing losses and delays.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Uniform in `0..=max`.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos() as u64;
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            self.next_u64() % (nanos + 1)
        })
    }
}

/// What every link does to a datagram.
#[derive(Debug, Clone, Copy)]
pub struct LinkConditions {
    pub loss: f64,
    pub duplicate: f64,
    pub delay: Duration,
    /// Added to `delay`, uniform in `0..=jitter`: datagrams overtake each other.
    pub jitter: Duration,
}

pub struct Datagram {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

pub struct Network {
    seed: u64,
    conditions: LinkConditions,
    links: BTreeMap<(SocketAddr, SocketAddr), Rng>,
    in_flight: BinaryHeap<Reverse<(Instant, u64)>>,
    datagrams: BTreeMap<u64, Datagram>,
    /// Sent at the current instant, fates not drawn yet (see [`Network::commit`]).
    pending: Vec<(Instant, Datagram)>,
    sent: u64,
    /// `WEBCALL_SIM_WATCH=ADDR`: print every datagram to or from that address, and its fate.
    watch: Option<SocketAddr>,
    pub lost: u64,
    pub duplicated: u64,
}

impl Network {
    pub fn new(seed: u64, conditions: LinkConditions) -> Self {
        Network {
            seed,
            conditions,
            links: BTreeMap::new(),
            in_flight: BinaryHeap::new(),
            datagrams: BTreeMap::new(),
            pending: Vec::new(),
            sent: 0,
            watch: std::env::var("WEBCALL_SIM_WATCH")
                .ok()
                .and_then(|w| w.parse().ok()),
            lost: 0,
            duplicated: 0,
        }
    }

    fn link(&mut self, from: SocketAddr, to: SocketAddr) -> &mut Rng {
        let seed = self.seed;
        self.links.entry((from, to)).or_insert_with(|| {
            let mut mix = Rng::new(seed);
            let mut key = seed;
            for byte in format!("{from}>{to}").bytes() {
                key = key.rotate_left(8) ^ u64::from(byte) ^ mix.next_u64();
            }
            Rng::new(key)
        })
    }

    /// Send a datagram at `now`: it may be lost, duplicated, and arrives after a delay
    /// (decided at the next [`Network::commit`]).
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if let Some(watch) = std::env::var_os("WEBCALL_SIM_WATCH") {
            let watch = watch.to_string_lossy().into_owned();
            if from.to_string() == watch || to.to_string() == watch {
                println!(
                    "net {now:?} {from} > {to} {} {:02x?}",
                    bytes.len(),
                    bytes.get(..14)
                );
            }
        }
        self.pending.push((now, Datagram { from, to, bytes }));
    }

    /// Draw the fates of what was sent since the last call, in canonical order.
    pub fn commit(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by(|(at_a, a), (at_b, b)| {
            (at_a, a.from, a.to, clear_header(&a.bytes)).cmp(&(at_b, b.from, b.to, clear_header(&b.bytes)))
        });
        for (now, datagram) in pending {
            self.draw(now, datagram);
        }
    }

    fn draw(&mut self, now: Instant, datagram: Datagram) {
        let Datagram { from, to, bytes } = datagram;
        let conditions = self.conditions;
        let rng = self.link(from, to);
        if rng.chance(conditions.loss) {
            self.lost += 1;
            if self.watch.is_some_and(|w| w == from || w == to) {
                println!("net lost {from} > {to}");
            }
            return;
        }
        let copies = if rng.chance(conditions.duplicate) { 2 } else { 1 };
        let delays: Vec<Duration> = (0..copies)
            .map(|_| conditions.delay + rng.up_to(conditions.jitter))
            .collect();
        self.duplicated += copies - 1;
        let mut bytes = Some(bytes);
        for (index, delay) in delays.iter().enumerate() {
            self.sent += 1;
            let id = self.sent;
            let copy = if index + 1 == delays.len() {
                bytes.take().unwrap_or_default()
            } else {
                bytes.clone().unwrap_or_default()
            };
            self.in_flight.push(Reverse((now + *delay, id)));
            self.datagrams.insert(
                id,
                Datagram {
                    from,
                    to,
                    bytes: copy,
                },
            );
        }
    }
}

/// The bytes of a datagram that do not change from run to run: an RTP header (12 bytes) or
/// an SRTCP one (8), a DTLS record header without its length (11), a STUN header (20).
fn clear_header(bytes: &[u8]) -> &[u8] {
    let clear = match bytes.first() {
        Some(0..=3) => 20,
        Some(20..=63) => 11,
        Some(128..=191) if bytes.get(1).is_some_and(|b| (192..=223).contains(b)) => 8,
        Some(128..=191) => 12,
        _ => 0,
    };
    bytes.get(..clear).unwrap_or(bytes)
}

impl Network {
    /// When the next datagram arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((at, _))| *at)
    }

    /// The next datagram due by `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        let Reverse((at, id)) = *self.in_flight.peek()?;
        if at > now {
            return None;
        }
        self.in_flight.pop();
        self.datagrams.remove(&id)
    }
}

#[test]
fn the_same_seed_draws_the_same_fates() {
    let conditions = LinkConditions {
        loss: 0.3,
        duplicate: 0.1,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(50),
    };
    let run = |seed| {
        let start = Instant::now();
        let mut net = Network::new(seed, conditions);
        let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
        for i in 0..200u8 {
            net.send(start, a, b, vec![i]);
        }
        net.commit();
        let mut order = Vec::new();
        while let Some(d) = net.pop_due(start + Duration::from_secs(1)) {
            order.push(d.bytes[0]);
        }
        order
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let order = run(7);
    assert!(
        order.len() < 200 && order.len() > 100,
        "some lost, some duplicated"
    );
    assert!(order.windows(2).any(|w| w[1] < w[0]), "reordered");
}
