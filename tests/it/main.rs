//! The integration tests, in one binary: one link instead of one per file.
//!
//! Each module is what used to be its own test target; `common` is the hermetic harness they
//! share (temporary stores, the `aos` binary, a seeded generator, the counter world).

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

mod air_cli;
mod air_scale;
mod bundle;
mod cli;
mod crash;
mod crash_syscalls;
mod golden;
mod history;
mod keys;
mod layout;
mod locks_gc;
mod manifest;
mod reducers;
mod remote;
mod validated_cache;
mod world;
mod world_crash;
mod world_hostile;
mod world_send;
