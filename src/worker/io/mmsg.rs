//! The portable backend: `recvmmsg` / `sendmmsg` on a non-blocking socket, `ppoll` to wait.
//!
//! Owns the socket, the receive slots (one `DATAGRAM_BYTES_MAX` buffer, name and `mmsghdr` per
//! datagram of a batch), the send queue and its `mmsghdr` array. Runs on one worker thread.
//!
//! Invariants:
//! - the socket is non-blocking; every call either has data or returns at once, and the only
//!   blocking call is the `ppoll` on the socket and the waker's eventfd;
//! - a receive first tries `recvmmsg` (one syscall when traffic flows) and waits only when it
//!   found nothing; the eventfd is read only after `ppoll` reported it readable;
//! - `mmsghdr`s point into heap memory owned by this struct and are rebuilt before every call,
//!   so no pointer outlives the call that uses it;
//! - `sendmmsg` stops at the first failing message: that message is counted and skipped (or
//!   retried once, for an error an earlier ICMP left on the socket) and the rest is sent by the
//!   next call, so one dead peer never stops the batch.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::Socket;

use super::gso::{self, Queued, SegmentCmsg, SendFailure, SendQueue};
use super::{DatagramIo, IoBackendKind, IoConfig, IoStats, RecvMeta, Waker};
use super::{DATAGRAM_BYTES_MAX, RECV_BATCH_DATAGRAMS_MAX, SEND_QUEUE_DATAGRAMS_MAX};

/// Bytes of a received message name: a `sockaddr_in6`, the larger of the two families.
const NAME_BYTES: usize = std::mem::size_of::<libc::sockaddr_in6>();

pub(crate) struct MmsgIo {
    socket: Socket,
    local: SocketAddr,
    waker: Waker,
    gso: bool,
    stats: IoStats,
    recv_data: Box<[u8]>,
    recv_names: Box<[[u8; NAME_BYTES]]>,
    recv_iovecs: Box<[libc::iovec]>,
    recv_hdrs: Box<[libc::mmsghdr]>,
    queue: SendQueue,
    send_iovecs: Box<[libc::iovec]>,
    send_cmsgs: Box<[SegmentCmsg]>,
    send_hdrs: Box<[libc::mmsghdr]>,
}

// SAFETY: the raw pointers inside the iovec/mmsghdr arrays point only into heap buffers owned by
// this same struct, are rewritten before each syscall, and are never shared: moving the whole
// struct to another thread moves their targets with it.
unsafe impl Send for MmsgIo {}

fn empty_mmsghdr() -> libc::mmsghdr {
    libc::mmsghdr {
        msg_hdr: super::zeroed_msghdr(),
        msg_len: 0,
    }
}

impl MmsgIo {
    pub(crate) fn open(config: &IoConfig) -> io::Result<Self> {
        let socket = super::open_socket(config, true)?;
        let local = super::socket_local_addr(&socket)?;
        let gso = config.gso && super::gso_supported(&socket);
        Ok(MmsgIo {
            local,
            waker: Waker::new()?,
            gso,
            stats: IoStats::new(gso),
            recv_data: vec![0; RECV_BATCH_DATAGRAMS_MAX * DATAGRAM_BYTES_MAX].into(),
            recv_names: vec![[0; NAME_BYTES]; RECV_BATCH_DATAGRAMS_MAX].into(),
            recv_iovecs: super::boxed_slice(RECV_BATCH_DATAGRAMS_MAX, super::empty_iovec),
            recv_hdrs: super::boxed_slice(RECV_BATCH_DATAGRAMS_MAX, empty_mmsghdr),
            queue: SendQueue::new(local.is_ipv6()),
            send_iovecs: super::boxed_slice(SEND_QUEUE_DATAGRAMS_MAX, super::empty_iovec),
            send_cmsgs: super::boxed_slice(SEND_QUEUE_DATAGRAMS_MAX, || SegmentCmsg::new(0)),
            send_hdrs: super::boxed_slice(SEND_QUEUE_DATAGRAMS_MAX, empty_mmsghdr),
            socket,
        })
    }

