//! The forwarding path as the worker runs it: SRTP datagrams from a connected publisher go into
//! a real `WorkerState` through `SimIo`, and one real worker turn (`run_turn`: demultiplexing,
//! the publisher's decrypt, routing, per-player rewriting, str0m's RTP write, SRTP encryption
//! and the polls that yield the datagrams) fans them out to N connected players, with no
//! kernel in the way. Throughput is per forwarded packet. The publisher's datagrams are made
//! outside the timed part.
//!
//! Run: `cargo bench --bench forward` (add `-- --quick` for a short run).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};
use webcall::ids::{PeerId, WorkerId};
use webcall::sdp::{negotiate_player, negotiate_publisher, Negotiated, PeerEnv};
use webcall::worker::commands::{Command, EndpointAdd, EndpointSpec, Notification, PeerRole};
use webcall::worker::counters::CounterTable;
use webcall::worker::io::{DatagramIo, SimIo};
use webcall::worker::notify::{NotificationSink, Notifier};
use webcall::worker::state::{WorkerSetup, WorkerState};
use webcall::worker::turn::{run_turn, Staging};

const SERVER: &str = "127.0.0.1:31000";
const PUBLISHER: PeerId = PeerId(1);
/// Packets in the frame of the frame bench: a 1.5 Mbit/s, 30 fps frame in 1200-byte packets.
const FRAME_PACKETS: usize = 6;

/// Notifications counted, not sent anywhere.
struct CountingSink(Arc<std::sync::atomic::AtomicU64>);

