//! AMF0, the encoding of RTMP commands and metadata: [`Amf0Value`], [`decode_all`] and
//! [`encode`]. Decodes numbers, booleans, strings (short and long), objects (typed objects
//! lose their class name), null, undefined, ECMA and strict arrays, dates and XML documents
//! (as strings); references and the AMF3 switch are refused.
//!
//! Sans-IO pure functions (used on the control thread's tokio runtime).
//!
//! Invariants: declared lengths and counts are never used to preallocate, only checked
//! against the bytes present; nesting is at most `AMF0_DEPTH_MAX` deep and one call decodes at
//! most `AMF0_VALUES_MAX` values; strings are UTF-8, invalid sequences replaced.

use super::limits::{AMF0_DEPTH_MAX, AMF0_VALUES_MAX};
use super::RtmpError;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;
const UNSUPPORTED: u8 = 0x0D;
const XML_DOCUMENT: u8 = 0x0F;
const TYPED_OBJECT: u8 = 0x10;
const AVMPLUS: u8 = 0x11;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch (the time zone field is dropped).
    Date(f64),
}

impl Amf0Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of the first property named `key` of an object or ECMA array.
    pub fn object_get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Self::Object(props) | Self::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// Shorthand for an object from `(&str, value)` pairs.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Amf0Value)>) -> Self {
        Self::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn string(s: impl Into<String>) -> Self {
        Self::String(s.into())
    }
}

/// Decodes every value in `data` (a command or data message body).
pub fn decode_all(data: &[u8]) -> Result<Vec<Amf0Value>, RtmpError> {
    let mut decoder = Decoder {
        data,
        pos: 0,
        values: 0,
    };
    let mut out = Vec::new();
    while decoder.pos < data.len() {
        out.push(decoder.value(0)?);
    }
    Ok(out)
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    values: usize,
}

const TRUNCATED: RtmpError = RtmpError::Amf0("truncated");

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RtmpError> {
        let end = self.pos.checked_add(n).ok_or(TRUNCATED)?;
        let slice = self.data.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RtmpError> {
        self.take(N)?.try_into().map_err(|_| TRUNCATED)
    }

    fn u8(&mut self) -> Result<u8, RtmpError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, RtmpError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, RtmpError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, RtmpError> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    fn utf8(&mut self, len: usize) -> Result<String, RtmpError> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn short_string(&mut self) -> Result<String, RtmpError> {
        let len = self.u16()?;
        self.utf8(usize::from(len))
    }

    fn long_string(&mut self) -> Result<String, RtmpError> {
        let len = self.u32()?;
        self.utf8(usize::try_from(len).map_err(|_| TRUNCATED)?)
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, RtmpError> {
        if depth > AMF0_DEPTH_MAX {
            return Err(RtmpError::Amf0("nested too deeply"));
        }
        self.values += 1;
        if self.values > AMF0_VALUES_MAX {
            return Err(RtmpError::Amf0("too many values"));
        }
        Ok(match self.u8()? {
            NUMBER => Amf0Value::Number(self.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            STRING => Amf0Value::String(self.short_string()?),
            OBJECT => Amf0Value::Object(self.properties(depth)?),
            NULL => Amf0Value::Null,
            UNDEFINED | UNSUPPORTED => Amf0Value::Undefined,
            ECMA_ARRAY => {
                // The count is only a hint; the properties end with the object end marker.
                self.u32()?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            STRICT_ARRAY => {
                let count = self.u32()?;
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            DATE => {
                let millis = self.f64()?;
                self.u16()?;
                Amf0Value::Date(millis)
            }
            LONG_STRING | XML_DOCUMENT => Amf0Value::String(self.long_string()?),
            TYPED_OBJECT => {
                self.short_string()?;
                Amf0Value::Object(self.properties(depth)?)
            }
            REFERENCE => return Err(RtmpError::Amf0("references are not supported")),
            AVMPLUS => return Err(RtmpError::Amf0("AMF3 values are not supported")),
            _ => return Err(RtmpError::Amf0("unknown type marker")),
        })
    }

    /// Key/value pairs up to the empty key followed by the object end marker.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, RtmpError> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.data.get(self.pos) == Some(&OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }
}

/// Appends the encoding of `value` to `out`. Strings longer than 65535 bytes are written as
/// long strings; property keys longer than that are cut at a character boundary.
pub fn encode(value: &Amf0Value, out: &mut Vec<u8>) {
    match value {
        Amf0Value::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => out.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
        Amf0Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => {
                out.push(LONG_STRING);
                let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
            }
        },
        Amf0Value::Object(props) => {
            out.push(OBJECT);
            encode_properties(props, out);
        }
        Amf0Value::Null => out.push(NULL),
        Amf0Value::Undefined => out.push(UNDEFINED),
        Amf0Value::EcmaArray(props) => {
            out.push(ECMA_ARRAY);
            out.extend_from_slice(&u32::try_from(props.len()).unwrap_or(u32::MAX).to_be_bytes());
            encode_properties(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.push(STRICT_ARRAY);
            out.extend_from_slice(&u32::try_from(items.len()).unwrap_or(u32::MAX).to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Amf0Value::Date(millis) => {
            out.push(DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&0u16.to_be_bytes());
        }
    }
}

fn encode_properties(props: &[(String, Amf0Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        let mut end = key.len().min(usize::from(u16::MAX));
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        let key = key.get(..end).unwrap_or_default();
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        encode(value, out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

/// Encodes a sequence of values (a command or data message body).
pub fn encode_all(values: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode(value, &mut out);
    }
    out
}
