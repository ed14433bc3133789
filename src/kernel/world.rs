//! Worlds in a store: creating, opening, feeding events, reading state, snapshots and
//! verification.
//!
//! A world named `NAME` is the ref `refs/worlds/NAME`, pointing at the head entry of its
//! journal. The ref `refs/checkpoints/NAME` points at a snapshot of the head state written at
//! the end of every command that appended; it is a cache (never trusted by `verify`), so that
//! opening a world reads one snapshot instead of replaying history.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::air::load::Origin as AirOrigin;
use crate::air::name::Name;
use crate::air::nodes::{Node, NodeKind};
use crate::air::types::Type;
use crate::air::validate::{self, Validated};
use crate::air::value;
use crate::codec::cbor::{self, Value};
use crate::codec::json::Json;
use crate::kernel::entry::{Body, Entry, Genesis};
use crate::kernel::error::WorldError;
use crate::kernel::machine::{Cascade, EventIn, Host, Machine, StateVal, field};
use crate::kernel::mapnode::{MapError, MapNode, NodeStore};
use crate::kernel::program::Program;
use crate::kernel::replay::{
    Base, BaseSearch, ReplayStats, find_base, read_entry, read_snapshot, replay,
};
use crate::kernel::snapshot::Snapshot;
use crate::object::{self, Kind, ObjectId};
use crate::progress::Progress;
use crate::store::refs::{Expected, RefError, RefName};
use crate::store::{Batch, Store};
use crate::wasm::Limits;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Default of [`CreateOptions::snapshot_every`].
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// Default of [`CreateOptions::max_derived`].
pub const DEFAULT_MAX_DERIVED: u64 = 1_000;

/// The recorded configuration of a new world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// Limits of every module call.
    pub limits: Limits,
    /// Entries between automatic snapshot markers (0: none).
    pub snapshot_every: u64,
    /// The most derived events one ingress event may cause.
    pub max_derived: u64,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            max_derived: DEFAULT_MAX_DERIVED,
        }
    }
}

/// The ref of world `name`.
///
/// # Errors
/// [`WorldError::Input`] if `name` cannot be part of a ref name.
pub fn world_ref(name: &str) -> Result<RefName, WorldError> {
    RefName::new(&format!("refs/worlds/{name}"))
        .map_err(|e| WorldError::Input(format!("invalid world name `{name}`: {e}")))
}

pub(crate) fn checkpoint_ref(name: &str) -> Result<RefName, WorldError> {
    RefName::new(&format!("refs/checkpoints/{name}"))
        .map_err(|e| WorldError::Input(format!("invalid world name `{name}`: {e}")))
}

/// The worlds of a store: name and head entry, sorted by name.
///
/// # Errors
/// Ref errors.
pub fn list_worlds(store: &Store) -> Result<Vec<(String, ObjectId)>, WorldError> {
    Ok(store
        .refs()
        .list("refs/worlds/")?
        .into_iter()
        .filter_map(|(n, id)| {
            n.as_str()
                .strip_prefix("refs/worlds/")
                .map(|s| (s.to_owned(), id))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Hosts

fn map_err(e: WorldError) -> MapError {
    MapError::Store(Box::new(e))
}

fn read_kind(store: &Store, id: &ObjectId, kind: Kind) -> Result<Vec<u8>, WorldError> {
    let o = store.get(id)?;
    if o.kind != kind {
        return Err(WorldError::corrupt(
            *id,
            format!("expected a {kind} object, found a {}", o.kind),
        ));
    }
    Ok(o.data)
}

/// Objects are written into a batch and readable from memory until it commits.
struct Live<'s> {
    store: &'s Store,
    batch: Option<Batch<'s>>,
    pending: HashMap<ObjectId, Vec<u8>>,
}

impl<'s> Live<'s> {
    fn new(store: &'s Store) -> Self {
        Self {
            store,
            batch: None,
            pending: HashMap::new(),
        }
    }

    fn add(&mut self, kind: Kind, bytes: &[u8]) -> Result<ObjectId, WorldError> {
        let store = self.store;
        let b = self.batch.get_or_insert_with(|| store.batch());
        Ok(b.add(kind, bytes)?)
    }

    fn pending_bytes(&self) -> u64 {
        self.batch.as_ref().map_or(0, Batch::pending_bytes)
    }

    fn commit(&mut self) -> Result<(), WorldError> {
        if let Some(b) = self.batch.take() {
            b.commit()?;
        }
        self.pending.clear();
        Ok(())
    }
}

impl NodeStore for Live<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        if let Some(b) = self.pending.get(id) {
            return Ok(b.clone());
        }
        read_kind(self.store, id, Kind::MapNode).map_err(map_err)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        let id = self.add(Kind::MapNode, bytes).map_err(map_err)?;
        self.pending.insert(id, bytes.to_vec());
        Ok(id)
    }
}

impl Host for Live<'_> {
    fn value(&self, id: &ObjectId) -> Result<Vec<u8>, WorldError> {
        if let Some(b) = self.pending.get(id) {
            return Ok(b.clone());
        }
        read_kind(self.store, id, Kind::Value)
    }
    fn put_value(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<(), WorldError> {
        if !self.pending.contains_key(id) {
            self.add(Kind::Value, bytes)?;
            self.pending.insert(*id, bytes.to_vec());
        }
        Ok(())
    }
    fn wasm(&self, id: &ObjectId) -> Result<Vec<u8>, String> {
        read_kind(self.store, id, Kind::Blob).map_err(|e| e.to_string())
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
}

impl<'s> Scratch<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Self {
            store,
            mem: HashMap::new(),
        }
    }
}

