//! Journal entries: the hash-chained history of a world (objects-spec §12).
//!
//! Every entry is an object of kind `entry` whose payload is a canonical CBOR map holding its
//! `height` (0 for the genesis entry), a link `prev` to its predecessor (absent only at
//! genesis) and a `kind` with the members of that kind. Because each entry names its
//! predecessor, the id of a head entry names the whole history: two histories are equal if
//! and only if their heads are.
//!
//! Kinds written today: [`Body::Genesis`], [`Body::Event`] (ingress and derived domain
//! events, with the outcome of every delivery), [`Body::Fault`], [`Body::Snapshot`] and
//! [`Body::Manifest`] (a switch to another manifest, added after the first format: a reader
//! that predates it rejects the entry as an unknown kind). The `kind` word leaves room for
//! effect intents, receipts, policy decisions, plan and governance records, which later
//! versions add as new words.

use crate::codec::cbor::{self, Value};
use crate::codec::shape::{
    Fields, MapEncoder, MapWrite, MapWriter, Member, Path, Problem, ShapeError,
};
use crate::object::{self, Kind, ObjectId};
use crate::wasm::Limits;

/// The journal format written in genesis entries.
pub const FORMAT: u64 = 1;

/// The most bytes an idempotency key (`kernel::input::EventIn::id`) may have.
pub const MAX_ID_BYTES: usize = 256;

/// Why text is not an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdProblem {
    /// The key is empty.
    #[error("an idempotency key is not empty")]
    Empty,
    /// The key is longer than [`MAX_ID_BYTES`].
    #[error("an idempotency key has at most {MAX_ID_BYTES} bytes (this one has {0})")]
    TooLong(usize),
    /// The key holds a control character.
    #[error("an idempotency key holds no control character (U+{0:04X} at byte {1})")]
    Control(u32, usize),
}

/// Checks that `id` is an idempotency key: 1 to [`MAX_ID_BYTES`] bytes of text without
/// control characters (objects-spec §12).
///
/// # Errors
/// What is wrong with it.
pub fn check_id(id: &str) -> Result<(), IdProblem> {
    if id.is_empty() {
        return Err(IdProblem::Empty);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdProblem::TooLong(id.len()));
    }
    match id.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, c)) => Err(IdProblem::Control(u32::from(c), at)),
        None => Ok(()),
    }
}

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the journal: 0 for genesis, then one more than the predecessor.
    pub height: u64,
    /// The predecessor; `None` only for genesis.
    pub prev: Option<ObjectId>,
    /// What the entry records.
    pub body: Body,
}

/// What an entry records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// The first entry: binds the world's control plane, modules and configuration.
    Genesis(Genesis),
    /// A domain event and the outcome of delivering it.
    Event(Event),
    /// A reducer step that failed; the reducer's state is unchanged.
    Fault(Fault),
    /// A snapshot of the state after the previous entry.
    Snapshot {
        /// The snapshot object.
        snapshot: ObjectId,
    },
    /// From here on the world runs another manifest (an `air` object, whose module nodes
    /// name their WASM blobs by `wasm_hash`); the genesis's limits and configuration stay.
    Manifest {
        /// The new manifest.
        manifest: ObjectId,
    },
}

/// The genesis entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// The manifest (an `air` object), whose module nodes carry their `wasm_hash`.
    pub manifest: ObjectId,
    /// Each reducer or pure module's name and its WASM blob, sorted by name.
    pub modules: Vec<(String, ObjectId)>,
    /// The limits every module call runs under.
    pub limits: Limits,
    /// A snapshot marker is appended after the first complete ingress event that leaves at
    /// least this many entries since the previous marker (0: never automatically).
    pub snapshot_every: u64,
    /// The most derived events one ingress event may cause (its whole cascade).
    pub max_derived: u64,
}

/// Where an event came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Sent to the world from outside.
    Ingress,
    /// Emitted by a reducer while it handled the event at height `cause`.
    Derived {
        /// Height of the event entry whose delivery emitted this event.
        cause: u64,
        /// The emitting reducer.
        reducer: String,
        /// The emitting cell's key, for a keyed reducer.
        cell: Option<Value>,
    },
}

