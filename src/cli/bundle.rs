//! `aos bundle`: worlds' histories in one file, to carry between stores.

use std::path::PathBuf;
use std::time::Instant;

use aos::object::{IdPrefix, ObjectId};
use aos::store::Store;
use aos::store::StoreError;
use aos::transfer::TransferError;
use aos::transfer::bundle::{self, BundleReader, CreateOptions, Header, UnbundleOptions};
use serde_json::{Value as J, json};

use super::{CliError, Ctx, chain, out_json, outln};

/// Carry worlds between stores in a file.
///
/// A bundle holds worlds' refs and every object they reach (or, with `--since`, only what
/// is new since entries the receiver has), followed by a checksum. `create` writes one,
/// `verify` checks one, `list-heads` shows its refs, and `unbundle` stores it and moves refs
/// (fast-forward only, unless `--force`). The format is objects-spec §14.
#[derive(clap::Args, Debug)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCommand,
}

/// The bundle subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum BundleCommand {
    Create(CreateArgs),
    Verify(VerifyArgs),
    ListHeads(ListHeadsArgs),
    Unbundle(UnbundleArgs),
}

/// Write worlds into a bundle file.
///
/// Bundles each world's ref `refs/worlds/NAME` and, when its checkpoint is a snapshot of its
/// head, `refs/checkpoints/NAME` (so the receiver opens the world without replaying), with
/// every object they reach. With `--since`, the given entries become prerequisites and
/// nothing they reach is included: an incremental bundle for a receiver that has them.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The bundle file to write (replaced if it exists).
    pub file: PathBuf,
    /// The worlds to bundle.
    #[arg(required = true, value_name = "WORLD")]
    pub worlds: Vec<String>,
    /// A journal entry the receiver has (an id or prefix, such as a head an earlier bundle
    /// carried); it must be an ancestor of a bundled head. Repeatable.
    #[arg(long, value_name = "ID")]
    pub since: Vec<String>,
}

/// Check a bundle completely.
///
/// Checks the header, that this store has every prerequisite, every object (id, kind,
/// encoding, structure), that the objects plus the store hold every link, that every ref
/// names a bundled object or a prerequisite, and both checksums. Exits 1 naming the first
/// problem. Outside a store, a bundle with prerequisites cannot be fully checked, and fails.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The bundle file.
    pub file: PathBuf,
}

/// List the refs a bundle carries (`--json` adds its prerequisites and capabilities).
#[derive(clap::Args, Debug)]
pub struct ListHeadsArgs {
    /// The bundle file.
    pub file: PathBuf,
}

/// Store a bundle's objects and set its refs.
///
/// Verifies the bundle first (nothing is stored from a bundle that fails), stores its
/// objects, then creates missing worlds and moves existing ones to the bundle's heads when
/// those descend from the current heads. A world whose history diverged is an error unless
/// `--force`; the old head stays in the reflog.
#[derive(clap::Args, Debug)]
pub struct UnbundleArgs {
    /// The bundle file.
    pub file: PathBuf,
    /// Move worlds even when the bundle's head does not descend from the current one.
    #[arg(long)]
    pub force: bool,
}

/// Runs `aos bundle`.
pub fn run(ctx: &Ctx, args: &BundleArgs) -> Result<(), CliError> {
    match &args.command {
        BundleCommand::Create(a) => create(ctx, a),
        BundleCommand::Verify(a) => verify(ctx, a),
        BundleCommand::ListHeads(a) => list_heads(ctx, a),
        BundleCommand::Unbundle(a) => unbundle(ctx, a),
    }
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

fn refs_json(h: &Header) -> J {
    J::Array(
        h.refs
            .iter()
            .map(|(id, n)| json!({"id": id.to_string(), "name": n.as_str()}))
            .collect(),
    )
}

fn ids_json(ids: &[ObjectId]) -> J {
    J::Array(ids.iter().map(|i| J::String(i.to_string())).collect())
}

fn create(ctx: &Ctx, args: &CreateArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let mut since = Vec::with_capacity(args.since.len());
    for s in &args.since {
        let prefix: IdPrefix = s
            .parse()
            .map_err(|e: aos::object::IdError| CliError::usage(format!("--since: {e}")))?;
        since.push(store.resolve(&prefix)?);
    }
    let path = ctx.cwd.join(&args.file);
    let opts = CreateOptions {
        worlds: args.worlds.clone(),
        since,
    };
    let started = Instant::now();
    let r = bundle::create(&store, &path, &opts, &ctx.progress())?;
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        return out_json(&json!({
            "file": path.display().to_string(),
            "refs": refs_json(&r.header),
            "prerequisites": ids_json(&r.header.prerequisites),
            "objects": r.objects,
            "payload_bytes": r.payload_bytes,
            "bytes": r.bytes,
            "seconds": secs,
        }));
    }
    for (id, name) in &r.header.refs {
        outln(&format!("{id} {}", name.as_str()))?;
    }
    outln(&format!(
        "wrote {}: {} objects, {} bytes{} in {secs:.2}s ({:.1} MB/s, {:.0} objects/s)",
        args.file.display(),
        r.objects,
        r.bytes,
        match r.header.prerequisites.len() {
            0 => String::new(),
            n => format!(", {n} prerequisite(s)"),
        },
        mb_per_s(r.bytes, secs),
        r.objects as f64 / secs.max(1e-9),
    ))
}

