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

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::mpsc;

use rayon::prelude::*;

use crate::codec::cbor::{self, Value};
use crate::kernel::entry::{Body, Entry};
use crate::kernel::mapnode::{MapNode, NodeError, Slot};
use crate::kernel::replay::read_entry;
use crate::kernel::snapshot::Snapshot;
use crate::kernel::{WorldError, replay::read_snapshot};
use crate::object::{Kind, ObjectId, hash};
use crate::progress::Progress;
use crate::store::format::{self, Encoding};
use crate::store::refs::{RefError, RefName};
use crate::store::{Store, StoreError, Stored};

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
    /// The request itself is invalid (an unknown world, an id that is not an ancestor ...).
    #[error("{0}")]
    Input(String),
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
            other => Self::Input(other.to_string()),
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

/// Whether the journal entry `ancestor` is `descendant` or one of its predecessors.
///
/// Journals are linear chains: this walks back from `descendant` to `ancestor`'s height and
/// compares ids, reading `descendant.height - ancestor.height` entries, and checks on the way
/// that each predecessor's height is one less.
///
/// # Errors
/// [`TransferError::Missing`] if either entry (or one between them) is not in the store,
/// [`TransferError::Journal`] if one is not an entry or the chain is broken.
pub fn is_ancestor(
    store: &Store,
    ancestor: &ObjectId,
    descendant: &ObjectId,
) -> Result<bool, TransferError> {
    let target = read_entry(store, ancestor)?.height;
    let mut cur = *descendant;
    let mut e = read_entry(store, &cur)?;
    while e.height > target {
        let prev = e.prev.ok_or_else(|| TransferError::Journal {
            id: cur,
            message: format!("height {} but no predecessor", e.height),
        })?;
        let p = read_entry(store, &prev)?;
        if p.height.checked_add(1) != Some(e.height) {
            return Err(TransferError::Journal {
                id: cur,
                message: format!(
                    "height {}, but its predecessor {prev} has height {}",
                    e.height, p.height
                ),
            });
        }
        cur = prev;
        e = p;
    }
    Ok(cur == *ancestor)
}

// ---------------------------------------------------------------------------------------
// Outgoing

/// One object handed out by [`walk_missing`], in the form its store keeps it (verified).
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Its id.
    pub id: ObjectId,
    /// Its kind.
    pub kind: Kind,
    /// How the stored bytes encode the payload.
    pub encoding: Encoding,
    /// The payload size.
    pub size: u64,
    /// The stored bytes (the payload, or one zstd frame of it).
    pub stored: &'a [u8],
}

/// What [`walk_missing`] handed out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkSummary {
    /// Objects handed out.
    pub objects: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Their stored bytes.
    pub stored_bytes: u64,
}

/// The payload of stored bytes: borrowed when stored raw, decompressed otherwise.
fn payload_of(encoding: Encoding, stored: &[u8], size: u64) -> Result<Cow<'_, [u8]>, String> {
    match encoding {
        Encoding::Raw if stored.len() as u64 == size => Ok(Cow::Borrowed(stored)),
        _ => format::decompress(encoding, stored, size).map(Cow::Owned),
    }
}

