//! [`PeerSocket`]: one UDP socket that carries every emulated peer of a load engine.
//!
//! Each peer has its own loopback address (`127.1.x.y`) and all of them share one port: the
//! socket is bound to the wildcard address with `IP_PKTINFO`, so a received datagram says
//! which address (peer) it was sent to, and a sent datagram names the address it leaves
//! from. Receives are batched with `recvmmsg`, sends with `sendmmsg`; `SO_RXQ_OVFL` reports
//! datagrams the kernel dropped because this process did not read fast enough (the load
//! generator's own bottleneck); `SO_TIMESTAMPNS` gives each datagram its kernel arrival
//! time, so delay and jitter exclude the time a datagram waited for this process. IPv4 only. The `unsafe` of this crate lives here: every
//! pointer handed to the kernel points into buffers this struct owns and that are not
//! resized while a call runs.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Datagrams per `recvmmsg` / `sendmmsg` call.
pub const BATCH: usize = 64;
/// Largest datagram received.
const DATAGRAM_MAX: usize = 2048;
const CMSG_SPACE: usize = 128;
/// Socket buffers: deep enough for bursts of thousands of subscribers.
const SOCKET_BUFFER_BYTES: i32 = 64 << 20;

fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn to_in_addr(ip: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from_ne_bytes(ip.octets()),
    }
}

fn from_in_addr(a: libc::in_addr) -> Ipv4Addr {
    Ipv4Addr::from(a.s_addr.to_ne_bytes())
}

fn to_sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr = to_in_addr(*a.ip());
    s
}

/// One received datagram.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Sender.
    pub source: SocketAddrV4,
    /// The local address it was sent to (which peer), from `IP_PKTINFO`.
    pub local: Ipv4Addr,
    /// Contents.
    pub data: &'a [u8],
    /// Kernel arrival time, when the kernel gave one.
    pub at: Option<Instant>,
}

/// The shared socket (see the module docs).
pub struct PeerSocket {
    socket: UdpSocket,
    port: u16,
    rx_bufs: Vec<u8>,
    rx_cmsg: Vec<u8>,
    rx_names: Vec<libc::sockaddr_in>,
    tx_bytes: Vec<u8>,
    tx_items: Vec<(Ipv4Addr, SocketAddrV4, usize, usize)>,
    /// Datagrams the kernel dropped on receive (`SO_RXQ_OVFL`, cumulative).
    pub rx_dropped: u32,
    /// Datagrams this side failed to send.
    pub tx_failed: u64,
    /// The same moment on both clocks: converts kernel (realtime) stamps to `Instant`s.
    clock_base: (Instant, Duration),
}

fn realtime_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

