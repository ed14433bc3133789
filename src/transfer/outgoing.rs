//! The outgoing walk: every object reachable from some roots that a receiver lacks, and the
//! `have` predicates that say what it holds.

use std::borrow::Cow;

use super::{IdSet, TransferError};
use crate::codec::cbor;
use crate::kernel::entry::Body;
use crate::kernel::mapnode::{MapNode, Slot};
use crate::kernel::replay::{read_entry, read_snapshot};
use crate::object::{Kind, ObjectId, hash};
use crate::progress::Progress;
use crate::store::format::{self, Encoding};
use crate::store::{Store, StoreError, Stored};

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
pub(super) fn payload_of(
    encoding: Encoding,
    stored: &[u8],
    size: u64,
) -> Result<Cow<'_, [u8]>, String> {
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
