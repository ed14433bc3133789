//! The hosts a machine runs against: `Live` writes into a store batch per group commit,
//! `Scratch` reads from the store and keeps what it computes in memory.

use std::collections::HashMap;

use crate::air::validate::Validated;
use crate::kernel::entry::Entry;
use crate::kernel::error::WorldError;
use crate::kernel::machine::Host;
use crate::kernel::mapnode::{MapError, NodeStore};
use crate::kernel::replay::read_kind;
use crate::kernel::snapshot::Snapshot;
use crate::object::{self, Kind, ObjectId};
use crate::store::{Batch, Store};
use crate::world::load::{Trust, load_control_plane};

fn map_err(e: WorldError) -> MapError {
    MapError::Store(Box::new(e))
}

/// The payload of `id`: from `mem` if it is held there, else read from the store as a `kind`
/// object.
fn held_or_read(
    mem: &HashMap<ObjectId, Vec<u8>>,
    store: &Store,
    id: &ObjectId,
    kind: Kind,
) -> Result<Vec<u8>, WorldError> {
    match mem.get(id) {
        Some(b) => Ok(b.clone()),
        None => read_kind(store, id, kind),
    }
}

fn wasm(store: &Store, id: &ObjectId) -> Result<Vec<u8>, String> {
    read_kind(store, id, Kind::Blob).map_err(|e| e.to_string())
}

/// Objects are written into a batch and readable from memory until it commits.
pub(crate) struct Live<'s> {
    store: &'s Store,
    batch: Option<Batch<'s>>,
    pending: HashMap<ObjectId, Vec<u8>>,
}

impl<'s> Live<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self {
            store,
            batch: None,
            pending: HashMap::new(),
        }
    }

    /// Adds an object to the batch (readable from the store once it commits).
    pub(crate) fn add(&mut self, kind: Kind, bytes: &[u8]) -> Result<ObjectId, WorldError> {
        let store = self.store;
        let b = self.batch.get_or_insert_with(|| store.batch());
        Ok(b.add(kind, bytes)?)
    }

    pub(crate) fn pending_bytes(&self) -> u64 {
        self.batch.as_ref().map_or(0, Batch::pending_bytes)
    }

    pub(crate) fn commit(&mut self) -> Result<(), WorldError> {
        if let Some(b) = self.batch.take() {
            b.commit()?;
        }
        self.pending.clear();
        Ok(())
    }
}

impl NodeStore for Live<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        held_or_read(&self.pending, self.store, id, Kind::MapNode).map_err(map_err)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        let id = self.add(Kind::MapNode, bytes).map_err(map_err)?;
        self.pending.insert(id, bytes.to_vec());
        Ok(id)
    }
}

impl Host for Live<'_> {
    fn value(&self, id: &ObjectId) -> Result<Vec<u8>, WorldError> {
        held_or_read(&self.pending, self.store, id, Kind::Value)
    }
    fn put_value(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<(), WorldError> {
        if !self.pending.contains_key(id) {
            self.add(Kind::Value, bytes)?;
            self.pending.insert(*id, bytes.to_vec());
        }
        Ok(())
    }
    fn wasm(&self, id: &ObjectId) -> Result<Vec<u8>, String> {
        wasm(self.store, id)
    }
    fn control_plane(&self, manifest: &ObjectId) -> Result<Validated, WorldError> {
        load_control_plane(self.store, manifest, Trust::Cache)
    }
    fn snapshot(&mut self, _s: &Snapshot, bytes: &[u8], _id: &ObjectId) -> Result<(), WorldError> {
        self.add(Kind::Snapshot, bytes).map(|_| ())
    }
    fn entry(&mut self, _e: &Entry, bytes: &[u8], _id: &ObjectId) -> Result<(), WorldError> {
        let store = self.store;
        let b = self.batch.get_or_insert_with(|| store.batch());
        b.add_new(Kind::Entry, bytes)?;
        Ok(())
    }
}

/// Reads from the store, keeps what it computes in memory, writes nothing.
pub(crate) struct Scratch<'s> {
    store: &'s Store,
    mem: HashMap<ObjectId, Vec<u8>>,
    trust: Trust,
}

impl<'s> Scratch<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self {
            store,
            mem: HashMap::new(),
            trust: Trust::Cache,
        }
    }

    /// A scratch host that validates every control plane it loads again (for `verify`).
    pub(crate) fn verifying(store: &'s Store) -> Self {
        Self {
            trust: Trust::Nothing,
            ..Self::new(store)
        }
    }
}

impl NodeStore for Scratch<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        held_or_read(&self.mem, self.store, id, Kind::MapNode).map_err(map_err)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        let id = object::hash(Kind::MapNode, bytes);
        self.mem.insert(id, bytes.to_vec());
        Ok(id)
    }
}

impl Host for Scratch<'_> {
    fn value(&self, id: &ObjectId) -> Result<Vec<u8>, WorldError> {
        held_or_read(&self.mem, self.store, id, Kind::Value)
    }
    fn put_value(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<(), WorldError> {
        self.mem.insert(*id, bytes.to_vec());
        Ok(())
    }
    fn wasm(&self, id: &ObjectId) -> Result<Vec<u8>, String> {
        wasm(self.store, id)
    }
    fn control_plane(&self, manifest: &ObjectId) -> Result<Validated, WorldError> {
        load_control_plane(self.store, manifest, self.trust)
    }
    fn snapshot(&mut self, _s: &Snapshot, _b: &[u8], _id: &ObjectId) -> Result<(), WorldError> {
        // A snapshot that matches the recorded one names objects the store holds; what was
        // kept in memory to compute it is no longer needed.
        self.mem.clear();
        Ok(())
    }
    fn entry(&mut self, _e: &Entry, _b: &[u8], _id: &ObjectId) -> Result<(), WorldError> {
        Ok(())
    }
}
