//! The control thread: one tokio current-thread runtime serving HTTP, HTTPS and WebSocket
//! signaling, RTMP and RTMPS (the bridge), the room directory (through the hub), the pump
//! that brings worker
//! notifications in, and the tick that resends worker commands a full queue refused. Nothing
//! here touches UDP.

pub mod directory;
pub mod http;
pub mod hub;
pub mod rest;
mod rest_push;
pub mod rtmp;
pub mod session;
pub mod signaling;
pub mod tls;

use std::sync::Arc;

use crossbeam_channel::Receiver;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use self::directory::{Directory, DirectoryLimits, RecordPolicy};
use self::hub::{lock, Hub, SharedHub};
use crate::config::Config;
use crate::record::{RecorderClient, RecorderEvent};
use crate::sdp::{DtlsCert, PeerEnv};
use crate::worker::commands::{Command, Notification, WorkerHandle};

/// How often the control thread sends again the worker commands a full queue refused.
const COMMAND_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

pub struct ControlPlane {
    pub config: Arc<Config>,
    pub workers: Vec<WorkerHandle>,
    pub notifications: Receiver<Notification>,
    pub wakeup: Arc<Notify>,
    pub dtls_cert: DtlsCert,
    pub recorder: Option<Recorder>,
}

/// The recorder as the control thread uses it.
pub struct Recorder {
    pub client: RecorderClient,
    pub events: Receiver<RecorderEvent>,
    /// Rung by a writer after each event.
    pub wakeup: Arc<Notify>,
    pub policy: RecordPolicy,
}

/// Run the control thread until SIGINT or SIGTERM; then tell the workers to stop.
pub fn run(plane: ControlPlane) -> Result<(), ControlError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ControlError::Runtime)?;
    runtime.block_on(serve(plane))
}

async fn serve(plane: ControlPlane) -> Result<(), ControlError> {
    let ControlPlane {
        config,
        workers,
        notifications,
        wakeup,
        dtls_cert,
        recorder,
    } = plane;
    let envs = (0..config.workers)
        .map(|i| PeerEnv {
            candidate: (config.media_ip, config.worker_port(i)).into(),
            dtls_cert: dtls_cert.clone(),
        })
        .collect();
    let limits = DirectoryLimits {
        room_capacity: config.room_capacity,
        session_streams_max: config.session_streams_max,
    };
    let mut directory = Directory::new(limits, envs);
    let mut recorder_client = None;
    if let Some(recorder) = &recorder {
        directory.set_record_policy(recorder.policy.clone());
        recorder_client = Some(recorder.client.clone());
    }
    let recorder_pump = recorder;
    let mut hub = Hub::new(directory, workers);
    if let Some(client) = recorder_client {
        hub.set_recorder(client);
    }
    let hub = hub.shared();
    let bridge = rtmp::Bridge::new(hub.clone(), config.clone());
    let state = http::AppState {
        hub: hub.clone(),
        config: config.clone(),
        bridge: bridge.clone(),
    };
    let router = http::router(state);

    let http_listener = bind(config.http).await?;
    let https_listener = bind(config.https).await?;
    let tls_config = tls::server_config(&config)?;
    let rtmp_listener = match config.rtmp {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let rtmps = match config.rtmps {
        Some(addr) => Some((bind(addr).await?, tls_config.clone())),
        None => None,
    };
    tracing::info!(
        rtmp = ?rtmp_listener.as_ref().and_then(rtmp::local),
        rtmps = ?rtmps.as_ref().and_then(|(l, _)| rtmp::local(l)),
        "RTMP listening"
    );
    tokio::spawn(rtmp::serve(bridge, rtmp_listener, rtmps));
    tracing::info!(
        http = %local(&http_listener),
        https = %local(&https_listener),
        media_ip = %config.media_ip,
        "webcall listening: open http://{}/ in two tabs",
        local(&http_listener)
    );

    tokio::spawn(pump_notifications(hub.clone(), notifications, wakeup));
    if let Some(Recorder { events, wakeup, .. }) = recorder_pump {
        tokio::spawn(pump_recorder_events(hub.clone(), events, wakeup));
    }
    tokio::spawn(retry_commands(hub.clone()));
    let http = axum::serve(
        http_listener,
        router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    );
    let https = tls::serve(https_listener, tls_config, router);
    tokio::select! {
        result = http => {
            if let Err(error) = result {
                tracing::error!(%error, "http server ended");
            }
        }
        _ = https => {}
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    for worker in lock(&hub).workers() {
        let _ = worker.send(Command::Shutdown);
    }
    Ok(())
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, ControlError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ControlError::Listen { addr, source })
}

fn local(listener: &TcpListener) -> String {
    listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
}

/// Bring worker notifications into the hub. The workers ring `wakeup` after each one; a
/// notification arriving between the drain and the wait leaves a permit, so none is missed.
async fn pump_notifications(hub: SharedHub, notifications: Receiver<Notification>, wakeup: Arc<Notify>) {
    loop {
        wakeup.notified().await;
        while let Ok(notification) = notifications.try_recv() {
            lock(&hub).notification(notification);
        }
    }
}

/// Bring recorder writers' reports (a failed or finished recording) into the hub.
async fn pump_recorder_events(hub: SharedHub, events: Receiver<RecorderEvent>, wakeup: Arc<Notify>) {
    loop {
        wakeup.notified().await;
        while let Ok(event) = events.try_recv() {
            lock(&hub).recorder_event(event);
        }
    }
}

/// Send again, once a tick, the removals a full worker queue refused (see `hub.rs`).
async fn retry_commands(hub: SharedHub) {
    let mut tick = tokio::time::interval(COMMAND_RETRY_INTERVAL);
    loop {
        tick.tick().await;
        let mut hub = lock(&hub);
        if hub.pending_removes() > 0 {
            hub.retry_pending();
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