/// Walks the objects reachable from `roots` in `store`, handing each one that `have` does
/// not claim to `emit` exactly once, and descending only into those: whoever has an object
/// has everything it links. Each object is read once and verified against its id.
///
/// The order is deterministic: depth first from the roots in the order given, each object
/// before the objects it links, links in the order they appear in the payload. From a world
/// head that is the journal newest entry first.
///
/// # Errors
/// [`TransferError::Missing`] for an object the store lacks; store errors for a damaged one;
/// any error `emit` returns, which stops the walk.
pub fn walk_missing(
    store: &Store,
    roots: &[ObjectId],
    have: &dyn Fn(&ObjectId) -> bool,
    progress: &dyn Progress,
    emit: &mut dyn FnMut(&Outgoing<'_>) -> Result<(), TransferError>,
) -> Result<WalkSummary, TransferError> {
    walk(store, roots, have, progress, true, &mut |id, s| {
        emit(&Outgoing {
            id,
            kind: s.kind,
            encoding: s.encoding,
            size: s.size,
            stored: &s.bytes,
        })
    })
}

/// Verifies that an object read from a store hashes to its id.
pub(crate) fn verify_stored(id: &ObjectId, s: &Stored) -> Result<(), TransferError> {
    let corrupt = |message: String| StoreError::Corrupt {
        id: *id,
        location: s.location.describe(),
        message,
    };
    let payload = payload_of(s.encoding, &s.bytes, s.size).map_err(corrupt)?;
    let got = hash(s.kind, &payload);
    if got != *id {
        return Err(corrupt(format!("content hashes to {got}")).into());
    }
    Ok(())
}

/// Reports progress in steps of many units: a renderer takes a lock per call.
pub(crate) struct Ticker<'a> {
    progress: &'a dyn Progress,
    pending: u64,
}

impl<'a> Ticker<'a> {
    const STEP: u64 = 4096;

    pub(crate) fn new(progress: &'a dyn Progress) -> Self {
        Self {
            progress,
            pending: 0,
        }
    }

    pub(crate) fn tick(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= Self::STEP {
            self.progress.advance(std::mem::take(&mut self.pending));
        }
    }

    pub(crate) fn flush(&mut self) {
        if self.pending > 0 {
            self.progress.advance(std::mem::take(&mut self.pending));
        }
    }
}

/// The walk of [`walk_missing`], handing out each object's stored form. With `verify` false
/// the hashes are not checked here: the caller must check each object (with
/// [`verify_stored`]) before it uses it, perhaps on another thread.
pub(crate) fn walk(
    store: &Store,
    roots: &[ObjectId],
    have: &dyn Fn(&ObjectId) -> bool,
    progress: &dyn Progress,
    verify: bool,
    emit: &mut dyn FnMut(ObjectId, Stored) -> Result<(), TransferError>,
) -> Result<WalkSummary, TransferError> {
    let mut summary = WalkSummary::default();
    let mut seen = IdSet::default();
    let mut stack: Vec<(ObjectId, Option<ObjectId>)> = roots
        .iter()
        .rev()
        .filter(|r| !have(r))
        .map(|r| (*r, None))
        .collect();
    let mut links: Vec<ObjectId> = Vec::new();
    let mut window = crate::store::pack::ReadWindow::default();
    let mut ticker = Ticker::new(progress);
    progress.start("counting and writing objects", None);
    while let Some((id, from)) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let loc = store
            .locate(&id)
            .ok_or(TransferError::Missing { id, from })?;
        let stored = store.read_stored_windowed(&id, &loc, &mut window)?;
        if verify {
            verify_stored(&id, &stored)?;
        }
        links.clear();
        if stored.kind.is_cbor() {
            let corrupt = |message: String| StoreError::Corrupt {
                id,
                location: loc.describe(),
                message,
            };
            let payload =
                payload_of(stored.encoding, &stored.bytes, stored.size).map_err(corrupt)?;
            links.extend(
                cbor::links(&payload)
                    .map_err(|e| corrupt(format!("not a canonical {}: {e}", stored.kind)))?,
            );
        }
        summary.objects += 1;
        summary.payload_bytes += stored.size;
        summary.stored_bytes += stored.bytes.len() as u64;
        emit(id, stored)?;
        ticker.tick(1);
        for l in links.iter().rev() {
            if !seen.contains(l) && !have(l) {
                stack.push((*l, Some(id)));
            }
        }
    }
    ticker.flush();
    progress.finish();
    Ok(summary)
}

/// The ids of every object reachable from `roots` that `have` does not claim, in the order
/// of [`walk_missing`].
///
/// # Errors
/// As [`walk_missing`].
pub fn missing_objects(
    store: &Store,
    roots: &[ObjectId],
    have: &dyn Fn(&ObjectId) -> bool,
    progress: &dyn Progress,
) -> Result<Vec<ObjectId>, TransferError> {
    let mut ids = Vec::new();
    walk_missing(store, roots, have, progress, &mut |o| {
        ids.push(o.id);
        Ok(())
    })?;
    Ok(ids)
}

