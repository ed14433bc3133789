//! Write AgentOS / AIR reducers (and pure components) in Rust.
//!
//! A reducer is a WebAssembly module that the world runs once per event: it gets the
//! current state and the event, and returns the new state plus any domain events and
//! effects it wants to emit (AIR v1 §5). This crate does the ABI part — the `alloc` and
//! `step` exports, the CBOR envelopes, memory management and trapping — so a reducer is
//! plain Rust over serde types:
//!
//! ```
//! use aos_reducer::{Context, Output, Reducer, aos_reducer};
//! use serde::{Deserialize, Serialize};
//!
//! /// `demo/CounterState@1` = record {pc: variant {Idle: unit, Counting: unit}, count: nat, target: nat}
//! #[derive(Serialize, Deserialize, Default)]
//! struct State {
//!     pc: Pc,
//!     count: u64,
//!     target: u64,
//! }
//!
//! #[derive(Serialize, Deserialize, Default, PartialEq)]
//! enum Pc {
//!     #[default]
//!     Idle,
//!     Counting,
//! }
//!
//! /// `demo/CounterEvent@1` = variant {Start: record {target: nat}, Tick: unit, Reset: unit}
//! #[derive(Deserialize)]
//! enum Event {
//!     Start { target: u64 },
//!     Tick,
//!     Reset,
//! }
//!
//! /// `demo/CounterDone@1` = record {count: nat}
//! #[derive(Serialize)]
//! struct Done {
//!     count: u64,
//! }
//!
//! struct Counter;
//!
//! impl Reducer for Counter {
//!     type State = State;
//!     type Event = Event;
//!
//!     fn step(state: Option<State>, event: Event, _ctx: &Context, out: &mut Output) -> Option<State> {
//!         let mut s = state.unwrap_or_default();
//!         match event {
//!             Event::Start { target } => s = State { pc: Pc::Counting, count: 0, target },
//!             Event::Tick => {
//!                 s.count += 1;
//!                 if s.pc == Pc::Counting && s.count >= s.target {
//!                     s.pc = Pc::Idle;
//!                     out.emit_event("demo/CounterDone@1", &Done { count: s.count });
//!                 }
//!             }
//!             Event::Reset => return None, // deletes the state
//!         }
//!         Some(s)
//!     }
//! }
//!
//! aos_reducer!(Counter);
//! # fn main() {}
//! ```
//!
//! Build it as a `cdylib` for `wasm32-unknown-unknown`; `docs/reducers.md` in the `aos`
//! repository covers the crate setup, the serde ↔ AIR type mapping and the build flags.
//!
//! # What the glue does
//!
//! [`aos_reducer!`] exports `alloc(len: i32) -> i32` and `step` in the *return-pointer*
//! shape (B) of AIR v1 §5: `step(ret_ptr: i32, ptr: i32, len: i32)`, which writes the output
//! region as two little-endian `i32`s (pointer, length) at `ret_ptr`. Every step:
//!
//! 1. parses the input envelope `{version, state, event {schema, value, key?}, ctx {key,
//!    cell_mode}}`;
//! 2. decodes `state` (if not null) into [`Reducer::State`] and `event.value` into
//!    [`Reducer::Event`];
//! 3. calls [`Reducer::step`];
//! 4. encodes the new state and everything collected in [`Output`] as the output envelope
//!    `{ann, state, effects, domain_events}` (definite lengths, canonical key order).
//!
//! If anything cannot be decoded, or the reducer panics, the module traps (`unreachable`);
//! the host turns that into a deterministic fault in the journal, and the world's state is
//! unchanged.
//!
//! # Features
//!
//! - `bump-alloc` (default): installs a bump allocator as the `#[global_allocator]` on
//!   wasm32. It never frees, which is right for reducers: the host runs every step in a fresh
//!   instance, so all memory is dropped at once when the step ends.
//! - `panic-handler` (default): installs a `#[panic_handler]` on wasm32 that traps at once
//!   (no message formatting, so no formatting code in the module).
//!
//! Turn them off (`default-features = false`) to bring your own allocator or panic handler.

#![no_std]
#![warn(missing_docs)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod de;
mod rt;
mod ser;

pub use de::{Error, from_cbor};

/// Everything the glue needs from the generated exports; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::rt::{alloc_export, run_export, step_export};
}

/// A reducer: a pure function from (state, event) to new state plus emitted events and
/// effects.
pub trait Reducer {
    /// The state's type; mirrors the module's `abi.reducer.state` schema.
    type State: Serialize + DeserializeOwned;
    /// The event's type; mirrors the module's `abi.reducer.event` schema. A reducer routed
    /// several event schemas uses a type that decodes all of them (see [`Context::schema`]).
    type Event: DeserializeOwned;

    /// Handles one event.
    ///
    /// `state` is `None` on the first event ever (or, in cell mode, the first event of the
    /// cell). Return `Some(state)` to store it, or `None` to delete the state (in cell mode:
    /// the cell). Panicking traps the step, which the world records as a fault.
    fn step(
        state: Option<Self::State>,
        event: Self::Event,
        ctx: &Context,
        out: &mut Output,
    ) -> Option<Self::State>;
}