impl NodeStore for Scratch<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        if let Some(b) = self.mem.get(id) {
            return Ok(b.clone());
        }
        read_kind(self.store, id, Kind::MapNode).map_err(map_err)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        let id = object::hash(Kind::MapNode, bytes);
        self.mem.insert(id, bytes.to_vec());
        Ok(id)
    }
}

impl Host for Scratch<'_> {
    fn value(&self, id: &ObjectId) -> Result<Vec<u8>, WorldError> {
        if let Some(b) = self.mem.get(id) {
            return Ok(b.clone());
        }
        read_kind(self.store, id, Kind::Value)
    }
    fn put_value(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<(), WorldError> {
        self.mem.insert(*id, bytes.to_vec());
        Ok(())
    }
    fn wasm(&self, id: &ObjectId) -> Result<Vec<u8>, String> {
        read_kind(self.store, id, Kind::Blob).map_err(|e| e.to_string())
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

// ---------------------------------------------------------------------------------------------
// Loading a control plane

/// Reads the control plane a genesis entry names and builds its program.
pub(crate) fn load_program(store: &Store, genesis_id: &ObjectId) -> Result<Program, WorldError> {
    let g = read_entry(store, genesis_id)?;
    let Body::Genesis(genesis) = g.body else {
        return Err(WorldError::corrupt(*genesis_id, "not a genesis entry"));
    };
    let read_node = |id: &ObjectId| -> Result<Node, WorldError> {
        let bytes = read_kind(store, id, Kind::Air)?;
        let v = cbor::decode(&bytes).map_err(|e| WorldError::corrupt(*id, e.to_string()))?;
        crate::air::canon::node_from_value(&v).map_err(|e| WorldError::corrupt(*id, e.to_string()))
    };
    let origin = |id: &ObjectId| AirOrigin {
        file: PathBuf::from(id.to_string()),
        pointer: String::new(),
    };
    let manifest = read_node(&genesis.manifest)?;
    let Node::Manifest(m) = &manifest else {
        return Err(WorldError::corrupt(genesis.manifest, "not a manifest"));
    };
    let mut nodes = Vec::new();
    for kind in NodeKind::ALL {
        for r in m.refs(kind).unwrap_or(&[]) {
            let Some(h) = r.known_hash() else {
                return Err(WorldError::corrupt(
                    genesis.manifest,
                    format!("the manifest lists {} without a hash", r.name),
                ));
            };
            nodes.push((read_node(&h)?, origin(&h)));
        }
    }
    nodes.push((manifest.clone(), origin(&genesis.manifest)));
    let air = validate::validate_with(nodes, &|_| None).map_err(|d| {
        WorldError::corrupt(
            genesis.manifest,
            format!(
                "the stored control plane does not validate: {}",
                d.first().map(ToString::to_string).unwrap_or_default()
            ),
        )
    })?;
    Program::new(air, *genesis_id, genesis).map_err(|e| WorldError::corrupt(*genesis_id, e.0))
}

// ---------------------------------------------------------------------------------------------
// Creating

/// What was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The genesis entry (the world's head).
    pub genesis: ObjectId,
    /// The manifest.
    pub manifest: ObjectId,
    /// The modules: name and blob.
    pub modules: Vec<(String, ObjectId)>,
}

/// Creates world `name` from AIR nodes (as loaded, one of them a manifest) and the WASM of
/// modules whose `defmodule` has no `wasm_hash` (or whose blob the store lacks).
///
/// # Errors
/// [`WorldError::Exists`], [`WorldError::Air`] with every validation problem,
/// [`WorldError::Module`] for a missing or invalid module, store and ref errors. Nothing is
/// visible unless the world was created completely.
pub fn create_world(
    store: &Store,
    name: &str,
    mut nodes: Vec<(Node, AirOrigin)>,
    wasm: &[(String, Vec<u8>)],
    opts: &CreateOptions,
) -> Result<Created, WorldError> {
    if name.contains('/') {
        return Err(WorldError::Input(format!(
            "invalid world name `{name}`: it must not contain `/`"
        )));
    }
    if opts.limits.fuel == 0 {
        return Err(WorldError::Input(
            "the fuel per step must be at least 1".into(),
        ));
    }
    let wref = world_ref(name)?;
    checkpoint_ref(name)?;
    if store.refs().read(&wref)?.is_some() {
        return Err(WorldError::Exists(name.to_owned()));
    }
    let mut blobs: HashMap<ObjectId, &[u8]> = HashMap::new();
    // Modules that get their WASM only now: a manifest may pin them as written, without it
    // (e.g. after `aos air patch -w`), and binding the WASM makes a new node.
    let mut bound: Vec<String> = Vec::new();
    for (module, bytes) in wasm {
        let id = object::hash(Kind::Blob, bytes);
        let node = nodes.iter_mut().find_map(|(n, _)| match n {
            Node::DefModule(m) if m.name.as_str() == module => Some(m),
            _ => None,
        });
        let Some(m) = node else {
            return Err(WorldError::Input(format!(
                "--wasm {module}: the control plane has no module of that name"
            )));
        };
        if let Some(h) = m.wasm_hash
            && h != id
        {
            return Err(WorldError::Module(format!(
                "module {module}: its defmodule names wasm_hash {h}, the file given hashes to {id}"
            )));
        }
        if m.wasm_hash.is_none() {
            bound.push(module.clone());
        }
        m.wasm_hash = Some(id);
        blobs.insert(id, bytes);
    }
    // Their manifest pins named the module without WASM, which no world can run: refresh them
    // (validation fills in the bound module's id).
    for (n, _) in &mut nodes {
        if let Node::Manifest(m) = n {
            for r in &mut m.modules {
                if bound.iter().any(|b| b == r.name.as_str()) {
                    r.hash = None;
                }
            }
        }
    }
    for (n, _) in &nodes {
        if let Node::DefModule(m) = n {
            match m.wasm_hash {
                None => {
                    return Err(WorldError::Module(format!(
                        "module {} has no WASM: give it with --wasm {}=FILE",
                        m.name, m.name
                    )));
                }
                Some(h) if !blobs.contains_key(&h) && !store.contains(&h) => {
                    return Err(WorldError::Module(format!(
                        "module {}: blob {h} is not in the store; give it with --wasm {}=FILE",
                        m.name, m.name
                    )));
                }
                Some(_) => {}
            }
        }
    }
    let air: Validated = validate::validate(nodes).map_err(WorldError::Air)?;
    let mut modules: Vec<(String, ObjectId)> = air
        .nodes
        .iter()
        .filter_map(|vn| match &vn.node {
            Node::DefModule(m) => m.wasm_hash.map(|h| (m.name.as_str().to_owned(), h)),
            _ => None,
        })
        .collect();
    modules.sort();
    let genesis = Genesis {
        manifest: air.manifest_id,
        modules: modules.clone(),
        limits: opts.limits.clone(),
        snapshot_every: opts.snapshot_every,
        max_derived: opts.max_derived,
    };
    let entry = Entry {
        height: 0,
        prev: None,
        body: Body::Genesis(genesis.clone()),
    };
    let (gbytes, gid) = entry.encode();
    let node_values: Vec<(ObjectId, Vec<u8>)> = air
        .nodes
        .iter()
        .map(|vn| (vn.id, cbor::encode(&vn.value)))
        .chain(std::iter::once((
            air.manifest_id,
            cbor::encode(&air.manifest_value),
        )))
        .collect();
    let manifest = air.manifest_id;
    let prog = Program::new(air, gid, genesis).map_err(|e| WorldError::Module(e.0))?;
    let load = |id: &ObjectId| -> Result<Vec<u8>, String> {
        match blobs.get(id) {
            Some(b) => Ok(b.to_vec()),
            None => read_kind(store, id, Kind::Blob).map_err(|e| e.to_string()),
        }
    };
    prog.compile_all(&load).map_err(WorldError::Module)?;
    let mut batch = store.batch();
    for (id, bytes) in &blobs {
        let got = batch.add(Kind::Blob, bytes)?;
        debug_assert_eq!(got, *id);
    }
    for (_, bytes) in &node_values {
        batch.add(Kind::Air, bytes)?;
    }
    batch.add(Kind::MapNode, &MapNode::empty().encode())?;
    batch.add(Kind::Entry, &gbytes)?;
    batch.commit()?;
    store
        .refs()
        .update(&wref, Some(gid), Expected::Absent, "world: created")
        .map_err(|e| match e {
            RefError::Stale { .. } => WorldError::Exists(name.to_owned()),
            e => WorldError::Ref(e),
        })?;
    Ok(Created {
        genesis: gid,
        manifest,
        modules,
    })
}

// ---------------------------------------------------------------------------------------------
// Open worlds

/// How a world was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenStats {
    /// Height of the state it started from (a checkpoint, a snapshot or genesis).
    pub base_height: u64,
    /// Entries replayed on top of it.
    pub replayed: u64,
}

