//! A world's control plane made executable: schemas, reducers and routes, read from a
//! validated manifest and the genesis entry; and the programs of one world by manifest id.
//!
//! A world starts with the program of its genesis manifest; a manifest entry switches it to
//! another one. Every program of a world keeps the genesis's configuration (limits, snapshot
//! interval, derived-event bound): a switch changes the control plane, never those.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crate::air::name::Name;
use crate::air::nodes::{ModuleAbi, Node, NodeKind};
use crate::air::types::Type;
use crate::air::validate::Validated;
use crate::kernel::entry::Genesis;
use crate::object::ObjectId;
use crate::wasm::{PureModule, ReducerModule};

/// A reducer of the world.
pub struct ReducerDef {
    /// Its name.
    pub name: Name,
    /// Its WASM blob.
    pub wasm: ObjectId,
    /// The type of its state.
    pub state_ty: Type,
    /// The type of its cell keys, for a keyed reducer.
    pub key_ty: Option<Type>,
    /// Effect kinds it may emit.
    pub effects_emitted: BTreeSet<String>,
    /// Capability slots it declares.
    pub cap_slots: BTreeSet<String>,
}

impl ReducerDef {
    /// Whether the reducer keeps per-cell state.
    #[must_use]
    pub fn keyed(&self) -> bool {
        self.key_ty.is_some()
    }
}

/// One route of an event schema to a reducer.
#[derive(Clone, Debug)]
pub struct Route {
    /// Index of the reducer in [`Program::reducers`].
    pub reducer: usize,
    /// The path of the key field, for a keyed reducer.
    pub key_field: Option<Vec<String>>,
}

/// The executable control plane of a world.
pub struct Program {
    /// The genesis entry's id.
    pub genesis_id: ObjectId,
    /// The genesis entry, whose limits, `snapshot_every` and `max_derived` every program of
    /// the world runs under (its `manifest` and `modules` are the genesis's, not necessarily
    /// this program's: see [`Program::manifest`]).
    pub genesis: Genesis,
    /// The validated control plane.
    pub air: Validated,
    schemas: HashMap<Name, Type>,
    /// The reducers, in manifest order.
    pub reducers: Vec<ReducerDef>,
    by_name: HashMap<String, usize>,
    routes: HashMap<String, Vec<Route>>,
    effect_params: HashMap<String, Type>,
    /// The pure modules: name and blob.
    pub pures: Vec<(Name, ObjectId)>,
}

/// Why a validated control plane cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProgramError(pub String);

impl Program {
    /// Builds the program of a world whose genesis entry is `genesis`.
    ///
    /// # Errors
    /// If the genesis entry does not match the control plane (a module without a blob, or a
    /// blob the manifest does not name).
    pub fn new(
        air: Validated,
        genesis_id: ObjectId,
        genesis: Genesis,
    ) -> Result<Self, ProgramError> {
        if air.manifest_id != genesis.manifest {
            return Err(ProgramError(format!(
                "genesis names manifest {}, but the control plane hashes to {}",
                genesis.manifest, air.manifest_id
            )));
        }
        Self::build(air, genesis_id, genesis, true)
    }

    /// Builds the program of another manifest of the same world as `self`: the same genesis
    /// and configuration, the modules the manifest's nodes name by `wasm_hash`.
    ///
    /// # Errors
    /// A module without a `wasm_hash`, a route to something that is not a reducer.
    pub fn successor(&self, air: Validated) -> Result<Self, ProgramError> {
        if air.manifest_id == self.genesis.manifest {
            return Self::new(air, self.genesis_id, self.genesis.clone());
        }
        Self::build(air, self.genesis_id, self.genesis.clone(), false)
    }

    /// The manifest this program runs (an `air` object).
    #[must_use]
    pub fn manifest(&self) -> ObjectId {
        self.air.manifest_id
    }

    /// Whether this is the program of the world's genesis manifest.
    #[must_use]
    pub fn is_genesis(&self) -> bool {
        self.air.manifest_id == self.genesis.manifest
    }

