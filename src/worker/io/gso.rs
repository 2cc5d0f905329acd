//! The send queue shared by both backends: queued datagrams grouped for UDP GSO.
//!
//! Owns the queue's arena (payload bytes back to back) and its groups: runs of consecutive
//! datagrams to one destination with one segment size, the last possibly shorter. A group is
//! contiguous in the arena, so it leaves as one `msghdr` with one iovec, plus a `UDP_SEGMENT`
//! cmsg when it holds two datagrams or more: the kernel splits it into segments (GSO).
//! Worker thread only.
//!
//! Invariants:
//! - a group holds at most [`GSO_SEGMENTS_MAX`] non-empty segments, [`GSO_BYTES_MAX`] bytes; all
//!   but the last are `segment_bytes` long, at most [`GSO_SEGMENT_BYTES_MAX`] when grouped;
//! - groups of several segments exist only when GSO was on when they were queued;
//! - the arena never reallocates (capacity [`SEND_QUEUE_BYTES_MAX`]), and the queue is not
//!   touched between building the `msghdr`s of a batch and the end of its sends, so the
//!   pointers handed to the kernel stay valid.

use std::io;
use std::net::{SocketAddr, SocketAddrV6};
use std::ops::Range;

use socket2::{SockAddr, Socket};

use super::{IoStats, DATAGRAM_BYTES_MAX, GSO_BYTES_MAX, GSO_SEGMENTS_MAX, GSO_SEGMENT_BYTES_MAX};
use super::{SEND_QUEUE_BYTES_MAX, SEND_QUEUE_DATAGRAMS_MAX};

/// Consecutive queued datagrams to one destination, sent as one (GSO) message.
pub(crate) struct SendGroup {
    destination: SocketAddr,
    /// `destination` as the kernel wants it (IPv4-mapped on an IPv6 socket).
    address: SockAddr,
    offset: usize,
    bytes: usize,
    segment_bytes: usize,
    segments: usize,
}

impl SendGroup {
    /// Whether this group goes out as a GSO super-datagram.
    pub(crate) fn uses_gso(&self) -> bool {
        self.segments > 1
    }

    /// Arena ranges of each datagram of the group, in order.
    fn segment_ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..self.segments).map(move |i| {
            let start = self.offset + i * self.segment_bytes;
            start..(start + self.segment_bytes).min(self.offset + self.bytes)
        })
    }
}

/// What [`SendQueue::push`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    Yes,
    /// The queue holds [`SEND_QUEUE_DATAGRAMS_MAX`]: flush and push again.
    Full,
    /// Bigger than [`DATAGRAM_BYTES_MAX`]: dropped.
    Oversized,
    /// An IPv6 destination on an IPv4 socket: cannot be sent.
    WrongFamily,
}

/// The datagrams queued since the last flush.
pub(crate) struct SendQueue {
    arena: Vec<u8>,
    groups: Vec<SendGroup>,
    datagrams: usize,
    socket_is_v6: bool,
}

impl SendQueue {
    pub(crate) fn new(socket_is_v6: bool) -> Self {
        SendQueue {
            arena: Vec::with_capacity(SEND_QUEUE_BYTES_MAX),
            groups: Vec::with_capacity(SEND_QUEUE_DATAGRAMS_MAX),
            datagrams: 0,
            socket_is_v6,
        }
    }

    /// Copy `payload` in, joining the last group when GSO is on and the run allows it.
    pub(crate) fn push(&mut self, destination: SocketAddr, payload: &[u8], gso: bool) -> Queued {
        if payload.len() > DATAGRAM_BYTES_MAX {
            return Queued::Oversized;
        }
        if destination.is_ipv6() && !self.socket_is_v6 {
            return Queued::WrongFamily;
        }
        if self.datagrams == SEND_QUEUE_DATAGRAMS_MAX {
            return Queued::Full;
        }
        let offset = self.arena.len();
        debug_assert!(
            offset + payload.len() <= self.arena.capacity(),
            "arena must not grow"
        );
        self.arena.extend_from_slice(payload);
        self.datagrams += 1;
        if let Some(last) = self.groups.last_mut() {
            let joins = gso
                && last.destination == destination
                && last.segments < GSO_SEGMENTS_MAX
                && last.segment_bytes <= GSO_SEGMENT_BYTES_MAX
                && last.bytes == last.segments * last.segment_bytes // no short segment yet
                && !payload.is_empty()
                && payload.len() <= last.segment_bytes
                && last.bytes + payload.len() <= GSO_BYTES_MAX;
            if joins {
                last.bytes += payload.len();
                last.segments += 1;
                return Queued::Yes;
            }
        }
        self.groups.push(SendGroup {
            destination,
            address: kernel_address(destination, self.socket_is_v6),
            offset,
            bytes: payload.len(),
            segment_bytes: payload.len(),
            segments: 1,
        });
        Queued::Yes
    }

    pub(crate) fn groups(&self) -> &[SendGroup] {
        &self.groups
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.arena.clear();
        self.groups.clear();
        self.datagrams = 0;
    }

