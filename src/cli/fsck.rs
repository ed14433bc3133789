//! `aos fsck`: verify the store.

use aos::store::fsck::{FsckOptions, Problem, fsck_with};
use serde_json::json;

use super::{CliError, Ctx, out_json, outln};

/// Verify the whole store.
///
/// Checks every object (decompression, id, canonical encoding), every pack and index
/// (checksums, layout), every link between objects and every ref and reflog. Lists every
/// problem found and exits 1 if there is any. A lock file left by a dead process is noted
/// (the next writer removes it); `--repair` removes it now (never one a live process holds).
#[derive(clap::Args, Debug)]
pub struct FsckArgs {
    /// Remove stale lock files left by dead processes (safe beside running writers).
    #[arg(long)]
    pub repair: bool,
}

/// Runs `aos fsck`.
pub fn run(ctx: &Ctx, args: &FsckArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let bar = ctx.progress();
    let started = std::time::Instant::now();
    let opts = FsckOptions {
        repair: args.repair,
    };
    let mut r = fsck_with(&store, &opts, &bar)?;
    // What only worlds know: lineage refs and the objects they name.
    let w = aos::world::refs::check(&store)?;
    r.problems.extend(
        w.problems
            .into_iter()
            .map(|(object, location, message)| Problem {
                object,
                location,
                message,
            }),
    );
    r.notes.extend(w.notes);
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        out_json(&json!({
            "ok": r.is_ok(),
            "objects": r.objects,
            "loose": r.loose,
            "packs": r.packs,
            "packed": r.packed,
            "links": r.links,
            "refs": r.refs,
            "bytes": r.bytes,
            "seconds": secs,
            "problems": r.problems.iter().map(|p| json!({
                "object": p.object.map(|id| id.to_string()),
                "location": p.location,
                "message": p.message,
            })).collect::<Vec<_>>(),
            "notes": r.notes,
        }))?;
    } else {
        for p in &r.problems {
            match p.object {
                Some(id) => outln(&format!("problem: {id}: {}: {}", p.location, p.message))?,
                None => outln(&format!("problem: {}: {}", p.location, p.message))?,
            }
        }
        for n in &r.notes {
            outln(&format!("note: {n}"))?;
        }
        outln(&format!(
            "checked {} objects ({} loose, {} in {} packs), {} links, {} refs, {} bytes in {secs:.2}s: {}",
            r.objects,
            r.loose,
            r.packed,
            r.packs,
            r.links,
            r.refs,
            r.bytes,
            if r.is_ok() {
                "ok".to_owned()
            } else {
                format!("{} problems", r.problems.len())
            }
        ))?;
    }
    if r.is_ok() {
        Ok(())
    } else {
        Err(CliError::silent())
    }
}