/// A domain event entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Ingress or derived.
    pub origin: Origin,
    /// The event's schema.
    pub schema: String,
    /// The event value, canonical for its schema.
    pub value: Value,
    /// The key the event was sent or emitted with, if any (`event.key` of the ABI).
    pub key: Option<Value>,
    /// The sender's idempotency key (ingress events only; journal revision 3).
    pub id: Option<String>,
    /// The successful deliveries, in routing order (failed ones follow as fault entries).
    pub steps: Vec<Step>,
}

/// The outcome of one successful delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The reducer.
    pub reducer: String,
    /// The cell's key, for a keyed reducer.
    pub cell: Option<Value>,
    /// The id of the new state as a `value` object; `None` when the step deleted the state.
    pub state: Option<ObjectId>,
    /// Effects the step asked for, in order (recorded; executed by later components).
    pub effects: Vec<Effect>,
}

/// An effect intent returned by a reducer step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// The effect kind.
    pub kind: String,
    /// Its parameters, canonical for the effect's parameter schema.
    pub params: Value,
    /// The capability slot named, if any.
    pub cap_slot: Option<String>,
}

/// A failed delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Height of the event entry being delivered.
    pub cause: u64,
    /// The reducer.
    pub reducer: String,
    /// The cell's key, for a keyed reducer.
    pub cell: Option<Value>,
    /// A stable code: `out-of-fuel`, `memory-limit`, `stack-overflow`, `trap`, `bad-alloc`,
    /// `bad-output`, `invalid-state`, `invalid-event`, `invalid-effect`, `derived-bound`.
    pub code: String,
    /// What happened, identical on every machine.
    pub message: String,
}

