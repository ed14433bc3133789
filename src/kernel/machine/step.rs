//! Stepping: one reducer step on one event, compiling the reducer's module on first use.

use std::sync::OnceLock;

use super::Host;
use super::route::Target;
use super::state::StateVal;
use crate::kernel::envelope::{StepInput, encode_input};
use crate::kernel::error::{ModuleError, WorldError};
use crate::kernel::program::Program;
use crate::wasm::{Fault, ReducerModule};

/// An event as every step reads it: its schema, its value and key encoded once.
pub(super) struct Encoded<'e> {
    pub schema: &'e str,
    pub value: Vec<u8>,
    pub key: Option<Vec<u8>>,
}

/// Why a step failed: a fault code (objects-spec §12) and message.
pub(super) type StepFault = (&'static str, String);

/// A machine's compiled reducer modules, one per reducer of the program in force, each
/// compiled on its first step. A wasmi engine is shared by everything compiled with it, so
/// machines replaying in parallel must not share modules: each machine has its own.
pub(super) struct Stepper {
    modules: Vec<OnceLock<ReducerModule>>,
    /// The step input envelope, reused.
    input: Vec<u8>,
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

impl Stepper {
    /// Nothing compiled yet for `prog`.
    pub(super) fn new(prog: &Program) -> Self {
        Self {
            modules: prog.reducers.iter().map(|_| OnceLock::new()).collect(),
            input: Vec::new(),
        }
    }

    /// Moves to program `to` from `from`, keeping the compiled module of every reducer whose
    /// blob `to` keeps (the limits never change within a world).
    pub(super) fn switch(&mut self, from: &Program, to: &Program) {
        let mut old = std::mem::take(&mut self.modules);
        self.modules = to
            .reducers
            .iter()
            .map(|r| {
                let kept = from
                    .reducers
                    .iter()
                    .position(|o| o.wasm == r.wasm)
                    .and_then(|j| old[j].take());
                kept.map_or_else(OnceLock::new, OnceLock::from)
            })
            .collect();
    }

    fn module(
        &self,
        prog: &Program,
        i: usize,
        host: &dyn Host,
    ) -> Result<&ReducerModule, WorldError> {
        if let Some(m) = self.modules[i].get() {
            return Ok(m);
        }
        let red = &prog.reducers[i];
        let bytes = host.wasm(&red.wasm).map_err(ModuleError::Build)?;
        let m = ReducerModule::compile(&bytes, &prog.genesis.limits)
            .map_err(|e| ModuleError::Build(format!("module {}: {e}", red.name)))?;
        Ok(self.modules[i].get_or_init(|| m))
    }

    /// Runs the step of `target` on `ev` from state `prev`, returning the bytes it output
    /// or, if the step faulted, the fault. An error is a module that cannot be loaded.
    pub(super) fn step(
        &mut self,
        prog: &Program,
        target: &Target,
        prev: Option<&StateVal>,
        ev: &Encoded<'_>,
        host: &dyn Host,
    ) -> Result<Result<Vec<u8>, StepFault>, WorldError> {
        let red = &prog.reducers[target.reducer];
        let mut input = std::mem::take(&mut self.input);
        input.clear();
        encode_input(
            &StepInput {
                state: prev.map(|s| &*s.bytes),
                schema: ev.schema,
                value: &ev.value,
                event_key: ev.key.as_deref(),
                ctx_key: target.cell.as_ref().map(|c| c.bytes.as_slice()),
                cell_mode: red.keyed(),
            },
            &mut input,
        );
        let out = self
            .module(prog, target.reducer, host)
            .map(|m| m.step(&input));
        self.input = input;
        Ok(out?
            .map(|o| o.bytes)
            .map_err(|f| (fault_code(&f), f.to_string())))
    }
}
