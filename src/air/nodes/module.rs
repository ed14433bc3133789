//! `defmodule`: a WASM module and its interface (a reducer's or a pure function's ABI).

use super::decode::{Decode, Rd};
use super::read::{
    Item, Obj, PLACEHOLDER, Problems, all_some, dotted_of, hash, ident_key, map_of, object,
    opt_list, qname, report, word,
};
use super::write::Out;
use crate::air::diag::Rule;
use crate::air::name::Name;
use crate::codec::cbor::Value;
use crate::codec::shape::ShapeError;
use crate::object::ObjectId;

words! {
    /// `defmodule.module_kind`.
    ModuleKind {
        /// `reducer`: a deterministic state machine.
        Reducer = "reducer",
        /// `pure`: a stateless function.
        Pure = "pure",
    }
}

/// `defmodule`: a WASM module and its interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefModule {
    /// `name`.
    pub name: Name,
    /// `wasm_hash`: absent in authoring when bound at world creation.
    pub wasm_hash: Option<ObjectId>,
    /// `key_schema`: the key type of a keyed reducer.
    pub key_schema: Option<Name>,
    /// `abi`, which also determines `module_kind`.
    pub abi: ModuleAbi,
}

impl DefModule {
    /// `module_kind`, as implied by the ABI.
    #[must_use]
    pub fn module_kind(&self) -> ModuleKind {
        match self.abi {
            ModuleAbi::Reducer(_) => ModuleKind::Reducer,
            ModuleAbi::Pure(_) => ModuleKind::Pure,
        }
    }
}

/// `defmodule.abi`: exactly one of `reducer` or `pure`, matching `module_kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleAbi {
    /// `abi.reducer`.
    Reducer(ReducerAbi),
    /// `abi.pure`.
    Pure(PureAbi),
}

/// `defmodule.abi.reducer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducerAbi {
    /// `state`: schema of the reducer state.
    pub state: Name,
    /// `event`: schema of the events the reducer accepts.
    pub event: Name,
    /// `annotations`: schema of the annotations output.
    pub annotations: Option<Name>,
    /// `effects_emitted`: effect kinds the reducer may emit (absent = empty).
    pub effects_emitted: Vec<String>,
    /// `cap_slots`: slot name → capability type, in declared order (absent = empty).
    pub cap_slots: Vec<(String, String)>,
}

/// `defmodule.abi.pure`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PureAbi {
    /// `input`: schema of the input.
    pub input: Name,
    /// `output`: schema of the output.
    pub output: Name,
}

impl DefModule {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let kind = o.req_with("module_kind", e, |m, e| {
            word(m, "`module_kind`", &ModuleKind::words(), e)
        });
        // A placeholder wasm hash means the module is bound later, like an absent one.
        let wasm_hash = o
            .opt_with("wasm_hash", e, hash)
            .map(|h| h.filter(|h| *h != PLACEHOLDER));
        let key_schema = o.opt_with("key_schema", e, qname);
        let abi = o.req_with("abi", e, |m, e| read_abi(m, kind, e));
        all_some!(DefModule {
            name,
            wasm_hash,
            key_schema,
            abi
        })
    }

    pub(super) fn write<O: Out>(&self, o: &mut O) {
        o.name("name", &self.name)
            .text("module_kind", self.module_kind().as_str());
        if let Some(h) = &self.wasm_hash {
            o.link("wasm_hash", h);
        }
        o.opt_name("key_schema", self.key_schema.as_ref());
        o.map("abi", |abi| match &self.abi {
            ModuleAbi::Reducer(r) => {
                abi.map("reducer", |x| {
                    x.name("state", &r.state)
                        .name("event", &r.event)
                        .opt_name("annotations", r.annotations.as_ref());
                    if !r.effects_emitted.is_empty() {
                        x.set(
                            "effects_emitted",
                            r.effects_emitted.iter().map(String::as_str),
                        );
                    }
                    if !r.cap_slots.is_empty() {
                        x.text_map(
                            "cap_slots",
                            r.cap_slots.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        );
                    }
                });
            }
            ModuleAbi::Pure(p) => {
                abi.map("pure", |x| {
                    x.name("input", &p.input).name("output", &p.output);
                });
            }
        });
    }

    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let name = r.name("name")?;
        let kind = r.word("module_kind", &ModuleKind::words())?;
        let wasm_hash = match r.opt("wasm_hash") {
            Some(m) => match m.value {
                Value::Link(id) => Some(*id),
                _ => return Err(m.invalid("`wasm_hash` is a link")),
            },
            None => None,
        };
        let key_schema = r.opt_name("key_schema")?;
        let abi = r.req_map("abi", "`abi`", |a| match kind {
            ModuleKind::Reducer => a
                .req_map("reducer", "`abi.reducer`", |x| {
                    Ok(ReducerAbi {
                        state: x.name("state")?,
                        event: x.name("event")?,
                        annotations: x.opt_name("annotations")?,
                        effects_emitted: x.texts("effects_emitted")?.unwrap_or_default(),
                        cap_slots: x.text_map("cap_slots")?,
                    })
                })
                .map(ModuleAbi::Reducer),
            ModuleKind::Pure => a
                .req_map("pure", "`abi.pure`", |x| {
                    Ok(PureAbi {
                        input: x.name("input")?,
                        output: x.name("output")?,
                    })
                })
                .map(ModuleAbi::Pure),
        })?;
        Ok(DefModule {
            name,
            wasm_hash,
            key_schema,
            abi,
        })
    }
}

fn read_abi(m: Item<'_, '_>, kind: Option<ModuleKind>, e: &mut Problems) -> Option<ModuleAbi> {
    let (reducer, pure) = object(m, "`abi`", e, |o, e| {
        let reducer = o.opt_with("reducer", e, read_reducer_abi);
        let pure = o.opt_with("pure", e, read_pure_abi);
        Some((reducer, pure))
    })?;
    let kind = kind?;
    let (reducer, pure) = (reducer?, pure?);
    let want = kind.as_str();
    match (kind, reducer, pure) {
        (ModuleKind::Reducer, Some(r), None) => Some(ModuleAbi::Reducer(r)),
        (ModuleKind::Pure, None, Some(x)) => Some(ModuleAbi::Pure(x)),
        (_, r, x) => {
            let msg = match (r.is_some(), x.is_some()) {
                (false, false) => format!("a {want} module needs `abi.{want}`"),
                _ => format!("a {want} module has exactly one ABI, `abi.{want}`"),
            };
            report(e, &m, Rule::AbiMismatch, msg);
            None
        }
    }
}

fn read_reducer_abi(m: Item<'_, '_>, e: &mut Problems) -> Option<ReducerAbi> {
    object(m, "`abi.reducer`", e, |o, e| {
        let state = o.req_with("state", e, qname);
        let event = o.req_with("event", e, qname);
        let annotations = o.opt_with("annotations", e, qname);
        let effects_emitted = opt_list(o, "effects_emitted", e, dotted_of("effect kind"));
        let cap_slots = o.opt_default_with("cap_slots", e, |m, e| {
            map_of(m, e, ident_key("cap slot name"), dotted_of("cap type"))
        });
        all_some!(ReducerAbi {
            state,
            event,
            annotations,
            effects_emitted,
            cap_slots
        })
    })
}

fn read_pure_abi(m: Item<'_, '_>, e: &mut Problems) -> Option<PureAbi> {
    object(m, "`abi.pure`", e, |o, e| {
        let input = o.req_with("input", e, qname);
        let output = o.req_with("output", e, qname);
        all_some!(PureAbi { input, output })
    })
}