/// The most entries [`HaveSet::add_entry_boundary`] walks back looking for a snapshot marker.
pub const MAX_BOUNDARY_WALK: u64 = 1 << 16;

/// Ids known to be in the closure of what a receiver holds. Every id in it is reachable
/// from something the receiver has, so a walk that stops at them sends a complete closure;
/// the set need not be closed itself.
#[derive(Clone, Debug, Default)]
pub struct HaveSet {
    ids: IdSet,
    /// Entries whose boundary was added already.
    walked: IdSet,
}

impl HaveSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `id` is in the set.
    #[must_use]
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.ids.contains(id)
    }

    /// Adds one id the receiver has (with its closure).
    pub fn insert(&mut self, id: ObjectId) {
        self.ids.insert(id);
    }

    /// Number of ids in the set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds what a holder of the journal entry `entry` has and later history may link,
    /// reading only objects near it: `entry` and its predecessors down to the latest snapshot
    /// marker at or below it (at most [`MAX_BOUNDARY_WALK`] entries, or to the genesis), that
    /// marker's snapshot with everything the snapshot links (its head, the genesis, the
    /// states), and every map node of its cell maps with the cell states they link. Later
    /// entries link their predecessor, later snapshots the genesis and mostly unchanged
    /// states and map nodes, so a walk from a later head stops at this boundary instead of
    /// reading the history or the unchanged state below it.
    ///
    /// # Errors
    /// Store errors, or [`TransferError::Journal`] if `entry` is not a journal entry.
    pub fn add_entry_boundary(
        &mut self,
        store: &Store,
        entry: &ObjectId,
        progress: &dyn Progress,
    ) -> Result<(), TransferError> {
        progress.start("finding what the receiver has", None);
        let mut cur = *entry;
        let mut walked = 0u64;
        loop {
            self.ids.insert(cur);
            if !self.walked.insert(cur) {
                break;
            }
            let e = read_entry(store, &cur)?;
            progress.advance(1);
            match e.body {
                Body::Snapshot { snapshot } => {
                    self.add_snapshot(store, &snapshot, progress)?;
                    break;
                }
                Body::Genesis(_) => break,
                Body::Event(_) | Body::Fault(_) | Body::Manifest { .. } => {}
            }
            walked += 1;
            let Some(prev) = e.prev else { break };
            if walked >= MAX_BOUNDARY_WALK {
                self.ids.insert(prev);
                break;
            }
            cur = prev;
        }
        progress.finish();
        Ok(())
    }

    fn add_snapshot(
        &mut self,
        store: &Store,
        id: &ObjectId,
        progress: &dyn Progress,
    ) -> Result<(), TransferError> {
        self.ids.insert(*id);
        let s = read_snapshot(store, id)?;
        self.ids.insert(s.head);
        self.ids.insert(s.genesis);
        if let Some(m) = s.manifest {
            self.ids.insert(m);
        }
        for (_, state) in &s.states {
            if let Some(v) = state {
                self.ids.insert(*v);
            }
        }
        let mut nodes: Vec<ObjectId> = s.cells.iter().map(|(_, root)| *root).collect();
        while let Some(n) = nodes.pop() {
            if !self.ids.insert(n) {
                continue;
            }
            let obj = store.get(&n).map_err(|e| match e {
                StoreError::NotFound(id) => TransferError::Missing { id, from: None },
                other => other.into(),
            })?;
            let node = MapNode::decode(&obj.data).map_err(|e| TransferError::Rejected {
                id: n,
                at: None,
                problem: e.to_string(),
            })?;
            progress.advance(1);
            for (_, slot) in node.slots {
                match slot {
                    Slot::Child(c) => nodes.push(c),
                    Slot::Bucket(leaves) => {
                        for (_, v) in leaves {
                            self.ids.insert(v);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Incoming

/// One object as a source provides it: its claimed id and kind, and its stored form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// The id the source claims.
    pub id: ObjectId,
    /// The kind the source claims.
    pub kind: Kind,
    /// How the stored bytes encode the payload.
    pub encoding: Encoding,
    /// The payload size the source claims.
    pub size: u64,
    /// The stored bytes.
    pub stored: Vec<u8>,
    /// Where the object is in the source (a byte offset in a bundle), for messages.
    pub at: Option<u64>,
}

/// Objects from somewhere else, which may be read more than once: [`check_incoming`] reads
/// them all, then [`write_checked`] reads them again to store them, so memory does not grow
/// with their bytes. Every pass must yield the same objects in the same order (the second
/// pass re-verifies each one and fails otherwise).
pub trait ObjectSource {
    /// Hands every object to `visit`, in order, stopping at the first error (from the source
    /// itself, say a malformed stream, or from `visit`).
    ///
    /// # Errors
    /// The source's own errors, or the first error `visit` returns.
    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(Incoming) -> Result<(), TransferError>,
    ) -> Result<(), TransferError>;

    /// How many objects the source holds, if it knows (for progress only).
    fn count_hint(&self) -> Option<u64> {
        None
    }
}

/// Objects of a local store as a source (a local clone or fetch): `ids` are read in order.
pub struct StoreObjects<'a> {
    /// The store to read.
    pub store: &'a Store,
    /// The objects to yield, e.g. from [`missing_objects`].
    pub ids: &'a [ObjectId],
}

impl ObjectSource for StoreObjects<'_> {
    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(Incoming) -> Result<(), TransferError>,
    ) -> Result<(), TransferError> {
        for id in self.ids {
            let loc = self.store.locate(id).ok_or(TransferError::Missing {
                id: *id,
                from: None,
            })?;
            let s = self.store.read_stored(id, &loc)?;
            visit(Incoming {
                id: *id,
                kind: s.kind,
                encoding: s.encoding,
                size: s.size,
                stored: s.bytes,
                at: None,
            })?;
        }
        Ok(())
    }

    fn count_hint(&self) -> Option<u64> {
        Some(self.ids.len() as u64)
    }
}

/// What objects outside the incoming set may be linked, in [`check_incoming`].
#[derive(Clone, Copy)]
pub enum Closure<'a> {
    /// Objects of this store (the destination): the incoming set plus the store must hold
    /// every link.
    Store(&'a Store),
    /// None: the incoming set must hold every link itself.
    SelfContained,
    /// Links leaving the incoming set are not checked (verifying a bundle with prerequisites
    /// outside any store); the caller must say so.
    Unchecked,
}

/// Height recorded for objects that are not journal entries.
const NO_HEIGHT: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
struct Rec {
    id: ObjectId,
    kind: Kind,
    /// The entry's height, or [`NO_HEIGHT`].
    height: u64,
    /// Its position in the source.
    pos: u32,
}

#[derive(Clone, Copy, Debug)]
struct LinkRec {
    target: ObjectId,
    from: ObjectId,
    /// The height the target must have (a predecessor link), or [`NO_HEIGHT`].
    expect: u64,
}

/// The objects [`check_incoming`] accepted: their ids and kinds, sorted, for
/// [`write_checked`] to hold the second pass to.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// Sorted by id.
    recs: Vec<Rec>,
    /// For each position in the source, the index of its record.
    order: Vec<u32>,
    /// Objects checked.
    pub objects: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Their stored bytes.
    pub stored_bytes: u64,
    /// Links followed (closure checked, unless [`Closure::Unchecked`]).
    pub links: u64,
}

