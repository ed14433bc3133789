//! World commands: `aos world new|list`, `send`, `state`, `log`, `show`, `snapshot`, `verify`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use aos::air::load::load_path;
use aos::air::value;
use aos::codec::cbor::Value;
use aos::codec::json::{self, Json, parse_json};
use aos::kernel::entry::{Body, Entry, Origin};
use aos::kernel::{Divergence, InputError, WorldError};
use aos::object::{IdPrefix, Kind, ObjectId};
use aos::progress::Progress;
use aos::wasm::Limits;
use aos::world::history::Rev;
use aos::world::{
    self, Batch, BatchError, CreateOptions, Durable, LogEntry, SendOptions, VerifyFrom, World,
    create_world, list_worlds, verify,
};
use serde_json::json;

use super::{CliError, Ctx, out_json, outln};

// ---------------------------------------------------------------------------------------------
// aos world

/// Create and list worlds.
#[derive(clap::Args, Debug)]
pub struct WorldArgs {
    #[command(subcommand)]
    cmd: WorldCmd,
}

#[derive(clap::Subcommand, Debug)]
enum WorldCmd {
    New(NewArgs),
    List(ListArgs),
}

/// Create a world from an AIR directory and WASM modules, or from a built-in example.
///
/// The world's journal starts with a genesis entry binding its manifest, its modules and its
/// configuration (limits, snapshot interval, derived-event bound), which replay reuses.
#[derive(clap::Args, Debug)]
struct NewArgs {
    /// The world's name.
    name: String,
    /// Directory (or file) of AIR JSON: the manifest and the nodes it lists.
    #[arg(long, value_name = "DIR", conflicts_with = "example", required_unless_present_any = ["example", "list_examples"])]
    air: Option<PathBuf>,
    /// WASM of a module whose defmodule has no wasm_hash: MODULE=FILE.
    #[arg(long, value_name = "MODULE=FILE", requires = "air")]
    wasm: Vec<String>,
    /// A built-in example: `counter` or `keyed`.
    #[arg(long, value_name = "NAME")]
    example: Option<String>,
    /// List the built-in examples and exit.
    #[arg(long, hide = true)]
    list_examples: bool,
    /// Entries between automatic snapshots (0: never).
    #[arg(long, value_name = "N", default_value_t = world::DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// The most derived events one ingress event may cause.
    #[arg(long, value_name = "N", default_value_t = world::DEFAULT_MAX_DERIVED)]
    max_derived: u64,
    /// Fuel per reducer step.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT_FUEL)]
    fuel: u64,
    /// Largest memory of a module, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT_MAX_MEMORY_BYTES)]
    max_memory: u64,
}

/// List the worlds of the store.
#[derive(clap::Args, Debug)]
struct ListArgs {}

/// Runs `aos world`.
pub fn run_world(ctx: &Ctx, args: &WorldArgs) -> Result<(), CliError> {
    match &args.cmd {
        WorldCmd::New(a) => new(ctx, a),
        WorldCmd::List(_) => {
            let store = ctx.store()?;
            let worlds = list_worlds(&store)?;
            if ctx.json {
                return out_json(&json!(
                    worlds
                        .iter()
                        .map(|(n, h)| json!({"name": n, "head": h.to_string()}))
                        .collect::<Vec<_>>()
                ));
            }
            for (n, h) in worlds {
                outln(&format!("{n}\t{h}"))?;
            }
            Ok(())
        }
    }
}

