//! Worker datagram I/O: the only code in webcall that touches UDP sockets.
//!
//! Owns one UDP socket per media worker and the backend that drives it: io_uring
//! (`uring`, multishot receive into a provided buffer ring, batched `SENDMSG`) or the
//! portable fallback (`mmsg`, `recvmmsg`/`sendmmsg` with `ppoll`). Both sit behind
//! [`DatagramIo`], are chosen once by [`open`], and batch sends into UDP GSO groups (`gso`).
//! [`SimIo`] implements the same trait with no socket at all, for the simulation and benches.
//!
//! Thread: a backend is created anywhere, then moved to and used by exactly one worker thread
//! (`DatagramIo: Send`, not `Sync`). Only its [`Waker`] is shared with other threads.
//!
//! Invariants and the driving contract for the worker loop:
//! - the payload slice given to `on_datagram` lives only for that callback: buffers are
//!   recycled to the kernel right after it returns, so copy what must outlive it;
//! - queued sends leave only on [`DatagramIo::flush`]: flush once per loop turn, *before*
//!   blocking in [`DatagramIo::receive`], or the queue waits for the next wakeup;
//! - after every `receive` return, drain the worker's mailbox: a wakeup is never lost (the
//!   eventfd stays set until a blocking wait consumes it) but it may be reported together with
//!   datagrams, or as an early return with none;
//! - data-plane failures (full socket buffer, unreachable peer, oversized datagram) are dropped
//!   and counted in [`IoStats`]; only a broken socket or ring surfaces as an `io::Error`.

mod gso;
mod mmsg;
mod sim;
mod uring;
mod waker;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

pub use sim::SimIo;
pub use waker::Waker;

use crate::config::IoChoice;

/// Largest datagram received or sent, in bytes. WebRTC keeps packets under the 1500-byte path
/// MTU; a bigger incoming datagram is truncated by the kernel, counted and dropped.
pub const DATAGRAM_BYTES_MAX: usize = 2048;
/// Datagrams handed to `on_datagram` per `receive` call: one `recvmmsg` batch, or one batch of
/// completions, so a worker turn stays short and timers keep firing under load.
pub const RECV_BATCH_DATAGRAMS_MAX: usize = 64;
/// Datagrams queued between flushes: a keyframe (about 100 packets) to a handful of
/// subscribers. When full, `queue_send` flushes first.
pub const SEND_QUEUE_DATAGRAMS_MAX: usize = 512;
/// Bytes of the send queue's arena: every queued datagram fits, whatever its size.
pub const SEND_QUEUE_BYTES_MAX: usize = SEND_QUEUE_DATAGRAMS_MAX * DATAGRAM_BYTES_MAX;
/// Segments per GSO super-datagram: the kernel's `UDP_MAX_SEGMENTS`.
pub const GSO_SEGMENTS_MAX: usize = 64;
/// Largest datagram, in bytes, grouped for GSO: a UDP payload that fits a 1500-byte MTU over
/// IPv6 (1500 - 40 - 8). The kernel refuses segments over the path MTU with `EINVAL`, which
/// would turn GSO off for the socket; bigger datagrams (rare in WebRTC) go alone.
pub const GSO_SEGMENT_BYTES_MAX: usize = 1452;
/// Bytes per GSO super-datagram: it is one UDP datagram before segmentation, so it must fit an
/// IPv4 UDP payload (65535 - 20 IP - 8 UDP header bytes).
pub const GSO_BYTES_MAX: usize = 65_507;
/// Provided buffers in the io_uring receive ring (a power of two, at most 32768): what the
/// kernel can receive ahead of the worker before the multishot receive pauses (`ENOBUFS`).
pub const RECV_RING_BUFFERS_COUNT: usize = 256;
/// io_uring submission entries: a whole send queue (one SQE per group) plus the receive and
/// wakeup re-arms fit in one submit.
pub const URING_SQ_ENTRIES: usize = 1024;
/// io_uring completion entries: every in-flight send plus every provided buffer can complete
/// before the worker reaps, without relying on the kernel's overflow list.
pub const URING_CQ_ENTRIES: usize = 2048;
/// Default `SO_RCVBUF` request, in bytes: rides out a few milliseconds of a busy worker at
/// line rate. The kernel caps it at `net.core.rmem_max`.
pub const RECV_BUFFER_BYTES_DEFAULT: usize = 4 << 20;
/// Default `SO_SNDBUF` request, in bytes; capped by `net.core.wmem_max`.
pub const SEND_BUFFER_BYTES_DEFAULT: usize = 4 << 20;