impl NotificationSink for CountingSink {
    fn offer(&mut self, notification: Notification) -> Result<(), Notification> {
        if matches!(notification, Notification::PeerConnected { .. }) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    fn wake(&mut self) {}
}

struct Client {
    rtc: Rtc,
    addr: SocketAddr,
    connected: bool,
}

impl Client {
    fn new(addr: SocketAddr, now: Instant) -> Self {
        // VP8 and Opus only, so the publisher's video is VP8 (the payload below is a VP8
        // keyframe start).
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_vp8(true)
            .enable_opus(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        Client {
            rtc,
            addr,
            connected: false,
        }
    }

    /// An offer with video (and audio) in `direction`; the answer from `negotiate` is applied.
    fn negotiate(&mut self, direction: Direction, negotiate: impl FnOnce(&str) -> Negotiated) -> Negotiated {
        let mut api = self.rtc.sdp_api();
        api.add_media(MediaKind::Audio, direction, None, None, None);
        api.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = api.apply().expect("offer");
        let negotiated = negotiate(&offer.to_sdp_string());
        let answer = SdpAnswer::from_sdp_string(&negotiated.answer_sdp).expect("answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        negotiated
    }

    /// Everything the client wants to send now.
    fn drain(&mut self, out: &mut Vec<Vec<u8>>) {
        loop {
            match self.rtc.poll_output().expect("client poll") {
                Output::Timeout(_) => return,
                Output::Transmit(t) => out.push(t.contents.to_vec()),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(_) => {}
            }
        }
    }

    fn receive(&mut self, now: Instant, bytes: &[u8]) {
        let receive = Receive {
            proto: Protocol::Udp,
            source: SERVER.parse().expect("server address"),
            destination: self.addr,
            contents: bytes.try_into().expect("datagram"),
        };
        let _ = self.rtc.handle_input(Input::Receive(now, receive));
    }
}

struct Fanout {
    state: WorkerState,
    io: SimIo,
    staging: Staging,
    publisher: Client,
    video_mid: Mid,
    video_pt: Pt,
    now: Rc<Cell<Instant>>,
    seq: u64,
    payload: Arc<[u8]>,
}

impl Fanout {
    fn new(players: usize) -> Self {
        webcall::sdp::install_crypto_provider();
        let server: SocketAddr = SERVER.parse().expect("server address");
        let env = PeerEnv {
            candidate: server,
            dtls_cert: webcall::sdp::generate_dtls_cert().expect("certificate"),
        };
        let start = Instant::now();
        let connected = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let setup = WorkerSetup {
            id: WorkerId(0),
            candidate: server,
            peer_timeout: Duration::from_secs(3600),
            seed: 7,
        };
        let notifier = Notifier::new(Box::new(CountingSink(connected.clone())));
        let state = WorkerState::new(setup, notifier, Arc::new(CounterTable::default()), start);
        let mut bench = Fanout {
            state,
            io: SimIo::new(server).expect("sim io"),
            staging: Staging::default(),
            publisher: Client::new(([127, 0, 0, 2], 20_000).into(), start),
            video_mid: Mid::from("1"),
            video_pt: Pt::from(96),
            now: Rc::new(Cell::new(start)),
            seq: 1000,
            payload: keyframe_payload(),
        };
        let published = bench.publisher.negotiate(Direction::SendOnly, |offer| {
            negotiate_publisher(offer, &env, start).expect("publisher negotiates")
        });
        let source = published.tracks.clone();
        let video = source.video.as_ref().expect("the publisher negotiated video");
        (bench.video_mid, bench.video_pt) = (video.mid, video.pt);
        let mut commands = vec![add(PUBLISHER, PeerRole::Publisher, published)];
        let mut clients = Vec::with_capacity(players);
        for i in 0..players {
            let mut client = Client::new(([127, 0, 0, 3], 20_000 + i as u16).into(), start);
            let played = client.negotiate(Direction::RecvOnly, |offer| {
                negotiate_player(offer, &source, &env, start).expect("player negotiates")
            });
            let role = PeerRole::Player { publisher: PUBLISHER };
            commands.push(add(PeerId(i as u64 + 2), role, played));
            clients.push(client);
        }
        bench.turn(&mut commands.into_iter());
        bench.connect(&mut clients, &connected, players as u64 + 1);
        bench.io.set_discard_sent(true);
        bench
    }

    fn turn(&mut self, commands: &mut dyn Iterator<Item = Command>) {
        let now = self.now.clone();
        let clock = move || now.get();
        run_turn(&mut self.state, &mut self.io, &mut self.staging, &clock, commands);
    }

    /// Exchange datagrams between the clients and the worker until every endpoint connected.
    fn connect(&mut self, players: &mut [Client], connected: &std::sync::atomic::AtomicU64, want: u64) {
        for _ in 0..20_000 {
            let clients_up = self.publisher.connected && players.iter().all(|c| c.connected);
            if clients_up && connected.load(std::sync::atomic::Ordering::Relaxed) >= want {
                return;
            }
            let mut out = Vec::new();
            self.publisher.drain(&mut out);
            for datagram in out.drain(..) {
                self.io.deliver(self.publisher.addr, &datagram);
            }
            for client in players.iter_mut() {
                client.drain(&mut out);
                for datagram in out.drain(..) {
                    self.io.deliver(client.addr, &datagram);
                }
            }
            while self.io.pending() > 0 {
                self.turn(&mut std::iter::empty());
            }
            self.turn(&mut std::iter::empty());
            let now = self.now.get();
            for (destination, bytes) in self.io.take_sent() {
                if destination == self.publisher.addr {
                    self.publisher.receive(now, &bytes);
                } else if let Some(client) = players.iter_mut().find(|c| c.addr == destination) {
                    client.receive(now, &bytes);
                }
            }
            let now = now + Duration::from_millis(5);
            self.now.set(now);
            self.publisher
                .rtc
                .handle_input(Input::Timeout(now))
                .expect("timeout");
            for client in players.iter_mut() {
                client.rtc.handle_input(Input::Timeout(now)).expect("timeout");
            }
        }
        panic!("in-memory peers did not connect");
    }

    /// The publisher's next `packets` video packets as SRTP datagrams (untimed).
    fn publisher_datagrams(&mut self, packets: usize) -> Vec<Vec<u8>> {
        let now = self.now.get() + Duration::from_micros(100);
        self.now.set(now);
        let pt = self.video_pt;
        let mut api = self.publisher.rtc.direct_api();
        let stream = api
            .stream_tx_by_mid(self.video_mid, None)
            .expect("video send stream");
        for i in 0..packets {
            self.seq += 1;
            let ts = (self.seq / packets as u64 * 3000) as u32;
            let write = RtpWrite::new(pt, SeqNo::from(self.seq), ts, now, self.payload.clone())
                .marker(i + 1 == packets);
            stream.write_rtp(write);
        }
        self.publisher
            .rtc
            .handle_input(Input::Timeout(now))
            .expect("timeout");
        let mut out = Vec::with_capacity(packets);
        self.publisher.drain(&mut out);
        out
    }

    /// The timed part: the datagrams arrive and the worker runs one turn.
    fn forward(&mut self, datagrams: Vec<Vec<u8>>) {
        for datagram in &datagrams {
            self.io.deliver(self.publisher.addr, datagram);
        }
        self.turn(&mut std::iter::empty());
    }

    fn sent(&self) -> u64 {
        self.io.stats().datagrams_sent
    }
}

fn add(peer: PeerId, role: PeerRole, negotiated: Negotiated) -> Command {
    let Negotiated {
        rtc,
        local_ufrag,
        tracks,
        ..
    } = negotiated;
    Command::EndpointAdd(Box::new(EndpointAdd {
        peer,
        role,
        tracks,
        spec: EndpointSpec::WebRtc { rtc, local_ufrag },
        meter: None,
    }))
}

/// A 1200-byte VP8 keyframe start, so every player's gate opens on the first packet.
fn keyframe_payload() -> Arc<[u8]> {
    let mut payload = vec![0u8; 1200];
    payload[..5].copy_from_slice(&[0x10, 0x00, 0x9d, 0x01, 0x2a]);
    payload.into()
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

/// `packets` per turn to each of `players`, checked to reach them before measuring (so a
/// filtered-out benchmark does not fail the run).
fn fanout_group(c: &mut Criterion, name: &str, packets: usize, players: &[usize]) {
    let mut group = short_group(c, name);
    for &n in players {
        let mut bench = Fanout::new(n);
        let before = bench.sent();
        let datagrams = bench.publisher_datagrams(packets);
        bench.forward(datagrams);
        assert!(
            bench.sent() - before >= (n * packets) as u64,
            "every player got the packets: {} datagrams for {n} players; worker: {}",
            bench.sent() - before,
            bench.state.counters().snapshot()
        );
        group.throughput(Throughput::Elements((n * packets) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iterations| {
                let mut timed = Duration::ZERO;
                for _ in 0..iterations {
                    let datagrams = bench.publisher_datagrams(packets);
                    let start = Instant::now();
                    bench.forward(datagrams);
                    timed += start.elapsed();
                }
                timed
            });
        });
    }
    group.finish();
}

fn fanout(c: &mut Criterion) {
    fanout_group(c, "fanout_1200B_vp8", 1, &[1, 10, 100]);
}

fn fanout_frames(c: &mut Criterion) {
    fanout_group(c, "fanout_frame_6x1200B_vp8", FRAME_PACKETS, &[10, 100]);
}

criterion_group!(benches, fanout, fanout_frames);
criterion_main!(benches);
