//! How a worker's notifications reach the control thread without blocking and without loss.
//!
//! Runs on the worker thread. [`NotificationSink`] is the way out (the shared crossbeam queue
//! plus a `tokio::sync::Notify` in the server, an in-memory queue in the simulation);
//! [`Notifier`] puts a backlog in front of it.
//!
//! Invariants: notifications leave in the order they were made; when the sink is full they
//! wait in the backlog and are retried first on every later turn, so none is ever dropped (a
//! dropped `PeerFailed` would leave the directory holding a stream name until its session
//! closed). The backlog is bounded without a cap: every endpoint makes at most one
//! `PeerConnected` and one `PeerFailed` in its life, so it never holds more than twice the
//! endpoints control added, and control adds none while it is not draining the queue.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::Notify;

use super::commands::Notification;
use super::counters::{CounterTable, WorkerCounter};

/// Where notifications go. `offer` never blocks: it hands the notification back when full.
pub trait NotificationSink: Send {
    fn offer(&mut self, notification: Notification) -> Result<(), Notification>;
    /// Tell the reader that notifications are waiting.
    fn wake(&mut self);
}

/// The server's sink: the bounded queue shared by all workers, and the control thread's wakeup.
pub struct ChannelSink {
    pub queue: Sender<Notification>,
    pub control_wakeup: Arc<Notify>,
}

impl NotificationSink for ChannelSink {
    fn offer(&mut self, notification: Notification) -> Result<(), Notification> {
        match self.queue.try_send(notification) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(n)) | Err(TrySendError::Disconnected(n)) => Err(n),
        }
    }

    fn wake(&mut self) {
        self.control_wakeup.notify_one();
    }
}

pub struct Notifier {
    sink: Box<dyn NotificationSink>,
    backlog: VecDeque<Notification>,
}

impl Notifier {
    pub fn new(sink: Box<dyn NotificationSink>) -> Self {
        Notifier {
            sink,
            backlog: VecDeque::new(),
        }
    }

    /// Send one notification, behind any that are still waiting.
    pub fn send(&mut self, notification: Notification, counters: &CounterTable) {
        self.backlog.push_back(notification);
        self.flush(counters);
    }

    /// Move as much of the backlog as the sink takes; called on every turn.
    pub fn flush(&mut self, counters: &CounterTable) {
        if self.backlog.is_empty() {
            return;
        }
        while let Some(notification) = self.backlog.pop_front() {
            match self.sink.offer(notification) {
                Ok(()) => {}
                Err(notification) => {
                    self.backlog.push_front(notification);
                    counters.add(WorkerCounter::NotificationsDeferred, 1);
                    break;
                }
            }
        }
        counters.set(WorkerCounter::NotificationBacklog, self.backlog.len() as u64);
        // Wake control even when nothing fit: it is behind and must drain the queue.
        self.sink.wake();
    }

    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PeerId;

    #[test]
    fn a_full_queue_delays_notifications_in_order_and_loses_none() {
        let (queue, control) = crossbeam_channel::bounded(2);
        let sink = ChannelSink {
            queue,
            control_wakeup: Arc::new(Notify::new()),
        };
        let counters = CounterTable::default();
        let mut notifier = Notifier::new(Box::new(sink));
        for peer in 0..5 {
            notifier.send(Notification::PeerConnected { peer: PeerId(peer) }, &counters);
        }
        assert_eq!(notifier.backlog(), 3);
        assert!(counters.get(WorkerCounter::NotificationsDeferred) >= 3);
        let mut seen = Vec::new();
        while seen.len() < 5 {
            while let Ok(Notification::PeerConnected { peer }) = control.try_recv() {
                seen.push(peer.0);
            }
            notifier.flush(&counters);
        }
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        assert_eq!(counters.get(WorkerCounter::NotificationBacklog), 0);
    }
}
