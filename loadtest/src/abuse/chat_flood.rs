//! Chat flood: [`SENDERS`] sessions broadcast 16 KB chat messages into a room as fast as the
//! server reads them, at [`RECEIVERS`] sessions of the same room that never read their socket
//! (a raw WebSocket: `connection` and `join`, then the stream is never polled again, and a
//! small receive buffer, so their TCP window closes at once). Then every session closes, and
//! the server's memory is read [`super::AbuseOptions::chat_settle`] later.
//!
//! What the server should do: refuse chat past its rates (`DataStatusEvent` FAILED, counted
//! here and otherwise ignored), cut off each receiver once a megabyte is queued for it, and
//! give the memory back when the sessions are gone. All from [`addr::CHAT_FLOOD`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::monitor::{vm_rss, Monitor};
use super::net::{self, Upgrade};
use super::{addr, report::mb};
use crate::error::{Error, Result};
use crate::wcs::messages;
use crate::wcs::{SessionConfig, WcsSession};

/// Sessions that send.
pub const SENDERS: usize = 5;
/// Sessions that never read.
pub const RECEIVERS: usize = 10;
/// Bytes of each chat message's text.
pub const MESSAGE_BYTES: usize = 16 * 1024;
/// Frames each sender sends per second: just under the server's 200 frames per second per
/// session, past which frames are dropped unread and unacknowledged; so this is as fast as
/// the server will take them.
const SENDER_FRAMES_PER_SECOND: u64 = 190;
/// Commands a sender may have waiting for their acknowledgement; at this many it waits.
const SENDER_IN_FLIGHT_MAX: usize = 256;
/// A chat command unacknowledged after this long counts as unanswered.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// `SO_RCVBUF` of the receivers: a few messages' worth, so the kernel does not take
/// megabytes on their behalf before the window closes.
const RECEIVER_RECV_BUFFER_BYTES: u32 = 32 * 1024;
/// Deadline of each session's connect and join.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of a sender's orderly close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a sender drops the events queued for it (the others' messages).
const SENDER_DRAIN_EVERY: u64 = 50;
/// The flood's room.
const ROOM: &str = "abuse-chat-flood";

/// What the flood did and what it cost the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatFloodFigures {
    /// Sending sessions.
    pub senders: usize,
    /// Sessions that never read.
    pub receivers: usize,
    /// Bytes of each message's text.
    pub message_bytes: usize,
    /// How long the senders sent.
    pub flood_s: f64,
    /// Chat commands sent.
    pub messages_sent: u64,
    /// Acknowledged ACCEPTED.
    pub accepted: u64,
    /// Acknowledged FAILED.
    pub refused: u64,
    /// Not acknowledged within the deadline.
    pub unanswered: u64,
    /// The first refusal's `info`.
    pub first_refusal: Option<String>,
    /// Server VmRSS before the flood, MB.
    pub rss_before_mb: f64,
    /// Highest server VmRSS from the flood's start to the reading after it, MB.
    pub rss_peak_mb: f64,
    /// Server VmRSS `settle_s` after every flood session closed, MB.
    pub rss_after_mb: f64,
    /// Seconds between the sessions closing and `rss_after_mb`.
    pub settle_s: f64,
    /// `/health`'s `admission` after the settle (`sessions_over_output_cap` should count the
    /// receivers cut off).
    pub admission_after: Option<Value>,
}

#[derive(Debug, Default)]
struct Acks {
    accepted: AtomicU64,
    refused: AtomicU64,
    unanswered: AtomicU64,
    first_refusal: Mutex<Option<String>>,
}

