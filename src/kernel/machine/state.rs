//! A machine's reducer state: one slot per reducer of the program in force (a plain state or
//! a cell map with its pending changes), read through the host, changed by dispatch, and
//! folded into the roots a snapshot records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Host;
use crate::kernel::error::WorldError;
use crate::kernel::mapnode::{MapError, MapNode, MemNodeStore, MerkleMap, NodeCache, NodeStore};
use crate::kernel::program::Program;
use crate::kernel::snapshot::Snapshot;
use crate::object::{self, Kind, ObjectId};

/// A state value: canonical bytes and their id as a `value` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateVal {
    /// Canonical CBOR.
    pub bytes: Arc<[u8]>,
    /// `hash(value, bytes)`.
    pub id: ObjectId,
}

impl StateVal {
    /// The state value of canonical `bytes`.
    pub(super) fn new(bytes: Vec<u8>) -> Self {
        let id = object::hash(Kind::Value, &bytes);
        Self {
            bytes: bytes.into(),
            id,
        }
    }
}

/// One reducer's state.
pub(super) enum Slot {
    /// A plain reducer's state, `None` before its first step or after it deleted it.
    Plain(Option<StateVal>),
    /// A keyed reducer's cells: the map as of the last snapshot, and the changes since, by
    /// the canonical encoding of the cell key (`None`: the cell was deleted).
    Keyed {
        root: ObjectId,
        overlay: HashMap<Vec<u8>, Option<StateVal>>,
    },
}

impl Slot {
    /// The slot of a reducer that has no state yet.
    pub(super) fn empty(keyed: bool) -> Self {
        if keyed {
            Self::Keyed {
                root: MerkleMap::<MemNodeStore>::empty_root_id(),
                overlay: HashMap::new(),
            }
        } else {
            Self::Plain(None)
        }
    }

    /// Whether the reducer holds any state: a plain state, or at least one cell.
    pub(super) fn holds_state(&self, host: &dyn Host) -> Result<bool, WorldError> {
        match self {
            Self::Plain(s) => Ok(s.is_some()),
            Self::Keyed { root, overlay } => {
                if overlay.values().any(Option::is_some) {
                    return Ok(true);
                }
                if *root == MerkleMap::<MemNodeStore>::empty_root_id() {
                    return Ok(false);
                }
                // Every cell of the map may have been deleted since.
                let map = MerkleMap::new(HostNodes(host));
                Ok(map
                    .iter(root)?
                    .iter()
                    .any(|(k, _)| !overlay.contains_key(k)))
            }
        }
    }
}

/// What a snapshot records of the reducers' state: each plain reducer's state and each keyed
/// reducer's cell-map root, by reducer name.
pub(super) type Roots = (Vec<(String, Option<ObjectId>)>, Vec<(String, ObjectId)>);

/// The state of every reducer of a program, in the program's reducer order.
pub(super) struct States {
    pub(super) slots: Vec<Slot>,
    /// Decoded map nodes, so reading a cell does not decode its path again.
    nodes: Mutex<NodeCache>,
}

impl States {
    /// No reducer of `prog` has state.
    pub(super) fn new(prog: &Program) -> Self {
        Self::from_slots(
            prog.reducers
                .iter()
                .map(|r| Slot::empty(r.keyed()))
                .collect(),
        )
    }

    pub(super) fn from_slots(slots: Vec<Slot>) -> Self {
        Self {
            slots,
            nodes: Mutex::new(NodeCache::new()),
        }
    }

    /// Fills the slots from snapshot `s` of a world running `prog`, reading plain states
    /// through `host`.
    pub(super) fn load(
        &mut self,
        prog: &Program,
        s: &Snapshot,
        host: &dyn Host,
    ) -> Result<(), WorldError> {
        let bad = WorldError::SnapshotMismatch;
        let plain = prog.reducers.iter().filter(|r| !r.keyed()).count();
        let keyed = prog.reducers.len() - plain;
        if s.states.len() != plain || s.cells.len() != keyed {
            return Err(bad("its reducers are not the world's".into()));
        }
        for (name, id) in &s.states {
            let i = prog
                .reducer_index(name)
                .ok_or_else(|| bad(format!("unknown reducer {name}")))?;
            let Slot::Plain(slot) = &mut self.slots[i] else {
                return Err(bad(format!("{name} is keyed")));
            };
            if let Some(id) = id {
                let bytes = host.value(id)?;
                *slot = Some(StateVal {
                    bytes: bytes.into(),
                    id: *id,
                });
            }
        }
        for (name, r) in &s.cells {
            let i = prog
                .reducer_index(name)
                .ok_or_else(|| bad(format!("unknown reducer {name}")))?;
            let Slot::Keyed { root, .. } = &mut self.slots[i] else {
                return Err(bad(format!("{name} is not keyed")));
            };
            *root = *r;
        }
        Ok(())
    }