impl Checked {
    fn position(&self, id: &ObjectId) -> Option<usize> {
        self.recs.binary_search_by(|r| r.id.cmp(id)).ok()
    }

    /// Whether `id` was among the checked objects.
    #[must_use]
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.position(id).is_some()
    }

    /// The kind of a checked object.
    #[must_use]
    pub fn kind(&self, id: &ObjectId) -> Option<Kind> {
        self.position(id).map(|i| self.recs[i].kind)
    }

    /// The height of a checked journal entry.
    #[must_use]
    pub fn height(&self, id: &ObjectId) -> Option<u64> {
        self.position(id)
            .map(|i| self.recs[i].height)
            .filter(|h| *h != NO_HEIGHT)
    }

    /// The checked ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.recs.iter().map(|r| r.id)
    }
}

/// What one object's checks found.
struct Verified {
    id: ObjectId,
    kind: Kind,
    height: u64,
    prev: Option<ObjectId>,
    links: Vec<ObjectId>,
    size: u64,
    stored: u64,
}

/// Checks one incoming object on its own: active kind, id, canonical encoding, structure.
fn verify_one(obj: &Incoming) -> Result<Verified, TransferError> {
    let reject = |problem: String| TransferError::Rejected {
        id: obj.id,
        at: obj.at,
        problem,
    };
    if !obj.kind.is_active() {
        return Err(reject(format!(
            "kind `{}` is reserved and cannot be stored yet",
            obj.kind
        )));
    }
    let payload = payload_of(obj.encoding, &obj.stored, obj.size).map_err(reject)?;
    let got = hash(obj.kind, &payload);
    if got != obj.id {
        return Err(reject(format!(
            "content hashes to {got} (damaged, or not the object named)"
        )));
    }
    let mut v = Verified {
        id: obj.id,
        kind: obj.kind,
        height: NO_HEIGHT,
        prev: None,
        links: Vec::new(),
        size: obj.size,
        stored: obj.stored.len() as u64,
    };
    let not_canonical =
        |e: cbor::DecodeError| reject(format!("not a canonical {} object: {e}", obj.kind));
    match obj.kind {
        Kind::Blob => {}
        // Entries, the bulk of any history, are decoded once; their links are read from the
        // decoded value (a strict decoder accepts only canonical bytes, so the links are the
        // link tags of the payload).
        Kind::Entry => {
            let value = cbor::decode(&payload).map_err(not_canonical)?;
            let e = Entry::from_value(&value)
                .map_err(|e| reject(format!("not a valid journal entry: {e}")))?;
            v.height = e.height;
            v.prev = e.prev;
            value_links(&value, &mut v.links);
        }
        Kind::MapNode => {
            let node = MapNode::decode(&payload).map_err(|e| match e {
                NodeError::Cbor(c) => not_canonical(c),
                other => reject(format!("not a valid map node: {other}")),
            })?;
            for (_, slot) in node.slots {
                match slot {
                    Slot::Child(c) => v.links.push(c),
                    Slot::Bucket(leaves) => v.links.extend(leaves.into_iter().map(|(_, l)| l)),
                }
            }
        }
        Kind::Snapshot => {
            v.links = cbor::links(&payload).map_err(not_canonical)?;
            Snapshot::decode(&payload).map_err(|e| reject(format!("not a valid snapshot: {e}")))?;
        }
        Kind::Value | Kind::Air | Kind::Receipt => {
            v.links = cbor::links(&payload).map_err(not_canonical)?;
        }
    }
    Ok(v)
}

