//! The idle-TCP child (`webcall-abuse hold-tcp --bind IP --addr HOST:PORT --max N --seconds S
//! [--out FILE]`): opens TCP connections from `IP` to the server in batches and sends nothing,
//! until connects fail or the server closes new ones at once (or `N` are open); then holds
//! what it has until `S` seconds after its start, watching for the server closing them, and
//! writes a [`HoldTcpResult`] as JSON.
//!
//! A child process of its own because each process may hold only so many descriptors: two
//! children can hold more connections than the server may accept, and neither limit is the
//! parent's. The parent is [`super::idle_tcp`].

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::{Deserialize, Serialize};

use super::net::tcp_from;
use crate::error::{Error, Result};

/// Connects started at once: a quarter of what one address may hold pending (256), so the
/// moment the server starts refusing is seen to within a batch.
const BATCH: usize = 64;
/// A connect that takes longer has failed (the accept queue is full).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after a batch connected its connections are looked at: long enough for the
/// server to accept and close those it refuses, even when busy.
const SETTLE: Duration = Duration::from_millis(200);
/// How often held connections are checked while holding.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Arguments of the hidden `hold-tcp` subcommand.
#[derive(Debug, Clone, Parser)]
#[command(name = "hold-tcp")]
pub struct HoldTcpArgs {
    /// Source address (a 127.0.0.0/8 one).
    #[arg(long)]
    pub bind: Ipv4Addr,
    /// The server's HTTP address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// Most connections to open.
    #[arg(long)]
    pub max: usize,
    /// How long to run in all, seconds.
    #[arg(long)]
    pub seconds: f64,
    /// Where to write the JSON result (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl HoldTcpArgs {
    /// The command line after [`super::HOLD_TCP_COMMAND`].
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--bind".into(),
            self.bind.to_string(),
            "--addr".into(),
            self.addr.to_string(),
            "--max".into(),
            self.max.to_string(),
            "--seconds".into(),
            self.seconds.to_string(),
        ];
        if let Some(out) = &self.out {
            args.extend(["--out".into(), out.display().to_string()]);
        }
        args
    }
}

/// What one child held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HoldTcpResult {
    /// Its source address.
    pub bind: String,
    /// Connections open when the server started refusing (or when `--max` was reached).
    pub held_when_refused: usize,
    /// Whether the server refused (closed at once, or connects failed) before `--max`.
    pub refused: bool,
    /// Milliseconds from the start to the first refusal.
    pub refused_after_ms: Option<u64>,
    /// Connections the server closed at once.
    pub closed_at_once: usize,
    /// Connects that failed or timed out.
    pub connect_errors: usize,
    /// The first connect failure.
    pub first_error: Option<String>,
    /// Held connections still open at the end.
    pub open_at_end: usize,
    /// Milliseconds from the start to the server first closing a held connection.
    pub first_closed_by_server_after_ms: Option<u64>,
    /// How long it ran.
    pub seconds: f64,
}

/// Whether the server has not closed `s` (EOF or reset); never blocks.
fn is_open(s: &std::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match s.peek(&mut byte) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Runs the child with `args` (the first being the subcommand's name, as clap expects).
pub fn main(args: impl IntoIterator<Item = String>) -> Result<HoldTcpResult> {
    let args =
        HoldTcpArgs::try_parse_from(args).map_err(|e| Error::InvalidArgument(format!("hold-tcp: {e}")))?;
    super::raise_descriptor_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(hold(&args))?;
    let json = serde_json::to_string(&result)?;
    match &args.out {
        Some(path) => std::fs::write(path, json)?,
        None => println!("{json}"),
    }
    Ok(result)
}

async fn hold(args: &HoldTcpArgs) -> Result<HoldTcpResult> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds.max(0.0));
    let mut r = HoldTcpResult {
        bind: args.bind.to_string(),
        ..HoldTcpResult::default()
    };
    let mut held: Vec<std::net::TcpStream> = Vec::new();
    while held.len() < args.max && Instant::now() < deadline {
        let n = BATCH.min(args.max - held.len());
        let connects =
            (0..n).map(|_| tokio::time::timeout(CONNECT_TIMEOUT, tcp_from(args.bind, args.addr, None)));
        let mut fresh = Vec::new();
        let mut errors = 0;
        for outcome in futures_util::future::join_all(connects).await {
            let failure = match outcome {
                Ok(Ok(s)) => match s.into_std() {
                    Ok(s) => {
                        fresh.push(s);
                        continue;
                    }
                    Err(e) => e.to_string(),
                },
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("connect timed out after {CONNECT_TIMEOUT:?}"),
            };
            errors += 1;
            r.first_error.get_or_insert(failure);
        }
        tokio::time::sleep(SETTLE).await;
        let connected = fresh.len();
        fresh.retain(is_open);
        let closed = connected - fresh.len();
        r.connect_errors += errors;
        r.closed_at_once += closed;
        held.extend(fresh);
        if closed > 0 || errors > 0 {
            r.refused = true;
            r.refused_after_ms = Some(ms(start.elapsed()));
            break;
        }
    }
    // Connections the server was still about to close when the batch was looked at.
    tokio::time::sleep(SETTLE).await;
    let before = held.len();
    held.retain(is_open);
    r.closed_at_once += before - held.len();
    r.held_when_refused = held.len();
    while Instant::now() < deadline {
        tokio::time::sleep(CHECK_EVERY.min(deadline.saturating_duration_since(Instant::now()))).await;
        if r.first_closed_by_server_after_ms.is_none() && !held.iter().all(is_open) {
            r.first_closed_by_server_after_ms = Some(ms(start.elapsed()));
        }
    }
    r.open_at_end = held.iter().filter(|s| is_open(s)).count();
    r.seconds = start.elapsed().as_secs_f64();
    Ok(r)
}
