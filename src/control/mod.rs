//! The control thread: one tokio current-thread runtime serving HTTP, HTTPS and WebSocket
//! signaling, RTMP and RTMPS (the bridge), the room directory (through the hub), the pump
//! that brings worker
//! notifications in, and the tick that resends worker commands a full queue refused. Nothing
//! here touches UDP.

pub mod admission;
pub mod directory;
mod hook_calls;
pub mod hooks;
pub mod http;
pub mod hub;
pub mod lifecycle;
pub mod live;
pub mod metrics;
pub mod origin;
pub mod output;
pub mod rest;
mod rest_access;
mod rest_admin;
mod rest_push;
pub mod rtmp;
mod serve;
pub mod session;
pub mod signaling;
pub mod tls;
mod trim;
pub mod webhooks;
pub mod whip;

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
    #[error("access control: {0}")]
    Auth(#[from] crate::auth::AuthSetupError),
    #[error("hooks: {0}")]
    Hooks(#[from] hooks::HookSetupError),
    #[error(transparent)]
    Webhooks(#[from] webhooks::WebhookSetupError),
}

pub struct ControlPlane {
    pub config: Arc<Config>,
    pub workers: Vec<WorkerHandle>,
    pub notifications: Receiver<Notification>,
    pub wakeup: Arc<Notify>,
    pub dtls_cert: DtlsCert,
    pub recorder: Option<Recorder>,
    /// Changes the log filter (SIGHUP with a new `--log-level`).
    pub log_filter: Option<lifecycle::reload::LogFilterSetter>,
}

/// The recorder as the control thread uses it.
pub struct Recorder {
    pub client: RecorderClient,
    pub events: Receiver<RecorderEvent>,
    /// Rung by a writer after each event.
    pub wakeup: Arc<Notify>,
    pub policy: RecordPolicy,
}

/// Run the control thread until a drain (SIGTERM, SIGINT, `POST /rest-api/server/drain`) has
/// ended every session; then tell the workers to stop.
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
        log_filter,
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
        duplicate_login: config.duplicate_login,
    };
    let mut directory = Directory::new(limits, envs);
    let mut recorder_client = None;
    if let Some(recorder) = &recorder {
        directory.set_record_policy(recorder.policy.clone());
        recorder_client = Some(recorder.client.clone());
    }
    let recorder_pump = recorder;
    let access = access(&config)?;
    let descriptors = admission::raise_descriptor_limit();
    let admission = admission::Admission::new(
        admission::descriptor_budget(descriptors),
        config.max_sessions,
        config.max_sessions_per_ip,
    );
    let hooks = Arc::new(live::Live::new(hook_client(&config)?));
    let origins = Arc::new(live::Live::new(origin::OriginPolicy::new(
        config.allowed_origins.clone(),
    )));
    warn_if_open(&config, &origins.get(), descriptors);
    let lifecycle = Arc::new(lifecycle::Lifecycle::default());
    let mut hub = Hub::new(directory, workers, access);
    hub.set_admission(admission.clone());
    if let Some(client) = recorder_client {
        hub.set_recorder(client);
    }
    let webhooks = webhooks::Webhooks::start(&config.webhook_url, config.webhook_secret.as_deref())?;
    hub.set_webhooks(webhooks.clone());
    let hub = hub.shared();
    let bridge = rtmp::Bridge::new(hub.clone(), config.clone());
    let tls = Arc::new(tls::TlsLive::new(tls::server_config(&config)?));
    let state = http::AppState {
        hub: hub.clone(),
        config: config.clone(),
        bridge: bridge.clone(),
        admission: admission.clone(),
        origins: origins.clone(),
        hooks: hooks.clone(),
        lifecycle: lifecycle.clone(),
        whip: Default::default(),
    };
    let router = http::router(state);

    let http_listener = bind(config.http).await?;
    let https_listener = bind(config.https).await?;
    let rtmp_listener = match config.rtmp {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let rtmps = match config.rtmps {
        Some(addr) => Some((bind(addr).await?, tls.clone())),
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
    tokio::spawn(trim::return_freed_memory(hub.clone()));
    let reloader = lifecycle::reload::Reloader {
        current: Arc::new(std::sync::Mutex::new(config.clone())),
        tls: tls.clone(),
        hooks,
        origins,
        admission: admission.clone(),
        hub: hub.clone(),
        log_filter: log_filter.map(Arc::new),
    };
    tokio::spawn(lifecycle::signals::handle(lifecycle.clone(), reloader));
    let http = serve::http(http_listener, router.clone(), admission.clone());
    let https = serve::https(https_listener, tls, router, admission.clone());
    // Every listener is bound (the media sockets were, before this thread started; so were
    // unfinished recordings recovered): ready.
    lifecycle.serving();
    lifecycle::systemd::ready("serving: 0 sessions, 0 rooms, 0 streams, 0 peers");
    tokio::spawn(lifecycle::watch::watch(hub.clone(), lifecycle.clone()));
    let (mut http, mut https) = (std::pin::pin!(http), std::pin::pin!(https));
    // The accept loops run for the life of the server; should one end, the workers stop too.
    let drain_asked = tokio::select! {
        _ = &mut http => false,
        _ = &mut https => false,
        _ = lifecycle.drain_asked() => true,
    };
    if drain_asked {
        // The listeners keep serving while the drain runs: readiness answers 503, new sessions
        // are told why they are refused, calls in progress go on.
        let drain = lifecycle::drain::run(lifecycle::drain::DrainContext {
            hub: hub.clone(),
            lifecycle: lifecycle.clone(),
            admission: admission.clone(),
            webhooks: webhooks.clone(),
            timeout: config.drain_timeout,
        });
        tokio::select! {
            _ = drain => {}
            _ = &mut http => {}
            _ = &mut https => {}
        }
    }
    for worker in lock(&hub).workers() {
        let _ = worker.send(Command::Shutdown);
    }
    Ok(())
}

/// The application's hook client, when `--hook-url` is set.
pub fn hook_client(config: &Config) -> Result<Option<hooks::HookClient>, hooks::HookSetupError> {
    let Some(url) = &config.hook_url else {
        return Ok(None);
    };
    let client = hooks::HookClient::new(hooks::HookConfig {
        url: url.clone(),
        timeout: config.hook_timeout,
        failure: match config.hook_failure {
            crate::config::HookFailureChoice::Allow => hooks::HookFailure::Allow,
            crate::config::HookFailureChoice::Deny => hooks::HookFailure::Deny,
        },
        secret: config.hook_secret.clone(),
    })?;
    Ok(Some(client))
}

/// The token rule and the revoked token ids (kept in the data directory across restarts).
fn access(config: &Config) -> Result<hub::Access, ControlError> {
    let auth = match (&config.auth, &config.jwt_key) {
        (crate::config::AuthChoice::Jwt, Some(key)) => {
            crate::auth::AuthMode::Jwt(Box::new(crate::auth::JwtVerifier::from_key_file(
                key,
                config.jwt_issuer.clone(),
                config.jwt_audience.clone(),
            )?))
        }
        _ => crate::auth::AuthMode::None,
    };
    let deny = crate::auth::DenyList::open(config.data_dir.join(REVOKED_TOKENS_FILE))?;
    Ok(hub::Access { auth, deny })
}

/// Where the revoked token ids are kept, under the data directory.
const REVOKED_TOKENS_FILE: &str = "revoked-tokens.tsv";

/// Say at start what is open to anyone.
fn warn_if_open(config: &Config, origins: &origin::OriginPolicy, descriptors: u64) {
    if config.auth == crate::config::AuthChoice::None {
        tracing::warn!(
            "--auth none: anyone may connect, take any login and join any room; see docs/security.md"
        );
    }
    if origins.allows_any() {
        tracing::warn!("--allowed-origins unset: pages on any site may open sessions here");
    }
    tracing::info!(
        descriptors,
        max_sessions = config.max_sessions,
        max_sessions_per_ip = config.max_sessions_per_ip,
        "session limits"
    );
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