/// The store to check against: the one found (or named), or none outside a store.
fn optional_store(ctx: &Ctx) -> Result<Option<Store>, CliError> {
    if ctx.aos_dir.is_some() {
        return ctx.store().map(Some);
    }
    match Store::discover_with(&ctx.cwd, &ctx.options) {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::NoStore { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn problem_json(e: &TransferError) -> J {
    let (object, offset) = match e {
        TransferError::Rejected { id, at, .. } => (Some(*id), *at),
        TransferError::Format { at, .. } => (None, Some(*at)),
        TransferError::Incomplete { from, .. } => (Some(*from), None),
        TransferError::Journal { id, .. } | TransferError::Missing { id, .. } => (Some(*id), None),
        _ => (None, None),
    };
    json!({
        "message": chain(e),
        "object": object.map(|i| i.to_string()),
        "offset": offset,
    })
}

fn verify(ctx: &Ctx, args: &VerifyArgs) -> Result<(), CliError> {
    let path = ctx.cwd.join(&args.file);
    let fail = |e: TransferError| -> CliError {
        if ctx.json {
            if let Err(o) = out_json(&json!({"ok": false, "problem": problem_json(&e)})) {
                return o;
            }
            let mut c = CliError::from(e);
            // The problem is on stdout; say it on stderr too, for people.
            c.code = 1;
            return c;
        }
        CliError::from(e)
    };
    let b = BundleReader::open(&path).map_err(fail)?;
    let store = optional_store(ctx)?;
    let started = Instant::now();
    let r = bundle::verify(&b, store.as_ref(), &ctx.progress()).map_err(fail)?;
    let secs = started.elapsed().as_secs_f64();
    let ok = r.unchecked_prerequisites.is_empty();
    if ctx.json {
        out_json(&json!({
            "ok": ok,
            "file": path.display().to_string(),
            "refs": refs_json(b.header()),
            "prerequisites": ids_json(&b.header().prerequisites),
            "unchecked_prerequisites": ids_json(&r.unchecked_prerequisites),
            "objects": r.checked.objects,
            "payload_bytes": r.checked.payload_bytes,
            "bytes": b.len(),
            "seconds": secs,
        }))?;
    } else if ok {
        outln(&format!(
            "{} is okay: {} objects, {} bytes, {} ref(s){}; checked in {secs:.2}s ({:.1} MB/s)",
            args.file.display(),
            r.checked.objects,
            b.len(),
            b.header().refs.len(),
            match b.header().prerequisites.len() {
                0 => ", complete history".to_owned(),
                n => format!(", {n} prerequisite(s) present"),
            },
            mb_per_s(b.len(), secs),
        ))?;
    }
    if ok {
        Ok(())
    } else {
        let list: Vec<String> = r
            .unchecked_prerequisites
            .iter()
            .map(ToString::to_string)
            .collect();
        Err(CliError::user(format!(
            "{}: the objects are sound, but outside a store these prerequisites could not be checked: {}",
            args.file.display(),
            list.join(", ")
        ))
        .with_hint("run `aos bundle verify` inside the store the bundle is for"))
    }
}

fn list_heads(ctx: &Ctx, args: &ListHeadsArgs) -> Result<(), CliError> {
    let path = ctx.cwd.join(&args.file);
    let b = BundleReader::open(&path)?;
    let h = b.header();
    if ctx.json {
        let caps: serde_json::Map<String, J> = h
            .capabilities
            .iter()
            .map(|(k, v)| (k.clone(), J::String(v.clone())))
            .collect();
        return out_json(&json!({
            "refs": refs_json(h),
            "prerequisites": ids_json(&h.prerequisites),
            "capabilities": caps,
        }));
    }
    for (id, name) in &h.refs {
        outln(&format!("{id} {}", name.as_str()))?;
    }
    Ok(())
}

fn unbundle(ctx: &Ctx, args: &UnbundleArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let path = ctx.cwd.join(&args.file);
    let b = BundleReader::open(&path)?;
    let opts = UnbundleOptions {
        force: args.force,
        ..UnbundleOptions::default()
    };
    let started = Instant::now();
    let r = bundle::unbundle(&store, &b, &opts, &ctx.progress())?;
    let secs = started.elapsed().as_secs_f64();
    if ctx.json {
        return out_json(&json!({
            "file": path.display().to_string(),
            "objects": r.checked.objects,
            "written": r.write.written,
            "existing": r.write.existing,
            "bytes": b.len(),
            "seconds": secs,
            "refs": r.refs.iter().map(|u| json!({
                "name": u.name.as_str(),
                "old": u.old.map(|o| o.to_string()),
                "new": u.new.to_string(),
                "change": u.change.word(),
            })).collect::<Vec<_>>(),
            "skipped": r.skipped.iter().map(|(n, why)| json!({
                "name": n.as_str(),
                "why": why,
            })).collect::<Vec<_>>(),
        }));
    }
    for u in &r.refs {
        let what = match u.old {
            Some(o) if o != u.new => format!("{} {o} -> {}", u.change.word(), u.new),
            _ => format!("{} {}", u.change.word(), u.new),
        };
        outln(&format!("{}: {what}", u.name.as_str()))?;
    }
    for (n, why) in &r.skipped {
        super::errln!("note: {} not set: {why}", n.as_str());
    }
    outln(&format!(
        "stored {} new objects ({} present already) from {} in {secs:.2}s ({:.1} MB/s)",
        r.write.written,
        r.write.existing,
        args.file.display(),
        mb_per_s(b.len(), secs),
    ))
}
