//! `docs/rest.md` runs as written: every ```sh block, in order, against a real server holding
//! the room the document describes (`alice` publishing `alice-camera` in `r1`, `bob` playing
//! it, `carol` and `dave` present, `erin` outside any room), with `127.0.0.1:8080` replaced by
//! the test server's address. Each block must exit 0 (`curl -f` fails on an HTTP error); then
//! what the calls did is checked on the clients' side, and the drain at the end exits 0.

mod support;

use std::time::Duration;

use support::*;
use webcall_loadtest::{
    play, publish, PlayCodecs, PublishOptions, RoomEventKind, SessionEvent, StreamStatus, WcsSession,
};

const DOC: &str = include_str!("../docs/rest.md");

/// The ```sh blocks of the document, in order.
fn shell_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(lines), "```") => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), _) => lines.push(line),
            (None, _) => {}
        }
    }
    blocks
}

/// The `info` of the first `fail` the session received.
async fn fail_info(session: &WcsSession) -> String {
    match session
        .wait_event(T, |e| matches!(e, SessionEvent::Fail { .. }))
        .await
    {
        Ok(SessionEvent::Fail { info, .. }) => info.unwrap_or_default(),
        other => panic!("a fail: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_curl_example_in_docs_rest_md_runs_and_does_what_it_says() {
    let blocks = shell_blocks(DOC);
    assert!(blocks.len() >= 10, "the document's examples: {}", blocks.len());
    let mut server = Server::start(Io::Mmsg, 1, &["--drain-timeout", "1s"]);
    let alice = server.connect("alice").await;
    let bob = server.connect("bob").await;
    let carol = server.connect("carol").await;
    let dave = server.connect("dave").await;
    let erin = server.connect("erin").await;
    for session in [&alice, &bob, &carol, &dave] {
        session.join("r1").await.unwrap();
    }
    let publisher = publish(&alice, PublishOptions::new("alice-camera").room("r1"))
        .await
        .expect("alice publishes");
    let player = play(&bob, "alice-camera", Some("r1".into()), PlayCodecs::browser())
        .await
        .expect("bob plays");
    assert_flowing(&player, 20, "before the examples").await;

    let work = std::env::temp_dir().join(format!("webcall-rest-docs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).unwrap();
    let address = server.http.to_string();
    for (i, block) in blocks.iter().enumerate() {
        let script = block.replace("127.0.0.1:8080", &address);
        let (script_run, work_dir) = (script.clone(), work.clone());
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script_run])
                .current_dir(&work_dir)
                .output()
                .expect("bash")
        })
        .await
        .expect("the example ran");
        assert!(
            out.status.success(),
            "example {i} of docs/rest.md failed:\n{script}\n--- stdout\n{}\n--- stderr\n{}\n--- server\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        if script.contains("/metrics") {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("webcall_participants 4"), "{text}");
        }
    }
    // What the examples did, as the clients saw it.
    let muted = bob
        .wait_room_event(
            "r1",
            T,
            |e| matches!(e, RoomEventKind::Message { from, .. } if from == "server"),
        )
        .await
        .expect("the room hears the mute from `server`");
    assert!(
        format!("{muted:?}").contains("alice's audio was muted"),
        "{muted:?}"
    );
    assert_eq!(fail_info(&carol).await, "Kicked by moderator");
    assert_eq!(fail_info(&dave).await, "Kicked by the administrator");
    assert_eq!(fail_info(&erin).await, "Terminated by the administrator");
    let unpublished = publisher
        .wait_status(StreamStatus::Unpublished, T)
        .await
        .expect("the terminated stream is UNPUBLISHED");
    assert_eq!(unpublished.info.as_deref(), Some("Stopped by the administrator"));
    player
        .wait_status(StreamStatus::Stopped, T)
        .await
        .expect("its player is STOPPED");
    let downloaded: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    assert_eq!(
        downloaded.len(),
        1,
        "the recording was downloaded: {downloaded:?}"
    );
    // The last example drains the server.
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the drain ends the process");
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&work);
}
