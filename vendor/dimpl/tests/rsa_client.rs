//! DTLS 1.2: a client with an RSA certificate (GStreamer's webrtcbin and many gateways make
//! one by default) against dimpl's server, whose own certificate and suites stay ECDSA.
//! The client is OpenSSL, signing its CertificateVerify with PKCS#1 v1.5 or PSS; a
//! CertificateVerify whose signature was altered on the wire is refused.

#[path = "ossl/mod.rs"]
mod ossl_helper;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use dimpl::{Config, Dtls, Output};

use ossl_helper::{DtlsCertOptions, DtlsEvent, DtlsPKeyType, OsslDtlsCert, OsslDtlsImpl};

/// What one handshake came to, seen from dimpl's server.
#[derive(Debug, Default)]
struct Outcome {
    server_connected: bool,
    client_connected: bool,
    /// The DER of the certificate the server reported as its peer's.
    server_peer_cert: Option<Vec<u8>>,
    server_keying_material: Option<Vec<u8>>,
    client_keying_material: Option<Vec<u8>>,
    /// The first error the server returned for a client datagram.
    server_error: Option<String>,
    /// The signature algorithm of the client's CertificateVerify, as on the wire.
    certificate_verify_algorithm: Option<u16>,
    /// The error with which the client gave up, if it did.
    client_error: Option<String>,
}

/// Handshake type of CertificateVerify (RFC 5246 §7.4).
const CERTIFICATE_VERIFY: u8 = 15;
/// DTLS record header: type, version (2), epoch (2), sequence (6), length (2).
const RECORD_HEADER_BYTES: usize = 13;
/// DTLS handshake header: type, length (3), message sequence (2), fragment offset (3) and
/// fragment length (3).
const HANDSHAKE_HEADER_BYTES: usize = 12;

/// An OpenSSL client with a 2048-bit RSA certificate. `rsa_sigalg` (OpenSSL's syntax) is
/// the one RSA algorithm it may sign its CertificateVerify with; the ECDSA ones stay in its
/// list, for it to verify the server's ServerKeyExchange.
fn rsa_client(rsa_sigalg: Option<&str>) -> (OsslDtlsImpl, Vec<u8>) {
    let sigalgs = rsa_sigalg.map(|rsa| format!("{rsa}:ECDSA+SHA256:ECDSA+SHA384"));
    let sigalgs = sigalgs.as_deref();
    let cert = OsslDtlsCert::new(DtlsCertOptions {
        pkey_type: DtlsPKeyType::Rsa2048,
        ..Default::default()
    });
    let der = cert.x509.to_der().expect("client cert DER");
    let mut client = OsslDtlsImpl::new_with_sigalgs(cert, None, sigalgs).expect("client");
    client.set_active(true);
    (client, der)
}

fn dimpl_server() -> Dtls {
    let cert = dimpl::certificate::generate_self_signed_certificate().expect("server cert");
    let mut server = Dtls::new_12(Arc::new(Config::default()), cert, Instant::now());
    server.set_active(false);
    server
}

/// The signature algorithm (wire value) of an epoch-0 CertificateVerify in `datagram`, and
/// with `corrupt`, the last byte of its signature flipped.
fn find_certificate_verify(datagram: &mut [u8], corrupt: bool) -> Option<u16> {
    let mut algorithm = None;
    let mut at = 0;
    while at + RECORD_HEADER_BYTES <= datagram.len() {
        let content_type = datagram[at];
        let epoch = u16::from_be_bytes([datagram[at + 3], datagram[at + 4]]);
        let len = u16::from_be_bytes([datagram[at + 11], datagram[at + 12]]) as usize;
        let body = at + RECORD_HEADER_BYTES;
        let end = (body + len).min(datagram.len());
        if content_type == 22
            && epoch == 0
            && end - body > HANDSHAKE_HEADER_BYTES
            && datagram[body] == CERTIFICATE_VERIFY
        {
            let fragment_offset = &datagram[body + 6..body + 9];
            let signed = body + HANDSHAKE_HEADER_BYTES;
            if fragment_offset == [0, 0, 0] {
                algorithm = Some(u16::from_be_bytes([datagram[signed], datagram[signed + 1]]));
            }
            if corrupt {
                datagram[end - 1] ^= 0x01;
            }
        }
        at = body + len;
    }
    algorithm
}

