//! The counter of `examples/worlds/counter` (`demo/Counter@1`), written as someone who has
//! read the ABI (docs/reducers.md) but not the SDK would write it: serde types for the
//! envelope, ciborium to read and write CBOR, `Vec` for every buffer.
//!
//! `Start {target}` begins counting towards `target`; each `Tick` counts one (also while
//! idle); reaching the target while counting returns to `Idle` and emits
//! `demo/CounterDone@1 {count}`; `Reset` deletes the state.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// `demo/CounterPc@1`. AIR writes a unit variant as the map `{"Tag": null}`, which ciborium
/// reads as a variant holding `()`; so the unit variants here hold one.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pc {
    /// Not counting towards a target.
    Idle(()),
    /// Counting towards `target`.
    Counting(()),
}

impl Default for Pc {
    fn default() -> Self {
        Self::Idle(())
    }
}

/// `demo/CounterState@1`
#[derive(Serialize, Deserialize, Default, Debug, PartialEq, Eq)]
pub struct State {
    /// Where the counter is.
    pub pc: Pc,
    /// Ticks since the last start.
    pub count: u64,
    /// The count at which counting ends.
    pub target: u64,
}

/// `demo/CounterEvent@1`
#[derive(Deserialize, Debug)]
pub enum Event {
    /// Start counting from zero towards `target`.
    Start {
        /// The count to reach.
        target: u64,
    },
    /// Count one.
    Tick(()),
    /// Forget everything.
    Reset(()),
}

/// `demo/CounterDone@1`
#[derive(Serialize, Debug)]
pub struct Done {
    /// The count reached.
    pub count: u64,
}

/// The step input envelope.
#[derive(Deserialize)]
struct Input {
    version: u64,
    state: Option<ByteBuf>,
    event: InEvent,
}

#[derive(Deserialize)]
struct InEvent {
    value: ByteBuf,
}

/// The step output envelope.
#[derive(Serialize)]
struct Output {
    ann: Option<ByteBuf>,
    state: Option<ByteBuf>,
    effects: Vec<Effect>,
    domain_events: Vec<OutEvent>,
}

#[derive(Serialize)]
struct Effect {
    kind: String,
    params_cbor: ByteBuf,
}

#[derive(Serialize)]
struct OutEvent {
    value: ByteBuf,
    schema: String,
}

fn to_cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("CBOR encoding");
    out
}

/// The reducer's logic: the new state (or none) and the events it emits.
pub fn reduce(state: Option<State>, event: Event) -> (Option<State>, Vec<(String, Vec<u8>)>) {
    let mut s = state.unwrap_or_default();
    let mut events = Vec::new();
    match event {
        Event::Start { target } => {
            s = State {
                pc: Pc::Counting(()),
                count: 0,
                target,
            };
        }
        Event::Tick(()) => {
            s.count = s.count.saturating_add(1);
            if s.pc == Pc::Counting(()) && s.count >= s.target {
                s.pc = Pc::Idle(());
                let done = to_cbor(&Done { count: s.count });
                events.push(("demo/CounterDone@1".to_owned(), done));
            }
        }
        Event::Reset(()) => return (None, events),
    }
    (Some(s), events)
}

/// One step: the output envelope for the input envelope `input`.
///
/// # Panics
/// On an input that is not the envelope the ABI describes (a panic traps the step).
#[must_use]
pub fn step_bytes(input: &[u8]) -> Vec<u8> {
    let input: Input = ciborium::from_reader(input).expect("input envelope");
    assert_eq!(input.version, 1, "ABI version");
    let state: Option<State> = input
        .state
        .map(|b| ciborium::from_reader(&b[..]).expect("state"));
    let event: Event = ciborium::from_reader(&input.event.value[..]).expect("event");
    let (state, events) = reduce(state, event);
    to_cbor(&Output {
        ann: None,
        state: state.map(|s| ByteBuf::from(to_cbor(&s))),
        effects: Vec::new(),
        domain_events: events
            .into_iter()
            .map(|(schema, value)| OutEvent {
                value: ByteBuf::from(value),
                schema,
            })
            .collect(),
    })
}

/// Memory for the host to write into; never freed.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: i32) -> i32 {
    let mut buf = Vec::<u8>::with_capacity(usize::try_from(len).unwrap_or(0));
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as i32
}

/// The ABI's `step`: reads the input at `ptr`, writes the output's pointer and length at
/// `ret`.
///
/// # Safety
/// The host passes memory it obtained from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn step(ret: i32, ptr: i32, len: i32) {
    // SAFETY: the host wrote `len` bytes at `ptr`, memory it got from `alloc`.
    let input = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) };
    let out = step_bytes(input).leak();
    let words = [out.as_ptr() as i32, out.len() as i32];
    // SAFETY: `ret` is 8 bytes from `alloc`, which has no alignment guarantee.
    unsafe {
        std::ptr::write_unaligned(ret as *mut i32, words[0]);
        std::ptr::write_unaligned((ret + 4) as *mut i32, words[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_to_the_target() {
        let tick_map = to_cbor(&std::collections::BTreeMap::from([("Tick", ())]));
        let tick: Event = ciborium::from_reader(&tick_map[..]).unwrap();
        assert!(matches!(tick, Event::Tick(())));
        let (s, ev) = reduce(None, Event::Start { target: 2 });
        let (s, _) = reduce(s, Event::Tick(()));
        let (s, ev2) = reduce(s, Event::Tick(()));
        assert!(ev.is_empty());
        assert_eq!(ev2.len(), 1);
        assert_eq!(s.unwrap().pc, Pc::Idle(()));
    }
}

#[cfg(test)]
mod envelope_tests {
    use super::*;
    use ciborium::Value as V;

    fn t(s: &str) -> V {
        V::Text(s.into())
    }

    #[test]
    fn a_tick_on_a_stored_state() {
        let state = to_cbor(&V::Map(vec![
            (t("count"), V::Integer(0.into())),
            (t("pc"), V::Map(vec![(t("Counting"), V::Null)])),
            (t("target"), V::Integer(3.into())),
        ]));
        let value = to_cbor(&V::Map(vec![(t("Tick"), V::Null)]));
        let input = to_cbor(&V::Map(vec![
            (t("ctx"), V::Map(vec![(t("key"), V::Null), (t("cell_mode"), V::Bool(false))])),
            (t("event"), V::Map(vec![(t("value"), V::Bytes(value)), (t("schema"), t("demo/CounterEvent@1"))])),
            (t("state"), V::Bytes(state)),
            (t("version"), V::Integer(1.into())),
        ]));
        let out = step_bytes(&input);
        assert!(!out.is_empty());
    }
}
