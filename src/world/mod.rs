//! Worlds in a store: creating, opening, feeding inputs (events, snapshot markers, manifest
//! switches, receipts), reading state, snapshots and verification.
//!
//! A world named `NAME` is the ref `refs/worlds/NAME`, pointing at the head entry of its
//! journal. The ref `refs/checkpoints/NAME` points at a snapshot of the head state written at
//! the end of every command that appended; it is a cache (never trusted by `verify`), so that
//! opening a world reads one snapshot instead of replaying history.
//!
//! - [`create`]: creating a world, and checking a control plane for it or for a switch.
//! - [`event`]: reading ingress events from JSON.
//! - `send`: appending events in group commits, each acknowledged as it becomes durable,
//!   rebasing on another writer's commits.
//! - [`batch`]: sending a batch of events from JSON Lines, every line checked first.
//! - [`log`](mod@log): a world's journal newest first, with fork points and other worlds' heads.
//! - [`verify`](mod@verify): offline verification.
//! - [`history`]: naming points in histories, forks and their origin, common ancestors.
//! - [`ancestry`]: the entry at a height of a history; whether one entry precedes another.
//! - [`refs`]: the names of a world's refs and the one place that moves them.
//! - [`lineage`]: where a forked world came from, recorded as data.
//! - [`diff`]: comparing two worlds: history, control plane and state.
//! - [`idempotency`]: recognising a retried event by its idempotency key.
//! - `hosts`: the live and scratch hosts machines run against.
//! - `load`: loading the control planes and programs a history names.

pub mod ancestry;
pub mod batch;
pub mod create;
pub mod diff;
pub mod event;
pub mod history;
mod hosts;
pub mod idempotency;
pub mod lineage;
mod load;
pub mod log;
pub mod refs;
mod send;
mod turn;
pub mod verify;

pub use batch::{Batch, BatchError};
pub use create::{
    CreateOptions, Created, DEFAULT_MAX_DERIVED, DEFAULT_SNAPSHOT_EVERY, create_world,
};
pub use event::parse_event;
pub use log::{LogEntry, log};
pub use refs::{checkpoint_ref, world_ref};
pub use send::{Durable, MAX_LOCK_WAITS, MAX_REBASES, SendOptions, SendSummary};
pub use verify::{VerifyFrom, VerifyReport, verify, verify_head};

use std::sync::Arc;

use crate::air::load::Origin as AirOrigin;
use crate::air::nodes::Node;
use crate::air::types::Type;
use crate::air::value;
use crate::codec::cbor::{self, Value};
use crate::codec::json::Json;
use crate::kernel::error::{InputError, Refused, WorldError};
use crate::kernel::input::{ManifestSwitch, ReceiptIn};
use crate::kernel::machine::{Applied, EventIn, Input, Machine, StateVal};
use crate::kernel::program::{Program, Programs};
use crate::kernel::replay::{Base, BaseSearch, find_base, read_entry, read_snapshot, replay};
use crate::kernel::snapshot::Snapshot;
use crate::object::ObjectId;
use crate::store::Store;
use crate::world::create::ControlPlane;
use crate::world::hosts::{Live, Scratch};
use crate::world::load::{Trust, load_programs};

/// The worlds of a store: name and head entry, sorted by name.
///
/// # Errors
/// Ref errors.
pub fn list_worlds(store: &Store) -> Result<Vec<(String, ObjectId)>, WorldError> {
    Ok(refs::list(store, refs::Space::Local)?)
}

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
    /// The idempotency keys of the window, once a send has met one.
    ids: Option<idempotency::Ids>,
}

