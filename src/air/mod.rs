//! AIR v1: the typed control plane of a world — schemas, modules, plans, capabilities,
//! policies, effects, secrets and the manifest that binds them.
//!
//! Authoring is JSON (two lenses for values: sugar and tagged); what the kernel trusts is the
//! canonical, validated form, stored as `air` objects. The authoring forms are specified in
//! `docs/air.md`.
//!
//! - [`diag`]: the one located diagnostic type of every stage, and the reading rules.
//! - [`name`]: qualified names and identifiers.
//! - [`types`]: the type AST of schemas, named schemas, and the relations between types.
//! - [`value`]: typed values in both JSON lenses, and their canonical encoding.
//! - [`expr`]: plan expressions and the slots that take an expression or a literal: the tree,
//!   its parser, the operator table, the type checker and the evaluator.
//! - [`nodes`]: the node kinds, one file each: read strictly from JSON, rendered back,
//!   encoded canonically and decoded.
//! - [`load`]: reading files and `air/` folders into nodes with every problem located, and the
//!   built-in `sys/` catalog.
//! - [`literal`]: typed literals and expressions in canonical form.
//! - [`canon`]: the canonical encoding of nodes, their ids, and decoding stored nodes.
//! - [`render`]: canonical authoring JSON of nodes in either value lens.
//! - [`validate`]: checking a whole world (manifest, nodes, built-ins) and filling its hashes,
//!   one file per area.
//! - [`diff`]: node- and field-level differences between two control planes.
//! - [`patch`]: patch documents, typed changes to a world's AIR.

pub mod canon;
pub mod diag;
pub mod diff;
pub mod expr;
pub mod literal;
pub mod load;
pub mod name;
pub mod nodes;
pub mod patch;
pub mod render;
pub mod types;
pub mod validate;
pub mod value;

#[cfg(test)]
mod testworld;
