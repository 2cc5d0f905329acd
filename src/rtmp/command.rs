//! AMF0 commands and data messages: parsing a command message into a [`Command`] (name,
//! transaction id, command object, arguments), building command bodies, and the
//! `onStatus` / `_result` / `_error` info objects both roles send.
//!
//! Sans-IO pure functions (used on the control thread's tokio runtime).
//!
//! Invariant: AMF3-flavoured messages (types 15 and 17) are accepted as their leading format
//! byte followed by AMF0; anything undecodable is an `RtmpError`, a command whose name is not
//! a string is reported as `None` so the caller can ignore it.

use super::amf0::{self, Amf0Value};
use super::message::{COMMAND_AMF3, DATA_AMF3};
use super::RtmpError;

/// One decoded command message.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    /// 0 when absent or not a number (such commands expect no answer).
    pub transaction_id: f64,
    /// The command object (`Null` when absent).
    pub object: Amf0Value,
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// Decodes a command message body of type `type_id` (20 or 17).
    pub fn parse(type_id: u8, payload: &[u8]) -> Result<Option<Self>, RtmpError> {
        let mut values = decode_body(type_id, payload)?.into_iter();
        let Some(Amf0Value::String(name)) = values.next() else {
            return Ok(None);
        };
        let transaction_id = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Amf0Value::Null);
        Ok(Some(Self {
            name,
            transaction_id,
            object,
            args: values.collect(),
        }))
    }

    /// The first argument as a string, if it is one.
    pub fn arg_str(&self, index: usize) -> Option<&str> {
        self.args.get(index).and_then(Amf0Value::as_str)
    }

    /// Whether the sender expects an answer (a positive, finite transaction id).
    pub fn wants_answer(&self) -> bool {
        self.transaction_id.is_finite() && self.transaction_id > 0.0
    }
}

/// Decodes a command or data message body, skipping the AMF3 format byte where present.
pub fn decode_body(type_id: u8, payload: &[u8]) -> Result<Vec<Amf0Value>, RtmpError> {
    let body = match (type_id, payload.split_first()) {
        (COMMAND_AMF3 | DATA_AMF3, Some((0, rest))) => rest,
        _ => payload,
    };
    amf0::decode_all(body)
}

/// The body of a command message.
pub fn encode_command(name: &str, transaction_id: f64, object: &Amf0Value, args: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::new();
    amf0::encode(&Amf0Value::string(name), &mut out);
    amf0::encode(&Amf0Value::Number(transaction_id), &mut out);
    amf0::encode(object, &mut out);
    for arg in args {
        amf0::encode(arg, &mut out);
    }
    out
}

/// The info object of `onStatus` and of connection results: level, code and description.
pub fn status_info(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::object([
        ("level", Amf0Value::string(level)),
        ("code", Amf0Value::string(code)),
        ("description", Amf0Value::string(description)),
    ])
}

/// The body of an `onStatus` command (transaction 0, null command object).
pub fn on_status(level: &str, code: &str, description: &str) -> Vec<u8> {
    encode_command(
        "onStatus",
        0.0,
        &Amf0Value::Null,
        &[status_info(level, code, description)],
    )
}

/// `(code, description)` of an info object (`_error`, `onStatus`), empty strings if absent.
pub fn info_code(info: Option<&Amf0Value>) -> (String, String) {
    let field = |key| {
        info.and_then(|i| i.object_get(key))
            .and_then(Amf0Value::as_str)
            .unwrap_or_default()
    };
    (field("code").to_owned(), field("description").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_leniently() {
        let body = encode_command("publish", 5.0, &Amf0Value::Null, &[Amf0Value::string("key")]);
        let cmd = Command::parse(20, &body).unwrap().unwrap();
        assert_eq!(
            (cmd.name.as_str(), cmd.transaction_id, cmd.arg_str(0)),
            ("publish", 5.0, Some("key"))
        );
        let mut amf3 = vec![0];
        amf3.extend_from_slice(&body);
        assert_eq!(Command::parse(COMMAND_AMF3, &amf3).unwrap(), Some(cmd));
        // A number where the name belongs: ignored, not an error.
        assert_eq!(
            Command::parse(20, &amf0::encode_all(&[Amf0Value::Number(1.0)])).unwrap(),
            None
        );
        assert_eq!(Command::parse(20, &[]).unwrap(), None);
        // Only the name: transaction 0, null object.
        let bare = Command::parse(20, &amf0::encode_all(&[Amf0Value::string("x")]))
            .unwrap()
            .unwrap();
        assert!(!bare.wants_answer());
        assert!(Command::parse(20, &[2, 0, 9, b'a']).is_err());
    }
}
