//! `webcall-rtmp-load --url rtmp://HOST:PORT/live/NAME --players N --seconds S`: N light RTMP
//! players of one stream for S seconds; prints one JSON line with what they received (audio
//! and video messages, bytes, the first video message's delay after `play` per player).
//!
//! `webcall-rtmp-load --latency --url rtmp://HOST:PORT/room/ROOM/enc --ws ws://HOST:PORT/
//! --seconds S`: a synthetic encoder publishes into ROOM over RTMP with its send time in every
//! picture, a WebRTC player (this crate's client) plays it, and a second one joins halfway
//! through a group of pictures; prints the RTMP-to-WebRTC delay per picture (p50, p99) and
//! the late player's time from `playStream` to its first video packet.
//!
//! Either exits non-zero when the load failed (a player failed, no video came), so a load
//! that did not happen never reads as a measurement.

use std::time::Duration;

use clap::Parser;
use serde_json::json;
use webcall_loadtest::rtmp_play::{parse_play_url, play_for};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 200)]
    players: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Players start this many milliseconds apart.
    #[arg(long, default_value_t = 5)]
    stagger_ms: u64,
    /// Measure RTMP-to-WebRTC delay instead (needs --ws).
    #[arg(long)]
    latency: bool,
    /// The server's WebSocket URL, for --latency.
    #[arg(long)]
    ws: Option<String>,
}

async fn latency(args: &Args) -> webcall_loadtest::Result<serde_json::Value> {
    use std::time::Instant;
    use webcall_loadtest::media::stamp;
    use webcall_loadtest::rtmp_publish::{publish_for, read_sei_stamp};
    use webcall_loadtest::{play, Kind, PlayCodecs, RoomEventKind, WcsSession};

    let url = parse_play_url(&args.url)?;
    let room = url
        .app
        .strip_prefix("room/")
        .ok_or_else(|| {
            webcall_loadtest::Error::InvalidArgument("--latency wants rtmp://…/room/ROOM/LOGIN".into())
        })?
        .to_owned();
    let ws = args.ws.clone().unwrap_or_default();
    let t = Duration::from_secs(10);
    let viewer = WcsSession::connect(&ws, "latency-viewer").await?;
    viewer.join(&room).await?;
    let seconds = Duration::from_secs(args.seconds);
    let publisher = tokio::spawn(async move { publish_for(&url, seconds).await });
    viewer
        .wait_room_event(&room, t, |k| matches!(k, RoomEventKind::Published { .. }))
        .await?;
    let name = format!(
        "{room}-{}-rtmp-h264",
        args.url.rsplit('/').next().unwrap_or_default()
    );
    let player = play(&viewer, &name, Some(room.clone()), PlayCodecs::browser()).await?;
    // A late player, halfway through a group of pictures (keyframes come every second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late_session = WcsSession::connect(&ws, "latency-late").await?;
    late_session.join(&room).await?;
    let asked = Instant::now();
    let late = play(&late_session, &name, Some(room.clone()), PlayCodecs::browser()).await?;
    late.wait_packets(Kind::Video, 1, t).await?;
    let late_first = late
        .received()
        .iter()
        .filter(|p| p.kind == Kind::Video)
        .map(|p| p.arrival.saturating_duration_since(asked))
        .min();
    let frames = publisher
        .await
        .map_err(|e| webcall_loadtest::Error::InvalidArgument(e.to_string()))??;
    let mut delays: Vec<f64> = player
        .received()
        .iter()
        .filter_map(|p| {
            let sent = read_sei_stamp(&p.head)?;
            let arrived = p.arrival.saturating_duration_since(stamp::epoch());
            Some(arrived.saturating_sub(sent).as_secs_f64() * 1000.0)
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    if delays.len() < (frames as usize) / 2 {
        return Err(webcall_loadtest::Error::InvalidArgument(format!(
            "only {} of {frames} pictures reached the player",
            delays.len()
        )));
    }
    let pct = |p: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    Ok(json!({
        "pictures_sent": frames, "pictures_measured": delays.len(),
        "rtmp_to_webrtc_ms_p50": pct(0.5), "rtmp_to_webrtc_ms_p99": pct(0.99),
        "late_player_first_video_ms": late_first.map(|d| d.as_secs_f64() * 1000.0),
    }))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        if args.latency {
            return match latency(&args).await {
                Ok(report) => {
                    println!("{report}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("the latency run failed: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        let url = match parse_play_url(&args.url) {
            Ok(url) => std::sync::Arc::new(url),
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let total = Duration::from_secs(args.seconds);
        let mut tasks = Vec::new();
        for index in 0..args.players {
            let url = url.clone();
            let stagger = Duration::from_millis(args.stagger_ms * index as u64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(stagger).await;
                play_for(&url, total.saturating_sub(stagger)).await
            }));
        }
        let (mut video, mut audio, mut bytes, mut failed, mut silent) = (0u64, 0u64, 0u64, 0usize, 0usize);
        let mut first: Vec<u128> = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Ok(stats)) => {
                    video += stats.video_messages;
                    audio += stats.audio_messages;
                    bytes += stats.bytes;
                    if stats.video_messages == 0 {
                        silent += 1;
                    }
                    if let Some(d) = stats.first_video {
                        first.push(d.as_millis());
                    }
                }
                Ok(Err(e)) => {
                    failed += 1;
                    eprintln!("player failed: {e}");
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("player task failed: {e}");
                }
            }
        }
        first.sort_unstable();
        let pct = |p: f64| {
            first
                .get(((first.len() as f64 - 1.0) * p).round() as usize)
                .copied()
        };
        println!(
            "{}",
            json!({
                "players": args.players, "seconds": args.seconds, "failed": failed, "without_video": silent,
                "video_messages": video, "audio_messages": audio, "bytes": bytes,
                "first_video_ms_p50": pct(0.5), "first_video_ms_p99": pct(0.99),
            })
        );
        if failed > 0 || silent > 0 || video == 0 {
            eprintln!("the load failed: {failed} players failed, {silent} received no video");
            return std::process::ExitCode::FAILURE;
        }
        std::process::ExitCode::SUCCESS
    })
}
