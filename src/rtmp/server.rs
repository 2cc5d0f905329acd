//! The server side of an RTMP connection after TCP accept: [`ServerConnection`] owns the
//! handshake, the chunk stream and the NetConnection / NetStream command exchange of a
//! publisher (OBS, ffmpeg) or a player, and reports what the peer asks for as
//! [`ServerEvent`]s. Decisions (accept or reject a connect, publish or play) are the owner's.
//!
//! Sans-IO: fed the socket's bytes, drained of the bytes to write, polled for events; used on
//! the control thread's tokio runtime, which also enforces `limits::HANDSHAKE_DEADLINE` and
//! `limits::IDLE_DEADLINE`.
//!
//! Invariants: while a connect, publish or play request awaits the owner's decision, the
//! peer's later messages stay unparsed in the input buffer (at most
//! `PENDING_INPUT_BYTES_MAX` bytes), so events and answers keep the peer's order and media sent
//! right after `publish` is not lost; media is reported only for a stream that publishes and
//! sent only to a stream that plays; after an error every `feed` returns it again.

mod commands;

use std::collections::VecDeque;

use super::amf0::Amf0Value;
use super::chunk::RtmpMessage;
use super::command::{self, Command};
use super::handshake::{HandshakeStatus, ServerHandshake};
use super::limits::PENDING_INPUT_BYTES_MAX;
use super::message::{self, UserControl};
use super::streams::{Role, StreamTable};
use super::transport::Transport;
use super::RtmpError;

