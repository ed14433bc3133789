//! Replaying recorded history through the machine and comparing, entry by entry: each
//! recorded entry that starts an input (`input::source_of`) is applied again, and every entry
//! the machine produces must be the recorded one.

use std::iter::Peekable;

use crate::air::validate::Validated;
use crate::codec::cbor::Value;
use crate::codec::json;
use crate::kernel::entry::{Body, Entry, Origin};
use crate::kernel::error::{Divergence, InputError, WorldError, a_kind};
use crate::kernel::input::{Source, source_of};
use crate::kernel::machine::{Host, Machine};
use crate::kernel::mapnode::{MapError, NodeStore};
use crate::kernel::snapshot::Snapshot;
use crate::object::{Kind, ObjectId};
use crate::store::Store;

/// Reads and decodes the journal entry `id`.
///
/// # Errors
/// Store errors, or [`WorldError::Corrupt`] if the object is not a journal entry.
pub fn read_entry(store: &Store, id: &ObjectId) -> Result<Entry, WorldError> {
    Entry::decode(&read_kind(store, id, Kind::Entry)?)
        .map_err(|e| WorldError::corrupt(*id, e.to_string()))
}

/// The payload of object `id`, which must be of kind `kind`.
///
/// # Errors
/// Store errors, or [`WorldError::Corrupt`] if it is an object of another kind.
pub fn read_kind(store: &Store, id: &ObjectId, kind: Kind) -> Result<Vec<u8>, WorldError> {
    let obj = store.get(id)?;
    if obj.kind != kind {
        return Err(WorldError::corrupt(
            *id,
            format!(
                "expected {} object, found {} object",
                a_kind(kind),
                a_kind(obj.kind)
            ),
        ));
    }
    Ok(obj.data)
}

/// Reads and decodes the snapshot `id`.
///
/// # Errors
/// Store errors, or [`WorldError::Corrupt`] if the object is not a snapshot.
pub fn read_snapshot(store: &Store, id: &ObjectId) -> Result<Snapshot, WorldError> {
    Snapshot::decode(&read_kind(store, id, Kind::Snapshot)?)
        .map_err(|e| WorldError::corrupt(*id, e.to_string()))
}

/// The id of the entry at `height` in the journal ending at `head` (walking back).
///
/// # Errors
/// [`InputError::BeyondHead`] if `height` is beyond the head; store and chain errors.
pub fn read_entry_at(store: &Store, head: &ObjectId, height: u64) -> Result<ObjectId, WorldError> {
    let mut cur = *head;
    loop {
        let e = read_entry(store, &cur)?;
        if e.height < height {
            return Err(InputError::BeyondHead {
                height,
                head: e.height,
            }
            .into());
        }
        if e.height == height {
            return Ok(cur);
        }
        cur = e.prev.ok_or_else(|| WorldError::Chain {
            height: e.height,
            message: format!("entry {cur} has no predecessor"),
        })?;
    }
}