/// An open world: its program and head state.
pub struct World<'s> {
    store: &'s Store,
    name: String,
    machine: Machine,
    /// The head as last written to (or read from) the world's ref.
    committed: ObjectId,
    open: OpenStats,
}

/// Options of [`World::send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOptions {
    /// Commit (one pack, one fsync, one ref move) after this many ingress events.
    pub commit_events: u64,
    /// ... or once this many bytes are pending.
    pub commit_bytes: u64,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            commit_events: 65_536,
            commit_bytes: 64 << 20,
        }
    }
}

/// What [`World::send`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendSummary {
    /// Ingress events appended.
    pub events: u64,
    /// Entries appended in all.
    pub entries: u64,
    /// Derived events.
    pub derived: u64,
    /// Faults.
    pub faults: u64,
    /// Group commits made.
    pub commits: u64,
    /// The new head.
    pub head: ObjectId,
    /// Its height.
    pub height: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl<'s> World<'s> {
    /// Opens world `name`: reads its checkpoint (or latest snapshot) and replays the entries
    /// after it.
    ///
    /// # Errors
    /// [`WorldError::NoWorld`], store errors, or a divergence of the replayed tail.
    pub fn open(store: &'s Store, name: &str) -> Result<Self, WorldError> {
        let wref = world_ref(name)?;
        let head = store
            .refs()
            .read(&wref)?
            .ok_or_else(|| WorldError::NoWorld(name.to_owned()))?;
        let mut w = Self::view(store, head, Some(name))?;
        w.committed = head;
        Ok(w)
    }

    /// Opens a read-only view of the world state right after entry `head`, replaying from
    /// the checkpoint of world `hint` when that is a snapshot on `head`'s history, else from
    /// the nearest snapshot marker at or before it. Sending to a view fails
    /// ([`WorldError::Moved`]).
    ///
    /// # Errors
    /// Store errors, broken chains, divergences of the replayed tail.
    pub fn view(store: &'s Store, head: ObjectId, hint: Option<&str>) -> Result<Self, WorldError> {
        let anchor = hint
            .and_then(|w| checkpoint_ref(w).ok())
            .and_then(|r| store.refs().read(&r).ok().flatten())
            .and_then(|id| read_snapshot(store, &id).ok().map(|s| (id, s)));
        let search = BaseSearch {
            use_markers: true,
            anchor,
            max_height: None,
        };
        let (machine, open) = Self::state_at(store, &head, &search)?;
        Ok(Self {
            store,
            name: hint.unwrap_or_default().to_owned(),
            machine,
            // Never a world's committed head, so a commit's compare-and-swap fails.
            committed: ObjectId::from_bytes([0; 32]),
            open,
        })
    }

    /// The snapshot of the current state (states and cell-map roots), computed in `scratch`
    /// and not stored: what comparing two worlds' states starts from.
    pub(crate) fn summary(&mut self, scratch: &mut Scratch<'s>) -> Result<Snapshot, WorldError> {
        self.machine.summary(scratch)
    }

    fn state_at(
        store: &Store,
        head: &ObjectId,
        search: &BaseSearch,
    ) -> Result<(Machine, OpenStats), WorldError> {
        let (base, tail) = find_base(store, head, search, |_| {})?;
        let mut scratch = Scratch::new(store);
        let mut machine = match &base {
            Base::Genesis(g) => Machine::genesis(Arc::new(load_program(store, g)?)),
            Base::Snapshot(_, s) => {
                let prog = Arc::new(load_program(store, &s.genesis)?);
                Machine::from_snapshot(prog, s, &scratch)?
            }
        };
        let base_height = machine.height();
        let recorded = Box::new(
            tail.into_iter()
                .map(move |id| read_entry(store, &id).map(|e| (id, e))),
        );
        let stats = replay(
            &mut machine,
            &mut scratch,
            store,
            recorded,
            search.max_height.is_some(),
            |_| {},
        )?;
        Ok((
            machine,
            OpenStats {
                base_height,
                replayed: stats.entries,
            },
        ))
    }

    /// The world's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Height of the head entry.
    #[must_use]
    pub fn height(&self) -> u64 {
        self.machine.height()
    }

    /// The head entry.
    #[must_use]
    pub fn head(&self) -> ObjectId {
        self.machine.head()
    }

    /// How the world was opened.
    #[must_use]
    pub fn open_stats(&self) -> &OpenStats {
        &self.open
    }

    /// The world's program (control plane, reducers, routes).
    #[must_use]
    pub fn program(&self) -> &Program {
        self.machine.program()
    }

    /// The world's program, shared (e.g. to parse events on other threads while sending).
    #[must_use]
    pub fn program_arc(&self) -> Arc<Program> {
        Arc::clone(self.machine.program())
    }

    /// Reads an ingress event from JSON (either lens) through schema `schema`, with an
    /// optional key (checked against the key field of every keyed route).
    ///
    /// # Errors
    /// [`WorldError::Input`] naming the schema and the JSON pointer of the problem.
    pub fn parse_event(
        &self,
        schema: &str,
        value: &Json,
        key: Option<&Json>,
    ) -> Result<EventIn, WorldError> {
        parse_event(self.program(), schema, value, key)
    }

    /// Appends ingress events, committing in groups; at the end writes a checkpoint. Calls
    /// `progress` with the number of events made durable so far.
    ///
    /// # Errors
    /// Store and ref errors ([`WorldError::Moved`] if another process moved the world).
    /// Events committed before an error stay appended.
    pub fn send(
        &mut self,
        events: impl IntoIterator<Item = EventIn>,
        opts: &SendOptions,
        progress: &dyn Progress,
    ) -> Result<SendSummary, WorldError> {
        let start = Instant::now();
        let mut live = Live::new(self.store);
        let mut s = SendSummary {
            events: 0,
            entries: 0,
            derived: 0,
            faults: 0,
            commits: 0,
            head: self.head(),
            height: self.height(),
            elapsed: Duration::ZERO,
        };
        let mut since = 0u64;
        for ev in events {
            let c: Cascade = self.machine.ingest(ev, &mut live)?;
            s.events += 1;
            s.entries += c.entries;
            s.derived += c.derived;
            s.faults += c.faults;
            since += 1;
            if since >= opts.commit_events || live.pending_bytes() >= opts.commit_bytes {
                self.commit(&mut live)?;
                s.commits += 1;
                progress.advance(since);
                since = 0;
            }
        }
        // The checkpoint goes into the last group's pack: one pack and one fsync per command.
        let checkpoint = self.machine.snapshot(&mut live)?;
        self.commit(&mut live)?;
        if since > 0 {
            s.commits += 1;
            progress.advance(since);
        }
        self.set_checkpoint(checkpoint)?;
        s.head = self.head();
        s.height = self.height();
        s.elapsed = start.elapsed();
        Ok(s)
    }

    fn commit(&mut self, live: &mut Live<'_>) -> Result<(), WorldError> {
        live.commit()?;
        let head = self.machine.head();
        if head == self.committed {
            return Ok(());
        }
        let wref = world_ref(&self.name)?;
        self.store
            .refs()
            .update(
                &wref,
                Some(head),
                Expected::Is(self.committed),
                &format!("world: append to height {}", self.machine.height()),
            )
            .map_err(|e| match e {
                RefError::Stale { .. } => WorldError::Moved(self.name.clone()),
                e => WorldError::Ref(e),
            })?;
        self.committed = head;
        Ok(())
    }

    fn set_checkpoint(&mut self, id: ObjectId) -> Result<(), WorldError> {
        self.store.refs().update(
            &checkpoint_ref(&self.name)?,
            Some(id),
            Expected::Any,
            &format!("checkpoint at height {}", self.machine.height()),
        )?;
        Ok(())
    }

    /// Takes a snapshot now: appends a snapshot marker and returns the snapshot's id.
    ///
    /// # Errors
    /// Store and ref errors.
    pub fn snapshot(&mut self) -> Result<ObjectId, WorldError> {
        let mut live = Live::new(self.store);
        let id = self.machine.mark(&mut live)?;
        // The checkpoint is the state at the new head (the marker), in the same pack.
        let checkpoint = self.machine.snapshot(&mut live)?;
        self.commit(&mut live)?;
        self.set_checkpoint(checkpoint)?;
        Ok(id)
    }

    /// The state of reducer `reducer` (of the cell with key `key`, for a keyed reducer).
    ///
    /// # Errors
    /// [`WorldError::Input`] for an unknown reducer or a key that does not fit; store errors.
    pub fn state(&self, reducer: &str, key: Option<&Json>) -> Result<StateView, WorldError> {
        let prog = self.program();
        let i = prog
            .reducer_index(reducer)
            .ok_or_else(|| WorldError::Input(format!("the world has no reducer `{reducer}`")))?;
        let r = &prog.reducers[i];
        let cell = match (&r.key_ty, key) {
            (Some(ty), Some(k)) => Some(
                value::from_json(k, ty, prog.schemas())
                    .map_err(|e| WorldError::Input(format!("key for {reducer}: {e}")))?,
            ),
            (Some(_), None) => {
                return Err(WorldError::Input(format!(
                    "{reducer} is keyed: give the cell's key with --key (or list them with --keys)"
                )));
            }
            (None, Some(_)) => {
                return Err(WorldError::Input(format!(
                    "{reducer} is not keyed: it takes no --key"
                )));
            }
            (None, None) => None,
        };
        let scratch = Scratch::new(self.store);
        let cell_bytes = cell.as_ref().map(cbor::encode);
        let state = self.machine.state(i, cell_bytes.as_deref(), &scratch)?;
        Ok(StateView {
            height: self.height(),
            state_ty: r.state_ty.clone(),
            state: state.map(|s| decode_state(&s)).transpose()?,
        })
    }

    /// The keys and state ids of every cell of keyed reducer `reducer`.
    ///
    /// # Errors
    /// [`WorldError::Input`] for an unknown or plain reducer; store errors.
    pub fn keys(&self, reducer: &str) -> Result<Vec<(Value, ObjectId)>, WorldError> {
        let prog = self.program();
        let i = prog
            .reducer_index(reducer)
            .ok_or_else(|| WorldError::Input(format!("the world has no reducer `{reducer}`")))?;
        if !prog.reducers[i].keyed() {
            return Err(WorldError::Input(format!("{reducer} is not keyed")));
        }
        let scratch = Scratch::new(self.store);
        self.machine
            .cells(i, &scratch)?
            .into_iter()
            .map(|(k, id)| {
                cbor::decode(&k)
                    .map(|v| (v, id))
                    .map_err(|e| WorldError::corrupt(id, format!("cell key: {e}")))
            })
            .collect()
    }

    /// The world as it was right after the entry at `height`, replayed from the nearest
    /// snapshot before it.
    ///
    /// # Errors
    /// [`WorldError::Input`] if `height` is beyond the head; store errors; divergences.
    pub fn at(&self, height: u64) -> Result<World<'s>, WorldError> {
        if height > self.height() {
            return Err(WorldError::Input(format!(
                "height {height} is beyond the head ({})",
                self.height()
            )));
        }
        let search = BaseSearch {
            use_markers: true,
            anchor: None,
            max_height: Some(height),
        };
        let (machine, open) = Self::state_at(self.store, &self.head(), &search)?;
        Ok(World {
            store: self.store,
            name: self.name.clone(),
            committed: self.committed,
            machine,
            open,
        })
    }
}

