//! Clocks: where a store gets the time it records (reflog lines, ref transaction records)
//! and the "now" gc measures ages against.
//!
//! A [`Store`](super::Store) is opened with a clock ([`StoreOptions`](super::StoreOptions));
//! [`Store::open`](super::Store::open) uses [`SystemClock`]. Tests fix the time with
//! [`FixedClock`], so reflogs and everything derived from them are reproducible. Names of
//! temporary files are not times the store records: they keep their own source of
//! uniqueness.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in whole seconds since the Unix epoch (0 for times before it).
    fn unix_secs(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always reads the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedClock(SystemTime);

impl FixedClock {
    /// A clock stopped at `time`.
    #[must_use]
    pub fn at(time: SystemTime) -> Self {
        Self(time)
    }

    /// A clock stopped at `secs` seconds after the Unix epoch.
    #[must_use]
    pub fn at_unix_secs(secs: u64) -> Self {
        Self(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_system_clocks() {
        let c = FixedClock::at_unix_secs(1_700_000_000);
        assert_eq!(c.unix_secs(), 1_700_000_000);
        assert_eq!(c.now(), c.now());
        assert_eq!(FixedClock::at(UNIX_EPOCH).unix_secs(), 0);
        // Before the epoch reads as 0, not as an error.
        let before = FixedClock::at(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(before.unix_secs(), 0);
        let s = SystemClock.unix_secs();
        assert!(s > 1_600_000_000, "{s}");
    }
}
