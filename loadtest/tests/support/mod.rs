//! A fake WCS server for the client's own tests: WebSocket room protocol + [`MiniSfu`].
//!
//! Implements just enough of the protocol to exercise every client call: connection,
//! ping/pong, join (with a capacity), leave, sendMessage, publishStream, playStream,
//! unPublishStream, stopStream, and the room events they cause. It is a test double, not
//! a reference: the real server's behaviour is what webcall's own tests check.

#![allow(dead_code)]

pub mod sfu;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_tungstenite::tungstenite::Message;

use sfu::{MiniSfu, Role};

fn frame(message: &str, data: Value) -> String {
    json!({ "message": message, "data": data }).to_string()
}

fn room_event(room: &str, name: &str, info: Value) -> String {
    frame(
        "OnDataEvent",
        json!([{ "payload": { "roomName": room, "name": name, "info": info } }]),
    )
}

fn status(msid: &str, name: &str, status: &str, info: Option<&str>) -> String {
    let mut o = json!({ "mediaSessionId": msid, "name": name, "status": status });
    if let Some(i) = info {
        o["info"] = json!(i);
    }
    frame("notifyStreamStatusEvent", json!([o]))
}

struct Conn {
    login: String,
    tx: UnboundedSender<String>,
}

struct Stream {
    login: String,
    room: Option<String>,
    conn: u64,
    msid: String,
    peer: u64,
    players: Vec<(u64, String, u64)>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, Conn>,
    rooms: HashMap<String, Vec<u64>>,
    streams: HashMap<String, Stream>,
    pongs: u64,
}

/// The fake server; `url` is its WebSocket address.
pub struct FakeWcs {
    pub url: String,
    pub sfu: Arc<MiniSfu>,
    state: Arc<Mutex<State>>,
}

/// Room capacity the fake enforces.
pub const CAPACITY: usize = 3;

impl FakeWcs {
    pub async fn start() -> FakeWcs {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let sfu = Arc::new(MiniSfu::start());
        let state = Arc::new(Mutex::new(State::default()));
        let (st, sf) = (state.clone(), sfu.clone());
        tokio::spawn(async move {
            let mut id = 0u64;
            while let Ok((tcp, _)) = listener.accept().await {
                id += 1;
                tokio::spawn(serve(id, tcp, st.clone(), sf.clone()));
            }
        });
        FakeWcs { url, sfu, state }
    }

    pub fn pongs(&self) -> u64 {
        self.state.lock().unwrap().pongs
    }
}

async fn serve(id: u64, tcp: tokio::net::TcpStream, state: Arc<Mutex<State>>, sfu: Arc<MiniSfu>) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(t) = rx.recv().await {
            if sink.send(Message::text(t)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            let _ = tx.send(frame("fail", json!([{ "info": "bad json" }])));
            continue;
        };
        let name = v["message"].as_str().unwrap_or("").to_string();
        let d = v["data"][0].clone();
        handle(id, &name, d, &tx, &state, &sfu).await;
    }
    let mut st = state.lock().unwrap();
    st.conns.remove(&id);
    for members in st.rooms.values_mut() {
        members.retain(|m| *m != id);
    }
}

fn others(st: &State, room: &str, me: u64) -> Vec<UnboundedSender<String>> {
    st.rooms
        .get(room)
        .into_iter()
        .flatten()
        .filter(|m| **m != me)
        .filter_map(|m| st.conns.get(m).map(|c| c.tx.clone()))
        .collect()
}

