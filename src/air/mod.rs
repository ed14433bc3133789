//! AIR v1: the typed control plane of a world — schemas, modules, plans, capabilities,
//! policies, effects, secrets and the manifest that binds them.
//!
//! Authoring is JSON (two lenses for values: sugar and tagged); what the kernel trusts is the
//! canonical, validated form, stored as `air` objects.

pub mod name;
pub mod types;
pub mod value;