/// Every link inside `v`, in encoding order.
fn value_links(v: &Value, out: &mut Vec<ObjectId>) {
    match v {
        Value::Link(id) => out.push(*id),
        Value::Array(items) => {
            for i in items {
                value_links(i, out);
            }
        }
        Value::Map(m) => {
            for (k, x) in m.entries() {
                value_links(k, out);
                value_links(x, out);
            }
        }
        Value::Int(_) | Value::Bytes(_) | Value::Text(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// Objects handed to the verifier at once (by stored bytes): large enough to spread over
/// threads, small enough that a few in flight keep memory flat.
const CHUNK_BYTES: usize = 4 << 20;

/// Verifies chunks of objects in parallel as they arrive, keeping ids and links in order.
fn collect_verified(
    rx: mpsc::Receiver<Vec<Incoming>>,
    hint: Option<u64>,
    progress: &dyn Progress,
) -> Result<(Vec<Rec>, Vec<LinkRec>, Checked), TransferError> {
    // The hint is untrusted: reserve no more than a few million records up front.
    let reserve = usize::try_from(hint.unwrap_or(0).min(1 << 22)).unwrap_or(0);
    let mut recs: Vec<Rec> = Vec::with_capacity(reserve);
    let mut links: Vec<LinkRec> = Vec::with_capacity(reserve + reserve / 4);
    let mut checked = Checked::default();
    for chunk in rx {
        let results: Vec<Result<Verified, TransferError>> =
            chunk.par_iter().map(verify_one).collect();
        for r in results {
            let v = r?;
            let pos = u32::try_from(recs.len()).map_err(|_| TransferError::Rejected {
                id: v.id,
                at: None,
                problem: format!("more than {} objects in one transfer", u32::MAX),
            })?;
            recs.push(Rec {
                id: v.id,
                kind: v.kind,
                height: v.height,
                pos,
            });
            for l in &v.links {
                let expect = match (v.prev, v.height.checked_sub(1)) {
                    (Some(p), Some(h)) if p == *l => h,
                    _ => NO_HEIGHT,
                };
                links.push(LinkRec {
                    target: *l,
                    from: v.id,
                    expect,
                });
            }
            checked.objects += 1;
            checked.payload_bytes += v.size;
            checked.stored_bytes += v.stored;
        }
        progress.advance(chunk.len() as u64);
    }
    Ok((recs, links, checked))
}

/// Checks every object of `source` before anything is stored: each must have an active
/// kind, decompress to exactly its size, hash to its id under its kind, be canonical CBOR
/// (every kind but blobs) and, for journal entries, snapshots and map nodes, decode as one;
/// no id may appear twice; and the set must be closed as `closure` says: every link of every
/// object names an incoming object or one the destination store has, and every journal
/// entry's predecessor has a height one less.
///
/// Objects are read in one sequential pass and checked in parallel; memory holds the ids and
/// links (about 100 bytes per object), not the payloads.
///
/// # Errors
/// The first problem in source order ([`TransferError::Rejected`] naming the object and its
/// offset, or the source's own error), then closure problems
/// ([`TransferError::Incomplete`], [`TransferError::Journal`]).
pub fn check_incoming(
    source: &dyn ObjectSource,
    closure: Closure<'_>,
    progress: &dyn Progress,
) -> Result<Checked, TransferError> {
    progress.start("checking objects", source.count_hint());
    let (tx, rx) = mpsc::sync_channel::<Vec<Incoming>>(2);
    let (read, verified) = std::thread::scope(|scope| {
        let hint = source.count_hint();
        let verifier = scope.spawn(move || collect_verified(rx, hint, progress));
        let mut pending: Vec<Incoming> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut stopped = false;
        let read = source.for_each_object(&mut |obj| {
            pending_bytes += obj.stored.len() + 64;
            pending.push(obj);
            if pending_bytes >= CHUNK_BYTES {
                pending_bytes = 0;
                if tx.send(std::mem::take(&mut pending)).is_err() {
                    // The verifier stopped at a problem; it reports it.
                    stopped = true;
                    return Err(TransferError::Input("stopped".into()));
                }
            }
            Ok(())
        });
        // Even after a read error: a problem in an object read before it comes first.
        if !stopped && !pending.is_empty() {
            let _ = tx.send(std::mem::take(&mut pending));
        }
        drop(tx);
        let verified = verifier
            .join()
            .unwrap_or_else(|_| Err(TransferError::Input("the object checker panicked".into())));
        (if stopped { Ok(()) } else { read }, verified)
    });
    // A problem the verifier found lies before anything the reader was still reading.
    let (mut recs, mut links, mut checked) = verified?;
    read?;
    progress.finish();

    recs.par_sort_unstable_by(|a, b| a.id.cmp(&b.id));
    if let Some(w) = recs.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(TransferError::Rejected {
            id: w[0].id,
            at: None,
            problem: "appears twice".into(),
        });
    }
    let mut order = vec![0u32; recs.len()];
    for (i, r) in recs.iter().enumerate() {
        // Positions and indexes are below u32::MAX: positions were checked when counted.
        order[r.pos as usize] = u32::try_from(i).unwrap_or(u32::MAX);
    }
    checked.recs = recs;
    checked.order = order;
    checked.links = links.len() as u64;
    check_closure(&checked, &mut links, closure)?;
    Ok(checked)
}

/// Every link must name a checked object or one the destination has; predecessors must
/// have the height one less than their successor's.
fn check_closure(
    checked: &Checked,
    links: &mut [LinkRec],
    closure: Closure<'_>,
) -> Result<(), TransferError> {
    links.par_sort_unstable_by(|a, b| (a.target, a.from).cmp(&(b.target, b.from)));
    // Both lists are sorted: one merge pass, no random lookups.
    let recs = &checked.recs;
    let mut i = 0usize;
    let mut last: Option<(ObjectId, bool)> = None;
    for l in links.iter() {
        while i < recs.len() && recs[i].id < l.target {
            i += 1;
        }
        if let Some(r) = recs.get(i).filter(|r| r.id == l.target) {
            if l.expect != NO_HEIGHT && r.height != l.expect {
                return Err(bad_predecessor(l, r.kind, r.height));
            }
            continue;
        }
        let store = match closure {
            Closure::Unchecked => continue,
            Closure::SelfContained => {
                return Err(TransferError::Incomplete {
                    from: l.from,
                    missing: l.target,
                });
            }
            Closure::Store(s) => s,
        };
        let present = match last {
            Some((t, p)) if t == l.target => p,
            _ => store.contains(&l.target),
        };
        last = Some((l.target, present));
        if !present {
            return Err(TransferError::Incomplete {
                from: l.from,
                missing: l.target,
            });
        }
        if l.expect != NO_HEIGHT {
            let (kind, _) = store.header(&l.target)?;
            if kind != Kind::Entry {
                return Err(bad_predecessor(l, kind, NO_HEIGHT));
            }
            let h = read_entry(store, &l.target)?.height;
            if h != l.expect {
                return Err(bad_predecessor(l, kind, h));
            }
        }
    }
    Ok(())
}

fn bad_predecessor(l: &LinkRec, kind: Kind, height: u64) -> TransferError {
    let got = if kind != Kind::Entry {
        format!("is a {kind} object")
    } else {
        format!("has height {height}")
    };
    TransferError::Journal {
        id: l.from,
        message: format!(
            "its predecessor {} {got}, expected height {}",
            l.target, l.expect
        ),
    }
}

/// The error for an object of the second pass that is not what the first pass checked.
fn changed(obj: &Incoming, problem: &str) -> TransferError {
    TransferError::Rejected {
        id: obj.id,
        at: obj.at,
        problem: format!("{problem} (the source changed after it was checked)"),
    }
}

/// Knobs of [`write_checked`].
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    /// A batch is committed (one pack, one fsync) once its pack reaches this many bytes.
    pub batch_bytes: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            batch_bytes: 64 << 20,
        }
    }
}

