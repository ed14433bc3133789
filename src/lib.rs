//! `aos`: AgentOS + AIR worlds kept as content-addressed, verifiable, git-like repositories.
//!
//! The library is layered like the data flow; dependencies point down:
//!
//! - [`air`]: AIR v1, the typed control plane: names, types, typed values, node kinds,
//!   expressions, the loader, the built-in `sys/` catalog, canonical node encoding and ids,
//!   and whole-world validation.
//! - [`codec`]: canonical CBOR (the one persisted data model) and its JSON mapping. Pure.
//! - [`kernel`]: the deterministic world kernel: journal entries, snapshots, the program, the
//!   stepper and replay.
//! - [`world`]: worlds in a store: create, open, send, state, verify, history, fork, diff.
//! - [`object`]: object kinds and BLAKE3 ids with domain separation.
//! - [`store`]: the `.aos` directory: loose objects, packs, refs with reflogs, fsck and gc.
//! - [`transfer`]: moving objects between stores: ancestry, the outgoing walk, the checked
//!   incoming write, and bundles.
//! - [`remote`]: remotes, and fetch, pull, push and clone between stores.
//! - [`wasm`]: the deterministic WebAssembly engine for reducers and pure components.
//! - [`examples`]: the example worlds built into the binary.
//! - [`progress`]: the callback through which long operations report progress.
//!
//! The library never prints; the `aos` binary renders what it returns.

pub mod air;
pub mod codec;
pub mod examples;
pub mod kernel;
pub mod object;
pub mod progress;
pub mod remote;
pub mod store;
pub mod transfer;
pub mod wasm;
pub mod world;

pub use object::{Kind, ObjectId};

/// An error's message followed by its causes, each once (a cause whose text the message
/// already contains is skipped): what a command prints for a failure.
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = c.source();
    }
    s
}
