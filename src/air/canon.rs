//! The canonical encoding of AIR nodes and their ids.
//!
//! Every node has exactly one canonical data-model [`Value`]: a map holding `$kind` and the
//! node's fields, in which every way of spelling the same definition in authoring JSON (member
//! order, sugar or tagged literals, defaults written out or left away) comes out the same. Its
//! CBOR bytes are what the store keeps as an `air` object, and the node's id is
//! [`object::hash`]`(Kind::Air, bytes)` ([`node_id`]). The manifest lists every node it uses
//! as a CBOR link to that id, so a manifest id is the Merkle root of a world's whole control
//! plane, and `gc`/`fsck` follow its links.
//!
//! The rules are written down in `docs/air.md` ("Canonical encoding"); in short:
//!
//! - members that are absent, and optional lists and maps that are empty where empty means the
//!   same as absent, are left out; `defplan.required_caps` and `defplan.allowed_effects` are
//!   always present and always the sets derived from the steps;
//! - lists that are sets by meaning (the manifest's node lists and grants, a reducer's
//!   `effects_emitted`, a secret's `allowed_caps` and `allowed_plans`) are sorted and
//!   deduplicated; lists whose order means something (steps, edges, rules, routing, triggers)
//!   keep it;
//! - a literal value (a cap grant's `params`; a literal, or a constant expression, in an
//!   `ExprOrValue` slot whose type is known) is read through its type, canonicalized, and
//!   written as the constant expression that spells the canonical value in the tagged lens,
//!   so the sugar and the tagged spelling of one value are the same bytes, and a stored node
//!   decodes without knowing any schema ([`node_from_value`]);
//! - expressions are encoded structurally, the same shape as their JSON form (see
//!   [`expr_value`]).
//!
//! Encoding needs the types of literal slots, which live in other nodes (a plan's
//! `emit_effect.params` is typed by the effect's params schema): a [`Catalog`] of the world's
//! nodes supplies them.

pub use super::literal::{CanonError, const_expr_value, expr_from_value, expr_value};
pub(crate) use super::literal::{literal_value, slot_value};
pub use super::nodes::{Catalog, derived_caps_and_effects, list_key};
pub(crate) use super::nodes::{grant_type, slot_type};

use super::nodes::Node;
use crate::codec::cbor::{self, Value};
use crate::object::{self, Kind, ObjectId};

/// The id of a node whose canonical value is `v`: `object::hash(Kind::Air, cbor(v))`.
#[must_use]
pub fn node_id(v: &Value) -> ObjectId {
    object::hash(Kind::Air, &cbor::encode(v))
}

/// The canonical value of `node` and its id.
///
/// # Errors
/// As [`node_value`].
pub fn node_value_and_id(node: &Node, cat: &Catalog<'_>) -> Result<(Value, ObjectId), CanonError> {
    let v = node_value(node, cat)?;
    let id = node_id(&v);
    Ok((v, id))
}

/// The canonical value of a node.
///
/// # Errors
/// [`CanonError`] (with the pointer of the part, relative to the node's authoring JSON) if a
/// literal cannot be typed (its slot's type is unknown to `cat`) or does not fit its type, or
/// a manifest entry has no hash (fill the hashes first: a manifest links the ids of its
/// nodes).
pub fn node_value(node: &Node, cat: &Catalog<'_>) -> Result<Value, CanonError> {
    node.encode(cat)
}

/// Reads a node from its canonical value (as [`node_value`] produces).
///
/// Literal values come back as the constant expressions that spell them in the tagged lens
/// (`ExprOrValue::Expr` in plan slots, tagged JSON in cap grant `params`), and the manifest's
/// lists and grants, a reducer's `effects_emitted` and a secret's lists come back sorted, so
/// the node read may differ from the node once encoded in these spellings, never in meaning:
/// encoding it again gives the same value.
///
/// # Errors
/// [`CanonError`] with the path of the first part that is not a canonical node encoding.
pub fn node_from_value(v: &Value) -> Result<Node, CanonError> {
    Node::decode(v)
}

#[cfg(test)]
#[path = "canon_tests.rs"]
mod tests;