async fn handle(
    id: u64,
    name: &str,
    d: Value,
    tx: &UnboundedSender<String>,
    state: &Arc<Mutex<State>>,
    sfu: &MiniSfu,
) {
    match name {
        "connection" => {
            let login = d["custom"]["login"].as_str().unwrap_or("anon").to_string();
            state.lock().unwrap().conns.insert(
                id,
                Conn {
                    login,
                    tx: tx.clone(),
                },
            );
            let _ = tx.send(frame(
                "getUserData",
                json!([{ "authToken": "t", "appKey": d["appKey"] }]),
            ));
            let _ = tx.send(frame("ping", json!([null])));
        }
        "pong" => state.lock().unwrap().pongs += 1,
        "sendData" => send_data(id, d, tx, state),
        "publishStream" | "playStream" => {
            let msid = d["mediaSessionId"].as_str().unwrap_or("").to_string();
            let stream = d["name"].as_str().unwrap_or("").to_string();
            let offer = d["sdp"].as_str().unwrap_or("").to_string();
            let publish = name == "publishStream";
            let (login, pre) = {
                let st = state.lock().unwrap();
                let login = st.conns.get(&id).map(|c| c.login.clone()).unwrap_or_default();
                let exists = st.streams.contains_key(&stream);
                let pre = match (publish, exists) {
                    (true, true) => Some("Stream name is already in use"),
                    (false, false) => Some("Stream not found"),
                    _ => None,
                };
                (login, pre)
            };
            if let Some(info) = pre {
                let _ = tx.send(status(&msid, &stream, "FAILED", Some(info)));
                return;
            }
            let room = d["custom"]["name"].as_str().map(str::to_string);
            let mut on = vec![(
                tx.clone(),
                status(
                    &msid,
                    &stream,
                    if publish { "PUBLISHING" } else { "PLAYING" },
                    None,
                ),
            )];
            if let (true, Some(r)) = (publish, &room) {
                let st = state.lock().unwrap();
                for o in others(&st, r, id) {
                    on.push((
                        o,
                        room_event(r, "PUBLISHED", json!({ "login": login, "name": stream })),
                    ));
                }
            }
            let role = if publish {
                Role::Publish(stream.clone())
            } else {
                Role::Play(stream.clone())
            };
            match sfu.add(offer, role, on).await {
                Ok((peer, answer)) => {
                    let mut st = state.lock().unwrap();
                    if publish {
                        st.streams.insert(
                            stream.clone(),
                            Stream {
                                login,
                                room,
                                conn: id,
                                msid: msid.clone(),
                                peer,
                                players: vec![],
                            },
                        );
                    } else if let Some(s) = st.streams.get_mut(&stream) {
                        s.players.push((id, msid.clone(), peer));
                    }
                    let _ = tx.send(frame("setRemoteSDP", json!([msid, answer])));
                }
                Err(info) => {
                    let _ = tx.send(status(&msid, &stream, "FAILED", Some(&info)));
                }
            }
        }
        "unPublishStream" => {
            let stream = d["name"].as_str().unwrap_or("").to_string();
            let mut st = state.lock().unwrap();
            if let Some(s) = st.streams.remove(&stream) {
                sfu.remove(s.peer);
                let _ = tx.send(status(&s.msid, &stream, "UNPUBLISHED", None));
                for (conn, msid, peer) in &s.players {
                    sfu.remove(*peer);
                    if let Some(c) = st.conns.get(conn) {
                        let _ = c.tx.send(status(
                            msid,
                            &stream,
                            "STOPPED",
                            Some("Stopped by publisher stop"),
                        ));
                    }
                }
                if let Some(r) = &s.room {
                    for o in others(&st, r, id) {
                        let _ = o.send(room_event(
                            r,
                            "UNPUBLISHED",
                            json!({ "login": s.login, "name": stream }),
                        ));
                    }
                }
            }
        }
        "stopStream" => {
            let stream = d["name"].as_str().unwrap_or("").to_string();
            let msid = d["mediaSessionId"].as_str().unwrap_or("").to_string();
            let mut st = state.lock().unwrap();
            if let Some(s) = st.streams.get_mut(&stream) {
                if let Some(pos) = s.players.iter().position(|p| p.1 == msid) {
                    let (_, _, peer) = s.players.remove(pos);
                    sfu.remove(peer);
                }
            }
            let _ = tx.send(status(&msid, &stream, "STOPPED", None));
        }
        _ => {}
    }
}

fn send_data(id: u64, d: Value, tx: &UnboundedSender<String>, state: &Arc<Mutex<State>>) {
    let op = d["operationId"].as_str().unwrap_or("").to_string();
    let cmd = d["payload"]["command"].as_str().unwrap_or("");
    let opts = &d["payload"]["options"];
    let ack = |ok: bool, info: &str| {
        let status = if ok { "ACCEPTED" } else { "FAILED" };
        let _ = tx.send(frame(
            "DataStatusEvent",
            json!([{ "operationId": op, "status": status, "info": info }]),
        ));
    };
    let mut st = state.lock().unwrap();
    let login = st.conns.get(&id).map(|c| c.login.clone()).unwrap_or_default();
    match cmd {
        "join" => {
            let room = opts["name"].as_str().unwrap_or("").to_string();
            let members = st.rooms.get(&room).cloned().unwrap_or_default();
            if members.len() >= CAPACITY {
                return ack(false, "Room is full");
            }
            ack(true, "");
            let mut info = Vec::new();
            for m in &members {
                let Some(c) = st.conns.get(m) else { continue };
                let mine: Vec<_> = st.streams.iter().filter(|(_, s)| s.conn == *m).collect();
                if mine.is_empty() {
                    info.push(json!(c.login));
                }
                for (name, _) in mine {
                    info.push(json!({ "login": c.login, "name": name }));
                }
            }
            let _ = tx.send(room_event(&room, "STATE", json!(info)));
            for o in others(&st, &room, id) {
                let _ = o.send(room_event(&room, "JOINED", json!(login)));
            }
            st.rooms.entry(room).or_default().push(id);
        }
        "leave" => {
            let room = opts["name"].as_str().unwrap_or("").to_string();
            let inside = st.rooms.get(&room).is_some_and(|m| m.contains(&id));
            if !inside {
                return ack(false, "Not in room");
            }
            ack(true, "");
            for o in others(&st, &room, id) {
                let _ = o.send(room_event(&room, "LEFT", json!(login)));
            }
            if let Some(m) = st.rooms.get_mut(&room) {
                m.retain(|x| *x != id);
            }
        }
        "sendMessage" => {
            let room = opts["roomConfig"]["name"].as_str().unwrap_or("").to_string();
            let text = opts["text"].as_str().unwrap_or("");
            let to = opts["to"].as_str();
            let members = st.rooms.get(&room).cloned().unwrap_or_default();
            if !members.contains(&id) {
                return ack(false, "Not in room");
            }
            ack(true, "");
            for m in members.iter().filter(|m| **m != id) {
                let Some(c) = st.conns.get(m) else { continue };
                if to.is_none_or(|t| t == c.login) {
                    let _ = c.tx.send(room_event(
                        &room,
                        "MESSAGE",
                        json!({ "from": login, "text": text }),
                    ));
                }
            }
        }
        _ => ack(false, "Unknown command"),
    }
}
