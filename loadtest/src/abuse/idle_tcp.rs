//! Idle TCP: two [`super::hold_tcp`] children, from [`addr::HOLD_TCP_A`] and
//! [`addr::HOLD_TCP_B`], each open connections to the HTTP port and send nothing until the
//! server refuses them; this side starts them, waits for them (bounded) and collects what
//! each held.
//!
//! What the server should do: hold at most [`PENDING_PER_IP_MAX`] connections per address
//! that have not become WebSocket sessions, closing the rest at accept, and keep serving
//! everyone else meanwhile.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::hold_tcp::{HoldTcpArgs, HoldTcpResult};
use super::{addr, ChildCommand, HOLD_TCP_COMMAND};
use crate::error::{Error, Result};

/// Connections one address may hold that are not WebSocket sessions (the server's
/// `HTTP_PENDING_CONNECTIONS_PER_IP_MAX`).
pub const PENDING_PER_IP_MAX: usize = 256;
/// A child may take this much longer than its `--seconds` (start-up, its last checks).
const CHILD_GRACE: Duration = Duration::from_secs(15);
/// How often the children are looked at while they run.
const POLL: Duration = Duration::from_millis(100);

/// What the children held.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IdleTcpFigures {
    /// What the server should have allowed each.
    pub cap_per_address: usize,
    /// One result per child.
    pub children: Vec<HoldTcpResult>,
}

struct Running {
    bind: String,
    child: Child,
    out: std::path::PathBuf,
}

fn spawn(
    holder: &ChildCommand,
    bind: std::net::Ipv4Addr,
    http: SocketAddr,
    max: usize,
    seconds: Duration,
    dir: &Path,
) -> Result<Running> {
    let out = dir.join(format!("hold-tcp-{bind}.json"));
    let _ = std::fs::remove_file(&out);
    let log = std::fs::File::create(dir.join(format!("hold-tcp-{bind}.log")))?;
    let args = HoldTcpArgs {
        bind,
        addr: http,
        max,
        seconds: seconds.as_secs_f64(),
        out: Some(out.clone()),
    };
    let child = Command::new(&holder.program)
        .args(&holder.args)
        .arg(HOLD_TCP_COMMAND)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(Running {
        bind: bind.to_string(),
        child,
        out,
    })
}

/// Runs both children for `seconds`, each opening at most `max` connections; their logs and
/// results go to `dir`.
pub async fn run(
    holder: &ChildCommand,
    http: SocketAddr,
    max: usize,
    seconds: Duration,
    dir: &Path,
) -> Result<IdleTcpFigures> {
    let mut running = Vec::new();
    for bind in [addr::HOLD_TCP_A, addr::HOLD_TCP_B] {
        running.push(spawn(holder, bind, http, max, seconds, dir)?);
    }
    let deadline = Instant::now() + seconds + CHILD_GRACE;
    let mut statuses = vec![None; running.len()];
    while statuses.iter().any(Option::is_none) && Instant::now() < deadline {
        for (r, status) in running.iter_mut().zip(statuses.iter_mut()) {
            if status.is_none() {
                *status = r.child.try_wait()?;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let mut figures = IdleTcpFigures {
        cap_per_address: PENDING_PER_IP_MAX,
        children: Vec::new(),
    };
    let mut problems = Vec::new();
    for (mut r, status) in running.into_iter().zip(statuses) {
        let Some(status) = status else {
            // Our own child, by its handle.
            let _ = r.child.kill();
            let _ = r.child.wait();
            problems.push(format!("hold-tcp {} did not finish in time (killed)", r.bind));
            continue;
        };
        let text = std::fs::read_to_string(&r.out).unwrap_or_default();
        match serde_json::from_str::<HoldTcpResult>(&text) {
            Ok(result) if status.success() => figures.children.push(result),
            _ => problems.push(format!(
                "hold-tcp {} exited with {status} without a result; see {}",
                r.bind,
                dir.join(format!("hold-tcp-{}.log", r.bind)).display()
            )),
        }
    }
    if problems.is_empty() {
        Ok(figures)
    } else {
        Err(Error::Protocol(problems.join("; ")))
    }
}
