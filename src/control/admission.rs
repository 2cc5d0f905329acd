//! Admission: which TCP connections and WebSocket sessions the server takes on, counted so that
//! no client, and no crowd of idle sockets, can use up the file descriptors or memory that every
//! other session needs. Control thread (HTTP, HTTPS and the WebSocket handler share one
//! [`Admission`]).
//!
//! Invariants: every accepted connection holds a [`ConnectionTicket`] until its HTTP exchange
//! ends or it becomes a WebSocket, and every WebSocket session holds a [`SessionTicket`] until
//! its task ends; the counts are those tickets, so they fall back when a client goes, however it
//! goes. Connections plus sessions stay within the descriptor budget (the process's limit less
//! [`FD_RESERVE`]): at the budget, a new connection takes the place of the oldest one that has not
//! become a session (many addresses holding idle sockets then push each other out, while a real
//! request, done in milliseconds, gets through), and only when every descriptor is a session is
//! a new connection closed at once — never `accept` failing in a loop. Refusals and evictions are
//! counted, never logged per connection.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Descriptors kept back from the process's limit for what is not a client connection: the
/// workers' UDP sockets and io_uring, recordings being written, RTMP connections and pushes, the
/// hook client's pool, log and data files. A new connection past the rest is closed at once.
pub const FD_RESERVE: u64 = 1024;
/// Connections one address may hold that have not become WebSocket sessions (an HTTP request
/// being read, a keep-alive between requests). A browser opens six per host; a load test opens
/// its sessions a few at a time; hundreds of them from one address are someone holding sockets.
pub const HTTP_PENDING_CONNECTIONS_PER_IP_MAX: usize = 256;

/// Why a WebSocket session was not admitted; the `Display` is the reason the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    #[error("Server is full: too many sessions")]
    ServerFull,
    #[error("Too many sessions from this address")]
    TooManyFromAddress,
}

/// What was refused, for `/health`.
#[derive(Default)]
pub struct AdmissionCounters {
    /// Connections closed at accept: the descriptor budget was spent on sessions.
    pub connections_over_budget: AtomicU64,
    /// Pending connections closed to make room for a new one at the budget.
    pub connections_evicted: AtomicU64,
    /// Connections closed at accept: their address held too many pending ones.
    pub connections_over_ip_cap: AtomicU64,
    pub sessions_over_cap: AtomicU64,
    pub sessions_over_ip_cap: AtomicU64,
    /// WebSocket upgrades and REST calls refused for their `Origin`.
    pub origins_refused: AtomicU64,
    /// Sessions cut off because their queued output passed its byte cap.
    pub sessions_over_output_cap: AtomicU64,
    /// Sessions closed because a write to them stalled.
    pub sessions_write_stalled: AtomicU64,
}

#[derive(Default)]
struct Counts {
    connections: usize,
    /// Pending connections by age (the order they were accepted), each with its eviction bell.
    pending: BTreeMap<u64, Arc<Notify>>,
    next_connection: u64,
    sessions: usize,
    pending_by_ip: HashMap<IpAddr, usize>,
    sessions_by_ip: HashMap<IpAddr, usize>,
}

pub struct Admission {
    /// Connections plus sessions the descriptor budget allows.
    descriptor_budget: usize,
    /// `--max-sessions`; SIGHUP may change it.
    sessions_max: AtomicUsize,
    /// `--max-sessions-per-ip`, 0: no cap; SIGHUP may change it.
    sessions_per_ip_max: AtomicUsize,
    counts: Mutex<Counts>,
    pub counters: AdmissionCounters,
}

/// Held by an accepted connection until its HTTP exchange ends.
pub struct ConnectionTicket {
    admission: Arc<Admission>,
    ip: IpAddr,
    seq: u64,
    evicted: Arc<Notify>,
}