fn new(ctx: &Ctx, a: &NewArgs) -> Result<(), CliError> {
    if a.list_examples {
        for e in aos::examples::EXAMPLES {
            outln(&format!("{}\t{}", e.name, e.about))?;
        }
        return Ok(());
    }
    let store = ctx.store()?;
    let (nodes, wasm) = if let Some(name) = &a.example {
        let Some(e) = aos::examples::example(name) else {
            let names: Vec<_> = aos::examples::EXAMPLES.iter().map(|e| e.name).collect();
            return Err(CliError::user(format!(
                "no example named `{name}` (there are: {})",
                names.join(", ")
            )));
        };
        let nodes = e
            .nodes()
            .map_err(|p| CliError::user(format!("example {name}: {p:?}")))?;
        (nodes, e.wasm())
    } else {
        let dir = ctx.cwd.join(a.air.as_ref().expect("clap requires --air"));
        let loaded = load_path(&dir);
        let nodes = loaded.into_result().map_err(|problems| {
            let mut msg = format!("cannot load AIR from {}:", dir.display());
            for p in &problems {
                msg.push_str("\n  ");
                msg.push_str(&p.to_string());
            }
            CliError::user(msg)
        })?;
        let mut wasm = Vec::new();
        for w in &a.wasm {
            let Some((module, file)) = w.split_once('=') else {
                return Err(CliError::usage(format!("--wasm {w}: expected MODULE=FILE")));
            };
            let path = ctx.cwd.join(file);
            let bytes = std::fs::read(&path)
                .map_err(|e| CliError::user(format!("--wasm {module}: {}: {e}", path.display())))?;
            wasm.push((module.to_owned(), bytes));
        }
        (nodes, wasm)
    };
    let opts = CreateOptions {
        limits: Limits {
            fuel: a.fuel,
            max_memory_bytes: a.max_memory,
            ..Limits::default()
        },
        snapshot_every: a.snapshot_every,
        max_derived: a.max_derived,
    };
    let c = create_world(&store, &a.name, nodes, &wasm, &opts)?;
    if ctx.json {
        return out_json(&json!({
            "world": a.name,
            "genesis": c.genesis.to_string(),
            "manifest": c.manifest.to_string(),
            "modules": c.modules.iter().map(|(n, id)| json!({"name": n, "wasm": id.to_string()})).collect::<Vec<_>>(),
        }));
    }
    outln(&format!("created world {} at {}", a.name, c.genesis))?;
    for (n, id) in &c.modules {
        outln(&format!("  module {n} {id}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// aos send

/// Send events to a world.
///
/// One event: `aos send WORLD SCHEMA JSON`. Many: `aos send WORLD --batch FILE.jsonl` with one
/// `{"schema": .., "value": .., "key"?: ..}` per line (`-` reads standard input). Every event
/// is checked against its schema before anything is appended; a batch is then appended in
/// group commits (one pack and one fsync each), and each acknowledged event is durable.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The world.
    world: String,
    /// The event's schema.
    #[arg(required_unless_present = "batch")]
    schema: Option<String>,
    /// The event's value as JSON (sugar or tagged lens).
    #[arg(required_unless_present = "batch")]
    value: Option<String>,
    /// The event's key, as JSON (must match the key field of keyed routes).
    #[arg(long, value_name = "JSON")]
    key: Option<String>,
    /// An idempotency key: if the world already holds an event sent with this key (within
    /// its last 100,000 entries), the same event is acknowledged, not appended again.
    #[arg(long, value_name = "KEY")]
    id: Option<String>,
    /// Read events from a JSON Lines file (`-`: standard input); an `id` member on a line is
    /// that event's idempotency key.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["schema", "value", "key", "id"])]
    batch: Option<PathBuf>,
    /// Commit after this many events.
    #[arg(long, value_name = "N", default_value_t = SendOptions::default().commit_events)]
    commit_every: u64,
    /// Check the whole batch but send only the events after the first N: how a batch is
    /// resumed after a failure that acknowledged N events as durable.
    #[arg(long, value_name = "N", requires = "batch", default_value_t = 0)]
    skip: u64,
}

/// Prints one durable commit of a batch: a line, or a JSON record with `--json`.
fn print_ack(ctx: &Ctx, d: &Durable) {
    let line = if ctx.json {
        json!({"durable": {
            "commit": d.commit,
            "events": d.events,
            "duplicates": d.duplicates,
            "first_height": d.first_height,
            "last_height": d.last_height,
            "head": d.head.to_string(),
        }})
        .to_string()
    } else {
        let held = match d.duplicates {
            0 => String::new(),
            n => format!(" ({n} already in the world)"),
        };
        if d.first_height > d.last_height {
            format!(
                "durable: {} events{held}, nothing new appended, head {}",
                d.events, d.head
            )
        } else {
            format!(
                "durable: {} events{held}, heights {} to {}, head {}",
                d.events, d.first_height, d.last_height, d.head
            )
        }
    };
    // A result line that cannot be written fails the command at its summary line.
    let _ = outln(&line);
}

/// The hint for a batch that failed after `last` (or before any commit).
fn resume_hint(a: &SendArgs, last: Option<&Durable>) -> String {
    let file = a
        .batch
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    match last {
        Some(d) => format!(
            "the first {} events of the batch are durable (up to height {}, head {}); \
             `aos send {} --batch {file} --skip {}` sends the rest",
            d.events, d.last_height, d.head, a.world, d.events
        ),
        None if a.skip > 0 => format!(
            "no more event of the batch was appended: the first {} are still the durable ones",
            a.skip
        ),
        None => "no event of the batch was appended; running the command again is safe".into(),
    }
}

fn parse_json_arg(what: &str, text: &str) -> Result<Json, CliError> {
    parse_json(text).map_err(|e| CliError::user(format!("{what}: {e}")))
}

fn batch_error(e: BatchError) -> CliError {
    match e {
        BatchError::World(w) => CliError::from(w),
        other => CliError::user(super::chain(&other)),
    }
}

/// Runs `aos send`.
pub fn run_send(ctx: &Ctx, a: &SendArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let mut w = World::open(&store, &a.world)?;
    let opts = SendOptions {
        commit_events: a.commit_every.max(1),
        ..SendOptions::default()
    };
    let bar = ctx.progress();
    let (s, elapsed) = if let Some(path) = &a.batch {
        // A file is read twice (checked, then sent) rather than held in memory; standard input
        // is kept in memory.
        let batch = if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().lock().read_to_end(&mut bytes)?;
            Batch::from_bytes(bytes)
        } else {
            Batch::from_file(ctx.cwd.join(path))
        };
        let batch = batch.skip(a.skip);
        let started = Instant::now();
        let mut last: Option<Durable> = None;
        let sent = w.send_batch(&batch, &opts, &bar, &mut |d| {
            print_ack(ctx, d);
            last = Some(d.clone());
        });
        let s = match sent {
            Ok(s) => s,
            // Refused before anything was sent: nothing to resume.
            Err(e @ (BatchError::BadLines { .. } | BatchError::SkipTooFar { .. })) => {
                return Err(batch_error(e));
            }
            Err(e @ BatchError::Read { .. }) if last.is_none() => return Err(batch_error(e)),
            Err(e) => {
                let hint = resume_hint(a, last.as_ref());
                return Err(batch_error(e).with_hint(hint));
            }
        };
        (s, started.elapsed())
    } else {
        let schema = a.schema.as_deref().expect("clap requires it");
        let value = parse_json_arg("value", a.value.as_deref().expect("clap requires it"))?;
        let key = a
            .key
            .as_deref()
            .map(|k| parse_json_arg("--key", k))
            .transpose()?;
        let mut ev = w.parse_event(schema, &value, key.as_ref())?;
        if let Some(id) = &a.id {
            aos::kernel::input::check_id(id).map_err(|problem| {
                WorldError::from(InputError::BadId {
                    id: id.clone(),
                    problem,
                })
            })?;
            ev.id = Some(id.clone());
        }
        bar.start("send", Some(1));
        let started = Instant::now();
        let s = w.send([ev], &opts, &bar)?;
        (s, started.elapsed())
    };
    bar.finish();
    let secs = elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = if secs > 0.0 {
        s.events as f64 / secs
    } else {
        0.0
    };
    if ctx.json {
        return out_json(&json!({
            "world": a.world,
            "events": s.events,
            "duplicates": s.duplicates,
            "last_duplicate": s.last_duplicate,
            "entries": s.entries,
            "derived": s.derived,
            "faults": s.faults,
            "commits": s.commits,
            "rebases": s.rebases,
            "head": s.head.to_string(),
            "height": s.height,
            "seconds": secs,
            "events_per_second": rate,
        }));
    }
    if a.batch.is_some() {
        let held = match s.duplicates {
            0 => String::new(),
            n => format!("; {n} already in the world, not appended again"),
        };
        outln(&format!(
            "appended {} events ({} entries, {} derived, {} faults) in {} commits, {secs:.3}s, {rate:.0} events/s; head {} at height {}{held}",
            s.events, s.entries, s.derived, s.faults, s.commits, s.head, s.height
        ))
    } else if let (1, Some(h)) = (s.duplicates, s.last_duplicate) {
        outln(&format!(
            "already in the world at height {h} (idempotency key `{}`): nothing appended; head {} at height {}",
            a.id.as_deref().unwrap_or_default(),
            s.head,
            s.height
        ))
    } else {
        outln(&format!(
            "appended at height {} ({} entries, {} derived, {} faults): {}",
            s.height, s.entries, s.derived, s.faults, s.head
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// aos state

/// Print a reducer's state (or one cell's, or the keys of a keyed reducer).
#[derive(clap::Args, Debug)]
pub struct StateArgs {
    /// The world.
    world: String,
    /// The reducer.
    reducer: String,
    /// The cell's key, as JSON (keyed reducers).
    #[arg(long, value_name = "JSON", conflicts_with = "keys")]
    key: Option<String>,
    /// The state right after the entry at this height (replayed from the nearest snapshot).
    #[arg(long, value_name = "HEIGHT")]
    at: Option<u64>,
    /// List the keys of every cell instead.
    #[arg(long)]
    keys: bool,
    /// Print values in the tagged lens.
    #[arg(long)]
    tagged: bool,
}

/// Runs `aos state`.
pub fn run_state(ctx: &Ctx, a: &StateArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let mut w = World::open(&store, &a.world)?;
    if let Some(h) = a.at {
        w = w.at(h)?;
    }
    let prog = w.program();
    let render = |v: &Value, ty: &aos::air::types::Type| -> Result<Json, CliError> {
        let r = if a.tagged {
            value::to_tagged(v, ty, prog.schemas())
        } else {
            value::to_sugar(v, ty, prog.schemas())
        };
        r.map_err(|e| CliError::user(format!("stored state does not fit its schema: {e}")))
    };
    if a.keys {
        let keys = w.keys(&a.reducer)?;
        let i = prog.reducer_index(&a.reducer).expect("keys checked it");
        let kty = prog.reducers[i].key_ty.clone().expect("keys checked it");
        let rendered: Vec<Json> = keys
            .iter()
            .map(|(k, _)| render(k, &kty))
            .collect::<Result<_, _>>()?;
        if ctx.json {
            let arr: Vec<serde_json::Value> = rendered
                .iter()
                .zip(&keys)
                .map(|(k, (_, id))| {
                    json!({"key": serde_json::from_str::<serde_json::Value>(&k.to_text(false)).unwrap_or_default(), "state": id.to_string()})
                })
                .collect();
            return out_json(&json!({"height": w.height(), "cells": arr}));
        }
        for k in rendered {
            outln(&k.to_text(false))?;
        }
        return Ok(());
    }
    let key = a
        .key
        .as_deref()
        .map(|k| parse_json_arg("--key", k))
        .transpose()?;
    let view = w.state(&a.reducer, key.as_ref())?;
    let text = match &view.state {
        Some(v) => render(v, &view.state_ty)?.to_text(false),
        None => "null".to_owned(),
    };
    if ctx.json {
        let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        return out_json(&json!({"height": view.height, "state": state}));
    }
    outln(&text)
}

// ---------------------------------------------------------------------------------------------
// aos log / show

/// Show a world's journal, newest entry first.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// The world.
    world: String,
    /// Show at most N entries.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max: Option<u64>,
}

fn digest(id: Option<&ObjectId>) -> String {
    id.map_or_else(|| "null".to_owned(), ToString::to_string)
}

pub(crate) fn summary(e: &Entry) -> String {
    match &e.body {
        Body::Genesis(g) => format!(
            "genesis manifest {} ({} modules, snapshot every {}, max derived {}, fuel {})",
            g.manifest,
            g.modules.len(),
            g.snapshot_every,
            g.max_derived,
            g.limits.fuel
        ),
        Body::Event(ev) => {
            let origin = match &ev.origin {
                Origin::Ingress => "event".to_owned(),
                Origin::Derived { cause, reducer, .. } => {
                    format!("derived (from #{cause} by {reducer})")
                }
            };
            let mut s = format!("{origin} {} {}", ev.schema, json::to_json(&ev.value));
            if let Some(id) = &ev.id {
                s.push_str(&format!(" (id `{id}`)"));
            }
            for st in &ev.steps {
                s.push_str(&format!("\n    -> {}", st.reducer));
                if let Some(c) = &st.cell {
                    s.push_str(&format!("[{}]", json::to_json(c)));
                }
                s.push_str(&format!(" state {}", digest(st.state.as_ref())));
                for ef in &st.effects {
                    s.push_str(&format!(", effect {}", ef.kind));
                }
            }
            s
        }
        Body::Fault(f) => format!(
            "fault {}{} on #{}: {} ({})",
            f.reducer,
            f.cell
                .as_ref()
                .map(|c| format!("[{}]", json::to_json(c)))
                .unwrap_or_default(),
            f.cause,
            f.code,
            f.message
        ),
        Body::Snapshot { snapshot } => format!("snapshot {snapshot}"),
        Body::Manifest { manifest } => format!("manifest {manifest}"),
    }
}

fn entry_json(id: &ObjectId, e: &Entry) -> serde_json::Value {
    let v = e.to_value();
    let mut body: serde_json::Value =
        serde_json::from_str(&json::to_json(&v)).unwrap_or(serde_json::Value::Null);
    // Step states are digests (byte strings) in the entry; show them as ids.
    if let (Body::Event(ev), Some(steps)) = (&e.body, body.get_mut("steps")) {
        for (st, js) in ev
            .steps
            .iter()
            .zip(steps.as_array_mut().into_iter().flatten())
        {
            js["state"] = st
                .state
                .map_or(serde_json::Value::Null, |id| id.to_string().into());
        }
    }
    json!({"id": id.to_string(), "height": e.height, "kind": e.kind_word(), "entry": body})
}

/// Runs `aos log`. Entries that are the head of another world, and the point this world was
/// forked at, are marked.
pub fn run_log(ctx: &Ctx, a: &LogArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let entries = world::log(&store, &a.world)?;
    let max = a
        .max
        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    for item in entries.take(max) {
        let LogEntry {
            id,
            entry: e,
            heads_of,
            forked_from,
        } = item?;
        if ctx.json {
            let mut j = entry_json(&id, &e);
            if !heads_of.is_empty() {
                j["heads_of"] = json!(heads_of);
            }
            if let Some(f) = forked_from {
                j["forked_from"] = json!(f);
            }
            out_json(&j)?;
        } else {
            let mut marks = Vec::new();
            if let Some(f) = forked_from {
                marks.push(format!("forked from {f}"));
            }
            if !heads_of.is_empty() {
                marks.push(format!("head of {}", heads_of.join(", ")));
            }
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!(" ({})", marks.join("; "))
            };
            outln(&format!("#{} {}{marks} {}", e.height, id, summary(&e)))?;
        }
    }
    Ok(())
}

/// Show a journal entry or snapshot: by id (or unique prefix), or as WORLD@HEIGHT.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// `b3:<hex>` (or a prefix of at least 8 hex digits) for any object; `WORLD`,
    /// `WORLD@HEIGHT` or `WORLD@b3:<hex>` for an entry of a world.
    what: String,
}

/// Runs `aos show`.
pub fn run_show(ctx: &Ctx, a: &ShowArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let id = Rev::parse_object(&a.what)?.object(&store)?;
    let obj = store.get(&id)?;
    match obj.kind {
        Kind::Entry => {
            let e = aos::kernel::replay::read_entry(&store, &id)?;
            if ctx.json {
                return out_json(&entry_json(&id, &e));
            }
            outln(&format!("entry {id}\nheight {}", e.height))?;
            if let Some(p) = &e.prev {
                outln(&format!("prev {p}"))?;
            }
            outln(&summary(&e))?;
            outln(&json::to_json_pretty(&e.to_value()))
        }
        Kind::Snapshot | Kind::Value | Kind::Air | Kind::MapNode => {
            let v = aos::codec::cbor::decode(&obj.data)
                .map_err(|e| CliError::user(format!("{id}: {e}")))?;
            if ctx.json {
                let body: serde_json::Value =
                    serde_json::from_str(&json::to_json(&v)).unwrap_or_default();
                return out_json(
                    &json!({"id": id.to_string(), "kind": obj.kind.name(), "value": body}),
                );
            }
            outln(&format!("{} {id}", obj.kind.name()))?;
            outln(&json::to_json_pretty(&v))
        }
        other => Err(CliError::user(format!(
            "{id} is a {} object; use `aos cat-object`",
            other.name()
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// aos snapshot / verify

/// Take a snapshot of a world now (appends a snapshot marker).
#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    /// The world.
    world: String,
}

/// Runs `aos snapshot`.
pub fn run_snapshot(ctx: &Ctx, a: &SnapshotArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let mut w = World::open(&store, &a.world)?;
    let id = w.snapshot()?;
    if ctx.json {
        return out_json(
            &json!({"world": a.world, "snapshot": id.to_string(), "height": w.height(), "head": w.head().to_string()}),
        );
    }
    outln(&format!("snapshot {id} at height {}", w.height()))
}

/// Re-execute a world offline and prove its state follows from its history.
///
/// Replays every entry from genesis (or from a snapshot you trust, with --from), recomputing
/// every reducer state, fault, derived event and snapshot, and checks each against the
/// journal. Prints a summary and exits 0, or names the first divergence and exits 1.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The world.
    world: String,
    /// Start from this snapshot (id or prefix) instead of genesis.
    #[arg(long, value_name = "SNAPSHOT")]
    from: Option<String>,
}

fn divergence_json(d: &Divergence) -> serde_json::Value {
    json!({
        "height": d.height,
        "recorded": d.recorded.map(|i| i.to_string()),
        "replayed": d.replayed.map(|i| i.to_string()),
        "reducer": d.reducer,
        "cell": d.cell,
        "detail": d.detail,
    })
}

/// Runs `aos verify`.
pub fn run_verify(ctx: &Ctx, a: &VerifyArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let from = match &a.from {
        None => VerifyFrom::Genesis,
        Some(s) => {
            let prefix: IdPrefix = s
                .parse()
                .map_err(|e| CliError::usage(format!("--from {s}: {e}")))?;
            VerifyFrom::Snapshot(store.resolve(&prefix)?)
        }
    };
    let bar = ctx.progress();
    let started = Instant::now();
    match verify(&store, &a.world, &from, &bar) {
        Ok(r) => {
            bar.finish();
            let secs = started.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let rate = if secs > 0.0 {
                r.stats.entries as f64 / secs
            } else {
                0.0
            };
            if ctx.json {
                return out_json(&json!({
                    "world": a.world,
                    "ok": true,
                    "head": r.head.to_string(),
                    "height": r.height,
                    "from_height": r.from_height,
                    "entries": r.stats.entries,
                    "events": r.stats.ingress,
                    "derived": r.stats.derived,
                    "faults": r.stats.faults,
                    "snapshots": r.stats.snapshots,
                    "seconds": secs,
                    "entries_per_second": rate,
                }));
            }
            outln(&format!(
                "verified {}: {} entries ({} events, {} derived, {} faults, {} snapshots) from height {} to {}, head {} in {secs:.3}s ({rate:.0} entries/s)",
                a.world,
                r.stats.entries,
                r.stats.ingress,
                r.stats.derived,
                r.stats.faults,
                r.stats.snapshots,
                r.from_height,
                r.height,
                r.head
            ))
        }
        Err(WorldError::Diverged(d)) => {
            bar.finish();
            if ctx.json {
                out_json(
                    &json!({"world": a.world, "ok": false, "divergence": divergence_json(&d)}),
                )?;
                return Err(CliError::silent());
            }
            Err(CliError::user(d.to_string()))
        }
        Err(e) => {
            bar.finish();
            if ctx.json {
                out_json(&json!({"world": a.world, "ok": false, "error": super::chain(&e)}))?;
                return Err(CliError::silent());
            }
            Err(e.into())
        }
    }
}