fn decode_state(s: &StateVal) -> Result<Value, WorldError> {
    cbor::decode(&s.bytes).map_err(|e| WorldError::corrupt(s.id, e.to_string()))
}

/// A reducer state read from a world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateView {
    /// The height it was read at.
    pub height: u64,
    /// Its type.
    pub state_ty: Type,
    /// The state (`None`: the reducer or cell has none).
    pub state: Option<Value>,
}

/// Reads an ingress event for `prog` (see [`World::parse_event`]).
///
/// # Errors
/// [`WorldError::Input`].
pub fn parse_event(
    prog: &Program,
    schema: &str,
    value: &Json,
    key: Option<&Json>,
) -> Result<EventIn, WorldError> {
    let name = Name::new(schema)
        .map_err(|e| WorldError::Input(format!("invalid schema name `{schema}`: {e}")))?;
    if !prog.schemas().contains_key(&name) {
        return Err(WorldError::Input(format!(
            "the world has no schema `{schema}`"
        )));
    }
    let v = value::from_json(value, &Type::Ref(name), prog.schemas())
        .map_err(|e| WorldError::Input(format!("{schema}: {e}")))?;
    let key = match key {
        None => None,
        Some(k) => {
            let keyed: Vec<_> = prog
                .routes(schema)
                .iter()
                .filter_map(|r| {
                    let red = &prog.reducers[r.reducer];
                    Some((red, r.key_field.as_ref()?))
                })
                .collect();
            let Some((red, _)) = keyed.first() else {
                return Err(WorldError::Input(format!(
                    "--key: no keyed reducer receives {schema}"
                )));
            };
            let ty = red
                .key_ty
                .as_ref()
                .ok_or_else(|| WorldError::Input(format!("{} has no key schema", red.name)))?;
            let kv = value::from_json(k, ty, prog.schemas())
                .map_err(|e| WorldError::Input(format!("--key: {e}")))?;
            for (red, path) in &keyed {
                if field(&v, path) != Some(&kv) {
                    return Err(WorldError::Input(format!(
                        "--key does not match the event's `{}` (the key of {})",
                        path.join("."),
                        red.name
                    )));
                }
            }
            Some(kv)
        }
    };
    Ok(EventIn {
        schema: schema.to_owned(),
        value: v,
        key,
    })
}

