//! Strict maps: reading a map member by member (unknown members rejected, every error at a
//! JSON pointer) and writing one, over JSON objects and canonical CBOR maps alike.
//!
//! Every object `aos` reads from outside — AIR nodes in authoring JSON, their canonical
//! values, journal entries, snapshots, reducer envelopes — is a map with a fixed set of
//! members. This module is the one way to read and write such maps:
//!
//! - [`Path`]: where a value sits, as a JSON pointer built on the stack and rendered only for
//!   an error.
//! - [`Fields`]: a map being read. Members are taken by name, required ([`Fields::req`]) or
//!   optional ([`Fields::opt`]); [`Fields::finish`] rejects the members nobody took. It works
//!   over any [`Tree`]: [`Json`](crate::codec::json::Json) objects and data-model
//!   [`Value`](crate::codec::cbor::Value) maps. Decoders whose first reported problem is
//!   fixed by a spec read in the map's order ([`Fields::each`]) or reject unknown members up
//!   front ([`Fields::only`]); kernel objects report a missing member at its own pointer
//!   ([`Fields::missing_at_member`]).
//! - [`Member`]: a value and its path, with typed accessors (`text`, `u64`, `link`, `items`,
//!   …) whose errors say what was expected and what was found.
//! - [`ShapeError`] and [`Problem`]: typed errors. Decoders that stop at the first problem
//!   return them; readers that report every problem (the AIR authoring reader) give them to a
//!   [`Sink`] and read on ([`Fields::req_with`], [`Fields::opt_with`], [`keep`]).
//! - [`MapWrite`]: one set of calls that builds a JSON object in a fixed member order
//!   ([`ObjWriter`]) or a data-model map in canonical order ([`MapWriter`]); and
//!   [`MapEncoder`], which writes a canonical CBOR map straight to bytes for the hot paths.

mod path;
mod read;
mod write;

pub use path::Path;
pub(crate) use read::located;
pub use read::{Fields, Member, Problem, ShapeError, Sink, Tree, keep};
pub use write::{MapEncoder, MapWrite, MapWriter, ObjWriter};
