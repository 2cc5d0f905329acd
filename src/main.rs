//! The `webcall` binary: configuration, logging, the media workers and the control thread.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use webcall::config::{Cli, Config, ConfigError};
use webcall::control::{self, ControlError, ControlPlane};
use webcall::sdp;
use webcall::worker::{self, commands::Command, commands::NOTIFICATION_QUEUE_DEPTH};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,str0m=warn,dimpl=warn")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("webcall: {error}");
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
}

fn run(cli: Cli) -> Result<(), StartError> {
    let config = Arc::new(Config::from_cli(cli)?);
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    sdp::install_crypto_provider();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dtls_cert = sdp::generate_dtls_cert()?;

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
    };
    let result = control::run(plane);
    for handle in &handles {
        let _ = handle.send(Command::Shutdown);
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(result?)
}
