//! WHIP and WHEP over HTTP, as a client sees them: the CORS preflight (`Accept-Post`, the
//! exposed `Location`, no `Link`), `201 Created` with an answer, its `Location` and a `Link`
//! per `--ice-server`, `DELETE`, `PATCH` refused with `405`, Bearer tokens under `--auth jwt` (401
//! without, 403 for another login or room), and each refusal's status and JSON reason. Offers
//! are Chromium's (`tests/offers/`); the media itself is tested in `tests/clients.rs`.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{Io, Server};
use webcall::auth::{mint, now_unix, TokenRequest};

const PUBLISH_OFFER: &str = include_str!("offers/chromium_publish.sdp");
const PLAY_OFFER: &str = include_str!("offers/chromium_play.sdp");
const ORIGIN: &str = "http://page.example";

fn key_file() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webcall-whip-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("jwt.key");
    std::fs::write(
        &key,
        format!("whip-test-secret-{}-0123456789abcdef\n", uuid::Uuid::new_v4()),
    )
    .unwrap();
    key
}

fn token(key: &Path, room: &str, login: &str, publish: bool, subscribe: bool) -> String {
    let request = TokenRequest {
        room: room.to_owned(),
        login: login.to_owned(),
        publish,
        subscribe,
        chat: false,
        record: false,
        admin: false,
        hidden: false,
        ttl_secs: 600,
        issuer: None,
        audience: None,
    };
    mint(key, &request, now_unix()).expect("mint a token")
}

/// The values of every header `name` (lowercase) in a response head.
fn headers<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

fn reason(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).expect("a JSON reason");
    value["error"].as_str().expect("an error text").to_owned()
}

