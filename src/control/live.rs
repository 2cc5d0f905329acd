//! A setting that SIGHUP may replace while the server runs (the TLS certificate, the hook
//! client, the allowed origins): readers take the current value as an `Arc`, a reload swaps in
//! a new one. Control thread (readers and the reload alike; the lock is never contended).
//!
//! Invariant: a reader holds the value it took for as long as it needs it (a session keeps the
//! hook client it started with); only later readers see the new one.

use std::sync::{Arc, PoisonError, RwLock};

pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The value in effect now.
    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replace it; readers that took the old value keep it.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}
