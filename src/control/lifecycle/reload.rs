//! SIGHUP: read the settings again (the same command line, the `--config` file as it is now)
//! and apply those that can change while the server runs — the TLS certificate (HTTPS and
//! RTMPS), `--max-sessions` and `--max-sessions-per-ip`, `--room-capacity`, the hooks
//! (`--hook-url`, its timeout, failure policy and secret), `--allowed-origins` and
//! `--log-level` — saying in the log which changed, and which changes wait for a restart.
//!
//! Control thread. Invariant: a reload that fails (a bad file, an unreadable certificate)
//! changes nothing and says why; sessions in progress keep the hook client they began with.

use std::sync::{Arc, Mutex, PoisonError};

use clap::Parser;

use crate::config::{Cli, Config};
use crate::control::admission::Admission;
use crate::control::hooks::HookClient;
use crate::control::hub::{lock, SharedHub};
use crate::control::live::Live;
use crate::control::origin::OriginPolicy;
use crate::control::tls::{self, TlsLive};

/// Sets the log filter; `main` owns the subscriber it changes.
pub type LogFilterSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What a reload reaches. Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    pub current: Arc<Mutex<Arc<Config>>>,
    pub tls: Arc<TlsLive>,
    pub hooks: Arc<Live<Option<HookClient>>>,
    pub origins: Arc<Live<OriginPolicy>>,
    pub admission: Arc<Admission>,
    pub hub: SharedHub,
    pub log_filter: Option<Arc<LogFilterSetter>>,
}

/// The settings a reload applies; every other one needs a restart.
const RELOADED: &[&str] = &[
    "tls_cert",
    "tls_key",
    "max_sessions",
    "max_sessions_per_ip",
    "room_capacity",
    "hook_url",
    "hook_timeout",
    "hook_failure",
    "hook_secret",
    "hook_secret_file",
    "allowed_origins",
    "log_level",
];

impl Reloader {
    /// Read the settings again and apply what may change; log what did.
    pub fn reload(&self) {
        let fresh = Cli::try_parse_from(std::env::args_os())
            .map_err(|e| e.to_string())
            .and_then(|cli| Config::from_cli(cli).map_err(|e| e.to_string()));
        let fresh = match fresh {
            Ok(config) => config,
            Err(error) => {
                tracing::error!(%error, "SIGHUP: the settings were not reloaded");
                return;
            }
        };
        let old = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // The certificate is read again whatever the paths: its files may have been renewed.
        let server = match tls::server_config(&fresh) {
            Ok(server) => server,
            Err(error) => {
                tracing::error!(%error, "SIGHUP: the TLS certificate could not be read; nothing was reloaded");
                return;
            }
        };
        let hooks = match changed_hooks(&old, &fresh) {
            Ok(hooks) => hooks,
            Err(error) => {
                tracing::error!(%error, "SIGHUP: the hook settings are not usable; nothing was reloaded");
                return;
            }
        };
        if let Some(hooks) = hooks {
            self.hooks.set(hooks);
        }
        self.tls.set(server);
        self.admission
            .set_session_limits(fresh.max_sessions, fresh.max_sessions_per_ip);
        lock(&self.hub).with_directory(|directory| directory.set_room_capacity(fresh.room_capacity));
        self.origins.set(OriginPolicy::new(fresh.allowed_origins.clone()));
        if let (Some(set), Some(filter)) = (&self.log_filter, &fresh.log_level) {
            if let Err(error) = set(filter) {
                tracing::error!(%error, "SIGHUP: the log filter was not changed");
            }
        }
        let (applied, waiting) = differences(&old, &fresh);
        tracing::info!(
            changed = ?applied,
            needs_restart = ?waiting,
            "SIGHUP: settings reloaded (the TLS certificate is read again whether or not its path changed)"
        );
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
    }
}

/// A new hook client when a hook setting changed (`Some(None)`: hooks turned off).
fn changed_hooks(
    old: &Config,
    fresh: &Config,
) -> Result<Option<Option<HookClient>>, crate::control::hooks::HookSetupError> {
    let same = old.hook_url == fresh.hook_url
        && old.hook_timeout == fresh.hook_timeout
        && old.hook_failure == fresh.hook_failure
        && old.hook_secret == fresh.hook_secret;
    if same {
        return Ok(None);
    }
    Ok(Some(crate::control::hook_client(fresh)?))
}

/// The settings that differ, by name (values are never reported: secrets are among them),
/// split into those applied and those that wait for a restart.
fn differences(old: &Config, fresh: &Config) -> (Vec<String>, Vec<String>) {
    // One list, destructured and compared: exhaustive, so a new setting must be listed here to
    // compile.
    macro_rules! changed {
        ($($field:ident),* $(,)?) => {{
            let Config { $($field),* } = old;
            let mut changed: Vec<&'static str> = Vec::new();
            $(
                if format!("{:?}", $field) != format!("{:?}", fresh.$field) {
                    changed.push(stringify!($field));
                }
            )*
            changed
        }};
    }
    let changed = changed!(
        http,
        https,
        tls_cert,
        tls_key,
        media_ip,
        media_port,
        workers,
        io,
        data_dir,
        room_capacity,
        peer_timeout,
        session_timeout,
        session_ping_interval,
        session_streams_max,
        record_dir,
        record_name_template,
        record_room_timeline,
        record_room_composite,
        record_min_free_bytes,
        record_resume_window,
        admin_key_file,
        admin_key,
        rtmp,
        rtmps,
        rtmp_bframes,
        rtmp_opus_kbps,
        rtmp_connections_per_ip,
        auth,
        jwt_key,
        jwt_issuer,
        jwt_audience,
        duplicate_login,
        hook_url,
        hook_timeout,
        hook_failure,
        hook_secret_file,
        hook_secret,
        allowed_origins,
        max_sessions,
        max_sessions_per_ip,
        drain_timeout,
        webhook_url,
        ice_servers,
        webhook_secret_file,
        webhook_secret,
        log_level,
    );
    let (applied, waiting): (Vec<&str>, Vec<&str>) =
        changed.into_iter().partition(|name| RELOADED.contains(name));
    (
        applied.into_iter().map(str::to_owned).collect(),
        waiting.into_iter().map(str::to_owned).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["webcall"];
        argv.extend_from_slice(args);
        Config::from_cli(Cli::parse_from(argv)).expect("config")
    }

    #[test]
    fn differences_split_into_applied_and_restart() {
        let old = config(&[
            "--room-capacity",
            "4",
            "--workers",
            "1",
            "--media-ip",
            "127.0.0.1",
        ]);
        let fresh = config(&[
            "--room-capacity",
            "8",
            "--workers",
            "2",
            "--media-ip",
            "127.0.0.1",
        ]);
        let (applied, waiting) = differences(&old, &fresh);
        assert_eq!(applied, vec!["room_capacity".to_owned()]);
        assert_eq!(waiting, vec!["workers".to_owned()]);
        let (applied, waiting) = differences(&old, &old.clone());
        assert!(applied.is_empty() && waiting.is_empty());
    }
}
