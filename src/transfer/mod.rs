//! Moving objects between stores: journal ancestry, the outgoing walk, and the checked
//! incoming write that bundles (and later clone, fetch and push) are built on.
//!
//! Objects travel in their stored form (kind, encoding, payload size, stored bytes: the pack
//! entry of objects-spec §7), so a sender copies what its store holds and a receiver writes
//! what it verified, neither recompressing.
//!
//! - Outgoing: [`walk_missing`] (and [`missing_objects`]) lists every object reachable from
//!   some roots that the receiver does not have, by a `have` predicate, without descending
//!   into objects it has: whoever has an object has everything it links (its Merkle
//!   closure). [`HaveSet::add_entry_boundary`] builds such a predicate from journal entries
//!   the receiver holds, reading only the few objects near them, not their history.
//! - Incoming: [`check_incoming`] verifies objects from an untrusted [`ObjectSource`] (ids,
//!   kinds, canonical CBOR, journal entries, snapshots and map nodes decoded, the set closed
//!   over links) before anything is stored; [`write_checked`] then writes them in batches of
//!   bounded size, re-verifying each against the first pass. [`receive`] does both.
//!
//! **Invariant:** nothing from a source is stored unless every object in it passed the
//! checks; a failure after the checks (I/O, a crash) leaves only valid objects that no ref
//! reaches, so running the transfer again completes it.

pub mod bundle;
mod incoming;
mod outgoing;

pub use incoming::*;
pub use outgoing::*;

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::mpsc;

use crate::kernel::WorldError;
use crate::object::{Kind, ObjectId};
use crate::store::refs::{RefError, RefName};
use crate::store::{Store, StoreError};
use crate::world::refs::WorldRefError;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Reading or writing a store failed, or a stored object is damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or moving a ref failed.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// An object that the source store should hold (it is linked from one it holds) is not
    /// there: the source store is incomplete (run `aos fsck` on it).
    #[error("object {id}{} is missing from the store", linked_from(*from))]
    Missing {
        /// The missing object.
        id: ObjectId,
        /// The object linking it, if it was reached through a link.
        from: Option<ObjectId>,
    },
    /// An object is not the journal entry it should be, or a journal is not a chain.
    #[error("journal entry {id}: {message}")]
    Journal {
        /// The entry concerned.
        id: ObjectId,
        /// What is wrong.
        message: String,
    },
    /// An incoming object failed a check; nothing was stored.
    #[error("object {id}{}: {problem}", at_offset(*at))]
    Rejected {
        /// The object's id, as the source names it.
        id: ObjectId,
        /// Its byte offset in the source (a bundle), when it has one.
        at: Option<u64>,
        /// What is wrong.
        problem: String,
    },
    /// The incoming objects are not closed under links: one links an object that is neither
    /// incoming nor in the destination store. Nothing was stored.
    #[error(
        "object {from} links {missing}, which is neither among the incoming objects nor in the store"
    )]
    Incomplete {
        /// The linking object.
        from: ObjectId,
        /// The object nobody has.
        missing: ObjectId,
    },
    /// A byte stream (a bundle) is malformed at a byte offset.
    #[error("{}: byte offset {at}: {message}", path.display())]
    Format {
        /// The file (or a name for an in-memory stream).
        path: PathBuf,
        /// The byte offset of the problem.
        at: u64,
        /// What is wrong.
        message: String,
    },
    /// A file system operation on something other than a store failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The destination store lacks objects the incoming ones build on (a bundle's
    /// prerequisites). Nothing was stored.
    #[error(
        "the store lacks {}: apply the bundle or fetch that history first",
        list_ids(missing)
    )]
    MissingPrerequisites {
        /// The ids it lacks.
        missing: Vec<ObjectId>,
    },
    /// A ref would move to a head that does not descend from its current value, losing
    /// history; nothing moved.
    #[error("{name} is at {old}, and {new} does not descend from it (the histories diverged)")]
    NotFastForward {
        /// The ref.
        name: RefName,
        /// Its current value.
        old: ObjectId,
        /// The value it was to move to.
        new: ObjectId,
    },
    /// A ref names an object the transfer does not provide.
    #[error("{name} points to {id}, which is neither among the objects nor a prerequisite")]
    RefTarget {
        /// The ref.
        name: RefName,
        /// Its target.
        id: ObjectId,
    },
    /// A world's refs could not move: another process moved the world meanwhile (nothing
    /// moved).
    #[error(transparent)]
    WorldRefs(Box<WorldRefError>),
    /// A world operation the transfer relies on failed (a revision, a replay).
    #[error(transparent)]
    World(Box<WorldError>),
    /// A bundle was asked for with no world in it.
    #[error("name at least one world to bundle")]
    NoWorlds,
    /// The name cannot name a world that a bundle may carry.
    #[error("invalid world name `{0}`")]
    WorldName(String),
    /// This store has no world of that name.
    #[error("no world named `{0}`")]
    NoWorld(String),
    /// A `since` id (what the receiver is said to have) is not a journal entry of this store.
    #[error("{since} (a `since` entry) is not a journal entry of this store: {source}")]
    SinceNotEntry {
        /// The id given.
        since: ObjectId,
        /// Why it cannot be read as one.
        source: Box<WorldError>,
    },
    /// A `since` entry is not in the history of any world being bundled.
    #[error("{since} (a `since` entry) is not an ancestor of any bundled world's head")]
    SinceNotAncestor {
        /// The entry.
        since: ObjectId,
    },
    /// The refs and prerequisites do not make a valid bundle header (a ref a bundle may not
    /// carry, a name twice, a checkpoint without its world, more than the limits allow).
    #[error("bundle header: {0}")]
    Header(#[source] crate::transfer::bundle::HeaderError),
    /// A ref that a bundle may not carry.
    #[error("ref {} cannot be bundled", .0.as_str())]
    Unbundlable(RefName),
    /// A ref that names an object of the wrong kind for its role.
    #[error("{} points to {id}, a {kind} object; it must be a {want}", name.as_str())]
    RefKind {
        /// The ref.
        name: RefName,
        /// Its target.
        id: ObjectId,
        /// The target's kind.
        kind: Kind,
        /// The kind its role needs.
        want: Kind,
    },
    /// A fault of `aos` itself (a worker thread that panicked, a header that does not read
    /// back); nothing was stored.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<WorldRefError> for TransferError {
    fn from(e: WorldRefError) -> Self {
        match e {
            WorldRefError::Ref(r) => Self::Ref(r),
            WorldRefError::History(w) => Self::from(*w),
            other => Self::WorldRefs(Box::new(other)),
        }
    }
}