#[tokio::test]
async fn whip_and_whep_speak_http_as_the_rfc_says() {
    let key = key_file();
    let key_arg = key.to_str().unwrap();
    let mut server = Server::start(
        Io::Mmsg,
        1,
        &[
            "--auth",
            "jwt",
            "--jwt-key",
            key_arg,
            "--ice-server",
            "stun:stun.example.net:3478",
            "--ice-server",
            "turn:turn.example.net:3478?transport=udp;username=alice;credential=s3cret",
        ],
    );
    let sdp = [("Content-Type", "application/sdp")];

    // The preflight of a page on another origin.
    let (status, head, _) = server
        .http(
            "OPTIONS",
            "/whip/room/r1/alice",
            &[
                ("Origin", ORIGIN),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type, authorization"),
            ],
            b"",
        )
        .await;
    assert_eq!(status, 204, "{head}");
    assert_eq!(headers(&head, "accept-post"), ["application/sdp"]);
    assert_eq!(headers(&head, "access-control-allow-origin"), [ORIGIN]);
    assert!(headers(&head, "access-control-allow-methods")[0].contains("DELETE"));
    assert!(headers(&head, "access-control-allow-headers")[0].contains("authorization"));
    assert!(headers(&head, "access-control-expose-headers")[0].contains("location"));
    assert!(
        headers(&head, "link").is_empty(),
        "TURN credentials are not given to an unauthenticated preflight"
    );

    // Refusals before any media: each with its status and the protocol's reason.
    let alice = token(&key, "r1", "alice", true, true);
    let bearer = format!("Bearer {alice}");
    let auth = |ct: &'static str| vec![("Content-Type", ct), ("Authorization", bearer.as_str())];
    let (status, head, body) = server
        .http("POST", "/whip/room/r1/alice", &sdp, PUBLISH_OFFER.as_bytes())
        .await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (401, "Restricted access: a token is required")
    );
    assert_eq!(headers(&head, "www-authenticate"), ["Bearer"]);
    let (status, _, body) = server
        .http(
            "POST",
            "/whip/room/r1/mallory",
            &auth("application/sdp"),
            PUBLISH_OFFER.as_bytes(),
        )
        .await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (403, "Restricted access: login does not match the token")
    );
    let (status, _, body) = server
        .http(
            "POST",
            "/whip/room/r2/alice",
            &auth("application/sdp"),
            PUBLISH_OFFER.as_bytes(),
        )
        .await;
    assert_eq!((status, reason(&body).as_str()), (403, "Restricted access"));
    let (status, _, _) = server
        .http(
            "POST",
            "/whip/room/r1/alice",
            &auth("application/json"),
            PUBLISH_OFFER.as_bytes(),
        )
        .await;
    assert_eq!(status, 415);
    let huge = vec![b'a'; 70 * 1024];
    let (status, _, _) = server
        .http("POST", "/whip/room/r1/alice", &auth("application/sdp"), &huge)
        .await;
    assert_eq!(status, 413);
    let (status, _, body) = server
        .http(
            "POST",
            "/whip/room/r1/alice",
            &auth("application/sdp"),
            b"not an offer",
        )
        .await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (400, "Invalid SDP: SDP is empty or not an SDP")
    );
    let (status, _, body) = server
        .http(
            "POST",
            "/whep/room/r1/nobody",
            &auth("application/sdp"),
            PLAY_OFFER.as_bytes(),
        )
        .await;
    assert_eq!((status, reason(&body).as_str()), (404, "Stream not found"));

    // A publish into the room: 201, the answer, its Location, the ICE servers.
    let (status, head, body) = server
        .http(
            "POST",
            "/whip/room/r1/alice",
            &[
                ("Content-Type", "application/sdp"),
                ("Authorization", &bearer),
                ("Origin", ORIGIN),
            ],
            PUBLISH_OFFER.as_bytes(),
        )
        .await;
    assert_eq!(status, 201, "{head}\n{}", String::from_utf8_lossy(&body));
    assert_eq!(headers(&head, "content-type"), ["application/sdp"]);
    assert_eq!(headers(&head, "access-control-allow-origin"), [ORIGIN]);
    assert_eq!(
        headers(&head, "link"),
        [
            "<stun:stun.example.net:3478>; rel=\"ice-server\"",
            "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"alice\"; \
             credential=\"s3cret\"; credential-type=\"password\""
        ]
    );
    let answer = String::from_utf8(body).unwrap();
    assert!(
        answer.starts_with("v=0") && answer.contains("a=ice-lite"),
        "{answer}"
    );
    let location = headers(&head, "location")[0].to_owned();
    assert!(location.starts_with("/whip/resource/"), "{location}");

    // The same participant again (an encoder reconnecting): like an RTMP encoder, the newer
    // session takes over, and the older resource is gone.
    let (status, head, _) = server
        .http(
            "POST",
            "/whip/room/r1/alice",
            &auth("application/sdp"),
            PUBLISH_OFFER.as_bytes(),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _, _) = server.http("DELETE", &location, &[], b"").await;
    assert_eq!(status, 404, "the taken-over resource ended");
    let location = headers(&head, "location")[0].to_owned();
    // A plain stream's name, though, is not taken over: a second publisher is refused.
    let encoder = format!("Bearer {}", token(&key, "*", "enc", true, false));
    let plain = [
        ("Content-Type", "application/sdp"),
        ("Authorization", encoder.as_str()),
    ];
    let (status, head, _) = server
        .http("POST", "/whip/cam", &plain, PUBLISH_OFFER.as_bytes())
        .await;
    assert_eq!(status, 201, "{head}");
    let (status, _, body) = server
        .http("POST", "/whip/cam", &plain, PUBLISH_OFFER.as_bytes())
        .await;
    assert_eq!(
        (status, reason(&body).as_str()),
        (409, "Stream name is already in use")
    );
    // A player of a stream that has not reached PUBLISHING (no media: nothing connects here).
    let bob = format!("Bearer {}", token(&key, "r1", "bob", false, true));
    let play = [
        ("Content-Type", "application/sdp"),
        ("Authorization", bob.as_str()),
    ];
    let (status, _, body) = server
        .http("POST", "/whep/room/r1/alice", &play, PLAY_OFFER.as_bytes())
        .await;
    assert_eq!((status, reason(&body).as_str()), (404, "Stream not found"));

    // Trickle is not supported; DELETE ends the resource, once.
    let (status, head, _) = server
        .http(
            "PATCH",
            &location,
            &[("Content-Type", "application/trickle-ice-sdpfrag")],
            b"a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n",
        )
        .await;
    assert_eq!(status, 405);
    assert!(headers(&head, "allow")[0].contains("DELETE"));
    let (status, _, _) = server.http("DELETE", &location, &[], b"").await;
    assert_eq!(status, 200);
    let (status, _, _) = server.http("DELETE", &location, &[], b"").await;
    assert_eq!(status, 404);
    let (status, _, _) = server.http("PATCH", &location, &[], b"").await;
    assert_eq!(status, 404, "an ended resource has nothing to patch");
    let (status, _, _) = server
        .http(
            "POST",
            "/whip/room/r1/alice",
            &auth("application/sdp"),
            PUBLISH_OFFER.as_bytes(),
        )
        .await;
    assert_eq!(status, 201, "the login is free again after DELETE");

    server.stop();
}
