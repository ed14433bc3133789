//! Tests of the transfer core against real worlds in temporary stores.

use std::cell::Cell;
use std::collections::BTreeSet;

use super::*;
use crate::codec::cbor;
use crate::codec::cbor::Value;
use crate::codec::json::parse_json;
use crate::kernel::entry::Entry;
use crate::kernel::replay::read_entry;
use crate::object::{Kind, hash};
use crate::progress::NoProgress;
use crate::store::STORE_DIR;
use crate::store::format::Encoding;
use crate::store::fsck::fsck;
use crate::world::{CreateOptions, SendOptions, World, create_world};

pub(crate) struct TempStore {
    _dir: tempfile::TempDir,
    pub(crate) store: Store,
}

pub(crate) fn temp_store() -> TempStore {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::init(&dir.path().join(STORE_DIR)).unwrap();
    TempStore { _dir: dir, store }
}

/// Creates world `name` from an example with automatic snapshots every `every` entries.
pub(crate) fn world(store: &Store, name: &str, example: &str, every: u64) {
    let e = crate::examples::example(example).unwrap();
    let opts = CreateOptions {
        snapshot_every: every,
        ..CreateOptions::default()
    };
    create_world(store, name, e.nodes().unwrap(), &e.wasm(), &opts).unwrap();
}

/// Sends counter events (a start, then ticks) and returns the new head.
pub(crate) fn ticks(store: &Store, name: &str, n: usize, start: bool) -> ObjectId {
    ticks_to(store, name, n, start.then_some(1_000_000))
}

