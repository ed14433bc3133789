//! Creating a world: binding modules, validating the control plane, writing the genesis;
//! and loading the program a genesis names.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::air::load::Origin as AirOrigin;
use crate::air::nodes::{Node, NodeKind};
use crate::air::validate::{self, Validated};
use crate::codec::cbor::{self};
use crate::kernel::entry::{Body, Entry, Genesis};
use crate::kernel::error::WorldError;
use crate::kernel::mapnode::MapNode;
use crate::kernel::program::Program;
use crate::kernel::replay::read_entry;
use crate::object::{self, Kind, ObjectId};
use crate::store::Store;
use crate::wasm::Limits;
use crate::world::hosts::read_kind;
use crate::world::{checkpoint_ref, world_ref};

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
    let mut moves = crate::world::refs::Moves::new(store);
    moves.create(name, gid)?;
    moves.commit()?;
    Ok(Created {
        genesis: gid,
        manifest,
        modules,
    })
}
