//! Tests of the handshake: simple and digest (schema 0 and 1) server answers, the client's
//! simple handshake against our server, version errors and byte-at-a-time feeding.

use super::digest::{self, Schema, BLOCK_BYTES, DIGEST_BYTES};
use super::handshake::{s1_schema, ClientHandshake, HandshakeStatus, ServerHandshake};
use super::RtmpError;

fn block(seed: u8) -> [u8; BLOCK_BYTES] {
    let mut b = [0u8; BLOCK_BYTES];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    b
}

/// Feeds `input` to a server handshake in one go; returns (output, leftover).
fn run_server(input: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut hs = ServerHandshake::new();
    let mut out = Vec::new();
    match hs.feed(input, &mut out).unwrap() {
        HandshakeStatus::Done { leftover } => (out, leftover),
        HandshakeStatus::InProgress => panic!("handshake not finished"),
    }
}

fn split_reply(out: &[u8]) -> ([u8; BLOCK_BYTES], [u8; BLOCK_BYTES]) {
    assert_eq!(out.len(), 1 + 2 * BLOCK_BYTES);
    assert_eq!(out[0], 3);
    let mut s1 = [0u8; BLOCK_BYTES];
    let mut s2 = [0u8; BLOCK_BYTES];
    s1.copy_from_slice(&out[1..1 + BLOCK_BYTES]);
    s2.copy_from_slice(&out[1 + BLOCK_BYTES..]);
    (s1, s2)
}

#[test]
fn simple_handshake_echoes_c1_and_returns_leftover() {
    let c1 = block(7);
    let mut input = vec![3];
    input.extend_from_slice(&c1);
    input.extend_from_slice(&block(9)); // C2
    input.extend_from_slice(b"chunks");
    let (out, leftover) = run_server(&input);
    let (s1, s2) = split_reply(&out);
    assert_eq!(&s1[4..8], &[0, 0, 0, 0]);
    assert_eq!(s2, c1);
    assert_eq!(leftover, b"chunks");
}

fn digest_handshake(schema: Schema) {
    let mut c1 = block(1);
    c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
    let c1_digest = digest::imprint_digest(&mut c1, schema, digest::PLAYER_KEY_TEXT);
    assert!(digest::find_digest(&c1, digest::PLAYER_KEY_TEXT).is_some());
    let mut input = vec![3];
    input.extend_from_slice(&c1);
    input.extend_from_slice(&block(2));
    let (out, leftover) = run_server(&input);
    assert!(leftover.is_empty());
    let (s1, s2) = split_reply(&out);
    assert_eq!(s1_schema(&s1), Some(schema));
    assert_ne!(&s1[4..8], &[0, 0, 0, 0]);
    // S2's last 32 bytes sign its first 1504 with HMAC(full server key, C1 digest).
    let key = digest::hmac_sha256(&digest::server_key_full(), &[&c1_digest]);
    let signature = digest::hmac_sha256(&key, &[&s2[..BLOCK_BYTES - DIGEST_BYTES]]);
    assert_eq!(&s2[BLOCK_BYTES - DIGEST_BYTES..], &signature);
}

#[test]
fn digest_handshake_schema_0() {
    digest_handshake(Schema::Zero);
}

#[test]
fn digest_handshake_schema_1() {
    digest_handshake(Schema::One);
}

#[test]
fn wrong_version_is_refused_at_once() {
    let mut hs = ServerHandshake::new();
    let mut out = Vec::new();
    assert_eq!(hs.feed(&[6], &mut out), Err(RtmpError::BadVersion(6)));
    assert!(out.is_empty());
    let mut client = ClientHandshake::new();
    assert_eq!(
        client.feed(b"GET / HTTP/1.1", &mut out),
        Err(RtmpError::BadVersion(b'G'))
    );
}

#[test]
fn byte_at_a_time_feeding() {
    let c1 = block(3);
    let mut input = vec![3];
    input.extend_from_slice(&c1);
    input.extend_from_slice(&block(4));
    input.push(0xAB);
    let mut hs = ServerHandshake::new();
    let mut out = Vec::new();
    let mut leftover = None;
    for (i, byte) in input.iter().enumerate() {
        match hs.feed(std::slice::from_ref(byte), &mut out).unwrap() {
            HandshakeStatus::InProgress => assert!(i < input.len() - 2),
            HandshakeStatus::Done { leftover: rest } => {
                leftover.get_or_insert(rest);
            }
        }
        if i < BLOCK_BYTES {
            assert!(out.is_empty(), "answered before C1 was complete");
        }
    }
    assert!(hs.is_done());
    // The last byte arrived after Done: it is handed back as leftover of that call.
    assert_eq!(leftover, Some(Vec::new()));
    let (_, s2) = split_reply(&out);
    assert_eq!(s2, c1);
}

#[test]
fn client_and_server_complete_against_each_other() {
    let mut client = ClientHandshake::new();
    let mut server = ServerHandshake::new();
    let mut to_server = Vec::new();
    client.start(&mut to_server);
    assert_eq!(to_server.len(), 1 + BLOCK_BYTES);
    assert_eq!(
        &to_server[5..9],
        &[0, 0, 0, 0],
        "simple handshake: zero version field"
    );
    let mut to_client = Vec::new();
    assert_eq!(
        server.feed(&to_server, &mut to_client).unwrap(),
        HandshakeStatus::InProgress
    );
    to_server.clear();
    to_client.extend_from_slice(b"x");
    let status = client.feed(&to_client, &mut to_server).unwrap();
    assert_eq!(
        status,
        HandshakeStatus::Done {
            leftover: b"x".to_vec()
        }
    );
    assert_eq!(to_server.len(), BLOCK_BYTES, "C2");
    let mut ignored = Vec::new();
    let status = server.feed(&to_server, &mut ignored).unwrap();
    assert_eq!(status, HandshakeStatus::Done { leftover: Vec::new() });
    assert!(client.is_done() && server.is_done());
}
