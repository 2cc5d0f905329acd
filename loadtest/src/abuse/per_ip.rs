//! Sessions from one address: thousands of WebSocket upgrades from [`addr::PER_IP`] against the
//! server's per-address cap ([`PER_IP_CAP`], set by the scenario's `--max-sessions-per-ip`).
//!
//! Each admitted session sends `connection` and is then kept alive (its pings answered) until
//! every attempt is done, so the cap is tested against live sessions, not ones the server may
//! have timed out. Refusals are counted by status; 429 is the expected one, with a JSON
//! `{"error"}` body. At the end the sessions close and one more upgrade from the same address
//! must be admitted again (the server's count falls back when its clients go).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::addr;
use super::net::{self, RawWs, Upgrade};
use crate::error::Result;
use crate::wcs::incoming::{self, ServerMessage};
use crate::wcs::messages;

/// The per-address session cap the scenario starts the server with.
pub const PER_IP_CAP: usize = 100;
/// Upgrades in flight at once: well under the 256 connections one address may hold before
/// they become sessions, so no attempt is closed at accept for that reason instead.
const CONCURRENCY: usize = 32;
/// Deadline of one attempt (upgrade and, when admitted, `getUserData`).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, after the sessions closed, a new one from the address may take to be admitted.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between tries of that new session.
const RELEASE_RETRY: Duration = Duration::from_millis(100);

/// What the attempts got.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PerIpFigures {
    /// The source address.
    pub address: String,
    /// The cap the server was given.
    pub cap: usize,
    /// Upgrades tried.
    pub attempts: usize,
    /// Admitted (101 and `getUserData`).
    pub accepted: usize,
    /// Refused with 429.
    pub refused_429: usize,
    /// Refused with any other status, by status.
    pub refused_other: BTreeMap<u16, usize>,
    /// Attempts that neither succeeded nor got an HTTP answer (reset, timeout).
    pub failed: usize,
    /// The first such failure.
    pub first_failure: Option<String>,
    /// The `error` of the first 429's JSON body.
    pub refusal_error: Option<String>,
    /// 429 answers whose body was no `{"error": ...}` (or was cut short).
    pub refusals_without_json: usize,
    /// A session from the address was admitted again once the others closed.
    pub admitted_again_after_release: bool,
    /// Seconds the attempts took.
    pub seconds: f64,
}

enum Outcome {
    Accepted(Box<RawWs>),
    Refused { status: u16, body: String },
    Failed(String),
}

async fn attempt(http: SocketAddr, i: usize) -> Outcome {
    match net::upgrade(addr::PER_IP, http, None, None, ATTEMPT_TIMEOUT).await {
        Ok(Upgrade::Accepted(mut ws)) => {
            match net::establish(&mut ws, &format!("per-ip-{i}"), None, ATTEMPT_TIMEOUT).await {
                Ok(()) => Outcome::Accepted(ws),
                Err(e) => Outcome::Failed(format!("admitted, then: {e}")),
            }
        }
        Ok(Upgrade::Refused { status, body }) => Outcome::Refused { status, body },
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Reads an admitted session and answers its pings until told to stop; then closes it.
async fn keep_alive(mut ws: Box<RawWs>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if matches!(incoming::parse(text.as_str()), Ok(ServerMessage::Ping))
                        && ws.send(Message::text(messages::pong())).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
    let _ = tokio::time::timeout(ATTEMPT_TIMEOUT, SinkExt::close(&mut *ws)).await;
}

/// Tries `attempts` sessions from [`addr::PER_IP`].
pub async fn run(http: SocketAddr, attempts: usize) -> Result<PerIpFigures> {
    let started = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let mut keepers = Vec::new();
    let mut figures = PerIpFigures {
        address: addr::PER_IP.to_string(),
        cap: PER_IP_CAP,
        attempts,
        ..PerIpFigures::default()
    };
    let mut outcomes = futures_util::stream::iter(0..attempts)
        .map(|i| attempt(http, i))
        .buffer_unordered(CONCURRENCY);
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Outcome::Accepted(ws) => {
                figures.accepted += 1;
                keepers.push(tokio::spawn(keep_alive(ws, stopped.clone())));
            }
            Outcome::Refused { status: 429, body } => {
                figures.refused_429 += 1;
                match net::refusal_error(&body) {
                    Some(error) => {
                        figures.refusal_error.get_or_insert(error);
                    }
                    None => figures.refusals_without_json += 1,
                }
            }
            Outcome::Refused { status, .. } => *figures.refused_other.entry(status).or_default() += 1,
            Outcome::Failed(why) => {
                figures.failed += 1;
                figures.first_failure.get_or_insert(why);
            }
        }
    }
    figures.seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    for keeper in keepers {
        let _ = keeper.await;
    }
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Upgrade::Accepted(ws)) = net::upgrade(addr::PER_IP, http, None, None, ATTEMPT_TIMEOUT).await
        {
            drop(ws);
            figures.admitted_again_after_release = true;
            break;
        }
        tokio::time::sleep(RELEASE_RETRY).await;
    }
    Ok(figures)
}
