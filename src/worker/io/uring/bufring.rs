//! The io_uring backend's ring setup and provided buffer ring, where the multishot receive
//! puts datagrams.
//!
//! Owns two allocations: the ring of `BufRingEntry`s the kernel reads (page aligned, as
//! `IORING_REGISTER_PBUF_RING` wants) and the buffers they describe, each
//! [`RECV_BUFFER_BYTES`] long. Worker thread only, driven by [`super::UringIo`], which
//! registers the ring and unregisters it before this is dropped.
//!
//! Invariants:
//! - a buffer belongs to the kernel from `recycle` + `publish` until a completion names its
//!   id; then it is ours until the next `recycle`. Slices are formed only of buffers we own;
//! - only entries at or above the published tail are written, and the tail (which overlays the
//!   reserved field of entry 0) is stored atomically with Release, after the entries;
//! - the tail runs at most `RECV_RING_BUFFERS_COUNT` ahead of the kernel's head: every buffer
//!   is recycled exactly once per completion that named it.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

use super::super::{DATAGRAM_BYTES_MAX, RECV_RING_BUFFERS_COUNT, URING_CQ_ENTRIES, URING_SQ_ENTRIES};

/// Buffer group id of the receive buffer ring (one group per ring).
pub(super) const BUFFER_GROUP: u16 = 0;
/// Bytes of a received message name: a `sockaddr_in6`, the larger of the two families.
pub(super) const NAME_BYTES: usize = std::mem::size_of::<libc::sockaddr_in6>();
/// Bytes of `io_uring_recvmsg_out`, the header the kernel writes before the name.
const RECVMSG_OUT_BYTES: usize = 16;
/// Bytes of one provided buffer: `io_uring_recvmsg_out` header, name, then the payload.
pub(super) const RECV_BUFFER_BYTES: usize = RECVMSG_OUT_BYTES + NAME_BYTES + DATAGRAM_BYTES_MAX;

/// Create the ring and its receive buffer ring, registered as [`BUFFER_GROUP`]. Fails where
/// io_uring is unavailable (disabled by sysctl, seccomp, kernel < 5.19), for `open(Auto)` to
/// fall back. The caller drops the ring (after unregistering) before the buffers.
pub(super) fn ring_with_buffers() -> io::Result<(BufRing, IoUring)> {
    // `bufs` before `ring`: if registration fails, the ring is dropped (closed) first.
    let bufs = BufRing::new()?;
    // COOP_TASKRUN (5.19+): run completion work when we enter the kernel rather than
    // interrupting the worker. Older kernels refuse the flag: retry without it.
    let ring = IoUring::builder()
        .setup_coop_taskrun()
        .setup_cqsize(URING_CQ_ENTRIES as u32)
        .build(URING_SQ_ENTRIES as u32)
        .or_else(|_| {
            IoUring::builder()
                .setup_cqsize(URING_CQ_ENTRIES as u32)
                .build(URING_SQ_ENTRIES as u32)
        })?;
    if !ring.params().is_feature_ext_arg() {
        let reason = "io_uring without EXT_ARG (kernel < 5.11)";
        return Err(io::Error::new(io::ErrorKind::Unsupported, reason));
    }
    // SAFETY: the entries stay allocated and in place until after the ring is closed (the
    // caller's contract above).
    unsafe {
        ring.submitter().register_buf_ring_with_flags(
            bufs.entries.as_ptr() as u64,
            RECV_RING_BUFFERS_COUNT as u16,
            BUFFER_GROUP,
            0,
        )?;
    }
    Ok((bufs, ring))
}

/// The provided buffer ring: the entries the kernel reads, and the buffers they describe.
pub(super) struct BufRing {
    entries: NonNull<BufRingEntry>,
    entries_layout: Layout,
    buffers: NonNull<u8>,
    buffers_layout: Layout,
    /// Our copy of the ring tail: entries below it are published or about to be.
    tail: u16,
}

