//! Codecs: canonical CBOR, the persisted data model, its JSON mapping, and strict maps over
//! both. No I/O.

pub mod cbor;
pub mod diff;
pub mod json;
pub mod quote;
pub mod shape;

pub use cbor::{DecodeError, Int, Map, Rule, Value};