/// Why bytes are not a journal entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Not canonical CBOR.
    #[error(transparent)]
    Cbor(#[from] cbor::DecodeError),
    /// Canonical CBOR of the wrong shape.
    #[error("not a journal entry: {}", describe(.0))]
    Shape(#[from] ShapeError),
}

/// The members of a map from names to links (a genesis's modules, a snapshot's cell roots),
/// in canonical order.
pub(crate) fn links_by_name(
    m: &Member<'_, '_, Value>,
) -> Result<Vec<(String, ObjectId)>, ShapeError> {
    m.entries()?
        .map(|e| {
            let (name, id) = e?;
            Ok((name.to_owned(), id.link()?))
        })
        .collect()
}

/// A shape problem of a kernel object (a journal entry, a snapshot, a lineage) in the words
/// of the objects spec's reader: ``at `/height`: missing``.
#[must_use]
pub fn describe(e: &ShapeError) -> String {
    format!("at `{}`: {}", e.path, words(&e.problem))
}

/// [`describe`]'s words for `problem`, without the pointer.
#[must_use]
pub fn words(problem: &Problem) -> String {
    match problem {
        Problem::NotAMap { .. } => "expected a map".into(),
        Problem::NonTextKey { .. } => "unexpected non-text key".into(),
        Problem::Missing { .. } => "missing".into(),
        // The first, as the spec's reader names it.
        Problem::Unknown { keys, .. } => match keys.first() {
            Some(k) => format!("unexpected member `{k}`"),
            None => "unexpected member".into(),
        },
        Problem::WrongType { expected, .. } => format!("expected {expected}"),
        Problem::OutOfRange { range } => format!("expected a {range}"),
        Problem::Invalid(m) => m.clone(),
    }
}

/// A problem in the reader's own words at member `key` of the entry, which may be absent.
fn at(key: &str, message: impl Into<String>) -> ShapeError {
    ShapeError::invalid(&Path::ROOT.key(key), message)
}

impl Entry {
    /// The canonical value of this entry.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut b = MapWriter::with_capacity(9);
        b.nat("height", self.height);
        if let Some(p) = &self.prev {
            b.link("prev", p);
        }
        match &self.body {
            Body::Genesis(g) => {
                let mut mods = MapWriter::with_capacity(g.modules.len());
                for (n, id) in &g.modules {
                    mods.link(n, id);
                }
                b.text("kind", "genesis")
                    .nat("format", FORMAT)
                    .link("manifest", &g.manifest)
                    .put("modules", mods.done())
                    .put("limits", g.limits.to_cbor())
                    .nat("snapshot_every", g.snapshot_every)
                    .nat("max_derived", g.max_derived);
            }
            Body::Event(e) => {
                b.text("kind", "event");
                match &e.origin {
                    Origin::Ingress => {
                        b.text("origin", "ingress");
                    }
                    Origin::Derived {
                        cause,
                        reducer,
                        cell,
                    } => {
                        let mut c = MapWriter::with_capacity(3);
                        c.nat("height", *cause)
                            .text("reducer", reducer)
                            .opt_put("cell", cell.clone());
                        b.text("origin", "derived").put("cause", c.done());
                    }
                }
                b.text("schema", &e.schema)
                    .put("value", e.value.clone())
                    .opt_put("key", e.key.clone())
                    .opt_text("id", e.id.as_deref())
                    .put(
                        "steps",
                        Value::Array(e.steps.iter().map(Step::to_value).collect()),
                    );
            }
            Body::Fault(f) => {
                b.text("kind", "fault")
                    .nat("cause", f.cause)
                    .text("reducer", &f.reducer)
                    .opt_put("cell", f.cell.clone())
                    .text("code", &f.code)
                    .text("message", &f.message);
            }
            Body::Snapshot { snapshot } => {
                b.text("kind", "snapshot").link("snapshot", snapshot);
            }
            Body::Manifest { manifest } => {
                b.text("kind", "manifest").link("manifest", manifest);
            }
        }
        b.done()
    }

    /// The canonical encoding and the id of this entry.
    #[must_use]
    pub fn encode(&self) -> (Vec<u8>, ObjectId) {
        let bytes = match &self.body {
            Body::Event(e) => self.encode_event(e),
            _ => cbor::encode(&self.to_value()),
        };
        let id = object::hash(Kind::Entry, &bytes);
        (bytes, id)
    }

    /// [`Entry::to_value`]'s encoding for event entries (the hot path), written directly in
    /// canonical key order: `id`, `key`, `kind`, `prev`, `cause`, `steps`, `value`, `height`,
    /// `origin`, `schema` (shorter keys first, then bytewise).
    fn encode_event(&self, e: &Event) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        let derived = matches!(e.origin, Origin::Derived { .. });
        let n = 6
            + u64::from(e.id.is_some())
            + u64::from(e.key.is_some())
            + u64::from(self.prev.is_some())
            + u64::from(derived);
        let mut m = MapEncoder::new(&mut out, n);
        if let Some(id) = &e.id {
            m.text("id", id);
        }
        if let Some(k) = &e.key {
            m.value("key", k);
        }
        m.text("kind", "event");
        if let Some(p) = &self.prev {
            m.link("prev", p);
        }
        if let Origin::Derived {
            cause,
            reducer,
            cell,
        } = &e.origin
        {
            // `cell`, `height`, `reducer`.
            let mut c = m.map("cause", 2 + u64::from(cell.is_some()));
            if let Some(k) = cell {
                c.value("cell", k);
            }
            c.nat("height", *cause).text("reducer", reducer);
            c.finish();
        }
        let steps = m.array("steps", e.steps.len() as u64);
        for st in &e.steps {
            st.encode_into(steps);
        }
        m.value("value", &e.value)
            .nat("height", self.height)
            .text("origin", if derived { "derived" } else { "ingress" })
            .text("schema", &e.schema);
        m.finish();
        out
    }

    /// Decodes an entry's payload.
    ///
    /// # Errors
    /// [`EntryError`] saying what is wrong and where.
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        let v = cbor::decode(bytes)?;
        Ok(Self::from_value(&v)?)
    }

    /// Reads an entry from its canonical value.
    ///
    /// # Errors
    /// [`ShapeError`] naming the offending member ([`describe`] words it as the spec does).
    pub fn from_value(v: &Value) -> Result<Self, ShapeError> {
        let mut r = Fields::open(v, &Path::ROOT, "a journal entry")?.missing_at_member();
        let height = r.req("height")?.u64()?;
        let prev = r.opt("prev").map(|m| m.link()).transpose()?;
        let kind = r.req("kind")?;
        if (height == 0) != prev.is_none() {
            return Err(at(
                "prev",
                "exactly the entries of height 0 have no predecessor",
            ));
        }
        let body = match kind.text()? {
            "genesis" => {
                if height != 0 {
                    return Err(at("height", "a genesis entry has height 0"));
                }
                Body::Genesis(Genesis::read(&mut r)?)
            }
            _ if height == 0 => {
                return Err(kind.invalid("the entry of height 0 must be a genesis"));
            }
            "event" => Body::Event(Event::read(&mut r, height)?),
            "fault" => {
                let c = r.req("cause")?;
                let cause = c.u64()?;
                if cause >= height {
                    return Err(c.invalid("a cause precedes its effect"));
                }
                Body::Fault(Fault {
                    cause,
                    reducer: r.req("reducer")?.text()?.to_owned(),
                    cell: r.opt("cell").map(|m| m.value.clone()),
                    code: r.req("code")?.text()?.to_owned(),
                    message: r.req("message")?.text()?.to_owned(),
                })
            }
            "snapshot" => Body::Snapshot {
                snapshot: r.req("snapshot")?.link()?,
            },
            "manifest" => Body::Manifest {
                manifest: r.req("manifest")?.link()?,
            },
            k => return Err(kind.invalid(format!("unknown entry kind `{k}`"))),
        };
        r.finish()?;
        Ok(Self { height, prev, body })
    }

    /// The word naming this entry's kind in its encoding.
    #[must_use]
    pub fn kind_word(&self) -> &'static str {
        match &self.body {
            Body::Genesis(_) => "genesis",
            Body::Event(_) => "event",
            Body::Fault(_) => "fault",
            Body::Snapshot { .. } => "snapshot",
            Body::Manifest { .. } => "manifest",
        }
    }
}

