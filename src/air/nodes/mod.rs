//! The AIR node kinds as Rust types, one file per kind, each with its four directions: read
//! strictly from authoring JSON, written back to it, encoded as its canonical value, decoded
//! from it.
//!
//! Reading rejects unknown fields, wrong JSON types, missing required fields and malformed
//! names, identifiers, hashes, numbers, type ASTs and expressions, and reports every problem
//! it finds (not only the first) as a [`ParseError`]: a JSON pointer, a [`Rule`] and a plain
//! message. It never panics. What it does not check is meaning across fields and nodes
//! (references resolve, plans are DAGs, literals fit their schemas, …): that is validation.
//!
//! Rendering ([`Node::to_json`]) writes `$kind` first, then the fields in the order
//! `docs/air.md` lists them, omitting optional fields that are absent and list- or map-valued
//! fields that are optional and empty (except where absent and empty differ in meaning:
//! `defplan.required_caps`, `defplan.allowed_effects`, `defsecret.allowed_caps`,
//! `defsecret.allowed_plans`). Reading a rendering gives an equal node.
//!
//! Declared order is kept wherever it exists in the JSON (steps, edges, routing, record
//! fields, manifest lists, …), so the JSON pointer of any part of a node can be rebuilt from
//! its position: step `i` of a plan read at pointer `P` sits at `P/steps/i`.
//!
//! The canonical value (the `canon` module gives its rules) is written by the same code as
//! the authoring JSON: each kind lists its members once, for a writer (`write::Out`) of
//! either form. Every map, in either tree, is read and written with the strict map
//! kit of [`codec::shape`](crate::codec::shape).
//!
//! - [`schema`], [`module`], [`plan`], [`cap`], [`policy`], [`effect`], [`secret`],
//!   [`manifest`]: the kinds.
//! - `read` and `decode`: the readers the kinds share, for authoring JSON (every problem
//!   reported) and for canonical values (the first problem returned).
//! - `write`: writing either form.
//! - `catalog`: a world's nodes indexed for what encoding and validation look up.

/// Defines an enum whose values are words of the forms (`"plan"`, `"deny"`): the enum, its
/// `ALL` values in the order messages list them, `as_str`, and the `(word, value)` table the
/// readers take.
macro_rules! words {
    (
        $(#[$doc:meta])*
        $name:ident { $($(#[$vdoc:meta])* $v:ident = $w:literal),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $v),+
        }

        impl $name {
            /// Every value, in the order messages list them.
            pub const ALL: [$name; [$($w),+].len()] = [$($name::$v),+];

            /// The word used in JSON and in the canonical encoding.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $w),+
                }
            }

            /// `(word, value)` for every value.
            pub(super) fn words() -> [(&'static str, $name); [$($w),+].len()] {
                Self::ALL.map(|x| (x.as_str(), x))
            }
        }
    };
}

pub mod cap;
mod catalog;
mod decode;
pub mod effect;
pub mod manifest;
pub mod module;
pub mod plan;
pub mod policy;
mod read;
pub mod schema;
pub mod secret;
mod write;

use std::fmt;

pub use super::diag::{ParseError, Rule};
pub use cap::DefCap;
pub use catalog::Catalog;
pub use effect::{DefEffect, OriginScope};
pub use manifest::{
    Budget, CapGrant, Defaults, Inbox, Manifest, ModuleBinding, NamedRef, RouteEvent, Routing,
    Trigger, cap_grant_from_json, cap_grant_to_json, list_key,
};
pub use module::{DefModule, ModuleAbi, ModuleKind, PureAbi, ReducerAbi};
pub use plan::{DefPlan, Edge, Step, StepOp, derived_caps_and_effects};
pub use policy::{Decision, DefPolicy, OriginKind, PolicyMatch, PolicyRule};
pub use schema::DefSchema;
pub use secret::DefSecret;

pub(crate) use manifest::grant_type;
pub(crate) use plan::slot_type;

use super::diag::{Rule as R, comma_list, push_err};
use super::literal::CanonError;
use super::name::Name;
use crate::codec::cbor::Value;
use crate::codec::json::Json;
use crate::codec::shape::{MapWrite, ObjWriter, Path, ShapeError};
use decode::{Decode, Rd};
use read::{Item, Obj, Problems, report};
use write::{Canonical, Out};

// ---------------------------------------------------------------------------------------------
// Node kinds

/// The kind of a node: the value of its `$kind` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// `defschema`.
    DefSchema,
    /// `defmodule`.
    DefModule,
    /// `defplan`.
    DefPlan,
    /// `defcap`.
    DefCap,
    /// `defpolicy`.
    DefPolicy,
    /// `defeffect`.
    DefEffect,
    /// `defsecret`.
    DefSecret,
    /// `manifest`.
    Manifest,
}

impl NodeKind {
    /// Every kind.
    pub const ALL: [NodeKind; 8] = [
        NodeKind::DefSchema,
        NodeKind::DefModule,
        NodeKind::DefPlan,
        NodeKind::DefCap,
        NodeKind::DefPolicy,
        NodeKind::DefEffect,
        NodeKind::DefSecret,
        NodeKind::Manifest,
    ];

    /// The `$kind` text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::DefSchema => "defschema",
            NodeKind::DefModule => "defmodule",
            NodeKind::DefPlan => "defplan",
            NodeKind::DefCap => "defcap",
            NodeKind::DefPolicy => "defpolicy",
            NodeKind::DefEffect => "defeffect",
            NodeKind::DefSecret => "defsecret",
            NodeKind::Manifest => "manifest",
        }
    }

    /// The kind with `$kind` text `s`.
    #[must_use]
    pub fn from_name(s: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any AIR node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A `defschema`.
    DefSchema(DefSchema),
    /// A `defmodule`.
    DefModule(DefModule),
    /// A `defplan`.
    DefPlan(DefPlan),
    /// A `defcap`.
    DefCap(DefCap),
    /// A `defpolicy`.
    DefPolicy(DefPolicy),
    /// A `defeffect`.
    DefEffect(DefEffect),
    /// A `defsecret`.
    DefSecret(DefSecret),
    /// A `manifest`.
    Manifest(Manifest),
}