/// Sends counter events (a start with `target` if given, then ticks); returns the new head.
pub(crate) fn ticks_to(store: &Store, name: &str, n: usize, target: Option<u64>) -> ObjectId {
    let mut w = World::open(store, name).unwrap();
    let mut evs = Vec::new();
    if let Some(t) = target {
        let v = parse_json(&format!(r#"{{"Start": {{"target": {t}}}}}"#)).unwrap();
        evs.push(w.parse_event("demo/CounterEvent@1", &v, None).unwrap());
    }
    let tick = parse_json(r#""Tick""#).unwrap();
    for _ in 0..n {
        evs.push(w.parse_event("demo/CounterEvent@1", &tick, None).unwrap());
    }
    w.send(evs, &SendOptions::default(), &NoProgress).unwrap();
    w.head()
}

/// Sends keyed deposits to accounts `a0 .. a{accounts}`.
pub(crate) fn deposits(store: &Store, name: &str, accounts: usize, amount: u64) -> ObjectId {
    let mut w = World::open(store, name).unwrap();
    let evs: Vec<_> = (0..accounts)
        .map(|i| {
            let v = parse_json(&format!(
                r#"{{"account": "a{i}", "op": {{"Deposit": {{"amount": {amount}}}}}}}"#
            ))
            .unwrap();
            w.parse_event("demo/AccountEvent@1", &v, None).unwrap()
        })
        .collect();
    w.send(evs, &SendOptions::default(), &NoProgress).unwrap();
    w.head()
}

fn head(store: &Store, name: &str) -> ObjectId {
    store
        .refs()
        .read(&RefName::new(&format!("refs/worlds/{name}")).unwrap())
        .unwrap()
        .unwrap()
}

fn closure(store: &Store, roots: &[ObjectId]) -> BTreeSet<ObjectId> {
    missing_objects(store, roots, &|_| false, &NoProgress)
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn ancestry_follows_the_chain() {
    let t = temp_store();
    let s = &t.store;
    world(s, "x", "counter", 0);
    world(s, "y", "counter", 0);
    let genesis = head(s, "x");
    assert_eq!(
        genesis,
        head(s, "y"),
        "the same example has the same genesis"
    );
    let x1 = ticks(s, "x", 3, true);
    let x2 = ticks(s, "x", 5, false);
    let y1 = ticks_to(s, "y", 4, Some(7));
    assert!(is_ancestor(s, &genesis, &x2).unwrap());
    assert!(is_ancestor(s, &x1, &x2).unwrap());
    assert!(is_ancestor(s, &x2, &x2).unwrap());
    assert!(!is_ancestor(s, &x2, &x1).unwrap());
    assert!(!is_ancestor(s, &y1, &x2).unwrap());
    assert!(!is_ancestor(s, &x1, &y1).unwrap());
    // Not an entry: an error naming it.
    let blob = s.put(Kind::Blob, b"not an entry").unwrap();
    assert!(matches!(
        is_ancestor(s, &blob, &x2),
        Err(TransferError::Journal { id, .. }) if id == blob
    ));
    let absent = ObjectId::from_bytes([9; 32]);
    assert!(matches!(
        is_ancestor(s, &absent, &x2),
        Err(TransferError::Missing { id, .. }) if id == absent
    ));
}

#[test]
fn walk_is_complete_deterministic_and_stops_at_what_the_receiver_has() {
    let t = temp_store();
    let s = &t.store;
    world(s, "c", "counter", 0);
    let h1 = ticks(s, "c", 20, true);
    let all = missing_objects(s, &[h1], &|_| false, &NoProgress).unwrap();
    assert_eq!(
        all,
        missing_objects(s, &[h1], &|_| false, &NoProgress).unwrap()
    );
    assert_eq!(all[0], h1, "roots come first");
    // Exactly what fsck counts as the closure: every object the world needs, once.
    let set: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(set.len(), all.len());
    for id in &all {
        let o = s.get(id).unwrap();
        if o.kind.is_cbor() {
            for l in cbor::links(&o.data).unwrap() {
                assert!(set.contains(&l), "{l} linked from {id} is missing");
            }
        }
    }
    // A receiver holding h1 gets only the new entries (and nothing below h1).
    let h2 = ticks(s, "c", 7, false);
    let have = HaveSet::from_iter_ids([h1]);
    let new = missing_objects(s, &[h2], &|id| have.contains(id), &NoProgress).unwrap();
    assert_eq!(new.len(), 7);
    assert!(new.iter().all(|id| !set.contains(id)));
    // A root the receiver has sends nothing.
    assert!(
        missing_objects(s, &[h1], &|id| have.contains(id), &NoProgress)
            .unwrap()
            .is_empty()
    );
}

impl HaveSet {
    fn from_iter_ids(ids: impl IntoIterator<Item = ObjectId>) -> Self {
        let mut h = Self::new();
        for i in ids {
            h.insert(i);
        }
        h
    }
}

#[test]
fn boundary_sends_a_complete_closure_without_old_state() {
    let t = temp_store();
    let s = &t.store;
    // Markers every 16 entries, 200 cells: plenty of shared map nodes.
    world(s, "bank", "keyed", 16);
    deposits(s, "bank", 200, 5);
    let old = head(s, "bank");
    let old_closure = closure(s, &[old]);
    deposits(s, "bank", 3, 7);
    let new = head(s, "bank");
    let cp = s
        .refs()
        .read(&RefName::new("refs/checkpoints/bank").unwrap())
        .unwrap()
        .unwrap();

    let mut have = HaveSet::new();
    have.add_entry_boundary(s, &old, &NoProgress).unwrap();
    let sent: BTreeSet<_> = missing_objects(s, &[new, cp], &|id| have.contains(id), &NoProgress)
        .unwrap()
        .into_iter()
        .collect();
    // Complete: the receiver's closure of `old` plus what is sent holds everything.
    for id in closure(s, &[new, cp]) {
        assert!(
            sent.contains(&id) || old_closure.contains(&id),
            "{id} would be missing"
        );
    }
    // Small: nothing already below `old`, and far fewer objects than the whole state.
    assert!(sent.iter().all(|id| !old_closure.contains(id)));
    assert!(sent.len() < 80, "sent {} objects", sent.len());
    // The boundary read a few objects, not the history.
    assert!(have.len() < old_closure.len() / 2, "{} ids", have.len());
}

/// A source of objects in memory; `second` replaces the objects on later passes.
struct Mem {
    objects: Vec<Incoming>,
    second: Option<Vec<Incoming>>,
    passes: Cell<u32>,
}

impl Mem {
    fn new(objects: Vec<Incoming>) -> Self {
        Self {
            objects,
            second: None,
            passes: Cell::new(0),
        }
    }
}

impl ObjectSource for Mem {
    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(Incoming) -> Result<(), TransferError>,
    ) -> Result<(), TransferError> {
        self.passes.set(self.passes.get() + 1);
        let objs = match (&self.second, self.passes.get()) {
            (Some(s), p) if p > 1 => s,
            _ => &self.objects,
        };
        for o in objs {
            visit(o.clone())?;
        }
        Ok(())
    }
}

fn raw(kind: Kind, payload: &[u8]) -> Incoming {
    Incoming {
        id: hash(kind, payload),
        kind,
        encoding: Encoding::Raw,
        size: payload.len() as u64,
        stored: payload.to_vec(),
        at: None,
    }
}

/// A store with a counter world `c` snapshotting `every` steps, moved on by `n` ticks: the
/// store, the world's head and every object reachable from it.
fn counter(every: u64, n: usize) -> (TempStore, ObjectId, Vec<ObjectId>) {
    let a = temp_store();
    world(&a.store, "c", "counter", every);
    let h = ticks(&a.store, "c", n, true);
    let ids = missing_objects(&a.store, &[h], &|_| false, &NoProgress).unwrap();
    (a, h, ids)
}

/// Receives into `to` the objects `ids` of `from`, in batches of `opts`.
fn copy(
    from: &Store,
    ids: &[ObjectId],
    to: &Store,
    opts: &WriteOptions,
) -> Result<(Checked, WriteReport), TransferError> {
    receive(to, &StoreObjects { store: from, ids }, opts, &NoProgress)
}

fn objects_of(store: &Store, ids: &[ObjectId]) -> Vec<Incoming> {
    let mut out = Vec::new();
    StoreObjects { store, ids }
        .for_each_object(&mut |o| {
            out.push(o);
            Ok(())
        })
        .unwrap();
    out
}

fn count(store: &Store) -> usize {
    store.list_objects().unwrap().len()
}

#[test]
fn receive_copies_a_world_between_stores() {
    let (a, h, ids) = counter(8, 30);
    let b = temp_store();
    let opts = WriteOptions { batch_bytes: 2000 };
    let (checked, w) = copy(&a.store, &ids, &b.store, &opts).unwrap();
    assert_eq!(checked.objects, ids.len() as u64);
    assert_eq!((w.written, w.existing), (ids.len() as u64, 0));
    assert!(w.packs > 1, "small batches commit several packs");
    assert_eq!(count(&b.store), ids.len());
    assert!(fsck(&b.store, &NoProgress).unwrap().is_ok());
    assert_eq!(
        checked.height(&h),
        Some(read_entry(&a.store, &h).unwrap().height)
    );
    // Again: everything exists already.
    let (_, w) = copy(&a.store, &ids, &b.store, &opts).unwrap();
    assert_eq!((w.written, w.existing), (0, ids.len() as u64));
}

/// Runs `check_incoming` and `receive` on `objs` into a fresh store; both must fail, with
/// nothing stored, and the error must satisfy `expect`.
#[track_caller]
fn rejects(objs: Vec<Incoming>, expect: impl Fn(&TransferError) -> bool) {
    let t = temp_store();
    let before = count(&t.store);
    let src = Mem::new(objs);
    let e = receive(&t.store, &src, &WriteOptions::default(), &NoProgress).unwrap_err();
    assert!(expect(&e), "unexpected error: {e}");
    assert_eq!(count(&t.store), before, "something was stored");
    assert_eq!(src.passes.get(), 1, "the write pass ran");
}

#[test]
fn incoming_objects_are_checked_before_anything_is_stored() {
    let (a, h, ids) = counter(4, 10);
    let good = objects_of(&a.store, &ids);
    let blob = raw(Kind::Blob, b"fine");

    // A flipped payload byte: the id no longer matches.
    let mut objs = good.clone();
    let last = objs[3].stored.len() - 1;
    objs[3].stored[last] ^= 1;
    let victim = objs[3].id;
    rejects(
        objs,
        |e| matches!(e, TransferError::Rejected { id, problem, .. } if *id == victim && problem.contains("hashes to")),
    );
    // A lie about the size.
    let mut b = blob.clone();
    b.size += 1;
    rejects(vec![b], |e| matches!(e, TransferError::Rejected { .. }));
    // A reserved kind.
    rejects(vec![raw(Kind::Receipt, &[0xf6])], |e| {
        e.to_string().contains("reserved")
    });
    // Not canonical CBOR (a non-shortest integer).
    rejects(vec![raw(Kind::Value, &[0x18, 0x01])], |e| {
        e.to_string().contains("non-shortest-head")
    });
    // Canonical CBOR, but not an entry, a snapshot, a map node.
    for kind in [Kind::Entry, Kind::Snapshot, Kind::MapNode] {
        rejects(
            vec![raw(kind, &cbor::encode(&Value::from(1u64)))],
            |e| matches!(e, TransferError::Rejected { problem, .. } if problem.contains("not a valid")),
        );
    }
    // A real zstd frame with a size that no allocation could hold.
    let mut c = crate::store::format::compressor().unwrap();
    let (enc, stored) = crate::store::format::compress(&mut c, &[7u8; 4096]).unwrap();
    assert_eq!(enc, Encoding::Zstd);
    for size in [u64::MAX, u64::MAX - 1, 1 << 40, 4095, 4097] {
        let o = Incoming {
            id: hash(Kind::Blob, &[7u8; 4096]),
            kind: Kind::Blob,
            encoding: Encoding::Zstd,
            size,
            stored: stored.clone(),
            at: Some(9),
        };
        rejects(vec![o], |e| {
            matches!(e, TransferError::Rejected { at: Some(9), .. })
        });
    }
    // A zstd frame that is not one.
    let mut z = raw(Kind::Blob, b"abc");
    z.encoding = Encoding::Zstd;
    rejects(vec![z], |e| matches!(e, TransferError::Rejected { .. }));
    // An object twice.
    rejects(vec![blob.clone(), blob.clone()], |e| {
        e.to_string().contains("appears twice")
    });
    // Not closed: the genesis left out.
    let genesis = crate::kernel::replay::read_entry_at(&a.store, &h, 0).unwrap();
    let objs: Vec<_> = good.iter().filter(|o| o.id != genesis).cloned().collect();
    rejects(
        objs,
        |e| matches!(e, TransferError::Incomplete { missing, .. } if *missing == genesis),
    );
    // An entry whose predecessor has the wrong height.
    let g = Entry::decode(&a.store.get(&head(&a.store, "c")).unwrap().data).unwrap();
    let mut forged = g.clone();
    forged.height += 5;
    let (bytes, fid) = forged.encode();
    let mut objs = good.clone();
    objs.push(raw(Kind::Entry, &bytes));
    rejects(
        objs,
        |e| matches!(e, TransferError::Journal { id, .. } if *id == fid),
    );
    // The good set passes.
    let t = temp_store();
    receive(
        &t.store,
        &Mem::new(good),
        &WriteOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(fsck(&t.store, &NoProgress).unwrap().is_ok());
}

#[test]
fn closure_may_rest_on_the_destination() {
    let a = temp_store();
    world(&a.store, "c", "counter", 0);
    let h1 = ticks(&a.store, "c", 5, true);
    let h2 = ticks(&a.store, "c", 5, false);
    let first = missing_objects(&a.store, &[h1], &|_| false, &NoProgress).unwrap();
    let have = HaveSet::from_iter_ids([h1]);
    let second = missing_objects(&a.store, &[h2], &|i| have.contains(i), &NoProgress).unwrap();
    let b = temp_store();
    // The increment alone does not close...
    assert!(matches!(
        check_incoming(&Mem::new(objects_of(&a.store, &second)), Closure::SelfContained, &NoProgress),
        Err(TransferError::Incomplete { missing, .. }) if missing == h1
    ));
    assert!(matches!(
        receive(&b.store, &Mem::new(objects_of(&a.store, &second)), &WriteOptions::default(), &NoProgress),
        Err(TransferError::Incomplete { missing, .. }) if missing == h1
    ));
    assert_eq!(count(&b.store), 0);
    // ... unless it is not checked, or the destination has the base.
    check_incoming(
        &Mem::new(objects_of(&a.store, &second)),
        Closure::Unchecked,
        &NoProgress,
    )
    .unwrap();
    copy(&a.store, &first, &b.store, &WriteOptions::default()).unwrap();
    receive(
        &b.store,
        &Mem::new(objects_of(&a.store, &second)),
        &WriteOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(is_ancestor(&b.store, &h1, &h2).unwrap());
}

#[test]
fn a_source_that_changes_between_passes_is_caught() {
    let (a, _, ids) = counter(0, 3);
    let good = objects_of(&a.store, &ids);
    let cases: Vec<Vec<Incoming>> = vec![
        // One object left out.
        good[1..].to_vec(),
        // One object damaged.
        {
            let mut g = good.clone();
            g[0].stored[0] ^= 1;
            g
        },
        // One object replaced by another.
        {
            let mut g = good.clone();
            g[0] = raw(Kind::Blob, b"intruder");
            g
        },
        // One object twice.
        {
            let mut g = good.clone();
            g.push(good[0].clone());
            g
        },
    ];
    for second in cases {
        let t = temp_store();
        let src = Mem {
            objects: good.clone(),
            second: Some(second),
            passes: Cell::new(0),
        };
        let e = receive(&t.store, &src, &WriteOptions::default(), &NoProgress).unwrap_err();
        assert!(e.to_string().contains("changed"), "{e}");
    }
}
