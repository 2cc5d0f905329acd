//! The `webcall` binary: configuration, logging, the media workers and the control thread.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use webcall::config::{Cli, Config};
use webcall::control::{self, ControlPlane};
use webcall::peer;
use webcall::worker::{self, commands::NOTIFICATION_QUEUE_DEPTH};

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

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = Arc::new(Config::from_cli(cli)?);
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", config.data_dir.display()))?;
    peer::install_crypto_provider();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dtls_cert = peer::generate_dtls_cert()?;

    let (notification_tx, notification_rx) = crossbeam_channel::bounded(NOTIFICATION_QUEUE_DEPTH);
    let wakeup = Arc::new(tokio::sync::Notify::new());
    let (workers, threads) = worker::spawn_workers(&config, notification_tx, wakeup.clone())?;
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
        handle.send(webcall::worker::commands::Command::Shutdown);
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(result?)
}
