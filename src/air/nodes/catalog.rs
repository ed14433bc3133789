//! The catalog: a world's nodes indexed by what encoding and validation look up.

use std::collections::HashMap;

use super::write::Lookup;
use super::{DefCap, DefEffect, DefModule, ModuleAbi, Node};
use crate::air::name::Name;
use crate::air::types::{Schemas, Type};

/// The nodes of a world, indexed for what encoding (and validation) needs to look up: schemas
/// by name, effects by kind, modules and capabilities by name.
///
/// When two nodes claim one name (or two effects one kind) the first one wins; validation
/// reports the clash.
#[derive(Debug, Default)]
pub struct Catalog<'a> {
    schemas: HashMap<&'a Name, &'a Type>,
    effects: HashMap<&'a str, &'a DefEffect>,
    modules: HashMap<&'a Name, &'a DefModule>,
    caps: HashMap<&'a Name, &'a DefCap>,
}

impl<'a> Catalog<'a> {
    /// Indexes `nodes` (manifests are ignored).
    pub fn new<I: IntoIterator<Item = &'a Node>>(nodes: I) -> Self {
        let mut c = Catalog::default();
        for n in nodes {
            match n {
                Node::DefSchema(s) => {
                    c.schemas.entry(&s.name).or_insert(&s.ty);
                }
                Node::DefEffect(e) => {
                    c.effects.entry(e.kind.as_str()).or_insert(e);
                }
                Node::DefModule(m) => {
                    c.modules.entry(&m.name).or_insert(m);
                }
                Node::DefCap(x) => {
                    c.caps.entry(&x.name).or_insert(x);
                }
                _ => {}
            }
        }
        c
    }

    /// The type of the schema named `name`.
    #[must_use]
    pub fn schema(&self, name: &Name) -> Option<&'a Type> {
        self.schemas.get(name).copied()
    }

    /// Drops the schema named `name`, so that types reaching it count as unknown (validation
    /// does this to schemas that are recursive or reach unknown ones).
    pub(crate) fn forget_schema(&mut self, name: &Name) {
        self.schemas.remove(name);
    }

    /// The effect of kind `kind`.
    #[must_use]
    pub fn effect(&self, kind: &str) -> Option<&'a DefEffect> {
        self.effects.get(kind).copied()
    }

    /// The module named `name`.
    #[must_use]
    pub fn module(&self, name: &Name) -> Option<&'a DefModule> {
        self.modules.get(name).copied()
    }

    /// The capability named `name`.
    #[must_use]
    pub fn cap(&self, name: &Name) -> Option<&'a DefCap> {
        self.caps.get(name).copied()
    }

    /// The event schema of the reducer named `name`, if it is a reducer.
    #[must_use]
    pub fn reducer_event(&self, name: &Name) -> Option<&'a Name> {
        match &self.module(name)?.abi {
            ModuleAbi::Reducer(r) => Some(&r.event),
            ModuleAbi::Pure(_) => None,
        }
    }
}

impl Schemas for Catalog<'_> {
    fn get(&self, name: &Name) -> Option<&Type> {
        self.schema(name)
    }
}

impl Lookup for Catalog<'_> {
    fn effect_params(&self, kind: &str) -> Option<&Name> {
        self.effect(kind).map(|e| &e.params_schema)
    }

    fn reducer_event(&self, name: &Name) -> Option<&Name> {
        Catalog::reducer_event(self, name)
    }

    fn cap_schema(&self, name: &Name) -> Option<&Type> {
        self.cap(name).map(|c| &c.schema)
    }
}
