//! The world kernel's persistent data structures.
//!
//! - [`mapnode`]: the canonical Merkle map (HAMT) keyed reducers keep their per-cell state in.

pub mod mapnode;
