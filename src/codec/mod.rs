//! Codecs: canonical CBOR, the persisted data model, and its JSON mapping. No I/O.

pub mod cbor;
pub mod diff;
pub mod json;

pub use cbor::{DecodeError, Int, Map, Rule, Value};