/// The members of an entry being read.
type EntryFields<'v, 'p> = Fields<'v, 'p, Value>;

impl Genesis {
    /// Reads the members of a genesis entry after `kind`.
    fn read(r: &mut EntryFields<'_, '_>) -> Result<Self, ShapeError> {
        let f = r.req("format")?;
        let format = f.u64()?;
        if format != FORMAT {
            return Err(f.invalid(format!(
                "journal format {format} is not supported (this is {FORMAT})"
            )));
        }
        let manifest = r.req("manifest")?.link()?;
        let modules = links_by_name(&r.req("modules")?)?;
        let l = r.req("limits")?;
        let limits = Limits::from_cbor(l.value).map_err(|e| l.invalid(e.to_string()))?;
        Ok(Self {
            manifest,
            modules,
            limits,
            snapshot_every: r.req("snapshot_every")?.u64()?,
            max_derived: r.req("max_derived")?.u64()?,
        })
    }
}

impl Event {
    /// Reads the members of an event entry of height `height` after `kind`.
    fn read(r: &mut EntryFields<'_, '_>, height: u64) -> Result<Self, ShapeError> {
        let o = r.req("origin")?;
        let origin = match o.text()? {
            "ingress" => Origin::Ingress,
            "derived" => {
                let m = r.req("cause")?;
                let mut c = m.fields("a cause")?.missing_at_member();
                let h = c.req("height")?;
                let cause = h.u64()?;
                let reducer = c.req("reducer")?.text()?.to_owned();
                let cell = c.opt("cell").map(|m| m.value.clone());
                c.finish()?;
                if cause >= height {
                    return Err(h.invalid("a cause precedes its effect"));
                }
                Origin::Derived {
                    cause,
                    reducer,
                    cell,
                }
            }
            other => return Err(o.invalid(format!("unknown origin `{other}`"))),
        };
        let schema = r.req("schema")?.text()?.to_owned();
        let value = r.req("value")?.value.clone();
        let key = r.opt("key").map(|m| m.value.clone());
        let id = match r.opt("id") {
            None => None,
            Some(_) if !matches!(origin, Origin::Ingress) => {
                return Err(at("id", "only an ingress event carries an idempotency key"));
            }
            Some(m) => {
                let id = m.text()?;
                check_id(id).map_err(|e| m.invalid(e.to_string()))?;
                Some(id.to_owned())
            }
        };
        let steps = r
            .req("steps")?
            .items()?
            .map(Step::read)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            origin,
            schema,
            value,
            key,
            id,
            steps,
        })
    }
}

impl Step {
    fn to_value(&self) -> Value {
        let mut b = MapWriter::with_capacity(4);
        b.text("reducer", &self.reducer)
            .opt_put("cell", self.cell.clone());
        match &self.state {
            Some(id) => b.digest("state", id),
            None => b.null("state"),
        };
        if !self.effects.is_empty() {
            let effects = self
                .effects
                .iter()
                .map(|e| {
                    let mut x = MapWriter::with_capacity(3);
                    x.text("kind", &e.kind)
                        .put("params", e.params.clone())
                        .opt_text("cap_slot", e.cap_slot.as_deref());
                    x.done()
                })
                .collect();
            b.put("effects", Value::Array(effects));
        }
        b.done()
    }

