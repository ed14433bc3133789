//! Creating a world: binding modules, validating the control plane, writing the genesis; and
//! checking a control plane the same way for a manifest switch.

use std::collections::HashMap;

use crate::air::load::Origin as AirOrigin;
use crate::air::nodes::Node;
use crate::air::validate::{self, Validated};
use crate::codec::cbor::{self};
use crate::kernel::entry::{Body, Entry, Genesis};
use crate::kernel::error::{InputError, ModuleError, WorldError, WorldNameProblem};
use crate::kernel::mapnode::MapNode;
use crate::kernel::program::{Program, ProgramError};
use crate::kernel::replay::read_kind;
use crate::object::{self, Kind, ObjectId};
use crate::store::Store;
use crate::wasm::Limits;
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

/// A control plane checked as a new world's is: every module bound to its WASM (given now or
/// already stored), the nodes validated, ready to build a program from and to store.
pub(crate) struct ControlPlane<'w> {
    /// The validated control plane.
    pub(crate) air: Validated,
    /// The WASM given with it, by blob id.
    blobs: HashMap<ObjectId, &'w [u8]>,
}

/// The objects of a checked control plane, to store with whatever first uses it.
pub(crate) struct ControlPlaneObjects<'w> {
    blobs: HashMap<ObjectId, &'w [u8]>,
    nodes: Vec<Vec<u8>>,
}

impl<'w> ControlPlane<'w> {
    /// Binds `wasm` to the modules of `nodes` (AIR nodes as loaded, one of them a manifest)
    /// and validates them.
    ///
    /// # Errors
    /// [`WorldError::Input`] for WASM given for no module, [`WorldError::Module`] for a module
    /// without WASM or with other WASM than its `wasm_hash`, [`WorldError::Air`] with every
    /// validation problem.
    pub(crate) fn check(
        store: &Store,
        mut nodes: Vec<(Node, AirOrigin)>,
        wasm: &'w [(String, Vec<u8>)],
    ) -> Result<Self, WorldError> {
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
                return Err(InputError::UnknownModule {
                    module: module.clone(),
                }
                .into());
            };
            if let Some(h) = m.wasm_hash
                && h != id
            {
                return Err(ModuleError::OtherWasm {
                    module: module.clone(),
                    named: h,
                    given: id,
                }
                .into());
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
                        return Err(ModuleError::NoWasm {
                            module: m.name.to_string(),
                        }
                        .into());
                    }
                    Some(h) if !blobs.contains_key(&h) && !store.contains(&h) => {
                        return Err(ModuleError::MissingBlob {
                            module: m.name.to_string(),
                            blob: h,
                        }
                        .into());
                    }
                    Some(_) => {}
                }
            }
        }
        let air: Validated = validate::validate(nodes).map_err(WorldError::Air)?;
        Ok(Self { air, blobs })
    }

    /// Each module's name and WASM blob, sorted by name.
    pub(crate) fn modules(&self) -> Vec<(String, ObjectId)> {
        let mut modules: Vec<(String, ObjectId)> = self
            .air
            .nodes
            .iter()
            .filter_map(|vn| match &vn.node {
                Node::DefModule(m) => m.wasm_hash.map(|h| (m.name.as_str().to_owned(), h)),
                _ => None,
            })
            .collect();
        modules.sort();
        modules
    }

    /// Builds the program with `build` and compiles every module of it now (so that no world
    /// ever runs a module that cannot run); returns it with the objects to store.
    ///
    /// # Errors
    /// [`WorldError::Module`]: the program cannot be built, or a module does not compile.
    pub(crate) fn finish(
        self,
        store: &Store,
        build: impl FnOnce(Validated) -> Result<Program, ProgramError>,
    ) -> Result<(Program, ControlPlaneObjects<'w>), WorldError> {
        let nodes: Vec<Vec<u8>> = self
            .air
            .nodes
            .iter()
            .map(|vn| cbor::encode(&vn.value))
            .chain(std::iter::once(cbor::encode(&self.air.manifest_value)))
            .collect();
        let prog = build(self.air).map_err(|e| ModuleError::Build(e.0))?;
        let blobs = self.blobs;
        let load = |id: &ObjectId| -> Result<Vec<u8>, String> {
            match blobs.get(id) {
                Some(b) => Ok(b.to_vec()),
                None => read_kind(store, id, Kind::Blob).map_err(|e| e.to_string()),
            }
        };
        prog.compile_all(&load).map_err(ModuleError::Build)?;
        Ok((prog, ControlPlaneObjects { blobs, nodes }))
    }
}

impl ControlPlaneObjects<'_> {
    /// Hands every object (the given WASM blobs, the nodes and the manifest) to `add`.
    pub(crate) fn store_with(
        &self,
        mut add: impl FnMut(Kind, &[u8]) -> Result<ObjectId, WorldError>,
    ) -> Result<(), WorldError> {
        for (id, bytes) in &self.blobs {
            let got = add(Kind::Blob, bytes)?;
            debug_assert_eq!(got, *id);
        }
        for bytes in &self.nodes {
            add(Kind::Air, bytes)?;
        }
        Ok(())
    }
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
    nodes: Vec<(Node, AirOrigin)>,
    wasm: &[(String, Vec<u8>)],
    opts: &CreateOptions,
) -> Result<Created, WorldError> {
    if name.contains('/') {
        return Err(InputError::WorldName {
            name: name.to_owned(),
            problem: WorldNameProblem::Slash,
        }
        .into());
    }
    if opts.limits.fuel == 0 {
        return Err(InputError::NoFuel.into());
    }
    let wref = world_ref(name)?;
    checkpoint_ref(name)?;
    if store.refs().read(&wref)?.is_some() {
        return Err(WorldError::Exists(name.to_owned()));
    }
    let cp = ControlPlane::check(store, nodes, wasm)?;
    let modules = cp.modules();
    let manifest = cp.air.manifest_id;
    let genesis = Genesis {
        manifest,
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
    let (_, objects) = cp.finish(store, |air| Program::new(air, gid, genesis))?;
    let mut batch = store.batch();
    objects.store_with(|kind, bytes| Ok(batch.add(kind, bytes)?))?;
    batch.add(Kind::MapNode, &MapNode::empty().encode())?;
    batch.add(Kind::Entry, &gbytes)?;
    batch.commit()?;
    crate::store::cache::record_validated(store, &manifest, validate::VALIDATOR_VERSION);
    let mut moves = crate::world::refs::Moves::new(store);
    moves.create(name, gid)?;
    moves.commit()?;
    Ok(Created {
        genesis: gid,
        manifest,
        modules,
    })
}
