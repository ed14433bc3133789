//! How a store is opened: its clock, its key source and how long it waits for locks.

use std::sync::Arc;
use std::time::Duration;

use super::clock::{Clock, SystemClock};
use super::fs;
use super::keys::{KeySource, StoreKeys};

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Where the times the store records (reflog lines, transaction records) and gc's "now"
    /// come from.
    pub clock: Arc<dyn Clock>,
    /// Where the secret seeds of the store's signing keys come from.
    pub keys: Arc<dyn KeySource>,
    /// How long a writer waits for a lock (a ref's, a transaction's, gc's) held by a live
    /// process before giving up; a lock left by a dead process never makes anyone wait.
    pub lock_wait: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            keys: Arc::new(StoreKeys),
            lock_wait: fs::DEFAULT_LOCK_WAIT,
        }
    }
}

impl StoreOptions {
    /// These options with `clock` (e.g. a [`FixedClock`](super::clock::FixedClock) for reproducible tests).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// These options with `wait` as the longest wait for a lock held by a live process.
    #[must_use]
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// These options with `keys` (e.g. [`FixedKeys`](super::keys::FixedKeys) for reproducible tests).
    #[must_use]
    pub fn with_keys(mut self, keys: impl KeySource + 'static) -> Self {
        self.keys = Arc::new(keys);
        self
    }
}
