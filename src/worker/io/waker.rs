//! Cross-thread wakeup of a worker blocked in [`super::DatagramIo::receive`]: an eventfd.
//!
//! Owns the eventfd. [`Waker::wake`] runs on any thread (control thread, other workers);
//! [`Waker::consume`] runs only on the worker that owns the backend, and only after the backend
//! saw the eventfd readable (a `ppoll` result or an io_uring `Read` completion).
//!
//! Invariants:
//! - the eventfd is *blocking* on purpose: the io_uring backend keeps a `Read` SQE on it, and
//!   io_uring completes a read of a non-blocking eventfd at once with `EAGAIN` instead of
//!   waiting for a write. The mmsg backend reads it only when `ppoll` said it is readable, and
//!   the worker is its only reader, so that read never blocks;
//! - a wake is never lost: the counter stays non-zero until the worker's wait consumes it, so a
//!   wake that races with the worker going to sleep ends that sleep at once;
//! - several wakes before the worker runs collapse into one (eventfd counter semantics).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// A wakeup another thread can fire to end a blocking wait early. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Create the eventfd (close-on-exec, blocking: see the module header).
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd, is valid, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker { fd: Arc::new(fd) })
    }

    /// End the owning worker's current or next blocking `receive`. Never blocks, never fails:
    /// a write can only be refused when the counter is about to overflow, i.e. when a wake is
    /// already pending.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local to an eventfd we own.
        let written = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
        if written < 0 {
            let error = io::Error::last_os_error();
            tracing::debug!(%error, "eventfd wake refused; a wake is already pending");
        }
    }

    /// Reset the counter after the backend saw the eventfd readable. Worker thread only.
    pub(crate) fn consume(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live local; the eventfd is readable (module invariant),
        // so the read does not block.
        let read = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut value as *mut u64).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
        if read < 0 {
            let error = io::Error::last_os_error();
            tracing::debug!(%error, "eventfd read failed");
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 1 && pfd.revents & libc::POLLIN != 0
    }

    #[test]
    fn wakes_collapse_and_consume_resets() {
        let waker = Waker::new().unwrap();
        assert!(!poll_readable(waker.raw_fd()));
        waker.wake();
        waker.clone().wake();
        assert!(poll_readable(waker.raw_fd()));
        waker.consume();
        assert!(
            !poll_readable(waker.raw_fd()),
            "one consume resets all pending wakes"
        );
    }

    #[test]
    fn wake_from_another_thread() {
        let waker = Waker::new().unwrap();
        let remote = waker.clone();
        std::thread::spawn(move || remote.wake()).join().unwrap();
        assert!(poll_readable(waker.raw_fd()));
    }
}
