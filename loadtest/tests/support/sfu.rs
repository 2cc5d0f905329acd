//! A miniature ICE-lite SFU for tests: str0m answerers on one UDP socket, one thread.
//!
//! Owns the answering side of every peer of the fake WCS server. Publisher peers accept
//! the browser codecs; a player peer is configured with exactly the codecs its stream's
//! publisher negotiated. RTP from a publisher is forwarded to every connected player of
//! the stream (payload type mapped by codec, sequence and timestamp kept); PLI/FIR from a
//! player is forwarded to the publisher. Demultiplexing scans `Rtc::accepts` (fine for
//! a handful of peers).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// Which side of a stream a peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Publish(String),
    Play(String),
}

/// A new peer: the client's offer, its role, frames to deliver once DTLS is up.
pub struct AddPeer {
    pub offer: String,
    pub role: Role,
    pub on_connected: Vec<(UnboundedSender<String>, String)>,
    pub reply: oneshot::Sender<Result<(u64, String), String>>,
}

enum Cmd {
    Add(AddPeer),
    Remove(u64),
}

/// Handle to the SFU thread.
pub struct MiniSfu {
    tx: Sender<Cmd>,
    waker: UdpSocket,
    addr: SocketAddr,
    pub forwarded: Arc<AtomicU64>,
    pub keyframe_requests: Arc<AtomicU64>,
}

impl MiniSfu {
    pub fn start() -> MiniSfu {
        webcall_loadtest::peer::install_crypto_provider();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let forwarded = Arc::new(AtomicU64::new(0));
        let keyframe_requests = Arc::new(AtomicU64::new(0));
        let (f, k) = (forwarded.clone(), keyframe_requests.clone());
        let waker = socket.try_clone().unwrap();
        std::thread::spawn(move || run(socket, rx, f, k));
        MiniSfu {
            tx,
            waker,
            addr,
            forwarded,
            keyframe_requests,
        }
    }

    fn send(&self, c: Cmd) {
        let _ = self.tx.send(c);
        let _ = self.waker.send_to(&[], self.addr);
    }

    pub async fn add(
        &self,
        offer: String,
        role: Role,
        on_connected: Vec<(UnboundedSender<String>, String)>,
    ) -> Result<(u64, String), String> {
        let (reply, rx) = oneshot::channel();
        self.send(Cmd::Add(AddPeer {
            offer,
            role,
            on_connected,
            reply,
        }));
        rx.await.unwrap_or_else(|_| Err("sfu gone".into()))
    }

    pub fn remove(&self, id: u64) {
        self.send(Cmd::Remove(id));
    }
}

struct Peer {
    id: u64,
    rtc: Rtc,
    role: Role,
    mids: Vec<(Mid, MediaKind)>,
    on_connected: Vec<(UnboundedSender<String>, String)>,
}

#[derive(Default, Clone)]
struct StreamCodecs {
    video: Option<PayloadParams>,
    audio: Option<PayloadParams>,
}

fn rtpmap_name(c: Codec) -> &'static str {
    match c {
        Codec::H264 => "H264/90000",
        Codec::Vp8 => "VP8/90000",
        Codec::Opus => "opus/48000",
        Codec::PCMU => "PCMU/8000",
        Codec::PCMA => "PCMA/8000",
        _ => "?",
    }
}

fn answer(
    add: &AddPeer,
    addr: SocketAddr,
    codecs: &HashMap<String, StreamCodecs>,
) -> Result<(Rtc, String), String> {
    let mut cfg = RtcConfig::new().set_ice_lite(true).set_rtp_mode(true);
    match &add.role {
        Role::Publish(_) => {
            cfg.codec_config().enable_pcmu(true, false);
            cfg.codec_config().enable_pcma(true, false);
        }
        Role::Play(stream) => {
            let sc = codecs.get(stream).ok_or("Stream not found")?;
            let cc = cfg.codec_config();
            cc.clear();
            for p in [&sc.video, &sc.audio].into_iter().flatten() {
                if !add.offer.contains(rtpmap_name(p.spec().codec)) {
                    return Err("No common codecs".into());
                }
                let s = p.spec();
                cc.add_config(p.pt(), p.resend(), s.codec, s.clock_rate, s.channels, s.format);
            }
        }
    }
    let mut rtc = cfg.build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let offer = SdpOffer::from_sdp_string(&add.offer).map_err(|e| e.to_string())?;
    let ans = rtc.sdp_api().accept_offer(offer).map_err(|e| e.to_string())?;
    Ok((rtc, ans.to_sdp_string()))
}

enum Work {
    Forward(String, MediaKind, Box<RtpPacket>),
    Keyframe(String, KeyframeRequestKind),
}

