//! The client side of an RTMP connection, for pushing a stream out to another server:
//! [`ClientConnection`] does the handshake, `connect`, `releaseStream`, `FCPublish`,
//! `createStream` and `publish(key, "live")`, reports [`ClientEvent::Publishing`] on
//! `NetStream.Publish.Start` or [`ClientEvent::Failed`] on a refusal, then sends media.
//!
//! Sans-IO: fed the socket's bytes, drained of the bytes to write, polled for events; used on
//! the control thread's tokio runtime (which dials, wraps `rtmps` in TLS and keeps time).
//!
//! Invariants: media is sent only once publishing; at most one `Failed` is reported, after
//! which incoming messages are ignored; after a protocol error every `feed` returns it again.

use std::collections::VecDeque;

use super::amf0::{self, Amf0Value};
use super::chunk_writer::MessageHeader;
use super::command::{self, Command};
use super::handshake::{ClientHandshake, HandshakeStatus};
use super::limits::OUR_CHUNK_BYTES;
use super::message;
use super::transport::Transport;
pub use super::url::{parse_rtmp_url, RtmpUrl};
use super::RtmpError;

const TXN_CONNECT: f64 = 1.0;
const TXN_RELEASE_STREAM: f64 = 2.0;
const TXN_FC_PUBLISH: f64 = 3.0;
const TXN_CREATE_STREAM: f64 = 4.0;
const TXN_PUBLISH: f64 = 5.0;

/// What happened to our publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server answered `NetStream.Publish.Start`: media may flow.
    Publishing,
    /// The server refused (`_error`, `NetStream.Publish.BadName`, any error `onStatus`); the
    /// text is its code and description.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    Connecting,
    CreatingStream,
    PublishSent,
    Publishing,
    Failed,
}

/// One client-side (publishing) RTMP connection.
#[derive(Debug)]
pub struct ClientConnection {
    handshake: ClientHandshake,
    transport: Transport,
    app: String,
    tc_url: String,
    stream_key: String,
    phase: Phase,
    stream_id: u32,
    events: VecDeque<ClientEvent>,
    failure: Option<RtmpError>,
}

impl ClientConnection {
    /// A connection that will publish `stream_key` to `app`; C0+C1 are queued at once.
    pub fn new(app: &str, tc_url: &str, stream_key: &str) -> Self {
        let mut handshake = ClientHandshake::new();
        let mut transport = Transport::new();
        handshake.start(transport.out_mut());
        Self {
            handshake,
            transport,
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            stream_key: stream_key.to_owned(),
            phase: Phase::Handshake,
            stream_id: 0,
            events: VecDeque::new(),
            failure: None,
        }
    }

    /// A connection for a parsed URL.
    pub fn for_url(url: &RtmpUrl) -> Self {
        Self::new(&url.app, &url.tc_url, &url.stream_key)
    }