/// A pure component: one input value in, one output value out, no state (AIR v1 §5).
pub trait Pure {
    /// The input's type; mirrors `abi.pure.input`.
    type Input: DeserializeOwned;
    /// The output's type; mirrors `abi.pure.output`.
    type Output: Serialize;

    /// Computes the output. Panicking traps the call.
    fn run(input: Self::Input) -> Self::Output;
}

/// What a reducer knows about the event besides its value.
#[derive(Debug)]
pub struct Context {
    pub(crate) schema: String,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) event_key: Option<Vec<u8>>,
    pub(crate) cell_mode: bool,
}

impl Context {
    /// A context for an event of schema `schema`, outside cell mode; for calling
    /// [`Reducer::step`] directly in host-side unit tests (the glue builds the real one).
    #[must_use]
    pub fn new(schema: &str) -> Self {
        Self {
            schema: schema.into(),
            key: None,
            event_key: None,
            cell_mode: false,
        }
    }

    /// This context in cell mode with cell key `key` (for host-side unit tests).
    #[must_use]
    pub fn with_key<K: Serialize + ?Sized>(mut self, key: &K) -> Self {
        self.key = Some(to_cbor(key));
        self.cell_mode = true;
        self
    }

    /// The event's schema name, e.g. `demo/CounterEvent@1`.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Whether the reducer runs in cell mode (a keyed reducer, one state per key).
    #[must_use]
    pub fn cell_mode(&self) -> bool {
        self.cell_mode
    }

    /// The cell's key as canonical CBOR of the module's `key_schema` (cell mode only).
    #[must_use]
    pub fn key_bytes(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The cell's key decoded as `K` (e.g. `String` for a `text` key): `None` outside cell
    /// mode.
    ///
    /// # Panics
    ///
    /// Traps if the key does not decode as `K` — the key type is fixed by the module's
    /// `key_schema`, so that is a bug in the reducer.
    #[must_use]
    pub fn key<K: DeserializeOwned>(&self) -> Option<K> {
        self.key.as_deref().map(|k| decode_or_trap(k))
    }

    /// The key the event itself carried in the envelope (`event.key`), as CBOR, if any.
    #[must_use]
    pub fn event_key_bytes(&self) -> Option<&[u8]> {
        self.event_key.as_deref()
    }
}

/// What a step emits besides its new state: domain events, effects and an annotation.
///
/// Values are encoded with serde on the spot; the kernel checks and canonicalizes them
/// against their schemas when it journals the step.
#[derive(Debug, Default)]
pub struct Output {
    pub(crate) events: Vec<EmittedEvent>,
    pub(crate) effects: Vec<EmittedEffect>,
    pub(crate) ann: Option<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) struct EmittedEvent {
    pub(crate) schema: String,
    pub(crate) value: Vec<u8>,
    pub(crate) key: Option<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) struct EmittedEffect {
    pub(crate) kind: String,
    pub(crate) params: Vec<u8>,
    pub(crate) cap_slot: Option<String>,
}

impl Output {
    /// Emits a domain event of schema `schema` (e.g. `demo/CounterDone@1`). The world routes
    /// it like any other event, after this step.
    #[inline(never)]
    pub fn emit_event<T: Serialize + ?Sized>(&mut self, schema: &str, value: &T) {
        self.events.push(EmittedEvent {
            schema: schema.into(),
            value: to_cbor(value),
            key: None,
        });
    }

    /// Emits a domain event carrying an explicit key (`key` is encoded as CBOR of the
    /// target's key schema), for events routed to a keyed reducer.
    #[inline(never)]
    pub fn emit_event_keyed<T: Serialize + ?Sized, K: Serialize + ?Sized>(
        &mut self,
        schema: &str,
        value: &T,
        key: &K,
    ) {
        self.events.push(EmittedEvent {
            schema: schema.into(),
            value: to_cbor(value),
            key: Some(to_cbor(key)),
        });
    }

    /// Requests an effect of kind `kind` (e.g. `timer.set`) with `params` (typed by the
    /// effect's `params_schema`), authorized through the module's cap slot `cap_slot` if
    /// given. The receipt comes back later as an event (e.g. `sys/TimerFired@1`).
    #[inline(never)]
    pub fn emit_effect<T: Serialize + ?Sized>(
        &mut self,
        kind: &str,
        params: &T,
        cap_slot: Option<&str>,
    ) {
        self.effects.push(EmittedEffect {
            kind: kind.into(),
            params: to_cbor(params),
            cap_slot: cap_slot.map(Into::into),
        });
    }

    /// The domain events emitted so far as (schema, CBOR value), in order.
    pub fn events(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.events
            .iter()
            .map(|e| (e.schema.as_str(), e.value.as_slice()))
    }