fn linked_from(from: Option<ObjectId>) -> String {
    from.map(|f| format!(" (linked from {f})"))
        .unwrap_or_default()
}

fn at_offset(at: Option<u64>) -> String {
    at.map(|a| format!(" at byte offset {a}"))
        .unwrap_or_default()
}

fn list_ids(ids: &[ObjectId]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(ToString::to_string).collect();
    let more = if ids.len() > 5 {
        format!(" and {} more", ids.len() - 5)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

impl From<WorldError> for TransferError {
    fn from(e: WorldError) -> Self {
        match e {
            WorldError::Store(StoreError::NotFound(id)) => Self::Missing { id, from: None },
            WorldError::Store(s) => Self::Store(s),
            WorldError::Ref(r) => Self::Ref(r),
            WorldError::Corrupt { id, message } => Self::Journal { id, message },
            other => Self::World(Box::new(other)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Id sets

/// Hashes an [`ObjectId`] by its first eight bytes: ids are BLAKE3 outputs, uniform already.
#[derive(Clone, Copy, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut w = [0u8; 8];
        let n = bytes.len().min(8);
        w[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(w);
    }

    // The length prefix of the id's byte array carries no information.
    fn write_usize(&mut self, _: usize) {}
}

/// A set of ids hashed by [`IdHasher`].
pub type IdSet = HashSet<ObjectId, BuildHasherDefault<IdHasher>>;

// ---------------------------------------------------------------------------------------
// Ancestry

/// Whether the journal entry `ancestor` is `descendant` or one of its predecessors
/// ([`crate::world::ancestry::is_ancestor`], with this module's errors): walks back from
/// `descendant` to `ancestor`'s height, reading `descendant.height - ancestor.height` entries
/// and checking that each predecessor's height is one less.
///
/// # Errors
/// [`TransferError::Missing`] if either entry (or one between them) is not in the store,
/// [`TransferError::Journal`] if one is not an entry or the chain is broken.
pub fn is_ancestor(
    store: &Store,
    ancestor: &ObjectId,
    descendant: &ObjectId,
) -> Result<bool, TransferError> {
    Ok(crate::world::ancestry::is_ancestor(
        store, ancestor, descendant,
    )?)
}

/// Sends items to a worker thread in chunks of about `limit` bytes, so that reading and
/// the work overlap and memory holds only a few chunks.
pub(crate) struct ChunkSender<T> {
    tx: mpsc::SyncSender<Vec<T>>,
    chunk: Vec<T>,
    bytes: usize,
    limit: usize,
    /// Whether the worker hung up (it stopped at a problem, which it reports).
    pub(crate) stopped: bool,
}

impl<T> ChunkSender<T> {
    pub(crate) fn new(tx: mpsc::SyncSender<Vec<T>>, limit: usize) -> Self {
        ChunkSender {
            tx,
            chunk: Vec::new(),
            bytes: 0,
            limit,
            stopped: false,
        }
    }

    /// Adds `item`, counted as `bytes`, and sends the chunk once it reaches the limit.
    /// Returns false if the worker has hung up.
    pub(crate) fn push(&mut self, item: T, bytes: usize) -> bool {
        self.bytes += bytes;
        self.chunk.push(item);
        if self.bytes >= self.limit {
            self.bytes = 0;
            if self.tx.send(std::mem::take(&mut self.chunk)).is_err() {
                self.stopped = true;
            }
        }
        !self.stopped
    }

    /// Sends what is left, unless the worker has hung up.
    pub(crate) fn flush(&mut self) {
        if !self.stopped && !self.chunk.is_empty() {
            let _ = self.tx.send(std::mem::take(&mut self.chunk));
        }
    }
}

#[cfg(test)]
mod tests;