// ---------------------------------------------------------------------------------------------
// Verification

/// Decoded entries a verification holds in memory at once. When the walk back from the head is
/// this far ahead of the replays, the walking thread replays a segment itself before it reads
/// on, so memory stays flat however long the history is. A single segment longer than this
/// (a world with rare snapshots) keeps only ids and reads its entries again when it replays.
const VERIFY_BUFFER_ENTRIES: usize = 40_000;

type SegmentResult = Result<ReplayStats, WorldError>;

enum SegmentStart {
    Genesis,
    Snapshot(ObjectId),
}

enum SegmentEntries {
    Decoded(Vec<(ObjectId, Entry)>),
    Ids(Vec<ObjectId>),
}

/// A segment as the walk back collects it, newest entry first.
#[derive(Default)]
struct Segment {
    ids: Vec<ObjectId>,
    /// The decoded entries, parallel to `ids`, until the segment grows too long to keep them.
    decoded: Vec<Entry>,
    too_long: bool,
    /// The height of the last (oldest) entry pushed.
    oldest: Option<u64>,
}

impl Segment {
    fn push(&mut self, id: ObjectId, e: Entry) {
        self.ids.push(id);
        self.oldest = Some(e.height);
        if self.too_long {
            return;
        }
        if self.decoded.len() >= VERIFY_BUFFER_ENTRIES {
            self.too_long = true;
            self.decoded = Vec::new();
        } else {
            self.decoded.push(e);
        }
    }