    /// The effects emitted so far as (kind, CBOR params, cap slot), in order.
    pub fn effects(&self) -> impl Iterator<Item = (&str, &[u8], Option<&str>)> {
        self.effects
            .iter()
            .map(|e| (e.kind.as_str(), e.params.as_slice(), e.cap_slot.as_deref()))
    }

    /// The annotation, if one was set, as CBOR.
    #[must_use]
    pub fn annotation(&self) -> Option<&[u8]> {
        self.ann.as_deref()
    }

    /// Sets the step's annotation (typed by `abi.reducer.annotations`); the last call wins.
    #[inline(never)]
    pub fn annotate<T: Serialize + ?Sized>(&mut self, ann: &T) {
        self.ann = Some(to_cbor(ann));
    }
}

/// Encodes `value` as CBOR the way the glue does (definite lengths; unit variants as bare
/// text; struct fields in declaration order — the kernel canonicalizes).
///
/// # Panics
///
/// Traps if serialization fails (only a custom `Serialize` impl that errors can cause it).
#[must_use]
#[inline(never)]
pub fn to_cbor<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Room for typical values up front: growing a Vec costs more fuel than the unused
    // capacity costs memory (the bump allocator never frees anyway).
    let mut w = ser::Writer {
        out: Vec::with_capacity(128),
    };
    match value.serialize(&mut w) {
        Ok(()) => w.out,
        Err(_) => trap(),
    }
}

#[inline(never)]
pub(crate) fn decode_or_trap<T: DeserializeOwned>(bytes: &[u8]) -> T {
    match from_cbor(bytes) {
        Ok(v) => v,
        Err(_) => trap(),
    }
}

/// Ends the call with a WebAssembly trap (`unreachable`); off wasm32 (host-side unit tests)
/// it panics instead.
#[cold]
pub fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    panic!("aos-reducer trap");
}

/// Exports `alloc` and `step` for a [`Reducer`]: `aos_reducer!(MyReducer);` once per crate.
///
/// `step` has the return-pointer shape `step(ret_ptr: i32, ptr: i32, len: i32)`.
#[macro_export]
macro_rules! aos_reducer {
    ($reducer:ty) => {
        /// ABI export: reserves `len` bytes for the host to write into.
        #[unsafe(no_mangle)]
        pub extern "C" fn alloc(len: i32) -> i32 {
            $crate::__private::alloc_export(len)
        }

        /// ABI export: runs one step on the input at `ptr..ptr+len`, writes the output
        /// region (pointer, length) as two little-endian i32 at `ret_ptr`.
        ///
        /// # Safety
        ///
        /// Called by the host with regions it obtained from `alloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn step(ret_ptr: i32, ptr: i32, len: i32) {
            // SAFETY: the host passes regions it got from `alloc` and filled.
            unsafe { $crate::__private::step_export::<$reducer>(ret_ptr, ptr, len) }
        }
    };
}

/// Exports `alloc` and `run` for a [`Pure`] component: `aos_pure!(MyComponent);`.
///
/// `run` has the same return-pointer shape as a reducer's `step`; its input is the CBOR of
/// the input value and its output the CBOR of the output value.
///
/// ```
/// use aos_reducer::{Pure, aos_pure};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize)]
/// struct Input {
///     words: Vec<String>,
/// }
///
/// #[derive(Serialize)]
/// struct Stats {
///     count: u64,
///     longest: Option<String>,
/// }
///
/// struct WordStats;
///
/// impl Pure for WordStats {
///     type Input = Input;
///     type Output = Stats;
///
///     fn run(input: Input) -> Stats {
///         Stats {
///             count: input.words.len() as u64,
///             longest: input.words.into_iter().max_by_key(|w| w.len()),
///         }
///     }
/// }
///
/// aos_pure!(WordStats);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! aos_pure {
    ($component:ty) => {
        /// ABI export: reserves `len` bytes for the host to write into.
        #[unsafe(no_mangle)]
        pub extern "C" fn alloc(len: i32) -> i32 {
            $crate::__private::alloc_export(len)
        }

        /// ABI export: runs the component on the input at `ptr..ptr+len`, writes the output
        /// region (pointer, length) as two little-endian i32 at `ret_ptr`.
        ///
        /// # Safety
        ///
        /// Called by the host with regions it obtained from `alloc`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn run(ret_ptr: i32, ptr: i32, len: i32) {
            // SAFETY: the host passes regions it got from `alloc` and filled.
            unsafe { $crate::__private::run_export::<$component>(ret_ptr, ptr, len) }
        }
    };
}

/// `#[serde(with = "aos_reducer::bytes")]` for a `Vec<u8>` field of AIR type `bytes`: a CBOR
/// byte string instead of serde's default array of integers.
pub mod bytes {
    use alloc::vec::Vec;
    use core::fmt;

    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::ser::Serializer;

    /// Serializes `v` as a byte string.
    ///
    /// # Errors
    ///
    /// As the serializer's.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Deserializes a byte string (an array of small integers is accepted too).
    ///
    /// # Errors
    ///
    /// If the value is neither.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.into())
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}
