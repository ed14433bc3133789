//! The world kernel: journal entries, snapshots, the executable control plane, the stepper
//! and the persistent data structures behind them.
//!
//! - [`entry`]: journal entries, the hash-chained history of a world.
//! - [`snapshot`]: canonical, root-complete snapshots of a world's state.
//! - [`program`]: a world's control plane made executable (schemas, reducers, routes), and
//!   the programs of a world by manifest id.
//! - [`input`]: the kernel's inputs (events, markers, manifest switches, receipts) and the
//!   input each recorded entry came from.
//! - [`machine`]: the deterministic stepper that applies inputs and appends entries.
//! - [`replay`]: replaying recorded history and naming the first divergence.
//! - [`mapnode`]: the canonical Merkle map (HAMT) keyed reducers keep their per-cell state in.
//! - [`envelope`]: the CBOR envelopes passed into and out of a reducer's `step`.

pub mod entry;
pub mod envelope;
pub mod error;
pub mod input;
pub mod machine;
pub mod mapnode;
pub mod program;
pub mod replay;
pub mod snapshot;

pub use crate::codec::shape::ShapeError;
pub use error::{
    Divergence, InputError, ModuleError, Refused, RevisionProblem, StateChange, WorldError,
    WorldNameProblem,
};