    /// The height of its oldest entry (`u64::MAX` if empty).
    fn first_height(&self) -> u64 {
        self.oldest.unwrap_or(u64::MAX)
    }

    /// Its entries, oldest first.
    fn into_entries(mut self) -> SegmentEntries {
        self.ids.reverse();
        if self.too_long {
            return SegmentEntries::Ids(self.ids);
        }
        self.decoded.reverse();
        SegmentEntries::Decoded(self.ids.into_iter().zip(self.decoded).collect())
    }
}

fn replay_segment(
    store: &Store,
    prog: &Arc<Program>,
    start: &SegmentStart,
    entries: SegmentEntries,
    progress: &dyn Progress,
) -> SegmentResult {
    let mut scratch = Scratch::new(store);
    let mut machine = match start {
        SegmentStart::Genesis => Machine::genesis(Arc::clone(prog)),
        SegmentStart::Snapshot(sid) => {
            Machine::from_snapshot(Arc::clone(prog), &read_snapshot(store, sid)?, &scratch)?
        }
    };
    let recorded: Box<dyn Iterator<Item = Result<(ObjectId, Entry), WorldError>> + '_> =
        match entries {
            SegmentEntries::Decoded(v) => Box::new(v.into_iter().map(Ok)),
            SegmentEntries::Ids(ids) => Box::new(
                ids.into_iter()
                    .map(move |id| read_entry(store, &id).map(|e| (id, e))),
            ),
        };
    let mut reported = 0;
    let stats = replay(&mut machine, &mut scratch, store, recorded, false, |s| {
        if s.entries - reported >= 1024 {
            progress.advance(s.entries - reported);
            reported = s.entries;
        }
    })?;
    progress.advance(stats.entries - reported);
    Ok(stats)
}