    /// Point `hdr` at group `index`: its address, one iovec over its bytes, and a `UDP_SEGMENT`
    /// cmsg when it has several segments. `iov` and `cmsg` must stay put while `hdr` is in use.
    pub(crate) fn fill_msghdr(
        &self,
        index: usize,
        hdr: &mut libc::msghdr,
        iov: &mut libc::iovec,
        cmsg: &mut SegmentCmsg,
    ) {
        let group = &self.groups[index];
        let bytes = &self.arena[group.offset..group.offset + group.bytes];
        // The kernel only reads through these pointers (sendmsg).
        iov.iov_base = bytes.as_ptr().cast_mut().cast();
        iov.iov_len = bytes.len();
        *hdr = super::zeroed_msghdr();
        hdr.msg_name = group.address.as_ptr().cast_mut().cast();
        hdr.msg_namelen = group.address.len();
        hdr.msg_iov = iov;
        hdr.msg_iovlen = 1;
        if group.uses_gso() {
            *cmsg = SegmentCmsg::new(group.segment_bytes as u16);
            hdr.msg_control = (cmsg as *mut SegmentCmsg).cast();
            hdr.msg_controllen = std::mem::size_of::<SegmentCmsg>() as _;
        }
    }

    /// Count the kernel's answer to the send of group `index`: `Ok(())` or `Err(errno)`.
    /// Returns true when the group must be sent again one datagram at a time
    /// ([`Self::resend_without_gso`]): GSO refused (then `gso` turns false) or a deferred error.
    pub(crate) fn account(
        &self,
        index: usize,
        result: Result<(), i32>,
        gso: &mut bool,
        stats: &mut IoStats,
    ) -> bool {
        let group = &self.groups[index];
        let segments = group.segments as u64;
        let errno = match result {
            Ok(()) => {
                stats.datagrams_sent += segments;
                if group.uses_gso() {
                    stats.gso_batches += 1;
                    stats.gso_datagrams += segments;
                }
                return false;
            }
            Err(errno) => errno,
        };
        match classify_send_error(errno, group.uses_gso()) {
            SendFailure::GsoRefused => {
                if *gso {
                    let error = io::Error::from_raw_os_error(errno);
                    tracing::warn!(%error, "kernel refused UDP GSO; sending one by one on this socket");
                }
                *gso = false;
                stats.gso_enabled = false;
                true
            }
            SendFailure::Deferred => true,
            SendFailure::NoRoom => {
                stats.send_dropped += segments;
                false
            }
            SendFailure::Refused => {
                stats.send_errors += segments;
                tracing::trace!(errno, segments, "send refused");
                false
            }
        }
    }

    /// Datagrams in groups `from..`: what is lost when the rest of a batch is dropped.
    pub(crate) fn datagrams_from(&self, from: usize) -> u64 {
        self.groups[from..].iter().map(|g| g.segments as u64).sum()
    }

    /// Send group `index` again, one datagram at a time without GSO: after the kernel refused
    /// GSO, or once after a deferred ICMP error. Failures now are final.
    pub(crate) fn resend_without_gso(&self, index: usize, socket: &Socket, stats: &mut IoStats) {
        let group = &self.groups[index];
        for range in group.segment_ranges() {
            stats.syscalls += 1;
            let sent = socket.send_to_with_flags(&self.arena[range], &group.address, libc::MSG_DONTWAIT);
            match sent.map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)) {
                Ok(_) => stats.datagrams_sent += 1,
                Err(errno) if classify_send_error(errno, false) == SendFailure::NoRoom => {
                    stats.send_dropped += 1
                }
                Err(_) => stats.send_errors += 1,
            }
        }
    }
}

/// The destination in the socket's family: IPv4 goes IPv4-mapped on an IPv6 socket.
fn kernel_address(destination: SocketAddr, socket_is_v6: bool) -> SockAddr {
    match destination {
        SocketAddr::V4(v4) if socket_is_v6 => {
            SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0).into()
        }
        other => other.into(),
    }
}

/// A control message carrying `UDP_SEGMENT`, laid out as `CMSG_SPACE(sizeof(u16))` bytes.
#[repr(C)]
pub(crate) struct SegmentCmsg {
    header: libc::cmsghdr,
    segment_bytes: u16,
    _pad: [u8; 6],
}

// SAFETY (both asserts): CMSG_LEN/CMSG_SPACE are pure arithmetic on their argument.
const _: () =
    assert!(std::mem::offset_of!(SegmentCmsg, segment_bytes) == unsafe { libc::CMSG_LEN(0) } as usize);
const _: () = assert!(std::mem::size_of::<SegmentCmsg>() == unsafe { libc::CMSG_SPACE(2) } as usize);

impl SegmentCmsg {
    pub(crate) fn new(segment_bytes: u16) -> Self {
        // SAFETY: cmsghdr is plain integers (plus private padding on some libcs): all-zero is
        // valid, and the fields that matter are set below.
        let mut cmsg: SegmentCmsg = unsafe { std::mem::zeroed() };
        // SAFETY: pure arithmetic.
        cmsg.header.cmsg_len = unsafe { libc::CMSG_LEN(2) } as _;
        cmsg.header.cmsg_level = libc::SOL_UDP;
        cmsg.header.cmsg_type = libc::UDP_SEGMENT;
        cmsg.segment_bytes = segment_bytes;
        cmsg
    }
}

