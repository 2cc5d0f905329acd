//! One WebSocket session's output budget: the bytes of its frames queued but not yet written,
//! shared by the hub (which queues) and the session's task (which writes), and the signal that
//! cuts a session off. Control thread.
//!
//! Invariants: the hub never queues a frame that would take the session past
//! [`SESSION_OUTPUT_BYTES_MAX`]; it cuts the session off instead (counted), and the task, woken
//! by [`SessionOutput::cut`], closes the socket even while a write to it is blocked. The write
//! buffer of the socket itself is bounded separately (`http::WS_WRITE_BUFFER_BYTES_MAX`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Bytes of frames one session may have queued and unwritten. A room's join brings a few dozen
/// frames of well under 1 KiB and an SDP answer is under 16 KiB; a megabyte means the client
/// stopped reading (a chat flood to a receiver that never reads held a gigabyte before this).
pub const SESSION_OUTPUT_BYTES_MAX: usize = 1024 * 1024;

#[derive(Default)]
pub struct SessionOutput {
    queued_bytes: AtomicUsize,
    cut_off: AtomicBool,
    /// Cut off because the server is going away: the close says so (1001).
    going_away: AtomicBool,
    wake: Notify,
}

impl SessionOutput {
    /// Reserve room for a frame of `bytes`; false when it would pass the cap.
    pub fn reserve(&self, bytes: usize) -> bool {
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        if queued.saturating_add(bytes) > SESSION_OUTPUT_BYTES_MAX {
            return false;
        }
        self.queued_bytes
            .store(queued.saturating_add(bytes), Ordering::Relaxed);
        true
    }

    /// A frame of `bytes` was written (or dropped) by the task.
    pub fn release(&self, bytes: usize) {
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        self.queued_bytes
            .store(queued.saturating_sub(bytes), Ordering::Relaxed);
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Cut the session off: its task ends at its next await.
    pub fn cut(&self) {
        self.cut_off.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Cut the session off because the server is going away (a drain's end).
    pub fn go_away(&self) {
        self.going_away.store(true, Ordering::Relaxed);
        self.cut();
    }

    pub fn is_going_away(&self) -> bool {
        self.going_away.load(Ordering::Relaxed)
    }

    /// Resolves once the session was cut off.
    pub async fn cut_off(&self) {
        if self.cut_off.load(Ordering::Relaxed) {
            return;
        }
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_cap_and_come_back() {
        let output = SessionOutput::default();
        assert!(output.reserve(SESSION_OUTPUT_BYTES_MAX - 10));
        assert!(!output.reserve(11));
        assert!(output.reserve(10));
        output.release(SESSION_OUTPUT_BYTES_MAX);
        assert_eq!(output.queued_bytes(), 0);
    }
}