/// Where a replay starts.
#[derive(Clone, Debug)]
pub(crate) enum Base {
    /// Right after the genesis entry.
    Genesis(ObjectId),
    /// From a snapshot (with its id).
    Snapshot(#[allow(dead_code)] ObjectId, Snapshot),
}

/// How to look for a base.
#[derive(Clone, Debug, Default)]
pub(crate) struct BaseSearch {
    /// Start from the latest snapshot marker found walking back.
    pub use_markers: bool,
    /// Start from this snapshot if it lies on the chain.
    pub anchor: Option<(ObjectId, Snapshot)>,
    /// Only entries up to this height are wanted.
    pub max_height: Option<u64>,
}

/// Walks back from `head` to a base and returns it with the ids of the entries after it, up to
/// `max_height`, oldest first. Checks heights and predecessors on the way.
pub(crate) fn find_base(
    store: &Store,
    head: &ObjectId,
    search: &BaseSearch,
    mut tick: impl FnMut(u64),
) -> Result<(Base, Vec<ObjectId>), WorldError> {
    let max = search.max_height.unwrap_or(u64::MAX);
    let mut tail = Vec::new();
    let mut cur = *head;
    let mut expected: Option<u64> = None;
    let mut walked = 0u64;
    loop {
        if let Some((sid, s)) = &search.anchor
            && cur == s.head
            && s.height <= max
        {
            let e = read_entry(store, &cur)?;
            if e.height != s.height {
                return Err(WorldError::corrupt(
                    *sid,
                    format!(
                        "snapshot says its head has height {}, the entry says {}",
                        s.height, e.height
                    ),
                ));
            }
            tail.reverse();
            return Ok((Base::Snapshot(*sid, s.clone()), tail));
        }
        let e = read_entry(store, &cur)?;
        walked += 1;
        if walked.is_multiple_of(4096) {
            tick(walked);
        }
        if let Some(h) = expected
            && e.height != h
        {
            return Err(WorldError::Chain {
                height: h,
                message: format!("entry {cur} says it has height {}", e.height),
            });
        }
        if e.height <= max {
            match &e.body {
                Body::Genesis(_) => {
                    tail.reverse();
                    return Ok((Base::Genesis(cur), tail));
                }
                Body::Snapshot { snapshot } if search.use_markers => {
                    let s = read_snapshot(store, snapshot)?;
                    if Some(s.head) != e.prev || s.height + 1 != e.height {
                        return Err(WorldError::corrupt(
                            *snapshot,
                            format!(
                                "the marker at height {} links a snapshot of another point",
                                e.height
                            ),
                        ));
                    }
                    tail.push(cur);
                    tail.reverse();
                    return Ok((Base::Snapshot(*snapshot, s), tail));
                }
                _ => tail.push(cur),
            }
        }
        let Some(prev) = e.prev else {
            return Err(WorldError::Chain {
                height: e.height,
                message: format!("entry {cur} has no predecessor"),
            });
        };
        if e.height == 0 {
            return Err(WorldError::Chain {
                height: 0,
                message: "a height-0 entry that is not a genesis".into(),
            });
        }
        expected = Some(e.height - 1);
        cur = prev;
    }
}

/// What a replay saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Entries replayed and matched.
    pub entries: u64,
    /// Ingress events among them.
    pub ingress: u64,
    /// Derived events.
    pub derived: u64,
    /// Faults.
    pub faults: u64,
    /// Snapshot markers (each snapshot recomputed and matched).
    pub snapshots: u64,
    /// Manifest switches.
    pub manifests: u64,
}

type Recorded<'a> = Box<dyn Iterator<Item = Result<(ObjectId, Entry), WorldError>> + 'a>;

/// A host that compares produced entries with recorded ones and forwards everything else.
struct Replay<'a, 'h> {
    inner: &'h mut dyn Host,
    recorded: Peekable<Recorded<'a>>,
    bounded: bool,
    stats: ReplayStats,
    produced_snapshot: Option<Snapshot>,
    store: &'a Store,
}

impl NodeStore for Replay<'_, '_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        self.inner.get(id)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        self.inner.put(bytes)
    }
}