/// Runs the flood for `flood`, closes everything, waits `settle`.
pub async fn run(
    http: SocketAddr,
    pid: u32,
    monitor: &Monitor,
    flood: Duration,
    settle: Duration,
) -> Result<ChatFloodFigures> {
    let rss_before = vm_rss(pid).unwrap_or(0);
    let mut receivers = Vec::new();
    for i in 0..RECEIVERS {
        let upgrade = net::upgrade(
            addr::CHAT_FLOOD,
            http,
            None,
            Some(RECEIVER_RECV_BUFFER_BYTES),
            SETUP_TIMEOUT,
        )
        .await?;
        let mut ws = match upgrade {
            Upgrade::Accepted(ws) => ws,
            Upgrade::Refused { status, body } => {
                return Err(Error::Protocol(format!(
                    "chat receiver {i} refused: {status} {body}"
                )))
            }
        };
        net::establish(&mut ws, &format!("flood-rx-{i}"), Some(ROOM), SETUP_TIMEOUT).await?;
        receivers.push(ws);
    }
    let url = format!("ws://{http}/");
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let config = SessionConfig {
            timeout: SETUP_TIMEOUT,
            ..SessionConfig::room(&format!("flood-tx-{i}"))
        };
        let s = WcsSession::connect_from(&url, addr::CHAT_FLOOD.into(), config).await?;
        s.join(ROOM).await?;
        senders.push(s);
    }

    let started = Instant::now();
    let acks = Arc::new(Acks::default());
    let text = Arc::new("x".repeat(MESSAGE_BYTES));
    let mut tasks = Vec::new();
    for s in &senders {
        tasks.push(tokio::spawn(send_for(
            s.clone(),
            flood,
            text.clone(),
            acks.clone(),
        )));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.map_err(|e| Error::Io(std::io::Error::other(e)))?;
    }
    let flood_s = started.elapsed().as_secs_f64();

    for s in &senders {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, s.close()).await;
        s.abort();
    }
    drop(senders);
    drop(receivers);
    let closed = Instant::now();
    tokio::time::sleep(settle).await;
    let rss_after = vm_rss(pid)
        .ok_or_else(|| Error::Protocol("the server's /proc entry is gone (did it exit?)".into()))?;
    let peak = monitor
        .rss_peak_between(started, Instant::now())
        .unwrap_or(0)
        .max(rss_after);
    let admission_after = net::get_health(http, SETUP_TIMEOUT)
        .await
        .ok()
        .and_then(|v| v.get("admission").cloned());
    let first_refusal = acks
        .first_refusal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(ChatFloodFigures {
        senders: SENDERS,
        receivers: RECEIVERS,
        message_bytes: MESSAGE_BYTES,
        flood_s,
        messages_sent: sent,
        accepted: acks.accepted.load(Ordering::Relaxed),
        refused: acks.refused.load(Ordering::Relaxed),
        unanswered: acks.unanswered.load(Ordering::Relaxed),
        first_refusal,
        rss_before_mb: mb(rss_before),
        rss_peak_mb: mb(peak),
        rss_after_mb: mb(rss_after),
        settle_s: closed.elapsed().as_secs_f64(),
        admission_after,
    })
}

/// One sender: broadcasts `text` at [`SENDER_FRAMES_PER_SECOND`] for `flood`, counting acks;
/// returns how many it sent.
async fn send_for(session: WcsSession, flood: Duration, text: Arc<String>, acks: Arc<Acks>) -> u64 {
    let in_flight = Arc::new(Semaphore::new(SENDER_IN_FLIGHT_MAX));
    let mut tick = tokio::time::interval(Duration::from_secs(1) / SENDER_FRAMES_PER_SECOND as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = tokio::time::Instant::now() + flood;
    let mut sent = 0u64;
    let mut pending = tokio::task::JoinSet::new();
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        let permit = match tokio::time::timeout_at(end, in_flight.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => break,
        };
        if session.is_closed() {
            break;
        }
        sent += 1;
        if sent.is_multiple_of(SENDER_DRAIN_EVERY) {
            session.drain_events();
        }
        let (session, text, acks) = (session.clone(), text.clone(), acks.clone());
        pending.spawn(async move {
            let options = messages::send_message_options(ROOM, None, &text);
            let answer = tokio::time::timeout(ACK_TIMEOUT, session.send_data("sendMessage", options)).await;
            match answer {
                Ok(Ok(_)) => acks.accepted.fetch_add(1, Ordering::Relaxed),
                Ok(Err(Error::Refused { info, .. })) => {
                    acks.first_refusal
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(info);
                    acks.refused.fetch_add(1, Ordering::Relaxed)
                }
                _ => acks.unanswered.fetch_add(1, Ordering::Relaxed),
            };
            drop(permit);
        });
    }
    while pending.join_next().await.is_some() {}
    sent
}