impl BufRing {
    pub(super) fn new() -> io::Result<Self> {
        // SAFETY: sysconf takes no pointers.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let entries_bytes = RECV_RING_BUFFERS_COUNT * std::mem::size_of::<BufRingEntry>();
        let entries_layout = Layout::from_size_align(entries_bytes, page).map_err(io::Error::other)?;
        let buffers_layout = Layout::from_size_align(RECV_RING_BUFFERS_COUNT * RECV_BUFFER_BYTES, 64)
            .map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size.
        let (entries, buffers) = unsafe {
            (
                alloc::alloc_zeroed(entries_layout),
                alloc::alloc_zeroed(buffers_layout),
            )
        };
        let (Some(entries), Some(buffers)) = (NonNull::new(entries.cast()), NonNull::new(buffers)) else {
            alloc::handle_alloc_error(buffers_layout);
        };
        let mut ring = BufRing {
            entries,
            entries_layout,
            buffers,
            buffers_layout,
            tail: 0,
        };
        for bid in 0..RECV_RING_BUFFERS_COUNT as u16 {
            ring.recycle(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Hand buffer `bid` back to the kernel (visible after `publish`).
    pub(super) fn recycle(&mut self, bid: u16) {
        let slot = usize::from(self.tail) & (RECV_RING_BUFFERS_COUNT - 1);
        // SAFETY: `slot` is within the entries allocation; the kernel reads only entries below
        // the published tail, and this one is at or above it. The setters write addr/len/bid
        // only, never the reserved field that doubles as the ring tail in entry 0.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        // SAFETY: `bid` < RECV_RING_BUFFERS_COUNT, so the buffer is within its allocation.
        entry.set_addr(unsafe { self.buffers.as_ptr().add(usize::from(bid) * RECV_BUFFER_BYTES) } as u64);
        entry.set_len(RECV_BUFFER_BYTES as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Make recycled buffers visible to the kernel.
    pub(super) fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field, which is ours to
        // write; the kernel reads it atomically, so we store it atomically with Release to order
        // the entry writes before it.
        let tail = unsafe { &*BufRingEntry::tail(self.entries.as_ptr()).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }

    /// The first `len` bytes of buffer `bid`.
    ///
    /// SAFETY: the caller owns `bid` (it came in a completion and is not recycled yet), so the
    /// kernel does not write to it while the slice lives.
    pub(super) unsafe fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let bid = usize::from(bid) % RECV_RING_BUFFERS_COUNT;
        let start = self.buffers.as_ptr().add(bid * RECV_BUFFER_BYTES);
        std::slice::from_raw_parts(start, len.min(RECV_BUFFER_BYTES))
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the ring no longer uses them (see
        // `UringIo::drop`, which runs first).
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            alloc::dealloc(self.buffers.as_ptr(), self.buffers_layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_and_recycles_in_order() {
        let mut ring = BufRing::new().unwrap();
        assert_eq!(usize::from(ring.tail), RECV_RING_BUFFERS_COUNT % 65536);
        // SAFETY: the ring is not registered with any kernel ring, so every buffer is ours.
        let (first, second) = unsafe { (ring.buffer(0, 8).as_ptr(), ring.buffer(1, 8).as_ptr()) };
        assert_eq!(second as usize - first as usize, RECV_BUFFER_BYTES);
        ring.recycle(1);
        ring.publish();
        // SAFETY: reading the published tail of our own, unregistered ring.
        let tail = unsafe { *BufRingEntry::tail(ring.entries.as_ptr()) };
        assert_eq!(tail, ring.tail);
    }

    #[test]
    fn recvmsg_out_header_is_as_sized_here() {
        let mut buf = vec![0u8; RECV_BUFFER_BYTES];
        buf[0..4].copy_from_slice(&16u32.to_ne_bytes()); // namelen
        buf[8..12].copy_from_slice(&3u32.to_ne_bytes()); // payloadlen
        let payload = RECVMSG_OUT_BYTES + NAME_BYTES;
        buf[payload..payload + 3].copy_from_slice(b"abc");
        let mut msghdr = super::super::super::zeroed_msghdr();
        msghdr.msg_namelen = NAME_BYTES as libc::socklen_t;
        let out = io_uring::types::RecvMsgOut::parse(&buf[..payload + 3], &msghdr).unwrap();
        assert_eq!(out.payload_data(), b"abc");
        assert_eq!(out.name_data().len(), 16);
    }
}