impl Host for Replay<'_, '_> {
    fn value(&self, id: &ObjectId) -> Result<Vec<u8>, WorldError> {
        self.inner.value(id)
    }
    fn put_value(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<(), WorldError> {
        self.inner.put_value(id, bytes)
    }
    fn wasm(&self, id: &ObjectId) -> Result<Vec<u8>, String> {
        self.inner.wasm(id)
    }
    fn control_plane(&self, manifest: &ObjectId) -> Result<Validated, WorldError> {
        self.inner.control_plane(manifest)
    }
    fn snapshot(&mut self, s: &Snapshot, bytes: &[u8], id: &ObjectId) -> Result<(), WorldError> {
        self.produced_snapshot = Some(s.clone());
        self.inner.snapshot(s, bytes, id)
    }
    fn entry(&mut self, e: &Entry, _bytes: &[u8], id: &ObjectId) -> Result<(), WorldError> {
        match self.recorded.next() {
            None if self.bounded => Err(WorldError::End),
            None => Err(WorldError::Diverged(Box::new(Divergence {
                height: e.height,
                recorded: None,
                replayed: Some(*id),
                reducer: None,
                cell: None,
                detail: format!(
                    "the journal ends, but the replay produces a {} entry here",
                    e.kind_word()
                ),
            }))),
            Some(Err(err)) => Err(err),
            Some(Ok((rid, rec))) => {
                if rid == *id {
                    self.stats.entries += 1;
                    match &rec.body {
                        Body::Event(ev) if ev.origin == Origin::Ingress => self.stats.ingress += 1,
                        Body::Event(_) => self.stats.derived += 1,
                        Body::Fault(_) => self.stats.faults += 1,
                        Body::Snapshot { .. } => self.stats.snapshots += 1,
                        Body::Manifest { .. } => self.stats.manifests += 1,
                        Body::Genesis(_) => {}
                    }
                    Ok(())
                } else {
                    Err(WorldError::Diverged(Box::new(explain(
                        self.store,
                        &rid,
                        &rec,
                        id,
                        e,
                        self.produced_snapshot.as_ref(),
                    ))))
                }
            }
        }
    }
}

/// Replays the recorded entries `recorded` (oldest first, directly after the machine's
/// state) through `machine`. With `bounded`, history may end in the middle of a cascade (the
/// machine then holds the state after the last recorded entry).
pub(crate) fn replay(
    machine: &mut Machine,
    inner: &mut dyn Host,
    store: &Store,
    recorded: Recorded<'_>,
    bounded: bool,
    mut tick: impl FnMut(&ReplayStats),
) -> Result<ReplayStats, WorldError> {
    let mut r = Replay {
        inner,
        recorded: recorded.peekable(),
        bounded,
        stats: ReplayStats::default(),
        produced_snapshot: None,
        store,
    };
    loop {
        let (input, height, id, kind) = match r.recorded.peek() {
            None => break,
            Some(Err(_)) => {
                return match r.recorded.next() {
                    Some(Err(e)) => Err(e),
                    _ => Err(WorldError::End),
                };
            }
            Some(Ok((id, e))) => match source_of(e) {
                Source::Input(i) => (i, e.height, *id, e.kind_word()),
                Source::Cascade | Source::Genesis => {
                    return Err(WorldError::Diverged(Box::new(Divergence {
                        height: e.height,
                        recorded: Some(*id),
                        replayed: None,
                        reducer: None,
                        cell: None,
                        detail: format!(
                            "the journal records a {} entry that no input's cascade produces \
                             here",
                            match &e.body {
                                Body::Event(_) => "derived event",
                                Body::Fault(_) => "fault",
                                _ => "genesis",
                            }
                        ),
                    })));
                }
            },
        };
        match machine.apply(input, &mut r) {
            Ok(_) => {}
            Err(WorldError::End) if bounded => break,
            Err(WorldError::Refused(why)) => {
                return Err(WorldError::Diverged(Box::new(Divergence {
                    height,
                    recorded: Some(id),
                    replayed: None,
                    reducer: None,
                    cell: None,
                    detail: format!("the journal records a {kind} entry the kernel refuses: {why}"),
                })));
            }
            Err(e) => return Err(e),
        }
        tick(&r.stats);
    }
    Ok(r.stats)
}

fn cell_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(|k| json::to_json(k).to_string())
}

