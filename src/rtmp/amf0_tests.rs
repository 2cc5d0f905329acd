//! Tests of AMF0: round trips of every value kind, the decoder's leniencies (typed objects,
//! XML, unsupported), and its refusals (truncation, unknown markers, depth, counts and
//! declared lengths larger than the input).

use super::amf0::{decode_all, encode, encode_all, Amf0Value};
use super::limits::{AMF0_DEPTH_MAX, AMF0_VALUES_MAX};
use super::RtmpError;

fn sample() -> Vec<Amf0Value> {
    vec![
        Amf0Value::string("onMetaData"),
        Amf0Value::Number(-1.5),
        Amf0Value::Boolean(true),
        Amf0Value::Null,
        Amf0Value::Undefined,
        Amf0Value::Date(1.7e12),
        Amf0Value::EcmaArray(vec![
            ("width".into(), Amf0Value::Number(1280.0)),
            ("encoder".into(), Amf0Value::string("Lavf")),
        ]),
        Amf0Value::StrictArray(vec![
            Amf0Value::Number(1.0),
            Amf0Value::object([("a", Amf0Value::Null)]),
        ]),
        Amf0Value::object([("nested", Amf0Value::object([("deeper", Amf0Value::string("ü"))]))]),
        Amf0Value::String("x".repeat(70_000)),
    ]
}

#[test]
fn round_trips_every_kind() {
    let values = sample();
    let bytes = encode_all(&values);
    assert_eq!(decode_all(&bytes).unwrap(), values);
    assert_eq!(
        bytes[bytes.len() - 70_005],
        0x0C,
        "a long string is written as such"
    );
}

#[test]
fn helpers() {
    let obj = Amf0Value::object([("app", Amf0Value::string("live")), ("n", Amf0Value::Number(3.0))]);
    assert_eq!(obj.object_get("app").and_then(Amf0Value::as_str), Some("live"));
    assert_eq!(obj.object_get("n").and_then(Amf0Value::as_number), Some(3.0));
    assert_eq!(obj.object_get("missing"), None);
    assert_eq!(Amf0Value::Number(1.0).object_get("app"), None);
    assert_eq!(Amf0Value::Null.as_str(), None);
}

#[test]
fn lenient_forms_decode() {
    // Typed object: class name then properties; XML document: a long string; 0x0D: undefined.
    let mut b = vec![0x10, 0, 1, b'C', 0, 1, b'k', 0x05, 0, 0, 0x09];
    b.extend_from_slice(&[0x0F, 0, 0, 0, 2, b'<', b'>', 0x0D]);
    // Invalid UTF-8 is replaced, not refused.
    b.extend_from_slice(&[0x02, 0, 2, 0xFF, b'a']);
    let got = decode_all(&b).unwrap();
    assert_eq!(
        got,
        vec![
            Amf0Value::Object(vec![("k".into(), Amf0Value::Null)]),
            Amf0Value::string("<>"),
            Amf0Value::Undefined,
            Amf0Value::string("\u{FFFD}a"),
        ]
    );
}

#[test]
fn every_truncation_of_valid_input_is_an_error_or_a_prefix() {
    let bytes = encode_all(&sample()[..9]);
    for cut in 0..bytes.len() {
        // Never a panic; either an error or fewer values.
        if let Ok(values) = decode_all(&bytes[..cut]) {
            assert!(values.len() < 9);
        }
    }
}

#[test]
fn malformed_input_is_refused() {
    let cases: &[&[u8]] = &[
        &[0x00, 1, 2],                   // short number
        &[0x02, 0xFF, 0xFF, b'a'],       // string longer than the input
        &[0x0C, 0xFF, 0xFF, 0xFF, 0xFF], // long string of 4 GiB declared
        &[0x0A, 0xFF, 0xFF, 0xFF, 0xFF], // strict array of 4 billion declared
        &[0x08, 0xFF, 0xFF, 0xFF, 0xFF], // ECMA array without properties or end
        &[0x03, 0, 1, b'a'],             // object cut after a key
        &[0x07, 0, 1],                   // reference
        &[0x11, 0x01],                   // AMF3 switch
        &[0x09],                         // stray object end
        &[0x42],                         // unknown marker
        &[0x0B, 0, 0, 0, 0, 0, 0, 0, 0], // date without time zone
    ];
    for case in cases {
        assert!(decode_all(case).is_err(), "{case:?}");
    }
}

#[test]
fn deep_nesting_is_refused() {
    let mut ok = Amf0Value::Null;
    for _ in 0..AMF0_DEPTH_MAX {
        ok = Amf0Value::StrictArray(vec![ok]);
    }
    assert!(decode_all(&encode_all(&[ok.clone()])).is_ok());
    let too_deep = Amf0Value::StrictArray(vec![ok]);
    assert_eq!(
        decode_all(&encode_all(&[too_deep])),
        Err(RtmpError::Amf0("nested too deeply"))
    );
    // A million nested object openings: refused at the limit, no stack overflow.
    let mut bytes = Vec::new();
    for _ in 0..1_000_000 {
        bytes.extend_from_slice(&[0x03, 0, 1, b'k']);
    }
    assert_eq!(decode_all(&bytes), Err(RtmpError::Amf0("nested too deeply")));
}

#[test]
fn value_count_is_limited() {
    let mut bytes = vec![0x0A];
    bytes.extend_from_slice(&(AMF0_VALUES_MAX as u32).to_be_bytes());
    bytes.extend(std::iter::repeat_n(0x05, AMF0_VALUES_MAX));
    assert_eq!(decode_all(&bytes), Err(RtmpError::Amf0("too many values")));
    let just_fits = vec![0x05; AMF0_VALUES_MAX];
    assert_eq!(decode_all(&just_fits).map(|v| v.len()), Ok(AMF0_VALUES_MAX));
}

#[test]
fn long_keys_are_cut_at_a_char_boundary() {
    let key = "é".repeat(40_000); // 80 000 bytes
    let mut out = Vec::new();
    encode(&Amf0Value::Object(vec![(key, Amf0Value::Null)]), &mut out);
    let Amf0Value::Object(props) = &decode_all(&out).unwrap()[0] else {
        panic!("not an object")
    };
    assert_eq!(props[0].0.len(), 65_534);
}
