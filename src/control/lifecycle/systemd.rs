//! Talking to systemd (`Type=notify`): `READY=1` once every listener is bound, `WATCHDOG=1`
//! while every worker beats, `STATUS=` lines, `STOPPING=1` when a drain begins and
//! `EXTEND_TIMEOUT_USEC=` while recordings are finished. Without `NOTIFY_SOCKET` (not under
//! systemd) every call does nothing.
//!
//! Control thread. Invariant: a failed send is logged once at debug and never stops the
//! server; the environment is left as it is (workers and helpers may read it).

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::debug!(%error, "sd_notify failed");
    }
}

/// Every listener is bound and unfinished recordings were recovered.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// Ask systemd for `by` more before it kills a stop in progress.
pub fn extend_timeout(by: Duration) {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    send(&[NotifyState::ExtendTimeoutUsec(usec)]);
}

/// The interval systemd expects `WATCHDOG=1` in (`WatchdogSec=` sets `WATCHDOG_USEC`), if it
/// expects it at all. `WATCHDOG_PID`, when set, must be this process (systemd sets it; a test
/// harness that cannot know the pid in advance leaves it out).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}