fn explain(
    store: &Store,
    rid: &ObjectId,
    rec: &Entry,
    pid: &ObjectId,
    got: &Entry,
    produced: Option<&Snapshot>,
) -> Divergence {
    let mut d = Divergence {
        height: rec.height,
        recorded: Some(*rid),
        replayed: Some(*pid),
        reducer: None,
        cell: None,
        detail: String::new(),
    };
    let digest = |s: &Option<ObjectId>| s.map_or_else(|| "null".to_owned(), |i| i.to_string());
    d.detail = match (&rec.body, &got.body) {
        (Body::Event(a), Body::Event(b)) => {
            if a.schema != b.schema || a.value != b.value || a.key != b.key {
                format!(
                    "recorded event {} {}, replay derived {} {}",
                    a.schema,
                    json::to_json(&a.value),
                    b.schema,
                    json::to_json(&b.value)
                )
            } else if a.origin != b.origin {
                "the event's origin differs".to_owned()
            } else {
                let mut detail = None;
                for i in 0..a.steps.len().max(b.steps.len()) {
                    match (a.steps.get(i), b.steps.get(i)) {
                        (Some(x), Some(y)) if x == y => {}
                        (Some(x), Some(y)) => {
                            d.reducer = Some(x.reducer.clone());
                            d.cell = cell_text(&x.cell);
                            detail = Some(if x.reducer != y.reducer || x.cell != y.cell {
                                format!(
                                    "step {i}: recorded a step of {}, replay a step of {}",
                                    x.reducer, y.reducer
                                )
                            } else if x.state != y.state {
                                format!(
                                    "expected state {}, replay computed {}",
                                    digest(&x.state),
                                    digest(&y.state)
                                )
                            } else {
                                "the effects the step asked for differ".to_owned()
                            });
                            break;
                        }
                        (Some(x), None) => {
                            d.reducer = Some(x.reducer.clone());
                            d.cell = cell_text(&x.cell);
                            detail = Some(format!(
                                "recorded a successful step (state {}); the replay's step faulted",
                                digest(&x.state)
                            ));
                            break;
                        }
                        (None, Some(y)) => {
                            d.reducer = Some(y.reducer.clone());
                            d.cell = cell_text(&y.cell);
                            detail = Some(format!(
                                "recorded no successful step; the replay's step succeeded with \
                                 state {}",
                                digest(&y.state)
                            ));
                            break;
                        }
                        (None, None) => {}
                    }
                }
                detail.unwrap_or_else(|| "the entries differ".to_owned())
            }
        }
        (Body::Fault(a), Body::Fault(b)) => {
            d.reducer = Some(a.reducer.clone());
            d.cell = cell_text(&a.cell);
            format!(
                "recorded fault {} ({}), replay fault {} ({})",
                a.code, a.message, b.code, b.message
            )
        }
        (Body::Snapshot { snapshot: a }, Body::Snapshot { snapshot: b }) => {
            let mut detail = format!("recorded snapshot {a}, replay computed {b}");
            if let (Ok(ra), Some(pb)) = (read_snapshot(store, a), produced) {
                for ((n, x), (_, y)) in ra.states.iter().zip(&pb.states) {
                    if x != y {
                        d.reducer = Some(n.clone());
                        detail = format!(
                            "snapshot state: expected {}, replay computed {}",
                            digest(x),
                            digest(y)
                        );
                        break;
                    }
                }
                for ((n, x), (_, y)) in ra.cells.iter().zip(&pb.cells) {
                    if x != y {
                        d.reducer = Some(n.clone());
                        detail = format!("snapshot cell map: expected root {x}, replay {y}");
                        break;
                    }
                }
                if ra.manifest != pb.manifest {
                    detail = format!(
                        "snapshot manifest: expected {}, replay {}",
                        digest(&ra.manifest),
                        digest(&pb.manifest)
                    );
                }
                if ra.height != pb.height || ra.last_marker != pb.last_marker {
                    detail = "the snapshot's position differs".to_owned();
                }
            }
            detail
        }
        (a, _) => {
            if let Body::Fault(f) = a {
                d.reducer = Some(f.reducer.clone());
                d.cell = cell_text(&f.cell);
            }
            if let Body::Fault(f) = &got.body {
                d.reducer = Some(f.reducer.clone());
                d.cell = cell_text(&f.cell);
            }
            format!(
                "recorded a {} entry, replay produced a {} entry{}",
                rec.kind_word(),
                got.kind_word(),
                match &got.body {
                    Body::Fault(f) => format!(" ({}: {})", f.code, f.message),
                    _ => String::new(),
                }
            )
        }
    };
    d
}
