//! The NetConnection / NetStream commands a [`ServerConnection`] answers: `connect`,
//! `createStream`, `releaseStream` / `FCPublish` / `FCUnpublish`, `publish`, `play`,
//! `deleteStream`, `closeStream`, `getStreamLength`, `_checkbw`, and the answer to anything
//! else. Split from `server.rs` for size; same sans-IO state machine (control thread's tokio
//! runtime).
//!
//! Invariants: a command with missing or mistyped arguments is answered with `_error` or a
//! failed `onStatus` (or ignored when it expects no answer), never treated as valid; before
//! `connect` is accepted only `connect` is served.

use super::{Connect, ServerConnection, ServerEvent};
use crate::rtmp::amf0::Amf0Value;
use crate::rtmp::chunk_writer::MessageHeader;
use crate::rtmp::command::{self, Command};
use crate::rtmp::limits::{OUR_CHUNK_BYTES, WINDOW_ACK_BYTES};
use crate::rtmp::message;
use crate::rtmp::streams::Role;

/// A stream id sent as an AMF0 number, if it is a whole number that fits.
fn stream_id_of(value: Option<&Amf0Value>) -> Option<u32> {
    let n = value?.as_number()?;
    (n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX) && n.fract() == 0.0).then_some(n as u32)
}

impl ServerConnection {
    pub(super) fn on_command(&mut self, msg_stream: u32, cmd: Command) {
        if cmd.name == "connect" {
            return self.on_connect(&cmd);
        }
        if self.connect != Connect::Accepted {
            return self.call_failed(msg_stream, &cmd, "not connected");
        }
        match cmd.name.as_str() {
            "createStream" => match self.streams.create() {
                Some(id) => self.answer(msg_stream, &cmd, Amf0Value::Number(f64::from(id))),
                None => self.call_failed(msg_stream, &cmd, "too many streams"),
            },
            "releaseStream" => self.answer(msg_stream, &cmd, Amf0Value::Undefined),
            "FCPublish" => {
                self.answer(msg_stream, &cmd, Amf0Value::Undefined);
                let name = cmd.arg_str(0).unwrap_or_default();
                let info = command::status_info("status", "NetStream.Publish.Start", name);
                self.send_command(msg_stream, "onFCPublish", 0.0, &Amf0Value::Null, &[info]);
            }
            "FCUnpublish" => {
                self.answer(msg_stream, &cmd, Amf0Value::Undefined);
                let name = cmd.arg_str(0).unwrap_or_default();
                let info = command::status_info("status", "NetStream.Unpublish.Success", name);
                self.send_command(msg_stream, "onFCUnpublish", 0.0, &Amf0Value::Null, &[info]);
                if let Some(id) = self.streams.publisher() {
                    self.close_stream(id);
                }
            }
            "publish" => self.on_publish(msg_stream, &cmd),
            "play" => self.on_play(msg_stream, &cmd),
            "deleteStream" => {
                let deleted =
                    stream_id_of(cmd.args.first()).and_then(|id| Some((id, self.streams.delete(id)?)));
                if let Some((stream_id, role)) = deleted {
                    if role != Role::Idle {
                        self.events.push_back(ServerEvent::StreamClosed { stream_id });
                    }
                }
            }
            "closeStream" => self.close_stream(msg_stream),
            "getStreamLength" => self.answer(msg_stream, &cmd, Amf0Value::Number(0.0)),
            "_checkbw" => self.answer(msg_stream, &cmd, Amf0Value::Null),
            // Answers and notifications; we asked nothing.
            "_result" | "_error" | "onStatus" | "onBWDone" => {}
            _ => self.call_failed(msg_stream, &cmd, "unknown command"),
        }
    }

    fn on_connect(&mut self, cmd: &Command) {
        let txn = cmd.transaction_id;
        let code = "NetConnection.Connect.Rejected";
        if self.connect != Connect::Awaiting {
            return self.send_error(0, txn, code, "already connected");
        }
        if !matches!(cmd.object, Amf0Value::Object(_) | Amf0Value::EcmaArray(_)) {
            return self.send_error(0, txn, code, "connect needs a command object");
        }
        let Some(app) = cmd.object.object_get("app").and_then(Amf0Value::as_str) else {
            return self.send_error(0, txn, code, "connect needs an app");
        };
        let tc_url = cmd
            .object
            .object_get("tcUrl")
            .and_then(Amf0Value::as_str)
            .map(str::to_owned);
        let object_encoding = cmd
            .object
            .object_get("objectEncoding")
            .and_then(Amf0Value::as_number);
        self.app = app.to_owned();
        self.connect = Connect::Requested {
            transaction_id: txn,
            object_encoding: object_encoding.unwrap_or(0.0),
        };
        self.transport.announce_window(WINDOW_ACK_BYTES);
        let bandwidth = message::set_peer_bandwidth(WINDOW_ACK_BYTES, message::BANDWIDTH_LIMIT_DYNAMIC);
        self.transport
            .send_control(message::SET_PEER_BANDWIDTH, &bandwidth);
        self.transport.set_our_chunk_size(OUR_CHUNK_BYTES);
        self.events.push_back(ServerEvent::ConnectRequested {
            app: self.app.clone(),
            tc_url,
        });
    }

