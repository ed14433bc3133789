//! Dispatch: turning one event's deliveries into journal entries, in the order objects-spec
//! §12 fixes: the event entry (with every successful step, each effect intent decided by the
//! [`Gate`]), then the staged states take effect, then one fault entry per failed delivery,
//! then the emitted events join the cascade's queue. The [`PlanEngine`] sees every event.
//!
//! The gate and the plan engine are the seams the next issues fill: the effects pipeline
//! (caps, policy, budgets, intents with ids, receipts; issue 14) is a [`Gate`], the plan
//! executor (triggers, instances; issue 15) a [`PlanEngine`]. Today's [`RecordGate`] and
//! [`NoPlans`] keep format 1's behaviour exactly.

use std::collections::VecDeque;

use super::outcome::Outcome;
use super::route::{Failure, Target};
use super::{Applied, Host, Machine};
use crate::codec::cbor::Value;
use crate::kernel::entry::{self, Body, Origin};
use crate::kernel::error::{Refused, WorldError};
use crate::kernel::input::{EventIn, ReceiptIn};
use crate::kernel::program::{Program, ReducerDef};

/// Where an effect intent comes from: a step of a reducer.
pub struct Emitter<'a> {
    /// The reducer.
    pub reducer: &'a ReducerDef,
    /// Its cell's key, for a keyed reducer.
    pub cell: Option<&'a Value>,
    /// The height the entry of the event being delivered will have.
    pub height: u64,
    /// The intent's position among those the step returned.
    pub index: usize,
}

/// What the gate made of an effect intent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Record the intent inside its step as `{kind, params, cap_slot}` (objects-spec §12);
    /// nothing executes it.
    Record(entry::Effect),
}

/// What an accepted receipt leads to. No receipt is accepted before intents are pending
/// (issue 14 adds the variants: the receipt's entry, the event routed to its origin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {}

/// Decides every effect intent a step returns, and every receipt offered to the world.
pub trait Gate: Send {
    /// Decides `intent`, returned by the step `from` (already canonical for its kind's
    /// parameter schema and declared by the reducer).
    fn admit(&mut self, prog: &Program, from: &Emitter<'_>, intent: entry::Effect) -> Admission;

    /// Takes a receipt, or refuses it.
    ///
    /// # Errors
    /// [`Refused::NoPendingIntent`] when no pending intent has the receipt's intent id.
    fn receipt(&mut self, prog: &Program, receipt: &ReceiptIn) -> Result<Settled, Refused>;
}

/// Today's gate: records every intent in its step as it was returned, and, since it never
/// leaves an intent pending, refuses every receipt. Issue 14 replaces it with the effects
/// pipeline (grants, constraints, budgets, policy, intent and decision entries).
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordGate;

impl Gate for RecordGate {
    fn admit(&mut self, _: &Program, _: &Emitter<'_>, intent: entry::Effect) -> Admission {
        Admission::Record(intent)
    }

    fn receipt(&mut self, _: &Program, receipt: &ReceiptIn) -> Result<Settled, Refused> {
        Err(Refused::NoPendingIntent {
            intent: receipt.intent,
        })
    }
}

/// Sees every event after the reducers it is routed to ran, before its entry is appended.
pub trait PlanEngine: Send {
    /// Event `event`, whose entry will have height `height`.
    fn event(&mut self, prog: &Program, height: u64, event: &entry::Event);
}

/// Today's plan engine: starts nothing (a world runs no plans before issue 15, which starts
/// instances here from the manifest's triggers).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPlans;

impl PlanEngine for NoPlans {
    fn event(&mut self, _: &Program, _: u64, _: &entry::Event) {}
}

/// A successful delivery: where it went and its checked outcome.
pub(super) struct Stepped {
    pub target: Target,
    pub outcome: Outcome,
}

/// What delivering one event to every target produced, before anything is appended.
#[derive(Default)]
pub(super) struct Delivery {
    /// Successful steps, in routing order.
    pub stepped: Vec<Stepped>,
    /// Failed deliveries, in routing order.
    pub failed: Vec<Failure>,
}

impl Delivery {
    /// The state an earlier step of this delivery left reducer `reducer` (cell `cell`) in,
    /// if one did: later routes to the same place see it.
    pub(super) fn staged(
        &self,
        reducer: usize,
        cell: Option<&[u8]>,
    ) -> Option<&Option<super::state::StateVal>> {
        self.stepped
            .iter()
            .rev()
            .find(|s| {
                s.target.reducer == reducer
                    && s.target.cell.as_ref().map(|c| c.bytes.as_slice()) == cell
            })
            .map(|s| &s.outcome.state)
    }
}

/// An event to deliver and where it came from.
pub(super) type Queued = (Origin, EventIn);

/// A cascade in progress: the derived events waiting, breadth first, and the counts of what
/// the input appended so far.
pub(super) struct Cascade<'a> {
    pub queue: VecDeque<Queued>,
    pub applied: &'a mut Applied,
}

impl Machine {
    /// Appends the entries of event `ev` (from `origin`) delivered as `d` under `prog` (the
    /// program in force), applies its staged states and queues the events its steps emitted.
    pub(super) fn dispatch(
        &mut self,
        prog: &Program,
        (origin, ev): Queued,
        mut d: Delivery,
        host: &mut dyn Host,
        c: &mut Cascade<'_>,
    ) -> Result<(), WorldError> {
        let height = self.height + 1;
        let mut steps = Vec::with_capacity(d.stepped.len());
        let mut emitted: Vec<(usize, Option<Value>, EventIn)> = Vec::new();
        for s in &mut d.stepped {
            let red = &prog.reducers[s.target.reducer];
            let cell = s.target.cell.as_ref().map(|c| &c.key);
            let effects = std::mem::take(&mut s.outcome.effects)
                .into_iter()
                .enumerate()
                .map(|(index, intent)| {
                    let from = Emitter {
                        reducer: red,
                        cell,
                        height,
                        index,
                    };
                    match self.gate.admit(prog, &from, intent) {
                        Admission::Record(e) => e,
                    }
                })
                .collect();
            steps.push(entry::Step {
                reducer: red.name.as_str().to_owned(),
                cell: cell.cloned(),
                state: s.outcome.state.as_ref().map(|st| st.id),
                effects,
            });
            for e in std::mem::take(&mut s.outcome.events) {
                emitted.push((s.target.reducer, cell.cloned(), e));
            }
        }
        let event = entry::Event {
            origin,
            schema: ev.schema,
            value: ev.value,
            key: ev.key,
            id: ev.id,
            steps,
        };
        self.plans.event(prog, height, &event);
        let h = self.push(Body::Event(event), host)?;
        // State changes take effect when the event's entry is appended.
        for s in d.stepped {
            self.states.set(
                s.target.reducer,
                s.target.cell.map(|c| c.bytes),
                s.outcome.state,
            );
        }
        for f in d.failed {
            self.push(
                Body::Fault(entry::Fault {
                    cause: h,
                    reducer: prog.reducers[f.reducer].name.as_str().to_owned(),
                    cell: f.cell,
                    code: f.code.into(),
                    message: f.message,
                }),
                host,
            )?;
            c.applied.faults += 1;
        }
        for (reducer, cell, e) in emitted {
            c.queue.push_back((
                Origin::Derived {
                    cause: h,
                    reducer: prog.reducers[reducer].name.as_str().to_owned(),
                    cell,
                },
                e,
            ));
        }
        Ok(())
    }
}