    /// Appends [`Step::to_value`]'s encoding to `out`, written directly in canonical key
    /// order: `cell`, `state`, `effects`, `reducer`; an effect's `kind`, `params`, `cap_slot`.
    fn encode_into(&self, out: &mut Vec<u8>) {
        let effects = !self.effects.is_empty();
        let mut m = MapEncoder::new(out, 2 + u64::from(self.cell.is_some()) + u64::from(effects));
        if let Some(c) = &self.cell {
            m.value("cell", c);
        }
        m.opt_bytes(
            "state",
            self.state.as_ref().map(|id| id.as_bytes().as_slice()),
        );
        if effects {
            let list = m.array("effects", self.effects.len() as u64);
            for e in &self.effects {
                let mut x = MapEncoder::new(list, 2 + u64::from(e.cap_slot.is_some()));
                x.text("kind", &e.kind).value("params", &e.params);
                if let Some(s) = &e.cap_slot {
                    x.text("cap_slot", s);
                }
                x.finish();
            }
        }
        m.text("reducer", &self.reducer);
        m.finish();
    }

    /// Reads the step `m`.
    fn read(m: Member<'_, '_, Value>) -> Result<Self, ShapeError> {
        let mut r = m.fields("a step")?.missing_at_member();
        let reducer = r.req("reducer")?.text()?.to_owned();
        let cell = r.opt("cell").map(|m| m.value.clone());
        let state = r.req("state")?.or_null(|m| m.digest())?;
        let effects = match r.opt("effects") {
            None => Vec::new(),
            Some(list) => {
                if list.array()?.is_empty() {
                    return Err(list.invalid("an empty list is written by omission"));
                }
                list.items()?.map(Effect::read).collect::<Result<_, _>>()?
            }
        };
        r.finish()?;
        Ok(Self {
            reducer,
            cell,
            state,
            effects,
        })
    }
}

