//! `webcall-abuse [--server-bin PATH] [--report FILE] [--quick] [--vp8]`: starts a webcall
//! server on loopback and runs the abuse scenario against it beside a good room (see
//! `webcall_loadtest::abuse`): chat flood, sessions and idle connections from one address,
//! slowloris, foreign origins. Writes the JSON report to stdout or FILE and a summary to
//! stderr; exits 1 when a threshold failed or a phase did not happen, 2 when the scenario
//! could not start.
//!
//! `webcall-abuse hold-tcp --bind IP --addr HOST:PORT --max N --seconds S [--out FILE]` is the
//! idle-TCP child the scenario starts (hidden).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use webcall_loadtest::abuse::{self, AbuseOptions, ChildCommand, HOLD_TCP_COMMAND};
use webcall_loadtest::VideoCodec;

/// Where the server binary is when neither `--server-bin` nor `WEBCALL_BIN` says.
const DEFAULT_SERVER_BIN: &str = "target/debug/webcall";
/// Worker threads of the scenario's runtime: the machine it was written for has two cores.
const RUNTIME_THREADS: usize = 2;

#[derive(Parser)]
#[command(name = "webcall-abuse", about = "Abuse scenario against a webcall server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The webcall binary [default: $WEBCALL_BIN, else target/debug/webcall].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Write the JSON report here instead of stdout.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Shorter baseline, flood and hold (about a minute in all), as CI runs it.
    #[arg(long)]
    quick: bool,
    /// The good room publishes VP8 instead of H.264.
    #[arg(long)]
    vp8: bool,
    /// Baseline length, seconds (overrides the default of the run's length).
    #[arg(long)]
    baseline_s: Option<f64>,
    /// Chat flood length, seconds.
    #[arg(long)]
    chat_flood_s: Option<f64>,
    /// Sessions tried from one address.
    #[arg(long)]
    per_ip_sessions: Option<usize>,
    /// Seconds each idle-TCP child runs.
    #[arg(long)]
    hold_tcp_s: Option<f64>,
    /// Slowloris connections.
    #[arg(long)]
    slowloris: Option<usize>,
    /// More server flags (repeat; e.g. --server-flag=--io --server-flag=mmsg).
    #[arg(long = "server-flag", allow_hyphen_values = true)]
    server_flags: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// The idle-TCP child.
    #[command(name = "hold-tcp", hide = true, disable_help_flag = true)]
    HoldTcp {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::HoldTcp { args }) = cli.command {
        let argv = std::iter::once(HOLD_TCP_COMMAND.to_string()).chain(args);
        return match abuse::hold_tcp::main(argv) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hold-tcp: {e}");
                ExitCode::from(2)
            }
        };
    }
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("webcall-abuse: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> webcall_loadtest::Result<bool> {
    let bin = cli
        .server_bin
        .or_else(|| std::env::var_os("WEBCALL_BIN").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVER_BIN));
    if !bin.exists() {
        return Err(webcall_loadtest::Error::InvalidArgument(format!(
            "{} is missing: build it (cargo build --bin webcall) or pass --server-bin",
            bin.display()
        )));
    }
    let holder = ChildCommand::this_binary()?;
    let mut options = match cli.quick {
        true => AbuseOptions::quick(bin, holder),
        false => AbuseOptions::new(bin, holder),
    };
    if cli.vp8 {
        options.video = VideoCodec::Vp8;
    }
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    if let Some(s) = cli.baseline_s {
        options.baseline = secs(s);
    }
    if let Some(s) = cli.chat_flood_s {
        options.chat_flood = secs(s);
    }
    if let Some(n) = cli.per_ip_sessions {
        options.per_ip_sessions = n;
    }
    if let Some(s) = cli.hold_tcp_s {
        options.hold_tcp_for = secs(s);
    }
    if let Some(n) = cli.slowloris {
        options.slowloris_connections = n;
    }
    options.server_flags = cli.server_flags;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .enable_all()
        .build()?;
    let report = runtime.block_on(abuse::run(options))?;
    let json = serde_json::to_string_pretty(&report)?;
    match &cli.report {
        Some(path) => std::fs::write(path, json + "\n")?,
        None => println!("{json}"),
    }
    eprint!("{}", report.summary());
    Ok(report.passed)
}
