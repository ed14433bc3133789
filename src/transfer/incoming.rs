//! The incoming side: objects from an untrusted source checked completely (ids, kinds,
//! canonical CBOR, structure, closure under links) before any is stored, then written in
//! batches of bounded size.

use std::sync::mpsc;

use rayon::prelude::*;

use super::outgoing::{Ticker, payload_of};
use super::{ChunkSender, TransferError};
use crate::codec::cbor::{self, Value};
use crate::kernel::entry::{Entry, describe};
use crate::kernel::mapnode::{MapNode, NodeError, Slot};
use crate::kernel::replay::read_entry;
use crate::kernel::snapshot::Snapshot;
use crate::object::{Kind, ObjectId, hash};
use crate::progress::Progress;
use crate::store::Store;
use crate::store::format::Encoding;

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
    /// The objects to yield, e.g. from [`missing_objects`](super::missing_objects).
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
                .map_err(|e| reject(format!("not a valid journal entry: {}", describe(&e))))?;
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
        let mut chunks = ChunkSender::new(tx, CHUNK_BYTES);
        let read = source.for_each_object(&mut |obj| {
            let bytes = obj.stored.len() + 64;
            if chunks.push(obj, bytes) {
                Ok(())
            } else {
                // The verifier stopped at a problem; it reports it.
                Err(TransferError::Internal("the object checker stopped".into()))
            }
        });
        // Even after a read error: a problem in an object read before it comes first.
        chunks.flush();
        let stopped = chunks.stopped;
        drop(chunks);
        let verified = verifier.join().unwrap_or_else(|_| {
            Err(TransferError::Internal(
                "the object checker panicked".into(),
            ))
        });
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