    /// With `bind_genesis`, every module's blob must be the one the genesis binds it to.
    fn build(
        air: Validated,
        genesis_id: ObjectId,
        genesis: Genesis,
        bind_genesis: bool,
    ) -> Result<Self, ProgramError> {
        let mut schemas = HashMap::new();
        let mut effect_params = HashMap::new();
        let mut reducers = Vec::new();
        let mut pures = Vec::new();
        let blob_of = |name: &Name| {
            genesis
                .modules
                .iter()
                .find(|(n, _)| n == name.as_str())
                .map(|(_, id)| *id)
        };
        for vn in &air.nodes {
            match &vn.node {
                Node::DefSchema(s) => {
                    schemas.insert(s.name.clone(), s.ty.clone());
                }
                Node::DefEffect(e) => {
                    effect_params.insert(e.kind.clone(), Type::Ref(e.params_schema.clone()));
                }
                Node::DefModule(m) => {
                    let Some(wasm) = m.wasm_hash else {
                        return Err(ProgramError(format!("module {} has no wasm_hash", m.name)));
                    };
                    if bind_genesis && blob_of(&m.name) != Some(wasm) {
                        return Err(ProgramError(format!(
                            "module {}: genesis does not bind its wasm_hash {wasm}",
                            m.name
                        )));
                    }
                    match &m.abi {
                        ModuleAbi::Reducer(r) => reducers.push(ReducerDef {
                            name: m.name.clone(),
                            wasm,
                            state_ty: Type::Ref(r.state.clone()),
                            key_ty: m.key_schema.clone().map(Type::Ref),
                            effects_emitted: r.effects_emitted.iter().cloned().collect(),
                            cap_slots: r.cap_slots.iter().map(|(s, _)| s.clone()).collect(),
                        }),
                        ModuleAbi::Pure(_) => pures.push((m.name.clone(), wasm)),
                    }
                }
                _ => {}
            }
        }
        let listed = air.manifest.refs(NodeKind::DefModule).map_or(0, <[_]>::len);
        if bind_genesis && genesis.modules.len() != listed {
            return Err(ProgramError(format!(
                "genesis binds {} modules, the manifest lists {listed}",
                genesis.modules.len()
            )));
        }
        let by_name: HashMap<String, usize> = reducers
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str().to_owned(), i))
            .collect();
        let mut routes: HashMap<String, Vec<Route>> = HashMap::new();
        for r in &air.manifest.routing.events {
            let Some(&i) = by_name.get(r.reducer.as_str()) else {
                return Err(ProgramError(format!(
                    "route to {}, which is not a reducer",
                    r.reducer
                )));
            };
            routes
                .entry(r.event.as_str().to_owned())
                .or_default()
                .push(Route {
                    reducer: i,
                    key_field: r
                        .key_field
                        .as_ref()
                        .map(|f| f.split('.').map(str::to_owned).collect()),
                });
        }
        Ok(Self {
            genesis_id,
            genesis,
            air,
            schemas,
            reducers,
            by_name,
            routes,
            effect_params,
            pures,
        })
    }

    /// The world's schemas, for reading and checking typed values.
    #[must_use]
    pub fn schemas(&self) -> &HashMap<Name, Type> {
        &self.schemas
    }

    /// Whether the world defines the schema `name`.
    #[must_use]
    pub fn has_schema(&self, name: &str) -> bool {
        Name::new(name).is_ok_and(|n| self.schemas.contains_key(&n))
    }

    /// The routes of events of schema `schema`, in manifest order.
    #[must_use]
    pub fn routes(&self, schema: &str) -> &[Route] {
        self.routes.get(schema).map_or(&[], Vec::as_slice)
    }

    /// The index of the reducer named `name`.
    #[must_use]
    pub fn reducer_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The parameter type of effects of kind `kind`.
    #[must_use]
    pub fn effect_params(&self, kind: &str) -> Option<&Type> {
        self.effect_params.get(kind)
    }

    /// Compiles every module now (reducers and pure components), so that a world is never
    /// created with a module that cannot run.
    ///
    /// # Errors
    /// The first module that does not compile, by name.
    pub fn compile_all(
        &self,
        load: &dyn Fn(&ObjectId) -> Result<Vec<u8>, String>,
    ) -> Result<(), String> {
        for r in &self.reducers {
            let bytes = load(&r.wasm)?;
            ReducerModule::compile(&bytes, &self.genesis.limits)
                .map_err(|e| format!("module {}: {e}", r.name))?;
        }
        for (name, wasm) in &self.pures {
            let bytes = load(wasm)?;
            PureModule::compile(&bytes, &self.genesis.limits)
                .map_err(|e| format!("module {name}: {e}"))?;
        }
        Ok(())
    }
}

/// How many programs besides the genesis's a [`Programs`] keeps.
const CACHED_PROGRAMS: usize = 8;

/// The programs of one world by manifest id: the genesis's, always, and the few most recently
/// used others. One is shared by every machine that runs or replays the world in a process
/// (each machine compiles its own modules), so a history that switches manifests builds each
/// program once, not once per segment or per open.
pub struct Programs {
    genesis: Arc<Program>,
    /// Most recently used last.
    others: Mutex<Vec<Arc<Program>>>,
}

impl Programs {
    /// The programs of the world whose genesis program is `genesis`.
    #[must_use]
    pub fn new(genesis: Program) -> Self {
        Self {
            genesis: Arc::new(genesis),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The program of the genesis manifest.
    #[must_use]
    pub fn genesis(&self) -> &Arc<Program> {
        &self.genesis
    }

    /// The world's genesis entry.
    #[must_use]
    pub fn genesis_id(&self) -> ObjectId {
        self.genesis.genesis_id
    }

    /// The program of `manifest`, if it is the genesis's or cached.
    #[must_use]
    pub fn get(&self, manifest: &ObjectId) -> Option<Arc<Program>> {
        if *manifest == self.genesis.manifest() {
            return Some(Arc::clone(&self.genesis));
        }
        let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        let i = others.iter().position(|p| p.manifest() == *manifest)?;
        let p = others.remove(i);
        others.push(Arc::clone(&p));
        Some(p)
    }

    /// Builds and caches the program of the validated control plane `air` (see
    /// [`Program::successor`]).
    ///
    /// # Errors
    /// As [`Program::successor`].
    pub fn add(&self, air: Validated) -> Result<Arc<Program>, ProgramError> {
        if let Some(p) = self.get(&air.manifest_id) {
            return Ok(p);
        }
        self.insert(self.genesis.successor(air)?)
    }

    /// Caches `prog`, a program of this world built with [`Program::successor`].
    ///
    /// # Errors
    /// If `prog` belongs to another world.
    pub fn insert(&self, prog: Program) -> Result<Arc<Program>, ProgramError> {
        if prog.genesis_id != self.genesis.genesis_id {
            return Err(ProgramError(format!(
                "the program of manifest {} belongs to the world of genesis {}, not {}",
                prog.manifest(),
                prog.genesis_id,
                self.genesis.genesis_id
            )));
        }
        if prog.is_genesis() {
            return Ok(Arc::clone(&self.genesis));
        }
        let p = Arc::new(prog);
        let mut others = self.others.lock().unwrap_or_else(PoisonError::into_inner);
        others.retain(|o| o.manifest() != p.manifest());
        if others.len() >= CACHED_PROGRAMS {
            others.remove(0);
        }
        others.push(Arc::clone(&p));
        Ok(p)
    }
}
