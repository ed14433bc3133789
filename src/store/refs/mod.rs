//! Refs: named pointers to object ids, moved by compare-and-swap, alone or several at once
//! in a transaction, and recorded in reflogs.
//!
//! # Layout
//!
//! A ref has a full name such as `refs/heads/main` (see [`RefName`] for the rules). Inside
//! the store directory `root`:
//!
//! - the ref `refs/x/y` is the file `root/refs/x/y`, holding exactly `b3:<64 hex>\n`;
//! - while it is being updated, the lock file `root/refs/x/y.lock` exists;
//! - its reflog is `root/logs/refs/x/y`, one line per update:
//!   `<old> <new> <unix-seconds> <message>\n`, where `<old>` and `<new>` are `b3:<64 hex>`
//!   or `-` for "no ref", and newlines in the message are replaced by spaces;
//! - while a transaction over several refs commits, its record is `root/txn/<64 hex>`.
//!
//! # Updates
//!
//! [`Refs::update`] (module `update`) takes the lock file (`create_new`, so exactly one
//! process holds it), reads the current value, compares it with the caller's [`Expected`]
//! value, appends and syncs the reflog line, and only then renames the lock file, which
//! holds the new contents, over the ref. A crash therefore leaves the old ref or the new one,
//! never a torn one; at worst the reflog ends with a line for an update that did not
//! complete. The ref file is the truth. Deleting a ref removes its file but keeps its reflog,
//! which keeps the ids it mentions alive for `gc` (see [`Refs::all_reflog_ids`]).
//!
//! [`Transaction`] (module `txn`) moves several refs all or none: locks in name order, every
//! expectation checked, then a durable record of the whole change, then the reflog lines,
//! then the moves. A crash after the record is completed ("rolled forward") by the next
//! writer that takes one of those locks, or by [`Refs::recover`] (fsck); see [`txn`].
//!
//! A name cannot be both a ref and a directory of refs: `refs/a` and `refs/a/b` exclude
//! each other ([`RefError::Conflict`]). Since reflogs outlive their refs, the reflog of a
//! deleted ref can also be in the way of a new ref; the error names the file to remove.
//!
//! Modules: `name` (the naming rules), `files` (reading and listing ref files), `update`
//! (one ref by compare-and-swap), [`reflog`] (the logs), [`txn`] (several refs at once).

mod files;
mod name;
pub mod reflog;
pub mod txn;
mod update;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;

pub use name::RefName;
pub use reflog::ReflogEntry;
pub use txn::{Pending, PendingRef, RecoverReport, Transaction};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::clock::{Clock, SystemClock};
use super::fs::DEFAULT_LOCK_WAIT;
use crate::object::ObjectId;

/// The longest ref name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// The directory under the store root holding ref files, and the first component of every
/// ref name.
pub const REFS_DIR: &str = "refs";

/// The directory under the store root holding reflogs (`logs/refs/...`).
pub const LOGS_DIR: &str = "logs";

/// The directory under the store root holding the records of transactions that are
/// committing (or were, when their writer crashed).
pub const TXN_DIR: &str = "txn";

/// Suffix of lock files; no ref name component may end with it.
pub const LOCK_SUFFIX: &str = ".lock";

/// How often an update retries when a concurrent deletion removes the directory it just
/// created (deletions prune empty directories).
const DIR_RETRIES: usize = 32;

/// The most bytes read from a ref file; a valid one has 68.
const MAX_REF_FILE: u64 = 4096;

/// What a compare-and-swap update expects the ref to hold before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Any value, or no ref at all: the update is unconditional.
    Any,
    /// No ref of this name exists.
    Absent,
    /// The ref exists and points to this id.
    Is(ObjectId),
}

impl Expected {
    /// Whether `current` (the ref's value, `None` if it does not exist) satisfies this.
    #[must_use]
    pub fn matches(self, current: Option<ObjectId>) -> bool {
        match self {
            Self::Any => true,
            Self::Absent => current.is_none(),
            Self::Is(id) => current == Some(id),
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any value"),
            Self::Absent => f.write_str("no ref"),
            Self::Is(id) => write!(f, "{id}"),
        }
    }
}

