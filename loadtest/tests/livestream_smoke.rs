//! A 5-second `livestream` load with a handful of subscribers against a real webcall server,
//! so the load generator cannot rot. Builds nothing itself: starts `WEBCALL_BIN` (default:
//! the workspace's `target/debug/webcall`, which `cargo test --workspace` builds for the
//! server's own tests). Checks the report's stable keys and that packets were forwarded,
//! with real encoded clips (ffmpeg makes them on the first run) and synthetic frames; never
//! asserts timings.

use std::time::Duration;

use webcall_loadtest::load::{self, LoadConfig, Scenario};
use webcall_loadtest::ServerProcess;

const STABLE_KEYS: [&str; 17] = [
    "target",
    "scenario",
    "subscribers",
    "duration_s",
    "forwarded_packets",
    "forwarded_pps",
    "server_cpu_seconds",
    "cpu_us_per_packet",
    "latency_us_p50",
    "latency_us_p99",
    "latency_us_p999",
    "loss_pct",
    "loss_after_nack_pct",
    "jitter_ms",
    "mem_bytes_per_subscriber",
    "loadgen_bound",
    "server_alive",
];

fn server() -> ServerProcess {
    let bin = std::env::var("WEBCALL_BIN")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/webcall").into());
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} is missing: build the server first (cargo build --bin webcall) or set WEBCALL_BIN"
    );
    ServerProcess::spawn(bin, &[]).unwrap()
}

fn run(server: &ServerProcess, scenario: Scenario, tweak: impl FnOnce(&mut LoadConfig)) -> serde_json::Value {
    let mut cfg = LoadConfig::new(&server.ws_url());
    cfg.scenario = scenario;
    cfg.duration = Duration::from_secs(5);
    cfg.warmup = Duration::from_secs(1);
    cfg.server_pid = Some(server.pid());
    tweak(&mut cfg);
    let report = load::run(&cfg).unwrap();
    println!("{}", report.table());
    let path = server.data_dir.join(format!("{}.json", scenario.name()));
    std::fs::write(&path, report.to_json()).unwrap();
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn livestream_five_seconds() {
    let server = server();
    let json = run(&server, Scenario::Livestream, |c| {
        c.subscribers = 4;
        c.video_bitrate_bps = 300_000;
    });
    for key in STABLE_KEYS {
        assert!(json.get(key).is_some(), "key {key} missing in {json:#}");
    }
    assert_eq!(json["target"], "webcall");
    assert_eq!(json["scenario"], "livestream");
    assert_eq!(json["subscribers"], 4);
    assert_eq!(json["server_alive"], true);
    assert!(json["forwarded_packets"].as_u64().unwrap() > 0, "{json:#}");
    assert!(
        json["server_cpu_seconds"].is_number(),
        "the server pid was sampled"
    );
    assert!(
        json["latency_us_p50"].is_number(),
        "payloads came back and were found in the publisher's send log"
    );
    assert_eq!(
        json["details"]["media"], "clip",
        "real encoded media (ffmpeg, cached) by default"
    );
}

#[test]
fn other_scenarios_forward() {
    let server = server();
    type Tweak = fn(&mut LoadConfig);
    let runs: [(Scenario, Tweak); 3] = [
        (Scenario::Meeting, |c| {
            c.participants = 3;
            c.pacing_factor = Some(webcall_loadtest::peer::pacer::BROWSER_PACING_FACTOR);
        }),
        (Scenario::AudioRoom, |c| {
            c.publishers = 2;
            c.subscribers = 3;
        }),
        (Scenario::Pairs, |c| {
            c.rooms = 2;
            c.media = load::MediaSource::Synthetic;
        }),
    ];
    for (scenario, tweak) in runs {
        let json = run(&server, scenario, |c| {
            tweak(c);
            c.duration = Duration::from_secs(2);
            c.video_bitrate_bps = 300_000;
        });
        assert_eq!(json["scenario"], scenario.name());
        assert!(json["forwarded_packets"].as_u64().unwrap() > 0, "{json:#}");
    }
}

/// The server dies in the middle of the window, by SIGKILL or by a SIGTERM drain (which closes
/// every session): the report says so, counts what the subscribers missed as lost, and is
/// not a measurement (`webcall-loadtest` exits non-zero on it).
#[test]
fn a_server_gone_mid_run_is_reported() {
    let bin = std::env::var("WEBCALL_BIN")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/webcall").into());
    for signal in [libc::SIGKILL, libc::SIGTERM] {
        let server = ServerProcess::spawn(&bin, &["--drain-timeout", "0s"]).unwrap();
        let mut cfg = LoadConfig::new(&server.ws_url());
        cfg.scenario = Scenario::Livestream;
        cfg.subscribers = 3;
        cfg.video_bitrate_bps = 300_000;
        cfg.media = load::MediaSource::Synthetic;
        cfg.warmup = Duration::from_secs(1);
        cfg.duration = Duration::from_secs(8);
        let pid = server.pid();
        let killer = std::thread::spawn(move || {
            // Publishers, three subscribers and a second of warm-up take about 2 s here: this
            // is well inside the 8 s window.
            std::thread::sleep(Duration::from_secs(5));
            // SAFETY: kill(2) on our own child's pid, which `server` keeps from being reaped.
            unsafe { libc::kill(pid as i32, signal) };
        });
        let report = load::run(&cfg).expect("the run itself completes");
        killer.join().unwrap();
        println!("{}", report.table());
        assert!(!report.server_alive, "signal {signal}: {}", report.to_json());
        assert!(
            report
                .details
                .errors
                .first()
                .is_some_and(|e| e.contains("went away")),
            "signal {signal}: {:?}",
            report.details.errors
        );
        assert!(
            report.loss_pct > 20.0,
            "signal {signal}: the missed packets are lost: {}",
            report.loss_pct
        );
        assert_eq!(
            report.details.subscribers_silent, 0,
            "each received something before the end"
        );
        drop(server);
    }
}
