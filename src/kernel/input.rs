//! The kernel's inputs: everything that makes a world's journal grow, and, for a recorded
//! entry, the input that produced it.
//!
//! A world advances only by `Machine::apply` (`kernel::machine`) of one [`Input`], live and in replay alike: an ingress event, an on-demand snapshot marker, a
//! switch to another manifest, an effect receipt. Every entry of a journal is either the
//! first entry an input appends or part of that input's *cascade* (derived events, faults, an
//! automatic marker); [`source_of`] says which, so a replay feeds back exactly the inputs of a
//! history and compares everything else.
//!
//! Room for what comes next, without reshaping the type: plan and governance records are new
//! variants (the enum is `#[non_exhaustive]`); the host time an ingress event or a receipt was
//! accepted at is a new member of [`EventIn`] and [`ReceiptIn`], stamped by the host (the
//! kernel never reads a clock) and recorded in the entry the input appends.

use crate::codec::cbor::Value;
use crate::kernel::entry::{Body, Entry, Origin};
pub use crate::kernel::entry::{IdProblem, MAX_ID_BYTES, check_id};
use crate::object::ObjectId;

/// An event to deliver: schema, canonical value, and optional envelope key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventIn {
    /// The schema name.
    pub schema: String,
    /// The canonical value.
    pub value: Value,
    /// The envelope key (`event.key`), if any.
    pub key: Option<Value>,
    /// The sender's idempotency key, if any (ingress events only): recorded in the event's
    /// entry, so a writer can recognise a retried event it has already appended. Reducers
    /// never see it.
    pub id: Option<String>,
}

/// A switch of the world to another manifest, already stored and validated (the library's
/// `World::switch_manifest` stores and checks it; a replay finds it in the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestSwitch {
    /// The new manifest's `air` object.
    pub manifest: ObjectId,
}

/// The id of an effect intent.
///
/// Reducers' intents have no ids yet (they are recorded inside their step); the effects
/// pipeline (issue 14) derives them from the intent's kind, canonical parameters, grant and
/// emission, as 32-byte digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntentId(pub ObjectId);

impl std::fmt::Display for IntentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An effect receipt offered to the world.
///
/// Only the intent it answers is known here; the receipt itself (adapter, status, payload,
/// cost, signature) is issue 14's format. Until then no intent is ever pending, so the kernel
/// refuses every receipt (`Refused::NoPendingIntent`, in `kernel::error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptIn {
    /// The intent the receipt answers.
    pub intent: IntentId,
}

/// One input of the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// An ingress event: appends its event entry and its cascade.
    Event(EventIn),
    /// A snapshot marker on demand: appends one marker entry.
    Marker,
    /// A switch to another validated manifest: appends one manifest entry (then an automatic
    /// marker if one is due).
    Manifest(ManifestSwitch),
    /// An effect receipt: refused today (no intent is pending); issue 14 routes it.
    Receipt(ReceiptIn),
}

/// What produced a recorded entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The entry is the first one this input appends.
    Input(Input),
    /// The entry belongs to the cascade of the input before it (a derived event, a fault, an
    /// automatic marker), so replaying that input reproduces it.
    Cascade,
    /// The genesis entry, which no input produces: replays start after it.
    Genesis,
}

/// The input that produced the recorded entry `e`, or [`Source::Cascade`].
///
/// A snapshot marker is read as the on-demand [`Input::Marker`]: an automatic marker is
/// consumed by the replay of the input whose cascade appends it, so a replay only ever asks
/// about markers that start an input.
#[must_use]
pub fn source_of(e: &Entry) -> Source {
    match &e.body {
        Body::Genesis(_) => Source::Genesis,
        Body::Event(ev) => match ev.origin {
            Origin::Ingress => Source::Input(Input::Event(EventIn {
                schema: ev.schema.clone(),
                value: ev.value.clone(),
                key: ev.key.clone(),
                id: ev.id.clone(),
            })),
            Origin::Derived { .. } => Source::Cascade,
        },
        Body::Fault(_) => Source::Cascade,
        Body::Snapshot { .. } => Source::Input(Input::Marker),
        Body::Manifest { manifest } => Source::Input(Input::Manifest(ManifestSwitch {
            manifest: *manifest,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::entry::{Event, Fault, Genesis};
    use crate::wasm::Limits;

    fn entry(height: u64, body: Body) -> Entry {
        Entry {
            height,
            prev: (height > 0).then(|| ObjectId::from_bytes([1; 32])),
            body,
        }
    }

    fn event(origin: Origin) -> Body {
        let ingress = matches!(origin, Origin::Ingress);
        Body::Event(Event {
            origin,
            schema: "demo/E@1".into(),
            value: Value::Text("v".into()),
            key: Some(Value::Text("k".into())),
            id: ingress.then(|| "retry-1".into()),
            steps: vec![],
        })
    }

    #[test]
    fn idempotency_keys_are_short_printable_text() {
        assert_eq!(check_id("order-17/retry"), Ok(()));
        assert_eq!(check_id(&"é".repeat(128)), Ok(()));
        assert_eq!(check_id(""), Err(IdProblem::Empty));
        assert_eq!(check_id(&"x".repeat(257)), Err(IdProblem::TooLong(257)));
        assert_eq!(check_id("a\nb"), Err(IdProblem::Control(10, 1)));
        assert_eq!(check_id("ab\u{7f}"), Err(IdProblem::Control(0x7f, 2)));
    }

    #[test]
    fn each_entry_kind_has_its_source() {
        let m = ObjectId::from_bytes([7; 32]);
        let cases = [
            (
                entry(
                    0,
                    Body::Genesis(Genesis {
                        manifest: m,
                        modules: vec![],
                        limits: Limits::default(),
                        snapshot_every: 0,
                        max_derived: 1,
                    }),
                ),
                Source::Genesis,
            ),
            (
                entry(1, event(Origin::Ingress)),
                Source::Input(Input::Event(EventIn {
                    schema: "demo/E@1".into(),
                    value: Value::Text("v".into()),
                    key: Some(Value::Text("k".into())),
                    id: Some("retry-1".into()),
                })),
            ),
            (
                entry(
                    2,
                    event(Origin::Derived {
                        cause: 1,
                        reducer: "demo/R@1".into(),
                        cell: None,
                    }),
                ),
                Source::Cascade,
            ),
            (
                entry(
                    3,
                    Body::Fault(Fault {
                        cause: 1,
                        reducer: "demo/R@1".into(),
                        cell: None,
                        code: "trap".into(),
                        message: "trap".into(),
                    }),
                ),
                Source::Cascade,
            ),
            (
                entry(4, Body::Snapshot { snapshot: m }),
                Source::Input(Input::Marker),
            ),
            (
                entry(5, Body::Manifest { manifest: m }),
                Source::Input(Input::Manifest(ManifestSwitch { manifest: m })),
            ),
        ];
        for (e, want) in cases {
            assert_eq!(source_of(&e), want, "{}", e.kind_word());
        }
    }
}