/// How a failed send of one message is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// No room (socket buffer, qdisc, memory): drop and count as `send_dropped`.
    NoRoom,
    /// The destination or route refused it: count as `send_errors`, carry on.
    Refused,
    /// `EIO`/`EINVAL` on a GSO message: the device or kernel cannot do GSO here.
    GsoRefused,
    /// An error left on the socket by an ICMP message about an *earlier* datagram (only with
    /// `IP_RECVERR` or a connected socket). It fails whichever send comes next, and reading it
    /// clears it: send this message once more before counting it as refused.
    Deferred,
}

pub(crate) fn classify_send_error(errno: i32, used_gso: bool) -> SendFailure {
    match errno {
        libc::EAGAIN | libc::ENOBUFS | libc::ENOMEM => SendFailure::NoRoom,
        libc::EIO | libc::EINVAL if used_gso => SendFailure::GsoRefused,
        libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN => {
            SendFailure::Deferred
        }
        _ => SendFailure::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn shape(queue: &SendQueue) -> Vec<(u16, usize, usize, usize)> {
        let g = queue.groups().iter();
        g.map(|g| (g.destination.port(), g.segments, g.segment_bytes, g.bytes))
            .collect()
    }

    #[test]
    fn groups_runs_to_one_destination() {
        let mut q = SendQueue::new(false);
        for len in [1200, 1200, 1200, 700, 1200] {
            assert_eq!(q.push(addr(1), &vec![1; len], true), Queued::Yes);
        }
        q.push(addr(2), &[2; 100], true);
        q.push(addr(1), &[3; 100], true);
        q.push(addr(1), &[3; 200], true); // bigger than the segment: new group
        let expected = vec![
            (1, 4, 1200, 4300),
            (1, 1, 1200, 1200),
            (2, 1, 100, 100),
            (1, 1, 100, 100),
            (1, 1, 200, 200),
        ];
        assert_eq!(shape(&q), expected);
    }

    #[test]
    fn respects_gso_limits_and_gso_off() {
        let mut q = SendQueue::new(false);
        for _ in 0..GSO_SEGMENTS_MAX + 1 {
            q.push(addr(1), &[0; 100], true);
        }
        assert_eq!(shape(&q), vec![(1, 64, 100, 6400), (1, 1, 100, 100)]);
        q.clear();
        for _ in 0..60 {
            q.push(addr(1), &[0; 1400], true); // 46 * 1400 <= 65507 < 47 * 1400
        }
        assert_eq!(shape(&q)[0], (1, 46, 1400, 46 * 1400));
        q.clear();
        q.push(addr(1), &[0; GSO_SEGMENT_BYTES_MAX + 1], true);
        q.push(addr(1), &[0; GSO_SEGMENT_BYTES_MAX + 1], true);
        assert_eq!(shape(&q).len(), 2, "over-MTU datagrams go alone");
        q.clear();
        q.push(addr(1), &[0; 10], false);
        q.push(addr(1), &[0; 10], false);
        assert_eq!(shape(&q).len(), 2);
        let ranges: Vec<_> = q.groups()[1].segment_ranges().collect();
        assert_eq!(ranges, vec![10..20]);
    }

    #[test]
    fn rejects_oversized_wrong_family_and_full() {
        let mut q = SendQueue::new(false);
        assert_eq!(
            q.push(addr(1), &[0; DATAGRAM_BYTES_MAX + 1], true),
            Queued::Oversized
        );
        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 9));
        assert_eq!(q.push(v6, &[0; 10], true), Queued::WrongFamily);
        for _ in 0..SEND_QUEUE_DATAGRAMS_MAX {
            assert_eq!(q.push(addr(1), &[0; DATAGRAM_BYTES_MAX], true), Queued::Yes);
        }
        assert_eq!(q.push(addr(1), &[0; 1], true), Queued::Full);
        assert!(q.arena.capacity() == SEND_QUEUE_BYTES_MAX, "arena never grew");
    }

    #[test]
    fn segment_cmsg_and_family_mapping() {
        let cmsg = SegmentCmsg::new(1200);
        assert_eq!(cmsg.header.cmsg_type, libc::UDP_SEGMENT);
        let mapped = kernel_address(addr(5), true).as_socket_ipv6().unwrap();
        assert_eq!(mapped.ip().to_ipv4_mapped(), Some([127, 0, 0, 1].into()));
        assert_eq!(classify_send_error(libc::EIO, true), SendFailure::GsoRefused);
        assert_eq!(classify_send_error(libc::EINVAL, false), SendFailure::Refused);
        assert_eq!(
            classify_send_error(libc::ECONNREFUSED, true),
            SendFailure::Deferred
        );
        assert_eq!(classify_send_error(libc::EACCES, false), SendFailure::Refused);
    }
}
