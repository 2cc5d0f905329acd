//! The abuse scenario of the load generator (`webcall_loadtest::abuse`, `webcall-abuse`) in its
//! short form, against this build's server: a chat flood at sessions that never read, 2,000
//! sessions from one address against `--max-sessions-per-ip 100`, two processes holding idle
//! TCP connections, slowloris, and foreign origins, each beside a good room whose media must
//! keep flowing and while `/health` and a new session answer within a second. About a minute.
//!
//! The idle-TCP children are this test binary itself, re-executed to run only
//! [`hold_tcp_child`] with the child's arguments after `--` (where the test harness takes them
//! as name filters that match no test); run normally, that test does nothing.

use webcall_loadtest::abuse::{self, AbuseOptions, ChildCommand, HOLD_TCP_COMMAND};

#[test]
fn abuse_scenario() {
    let holder = ChildCommand {
        program: std::env::current_exe().expect("the test binary's path"),
        args: [
            "hold_tcp_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--",
        ]
        .map(String::from)
        .to_vec(),
    };
    let options = AbuseOptions::quick(env!("CARGO_BIN_EXE_webcall"), holder);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime
        .block_on(abuse::run(options))
        .unwrap_or_else(|e| panic!("the abuse scenario could not run: {e}"));
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("abuse-report.json");
    let json = serde_json::to_string_pretty(&report).expect("the report as JSON");
    std::fs::write(&path, json).expect("write the report");
    eprintln!("{}report: {}", report.summary(), path.display());
    let failures = report.failures();
    assert!(failures.is_empty(), "abuse scenario failed: {failures:#?}");
}

/// The idle-TCP child, when [`abuse_scenario`] re-executes this binary as one.
#[test]
fn hold_tcp_child() {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == HOLD_TCP_COMMAND) else {
        return;
    };
    let argv = args.get(at..).unwrap_or_default().to_vec();
    if let Err(e) = abuse::hold_tcp::main(argv) {
        panic!("hold-tcp: {e}");
    }
}