/// What [`World::switch_manifest`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switched {
    /// The manifest the world runs now.
    pub manifest: ObjectId,
    /// The entries appended (the manifest entry, and a snapshot marker if one was due).
    pub applied: Applied,
    /// The new head.
    pub head: ObjectId,
    /// Its height.
    pub height: u64,
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
        let (machine, open) = Self::state_at(store, &head, &search, None)?;
        Ok(Self {
            store,
            name: hint.unwrap_or_default().to_owned(),
            machine,
            // Never a world's committed head, so a commit's compare-and-swap fails.
            committed: ObjectId::from_bytes([0; 32]),
            open,
            ids: None,
        })
    }

    /// The snapshot of the current state (states and cell-map roots), computed in `scratch`
    /// and not stored: what comparing two worlds' states starts from.
    pub(crate) fn summary(&mut self, scratch: &mut Scratch<'s>) -> Result<Snapshot, WorldError> {
        self.machine.summary(scratch)
    }

    /// The machine of the state right after `head`, replayed from the base `search` finds;
    /// `programs` are the world's if the caller has them.
    fn state_at(
        store: &Store,
        head: &ObjectId,
        search: &BaseSearch,
        programs: Option<Arc<Programs>>,
    ) -> Result<(Machine, OpenStats), WorldError> {
        let (base, tail) = find_base(store, head, search, |_| {})?;
        let mut scratch = Scratch::new(store);
        let genesis = match &base {
            Base::Genesis(g) => *g,
            Base::Snapshot(_, s) => s.genesis,
        };
        let programs = match programs {
            Some(p) if p.genesis_id() == genesis => p,
            _ => Arc::new(load_programs(store, &genesis, Trust::Cache)?),
        };
        let mut machine = match &base {
            Base::Genesis(_) => Machine::genesis(programs),
            Base::Snapshot(_, s) => Machine::from_snapshot(programs, s, &scratch)?,
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

    /// The world's program in force (control plane, reducers, routes).
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

    /// Applies one input and commits it with a checkpoint of the new head, in one ref
    /// transaction.
    fn apply_one(&mut self, input: Input, live: &mut Live<'_>) -> Result<Applied, WorldError> {
        let applied = self.machine.apply(input, live)?;
        // The checkpoint is the state at the new head, in the same pack.
        let checkpoint = self.machine.snapshot(live)?;
        self.commit(live, Some(checkpoint))?;
        Ok(applied)
    }

    /// Makes what `live` holds durable, then moves the world's head to it (and its
    /// checkpoint to `checkpoint`, when given) in one ref transaction.
    fn commit(
        &mut self,
        live: &mut Live<'_>,
        checkpoint: Option<ObjectId>,
    ) -> Result<(), WorldError> {
        live.commit()?;
        let head = self.machine.head();
        let mut moves = refs::Moves::new(self.store);
        moves.append(
            &self.name,
            self.committed,
            head,
            self.machine.height(),
            checkpoint,
        )?;
        moves.commit()?;
        self.committed = head;
        Ok(())
    }

    /// Takes a snapshot now: appends a snapshot marker and returns the snapshot's id.
    ///
    /// # Errors
    /// Store and ref errors.
    pub fn snapshot(&mut self) -> Result<ObjectId, WorldError> {
        let mut live = Live::new(self.store);
        let applied = self.apply_one(Input::Marker, &mut live)?;
        applied
            .marker
            .ok_or(WorldError::Internal("the marker input appended no marker"))
    }

    /// Switches the world to another manifest: checks the control plane exactly as
    /// [`create_world`] does (AIR `nodes` as loaded, one of them the manifest, and the `wasm`
    /// of modules whose blob is not stored yet; every module compiled), stores its nodes and
    /// blobs, and appends a manifest entry. The genesis's limits and configuration stay.
    /// Reducer state carries over by reducer name (see `kernel::machine::manifest`); the
    /// snapshot after the switch records the new manifest.
    ///
    /// # Errors
    /// As [`create_world`] for the control plane; [`WorldError::Refused`] if the world runs
    /// that manifest already or if the switch would change the state type or keys of a
    /// reducer that holds state (nothing appended, the world unchanged); store and ref errors.
    pub fn switch_manifest(
        &mut self,
        nodes: Vec<(Node, AirOrigin)>,
        wasm: &[(String, Vec<u8>)],
    ) -> Result<Switched, WorldError> {
        let cp = ControlPlane::check(self.store, nodes, wasm)?;
        let programs = Arc::clone(self.machine.programs());
        let (prog, objects) = cp.finish(self.store, |air| programs.genesis().successor(air))?;
        let manifest = prog.manifest();
        if manifest == self.program().manifest() {
            return Err(Refused::SameManifest { manifest }.into());
        }
        programs
            .insert(prog)
            .map_err(|e| crate::kernel::error::ModuleError::Build(e.0))?;
        let mut live = Live::new(self.store);
        objects.store_with(|kind, bytes| live.add(kind, bytes))?;
        let applied = self.apply_one(Input::Manifest(ManifestSwitch { manifest }), &mut live)?;
        crate::store::cache::record_validated(
            self.store,
            &manifest,
            crate::air::validate::VALIDATOR_VERSION,
        );
        Ok(Switched {
            manifest,
            applied,
            head: self.head(),
            height: self.height(),
        })
    }

    /// Offers an effect receipt to the world.
    ///
    /// Receipts answer pending intents, and no intent is pending until effects are
    /// dispatched (issue 14): today every receipt is refused.
    ///
    /// # Errors
    /// [`WorldError::Refused`] ([`Refused::NoPendingIntent`]); nothing is appended.
    pub fn receipt(&mut self, receipt: ReceiptIn) -> Result<Applied, WorldError> {
        let mut live = Live::new(self.store);
        self.apply_one(Input::Receipt(receipt), &mut live)
    }

    /// The state of reducer `reducer` (of the cell with key `key`, for a keyed reducer).
    ///
    /// # Errors
    /// [`WorldError::Input`] for an unknown reducer or a key that does not fit; store errors.
    pub fn state(&self, reducer: &str, key: Option<&Json>) -> Result<StateView, WorldError> {
        let prog = self.program();
        let i = reducer_index(prog, reducer)?;
        let r = &prog.reducers[i];
        let cell = match (&r.key_ty, key) {
            (Some(ty), Some(k)) => Some(value::from_json(k, ty, prog.schemas()).map_err(
                |source| InputError::Key {
                    reducer: reducer.to_owned(),
                    source,
                },
            )?),
            (Some(_), None) => {
                return Err(InputError::KeyNeeded {
                    reducer: reducer.to_owned(),
                }
                .into());
            }
            (None, Some(_)) => {
                return Err(InputError::NotKeyed {
                    reducer: reducer.to_owned(),
                }
                .into());
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
        let i = reducer_index(prog, reducer)?;
        if !prog.reducers[i].keyed() {
            return Err(InputError::NotKeyed {
                reducer: reducer.to_owned(),
            }
            .into());
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
            return Err(InputError::BeyondHead {
                height,
                head: self.height(),
            }
            .into());
        }
        let search = BaseSearch {
            use_markers: true,
            anchor: None,
            max_height: Some(height),
        };
        let programs = Arc::clone(self.machine.programs());
        let (machine, open) = Self::state_at(self.store, &self.head(), &search, Some(programs))?;
        Ok(World {
            store: self.store,
            name: self.name.clone(),
            committed: self.committed,
            machine,
            open,
            ids: None,
        })
    }
}

/// The index of reducer `reducer` in `prog`.
fn reducer_index(prog: &Program, reducer: &str) -> Result<usize, WorldError> {
    prog.reducer_index(reducer).ok_or_else(|| {
        InputError::NoReducer {
            reducer: reducer.to_owned(),
        }
        .into()
    })
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
