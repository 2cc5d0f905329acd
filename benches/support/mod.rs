//! Bench support: connect player peers to their str0m clients entirely in memory (no sockets,
//! virtual time), so the forwarding path can be measured without the kernel.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use webcall::sdp::{negotiate_player, PeerEnv, StreamTracks};

/// A connected player: the server side `Rtc` (as a worker holds it) and its tracks.
pub struct ConnectedPlayer {
    pub server: Rtc,
    pub tracks: StreamTracks,
}

/// Negotiate and connect one player of `source` through an in-memory str0m client.
pub fn connect_player(
    source: &StreamTracks,
    env: &PeerEnv,
    client_port: u16,
    now: &mut Instant,
) -> ConnectedPlayer {
    let client_addr: SocketAddr = ([127, 0, 0, 2], client_port).into();
    let mut client = Rtc::builder().set_rtp_mode(true).build(*now);
    client.add_local_candidate(Candidate::host(client_addr, "udp").expect("candidate"));
    let mut api = client.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().expect("offer");
    let negotiated = negotiate_player(&offer.to_sdp_string(), source, env, *now).expect("player negotiates");
    let answer = SdpAnswer::from_sdp_string(&negotiated.answer_sdp).expect("answer parses");
    client
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("answer accepted");
    let mut server = negotiated.rtc;
    let (mut client_up, mut server_up) = (false, false);
    for _ in 0..10_000 {
        if client_up && server_up {
            return ConnectedPlayer {
                server,
                tracks: negotiated.tracks,
            };
        }
        let a = pump(&mut client, &mut server, client_addr, now, &mut client_up);
        let b = pump(&mut server, &mut client, env.candidate, now, &mut server_up);
        if !a && !b {
            *now += Duration::from_millis(5);
            client.handle_input(Input::Timeout(*now)).expect("client timeout");
            server.handle_input(Input::Timeout(*now)).expect("server timeout");
        }
    }
    panic!("in-memory player did not connect");
}

/// Move everything `from` wants to send into `to`. Returns whether anything moved.
fn pump(from: &mut Rtc, to: &mut Rtc, from_addr: SocketAddr, now: &Instant, connected: &mut bool) -> bool {
    let mut moved = false;
    loop {
        match from.poll_output().expect("poll") {
            Output::Timeout(_) => return moved,
            Output::Transmit(t) => {
                moved = true;
                let receive = Receive {
                    proto: Protocol::Udp,
                    source: from_addr,
                    destination: t.destination,
                    contents: (&*t.contents).try_into().expect("datagram"),
                };
                let _ = to.handle_input(Input::Receive(*now, receive));
            }
            Output::Event(Event::Connected) => *connected = true,
            Output::Event(_) => {}
        }
    }
}
