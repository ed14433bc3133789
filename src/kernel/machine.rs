//! The deterministic stepper: a world's state and the one function that advances it by an
//! event, producing journal entries.
//!
//! The same code runs live (entries go into the store) and in replay (entries are compared
//! with the recorded ones), so a world verifies exactly when its history is what this code
//! produces.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::air::name::Name;
use crate::air::types::Type;
use crate::air::value;
use crate::codec::cbor::{self, Value};
use crate::kernel::entry::{self, Body, Entry, Origin};
use crate::kernel::envelope::{StepInput, decode_output, encode_input};
use crate::kernel::error::WorldError;
use crate::kernel::mapnode::{MapNode, MerkleMap, NodeCache, NodeStore};
use crate::kernel::program::{Program, ReducerDef};
use crate::kernel::snapshot::Snapshot;
use crate::object::{self, Kind, ObjectId};
use crate::wasm::Fault;

/// What a machine needs from its surroundings: objects to read and write, and a place for
/// the entries it produces.
pub(crate) trait Host: NodeStore {
    /// The payload of the `value` object `id` (a reducer state).
    fn value(&self, id: &ObjectId) -> Result<Vec<u8>, WorldError>;
    /// Stores a `value` object whose id the caller computed.
    fn put_value(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<(), WorldError>;
    /// The bytes of the WASM blob `id`.
    fn wasm(&self, id: &ObjectId) -> Result<Vec<u8>, String>;
    /// Takes the snapshot object the machine computed.
    fn snapshot(&mut self, s: &Snapshot, bytes: &[u8], id: &ObjectId) -> Result<(), WorldError>;
    /// Takes the next entry the machine produced.
    fn entry(&mut self, e: &Entry, bytes: &[u8], id: &ObjectId) -> Result<(), WorldError>;
}

/// A state value: canonical bytes and their id as a `value` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateVal {
    /// Canonical CBOR.
    pub bytes: Arc<[u8]>,
    /// `hash(value, bytes)`.
    pub id: ObjectId,
}

impl StateVal {
    fn new(bytes: Vec<u8>) -> Self {
        let id = object::hash(Kind::Value, &bytes);
        Self {
            bytes: bytes.into(),
            id,
        }
    }
}

enum Slot {
    Plain(Option<StateVal>),
    Keyed {
        root: ObjectId,
        overlay: HashMap<Vec<u8>, Option<StateVal>>,
    },
}

/// An event to deliver: schema, canonical value, and optional envelope key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventIn {
    /// The schema name.
    pub schema: String,
    /// The canonical value.
    pub value: Value,
    /// The envelope key (`event.key`), if any.
    pub key: Option<Value>,
}

/// A world's live state.
pub struct Machine {
    prog: Arc<Program>,
    /// This machine's own compiled modules: a wasmi engine is shared by everything compiled
    /// with it, so machines replaying in parallel must not share one.
    modules: Vec<std::sync::OnceLock<crate::wasm::ReducerModule>>,
    nodes: std::sync::Mutex<NodeCache>,
    height: u64,
    head: ObjectId,
    last_marker: u64,
    slots: Vec<Slot>,
    input: Vec<u8>,
}

/// What one ingress event did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cascade {
    /// Entries appended (the event, its faults and derived events, a snapshot marker).
    pub entries: u64,
    /// Derived events appended.
    pub derived: u64,
    /// Fault entries appended.
    pub faults: u64,
}

struct Outcome {
    state: Option<StateVal>,
    effects: Vec<entry::Effect>,
    events: Vec<EventIn>,
}

fn fault_code(f: &Fault) -> &'static str {
    match f {
        Fault::OutOfFuel => "out-of-fuel",
        Fault::MemoryLimit => "memory-limit",
        Fault::StackOverflow => "stack-overflow",
        Fault::Trap(_) => "trap",
        Fault::BadAlloc(_) => "bad-alloc",
        Fault::BadOutput(_) => "bad-output",
    }
}

/// The value at the dotted record path `path` of `v`.
pub(crate) fn field<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        let Value::Map(m) = cur else { return None };
        cur = m.get_text(p)?;
    }
    Some(cur)
}

impl Machine {
    /// The state right after genesis: no reducer has state, every cell map is empty.
    #[must_use]
    pub fn genesis(prog: Arc<Program>) -> Self {
        let slots = prog
            .reducers
            .iter()
            .map(|r| {
                if r.keyed() {
                    Slot::Keyed {
                        root: MerkleMap::<crate::kernel::mapnode::MemNodeStore>::empty_root_id(),
                        overlay: HashMap::new(),
                    }
                } else {
                    Slot::Plain(None)
                }
            })
            .collect();
        let head = prog.genesis_id;
        let modules = prog
            .reducers
            .iter()
            .map(|_| std::sync::OnceLock::new())
            .collect();
        Self {
            prog,
            modules,
            nodes: std::sync::Mutex::new(NodeCache::new()),
            height: 0,
            head,
            last_marker: 0,
            slots,
            input: Vec::new(),
        }
    }

