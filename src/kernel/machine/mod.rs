//! The deterministic stepper: a world's state and the one function that advances it,
//! `Machine::apply` of an [`Input`], producing journal entries.
//!
//! The same code runs live (entries go into the store), in scratch runs and in replay (entries
//! are compared with the recorded ones), so a world verifies exactly when its history is what
//! this code produces. An event is delivered in four stages, one module each:
//!
//! - `route`: which reducers, and which cells, receive it;
//! - `step`: one reducer step (compiling the module on first use);
//! - `outcome`: checking and canonicalizing what the step returned;
//! - `dispatch`: appending the entries, applying the states, queueing derived events;
//!   effect intents go to a [`Gate`], events to a [`PlanEngine`].
//!
//! `state` holds the reducers' state; `manifest` switches the program.

mod dispatch;
mod manifest;
mod outcome;
mod route;
mod state;
mod step;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::air::validate::Validated;
use crate::codec::cbor;
use crate::kernel::entry::{self, Body, Entry, Origin};
use crate::kernel::error::WorldError;
use crate::kernel::mapnode::NodeStore;
use crate::kernel::program::{Program, Programs};
use crate::kernel::snapshot::Snapshot;
use crate::object::ObjectId;

pub use crate::kernel::input::{EventIn, Input};
pub use dispatch::{Admission, Emitter, Gate, NoPlans, PlanEngine, RecordGate, Settled};
pub(crate) use route::field;
pub(crate) use state::HostNodes;
pub use state::StateVal;

use dispatch::{Cascade, Delivery, Queued, Stepped};
use state::States;
use step::{Encoded, Stepper};

/// What a machine needs from its surroundings: objects to read and write, and a place for
/// the entries it produces.
pub(crate) trait Host: NodeStore {
    /// The payload of the `value` object `id` (a reducer state).
    fn value(&self, id: &ObjectId) -> Result<Vec<u8>, WorldError>;
    /// Stores a `value` object whose id the caller computed.
    fn put_value(&mut self, id: &ObjectId, bytes: &[u8]) -> Result<(), WorldError>;
    /// The bytes of the WASM blob `id`.
    fn wasm(&self, id: &ObjectId) -> Result<Vec<u8>, String>;
    /// The stored control plane whose manifest is the `air` object `manifest`, validated.
    fn control_plane(&self, manifest: &ObjectId) -> Result<Validated, WorldError>;
    /// Takes the snapshot object the machine computed.
    fn snapshot(&mut self, s: &Snapshot, bytes: &[u8], id: &ObjectId) -> Result<(), WorldError>;
    /// Takes the next entry the machine produced.
    fn entry(&mut self, e: &Entry, bytes: &[u8], id: &ObjectId) -> Result<(), WorldError>;
}

/// What one input did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Entries appended (the input's own, its cascade's, an automatic snapshot marker).
    pub entries: u64,
    /// Derived events appended.
    pub derived: u64,
    /// Fault entries appended.
    pub faults: u64,
    /// The snapshot of the marker appended, on demand or automatically, if one was.
    pub marker: Option<ObjectId>,
}

/// A world's live state.
pub struct Machine {
    /// The world's programs (shared with other machines of the world).
    programs: Arc<Programs>,
    /// The program in force.
    prog: Arc<Program>,
    stepper: Stepper,
    states: States,
    gate: Box<dyn Gate>,
    plans: Box<dyn PlanEngine>,
    height: u64,
    head: ObjectId,
    last_marker: u64,
}

impl Machine {
    /// The state right after genesis: no reducer has state, every cell map is empty.
    #[must_use]
    pub fn genesis(programs: Arc<Programs>) -> Self {
        let prog = Arc::clone(programs.genesis());
        Self::with_program(programs, prog)
    }

    fn with_program(programs: Arc<Programs>, prog: Arc<Program>) -> Self {
        Self {
            head: prog.genesis_id,
            stepper: Stepper::new(&prog),
            states: States::new(&prog),
            gate: Box::new(RecordGate),
            plans: Box::new(NoPlans),
            programs,
            prog,
            height: 0,
            last_marker: 0,
        }
    }

    /// The state recorded in snapshot `s`, under the program of the manifest it records,
    /// reading plain states through `host`.
    pub(crate) fn from_snapshot(
        programs: Arc<Programs>,
        s: &Snapshot,
        host: &dyn Host,
    ) -> Result<Self, WorldError> {
        let bad = WorldError::SnapshotMismatch;
        if s.genesis != programs.genesis_id() {
            return Err(bad("it belongs to another world".into()));
        }
        let prog = match &s.manifest {
            None => Arc::clone(programs.genesis()),
            Some(m) if *m == programs.genesis().manifest() => {
                return Err(bad(
                    "it names the genesis manifest, which a snapshot leaves implicit".into(),
                ));
            }
            Some(m) => manifest::program_of(&programs, m, host)?,
        };
        let mut machine = Self::with_program(programs, prog);
        machine.states.load(&machine.prog, s, host)?;
        machine.height = s.height;
        machine.head = s.head;
        machine.last_marker = s.last_marker;
        Ok(machine)
    }

    /// The program in force.
    #[must_use]
    pub fn program(&self) -> &Arc<Program> {
        &self.prog
    }