impl Effect {
    /// Reads the effect intent `m`.
    fn read(m: Member<'_, '_, Value>) -> Result<Self, ShapeError> {
        let mut r = m.fields("an effect")?.missing_at_member();
        let effect = Self {
            kind: r.req("kind")?.text()?.to_owned(),
            params: r.req("params")?.value.clone(),
            cap_slot: r
                .opt("cap_slot")
                .map(|m| m.text().map(str::to_owned))
                .transpose()?,
        };
        r.finish()?;
        Ok(effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> ObjectId {
        ObjectId::from_bytes([b; 32])
    }

    fn samples() -> Vec<Entry> {
        vec![
            Entry {
                height: 0,
                prev: None,
                body: Body::Genesis(Genesis {
                    manifest: id(1),
                    modules: vec![("demo/A@1".into(), id(2)), ("demo/B@1".into(), id(3))],
                    limits: Limits::default(),
                    snapshot_every: 1000,
                    max_derived: 64,
                }),
            },
            Entry {
                height: 1,
                prev: Some(id(4)),
                body: Body::Event(Event {
                    origin: Origin::Ingress,
                    schema: "demo/E@1".into(),
                    value: Value::Text("x".into()),
                    key: None,
                    id: Some("order-17".into()),
                    steps: vec![Step {
                        reducer: "demo/A@1".into(),
                        cell: Some(Value::Text("k".into())),
                        state: Some(id(5)),
                        effects: vec![Effect {
                            kind: "timer.set".into(),
                            params: Value::Null,
                            cap_slot: Some("t".into()),
                        }],
                    }],
                }),
            },
            Entry {
                height: 2,
                prev: Some(id(6)),
                body: Body::Event(Event {
                    origin: Origin::Derived {
                        cause: 1,
                        reducer: "demo/A@1".into(),
                        cell: None,
                    },
                    schema: "demo/D@1".into(),
                    value: Value::Null,
                    key: Some(7u64.into()),
                    id: None,
                    steps: vec![Step {
                        reducer: "demo/B@1".into(),
                        cell: None,
                        state: None,
                        effects: vec![],
                    }],
                }),
            },
            Entry {
                height: 300,
                prev: Some(id(10)),
                body: Body::Event(Event {
                    origin: Origin::Derived {
                        cause: 299,
                        reducer: "demo/A@1".into(),
                        cell: Some(Value::Text("c".into())),
                    },
                    schema: "demo/E@1".into(),
                    value: Value::Array(vec![1u64.into(), Value::Bool(true)]),
                    key: Some(Value::Text("alice".into())),
                    id: None,
                    steps: vec![
                        Step {
                            reducer: "demo/A@1".into(),
                            cell: Some(Value::Text("alice".into())),
                            state: Some(id(11)),
                            effects: vec![],
                        },
                        Step {
                            reducer: "demo/Bb@1".into(),
                            cell: None,
                            state: Some(id(12)),
                            effects: vec![],
                        },
                    ],
                }),
            },
            Entry {
                height: 3,
                prev: Some(id(7)),
                body: Body::Fault(Fault {
                    cause: 1,
                    reducer: "demo/B@1".into(),
                    cell: None,
                    code: "out-of-fuel".into(),
                    message: "out of fuel".into(),
                }),
            },
            Entry {
                height: 4,
                prev: Some(id(8)),
                body: Body::Snapshot { snapshot: id(9) },
            },
            Entry {
                height: 5,
                prev: Some(id(12)),
                body: Body::Manifest { manifest: id(13) },
            },
        ]
    }

    #[test]
    fn entries_round_trip() {
        for e in samples() {
            let (bytes, eid) = e.encode();
            assert_eq!(
                bytes,
                cbor::encode(&e.to_value()),
                "fast path = canonical value"
            );
            assert_eq!(Entry::decode(&bytes).unwrap(), e);
            assert_eq!(eid, object::hash(Kind::Entry, &bytes));
        }
    }

    #[test]
    fn only_ingress_events_carry_a_valid_idempotency_key() {
        let with_id = |i: usize, id: &str| {
            let mut v = samples()[i].to_value();
            if let Value::Map(m) = &mut v {
                m.insert(Value::Text("id".into()), Value::Text(id.into()));
            }
            Entry::decode(&cbor::encode(&v)).map_err(|e| e.to_string())
        };
        assert!(with_id(1, "ok").is_ok());
        let err = with_id(2, "x").unwrap_err();
        assert!(
            err.contains("`/id`") && err.contains("only an ingress"),
            "{err}"
        );
        let err = with_id(1, "").unwrap_err();
        assert!(err.contains("`/id`") && err.contains("not empty"), "{err}");
        let err = with_id(1, &"y".repeat(300)).unwrap_err();
        assert!(err.contains("at most 256 bytes"), "{err}");
    }

    #[test]
    fn malformed_entries_are_rejected_with_a_path() {
        let mut genesis_with_prev = samples()[0].clone();
        genesis_with_prev.prev = Some(id(1));
        let err = Entry::decode(&genesis_with_prev.encode().0).unwrap_err();
        assert!(err.to_string().contains("/prev"), "{err}");

        let mut v = samples()[1].to_value();
        if let Value::Map(m) = &mut v {
            m.insert(Value::Text("extra".into()), Value::Null);
        }
        let err = Entry::decode(&cbor::encode(&v)).unwrap_err();
        assert!(
            err.to_string().contains("unexpected member `extra`"),
            "{err}"
        );

        let mut fault = samples()
            .into_iter()
            .find(|e| matches!(e.body, Body::Fault(_)))
            .unwrap();
        if let Body::Fault(f) = &mut fault.body {
            f.cause = 3;
        }
        let err = Entry::decode(&fault.encode().0).unwrap_err();
        assert!(err.to_string().contains("/cause"), "{err}");

        // Missing members are reported at their own pointer, in the spec reader's words.
        assert_eq!(
            Entry::decode(&[0xa0]).unwrap_err().to_string(),
            "not a journal entry: at `/height`: missing"
        );
        // Pointers escape member names: a module named `demo/A@1` is `/modules/demo~1A@1`.
        let mut v = samples()[0].to_value();
        if let Value::Map(m) = &mut v
            && let Some(Value::Map(mods)) = m.get_text("modules").cloned()
        {
            let mut mods = mods;
            mods.insert(Value::Text("demo/A@1".into()), Value::Null);
            m.insert(Value::Text("modules".into()), Value::Map(mods));
        }
        let err = Entry::decode(&cbor::encode(&v)).unwrap_err();
        let EntryError::Shape(shape) = &err else {
            panic!("{err}")
        };
        assert_eq!(shape.path, "/modules/demo~1A@1", "{err}");
        assert_eq!(
            err.to_string(),
            "not a journal entry: at `/modules/demo~1A@1`: expected a link"
        );
        assert!(Entry::decode(b"junk").is_err());
    }
}