    /// The state recorded in snapshot `s`, reading plain states through `host`.
    pub(crate) fn from_snapshot(
        prog: Arc<Program>,
        s: &Snapshot,
        host: &dyn Host,
    ) -> Result<Self, WorldError> {
        let mut m = Self::genesis(prog);
        let bad =
            |msg: String| WorldError::Input(format!("snapshot does not fit the world: {msg}"));
        if s.genesis != m.prog.genesis_id {
            return Err(bad("it belongs to another world".into()));
        }
        let plain = m.prog.reducers.iter().filter(|r| !r.keyed()).count();
        let keyed = m.prog.reducers.len() - plain;
        if s.states.len() != plain || s.cells.len() != keyed {
            return Err(bad("its reducers are not the world's".into()));
        }
        for (name, id) in &s.states {
            let i = m
                .prog
                .reducer_index(name)
                .ok_or_else(|| bad(format!("unknown reducer {name}")))?;
            let Slot::Plain(slot) = &mut m.slots[i] else {
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
            let i = m
                .prog
                .reducer_index(name)
                .ok_or_else(|| bad(format!("unknown reducer {name}")))?;
            let Slot::Keyed { root, .. } = &mut m.slots[i] else {
                return Err(bad(format!("{name} is not keyed")));
            };
            *root = *r;
        }
        m.height = s.height;
        m.head = s.head;
        m.last_marker = s.last_marker;
        Ok(m)
    }

    /// The program.
    #[must_use]
    pub fn program(&self) -> &Arc<Program> {
        &self.prog
    }

    /// Height of the last entry.
    #[must_use]
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The last entry.
    #[must_use]
    pub fn head(&self) -> ObjectId {
        self.head
    }

    /// The state of reducer `i` (of cell `cell`, the canonical encoding of its key, for a keyed
    /// reducer).
    pub(crate) fn state(
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

    /// Every cell of keyed reducer `i`: key encoding and state id, sorted by key encoding.
    pub(crate) fn cells(
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

    fn push(&mut self, body: Body, host: &mut dyn Host) -> Result<u64, WorldError> {
        let e = Entry {
            height: self.height + 1,
            prev: Some(self.head),
            body,
        };
        let (bytes, id) = e.encode();
        host.entry(&e, &bytes, &id)?;
        self.height += 1;
        self.head = id;
        Ok(self.height)
    }

    /// Delivers an ingress event and everything it derives, appending their entries, then a
    /// snapshot marker if one is due.
    pub(crate) fn ingest(
        &mut self,
        ev: EventIn,
        host: &mut dyn Host,
    ) -> Result<Cascade, WorldError> {
        let start = self.height;
        let mut c = Cascade::default();
        let mut queue: VecDeque<(Origin, EventIn)> = VecDeque::new();
        self.deliver(Origin::Ingress, ev, host, &mut queue, &mut c)?;
        let max = self.prog.genesis.max_derived;
        while let Some((origin, ev)) = queue.pop_front() {
            if c.derived >= max {
                let Origin::Derived {
                    cause,
                    reducer,
                    cell,
                } = origin
                else {
                    break;
                };
                let dropped = queue.len() + 1;
                self.push(
                    Body::Fault(entry::Fault {
                        cause,
                        reducer,
                        cell,
                        code: "derived-bound".into(),
                        message: format!(
                            "one ingress event may derive at most {max} events; {dropped} more \
                             were dropped"
                        ),
                    }),
                    host,
                )?;
                c.faults += 1;
                break;
            }
            c.derived += 1;
            self.deliver(origin, ev, host, &mut queue, &mut c)?;
        }
        let every = self.prog.genesis.snapshot_every;
        if every > 0 && self.height - self.last_marker >= every {
            self.mark(host)?;
        }
        c.entries = self.height - start;
        Ok(c)
    }

    fn deliver(
        &mut self,
        origin: Origin,
        ev: EventIn,
        host: &mut dyn Host,
        queue: &mut VecDeque<(Origin, EventIn)>,
        c: &mut Cascade,
    ) -> Result<(), WorldError> {
        let prog = Arc::clone(&self.prog);
        let value_bytes = cbor::encode(&ev.value);
        let key_bytes = ev.key.as_ref().map(cbor::encode);
        let mut steps = Vec::new();
        let mut faults: Vec<(String, Option<Value>, &'static str, String)> = Vec::new();
        let mut emitted: Vec<(String, Option<Value>, EventIn)> = Vec::new();
        // State changes take effect when the event's entry is appended.
        let mut staged: Vec<(usize, Option<Vec<u8>>, Option<StateVal>)> = Vec::new();
        for route in prog.routes(&ev.schema) {
            let red = &prog.reducers[route.reducer];
            let cell = match &route.key_field {
                None => None,
                Some(path) => match field(&ev.value, path) {
                    Some(k) => Some(k.clone()),
                    None => {
                        faults.push((
                            red.name.as_str().to_owned(),
                            None,
                            "no-key",
                            format!("the event has no key field `{}`", path.join(".")),
                        ));
                        continue;
                    }
                },
            };
            let cell_bytes = cell.as_ref().map(cbor::encode);
            let prev = match staged
                .iter()
                .rev()
                .find(|(i, k, _)| *i == route.reducer && *k == cell_bytes)
            {
                Some((_, _, s)) => s.clone(),
                None => self.state(route.reducer, cell_bytes.as_deref(), host)?,
            };
            self.input.clear();
            encode_input(
                &StepInput {
                    state: prev.as_ref().map(|s| &*s.bytes),
                    schema: &ev.schema,
                    value: &value_bytes,
                    event_key: key_bytes.as_deref(),
                    ctx_key: cell_bytes.as_deref(),
                    cell_mode: red.keyed(),
                },
                &mut self.input,
            );
            let module = match self.modules[route.reducer].get() {
                Some(m) => m,
                None => {
                    let bytes = host.wasm(&red.wasm).map_err(WorldError::Module)?;
                    let m = crate::wasm::ReducerModule::compile(&bytes, &prog.genesis.limits)
                        .map_err(|e| WorldError::Module(format!("module {}: {e}", red.name)))?;
                    self.modules[route.reducer].get_or_init(|| m)
                }
            };
            let outcome = module
                .step(&self.input)
                .map_err(|f| (fault_code(&f), f.to_string()))
                .and_then(|out| check_output(&out.bytes, red, &prog));
            match outcome {
                Ok(o) => {
                    steps.push(entry::Step {
                        reducer: red.name.as_str().to_owned(),
                        cell: cell.clone(),
                        state: o.state.as_ref().map(|s| s.id),
                        effects: o.effects,
                    });
                    for e in o.events {
                        emitted.push((red.name.as_str().to_owned(), cell.clone(), e));
                    }
                    staged.push((route.reducer, cell_bytes, o.state));
                }
                Err((code, message)) => {
                    faults.push((red.name.as_str().to_owned(), cell, code, message));
                }
            }
        }
        let h = self.push(
            Body::Event(entry::Event {
                origin,
                schema: ev.schema,
                value: ev.value,
                key: ev.key,
                steps,
            }),
            host,
        )?;
        for (i, cell, state) in staged {
            match (&mut self.slots[i], cell) {
                (Slot::Plain(s), _) => *s = state,
                (Slot::Keyed { overlay, .. }, Some(k)) => {
                    overlay.insert(k, state);
                }
                (Slot::Keyed { .. }, None) => {}
            }
        }
        for (reducer, cell, code, message) in faults {
            self.push(
                Body::Fault(entry::Fault {
                    cause: h,
                    reducer,
                    cell,
                    code: code.into(),
                    message,
                }),
                host,
            )?;
            c.faults += 1;
        }
        for (reducer, cell, e) in emitted {
            queue.push_back((
                Origin::Derived {
                    cause: h,
                    reducer,
                    cell,
                },
                e,
            ));
        }
        Ok(())
    }

    /// Computes the snapshot of the current state, writing the states and cell-map nodes it
    /// needs through `host`, and hands it to `host`.
    pub(crate) fn snapshot(&mut self, host: &mut dyn Host) -> Result<ObjectId, WorldError> {
        let s = self.summary(host)?;
        let (bytes, id) = s.encode();
        host.snapshot(&s, &bytes, &id)?;
        Ok(id)
    }

    /// The snapshot of the current state, without handing it to `host`: folds pending cell
    /// changes into the cell maps (writing states and nodes through `host`) and returns the
    /// roots.
    pub(crate) fn summary(&mut self, host: &mut dyn Host) -> Result<Snapshot, WorldError> {
        let mut states = Vec::new();
        let mut cells = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let name = self.prog.reducers[i].name.as_str().to_owned();
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
        Ok(Snapshot {
            height: self.height,
            head: self.head,
            genesis: self.prog.genesis_id,
            last_marker: self.last_marker,
            states,
            cells,
        })
    }

    /// Appends a snapshot marker for the current state.
    pub(crate) fn mark(&mut self, host: &mut dyn Host) -> Result<ObjectId, WorldError> {
        let id = self.snapshot(host)?;
        self.push(Body::Snapshot { snapshot: id }, host)?;
        self.last_marker = self.height;
        Ok(id)
    }
}

/// Checks a step's output and canonicalizes what it holds; an error is a fault.
fn check_output(
    bytes: &[u8],
    red: &ReducerDef,
    prog: &Program,
) -> Result<Outcome, (&'static str, String)> {
    let out = decode_output(bytes).map_err(|e| ("bad-output", e.to_string()))?;
    let schemas = prog.schemas();
    let state = match out.state {
        None => None,
        Some(b) => {
            let v =
                cbor::decode_lenient(&b).map_err(|e| ("invalid-state", format!("state: {e}")))?;
            let c = value::canonicalize(&v, &red.state_ty, schemas)
                .map_err(|e| ("invalid-state", format!("state: {e}")))?;
            Some(StateVal::new(cbor::encode(&c)))
        }
    };
    let mut events = Vec::with_capacity(out.domain_events.len());
    for (i, e) in out.domain_events.into_iter().enumerate() {
        let bad = |m: String| ("invalid-event", format!("domain_events/{i}: {m}"));
        let name = Name::new(&e.schema).map_err(|x| bad(x.to_string()))?;
        if !schemas.contains_key(&name) {
            return Err(bad(format!("unknown schema `{}`", e.schema)));
        }
        let v = cbor::decode_lenient(&e.value).map_err(|x| bad(x.to_string()))?;
        let value =
            value::canonicalize(&v, &Type::Ref(name), schemas).map_err(|x| bad(x.to_string()))?;
        let key = e
            .key
            .map(|k| cbor::decode_lenient(&k).map_err(|x| bad(format!("key: {x}"))))
            .transpose()?;
        events.push(EventIn {
            schema: e.schema,
            value,
            key,
        });
    }
    let mut effects = Vec::with_capacity(out.effects.len());
    for (i, e) in out.effects.into_iter().enumerate() {
        let bad = |m: String| ("invalid-effect", format!("effects/{i}: {m}"));
        if !red.effects_emitted.contains(&e.kind) {
            return Err(bad(format!(
                "{} does not declare effect `{}`",
                red.name, e.kind
            )));
        }
        let ty = prog
            .effect_params(&e.kind)
            .ok_or_else(|| bad(format!("unknown effect `{}`", e.kind)))?;
        let v = cbor::decode_lenient(&e.params_cbor).map_err(|x| bad(x.to_string()))?;
        let params = value::canonicalize(&v, ty, schemas).map_err(|x| bad(x.to_string()))?;
        if let Some(s) = &e.cap_slot
            && !red.cap_slots.contains(s)
        {
            return Err(bad(format!("{} has no cap slot `{s}`", red.name)));
        }
        effects.push(entry::Effect {
            kind: e.kind,
            params,
            cap_slot: e.cap_slot,
        });
    }
    Ok(Outcome {
        state,
        effects,
        events,
    })
}

/// Reads map nodes through a host; the empty root need not be stored.
pub(crate) struct HostNodes<'h>(pub(crate) &'h dyn Host);

fn empty_node(id: &ObjectId) -> Option<Vec<u8>> {
    let empty = MapNode::empty().encode();
    (object::hash(Kind::MapNode, &empty) == *id).then_some(empty)
}

/// Reads node `id` through `host`, standing in the empty root if it is not stored.
fn node_or_empty(
    host: &dyn Host,
    id: &ObjectId,
) -> Result<Vec<u8>, crate::kernel::mapnode::MapError> {
    match host.get(id) {
        Err(e) => empty_node(id).ok_or(e),
        ok => ok,
    }
}

impl NodeStore for HostNodes<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, crate::kernel::mapnode::MapError> {
        node_or_empty(self.0, id)
    }
    fn put(&mut self, _bytes: &[u8]) -> Result<ObjectId, crate::kernel::mapnode::MapError> {
        Err(crate::kernel::mapnode::MapError::Store(
            "reading a cell map never writes".into(),
        ))
    }
}

struct HostNodesMut<'h>(&'h mut dyn Host);

impl NodeStore for HostNodesMut<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, crate::kernel::mapnode::MapError> {
        node_or_empty(&*self.0, id)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, crate::kernel::mapnode::MapError> {
        self.0.put(bytes)
    }
}
