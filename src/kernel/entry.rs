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
use crate::kernel::fields::{Builder, Reader, ShapeError, as_array, as_text, shape};
use crate::object::{self, Kind, ObjectId};
use crate::wasm::Limits;

/// The journal format written in genesis entries.
pub const FORMAT: u64 = 1;

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
    #[error("not a journal entry: {0}")]
    Shape(#[from] ShapeError),
}

impl Entry {
    /// The canonical value of this entry.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut b = Builder::new();
        b.nat("height", self.height);
        if let Some(p) = &self.prev {
            b.link("prev", p);
        }
        match &self.body {
            Body::Genesis(g) => {
                b.text("kind", "genesis");
                b.nat("format", FORMAT);
                b.link("manifest", &g.manifest);
                let mut mods = Builder::new();
                for (n, id) in &g.modules {
                    mods.link(n, id);
                }
                b.put("modules", mods.done());
                b.put("limits", g.limits.to_cbor());
                b.nat("snapshot_every", g.snapshot_every);
                b.nat("max_derived", g.max_derived);
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
                        b.text("origin", "derived");
                        let mut c = Builder::new();
                        c.nat("height", *cause).text("reducer", reducer);
                        if let Some(k) = cell {
                            c.put("cell", k.clone());
                        }
                        b.put("cause", c.done());
                    }
                }
                b.text("schema", &e.schema);
                b.put("value", e.value.clone());
                if let Some(k) = &e.key {
                    b.put("key", k.clone());
                }
                b.put(
                    "steps",
                    Value::Array(e.steps.iter().map(Step::to_value).collect()),
                );
            }
            Body::Fault(f) => {
                b.text("kind", "fault");
                b.nat("cause", f.cause);
                b.text("reducer", &f.reducer);
                if let Some(k) = &f.cell {
                    b.put("cell", k.clone());
                }
                b.text("code", &f.code);
                b.text("message", &f.message);
            }
            Body::Snapshot { snapshot } => {
                b.text("kind", "snapshot");
                b.link("snapshot", snapshot);
            }
            Body::Manifest { manifest } => {
                b.text("kind", "manifest");
                b.link("manifest", manifest);
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
    /// canonical key order: `key`, `kind`, `prev`, `cause`, `steps`, `value`, `height`,
    /// `origin`, `schema` (shorter keys first, then bytewise).
    fn encode_event(&self, e: &Event) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        let derived = matches!(e.origin, Origin::Derived { .. });
        let n =
            6 + u64::from(e.key.is_some()) + u64::from(self.prev.is_some()) + u64::from(derived);
        cbor::write_head(&mut out, 5, n);
        let text = |out: &mut Vec<u8>, t: &str| {
            cbor::write_head(out, 3, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        };
        if let Some(k) = &e.key {
            text(&mut out, "key");
            cbor::encode_into(k, &mut out);
        }
        text(&mut out, "kind");
        text(&mut out, "event");
        if let Some(p) = &self.prev {
            text(&mut out, "prev");
            cbor::encode_into(&Value::Link(*p), &mut out);
        }
        if let Origin::Derived {
            cause,
            reducer,
            cell,
        } = &e.origin
        {
            text(&mut out, "cause");
            let mut c = Builder::new();
            c.nat("height", *cause).text("reducer", reducer);
            if let Some(k) = cell {
                c.put("cell", k.clone());
            }
            cbor::encode_into(&c.done(), &mut out);
        }
        text(&mut out, "steps");
        cbor::write_head(&mut out, 4, e.steps.len() as u64);
        for st in &e.steps {
            if st.effects.is_empty() {
                // `cell`, `state`, `reducer`.
                cbor::write_head(&mut out, 5, 2 + u64::from(st.cell.is_some()));
                if let Some(c) = &st.cell {
                    text(&mut out, "cell");
                    cbor::encode_into(c, &mut out);
                }
                text(&mut out, "state");
                match &st.state {
                    Some(id) => {
                        cbor::write_head(&mut out, 2, 32);
                        out.extend_from_slice(id.as_bytes());
                    }
                    None => out.push(0xf6),
                }
                text(&mut out, "reducer");
                text(&mut out, &st.reducer);
            } else {
                cbor::encode_into(&st.to_value(), &mut out);
            }
        }
        text(&mut out, "value");
        cbor::encode_into(&e.value, &mut out);
        text(&mut out, "height");
        cbor::write_head(&mut out, 0, self.height);
        text(&mut out, "origin");
        text(&mut out, if derived { "derived" } else { "ingress" });
        text(&mut out, "schema");
        text(&mut out, &e.schema);
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
    /// [`ShapeError`] naming the offending member.
    pub fn from_value(v: &Value) -> Result<Self, ShapeError> {
        let mut r = Reader::new(v, "")?;
        let height = r.nat("height")?;
        let prev = r.opt_link("prev")?;
        let kind = r.text("kind")?;
        if (height == 0) != prev.is_none() {
            return Err(shape(
                "/prev",
                "exactly the entries of height 0 have no predecessor",
            ));
        }
        let body = match kind.as_str() {
            "genesis" => {
                if height != 0 {
                    return Err(shape("/height", "a genesis entry has height 0"));
                }
                let format = r.nat("format")?;
                if format != FORMAT {
                    return Err(shape(
                        "/format",
                        format!("journal format {format} is not supported (this is {FORMAT})"),
                    ));
                }
                let manifest = r.link("manifest")?;
                let Value::Map(m) = r.req("modules")? else {
                    return Err(shape("/modules", "expected a map"));
                };
                let mut modules = Vec::with_capacity(m.len());
                for (k, v) in m.entries() {
                    let name = as_text(k, "/modules")?.to_owned();
                    let Value::Link(id) = v else {
                        return Err(shape(&format!("/modules/{name}"), "expected a link"));
                    };
                    modules.push((name, *id));
                }
                let limits = Limits::from_cbor(r.req("limits")?)
                    .map_err(|e| shape("/limits", e.to_string()))?;
                let snapshot_every = r.nat("snapshot_every")?;
                let max_derived = r.nat("max_derived")?;
                Body::Genesis(Genesis {
                    manifest,
                    modules,
                    limits,
                    snapshot_every,
                    max_derived,
                })
            }
            _ if height == 0 => {
                return Err(shape("/kind", "the entry of height 0 must be a genesis"));
            }
            "event" => {
                let origin = match r.text("origin")?.as_str() {
                    "ingress" => Origin::Ingress,
                    "derived" => {
                        let mut c = Reader::new(r.req("cause")?, "/cause")?;
                        let cause = c.nat("height")?;
                        let reducer = c.text("reducer")?;
                        let cell = c.opt("cell").cloned();
                        c.finish()?;
                        if cause >= height {
                            return Err(shape("/cause/height", "a cause precedes its effect"));
                        }
                        Origin::Derived {
                            cause,
                            reducer,
                            cell,
                        }
                    }
                    o => return Err(shape("/origin", format!("unknown origin `{o}`"))),
                };
                let schema = r.text("schema")?;
                let value = r.req("value")?.clone();
                let key = r.opt("key").cloned();
                let steps = as_array(r.req("steps")?, "/steps")?
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        Step::from_value(s).map_err(|mut e| {
                            e.path = format!("/steps/{i}{}", e.path);
                            e
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Body::Event(Event {
                    origin,
                    schema,
                    value,
                    key,
                    steps,
                })
            }
            "fault" => {
                let cause = r.nat("cause")?;
                if cause >= height {
                    return Err(shape("/cause", "a cause precedes its effect"));
                }
                Body::Fault(Fault {
                    cause,
                    reducer: r.text("reducer")?,
                    cell: r.opt("cell").cloned(),
                    code: r.text("code")?,
                    message: r.text("message")?,
                })
            }
            "snapshot" => Body::Snapshot {
                snapshot: r.link("snapshot")?,
            },
            "manifest" => Body::Manifest {
                manifest: r.link("manifest")?,
            },
            k => return Err(shape("/kind", format!("unknown entry kind `{k}`"))),
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

impl Step {
    fn to_value(&self) -> Value {
        let mut b = Builder::new();
        b.text("reducer", &self.reducer);
        if let Some(k) = &self.cell {
            b.put("cell", k.clone());
        }
        match &self.state {
            Some(id) => b.digest("state", id),
            None => b.put("state", Value::Null),
        };
        if !self.effects.is_empty() {
            let effects = self
                .effects
                .iter()
                .map(|e| {
                    let mut x = Builder::new();
                    x.text("kind", &e.kind).put("params", e.params.clone());
                    if let Some(s) = &e.cap_slot {
                        x.text("cap_slot", s);
                    }
                    x.done()
                })
                .collect();
            b.put("effects", Value::Array(effects));
        }
        b.done()
    }

    /// Reads a step; error paths are relative to the step.
    fn from_value(v: &Value) -> Result<Self, ShapeError> {
        let path = "";
        let mut r = Reader::new(v, path)?;
        let reducer = r.text("reducer")?;
        let cell = r.opt("cell").cloned();
        let state = r.digest_or_null("state")?;
        let effects = match r.opt("effects") {
            None => Vec::new(),
            Some(v) => {
                let p = format!("{path}/effects");
                let list = as_array(v, &p)?;
                if list.is_empty() {
                    return Err(shape(&p, "an empty list is written by omission"));
                }
                list.iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let at = format!("{p}/{i}");
                        let mut x = Reader::new(e, &at)?;
                        let eff = Effect {
                            kind: x.text("kind")?,
                            params: x.req("params")?.clone(),
                            cap_slot: x.opt_text("cap_slot")?,
                        };
                        x.finish()?;
                        Ok(eff)
                    })
                    .collect::<Result<_, ShapeError>>()?
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

        assert!(Entry::decode(&[0xa0]).is_err());
        assert!(Entry::decode(b"junk").is_err());
    }
}
