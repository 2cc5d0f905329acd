//! The io_uring backend: multishot `RECVMSG` into a provided buffer ring, batched `SENDMSG`.
//!
//! Owns the ring, the buffer ring and its buffers, the receive `msghdr`, the eventfd read
//! buffer, the send queue and the `msghdr`/iovec/cmsg arrays its SQEs point to. Runs on one
//! worker thread; it may be opened on another and moved (no `SINGLE_ISSUER`/`DEFER_TASKRUN`
//! for that reason: both tie the ring to the thread that created it).
//!
//! Invariants (the memory rules are what the `unsafe` blocks rely on):
//! - one multishot receive and one eventfd `Read` are armed whenever the worker waits; a
//!   completion without `IORING_CQE_F_MORE` (e.g. `ENOBUFS` when the buffer ring ran dry)
//!   disarms the receive and the next `receive` re-arms it;
//! - a provided buffer is ours from its completion until `recycle`, which happens right after
//!   `on_datagram` returns; the kernel owns all others, so we only ever form slices of ours;
//! - every send SQE points into `queue` and the `send_*` arrays; `flush` returns only when
//!   every send of its batch has completed, so that memory is never changed while in flight.
//!   Sends carry `MSG_DONTWAIT`: a full socket buffer completes at once with `EAGAIN` instead
//!   of parking the request, so that wait is short;
//! - completions reaped while waiting for sends are kept, in order, in `stash` for `receive`;
//! - on drop, every request is cancelled synchronously before the memory it uses is freed.

mod bufring;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use io_uring::types::{self, CancelBuilder, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};
use socket2::Socket;

use super::gso::{Queued, SegmentCmsg, SendQueue};
use super::{DatagramIo, IoBackendKind, IoConfig, IoStats, RecvMeta, Waker};
use super::{RECV_BATCH_DATAGRAMS_MAX, SEND_QUEUE_DATAGRAMS_MAX, URING_CQ_ENTRIES};
use bufring::{BufRing, BUFFER_GROUP, NAME_BYTES};

/// How long `flush` waits per round for send completions before warning (they complete
/// inline in practice; this only bounds a pathological kernel).
const SEND_COMPLETION_WAIT: Duration = Duration::from_millis(10);

// user_data: the kind of request in the top byte, the send group index below.
const TAG_SHIFT: u32 = 56;
const TAG_RECV: u64 = 1 << TAG_SHIFT;
const TAG_WAKE: u64 = 2 << TAG_SHIFT;
const TAG_SEND: u64 = 3 << TAG_SHIFT;
const TAG_MASK: u64 = 0xff << TAG_SHIFT;

pub(crate) struct UringIo {
    // Declared first: dropped (ring closed) before the memory below, after `Drop::drop`
    // cancelled every request.
    ring: IoUring,
    socket: Socket,
    local: SocketAddr,
    waker: Waker,
    gso: bool,
    stats: IoStats,
    bufs: BufRing,
    recv_msghdr: Box<libc::msghdr>,
    recv_armed: bool,
    wake_buf: Box<u64>,
    wake_armed: bool,
    stash: VecDeque<cqueue::Entry>,
    queue: SendQueue,
    send_iovecs: Box<[libc::iovec]>,
    send_cmsgs: Box<[SegmentCmsg]>,
    send_hdrs: Box<[libc::msghdr]>,
    sends_in_flight: usize,
    /// Groups to send again one datagram at a time once the batch completed: GSO refused, or
    /// a deferred ICMP error (see `gso::SendFailure::Deferred`).
    resend: Vec<usize>,
}

// SAFETY: the raw pointers (buffer ring, msghdrs, iovecs) point only into heap memory owned by
// this struct, and the ring is not tied to a thread (no SINGLE_ISSUER). Moving the struct to
// another thread moves everything together; it is never used from two threads at once.
unsafe impl Send for UringIo {}

impl UringIo {
    pub(crate) fn open(config: &IoConfig) -> io::Result<Self> {
        // (bufs, ring): should a step below fail, the ring is dropped (closed) first.
        let (bufs, ring) = bufring::ring_with_buffers()?;
        let socket = super::open_socket(config, false)?;
        let local = super::socket_local_addr(&socket)?;
        let gso = config.gso && super::gso_supported(&socket);
        let mut recv_msghdr = Box::new(super::zeroed_msghdr());
        recv_msghdr.msg_namelen = NAME_BYTES as libc::socklen_t;
        let mut io = UringIo {
            ring,
            waker: Waker::new()?,
            local,
            gso,
            stats: IoStats::new(gso),
            bufs,
            recv_msghdr,
            recv_armed: false,
            wake_buf: Box::new(0),
            wake_armed: false,
            stash: VecDeque::with_capacity(URING_CQ_ENTRIES),
            queue: SendQueue::new(local.is_ipv6()),
            send_iovecs: super::boxed_slice(SEND_QUEUE_DATAGRAMS_MAX, super::empty_iovec),
            send_cmsgs: super::boxed_slice(SEND_QUEUE_DATAGRAMS_MAX, || SegmentCmsg::new(0)),
            send_hdrs: super::boxed_slice(SEND_QUEUE_DATAGRAMS_MAX, super::zeroed_msghdr),
            sends_in_flight: 0,
            resend: Vec::new(),
            socket,
        };
        io.self_test()?;
        Ok(io)
    }