fn handshake(mut client: OsslDtlsImpl, corrupt: bool) -> Outcome {
    let mut server = dimpl_server();
    let mut outcome = Outcome::default();
    let mut client_events = VecDeque::new();
    let mut out_buf = vec![0u8; 2048];

    for _ in 0..40 {
        server.handle_timeout(Instant::now()).expect("server timeout");
        if let Err(e) = client.handle_handshake(&mut client_events) {
            // A client that cannot sign gives up; the server must not have connected.
            outcome.client_error.get_or_insert(format!("{e:?}"));
            break;
        }
        while let Some(datagram) = client.poll_datagram() {
            let mut datagram = datagram.to_vec();
            if let Some(algorithm) = find_certificate_verify(&mut datagram, corrupt) {
                outcome.certificate_verify_algorithm = Some(algorithm);
            }
            if let Err(e) = server.handle_packet(&datagram) {
                outcome.server_error.get_or_insert(e.to_string());
            }
        }
        if outcome.server_error.is_some() {
            break;
        }
        loop {
            match server.poll_output(&mut out_buf) {
                Output::Packet(data) => {
                    // A client that has given up may refuse what follows; only the server's
                    // view is asserted.
                    let _ = client.handle_receive(data, &mut client_events);
                }
                Output::Connected => outcome.server_connected = true,
                Output::PeerCert(cert) => outcome.server_peer_cert = Some(cert.to_vec()),
                Output::KeyingMaterial(km, _) => {
                    outcome.server_keying_material = Some(km.as_ref().to_vec())
                }
                Output::Timeout(_) => break,
                _ => {}
            }
        }
        while let Some(event) = client_events.pop_front() {
            match event {
                DtlsEvent::Connected => outcome.client_connected = true,
                DtlsEvent::SrtpKeyingMaterial(km, _) => outcome.client_keying_material = Some(km),
                _ => {}
            }
        }
        if outcome.server_connected && outcome.client_connected {
            break;
        }
    }
    outcome
}

fn assert_connected_with(outcome: &Outcome, client_der: &[u8]) {
    assert_eq!(outcome.server_error, None);
    assert_eq!(outcome.client_error, None);
    assert!(outcome.server_connected, "server connected: {outcome:?}");
    assert!(outcome.client_connected, "client connected: {outcome:?}");
    assert_eq!(
        outcome.server_peer_cert.as_deref(),
        Some(client_der),
        "the server reports the client's RSA certificate, for its fingerprint check"
    );
    assert!(outcome.server_keying_material.is_some());
    assert_eq!(
        outcome.server_keying_material, outcome.client_keying_material,
        "both ends export the same SRTP keys"
    );
}

#[test]
fn rsa_client_with_openssl_defaults_connects() {
    let (client, der) = rsa_client(None);
    let outcome = handshake(client, false);
    assert_connected_with(&outcome, &der);
    // OpenSSL 3 prefers PSS.
    assert_eq!(outcome.certificate_verify_algorithm, Some(0x0804));
}

#[test]
fn rsa_client_signing_pkcs1_sha256_connects() {
    let (client, der) = rsa_client(Some("RSA+SHA256"));
    let outcome = handshake(client, false);
    assert_connected_with(&outcome, &der);
    assert_eq!(outcome.certificate_verify_algorithm, Some(0x0401));
}

#[test]
fn rsa_client_signing_pkcs1_sha384_connects() {
    let (client, der) = rsa_client(Some("RSA+SHA384"));
    let outcome = handshake(client, false);
    assert_connected_with(&outcome, &der);
    assert_eq!(outcome.certificate_verify_algorithm, Some(0x0501));
}

#[test]
fn rsa_client_signing_pss_sha256_connects() {
    let (client, der) = rsa_client(Some("rsa_pss_rsae_sha256"));
    let outcome = handshake(client, false);
    assert_connected_with(&outcome, &der);
    assert_eq!(outcome.certificate_verify_algorithm, Some(0x0804));
}

#[test]
fn rsa_client_signing_pss_sha384_connects() {
    let (client, der) = rsa_client(Some("rsa_pss_rsae_sha384"));
    let outcome = handshake(client, false);
    assert_connected_with(&outcome, &der);
    assert_eq!(outcome.certificate_verify_algorithm, Some(0x0805));
}

#[test]
fn rsa_client_with_an_altered_certificate_verify_is_refused() {
    for sigalgs in ["RSA+SHA256", "rsa_pss_rsae_sha256"] {
        let (client, _) = rsa_client(Some(sigalgs));
        let outcome = handshake(client, true);
        assert!(
            outcome.certificate_verify_algorithm.is_some(),
            "{sigalgs}: the flight carried a CertificateVerify"
        );
        assert!(!outcome.server_connected, "{sigalgs}: {outcome:?}");
        let error = outcome.server_error.expect("the server refused the handshake");
        assert!(
            error.contains("RSA signature verification failed"),
            "{sigalgs}: {error}"
        );
    }
}

#[test]
fn rsa_client_signing_with_sha1_is_refused() {
    // RSA+SHA1 is not in the CertificateRequest, so a client limited to it cannot sign a
    // CertificateVerify the server accepts: OpenSSL gives up, or the server refuses it.
    let (client, _) = rsa_client(Some("RSA+SHA1"));
    let outcome = handshake(client, false);
    assert!(!outcome.server_connected, "{outcome:?}");
}

#[test]
fn ecdsa_client_still_connects() {
    let cert = OsslDtlsCert::new(DtlsCertOptions::default());
    let der = cert.x509.to_der().expect("client cert DER");
    let mut client = OsslDtlsImpl::new(cert).expect("client");
    client.set_active(true);
    let outcome = handshake(client, false);
    assert_connected_with(&outcome, &der);
}