/// What [`write_checked`] stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Objects newly written.
    pub written: u64,
    /// Objects the store had already.
    pub existing: u64,
    /// Packs written.
    pub packs: u64,
    /// Bytes of those packs.
    pub pack_bytes: u64,
}

/// Stores the objects of `source` that [`check_incoming`] accepted, reading the source again:
/// each object is re-hashed and must be the one checked at its position (same id, same
/// kind), and no object may be missing or added. Objects go into store batches committed every
/// `opts.batch_bytes`, so memory stays bounded; objects the store has are skipped.
///
/// # Errors
/// [`TransferError::Rejected`] if the source changed since it was checked; store errors. On
/// error, batches committed before it remain: valid objects that no ref reaches yet.
pub fn write_checked(
    store: &Store,
    source: &dyn ObjectSource,
    checked: &Checked,
    opts: &WriteOptions,
    progress: &dyn Progress,
) -> Result<WriteReport, TransferError> {
    progress.start("writing objects", Some(checked.objects));
    let mut report = WriteReport::default();
    let mut ticker = Ticker::new(progress);
    let mut n = 0usize;
    let mut batch = store.batch();
    let commit = |batch: crate::store::Batch<'_>, report: &mut WriteReport| {
        let s = batch.commit()?;
        if s.pack.is_some() {
            report.packs += 1;
            report.pack_bytes += s.pack_bytes;
        }
        Ok::<(), TransferError>(())
    };
    // Objects are handed over in chunks: ids are re-hashed and looked up in the store in
    // parallel, then the new ones are added to the batch in order. Lookups search the packs
    // there were before: the objects are distinct, so none is in a pack written here.
    let _ = store.reload_packs();
    let packs = store.packs();
    let mut pending: Vec<Incoming> = Vec::new();
    let mut pending_bytes = 0usize;
    let chunk_bytes = opts.batch_bytes.min(CHUNK_BYTES as u64);
    let mut flush = |pending: Vec<Incoming>,
                     batch: &mut crate::store::Batch<'_>,
                     report: &mut WriteReport|
     -> Result<(), TransferError> {
        let found: Vec<Result<Option<crate::store::Location>, TransferError>> = pending
            .par_iter()
            .map(|obj| {
                let payload = payload_of(obj.encoding, &obj.stored, obj.size)
                    .map_err(|m| changed(obj, &format!("cannot be decoded: {m}")))?;
                if hash(obj.kind, &payload) != obj.id {
                    return Err(changed(obj, "no longer hashes to its id"));
                }
                Ok(store.locate_in(&packs, &obj.id))
            })
            .collect();
        for (obj, loc) in pending.iter().zip(found) {
            match loc? {
                Some(loc) => {
                    batch.existing_at(&loc);
                    report.existing += 1;
                }
                None => {
                    if batch.add_verified_new(
                        &obj.id,
                        obj.kind,
                        obj.encoding,
                        obj.size,
                        &obj.stored,
                    )? {
                        report.written += 1;
                    } else {
                        report.existing += 1;
                    }
                }
            }
        }
        ticker.tick(pending.len() as u64);
        Ok(())
    };
    source.for_each_object(&mut |obj| {
        // The source yields its objects in the order of the first pass.
        let rec = checked
            .order
            .get(n)
            .and_then(|i| checked.recs.get(*i as usize))
            .ok_or_else(|| changed(&obj, "is one object too many"))?;
        if rec.id != obj.id || rec.kind != obj.kind {
            return Err(changed(&obj, &format!("came where {} was checked", rec.id)));
        }
        n += 1;
        pending_bytes += obj.stored.len() + 64;
        pending.push(obj);
        if pending_bytes as u64 >= chunk_bytes {
            pending_bytes = 0;
            flush(std::mem::take(&mut pending), &mut batch, &mut report)?;
            if batch.pending_bytes() >= opts.batch_bytes {
                let full = std::mem::replace(&mut batch, store.batch());
                commit(full, &mut report)?;
            }
        }
        Ok(())
    })?;
    flush(std::mem::take(&mut pending), &mut batch, &mut report)?;
    if let Some(i) = checked.order.get(n) {
        return Err(TransferError::Rejected {
            id: checked.recs[*i as usize].id,
            at: None,
            problem: "was checked but did not come again (the source changed after it was checked)"
                .into(),
        });
    }
    commit(batch, &mut report)?;
    ticker.flush();
    progress.finish();
    Ok(report)
}

/// Checks every object of `source` against `store` ([`check_incoming`] with
/// [`Closure::Store`]) and then stores them ([`write_checked`]).
///
/// # Errors
/// As those two; when the checks fail, nothing is stored.
pub fn receive(
    store: &Store,
    source: &dyn ObjectSource,
    opts: &WriteOptions,
    progress: &dyn Progress,
) -> Result<(Checked, WriteReport), TransferError> {
    let checked = check_incoming(source, Closure::Store(store), progress)?;
    let report = write_checked(store, source, &checked, opts, progress)?;
    Ok((checked, report))
}

#[cfg(test)]
mod tests;
