//! Story tests of the directory: sessions, rooms and streams driven through real protocol
//! frames and real SDP offers, checking the frames and worker commands that come out.

use std::time::Instant;

use serde_json::Value;

use super::*;
use crate::worker::commands::{PeerFailure, PeerRole};

const PUBLISH_OFFER: &str = include_str!("../../sdp/testdata/chrome_publish_offer.sdp");
const PLAY_OFFER: &str = include_str!("../../sdp/testdata/chrome_play_offer.sdp");

struct Harness {
    directory: Directory,
    frames: Vec<(SessionId, Value)>,
    commands: Vec<(WorkerId, Command)>,
    records: Vec<super::RecordStart>,
    webhooks: Vec<crate::control::webhooks::WebhookEvent>,
}

impl Harness {
    fn new(capacity: usize) -> Self {
        crate::sdp::install_crypto_provider();
        let cert = crate::sdp::generate_dtls_cert().unwrap();
        let envs = (0..2)
            .map(|i| PeerEnv {
                candidate: format!("127.0.0.1:{}", 31000 + i).parse().unwrap(),
                dtls_cert: cert.clone(),
            })
            .collect();
        let limits = DirectoryLimits {
            room_capacity: capacity,
            session_streams_max: 8,
            duplicate_login: Default::default(),
        };
        Harness {
            directory: Directory::new(limits, envs),
            frames: Vec::new(),
            commands: Vec::new(),
            records: Vec::new(),
            webhooks: Vec::new(),
        }
    }

    pub(super) fn collect(&mut self) {
        for effect in self.directory.take_effects() {
            match effect {
                Effect::Send(id, message) => self
                    .frames
                    .push((id, serde_json::from_str(&message.to_json()).unwrap())),
                Effect::Worker(worker, command) => self.commands.push((worker, command)),
                Effect::RecordFinish(..) | Effect::Disconnect(_) | Effect::Revoke(_) | Effect::GoAway(_) => {}
                Effect::RecordStart(start) => self.records.push(*start),
                Effect::Webhook(event) => self.webhooks.push(event),
            }
        }
    }

    fn send(&mut self, id: SessionId, frame: Value) {
        self.directory
            .handle_frame(id, &frame.to_string(), Instant::now());
        self.collect();
    }

    fn connect(&mut self, id: u64, login: &str) -> SessionId {
        let id = SessionId(id);
        self.directory.open_session(id);
        self.send(id, serde_json::json!({"message": "connection", "data": [{"appKey": "roomApp", "custom": {"login": login}}]}));
        id
    }

    fn command(&mut self, id: SessionId, command: &str, options: Value) -> Value {
        let op = format!("op-{}", self.frames.len());
        self.send(
            id,
            serde_json::json!({"message": "sendData", "data": [{"operationId": op, "payload": {"command": command, "options": options}}]}),
        );
        self.frames
            .iter()
            .find(|(s, f)| *s == id && f["message"] == "DataStatusEvent" && f["data"][0]["operationId"] == op)
            .unwrap()
            .1["data"][0]
            .clone()
    }

    fn stream(
        &mut self,
        id: SessionId,
        message: &str,
        msid: &str,
        name: &str,
        room: Option<&str>,
        sdp: &str,
    ) {
        let mut data = serde_json::json!({"mediaSessionId": msid, "name": name, "sdp": sdp});
        if let Some(room) = room {
            data["custom"] = serde_json::json!({"name": room});
        }
        self.send(id, serde_json::json!({"message": message, "data": [data]}));
    }

    /// The frames a session got, drained.
    fn take(&mut self, id: SessionId) -> Vec<Value> {
        let (mine, rest) = std::mem::take(&mut self.frames)
            .into_iter()
            .partition(|(s, _)| *s == id);
        self.frames = rest;
        mine.into_iter().map(|(_, f)| f).collect()
    }

    fn room_events(&mut self, id: SessionId) -> Vec<(String, Value)> {
        self.take(id)
            .into_iter()
            .filter(|f| f["message"] == "OnDataEvent")
            .map(|f| {
                (
                    f["data"][0]["payload"]["name"].as_str().unwrap().to_owned(),
                    f["data"][0]["payload"]["info"].clone(),
                )
            })
            .collect()
    }

