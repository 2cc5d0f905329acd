//! Server memory per connected stream: start a server, publish one H.264+Opus stream, then add
//! players in steps (each its own WebSocket session, str0m peer and UDP socket, all receiving
//! media) and read the server's PSS from `/proc/PID/smaps_rollup` after each step.
//!
//! Run: `cargo build --release && cargo run --release --example stream_memory -- [PLAYERS]`
//! (server binary from `WEBCALL_BIN`, default `target/release/webcall`).

use std::time::Duration;

use webcall_loadtest::{play, publish, PlayCodecs, PublishOptions, ServerProcess, WcsSession};

fn pss_bytes(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> webcall_loadtest::Result<()> {
    let players: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let bin = std::env::var("WEBCALL_BIN").unwrap_or_else(|_| "target/release/webcall".into());
    let server = ServerProcess::spawn(&bin, &["--io", "auto"])?;
    let url = server.ws_url();
    let publisher_session = WcsSession::connect(&url, "publisher").await?;
    let _publisher = publish(&publisher_session, PublishOptions::new("memory-probe")).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = pss_bytes(server.pid());
    println!(
        "server PSS with one publisher: {:.1} MiB",
        base as f64 / 1048576.0
    );
    let mut held = Vec::new();
    let step = (players / 4).max(1);
    while held.len() < players {
        for _ in 0..step.min(players - held.len()) {
            let session = WcsSession::connect(&url, &format!("viewer-{}", held.len())).await?;
            let player = play(&session, "memory-probe", None, PlayCodecs::browser()).await?;
            held.push((session, player));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pss = pss_bytes(server.pid());
        let per = pss.saturating_sub(base) as f64 / held.len() as f64;
        println!(
            "{:>5} players: server PSS {:.1} MiB, {:.1} KiB per player stream",
            held.len(),
            pss as f64 / 1048576.0,
            per / 1024.0
        );
    }
    Ok(())
}