const _: () = assert!(DATAGRAM_BYTES_MAX <= GSO_BYTES_MAX);
const _: () = assert!(RECV_RING_BUFFERS_COUNT.is_power_of_two() && RECV_RING_BUFFERS_COUNT <= 32768);
const _: () = assert!(RECV_RING_BUFFERS_COUNT >= RECV_BATCH_DATAGRAMS_MAX);
const _: () = assert!(SEND_QUEUE_DATAGRAMS_MAX + 2 <= URING_SQ_ENTRIES);
const _: () = assert!(SEND_QUEUE_DATAGRAMS_MAX + RECV_RING_BUFFERS_COUNT + 2 <= URING_CQ_ENTRIES);

/// The backend actually running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoBackendKind {
    Uring,
    Mmsg,
    /// [`SimIo`]: no socket, datagrams handed in and out by a simulated network.
    Sim,
}

impl fmt::Display for IoBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoBackendKind::Uring => "uring",
            IoBackendKind::Mmsg => "mmsg",
            IoBackendKind::Sim => "sim",
        })
    }
}

/// Received datagram metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// The sender; IPv4-mapped IPv6 sources are reported as plain IPv4.
    pub source: SocketAddr,
    /// Payload length in bytes (the slice given with it has exactly this length).
    pub len: usize,
}

/// Counters since the backend was opened. Units: datagrams unless named otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Datagrams delivered to `on_datagram`.
    pub datagrams_received: u64,
    /// Incoming datagrams bigger than [`DATAGRAM_BYTES_MAX`]: truncated by the kernel, dropped.
    pub datagrams_truncated: u64,
    /// Receive failures that were skipped (unparsable source, transient socket errors).
    pub recv_errors: u64,
    /// Datagrams the kernel accepted.
    pub datagrams_sent: u64,
    /// Datagrams dropped for lack of room: full queue, full socket buffer (`EAGAIN`,
    /// `ENOBUFS`), payload over [`DATAGRAM_BYTES_MAX`].
    pub send_dropped: u64,
    /// Datagrams refused for their destination (`ECONNREFUSED`, `EHOSTUNREACH`, wrong family).
    pub send_errors: u64,
    /// Super-datagrams sent with a `UDP_SEGMENT` cmsg (two segments or more).
    pub gso_batches: u64,
    /// Datagrams that left inside those super-datagrams.
    pub gso_datagrams: u64,
    /// Syscalls made: `recvmmsg`, `sendmmsg`, `ppoll`, `read`, `sendto`, `io_uring_enter`.
    pub syscalls: u64,
    /// Times the io_uring multishot receive had ended (buffer ring ran dry) and was re-armed.
    pub recv_rearms: u64,
    /// Whether sends still use GSO (false once the kernel refused it, or if disabled).
    pub gso_enabled: bool,
}

/// Socket and backend settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoConfig {
    pub bind: SocketAddr,
    /// Send groups as UDP GSO super-datagrams; turned off if the kernel refuses it.
    pub gso: bool,
    pub recv_buffer_bytes: usize,
    pub send_buffer_bytes: usize,
}

impl IoStats {
    fn new(gso_enabled: bool) -> Self {
        IoStats {
            gso_enabled,
            ..IoStats::default()
        }
    }
}

impl IoConfig {
    /// Defaults for everything but the address: GSO on, 4 MiB socket buffers.
    pub fn new(bind: SocketAddr) -> Self {
        IoConfig {
            bind,
            gso: true,
            recv_buffer_bytes: RECV_BUFFER_BYTES_DEFAULT,
            send_buffer_bytes: SEND_BUFFER_BYTES_DEFAULT,
        }
    }
}

