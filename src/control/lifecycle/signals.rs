//! The signals an operator (or systemd) sends: SIGTERM and SIGINT drain, a second one of
//! either hurries the drain to its end, SIGHUP reloads what can change without a restart.
//!
//! Control thread. Invariant: a signal never ends the process by itself; the drain always
//! runs, so sessions are told and recordings finished even on a hurried stop.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use super::reload::Reloader;
use super::Lifecycle;

/// Handle signals for the life of the server.
pub async fn handle(lifecycle: Arc<Lifecycle>, reloader: Reloader) {
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with POST /rest-api/server/drain");
        return;
    };
    loop {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = hangup.recv() => {
                reloader.reload();
                continue;
            }
        };
        if lifecycle.drain() {
            tracing::info!(signal = name, "drain begins (send it again to end at once)");
        } else {
            tracing::info!(signal = name, "second stop signal: ending the drain now");
            lifecycle.hurry();
        }
    }
}
