//! The world kernel's persistent data structures.
//!
//! - [`mapnode`]: the canonical Merkle map (HAMT) keyed reducers keep their per-cell state in.
//! - [`envelope`]: the CBOR envelopes passed into and out of a reducer's `step`.

pub mod envelope;
pub mod mapnode;