/// Errors of ref operations.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    /// A ref name breaks a naming rule (see [`RefName`]).
    #[error("invalid ref name {name:?}: {why}")]
    InvalidName {
        /// The rejected name (cut to 300 characters).
        name: String,
        /// The rule it breaks.
        why: String,
    },
    /// A ref file does not hold exactly `b3:<64 hex>` and a newline.
    #[error("corrupt ref file {}: {why}", path.display())]
    Corrupt {
        /// The ref file.
        path: PathBuf,
        /// What is wrong with its contents.
        why: String,
    },
    /// An entry under `refs/` that is not a ref: its name is not a valid ref name, or it is
    /// neither a regular file nor a directory.
    #[error("unexpected entry {}: {why}", path.display())]
    Unexpected {
        /// The file or directory.
        path: PathBuf,
        /// Why it is not a ref.
        why: String,
    },
    /// A line of a reflog does not parse.
    #[error("corrupt reflog {} line {line}: {why}", path.display())]
    CorruptReflog {
        /// The reflog file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        why: String,
    },
    /// A live process holds the ref's lock and did not release it within the store's lock
    /// wait. (A lock file left by a dead process is removed, not reported.)
    #[error(
        "ref is busy: {} is held by a live process that did not finish within the lock wait; \
         try again",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A compare-and-swap update found a value other than the expected one.
    #[error("{}", stale_message(name, *expected, *actual))]
    Stale {
        /// The ref.
        name: RefName,
        /// What the update expected.
        expected: Expected,
        /// What the ref actually held (`None`: it did not exist).
        actual: Option<ObjectId>,
    },
    /// The name clashes with an existing ref or reflog: a ref cannot also be a directory of
    /// refs (`refs/a` and `refs/a/b` exclude each other).
    #[error("cannot update ref {name}: {why}")]
    Conflict {
        /// The ref being updated.
        name: RefName,
        /// The file or directory in the way.
        path: PathBuf,
        /// What is in the way.
        why: String,
    },
    /// A transaction names the same ref twice.
    #[error("ref {name} is given twice in one transaction")]
    Duplicate {
        /// The ref.
        name: RefName,
    },
    /// A transaction record (`txn/...`) cannot be read. Writers stop rather than guess
    /// whether it names their ref.
    #[error(
        "corrupt ref transaction record {}: {why}",
        path.display()
    )]
    CorruptTransaction {
        /// The record file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A transaction passed its commit point (its record is written) but a later step
    /// failed: it will happen, completed by the next writer of its refs or by fsck.
    #[error(
        "the ref transaction is committed ({}) but not complete: {source}; the next update \
         of these refs completes it",
        record.display()
    )]
    Incomplete {
        /// The record.
        record: PathBuf,
        /// What failed.
        #[source]
        source: Box<RefError>,
    },
    /// A file system operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `read ref`.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn stale_message(name: &RefName, expected: Expected, actual: Option<ObjectId>) -> String {
    let actual = match actual {
        Some(id) => format!("is at {id}"),
        None => "does not exist".to_owned(),
    };
    let expected = match expected {
        Expected::Is(id) => format!("expected {id}"),
        Expected::Absent => "expected it not to exist".to_owned(),
        Expected::Any => "expected any value".to_owned(),
    };
    format!("ref {name} {actual}, {expected}")
}

impl RefError {
    /// Splits a listing problem into the path it concerns and a message without the path.
    pub(super) fn into_problem(self) -> (PathBuf, String) {
        match self {
            Self::Corrupt { path, why } => (path, format!("corrupt ref file: {why}")),
            Self::Unexpected { path, why } => (path, why),
            Self::Io { op, path, source } => (path, format!("cannot {op}: {source}")),
            other => (PathBuf::new(), other.to_string()),
        }
    }
}

pub(super) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RefError {
    let path = path.to_owned();
    move |source| RefError::Io { op, path, source }
}

/// Whether an error means "there is nothing at this path".
pub(super) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

// ---------------------------------------------------------------------------------------
// Refs

/// The refs of one store.
#[derive(Clone, Debug)]
pub struct Refs {
    root: PathBuf,
    clock: Arc<dyn Clock>,
    /// How long to wait for a lock held by a live process.
    lock_wait: Duration,
}

impl Refs {
    /// The refs of the store directory `root` (the `.aos` directory itself); reflog times
    /// come from the system clock.
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self::with_clock(root, Arc::new(SystemClock))
    }

    /// The refs of the store directory `root`, recording times read from `clock`.
    #[must_use]
    pub fn with_clock(root: &Path, clock: Arc<dyn Clock>) -> Self {
        Self {
            root: root.to_owned(),
            clock,
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// These refs, waiting up to `wait` for a lock held by a live process (default
    /// [`DEFAULT_LOCK_WAIT`]).
    #[must_use]
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How long an update waits for a lock held by a live process.
    #[must_use]
    pub fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// The clock reflog lines and transaction records take their time from.
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The store directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding the ref `name`: `root/refs/...`.
    #[must_use]
    pub fn ref_path(&self, name: &RefName) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(name.components());
        p
    }

    /// The reflog of the ref `name`: `root/logs/refs/...`.
    #[must_use]
    pub fn reflog_path(&self, name: &RefName) -> PathBuf {
        let mut p = self.root.join(LOGS_DIR);
        p.extend(name.components());
        p
    }

    /// The lock file of the ref `name`: `root/refs/....lock`.
    pub(super) fn lock_path(&self, name: &RefName) -> PathBuf {
        let mut s = self.ref_path(name).into_os_string();
        s.push(LOCK_SUFFIX);
        PathBuf::from(s)
    }
}