    /// Arm the receive and the wakeup and let the kernel look at them: a kernel without
    /// multishot `RECVMSG` (< 6.0) or with io_uring networking filtered fails here, so that
    /// `open(Auto)` can still fall back to mmsg.
    fn self_test(&mut self) -> io::Result<()> {
        self.arm()?;
        self.wait(Some(Duration::ZERO))?;
        self.drain_completions();
        let failed = self
            .stash
            .iter()
            .find(|c| c.user_data() & TAG_MASK != TAG_SEND && c.result() < 0);
        match failed {
            Some(cqe) => Err(io::Error::from_raw_os_error(-cqe.result())),
            None => Ok(()),
        }
    }

    /// The socket, for tests that tune it (e.g. `IP_RECVERR`, `SO_NO_CHECK`).
    #[cfg(test)]
    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Queue one SQE, submitting first if the submission queue is full.
    ///
    /// SAFETY: every pointer in `entry` must stay valid until its completion(s) arrive.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        if self.ring.submission().push(entry).is_ok() {
            return Ok(());
        }
        self.submit()?;
        self.ring
            .submission()
            .push(entry)
            .map_err(|_| io::Error::other("io_uring SQ full after submit"))
    }

    /// Submit queued SQEs without waiting.
    fn submit(&mut self) -> io::Result<()> {
        self.stats.syscalls += 1;
        match self.ring.submit() {
            Err(e) if !super::is_benign_wait_error(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Submit, then wait for one completion or `timeout` (None: forever).
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stats.syscalls += 1;
        let result = match timeout {
            None => self.ring.submitter().submit_and_wait(1),
            Some(timeout) => {
                let ts = Timespec::from(timeout);
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match result {
            Err(e) if !super::is_benign_wait_error(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Make sure the multishot receive and the eventfd read are queued.
    fn arm(&mut self) -> io::Result<()> {
        if !self.recv_armed {
            let fd = types::Fd(self.socket.as_raw_fd());
            let entry = opcode::RecvMsgMulti::new(fd, &*self.recv_msghdr, BUFFER_GROUP)
                .build()
                .user_data(TAG_RECV);
            // SAFETY: `recv_msghdr` is boxed and lives until `Drop` cancelled this request; the
            // buffers it fills belong to the registered buffer ring.
            unsafe { self.push(&entry)? };
            self.recv_armed = true;
        }
        if !self.wake_armed {
            let fd = types::Fd(self.waker.raw_fd());
            let buf: *mut u64 = &mut *self.wake_buf;
            let entry = opcode::Read::new(fd, buf.cast(), 8).build().user_data(TAG_WAKE);
            // SAFETY: `wake_buf` is boxed and lives until `Drop` cancelled this request.
            unsafe { self.push(&entry)? };
            self.wake_armed = true;
        }
        Ok(())
    }

    /// Move every completion out of the CQ: sends are accounted now, the rest is stashed.
    fn drain_completions(&mut self) {
        for cqe in self.ring.completion() {
            if cqe.user_data() & TAG_MASK != TAG_SEND {
                self.stash.push_back(cqe);
                continue;
            }
            self.sends_in_flight = self.sends_in_flight.saturating_sub(1);
            let index = (cqe.user_data() & !TAG_MASK) as usize;
            if index >= self.queue.groups().len() {
                debug_assert!(false, "send completion {index} outlived its batch");
                continue;
            }
            let result = if cqe.result() >= 0 {
                Ok(())
            } else {
                Err(-cqe.result())
            };
            if self.queue.account(index, result, &mut self.gso, &mut self.stats) {
                self.resend.push(index);
            }
        }
    }

    /// Deliver stashed receive completions (up to a batch) and note wakeups.
    fn process_stash(&mut self, on_datagram: &mut dyn FnMut(RecvMeta, &[u8])) -> usize {
        let mut delivered = 0;
        while delivered < RECV_BATCH_DATAGRAMS_MAX {
            let Some(cqe) = self.stash.pop_front() else {
                break;
            };
            if cqe.user_data() == TAG_WAKE {
                self.wake_armed = false;
                continue;
            }
            debug_assert_eq!(cqe.user_data(), TAG_RECV);
            if !cqueue::more(cqe.flags()) {
                self.recv_armed = false;
                self.stats.recv_rearms += 1;
            }
            if cqe.result() < 0 {
                if cqe.result() != -libc::ENOBUFS {
                    self.stats.recv_errors += 1;
                    let error = io::Error::from_raw_os_error(-cqe.result());
                    tracing::debug!(%error, "io_uring receive completion failed; re-arming");
                }
                continue;
            }
            let Some(bid) = cqueue::buffer_select(cqe.flags()) else {
                continue;
            };
            // SAFETY: `bid` came in this completion and is recycled only below.
            let buf = unsafe { self.bufs.buffer(bid, cqe.result() as usize) };
            match RecvMsgOut::parse(buf, &self.recv_msghdr) {
                Ok(out) if out.is_payload_truncated() => self.stats.datagrams_truncated += 1,
                Ok(out) => match super::socket_addr_from_raw(out.name_data()) {
                    Some(source) => {
                        let payload = out.payload_data();
                        let meta = RecvMeta {
                            source,
                            len: payload.len(),
                        };
                        on_datagram(meta, payload);
                        delivered += 1;
                    }
                    None => self.stats.recv_errors += 1,
                },
                Err(()) => self.stats.recv_errors += 1,
            }
            self.bufs.recycle(bid);
        }
        self.bufs.publish();
        self.stats.datagrams_received += delivered as u64;
        delivered
    }
}

impl DatagramIo for UringIo {
    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Uring
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn waker(&self) -> Waker {
        self.waker.clone()
    }

    fn receive(
        &mut self,
        timeout: Option<Duration>,
        on_datagram: &mut dyn FnMut(RecvMeta, &[u8]),
    ) -> io::Result<usize> {
        self.arm()?;
        self.drain_completions();
        if self.stash.is_empty() {
            self.wait(timeout)?;
            self.drain_completions();
        } else if !self.ring.submission().is_empty() {
            self.submit()?;
        }
        Ok(self.process_stash(on_datagram))
    }

    fn queue_send(&mut self, destination: SocketAddr, payload: &[u8]) {
        let mut queued = self.queue.push(destination, payload, self.gso);
        if queued == Queued::Full {
            if let Err(error) = self.flush() {
                tracing::warn!(%error, "flush of a full send queue failed");
            }
            queued = self.queue.push(destination, payload, self.gso);
        }
        match queued {
            Queued::Yes => {}
            Queued::Full | Queued::Oversized => self.stats.send_dropped += 1,
            Queued::WrongFamily => self.stats.send_errors += 1,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.queue.is_empty() {
            return Ok(());
        }
        let count = self.queue.groups().len();
        let fd = types::Fd(self.socket.as_raw_fd());
        for i in 0..count {
            self.queue.fill_msghdr(
                i,
                &mut self.send_hdrs[i],
                &mut self.send_iovecs[i],
                &mut self.send_cmsgs[i],
            );
            let hdr: *const libc::msghdr = &self.send_hdrs[i];
            let entry = opcode::SendMsg::new(fd, hdr)
                .flags(libc::MSG_DONTWAIT as u32)
                .build();
            // SAFETY: the msghdr, its iovec, cmsg, address and payload live in `send_*` and
            // `queue`, which are not touched until every send completed (loop below).
            if let Err(error) = unsafe { self.push(&entry.user_data(TAG_SEND | i as u64)) } {
                self.stats.send_dropped += self.queue.datagrams_from(i);
                tracing::warn!(%error, "io_uring send submission failed");
                break;
            }
            self.sends_in_flight += 1;
        }
        if self.sends_in_flight > 0 {
            self.submit()?;
            self.drain_completions();
        }
        while self.sends_in_flight > 0 {
            self.wait(Some(SEND_COMPLETION_WAIT))?;
            self.drain_completions();
            if self.sends_in_flight > 0 {
                tracing::warn!(
                    in_flight = self.sends_in_flight,
                    "io_uring sends slow to complete"
                );
            }
        }
        for index in self.resend.drain(..) {
            self.queue
                .resend_without_gso(index, &self.socket, &mut self.stats);
        }
        self.queue.clear();
        Ok(())
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // Cancel (and wait for) every armed request, so the kernel lets go of `recv_msghdr`,
        // `wake_buf` and the provided buffers before they are freed. Sends are never in flight
        // here: `flush` waits for them.
        let timeout = Timespec::from(Duration::from_secs(1));
        let cancelled = self
            .ring
            .submitter()
            .register_sync_cancel(Some(timeout), CancelBuilder::any());
        if let Err(error) = cancelled {
            if error.raw_os_error() != Some(libc::ENOENT) {
                tracing::warn!(%error, "io_uring cancel on close failed");
            }
        }
        let _ = self.ring.submitter().unregister_buf_ring(BUFFER_GROUP);
    }
}