    /// The world's programs.
    #[must_use]
    pub fn programs(&self) -> &Arc<Programs> {
        &self.programs
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
        self.states.get(i, cell, host)
    }

    /// Every cell of keyed reducer `i`: key encoding and state id, sorted by key encoding.
    pub(crate) fn cells(
        &self,
        i: usize,
        host: &dyn Host,
    ) -> Result<Vec<(Vec<u8>, ObjectId)>, WorldError> {
        self.states.cells(i, host)
    }

    /// Applies one input: appends the entries it produces through `host`, or refuses it
    /// ([`WorldError::Refused`], nothing appended). This is the only way a world advances,
    /// live, in scratch runs and in replay.
    ///
    /// - [`Input::Event`]: the event, its cascade, then a snapshot marker if one is due.
    /// - [`Input::Marker`]: a snapshot marker.
    /// - [`Input::Manifest`]: the manifest entry, then a snapshot marker if one is due; the
    ///   program switches and the reducers' state carries over by name (see `manifest`).
    /// - [`Input::Receipt`]: handed to the gate, which refuses it today.
    ///
    /// # Errors
    /// [`WorldError::Refused`] for a refused input; host errors (a divergence, in replay);
    /// a module that cannot be loaded.
    pub(crate) fn apply(
        &mut self,
        input: Input,
        host: &mut dyn Host,
    ) -> Result<Applied, WorldError> {
        let start = self.height;
        let mut c = Applied::default();
        match input {
            Input::Event(ev) => {
                self.cascade(ev, host, &mut c)?;
                self.marker_if_due(host, &mut c)?;
            }
            Input::Marker => c.marker = Some(self.mark(host)?),
            Input::Manifest(sw) => {
                self.switch(&sw, host)?;
                self.marker_if_due(host, &mut c)?;
            }
            Input::Receipt(r) => match self.gate.receipt(&self.prog, &r)? {},
        }
        c.entries = self.height - start;
        Ok(c)
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

    /// Delivers an ingress event and everything it derives, breadth first, up to the
    /// derived-event bound.
    fn cascade(
        &mut self,
        ev: EventIn,
        host: &mut dyn Host,
        applied: &mut Applied,
    ) -> Result<(), WorldError> {
        let mut c = Cascade {
            queue: VecDeque::new(),
            applied,
        };
        self.deliver((Origin::Ingress, ev), host, &mut c)?;
        let max = self.prog.genesis.max_derived;
        while let Some((origin, ev)) = c.queue.pop_front() {
            if c.applied.derived >= max {
                let Origin::Derived {
                    cause,
                    reducer,
                    cell,
                } = origin
                else {
                    break;
                };
                let dropped = c.queue.len() + 1;
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
                c.applied.faults += 1;
                break;
            }
            c.applied.derived += 1;
            self.deliver((origin, ev), host, &mut c)?;
        }
        Ok(())
    }

    /// Delivers one event: route, step and check every delivery, then dispatch.
    fn deliver(
        &mut self,
        next: Queued,
        host: &mut dyn Host,
        c: &mut Cascade<'_>,
    ) -> Result<(), WorldError> {
        let prog = Arc::clone(&self.prog);
        let ev = &next.1;
        let mut d = Delivery::default();
        {
            let encoded = Encoded {
                schema: &ev.schema,
                value: cbor::encode(&ev.value),
                key: ev.key.as_ref().map(cbor::encode),
            };
            for target in route::targets(&prog, ev) {
                let target = match target {
                    Ok(t) => t,
                    Err(f) => {
                        d.failed.push(f);
                        continue;
                    }
                };
                let cell = target.cell.as_ref().map(|c| c.bytes.as_slice());
                let prev = match d.staged(target.reducer, cell) {
                    Some(s) => s.clone(),
                    None => self.states.get(target.reducer, cell, host)?,
                };
                let red = &prog.reducers[target.reducer];
                let out = self
                    .stepper
                    .step(&prog, &target, prev.as_ref(), &encoded, host)?
                    .and_then(|bytes| outcome::check(&bytes, red, &prog));
                match out {
                    Ok(outcome) => d.stepped.push(Stepped { target, outcome }),
                    Err((code, message)) => d.failed.push(route::Failure {
                        reducer: target.reducer,
                        cell: target.cell.map(|c| c.key),
                        code,
                        message,
                    }),
                }
            }
        }
        self.dispatch(&prog, next, d, host, c)
    }

    fn marker_if_due(&mut self, host: &mut dyn Host, c: &mut Applied) -> Result<(), WorldError> {
        let every = self.prog.genesis.snapshot_every;
        if every > 0 && self.height - self.last_marker >= every {
            c.marker = Some(self.mark(host)?);
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
        let (states, cells) = self.states.fold(&self.prog, host)?;
        Ok(Snapshot {
            height: self.height,
            head: self.head,
            genesis: self.prog.genesis_id,
            last_marker: self.last_marker,
            states,
            cells,
            manifest: (!self.prog.is_genesis()).then(|| self.prog.manifest()),
        })
    }

    /// Appends a snapshot marker for the current state.
    fn mark(&mut self, host: &mut dyn Host) -> Result<ObjectId, WorldError> {
        let id = self.snapshot(host)?;
        self.push(Body::Snapshot { snapshot: id }, host)?;
        self.last_marker = self.height;
        Ok(id)
    }
}