/// Held by a WebSocket session's task.
pub struct SessionTicket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub fn new(descriptor_budget: usize, sessions_max: usize, sessions_per_ip_max: usize) -> Arc<Self> {
        Arc::new(Admission {
            descriptor_budget,
            sessions_max: AtomicUsize::new(sessions_max),
            sessions_per_ip_max: AtomicUsize::new(sessions_per_ip_max),
            counts: Mutex::new(Counts::default()),
            counters: AdmissionCounters::default(),
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection just accepted from `ip`: admitted, or `None` (close it now).
    pub fn connection(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionTicket> {
        let mut counts = self.counts();
        if counts.pending_by_ip.get(&ip).copied().unwrap_or(0) >= HTTP_PENDING_CONNECTIONS_PER_IP_MAX {
            self.counters
                .connections_over_ip_cap
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if counts.connections.saturating_add(counts.sessions) >= self.descriptor_budget {
            // The oldest pending connection goes; its ticket, dropped by its task, gives its
            // count back (a moment over the budget, which the reserve covers).
            let Some((_, bell)) = counts.pending.pop_first() else {
                self.counters
                    .connections_over_budget
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            };
            bell.notify_one();
            self.counters.connections_evicted.fetch_add(1, Ordering::Relaxed);
        }
        *counts.pending_by_ip.entry(ip).or_insert(0) += 1;
        counts.connections += 1;
        let seq = counts.next_connection;
        counts.next_connection = seq.wrapping_add(1);
        let evicted = Arc::new(Notify::new());
        counts.pending.insert(seq, evicted.clone());
        Some(ConnectionTicket {
            admission: self.clone(),
            ip,
            seq,
            evicted,
        })
    }

    /// A WebSocket upgrade from `ip`: admitted, or why not.
    pub fn session(self: &Arc<Self>, ip: IpAddr) -> Result<SessionTicket, SessionRefusal> {
        let mut counts = self.counts();
        if counts.sessions >= self.sessions_max.load(Ordering::Relaxed) {
            self.counters.sessions_over_cap.fetch_add(1, Ordering::Relaxed);
            return Err(SessionRefusal::ServerFull);
        }
        let from_ip = counts.sessions_by_ip.entry(ip).or_insert(0);
        let per_ip_max = self.sessions_per_ip_max.load(Ordering::Relaxed);
        if per_ip_max > 0 && *from_ip >= per_ip_max {
            self.counters.sessions_over_ip_cap.fetch_add(1, Ordering::Relaxed);
            return Err(SessionRefusal::TooManyFromAddress);
        }
        *from_ip += 1;
        counts.sessions += 1;
        Ok(SessionTicket {
            admission: self.clone(),
            ip,
        })
    }

    /// New session caps (SIGHUP); sessions already over them stay.
    pub fn set_session_limits(&self, sessions_max: usize, sessions_per_ip_max: usize) {
        self.sessions_max.store(sessions_max, Ordering::Relaxed);
        self.sessions_per_ip_max
            .store(sessions_per_ip_max, Ordering::Relaxed);
    }

    /// WebSocket sessions whose task still runs.
    pub fn sessions(&self) -> usize {
        self.counts().sessions
    }

    pub fn health(&self) -> serde_json::Value {
        let counts = self.counts();
        let c = &self.counters;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        serde_json::json!({
            "connections_pending": counts.connections,
            "sessions": counts.sessions,
            "descriptor_budget": self.descriptor_budget,
            "connections_over_budget": load(&c.connections_over_budget),
            "connections_evicted": load(&c.connections_evicted),
            "connections_over_ip_cap": load(&c.connections_over_ip_cap),
            "sessions_over_cap": load(&c.sessions_over_cap),
            "sessions_over_ip_cap": load(&c.sessions_over_ip_cap),
            "origins_refused": load(&c.origins_refused),
            "sessions_over_output_cap": load(&c.sessions_over_output_cap),
            "sessions_write_stalled": load(&c.sessions_write_stalled),
        })
    }
}

fn release(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&ip);
        }
    }
}

impl SessionTicket {
    /// The session was closed because a write to it stalled.
    pub fn count_write_stall(&self) {
        self.admission
            .counters
            .sessions_write_stalled
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl ConnectionTicket {
    /// Resolves when the connection was evicted to make room for a newer one.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }
}

impl Drop for ConnectionTicket {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.connections = counts.connections.saturating_sub(1);
        counts.pending.remove(&self.seq);
        release(&mut counts.pending_by_ip, self.ip);
    }
}

impl Drop for SessionTicket {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.sessions = counts.sessions.saturating_sub(1);
        release(&mut counts.sessions_by_ip, self.ip);
    }
}

/// Raise this process's soft descriptor limit to its hard limit, and return the soft limit now
/// in effect (what the descriptor budget is made from).
pub fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

/// Connections plus sessions a soft limit of `descriptors` allows.
pub fn descriptor_budget(descriptors: u64) -> usize {
    usize::try_from(descriptors.saturating_sub(FD_RESERVE).max(64)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_count_and_give_back() {
        let admission = Admission::new(4, 2, 1);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = admission.session(a).unwrap();
        assert_eq!(
            admission.session(a).err(),
            Some(SessionRefusal::TooManyFromAddress)
        );
        let s2 = admission.session(b).unwrap();
        assert_eq!(
            admission.session("127.0.0.4".parse().unwrap()).err(),
            Some(SessionRefusal::ServerFull)
        );
        let c1 = admission.connection(a).unwrap();
        let c2 = admission.connection(b).unwrap();
        // The budget of 4 is spent (2 sessions, 2 connections): the oldest connection goes.
        let c3 = admission.connection(b).unwrap();
        assert_eq!(admission.counters.connections_evicted.load(Ordering::Relaxed), 1);
        assert!(
            !admission.counts().pending.contains_key(&c1.seq),
            "c1 was told to go"
        );
        drop((c1, c2, c3));
        // A budget spent on sessions alone refuses.
        let full = Admission::new(2, 2, 0);
        let sessions = (full.session(a).unwrap(), full.session(b).unwrap());
        assert!(full.connection(a).is_none());
        drop(sessions);
        assert!(full.connection(a).is_some());
        drop(s1);
        assert!(admission.session(a).is_ok());
        drop(s2);
        assert_eq!(admission.counts().pending_by_ip.len(), 0);
    }

    #[test]
    fn pending_connections_per_address_are_capped() {
        let admission = Admission::new(10_000, 10, 0);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let held: Vec<_> = (0..HTTP_PENDING_CONNECTIONS_PER_IP_MAX)
            .map(|_| admission.connection(ip).unwrap())
            .collect();
        assert!(admission.connection(ip).is_none());
        assert!(admission.connection("127.0.0.10".parse().unwrap()).is_some());
        drop(held);
        assert!(admission.connection(ip).is_some());
    }
}