/// One worker's UDP socket. See the module header for the driving contract.
pub trait DatagramIo: Send {
    fn kind(&self) -> IoBackendKind;
    fn local_addr(&self) -> SocketAddr;
    /// A handle other threads use to end a blocking `receive` early.
    fn waker(&self) -> Waker;
    /// Block until at least one datagram arrives, the waker fires, or `timeout` passes (None =
    /// no timeout; Some(ZERO) = don't block). Every datagram received in this call (up to
    /// [`RECV_BATCH_DATAGRAMS_MAX`]) is handed to `on_datagram` with its bytes; the slice is
    /// only valid during the call. Returns how many datagrams were delivered.
    fn receive(
        &mut self,
        timeout: Option<Duration>,
        on_datagram: &mut dyn FnMut(RecvMeta, &[u8]),
    ) -> io::Result<usize>;
    /// Copy one datagram into the send queue. Consecutive datagrams to the same destination
    /// with the same length (the last may be shorter) form one GSO group. Never blocks; flushes
    /// first when the queue is full. Oversized or wrong-family datagrams are dropped and counted.
    fn queue_send(&mut self, destination: SocketAddr, payload: &[u8]);
    /// Send everything queued with as few syscalls / submissions as possible. Per-datagram
    /// failures are dropped and counted, never returned.
    fn flush(&mut self) -> io::Result<()>;
    fn stats(&self) -> IoStats;
}

/// Open the socket and the chosen backend. `Auto` tries io_uring (the kernel may forbid it:
/// `kernel.io_uring_disabled`, seccomp, an old kernel) and falls back to mmsg.
pub fn open(choice: IoChoice, config: &IoConfig) -> io::Result<Box<dyn DatagramIo>> {
    let io: Box<dyn DatagramIo> = match choice {
        IoChoice::Mmsg => Box::new(mmsg::MmsgIo::open(config)?),
        IoChoice::Uring => Box::new(uring::UringIo::open(config)?),
        IoChoice::Auto => match uring::UringIo::open(config) {
            Ok(io) => Box::new(io),
            // The address, not io_uring, is the problem: the other backend would fail the same way.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
                ) =>
            {
                return Err(error)
            }
            Err(error) => {
                tracing::info!(%error, "io_uring unavailable, falling back to recvmmsg/sendmmsg");
                Box::new(mmsg::MmsgIo::open(config)?)
            }
        },
    };
    tracing::info!(
        backend = %io.kind(),
        local = %io.local_addr(),
        gso = io.stats().gso_enabled,
        "worker UDP socket open"
    );
    Ok(io)
}

/// Create, tune and bind the UDP socket. Buffer sizes are best effort.
fn open_socket(config: &IoConfig, nonblocking: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(config.bind), Type::DGRAM, Some(Protocol::UDP))?;
    // No SO_REUSEADDR: on UDP it would let a second server bind the same port silently, and
    // the two would split each other's peers. A port in use must fail start-up.
    if let Err(error) = socket.set_recv_buffer_size(config.recv_buffer_bytes) {
        tracing::warn!(%error, "SO_RCVBUF refused");
    }
    if let Err(error) = socket.set_send_buffer_size(config.send_buffer_bytes) {
        tracing::warn!(%error, "SO_SNDBUF refused");
    }
    // Linux reports twice the usable size; below the request means rmem_max/wmem_max capped it.
    let recv = socket.recv_buffer_size().unwrap_or(0) / 2;
    let send = socket.send_buffer_size().unwrap_or(0) / 2;
    if recv < config.recv_buffer_bytes || send < config.send_buffer_bytes {
        tracing::warn!(
            recv_bytes = recv,
            send_bytes = send,
            asked_recv_bytes = config.recv_buffer_bytes,
            asked_send_bytes = config.send_buffer_bytes,
            "the kernel capped the UDP socket buffers below what was asked: bursts at high load \
             will be dropped; raise net.core.rmem_max and net.core.wmem_max (the package \
             installs /usr/lib/sysctl.d/60-webcall.conf; `sysctl --system` applies it)"
        );
    }
    set_dont_fragment(&socket, config.bind.is_ipv6());
    socket.set_nonblocking(nonblocking)?;
    socket.bind(&config.bind.into())?;
    Ok(socket)
}