impl Node {
    /// The node's kind.
    #[must_use]
    pub fn kind(&self) -> NodeKind {
        match self {
            Node::DefSchema(_) => NodeKind::DefSchema,
            Node::DefModule(_) => NodeKind::DefModule,
            Node::DefPlan(_) => NodeKind::DefPlan,
            Node::DefCap(_) => NodeKind::DefCap,
            Node::DefPolicy(_) => NodeKind::DefPolicy,
            Node::DefEffect(_) => NodeKind::DefEffect,
            Node::DefSecret(_) => NodeKind::DefSecret,
            Node::Manifest(_) => NodeKind::Manifest,
        }
    }

    /// The node's name; a manifest has none.
    #[must_use]
    pub fn name(&self) -> Option<&Name> {
        Some(match self {
            Node::DefSchema(n) => &n.name,
            Node::DefModule(n) => &n.name,
            Node::DefPlan(n) => &n.name,
            Node::DefCap(n) => &n.name,
            Node::DefPolicy(n) => &n.name,
            Node::DefEffect(n) => &n.name,
            Node::DefSecret(n) => &n.name,
            Node::Manifest(_) => return None,
        })
    }

    /// Reads a node from its authoring JSON; pointers in errors are relative to `j` (`""`).
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_json(j: &Json) -> Result<Node, Vec<ParseError>> {
        Self::from_json_at(j, "")
    }

    /// Reads a node that sits at JSON pointer `pointer` of its file (e.g. `/3` for the fourth
    /// node of an array); errors carry full pointers.
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_json_at(j: &Json, pointer: &str) -> Result<Node, Vec<ParseError>> {
        let mut e = Vec::new();
        match read_node(Item::new(j, Path::base(pointer)), &mut e) {
            Some(n) if e.is_empty() => Ok(n),
            _ => Err(e),
        }
    }

    /// Renders the node's authoring JSON.
    #[must_use]
    pub fn to_json(&self) -> Json {
        let mut w = ObjWriter::default();
        match self.write(&mut w) {
            Ok(()) => w.done(),
            Err(never) => match never {},
        }
    }

    /// The node's canonical value, its literal slots typed by `cat` (what `canon::node_value`
    /// gives).
    pub(crate) fn encode(&self, cat: &Catalog<'_>) -> Result<Value, CanonError> {
        let mut w = Canonical::new(cat);
        self.write(&mut w)?;
        Ok(w.done())
    }