    /// One non-blocking `recvmmsg`. Returns (datagrams taken from the socket, delivered).
    fn recv_batch(&mut self, on_datagram: &mut dyn FnMut(RecvMeta, &[u8])) -> io::Result<(usize, usize)> {
        let chunks = self.recv_data.chunks_exact_mut(DATAGRAM_BYTES_MAX);
        let slots = self.recv_hdrs.iter_mut().zip(&mut self.recv_iovecs[..]);
        for (((hdr, iov), name), data) in slots.zip(&mut self.recv_names[..]).zip(chunks) {
            iov.iov_base = data.as_mut_ptr().cast();
            iov.iov_len = data.len();
            hdr.msg_hdr = super::zeroed_msghdr();
            hdr.msg_hdr.msg_name = name.as_mut_ptr().cast();
            hdr.msg_hdr.msg_namelen = NAME_BYTES as libc::socklen_t;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_len = 0;
        }
        self.stats.syscalls += 1;
        // SAFETY: every header points at a live iovec, name and data buffer of this struct with
        // the lengths given; the kernel writes at most those lengths during the call.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                self.recv_hdrs.as_mut_ptr(),
                RECV_BATCH_DATAGRAMS_MAX as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok((0, 0)),
                // ICMP errors queued on the socket (only with IP_RECVERR or connected sockets):
                // a peer went away, which is no reason to stop receiving.
                Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH) => {
                    self.stats.recv_errors += 1;
                    Ok((0, 0))
                }
                _ => Err(error),
            };
        }
        let received = n as usize;
        let mut delivered = 0;
        for i in 0..received {
            let hdr = &self.recv_hdrs[i];
            if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.stats.datagrams_truncated += 1;
                continue;
            }
            let name_len = (hdr.msg_hdr.msg_namelen as usize).min(NAME_BYTES);
            let Some(source) = super::socket_addr_from_raw(&self.recv_names[i][..name_len]) else {
                self.stats.recv_errors += 1;
                continue;
            };
            let len = hdr.msg_len as usize;
            let data = &self.recv_data[i * DATAGRAM_BYTES_MAX..i * DATAGRAM_BYTES_MAX + len];
            on_datagram(RecvMeta { source, len }, data);
            delivered += 1;
        }
        self.stats.datagrams_received += delivered as u64;
        Ok((received, delivered))
    }

    /// `ppoll` the socket and the eventfd. Returns whether the socket is readable; consumes a
    /// pending wake.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        let mut fds = [
            libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.waker.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as _,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        self.stats.syscalls += 1;
        // SAFETY: two live pollfds; `ts_ptr` is null or points to a live timespec.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, std::ptr::null()) };
        if n < 0 {
            let error = io::Error::last_os_error();
            return if super::is_benign_wait_error(&error) {
                Ok(false)
            } else {
                Err(error)
            };
        }
        if fds[1].revents & libc::POLLIN != 0 {
            self.stats.syscalls += 1;
            self.waker.consume();
        }
        Ok(fds[0].revents != 0)
    }
}

impl MmsgIo {
    /// The socket, for tests that tune it (e.g. `IP_RECVERR`, `SO_NO_CHECK`).
    #[cfg(test)]
    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }
}

impl DatagramIo for MmsgIo {
    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Mmsg
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
        let (received, delivered) = self.recv_batch(on_datagram)?;
        if received > 0 || timeout == Some(Duration::ZERO) {
            return Ok(delivered);
        }
        if self.wait(timeout)? {
            return Ok(self.recv_batch(on_datagram)?.1);
        }
        Ok(0)
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
        for i in 0..count {
            let hdr = &mut self.send_hdrs[i];
            self.queue.fill_msghdr(
                i,
                &mut hdr.msg_hdr,
                &mut self.send_iovecs[i],
                &mut self.send_cmsgs[i],
            );
            hdr.msg_len = 0;
        }
        let mut next = 0;
        let mut retried = None;
        while next < count {
            self.stats.syscalls += 1;
            // SAFETY: headers next..count were filled above and point at the queue's arena and
            // addresses and at this struct's iovec/cmsg arrays, all untouched until we return.
            let n = unsafe {
                libc::sendmmsg(
                    self.socket.as_raw_fd(),
                    self.send_hdrs[next..].as_mut_ptr(),
                    (count - next) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                for index in next..next + n as usize {
                    self.queue.account(index, Ok(()), &mut self.gso, &mut self.stats);
                }
                next += n as usize;
                continue;
            }
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            let uses_gso = self.queue.groups()[next].uses_gso();
            match gso::classify_send_error(errno, uses_gso) {
                _ if errno == libc::EINTR => {}
                SendFailure::Deferred if retried != Some(next) => retried = Some(next),
                // A full socket buffer stays full for the rest of this batch: drop it all.
                SendFailure::NoRoom if errno == libc::EAGAIN => {
                    self.stats.send_dropped += self.queue.datagrams_from(next);
                    break;
                }
                // Every later group may carry GSO too: send the rest one by one.
                SendFailure::GsoRefused => {
                    self.queue
                        .account(next, Err(errno), &mut self.gso, &mut self.stats);
                    for index in next..count {
                        self.queue
                            .resend_without_gso(index, &self.socket, &mut self.stats);
                    }
                    break;
                }
                _ => {
                    if self
                        .queue
                        .account(next, Err(errno), &mut self.gso, &mut self.stats)
                    {
                        self.queue.resend_without_gso(next, &self.socket, &mut self.stats);
                    }
                    next += 1;
                }
            }
        }
        self.queue.clear();
        Ok(())
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}