/// Send every datagram with the don't-fragment bit (`IP_PMTUDISC_PROBE`: set DF, but do not
/// refuse sends from a cached path MTU; WebRTC keeps its packets under 1200-ish bytes itself).
/// Besides being what a media path wants (no IP fragments), a DF datagram gets IP ID 0, which
/// spares the kernel its shared IP-ID generator on every send. Best effort.
fn set_dont_fragment(socket: &Socket, ipv6: bool) {
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| -> io::Result<()> {
        // SAFETY: the option value is a live c_int of the size given.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(socket),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let result = if ipv6 {
        // IPv4-mapped peers of a dual-stack socket take the IPv4 option; it may be refused.
        let _ = set(libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE);
        set(
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        )
    } else {
        set(libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE)
    };
    if let Err(error) = result {
        tracing::warn!(%error, "could not set don't-fragment on the media socket");
    }
}

/// Whether the kernel knows `UDP_SEGMENT` (Linux 4.18+) on this socket.
fn gso_supported(socket: &Socket) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value/len point to live locals of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0
}

/// The bound address of `socket`.
fn socket_local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an inet socket"))
}

/// Parse the raw `sockaddr_in`/`sockaddr_in6` bytes the kernel wrote as a message name.
/// IPv4-mapped IPv6 addresses (dual-stack sockets) come back as IPv4.
fn socket_addr_from_raw(name: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(name.get(0..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddrV4::new(Ipv4Addr::from(ip), port).into())
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_be_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            let ip = Ipv6Addr::from(ip);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddrV4::new(v4, port).into(),
                None => SocketAddrV6::new(ip, port, flowinfo, scope).into(),
            })
        }
        _ => None,
    }
}

/// `count` values made by `make`, allocated once (pools sized at start-up).
fn boxed_slice<T>(count: usize, make: impl Fn() -> T) -> Box<[T]> {
    (0..count).map(|_| make()).collect()
}

/// An empty iovec (null base, zero length).
fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

/// An all-zero `msghdr`: null pointers, zero lengths.
fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is plain integers and raw pointers (plus private padding on some libcs);
    // all-zero is a valid value for each of them.
    unsafe { std::mem::zeroed() }
}

/// Whether a wait's error means "nothing happened, carry on": a timeout, a signal, or (from
/// `io_uring_enter`) the kernel asking us to reap completions first (`EBUSY`, `EAGAIN`).
fn is_benign_wait_error(error: &io::Error) -> bool {
    let benign = [
        libc::ETIME,
        libc::ETIMEDOUT,
        libc::EINTR,
        libc::EAGAIN,
        libc::EBUSY,
    ];
    error.raw_os_error().is_some_and(|errno| benign.contains(&errno))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn open_auto_picks_a_backend() {
        let config = IoConfig::new("127.0.0.1:0".parse().unwrap());
        let io = open(IoChoice::Auto, &config).unwrap();
        println!("auto picked {}", io.kind());
        assert_ne!(io.local_addr().port(), 0);
    }

    #[test]
    fn parses_raw_socket_addresses() {
        let v4: SocketAddr = "10.1.2.3:4000".parse().unwrap();
        let raw = socket2::SockAddr::from(v4);
        // SAFETY: reading `len()` bytes of a live sockaddr storage.
        let bytes = unsafe { std::slice::from_raw_parts(raw.as_ptr().cast::<u8>(), raw.len() as usize) };
        assert_eq!(socket_addr_from_raw(bytes), Some(v4));
        let v6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let raw = socket2::SockAddr::from(v6);
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(raw.as_ptr().cast::<u8>(), raw.len() as usize) };
        assert_eq!(socket_addr_from_raw(bytes), Some(v6));
        assert_eq!(socket_addr_from_raw(&[0; 3]), None);
    }
}