/// What the peer asked for or sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// Answer with [`ServerConnection::accept_connect`] or [`ServerConnection::reject_connect`].
    ConnectRequested { app: String, tc_url: Option<String> },
    /// `name` is the publishing name as sent (may contain `?query` and `/`). Answer with
    /// [`ServerConnection::accept_publish`] or [`ServerConnection::reject_publish`].
    PublishRequested {
        stream_id: u32,
        app: String,
        name: String,
    },
    /// Answer with [`ServerConnection::accept_play`] or [`ServerConnection::reject_play`].
    PlayRequested {
        stream_id: u32,
        app: String,
        name: String,
    },
    Audio {
        stream_id: u32,
        timestamp_ms: u32,
        body: Vec<u8>,
    },
    Video {
        stream_id: u32,
        timestamp_ms: u32,
        body: Vec<u8>,
    },
    /// `@setDataFrame` / `onMetaData`: the values from `"onMetaData"` on.
    Metadata { stream_id: u32, values: Vec<Amf0Value> },
    /// A publishing or playing stream (or one awaiting a decision) ended: `deleteStream`,
    /// `closeStream` or `FCUnpublish`.
    StreamClosed { stream_id: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Connect {
    Awaiting,
    Requested {
        transaction_id: f64,
        object_encoding: f64,
    },
    Accepted,
    Rejected,
}

/// One server-side RTMP connection.
#[derive(Debug)]
pub struct ServerConnection {
    handshake: Option<ServerHandshake>,
    transport: Transport,
    connect: Connect,
    app: String,
    streams: StreamTable,
    events: VecDeque<ServerEvent>,
    failure: Option<RtmpError>,
}

impl Default for ServerConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerConnection {
    pub fn new() -> Self {
        Self {
            handshake: Some(ServerHandshake::new()),
            transport: Transport::new(),
            connect: Connect::Awaiting,
            app: String::new(),
            streams: StreamTable::default(),
            events: VecDeque::new(),
            failure: None,
        }
    }

    /// Takes bytes read from the socket. `Err` is a protocol violation: flush the output,
    /// then close. It also reports an error found while resuming after an accept/reject call
    /// (`feed(&[])` checks for one).
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

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the socket (may be empty).
    pub fn take_output(&mut self) -> Vec<u8> {
        self.transport.take_output()
    }

    /// Queued output not yet taken, for backpressure.
    pub fn output_len(&self) -> usize {
        self.transport.output_len()
    }

    pub fn handshake_done(&self) -> bool {
        self.handshake.is_none()
    }

    pub fn accept_connect(&mut self) {
        let Connect::Requested {
            transaction_id,
            object_encoding,
        } = self.connect
        else {
            return;
        };
        self.connect = Connect::Accepted;
        let properties = Amf0Value::object([
            ("fmsVer", Amf0Value::string("FMS/3,5,7,7009")),
            ("capabilities", Amf0Value::Number(31.0)),
            ("mode", Amf0Value::Number(1.0)),
        ]);
        let mut info =
            command::status_info("status", "NetConnection.Connect.Success", "Connection succeeded.");
        if let Amf0Value::Object(props) = &mut info {
            props.push(("objectEncoding".to_owned(), Amf0Value::Number(object_encoding)));
        }
        self.send_command(0, "_result", transaction_id, &properties, &[info]);
        self.resume();
    }

    pub fn reject_connect(&mut self, description: &str) {
        let Connect::Requested { transaction_id, .. } = self.connect else {
            return;
        };
        self.connect = Connect::Rejected;
        self.send_error(0, transaction_id, "NetConnection.Connect.Rejected", description);
        self.resume();
    }

    pub fn accept_publish(&mut self, stream_id: u32) {
        let Some(Role::PublishRequested { name }) = self.streams.role(stream_id).cloned() else {
            return;
        };
        let description = format!("{name} is now published.");
        self.streams.set_role(stream_id, Role::Publishing { name });
        self.send_status(stream_id, "status", "NetStream.Publish.Start", &description);
        self.resume();
    }

    /// Refuses with `NetStream.Publish.BadName` (send `NetStream.Publish.Rejected` through
    /// [`ServerConnection::send_status`] first if that suits better).
    pub fn reject_publish(&mut self, stream_id: u32, description: &str) {
        let Some(Role::PublishRequested { .. }) = self.streams.role(stream_id) else {
            return;
        };
        self.streams.set_role(stream_id, Role::Idle);
        self.send_status(stream_id, "error", "NetStream.Publish.BadName", description);
        self.resume();
    }

    pub fn accept_play(&mut self, stream_id: u32) {
        let Some(Role::PlayRequested { name }) = self.streams.role(stream_id).cloned() else {
            return;
        };
        self.transport.send_control(
            message::USER_CONTROL,
            &UserControl::StreamBegin(stream_id).encode(),
        );
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {name}."),
        );
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            &format!("Started playing {name}."),
        );
        let access = [
            Amf0Value::string("|RtmpSampleAccess"),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(true),
        ];
        self.send_data(stream_id, &super::amf0::encode_all(&access));
        self.streams.set_role(stream_id, Role::Playing { name });
        self.resume();
    }

    /// Refuses with `NetStream.Play.StreamNotFound`.
    pub fn reject_play(&mut self, stream_id: u32, description: &str) {
        let Some(Role::PlayRequested { .. }) = self.streams.role(stream_id) else {
            return;
        };
        self.streams.set_role(stream_id, Role::Idle);
        self.send_status(stream_id, "error", "NetStream.Play.StreamNotFound", description);
        self.resume();
    }

    /// Sends `onStatus` on a stream, e.g. `NetStream.Play.UnpublishNotify`.
    pub fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let body = command::on_status(level, code, description);
        self.send_raw(message::CSID_COMMAND, message::COMMAND_AMF0, stream_id, 0, &body);
    }

    /// Whether audio and video for `stream_id` may go out as [`media_wire`] bytes made for
    /// every player alike: the stream plays and we send at `chunk_size`.
    pub fn plays_at(&self, stream_id: u32, chunk_size: u32) -> bool {
        self.streams.is_playing(stream_id) && self.transport.our_chunk_size() == chunk_size
    }

    /// Sends an audio message to a playing stream (dropped otherwise).
    pub fn send_audio(&mut self, stream_id: u32, timestamp_ms: u32, body: &[u8]) {
        if self.streams.is_playing(stream_id) {
            self.send_raw(message::CSID_AUDIO, message::AUDIO, stream_id, timestamp_ms, body);
        }
    }

    /// Sends a video message to a playing stream (dropped otherwise).
    pub fn send_video(&mut self, stream_id: u32, timestamp_ms: u32, body: &[u8]) {
        if self.streams.is_playing(stream_id) {
            self.send_raw(message::CSID_VIDEO, message::VIDEO, stream_id, timestamp_ms, body);
        }
    }

    /// Sends a data message to a playing stream; `body_amf0` is the whole AMF0 body, starting
    /// with the string `onMetaData` (no `@setDataFrame`).
    pub fn send_metadata(&mut self, stream_id: u32, body_amf0: &[u8]) {
        if self.streams.is_playing(stream_id) {
            self.send_data(stream_id, body_amf0);
        }
    }

    /// Sends a User Control Ping Request; the answer is swallowed.
    pub fn send_ping(&mut self, timestamp_ms: u32) {
        let payload = UserControl::PingRequest(timestamp_ms).encode();
        self.transport.send_control(message::USER_CONTROL, &payload);
    }

    fn feed_inner(&mut self, bytes: &[u8]) -> Result<(), RtmpError> {
        match &mut self.handshake {
            Some(handshake) => match handshake.feed(bytes, self.transport.out_mut())? {
                HandshakeStatus::InProgress => return Ok(()),
                HandshakeStatus::Done { leftover } => {
                    self.handshake = None;
                    self.transport.push(&leftover);
                }
            },
            None => self.transport.push(bytes),
        }
        self.process()
    }

    /// Handles buffered messages until none is left or a request awaits a decision.
    fn process(&mut self) -> Result<(), RtmpError> {
        while !self.awaiting_decision() {
            match self.transport.next_message()? {
                Some(msg) => self.on_message(msg)?,
                None => return Ok(()),
            }
        }
        let pending = self.transport.buffered_input();
        if pending > PENDING_INPUT_BYTES_MAX {
            return Err(RtmpError::PendingInputExceeded(pending));
        }
        Ok(())
    }

    /// Continues after a decision; an error is kept for the next `feed`.
    fn resume(&mut self) {
        if self.failure.is_none() && self.handshake.is_none() {
            if let Err(err) = self.process() {
                self.failure = Some(err);
            }
        }
    }

    fn awaiting_decision(&self) -> bool {
        matches!(self.connect, Connect::Requested { .. }) || self.streams.any_request()
    }

    fn on_message(&mut self, msg: RtmpMessage) -> Result<(), RtmpError> {
        let stream_id = msg.stream_id;
        match msg.type_id {
            message::COMMAND_AMF0 | message::COMMAND_AMF3 => match Command::parse(msg.type_id, &msg.payload)?
            {
                Some(cmd) => self.on_command(stream_id, cmd),
                None => tracing::debug!("rtmp: command without a name ignored"),
            },
            message::DATA_AMF0 | message::DATA_AMF3 if self.streams.is_publishing(stream_id) => {
                self.on_data(stream_id, &msg);
            }
            message::AUDIO if self.streams.is_publishing(stream_id) => {
                let timestamp_ms = msg.timestamp;
                self.events.push_back(ServerEvent::Audio {
                    stream_id,
                    timestamp_ms,
                    body: msg.payload,
                });
            }
            message::VIDEO if self.streams.is_publishing(stream_id) => {
                let timestamp_ms = msg.timestamp;
                self.events.push_back(ServerEvent::Video {
                    stream_id,
                    timestamp_ms,
                    body: msg.payload,
                });
            }
            type_id => tracing::trace!(type_id, stream_id, "rtmp: message dropped"),
        }
        Ok(())
    }

    /// `@setDataFrame onMetaData {...}` or `onMetaData {...}`; other data messages (and
    /// undecodable ones: metadata is not worth the connection) are dropped.
    fn on_data(&mut self, stream_id: u32, msg: &RtmpMessage) {
        let mut values = match command::decode_body(msg.type_id, &msg.payload) {
            Ok(values) => values,
            Err(err) => return tracing::debug!(%err, "rtmp: data message dropped"),
        };
        if values.first().and_then(Amf0Value::as_str) == Some("@setDataFrame") {
            values.remove(0);
        }
        if values.first().and_then(Amf0Value::as_str) == Some("onMetaData") {
            self.events.push_back(ServerEvent::Metadata { stream_id, values });
        }
    }
}