    fn on_publish(&mut self, stream_id: u32, cmd: &Command) {
        let refuse = |this: &mut Self, why: &str| {
            this.send_status(stream_id, "error", "NetStream.Publish.BadName", why)
        };
        let Some(name) = cmd.arg_str(0).filter(|name| !name.is_empty()) else {
            return refuse(self, "publish needs a stream name");
        };
        match self.streams.role(stream_id) {
            None => return refuse(self, "no such stream"),
            Some(Role::Idle) => {}
            Some(_) => return refuse(self, "stream is busy"),
        }
        if self.streams.any_publisher() {
            return refuse(self, "this connection already publishes");
        }
        let name = name.to_owned();
        self.streams
            .set_role(stream_id, Role::PublishRequested { name: name.clone() });
        self.events.push_back(ServerEvent::PublishRequested {
            stream_id,
            app: self.app.clone(),
            name,
        });
    }

    fn on_play(&mut self, stream_id: u32, cmd: &Command) {
        let refuse =
            |this: &mut Self, why: &str| this.send_status(stream_id, "error", "NetStream.Play.Failed", why);
        let Some(name) = cmd.arg_str(0).filter(|name| !name.is_empty()) else {
            return refuse(self, "play needs a stream name");
        };
        match self.streams.role(stream_id) {
            None => return refuse(self, "no such stream"),
            Some(Role::Idle) => {}
            Some(_) => return refuse(self, "stream is busy"),
        }
        let name = name.to_owned();
        self.streams
            .set_role(stream_id, Role::PlayRequested { name: name.clone() });
        self.events.push_back(ServerEvent::PlayRequested {
            stream_id,
            app: self.app.clone(),
            name,
        });
    }

    /// Returns a stream to idle, reporting it closed if it was doing anything.
    fn close_stream(&mut self, stream_id: u32) {
        if let Some(role) = self.streams.set_role(stream_id, Role::Idle) {
            if role != Role::Idle {
                self.events.push_back(ServerEvent::StreamClosed { stream_id });
            }
        }
    }

    /// `_result` with `value` if the command expects an answer.
    fn answer(&mut self, msg_stream: u32, cmd: &Command, value: Amf0Value) {
        if cmd.wants_answer() {
            self.send_command(
                msg_stream,
                "_result",
                cmd.transaction_id,
                &Amf0Value::Null,
                &[value],
            );
        }
    }

    /// `_error` (NetConnection.Call.Failed) if the command expects an answer.
    fn call_failed(&mut self, msg_stream: u32, cmd: &Command, why: &str) {
        tracing::debug!(command = %cmd.name, why, "rtmp: command refused");
        if cmd.wants_answer() {
            let description = format!("{}: {why}", cmd.name);
            self.send_error(
                msg_stream,
                cmd.transaction_id,
                "NetConnection.Call.Failed",
                &description,
            );
        }
    }

    pub(super) fn send_error(&mut self, msg_stream: u32, txn: f64, code: &str, description: &str) {
        let info = command::status_info("error", code, description);
        self.send_command(msg_stream, "_error", txn, &Amf0Value::Null, &[info]);
    }

    pub(super) fn send_command(
        &mut self,
        msg_stream: u32,
        name: &str,
        txn: f64,
        object: &Amf0Value,
        args: &[Amf0Value],
    ) {
        let body = command::encode_command(name, txn, object, args);
        self.send_raw(message::CSID_COMMAND, message::COMMAND_AMF0, msg_stream, 0, &body);
    }

    pub(super) fn send_data(&mut self, stream_id: u32, body: &[u8]) {
        self.send_raw(message::CSID_DATA, message::DATA_AMF0, stream_id, 0, body);
    }

    pub(super) fn send_raw(&mut self, csid: u32, type_id: u8, stream_id: u32, timestamp: u32, body: &[u8]) {
        let header = MessageHeader {
            csid,
            timestamp,
            type_id,
            stream_id,
        };
        self.transport.send(header, body);
    }
}
