//! The counter example (`demo/Counter@1`, world `examples/worlds/counter`).
//!
//! `Start {target}` begins counting towards `target`; each `Tick` counts one (also while
//! idle); reaching the target while counting returns to `Idle` and emits
//! `demo/CounterDone@1 {count}`; `Reset` deletes the state.

#![cfg_attr(target_arch = "wasm32", no_std)]

use aos_reducer::{Context, Output, Reducer, aos_reducer};
use serde::{Deserialize, Serialize};

/// `demo/CounterPc@1` = variant {Idle: unit, Counting: unit}
#[derive(Serialize, Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pc {
    /// Not counting towards a target.
    #[default]
    Idle,
    /// Counting towards `target`.
    Counting,
}

/// `demo/CounterState@1` = record {pc: ref demo/CounterPc@1, count: nat, target: nat}
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct State {
    /// Where the counter is.
    pub pc: Pc,
    /// Ticks since the last start.
    pub count: u64,
    /// The count at which counting ends.
    pub target: u64,
}

/// `demo/CounterEvent@1` = variant {Start: record {target: nat}, Tick: unit, Reset: unit}
#[derive(Deserialize, Debug)]
pub enum Event {
    /// Start counting from zero towards `target`.
    Start {
        /// The count to reach.
        target: u64,
    },
    /// Count one.
    Tick,
    /// Forget everything.
    Reset,
}

/// `demo/CounterDone@1` = record {count: nat}
#[derive(Serialize, Debug)]
pub struct Done {
    /// The count reached.
    pub count: u64,
}

/// The reducer.
pub struct Counter;

impl Reducer for Counter {
    type State = State;
    type Event = Event;

    fn step(state: Option<State>, event: Event, _ctx: &Context, out: &mut Output) -> Option<State> {
        let mut s = state.unwrap_or_default();
        match event {
            Event::Start { target } => {
                s = State {
                    pc: Pc::Counting,
                    count: 0,
                    target,
                };
            }
            Event::Tick => {
                s.count = s.count.saturating_add(1);
                if s.pc == Pc::Counting && s.count >= s.target {
                    s.pc = Pc::Idle;
                    out.emit_event("demo/CounterDone@1", &Done { count: s.count });
                }
            }
            Event::Reset => return None,
        }
        Some(s)
    }
}

aos_reducer!(Counter);