impl PeerSocket {
    /// Binds `0.0.0.0:port` (0: any free port).
    pub fn bind(port: u16) -> io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?;
        socket.set_nonblocking(true)?;
        let fd = socket.as_raw_fd();
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)?;
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            if setsockopt_int(fd, libc::SOL_SOCKET, force, SOCKET_BUFFER_BYTES).is_err() {
                let _ = setsockopt_int(fd, libc::SOL_SOCKET, plain, SOCKET_BUFFER_BYTES);
            }
        }
        let port = socket.local_addr()?.port();
        // SAFETY: sockaddr_in is plain data.
        let name: libc::sockaddr_in = unsafe { zeroed() };
        Ok(PeerSocket {
            socket,
            port,
            rx_bufs: vec![0; BATCH * DATAGRAM_MAX],
            rx_cmsg: vec![0; BATCH * CMSG_SPACE],
            rx_names: vec![name; BATCH],
            tx_bytes: Vec::with_capacity(BATCH * DATAGRAM_MAX),
            tx_items: Vec::with_capacity(BATCH),
            rx_dropped: 0,
            tx_failed: 0,
            clock_base: (Instant::now(), realtime_now()),
        })
    }

    /// The shared port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until a datagram is readable or `timeout` passes (nanosecond resolution);
    /// returns whether one is readable.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = timeout.min(Duration::from_secs(1));
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd and a valid timespec; no signal mask.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            return Ok(false);
        }
        Ok(rc > 0 && pfd.revents & libc::POLLIN != 0)
    }

    /// Reads one batch without blocking and hands each datagram to `f`; returns how many
    /// arrived (0 when none was waiting).
    pub fn recv_batch(&mut self, mut f: impl FnMut(Received<'_>)) -> io::Result<usize> {
        // SAFETY: plain data, filled in below.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: self.rx_bufs[i * DATAGRAM_MAX..].as_mut_ptr().cast(),
                iov_len: DATAGRAM_MAX,
            };
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&mut self.rx_names[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = self.rx_cmsg[i * CMSG_SPACE..].as_mut_ptr().cast();
            h.msg_controllen = CMSG_SPACE as _;
        }
        // SAFETY: every pointer above points into buffers of the stated lengths owned by self
        // or by this frame, alive for the call.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (i, msg) in msgs.iter().enumerate().take(n) {
            let name = self.rx_names[i];
            let source = SocketAddrV4::new(from_in_addr(name.sin_addr), u16::from_be(name.sin_port));
            let mut local = None;
            let mut at = None;
            // SAFETY: the header was filled by the kernel; the CMSG macros stay within
            // msg_controllen.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg.msg_hdr);
                while !c.is_null() {
                    let (level, kind) = ((*c).cmsg_level, (*c).cmsg_type);
                    if level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO {
                        let info = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>());
                        local = Some(from_in_addr(info.ipi_addr));
                    } else if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
                        let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                        at = Some(Duration::new(
                            ts.tv_sec.max(0) as u64,
                            ts.tv_nsec.clamp(0, 999_999_999) as u32,
                        ));
                    } else if level == libc::SOL_SOCKET && kind == libc::SO_RXQ_OVFL {
                        self.rx_dropped = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>());
                    }
                    c = libc::CMSG_NXTHDR(&msg.msg_hdr, c);
                }
            }
            let len = (msg.msg_len as usize).min(DATAGRAM_MAX);
            if let (Some(local), Some(data)) =
                (local, self.rx_bufs.get(i * DATAGRAM_MAX..i * DATAGRAM_MAX + len))
            {
                let (base, base_rt) = self.clock_base;
                let at = at.and_then(|rt| match rt.checked_sub(base_rt) {
                    Some(ahead) => base.checked_add(ahead),
                    None => base.checked_sub(base_rt - rt),
                });
                f(Received {
                    source,
                    local,
                    data,
                    at,
                });
            }
        }
        Ok(n)
    }

    /// Queues one datagram from peer address `from` to `to`; flushes when the batch is full.
    pub fn queue(&mut self, from: Ipv4Addr, to: SocketAddrV4, data: &[u8]) {
        if data.len() > DATAGRAM_MAX {
            self.tx_failed += 1;
            return;
        }
        let start = self.tx_bytes.len();
        self.tx_bytes.extend_from_slice(data);
        self.tx_items.push((from, to, start, self.tx_bytes.len()));
        if self.tx_items.len() >= BATCH {
            self.flush();
        }
    }

    /// Sends everything queued (datagrams the kernel refuses are counted and dropped).
    pub fn flush(&mut self) {
        let count = self.tx_items.len();
        if count == 0 {
            return;
        }
        let space = unsafe { libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) } as usize;
        let mut cmsg = vec![0u8; count * space];
        let mut names: Vec<libc::sockaddr_in> = self.tx_items.iter().map(|it| to_sockaddr(it.1)).collect();
        // SAFETY: plain data, filled in below.
        let mut iovs: Vec<libc::iovec> = vec![unsafe { zeroed() }; count];
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; count];
        for (i, (from, _, start, end)) in self.tx_items.iter().enumerate() {
            iovs[i] = libc::iovec {
                iov_base: self.tx_bytes[*start..].as_mut_ptr().cast(),
                iov_len: end - start,
            };
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = cmsg[i * space..].as_mut_ptr().cast();
            h.msg_controllen = space as _;
            // SAFETY: the control buffer holds exactly one in_pktinfo cmsg.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: to_in_addr(*from),
                    ipi_addr: to_in_addr(Ipv4Addr::UNSPECIFIED),
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), info);
            }
        }
        let mut sent = 0;
        while sent < count {
            // SAFETY: msgs[sent..] are valid headers pointing into live buffers.
            let n = unsafe {
                libc::sendmmsg(
                    self.socket.as_raw_fd(),
                    msgs[sent..].as_mut_ptr(),
                    (count - sent) as u32,
                    0,
                )
            };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the datagram the kernel refused (e.g. unreachable) and go on.
                self.tx_failed += 1;
                sent += 1;
                continue;
            }
            sent += n as usize;
        }
        self.tx_items.clear();
        self.tx_bytes.clear();
    }
}