    /// The state of reducer `i` (of cell `cell`, the canonical encoding of its key, for a
    /// keyed reducer).
    pub(super) fn get(
        &self,
        i: usize,
        cell: Option<&[u8]>,
        host: &dyn Host,
    ) -> Result<Option<StateVal>, WorldError> {
        match (&self.slots[i], cell) {
            (Slot::Plain(s), _) => Ok(s.clone()),
            (Slot::Keyed { root, overlay }, Some(k)) => {
                if let Some(s) = overlay.get(k) {
                    return Ok(s.clone());
                }
                let map = MerkleMap::new(HostNodes(host));
                let found = match self.nodes.lock() {
                    Ok(mut cache) => map.get_cached(root, k, &mut cache)?,
                    Err(_) => map.get(root, k)?,
                };
                match found {
                    None => Ok(None),
                    Some(id) => {
                        let bytes = host.value(&id)?;
                        Ok(Some(StateVal {
                            bytes: bytes.into(),
                            id,
                        }))
                    }
                }
            }
            (Slot::Keyed { .. }, None) => Ok(None),
        }
    }

    /// Sets the state of reducer `i` (of cell `cell`, for a keyed reducer).
    pub(super) fn set(&mut self, i: usize, cell: Option<Vec<u8>>, state: Option<StateVal>) {
        match (&mut self.slots[i], cell) {
            (Slot::Plain(s), _) => *s = state,
            (Slot::Keyed { overlay, .. }, Some(k)) => {
                overlay.insert(k, state);
            }
            (Slot::Keyed { .. }, None) => {}
        }
    }

    /// Every cell of keyed reducer `i`: key encoding and state id, sorted by key encoding.
    pub(super) fn cells(
        &self,
        i: usize,
        host: &dyn Host,
    ) -> Result<Vec<(Vec<u8>, ObjectId)>, WorldError> {
        let Slot::Keyed { root, overlay } = &self.slots[i] else {
            return Ok(Vec::new());
        };
        let map = MerkleMap::new(HostNodes(host));
        let mut all: HashMap<Vec<u8>, ObjectId> = map.iter(root)?.into_iter().collect();
        for (k, v) in overlay {
            match v {
                Some(s) => all.insert(k.clone(), s.id),
                None => all.remove(k),
            };
        }
        let mut v: Vec<_> = all.into_iter().collect();
        v.sort();
        Ok(v)
    }

    /// Folds pending cell changes into the cell maps, writing the states and nodes a snapshot
    /// needs through `host`, and returns the roots: plain states and cell maps by reducer
    /// name, in `prog`'s reducer order.
    pub(super) fn fold(
        &mut self,
        prog: &Program,
        host: &mut dyn Host,
    ) -> Result<Roots, WorldError> {
        let mut states = Vec::new();
        let mut cells = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let name = prog.reducers[i].name.as_str().to_owned();
            match slot {
                Slot::Plain(s) => {
                    if let Some(s) = s {
                        host.put_value(&s.id, &s.bytes)?;
                    }
                    states.push((name, s.as_ref().map(|s| s.id)));
                }
                Slot::Keyed { root, overlay } => {
                    if !overlay.is_empty() {
                        let mut changes = Vec::with_capacity(overlay.len());
                        for (k, v) in overlay.drain() {
                            if let Some(s) = &v {
                                host.put_value(&s.id, &s.bytes)?;
                            }
                            changes.push((k, v.map(|s| s.id)));
                        }
                        let mut map = MerkleMap::new(HostNodesMut(&mut *host));
                        *root = map.apply(root, changes)?;
                    }
                    cells.push((name, *root));
                }
            }
        }
        Ok((states, cells))
    }
}

/// Reads map nodes through a host; the empty root need not be stored.
pub(crate) struct HostNodes<'h>(pub(crate) &'h dyn Host);

fn empty_node(id: &ObjectId) -> Option<Vec<u8>> {
    let empty = MapNode::empty().encode();
    (object::hash(Kind::MapNode, &empty) == *id).then_some(empty)
}

/// Reads node `id` through `host`, standing in the empty root if it is not stored.
fn node_or_empty(host: &dyn Host, id: &ObjectId) -> Result<Vec<u8>, MapError> {
    match host.get(id) {
        Err(e) => empty_node(id).ok_or(e),
        ok => ok,
    }
}

impl NodeStore for HostNodes<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        node_or_empty(self.0, id)
    }
    fn put(&mut self, _bytes: &[u8]) -> Result<ObjectId, MapError> {
        Err(MapError::Store("reading a cell map never writes".into()))
    }
}

struct HostNodesMut<'h>(&'h mut dyn Host);

impl NodeStore for HostNodesMut<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        node_or_empty(&*self.0, id)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        self.0.put(bytes)
    }
}