    fn statuses(&mut self, id: SessionId) -> Vec<(String, Option<String>)> {
        self.take(id)
            .into_iter()
            .filter(|f| f["message"] == "notifyStreamStatusEvent")
            .map(|f| {
                (
                    f["data"][0]["status"].as_str().unwrap().to_owned(),
                    f["data"][0]["info"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    fn added_peers(&mut self) -> Vec<(WorkerId, PeerId, PeerRole)> {
        std::mem::take(&mut self.commands)
            .into_iter()
            .filter_map(|(w, c)| match c {
                Command::EndpointAdd(add) => Some((w, add.peer, add.role)),
                _ => None,
            })
            .collect()
    }

    fn notify(&mut self, notification: Notification) {
        self.directory.handle_notification(notification);
        self.collect();
    }
}

#[test]
fn connection_establishes_and_commands_before_it_fail() {
    let mut h = Harness::new(16);
    let early = SessionId(9);
    h.directory.open_session(early);
    let status = {
        h.send(early, serde_json::json!({"message": "sendData", "data": [{"operationId": "o1", "payload": {"command": "join", "options": {"name": "r"}}}]}));
        h.take(early).pop().unwrap()
    };
    assert_eq!(status["data"][0]["status"], "FAILED");
    let alice = h.connect(1, "alice");
    let frames = h.take(alice);
    assert_eq!(frames[0]["message"], "getUserData");
    h.send(alice, serde_json::json!({"message": "connection", "data": [{}]}));
    assert_eq!(h.take(alice)[0]["message"], "fail");
}

#[test]
fn two_participants_join_publish_play_and_leave() {
    let mut h = Harness::new(16);
    let alice = h.connect(1, "alice");
    let bob = h.connect(2, "bob");
    assert_eq!(
        h.command(alice, "join", serde_json::json!({"name": "r1"}))["status"],
        "ACCEPTED"
    );
    let events = h.room_events(alice);
    assert_eq!(events, vec![("STATE".to_owned(), serde_json::json!([]))]);

    h.stream(
        alice,
        "publishStream",
        "m1",
        "r1-alice-0001",
        Some("r1"),
        PUBLISH_OFFER,
    );
    assert!(h
        .take(alice)
        .iter()
        .any(|f| f["message"] == "setRemoteSDP" && f["data"][0] == "m1"));
    let (worker, publisher, role) = h.added_peers().pop().unwrap();
    assert_eq!(role, PeerRole::Publisher);
    h.notify(Notification::PeerConnected { peer: publisher });
    assert_eq!(h.statuses(alice), vec![("PUBLISHING".to_owned(), None)]);

    assert_eq!(
        h.command(bob, "join", serde_json::json!({"name": "r1"}))["status"],
        "ACCEPTED"
    );
    let state = h.room_events(bob);
    assert_eq!(
        state,
        vec![(
            "STATE".to_owned(),
            serde_json::json!([{"login": "alice", "name": "r1-alice-0001"}])
        )]
    );
    assert_eq!(
        h.room_events(alice),
        vec![("JOINED".to_owned(), serde_json::json!("bob"))]
    );

    h.stream(bob, "playStream", "m2", "r1-alice-0001", Some("r1"), PLAY_OFFER);
    let (player_worker, player, role) = h.added_peers().pop().unwrap();
    assert_eq!(player_worker, worker, "players live on the publisher's worker");
    assert_eq!(role, PeerRole::Player { publisher });
    h.notify(Notification::PeerConnected { peer: player });
    assert_eq!(h.statuses(bob), vec![("PLAYING".to_owned(), None)]);

    let sent = h.command(
        bob,
        "sendMessage",
        serde_json::json!({"roomConfig": {"name": "r1"}, "to": "alice", "text": "hi"}),
    );
    assert_eq!(sent["status"], "ACCEPTED");
    assert_eq!(
        h.room_events(alice),
        vec![(
            "MESSAGE".to_owned(),
            serde_json::json!({"from": "bob", "text": "hi"})
        )]
    );

    h.stream(alice, "unPublishStream", "m1", "r1-alice-0001", None, "");
    assert_eq!(h.statuses(alice), vec![("UNPUBLISHED".to_owned(), None)]);
    let bob_frames = h.take(bob);
    assert!(bob_frames
        .iter()
        .any(|f| f["data"][0]["status"] == "STOPPED" && f["data"][0]["info"] == "Stopped by publisher stop"));
    assert!(bob_frames
        .iter()
        .any(|f| f["data"][0]["payload"]["name"] == "UNPUBLISHED"));

    assert_eq!(
        h.command(alice, "leave", serde_json::json!({"name": "r1"}))["status"],
        "ACCEPTED"
    );
    assert_eq!(
        h.room_events(bob),
        vec![("LEFT".to_owned(), serde_json::json!("alice"))]
    );
}

#[test]
fn wrong_state_commands_get_clear_errors() {
    let mut h = Harness::new(16);
    let alice = h.connect(1, "alice");
    h.take(alice);
    h.stream(
        alice,
        "publishStream",
        "m1",
        "r1-alice-0001",
        Some("r1"),
        PUBLISH_OFFER,
    );
    assert_eq!(
        h.statuses(alice),
        vec![("FAILED".to_owned(), Some("Not joined to room 'r1'".to_owned()))]
    );
    h.stream(alice, "playStream", "m2", "nope", None, PLAY_OFFER);
    assert_eq!(
        h.statuses(alice),
        vec![("FAILED".to_owned(), Some("Stream not found".to_owned()))]
    );
    assert_eq!(
        h.command(alice, "leave", serde_json::json!({"name": "r1"}))["status"],
        "FAILED"
    );
    h.stream(alice, "publishStream", "m3", "plain", None, "garbage");
    assert_eq!(h.statuses(alice)[0].0, "FAILED");
    h.stream(alice, "publishStream", "m4", "plain", None, PUBLISH_OFFER);
    let bob = h.connect(2, "bob");
    h.stream(bob, "publishStream", "m1", "plain", None, PUBLISH_OFFER);
    assert_eq!(
        h.statuses(bob),
        vec![(
            "FAILED".to_owned(),
            Some("Stream name is already in use".to_owned())
        )]
    );
    h.send(bob, serde_json::json!({"message": "bogus", "data": [{}]}));
    assert_eq!(h.take(bob)[0]["message"], "fail");
    assert_eq!(h.directory.counts().peers, 1);
}

#[test]
fn a_full_room_refuses_with_a_reason() {
    let mut h = Harness::new(2);
    for (i, login) in ["a", "b"].iter().enumerate() {
        let id = h.connect(i as u64 + 1, login);
        assert_eq!(
            h.command(id, "join", serde_json::json!({"name": "small"}))["status"],
            "ACCEPTED"
        );
    }
    let c = h.connect(3, "c");
    let status = h.command(c, "join", serde_json::json!({"name": "small"}));
    assert_eq!(status["status"], "FAILED");
    assert!(status["info"].as_str().unwrap().contains("Room is full"));
}

#[test]
fn disconnect_frees_everything_and_tells_the_room() {
    let mut h = Harness::new(16);
    let alice = h.connect(1, "alice");
    let bob = h.connect(2, "bob");
    h.command(alice, "join", serde_json::json!({"name": "r"}));
    h.command(bob, "join", serde_json::json!({"name": "r"}));
    h.stream(alice, "publishStream", "m1", "r-alice", Some("r"), PUBLISH_OFFER);
    let (_, publisher, _) = h.added_peers().pop().unwrap();
    h.notify(Notification::PeerConnected { peer: publisher });
    h.stream(bob, "playStream", "m2", "r-alice", Some("r"), PLAY_OFFER);
    h.take(bob);
    h.directory.close_session(alice);
    h.collect();
    let events: Vec<String> = h.take(bob).iter().map(|f| f.to_string()).collect();
    assert!(events.iter().any(|e| e.contains("STOPPED")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("UNPUBLISHED")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("LEFT")), "{events:?}");
    let removed = h
        .commands
        .iter()
        .filter(|(_, c)| matches!(c, Command::PeerRemove { .. }))
        .count();
    assert_eq!(removed, 2);
    h.directory.close_session(bob);
    assert_eq!(h.directory.counts(), DirectoryCounts::default());
}

#[test]
fn a_failed_publisher_fails_for_its_session_and_stops_players() {
    let mut h = Harness::new(16);
    let alice = h.connect(1, "alice");
    h.stream(alice, "publishStream", "m1", "solo", None, PUBLISH_OFFER);
    let (_, publisher, _) = h.added_peers().pop().unwrap();
    h.take(alice);
    h.notify(Notification::PeerFailed {
        peer: publisher,
        failure: PeerFailure::Silence,
    });
    assert_eq!(
        h.statuses(alice),
        vec![("FAILED".to_owned(), Some("Failed by ICE keep alive".to_owned()))]
    );
    assert_eq!(h.directory.counts().published, 0);
}

fn record_policy(resume_window: std::time::Duration) -> RecordPolicy {
    RecordPolicy {
        template: std::sync::Arc::new(crate::record::template::NameTemplate::default()),
        room_timeline: true,
        resume_window,
    }
}

#[test]
fn a_recorded_publish_names_its_file_and_says_why_a_recording_failed() {
    let mut h = Harness::new(4);
    h.directory
        .set_record_policy(record_policy(std::time::Duration::from_secs(10)));
    let alice = h.connect(1, "alice");
    // Joining with record records every stream of the session in that room.
    assert_eq!(
        h.command(alice, "join", serde_json::json!({"name": "r", "record": true}))["status"],
        "ACCEPTED"
    );
    h.stream(alice, "publishStream", "m1", "r-alice", Some("r"), PUBLISH_OFFER);
    let start = h.records.pop().expect("a recording started");
    assert!(h.records.is_empty());
    assert_eq!(start.writer_key, "r", "the room's writer");
    let file = start.open.meta.file.clone();
    assert!(file.starts_with("stream-m1-") && file.ends_with(".mp4"), "{file}");
    assert_eq!(start.open.values.session_id.len(), 26, "WCS-form session id");
    assert!(start.open.room_timeline);
    let (_, publisher, _) = h.added_peers().pop().unwrap();
    assert_eq!(start.publisher, publisher);
    // The writer could not start it: said on PUBLISHING, not before.
    h.directory
        .recording_failed(start.open.id, &crate::record::RecordFailure::DiskFull);
    h.collect();
    assert!(h.statuses(alice).is_empty(), "nothing before PUBLISHING");
    h.notify(Notification::PeerConnected { peer: publisher });
    let frames = h.take(alice);
    let publishing = frames
        .iter()
        .find(|f| f["data"][0]["status"] == "PUBLISHING")
        .unwrap();
    assert_eq!(publishing["data"][0]["info"], "Recording failed: disk full");

    // REST: start it again by mediaSessionId, then a second start conflicts.
    let selector = StreamSelector::MediaSessionId(MediaSessionId::from("m1"));
    let again = h.directory.start_recording_of(&selector, Instant::now()).unwrap();
    assert_eq!(again, file, "the same name: same ids");
    assert_eq!(
        h.directory.start_recording_of(&selector, Instant::now()),
        Err(RecordingError::AlreadyRecording)
    );
    h.collect();
    let tap = h.records.pop().unwrap().tap;
    // A failure while publishing: PUBLISHING with the reason and the file; the tap goes.
    let id = match h
        .directory
        .published
        .get(&StreamName::new("r-alice"))
        .and_then(|p| p.recording.clone())
    {
        Some(recording) => recording.id,
        None => panic!("recording"),
    };
    h.directory
        .recording_failed(id, &crate::record::RecordFailure::Write);
    h.collect();
    let frames = h.take(alice);
    let status = &frames
        .iter()
        .find(|f| f["message"] == "notifyStreamStatusEvent")
        .unwrap()["data"][0];
    assert_eq!(status["status"], "PUBLISHING");
    assert_eq!(status["info"], "Recording failed: write error");
    assert_eq!(status["recordName"], file.as_str());
    assert!(h
        .commands
        .iter()
        .any(|(_, c)| matches!(c, Command::PeerRemove { peer } if *peer == tap)));
    assert_eq!(
        h.directory
            .stop_recording_of(&StreamSelector::Name(StreamName::new("nobody"))),
        Err(RecordingError::NotFound)
    );
    assert_eq!(
        h.directory
            .stop_recording_of(&StreamSelector::Name(StreamName::new("r-alice"))),
        Err(RecordingError::NotRecording)
    );
}

#[test]
fn a_publisher_back_within_the_window_continues_its_file() {
    let mut h = Harness::new(4);
    h.directory
        .set_record_policy(record_policy(std::time::Duration::from_secs(10)));
    let alice = h.connect(1, "alice");
    h.command(alice, "join", serde_json::json!({"name": "r"}));
    let mut data = serde_json::json!({"mediaSessionId": "m1", "name": "r-alice-1", "sdp": PUBLISH_OFFER, "record": true});
    data["custom"] = serde_json::json!({"name": "r"});
    h.send(
        alice,
        serde_json::json!({"message": "publishStream", "data": [data]}),
    );
    let first = h.records.pop().expect("recorded");
    h.directory.close_session(alice);
    h.collect();
    assert!(h
        .commands
        .iter()
        .any(|(_, c)| matches!(c, Command::PeerRemove { peer } if *peer == first.tap)));
    let alice = h.connect(2, "alice");
    h.command(alice, "join", serde_json::json!({"name": "r"}));
    let mut data = serde_json::json!({"mediaSessionId": "m2", "name": "r-alice-2", "sdp": PUBLISH_OFFER, "record": true});
    data["custom"] = serde_json::json!({"name": "r"});
    h.send(
        alice,
        serde_json::json!({"message": "publishStream", "data": [data]}),
    );
    let second = h.records.pop().expect("recorded again");
    assert_eq!(second.open.resume_of, Some(first.open.id));
    assert_eq!(
        second.open.meta.file, first.open.meta.file,
        "the same file continues"
    );
}

#[test]
fn webhooks_pair_joins_with_leaves_and_name_why() {
    use crate::control::webhooks::{LeftReason, WebhookEvent};
    let mut h = Harness::new(16);
    let alice = h.connect(1, "alice");
    let bob = h.connect(2, "bob");
    let carol = h.connect(3, "carol");
    for id in [alice, bob, carol] {
        h.command(id, "join", serde_json::json!({"name": "r"}));
    }
    h.stream(alice, "publishStream", "m1", "r-alice", Some("r"), PUBLISH_OFFER);
    let (_, publisher, _) = h.added_peers().pop().unwrap();
    h.notify(Notification::PeerConnected { peer: publisher });
    h.command(bob, "leave", serde_json::json!({"name": "r"}));
    assert!(h.directory.kick(&Login::new("carol"), None));
    h.directory.close_session(alice);
    h.collect();
    let names: Vec<&str> = h.webhooks.iter().map(WebhookEvent::name).collect();
    assert_eq!(
        names,
        [
            "room_started",
            "participant_joined",
            "participant_joined",
            "participant_joined",
            "stream_published",
            "participant_left",
            "participant_left",
            "stream_unpublished",
            "participant_left",
            "room_finished",
        ]
    );
    let reasons: Vec<(String, LeftReason)> = h
        .webhooks
        .iter()
        .filter_map(|e| match e {
            WebhookEvent::ParticipantLeft { login, reason, .. } => Some((login.clone(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("bob".to_owned(), LeftReason::Left),
            ("carol".to_owned(), LeftReason::Kicked),
            ("alice".to_owned(), LeftReason::Disconnected),
        ]
    );
    let unpublished = h.webhooks.iter().find_map(|e| match e {
        WebhookEvent::StreamUnpublished { stream, reason, .. } => Some((stream.clone(), reason.clone())),
        _ => None,
    });
    assert_eq!(
        unpublished,
        Some(("r-alice".to_owned(), "disconnected".to_owned()))
    );
}

#[test]
fn a_stream_not_yet_publishing_cannot_be_played() {
    let mut h = Harness::new(16);
    let alice = h.connect(1, "alice");
    let bob = h.connect(2, "bob");
    h.stream(alice, "publishStream", "m1", "cam", None, PUBLISH_OFFER);
    let (_, publisher, _) = h.added_peers().pop().unwrap();
    h.stream(bob, "playStream", "m2", "cam", None, PLAY_OFFER);
    assert_eq!(
        h.statuses(bob),
        vec![("FAILED".to_owned(), Some("Stream not found".to_owned()))],
        "no media from its publisher yet: nothing to play"
    );
    h.notify(Notification::PeerConnected { peer: publisher });
    h.take(bob);
    h.stream(bob, "playStream", "m3", "cam", None, PLAY_OFFER);
    assert!(
        h.statuses(bob).is_empty(),
        "once PUBLISHING it plays (an answer, no failure)"
    );
}
