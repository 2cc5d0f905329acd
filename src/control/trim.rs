//! Giving freed memory back to the system. glibc keeps what a burst of sessions freed (a flood
//! of queued frames) in its arenas, so the process's resident size stays at its peak; this task
//! asks it to return free pages after sessions close. Control thread.
//!
//! Invariant: `malloc_trim` runs at most once per [`TRIM_INTERVAL`], and only when sessions
//! closed since the last run (it walks the heap, a millisecond or so, and there is nothing to
//! return otherwise).

use std::time::Duration;

use super::hub::{lock, SharedHub};

/// How often the task looks for closed sessions.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(2);

pub async fn return_freed_memory(hub: SharedHub) {
    let mut tick = tokio::time::interval(TRIM_INTERVAL);
    let mut closed_before = 0;
    loop {
        tick.tick().await;
        let closed = lock(&hub).sessions_closed();
        if closed != closed_before {
            closed_before = closed;
            trim();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks glibc's own heap; 0 keeps no padding at the top.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