/// Where `verify` starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyFrom {
    /// From the genesis entry.
    Genesis,
    /// From a snapshot the caller trusts.
    Snapshot(ObjectId),
}

/// What a successful verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The head verified.
    pub head: ObjectId,
    /// Its height.
    pub height: u64,
    /// Height the replay started after.
    pub from_height: u64,
    /// What was replayed.
    pub stats: ReplayStats,
    /// Wall time.
    pub elapsed: Duration,
}

/// Re-executes world `name` offline and checks that it reproduces its journal bit for bit:
/// every entry (and so every recorded state digest, fault and derived event) and every
/// snapshot. Progress counts entries.
///
/// # Errors
/// [`WorldError::Diverged`] naming the first divergence; chain, store and control-plane
/// errors for damaged objects.
pub fn verify(
    store: &Store,
    name: &str,
    from: &VerifyFrom,
    progress: &dyn Progress,
) -> Result<VerifyReport, WorldError> {
    let head = store
        .refs()
        .read(&world_ref(name)?)?
        .ok_or_else(|| WorldError::NoWorld(name.to_owned()))?;
    verify_head(store, head, from, progress)
}

/// [`verify`] for the history ending at entry `head` (which no ref needs to name yet: a
/// received world is verified before its ref moves).
///
/// # Errors
/// As [`verify`].
pub fn verify_head(
    store: &Store,
    head: ObjectId,
    from: &VerifyFrom,
    progress: &dyn Progress,
) -> Result<VerifyReport, WorldError> {
    let start = Instant::now();
    let anchor = match from {
        VerifyFrom::Genesis => None,
        VerifyFrom::Snapshot(id) => Some((*id, read_snapshot(store, id)?)),
    };
    let head_height = read_entry(store, &head)?.height;
    progress.start(
        "verify",
        Some(head_height.saturating_sub(anchor.as_ref().map_or(0, |(_, s)| s.height))),
    );
    // Walking back from the head, each snapshot marker closes a segment that can be replayed
    // on its own: from the snapshot the marker links (which the previous segment recomputes
    // and so proves) to the next marker (whose snapshot it recomputes) or the head. Segments
    // replay on the rayon pool while the walk goes on.
    let prog: OnceLock<Arc<Program>> = OnceLock::new();
    let results: Mutex<Vec<(u64, SegmentResult)>> = Mutex::new(Vec::new());
    let buffered = AtomicUsize::new(0);
    let mut segments = 0u64;
    let mut from_height = 0;
    rayon::scope(|sc| -> Result<(), WorldError> {
        let spawn = |start: SegmentStart, seg: Segment| {
            let first = seg.first_height();
            let entries = seg.into_entries();
            let n = match &entries {
                SegmentEntries::Decoded(v) => v.len(),
                SegmentEntries::Ids(_) => 0,
            };
            buffered.fetch_add(n, Ordering::Relaxed);
            let prog = prog.get().map(Arc::clone);
            let (results, buffered) = (&results, &buffered);
            sc.spawn(move |_| {
                let r = match prog {
                    Some(p) => replay_segment(store, &p, &start, entries, progress),
                    None => Err(WorldError::Input("no control plane".into())),
                };
                buffered.fetch_sub(n, Ordering::Relaxed);
                if let Ok(mut g) = results.lock() {
                    g.push((first, r));
                }
            });
            // Backpressure: while too much is buffered, help replaying instead of reading on.
            while buffered.load(Ordering::Relaxed) > VERIFY_BUFFER_ENTRIES {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        };
        let program_of = |genesis: &ObjectId| -> Result<(), WorldError> {
            match prog.get() {
                Some(p) if p.genesis_id != *genesis => Err(WorldError::corrupt(
                    *genesis,
                    "snapshots of this journal name another genesis",
                )),
                Some(_) => Ok(()),
                None => {
                    let p = Arc::new(load_program(store, genesis)?);
                    let _ = prog.set(p);
                    Ok(())
                }
            }
        };
        let mut seg = Segment::default();
        let mut cur = head;
        let mut expected: Option<u64> = None;
        loop {
            if let Some((sid, s)) = &anchor
                && cur == s.head
            {
                program_of(&s.genesis)?;
                from_height = s.height;
                segments += 1;
                spawn(SegmentStart::Snapshot(*sid), seg);
                return Ok(());
            }
            let e = read_entry(store, &cur)?;
            if let Some(h) = expected
                && e.height != h
            {
                return Err(WorldError::Chain {
                    height: h,
                    message: format!("entry {cur} says it has height {}", e.height),
                });
            }
            if let Body::Genesis(_) = &e.body {
                if anchor.is_some() {
                    return Err(WorldError::Input(
                        "the snapshot is not part of this world's history".into(),
                    ));
                }
                program_of(&cur)?;
                segments += 1;
                spawn(SegmentStart::Genesis, seg);
                return Ok(());
            }
            let (height, prev) = (e.height, e.prev);
            if let Body::Snapshot { snapshot } = &e.body
                && anchor.is_none()
            {
                // A marker ends the segment after it and begins the one before (each replays
                // it: the later one from the snapshot it links).
                let snapshot = *snapshot;
                program_of(&read_snapshot(store, &snapshot)?.genesis)?;
                seg.push(cur, e.clone());
                segments += 1;
                spawn(SegmentStart::Snapshot(snapshot), std::mem::take(&mut seg));
            }
            seg.push(cur, e);
            let Some(prev) = prev else {
                return Err(WorldError::Chain {
                    height,
                    message: format!("entry {cur} has no predecessor"),
                });
            };
            expected = Some(height.saturating_sub(1));
            cur = prev;
        }
    })?;
    let mut results = results
        .into_inner()
        .map_err(|_| WorldError::Input("a verify task panicked".into()))?;
    results.sort_by_key(|(first, _)| *first);
    let mut stats = ReplayStats::default();
    for (_, r) in results {
        let s = r?;
        stats.entries += s.entries;
        stats.snapshots += s.snapshots;
        stats.ingress += s.ingress;
        stats.derived += s.derived;
        stats.faults += s.faults;
    }
    // Each marker between two segments was replayed by both.
    let again = segments.saturating_sub(1);
    stats.entries -= again.min(stats.entries);
    stats.snapshots -= again.min(stats.snapshots);
    progress.finish();
    let height = head_height;
    Ok(VerifyReport {
        head,
        height,
        from_height,
        stats,
        elapsed: start.elapsed(),
    })
}