    /// Takes bytes read from the socket. `Err` is a protocol violation: flush, then close.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), RtmpError> {
        if let Some(err) = &self.failure {
            return Err(err.clone());
        }
        let result = self.feed_inner(bytes);
        if let Err(err) = &result {
            self.failure = Some(err.clone());
        }
        result
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        self.transport.take_output()
    }

    pub fn output_len(&self) -> usize {
        self.transport.output_len()
    }

    pub fn handshake_done(&self) -> bool {
        self.handshake.is_done()
    }

    pub fn is_publishing(&self) -> bool {
        self.phase == Phase::Publishing
    }

    /// Sends an audio message (dropped unless publishing).
    pub fn send_audio(&mut self, timestamp_ms: u32, body: &[u8]) {
        self.send_media(message::CSID_AUDIO, message::AUDIO, timestamp_ms, body);
    }

    /// Sends a video message (dropped unless publishing).
    pub fn send_video(&mut self, timestamp_ms: u32, body: &[u8]) {
        self.send_media(message::CSID_VIDEO, message::VIDEO, timestamp_ms, body);
    }

    /// Sends metadata: `body_amf0` is the AMF0 body starting with the string `onMetaData`;
    /// `@setDataFrame` is put in front, as servers expect from a publisher.
    pub fn send_metadata(&mut self, body_amf0: &[u8]) {
        let mut body = Vec::with_capacity(body_amf0.len().saturating_add(16));
        amf0::encode(&Amf0Value::string("@setDataFrame"), &mut body);
        body.extend_from_slice(body_amf0);
        self.send_media(message::CSID_DATA, message::DATA_AMF0, 0, &body);
    }

    fn send_media(&mut self, csid: u32, type_id: u8, timestamp: u32, body: &[u8]) {
        if self.phase == Phase::Publishing {
            let header = MessageHeader {
                csid,
                timestamp,
                type_id,
                stream_id: self.stream_id,
            };
            self.transport.send(header, body);
        }
    }

    fn feed_inner(&mut self, bytes: &[u8]) -> Result<(), RtmpError> {
        if self.phase == Phase::Handshake {
            match self.handshake.feed(bytes, self.transport.out_mut())? {
                HandshakeStatus::InProgress => return Ok(()),
                HandshakeStatus::Done { leftover } => {
                    self.start_connect();
                    self.transport.push(&leftover);
                }
            }
        } else {
            self.transport.push(bytes);
        }
        while let Some(msg) = self.transport.next_message()? {
            if self.phase == Phase::Failed {
                continue;
            }
            if matches!(msg.type_id, message::COMMAND_AMF0 | message::COMMAND_AMF3) {
                if let Some(cmd) = Command::parse(msg.type_id, &msg.payload)? {
                    self.on_command(&cmd);
                }
            }
        }
        Ok(())
    }

    fn start_connect(&mut self) {
        self.transport.set_our_chunk_size(OUR_CHUNK_BYTES);
        let object = Amf0Value::object([
            ("app", Amf0Value::string(self.app.as_str())),
            ("type", Amf0Value::string("nonprivate")),
            ("flashVer", Amf0Value::string("FMLE/3.0 (compatible; webcall)")),
            ("tcUrl", Amf0Value::string(self.tc_url.as_str())),
        ]);
        self.send_command(0, "connect", TXN_CONNECT, &object, &[]);
        self.phase = Phase::Connecting;
    }

    fn on_command(&mut self, cmd: &Command) {
        let txn = cmd.transaction_id;
        match cmd.name.as_str() {
            "_result" if txn == TXN_CONNECT && self.phase == Phase::Connecting => {
                let key = Amf0Value::string(self.stream_key.as_str());
                self.send_command(
                    0,
                    "releaseStream",
                    TXN_RELEASE_STREAM,
                    &Amf0Value::Null,
                    std::slice::from_ref(&key),
                );
                self.send_command(0, "FCPublish", TXN_FC_PUBLISH, &Amf0Value::Null, &[key]);
                self.send_command(0, "createStream", TXN_CREATE_STREAM, &Amf0Value::Null, &[]);
                self.phase = Phase::CreatingStream;
            }
            "_result" if txn == TXN_CREATE_STREAM && self.phase == Phase::CreatingStream => {
                let id = cmd.args.first().and_then(Amf0Value::as_number);
                let Some(id) = id.filter(|n| n.is_finite() && *n >= 1.0 && *n <= f64::from(u32::MAX)) else {
                    return self.fail("createStream answered without a stream id".to_owned());
                };
                self.stream_id = id as u32;
                let args = [
                    Amf0Value::string(self.stream_key.as_str()),
                    Amf0Value::string("live"),
                ];
                self.send_command(self.stream_id, "publish", TXN_PUBLISH, &Amf0Value::Null, &args);
                self.phase = Phase::PublishSent;
            }
            // releaseStream and FCPublish are courtesy calls; servers may refuse them.
            "_error" if txn == TXN_RELEASE_STREAM || txn == TXN_FC_PUBLISH => {}
            "_error" => {
                let (code, description) = command::info_code(cmd.args.first());
                self.fail(format!("{} refused: {code}: {description}", cmd.name));
            }
            "onStatus" => {
                let info = cmd.args.first();
                let level = info
                    .and_then(|i| i.object_get("level"))
                    .and_then(Amf0Value::as_str);
                let (code, description) = command::info_code(info);
                if code == "NetStream.Publish.Start" && self.phase == Phase::PublishSent {
                    self.phase = Phase::Publishing;
                    self.events.push_back(ClientEvent::Publishing);
                } else if level == Some("error") || code.ends_with(".BadName") || code.ends_with(".Rejected")
                {
                    self.fail(format!("{code}: {description}"));
                }
            }
            _ => tracing::trace!(command = %cmd.name, "rtmp client: command ignored"),
        }
    }

    fn fail(&mut self, why: String) {
        if self.phase != Phase::Failed {
            self.phase = Phase::Failed;
            self.events.push_back(ClientEvent::Failed(why));
        }
    }

    fn send_command(&mut self, stream_id: u32, name: &str, txn: f64, object: &Amf0Value, args: &[Amf0Value]) {
        let body = command::encode_command(name, txn, object, args);
        let header = MessageHeader {
            csid: message::CSID_COMMAND,
            timestamp: 0,
            type_id: message::COMMAND_AMF0,
            stream_id,
        };
        self.transport.send(header, &body);
    }
}