    /// Reads a node from its canonical value (what `canon::node_from_value` does).
    pub(crate) fn decode(v: &Value) -> Result<Node, CanonError> {
        Ok(decode_node(v)?)
    }

    /// Writes `$kind` and the node's members, in either form.
    fn write<O: Out>(&self, o: &mut O) -> Result<(), O::Error> {
        o.text("$kind", self.kind().as_str());
        match self {
            Node::DefSchema(n) => n.write(o),
            Node::DefModule(n) => n.write(o),
            Node::DefPlan(n) => n.write(o)?,
            Node::DefCap(n) => n.write(o),
            Node::DefPolicy(n) => n.write(o),
            Node::DefEffect(n) => n.write(o),
            Node::DefSecret(n) => n.write(o),
            Node::Manifest(n) => n.write(o)?,
        }
        Ok(())
    }
}

fn read_node(m: Item<'_, '_>, e: &mut Problems) -> Option<Node> {
    let Json::Object(members) = m.value else {
        report(
            e,
            &m,
            R::WrongType,
            format!(
                "a node is an object with a `$kind` field, found {}",
                m.value.type_name()
            ),
        );
        return None;
    };
    let Some((_, kind_json)) = members.iter().find(|(k, _)| k == "$kind") else {
        report(e, &m, R::MissingField, "a node needs `$kind`");
        return None;
    };
    let kp = m.path.key("$kind");
    let Json::String(kind_text) = kind_json else {
        push_err(e, &kp.pointer(), R::WrongType, "`$kind` is a string");
        return None;
    };
    let Some(kind) = NodeKind::from_name(kind_text) else {
        push_err(
            e,
            &kp.pointer(),
            R::UnknownKind,
            format!(
                "unknown node kind {kind_text:?} (expected one of {})",
                comma_list(NodeKind::ALL.iter().map(|k| k.as_str()))
            ),
        );
        return None;
    };
    let mut o = Obj::open_into(m.value, &m.path, kind.as_str(), e)?;
    o.opt("$kind");
    let node = match kind {
        NodeKind::DefSchema => DefSchema::read(&mut o, e).map(Node::DefSchema),
        NodeKind::DefModule => DefModule::read(&mut o, e).map(Node::DefModule),
        NodeKind::DefPlan => DefPlan::read(&mut o, e).map(Node::DefPlan),
        NodeKind::DefCap => DefCap::read(&mut o, e).map(Node::DefCap),
        NodeKind::DefPolicy => DefPolicy::read(&mut o, e).map(Node::DefPolicy),
        NodeKind::DefEffect => DefEffect::read(&mut o, e).map(Node::DefEffect),
        NodeKind::DefSecret => DefSecret::read(&mut o, e).map(Node::DefSecret),
        NodeKind::Manifest => Manifest::read(&mut o, e).map(Node::Manifest),
    };
    o.finish_into(e);
    node
}

fn decode_node(v: &Value) -> Result<Node, ShapeError> {
    let mut r = Rd::open(v, &Path::ROOT, "a node")?;
    let kind = r.text("$kind")?;
    let kind = NodeKind::from_name(&kind).ok_or_else(|| {
        ShapeError::invalid(
            &Path::ROOT.key("$kind"),
            format!("unknown node kind {kind:?}"),
        )
    })?;
    let node = match kind {
        NodeKind::DefSchema => Node::DefSchema(DefSchema::decode(&mut r)?),
        NodeKind::DefModule => Node::DefModule(DefModule::decode(&mut r)?),
        NodeKind::DefPlan => Node::DefPlan(DefPlan::decode(&mut r)?),
        NodeKind::DefCap => Node::DefCap(DefCap::decode(&mut r)?),
        NodeKind::DefPolicy => Node::DefPolicy(DefPolicy::decode(&mut r)?),
        NodeKind::DefEffect => Node::DefEffect(DefEffect::decode(&mut r)?),
        NodeKind::DefSecret => Node::DefSecret(DefSecret::decode(&mut r)?),
        NodeKind::Manifest => Node::Manifest(Manifest::decode(&mut r)?),
    };
    r.finish()?;
    Ok(node)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