fn run(socket: UdpSocket, rx: Receiver<Cmd>, forwarded: Arc<AtomicU64>, kf: Arc<AtomicU64>) {
    let addr = socket.local_addr().unwrap();
    let mut peers: Vec<Peer> = Vec::new();
    let mut codecs: HashMap<String, StreamCodecs> = HashMap::new();
    let mut next_id = 1;
    let mut buf = vec![0u8; 2048];
    loop {
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Cmd::Add(add) => match answer(&add, addr, &codecs) {
                    Ok((rtc, sdp)) => {
                        let id = next_id;
                        next_id += 1;
                        let AddPeer {
                            role,
                            on_connected,
                            reply,
                            ..
                        } = add;
                        peers.push(Peer {
                            id,
                            rtc,
                            role,
                            mids: Vec::new(),
                            on_connected,
                        });
                        let _ = reply.send(Ok((id, sdp)));
                    }
                    Err(e) => {
                        let _ = add.reply.send(Err(e));
                    }
                },
                Cmd::Remove(id) => peers.retain(|p| p.id != id),
            }
        }
        let mut work = Vec::new();
        let mut deadline = Instant::now() + Duration::from_millis(50);
        for p in peers.iter_mut() {
            loop {
                if !p.rtc.is_alive() {
                    break;
                }
                match p.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = socket.send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Timeout(t)) => {
                        deadline = deadline.min(t);
                        break;
                    }
                    Ok(Output::Event(e)) => on_event(p, e, &mut codecs, &mut work),
                    Err(_) => {
                        p.rtc.disconnect();
                        break;
                    }
                }
            }
        }
        peers.retain(|p| p.rtc.is_alive());
        if !work.is_empty() {
            for w in work {
                match w {
                    Work::Forward(stream, kind, pkt) => {
                        forward(&mut peers, &stream, kind, &pkt, &forwarded);
                    }
                    Work::Keyframe(stream, k) => {
                        kf.fetch_add(1, Ordering::Relaxed);
                        let publ = peers.iter_mut().find(|p| p.role == Role::Publish(stream.clone()));
                        if let Some(p) = publ {
                            let vmid = p.mids.iter().find(|m| m.1 == MediaKind::Video).map(|m| m.0);
                            if let Some(mid) = vmid {
                                if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, None) {
                                    rx.request_keyframe(k);
                                }
                            }
                        }
                    }
                }
            }
            continue;
        }
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait)).unwrap();
        if let Ok((n, src)) = socket.recv_from(&mut buf) {
            if src != addr {
                if let Ok(r) = Receive::new(Protocol::Udp, src, addr, &buf[..n]) {
                    let input = Input::Receive(Instant::now(), r);
                    if let Some(p) = peers.iter_mut().find(|p| p.rtc.accepts(&input)) {
                        let _ = p.rtc.handle_input(input);
                    }
                }
            }
        }
        let now = Instant::now();
        for p in peers.iter_mut() {
            let _ = p.rtc.handle_input(Input::Timeout(now));
        }
    }
}

fn on_event(p: &mut Peer, e: Event, codecs: &mut HashMap<String, StreamCodecs>, work: &mut Vec<Work>) {
    match e {
        Event::MediaAdded(m) => {
            p.mids.push((m.mid, m.kind));
            if let Role::Publish(stream) = &p.role {
                let pt = p.rtc.media(m.mid).and_then(|md| md.remote_pts().first().copied());
                let params = pt.and_then(|pt| p.rtc.codec_config().find(|c| c.pt() == pt).cloned());
                let sc = codecs.entry(stream.clone()).or_default();
                match m.kind {
                    MediaKind::Video => sc.video = params,
                    MediaKind::Audio => sc.audio = params,
                }
            }
        }
        Event::Connected => {
            for (tx, text) in p.on_connected.drain(..) {
                let _ = tx.send(text);
            }
        }
        Event::RtpPacket(pkt) => {
            if let Role::Publish(stream) = &p.role {
                let mid = p.rtc.direct_api().stream_rx(&pkt.header.ssrc).map(|s| s.mid());
                let kind = p.mids.iter().find(|m| Some(m.0) == mid).map(|m| m.1);
                if let Some(kind) = kind {
                    work.push(Work::Forward(stream.clone(), kind, Box::new(pkt)));
                }
            }
        }
        Event::KeyframeRequest(req) => {
            if let Role::Play(stream) = &p.role {
                work.push(Work::Keyframe(stream.clone(), req.kind));
            }
        }
        _ => {}
    }
}

fn forward(peers: &mut [Peer], stream: &str, kind: MediaKind, pkt: &RtpPacket, n: &AtomicU64) {
    let role = Role::Play(stream.to_string());
    for p in peers
        .iter_mut()
        .filter(|p| p.role == role && p.rtc.is_connected())
    {
        let Some(mid) = p.mids.iter().find(|m| m.1 == kind).map(|m| m.0) else {
            continue;
        };
        let Some(pt) = p.rtc.media(mid).and_then(|m| m.remote_pts().first().copied()) else {
            continue;
        };
        let mut api = p.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            continue;
        };
        let w = RtpWrite::new(
            pt,
            pkt.seq_no,
            pkt.header.timestamp,
            Instant::now(),
            pkt.payload.clone(),
        )
        .marker(pkt.header.marker);
        tx.write_rtp(w);
        n.fetch_add(1, Ordering::Relaxed);
    }
}
