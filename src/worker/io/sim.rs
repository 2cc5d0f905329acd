//! [`SimIo`]: a [`DatagramIo`] with no socket. The simulated network (or a bench) hands it
//! datagrams with [`SimIo::deliver`] and takes what the worker sent with [`SimIo::take_sent`];
//! `receive` never blocks, whatever timeout it is given, because the simulation owns time.
//!
//! Used on one thread, by the simulation's loop or a bench. Invariants: as for the real
//! backends, queued sends leave only on `flush`, in the order they were queued; `receive`
//! hands over at most [`RECV_BATCH_DATAGRAMS_MAX`] datagrams per call, oldest first.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::{
    DatagramIo, IoBackendKind, IoStats, RecvMeta, Waker, DATAGRAM_BYTES_MAX, RECV_BATCH_DATAGRAMS_MAX,
};

pub struct SimIo {
    local: SocketAddr,
    waker: Waker,
    inbox: VecDeque<(SocketAddr, Vec<u8>)>,
    queued: Vec<(SocketAddr, Vec<u8>)>,
    sent: Vec<(SocketAddr, Vec<u8>)>,
    /// Count sends without keeping them (benches: no copy the real backends would not make).
    discard_sent: bool,
    stats: IoStats,
}

impl SimIo {
    /// A backend "bound" to `local` (the address the worker announces).
    pub fn new(local: SocketAddr) -> io::Result<Self> {
        Ok(SimIo {
            local,
            waker: Waker::new()?,
            inbox: VecDeque::new(),
            queued: Vec::new(),
            sent: Vec::new(),
            discard_sent: false,
            stats: IoStats::new(false),
        })
    }

    /// A datagram from `source` arrives; the next `receive` hands it to the worker.
    pub fn deliver(&mut self, source: SocketAddr, datagram: &[u8]) {
        if datagram.len() > DATAGRAM_BYTES_MAX {
            self.stats.datagrams_truncated += 1;
            return;
        }
        self.inbox.push_back((source, datagram.to_vec()));
    }

    /// Count what the worker sends but keep none of it (`take_sent` then returns nothing).
    pub fn set_discard_sent(&mut self, discard: bool) {
        self.discard_sent = discard;
    }

    /// Datagrams waiting to be received.
    pub fn pending(&self) -> usize {
        self.inbox.len()
    }

    /// Everything flushed since the last call, in order: (destination, bytes).
    pub fn take_sent(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        std::mem::take(&mut self.sent)
    }
}

impl DatagramIo for SimIo {
    fn kind(&self) -> IoBackendKind {
        IoBackendKind::Sim
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn waker(&self) -> Waker {
        self.waker.clone()
    }

    fn receive(
        &mut self,
        _timeout: Option<Duration>,
        on_datagram: &mut dyn FnMut(RecvMeta, &[u8]),
    ) -> io::Result<usize> {
        let mut delivered = 0;
        while delivered < RECV_BATCH_DATAGRAMS_MAX {
            let Some((source, bytes)) = self.inbox.pop_front() else {
                break;
            };
            on_datagram(
                RecvMeta {
                    source,
                    len: bytes.len(),
                },
                &bytes,
            );
            delivered += 1;
        }
        self.stats.datagrams_received += delivered as u64;
        Ok(delivered)
    }

    fn queue_send(&mut self, destination: SocketAddr, payload: &[u8]) {
        if payload.len() > DATAGRAM_BYTES_MAX {
            self.stats.send_dropped += 1;
            return;
        }
        if self.discard_sent {
            self.stats.datagrams_sent += 1;
            return;
        }
        self.queued.push((destination, payload.to_vec()));
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stats.datagrams_sent += self.queued.len() as u64;
        self.sent.append(&mut self.queued);
        Ok(())
    }

    fn stats(&self) -> IoStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_go_through_in_order_and_sends_wait_for_the_flush() {
        let local: SocketAddr = "127.0.0.1:31000".parse().unwrap();
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut io = SimIo::new(local).unwrap();
        io.deliver(peer, b"one");
        io.deliver(peer, b"two");
        let mut seen = Vec::new();
        let n = io
            .receive(Some(Duration::from_secs(10)), &mut |meta, bytes| {
                seen.push((meta.source, bytes.to_vec()))
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, [(peer, b"one".to_vec()), (peer, b"two".to_vec())]);
        io.queue_send(peer, b"out");
        assert!(io.take_sent().is_empty(), "nothing leaves before the flush");
        io.flush().unwrap();
        assert_eq!(io.take_sent(), [(peer, b"out".to_vec())]);
        assert_eq!(io.stats().datagrams_sent, 1);
    }
}
