//! The `webcall` binary: configuration, logging, the media workers and the control thread.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use webcall::config::{Cli, Config, ConfigError, LOG_LEVEL_DEFAULT};
use webcall::control::directory::RecordPolicy;
use webcall::control::lifecycle::reload::LogFilterSetter;
use webcall::control::{self, ControlError, ControlPlane, Recorder};
use webcall::record::template::NameTemplate;
use webcall::record::{RecorderService, RecorderSettings};
use webcall::sdp;
use webcall::worker::{self, commands::Command, commands::NOTIFICATION_QUEUE_DEPTH};

fn main() -> ExitCode {
    // The filter sits behind a reload handle: `--log-level` applies it once the settings are
    // read, and SIGHUP may change it.
    let initial = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_LEVEL_DEFAULT));
    let (filter, filter_handle) = tracing_subscriber::reload::Layer::new(initial);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .init();
    let set_filter: LogFilterSetter = Box::new(move |text: &str| {
        let filter = EnvFilter::try_new(text).map_err(|e| e.to_string())?;
        filter_handle.reload(filter).map_err(|e| e.to_string())
    });
    if std::env::args().nth(1).as_deref() == Some("merge") {
        return merge(MergeCli::parse_from(std::env::args().skip(1)));
    }
    if std::env::args().nth(1).as_deref() == Some("token") {
        return token(TokenCli::parse_from(std::env::args().skip(1)));
    }
    match run(Cli::parse(), set_filter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("webcall: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `webcall merge`: one MP4 of a room from its recordings' manifest.
#[derive(Debug, Parser)]
#[command(
    name = "webcall merge",
    about = "Compose a room's recordings into one MP4 (a grid of tiles, audio mixed) with ffmpeg"
)]
struct MergeCli {
    /// The room's manifest (`room-ROOM-START.manifest.json` in the record directory).
    manifest: std::path::PathBuf,
    /// The MP4 to write.
    #[arg(short, long, value_name = "FILE")]
    output: std::path::PathBuf,
    /// Size of each participant's tile, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", default_value = "640x360")]
    tile: String,
    /// Print the ffmpeg command before running it.
    #[arg(long)]
    print: bool,
}

fn merge(cli: MergeCli) -> ExitCode {
    let tile = cli
        .tile
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|(w, h)| (16..=7680).contains(w) && (16..=4320).contains(h) && w % 2 == 0 && h % 2 == 0);
    let Some(tile) = tile else {
        eprintln!("webcall merge: --tile takes WIDTHxHEIGHT, even numbers from 16 to 7680x4320");
        return ExitCode::FAILURE;
    };
    let options = webcall::record::merge::MergeOptions {
        manifest: cli.manifest,
        output: cli.output,
        tile,
        print: cli.print,
        quiet: false,
    };
    match webcall::record::merge::merge(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("webcall merge: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `webcall token`: print a room token for tests, scripts and the README's example.
#[derive(Debug, Parser)]
#[command(
    name = "webcall token",
    about = "Print a room token (JWT) signed with a key file, for `--auth jwt`"
)]
struct TokenCli {
    /// The room it grants, or `*` for any.
    #[arg(long)]
    room: String,
    /// The login (`sub`) the session gets.
    #[arg(long)]
    login: String,
    /// May publish camera, microphone and screen.
    #[arg(long)]
    publish: bool,
    /// May play the room's streams.
    #[arg(long)]
    subscribe: bool,
    /// May send chat messages.
    #[arg(long)]
    chat: bool,
    /// May record (`record: true`).
    #[arg(long)]
    record: bool,
    /// Room administrator.
    #[arg(long)]
    admin: bool,
    /// Not listed to the room's other participants.
    #[arg(long)]
    hidden: bool,
    /// Lifetime: seconds or 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// The HS256 secret file, or the private key in PEM (RS256, ES256, EdDSA).
    #[arg(long, value_name = "FILE")]
    key: std::path::PathBuf,
    /// `iss` to put in the token.
    #[arg(long)]
    issuer: Option<String>,
    /// `aud` to put in the token.
    #[arg(long)]
    audience: Option<String>,
}

fn token(cli: TokenCli) -> ExitCode {
    let ttl_secs = match webcall::auth::parse_ttl(&cli.ttl) {
        Ok(ttl) => ttl,
        Err(error) => {
            eprintln!("webcall token: --ttl: {error}");
            return ExitCode::FAILURE;
        }
    };
    let request = webcall::auth::TokenRequest {
        room: cli.room,
        login: cli.login,
        publish: cli.publish,
        subscribe: cli.subscribe,
        chat: cli.chat,
        record: cli.record,
        admin: cli.admin,
        hidden: cli.hidden,
        ttl_secs,
        issuer: cli.issuer,
        audience: cli.audience,
    };
    match webcall::auth::mint(&cli.key, &request, webcall::auth::now_unix()) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("webcall token: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    DtlsCert(#[from] sdp::DtlsCertError),
    #[error("media workers: {0}")]
    Workers(std::io::Error),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("--record-name-template: {0}")]
    Template(#[from] webcall::record::template::TemplateError),
    #[error(transparent)]
    Recorder(#[from] webcall::record::service::RecorderStartError),
}

fn run(cli: Cli, set_filter: LogFilterSetter) -> Result<(), StartError> {
    let config = Arc::new(Config::from_cli(cli)?);
    if let Some(filter) = &config.log_level {
        if let Err(error) = set_filter(filter) {
            tracing::warn!(%error, "--log-level not applied");
        }
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    sdp::install_crypto_provider();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dtls_cert = sdp::generate_dtls_cert()?;

    let template = NameTemplate::parse(&config.record_name_template)?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let worker_cores = (0..config.workers)
        .filter_map(|i| cores.get(i % cores.len().max(1)).map(|c| c.id))
        .collect();
    let recorder_wakeup = Arc::new(tokio::sync::Notify::new());
    let (recorder, recorder_events) = RecorderService::start(
        RecorderSettings {
            dir: config.record_dir.clone(),
            min_free_bytes: config.record_min_free_bytes,
            room_composite: config.record_room_composite,
            worker_cores,
        },
        recorder_wakeup.clone(),
    )?;
    let policy = RecordPolicy {
        template: Arc::new(template),
        room_timeline: config.record_room_timeline,
        resume_window: config.record_resume_window,
    };

    let (notification_tx, notification_rx) = crossbeam_channel::bounded(NOTIFICATION_QUEUE_DEPTH);
    let wakeup = Arc::new(tokio::sync::Notify::new());
    let (workers, threads) =
        worker::spawn_workers(&config, notification_tx, wakeup.clone()).map_err(StartError::Workers)?;
    let handles = workers.clone();
    let plane = ControlPlane {
        config,
        workers,
        notifications: notification_rx,
        wakeup,
        dtls_cert,
        recorder: Some(Recorder {
            client: recorder.client(),
            events: recorder_events,
            wakeup: recorder_wakeup,
            policy,
        }),
        log_filter: Some(set_filter),
    };
    let result = control::run(plane);
    for handle in &handles {
        let _ = handle.send(Command::Shutdown);
    }
    for thread in threads {
        let _ = thread.join();
    }
    // The workers' taps are gone (each closed its recording): finish every file.
    recorder.shutdown();
    Ok(result?)
}
