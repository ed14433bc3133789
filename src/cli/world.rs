//! World commands: `aos world new|list`, `send`, `state`, `log`, `show`, `snapshot`, `verify`.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use aos::kernel::program::Program;
use std::path::PathBuf;

use aos::air::load::load_path;
use aos::air::value;
use aos::codec::cbor::Value;
use aos::codec::json::{self, Json, parse_json};
use aos::kernel::entry::{Body, Entry, Origin};
use aos::kernel::machine::EventIn;
use aos::kernel::replay::read_entry_at;
use aos::kernel::{Divergence, WorldError};
use aos::object::{IdPrefix, Kind, ObjectId};
use aos::progress::Progress;
use aos::store::Store;
use aos::wasm::Limits;
use aos::world::{
    self, CreateOptions, SendOptions, VerifyFrom, World, create_world, list_worlds, verify,
};
use rayon::prelude::*;
use serde_json::json;

use super::{CliError, Ctx, out_json, outln};

impl From<WorldError> for CliError {
    fn from(e: WorldError) -> Self {
        match e {
            WorldError::Air(diags) => {
                let mut msg = String::from("the control plane does not validate:");
                for d in &diags {
                    msg.push_str("\n  ");
                    msg.push_str(&d.to_string());
                }
                CliError::user(msg)
            }
            WorldError::Store(s) => CliError::from(s),
            WorldError::Diverged(d) => CliError::user(d.to_string()),
            WorldError::NoWorld(n) => CliError::user(format!("no world named `{n}`"))
                .with_hint("`aos world list` shows the worlds of this store"),
            other => CliError::user(super::chain(&other)),
        }
    }
}

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
    /// Read events from a JSON Lines file (`-`: standard input).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["schema", "value", "key"])]
    batch: Option<PathBuf>,
    /// Commit after this many events.
    #[arg(long, value_name = "N", default_value_t = SendOptions::default().commit_events)]
    commit_every: u64,
}

fn parse_json_arg(what: &str, text: &str) -> Result<Json, CliError> {
    parse_json(text).map_err(|e| CliError::user(format!("{what}: {e}")))
}

fn parse_batch_line(prog: &Program, line: &str, n: usize) -> Result<Option<EventIn>, CliError> {
    let t = line.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let at = |m: String| CliError::user(format!("line {n}: {m}"));
    let j = parse_json(t).map_err(|e| at(e.to_string()))?;
    let Json::Object(members) = &j else {
        return Err(at(
            "expected an object {\"schema\", \"value\", \"key\"?}".into()
        ));
    };
    let mut schema = None;
    let mut val = None;
    let mut key = None;
    for (k, v) in members {
        match k.as_str() {
            "schema" => match v {
                Json::String(s) => schema = Some(s.clone()),
                _ => return Err(at("`schema` must be a string".into())),
            },
            "value" => val = Some(v),
            "key" => key = Some(v),
            other => return Err(at(format!("unexpected member `{other}`"))),
        }
    }
    let schema = schema.ok_or_else(|| at("missing `schema`".into()))?;
    let val = val.ok_or_else(|| at("missing `value`".into()))?;
    world::parse_event(prog, &schema, val, key)
        .map(Some)
        .map_err(|e| at(e.to_string()))
}

/// Lines a batch is read and parsed in at a time.
const CHUNK_LINES: usize = 16_384;

/// Where a batch comes from.
enum Source {
    Text(String),
    File(PathBuf),
}

impl Source {
    /// Calls `f` with successive chunks of lines and the 1-based number of each chunk's first line.
    fn chunks(
        &self,
        mut f: impl FnMut(usize, &[String]) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let mut reader = self.reader()?;
        let mut first = 1;
        loop {
            let lines = read_lines(&mut reader, CHUNK_LINES)?;
            if lines.is_empty() {
                return Ok(());
            }
            f(first, &lines)?;
            first += lines.len();
        }
    }

    fn reader(&self) -> Result<Box<dyn std::io::BufRead + '_>, CliError> {
        Ok(match self {
            Source::Text(t) => Box::new(std::io::Cursor::new(t.as_bytes())),
            Source::File(p) => Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(p)
                    .map_err(|e| CliError::user(format!("{}: {e}", p.display())))?,
            )),
        })
    }
}

fn read_lines(r: &mut dyn std::io::BufRead, n: usize) -> Result<Vec<String>, CliError> {
    let mut lines = Vec::with_capacity(n);
    while lines.len() < n {
        let mut line = String::new();
        let got = r
            .read_line(&mut line)
            .map_err(|e| CliError::user(format!("reading the batch: {e}")))?;
        if got == 0 {
            break;
        }
        lines.push(line);
    }
    Ok(lines)
}

/// The events of a batch, parsed a chunk at a time (in parallel) as `send` consumes them.
struct ChunkedEvents<'a> {
    reader: Box<dyn std::io::BufRead + 'a>,
    prog: Arc<Program>,
    ready: std::vec::IntoIter<EventIn>,
    first: usize,
    failed: &'a std::cell::RefCell<Option<CliError>>,
}

impl<'a> ChunkedEvents<'a> {
    fn new(
        source: &'a Source,
        prog: Arc<Program>,
        failed: &'a std::cell::RefCell<Option<CliError>>,
    ) -> Result<Self, CliError> {
        Ok(Self {
            reader: source.reader()?,
            prog,
            ready: Vec::new().into_iter(),
            first: 1,
            failed,
        })
    }
}

impl Iterator for ChunkedEvents<'_> {
    type Item = EventIn;

    fn next(&mut self) -> Option<EventIn> {
        loop {
            if let Some(e) = self.ready.next() {
                return Some(e);
            }
            let lines = match read_lines(&mut self.reader, CHUNK_LINES) {
                Ok(l) if l.is_empty() => return None,
                Ok(l) => l,
                Err(e) => {
                    *self.failed.borrow_mut() = Some(e);
                    return None;
                }
            };
            let first = self.first;
            self.first += lines.len();
            let prog = &*self.prog;
            let parsed: Result<Vec<Option<EventIn>>, CliError> = lines
                .par_iter()
                .enumerate()
                .map(|(i, l)| parse_batch_line(prog, l, first + i))
                .collect();
            match parsed {
                Ok(v) => self.ready = v.into_iter().flatten().collect::<Vec<_>>().into_iter(),
                Err(e) => {
                    *self.failed.borrow_mut() = Some(e);
                    return None;
                }
            }
        }
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
        // Every line is checked before anything is appended; then the file is read again in
        // chunks, so memory does not grow with the batch (standard input is kept in memory).
        let source = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().lock().read_to_string(&mut text)?;
            Source::Text(text)
        } else {
            Source::File(ctx.cwd.join(path))
        };
        let prog = w.program_arc();
        let mut total = 0u64;
        source.chunks(|first, lines| {
            let parsed: Result<Vec<Option<EventIn>>, CliError> = lines
                .par_iter()
                .enumerate()
                .map(|(i, l)| parse_batch_line(&prog, l, first + i))
                .collect();
            total += parsed?.iter().flatten().count() as u64;
            Ok(())
        })?;
        bar.start("send", Some(total));
        let failed: std::cell::RefCell<Option<CliError>> = std::cell::RefCell::new(None);
        let events = ChunkedEvents::new(&source, Arc::clone(&prog), &failed)?;
        let started = Instant::now();
        let s = w.send(events, &opts, &bar)?;
        let elapsed = started.elapsed();
        if let Some(e) = failed.into_inner() {
            return Err(CliError::user(format!(
                "the batch changed while it was being sent ({}); {} events were appended, up to height {}",
                e.message, s.events, s.height
            )));
        }
        (s, elapsed)
    } else {
        let schema = a.schema.as_deref().expect("clap requires it");
        let value = parse_json_arg("value", a.value.as_deref().expect("clap requires it"))?;
        let key = a
            .key
            .as_deref()
            .map(|k| parse_json_arg("--key", k))
            .transpose()?;
        let ev = w.parse_event(schema, &value, key.as_ref())?;
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
            "entries": s.entries,
            "derived": s.derived,
            "faults": s.faults,
            "commits": s.commits,
            "head": s.head.to_string(),
            "height": s.height,
            "seconds": secs,
            "events_per_second": rate,
        }));
    }
    if a.batch.is_some() {
        outln(&format!(
            "appended {} events ({} entries, {} derived, {} faults) in {} commits, {secs:.3}s, {rate:.0} events/s; head {} at height {}",
            s.events, s.entries, s.derived, s.faults, s.commits, s.head, s.height
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
    let mut cur = Some(head_of(&store, &a.world)?);
    let origin = aos::world::history::origin(&store, &a.world)?;
    let mut heads: std::collections::HashMap<ObjectId, Vec<String>> =
        std::collections::HashMap::new();
    for (name, id) in world::list_worlds(&store)? {
        if name != a.world {
            heads.entry(id).or_default().push(name);
        }
    }
    // What was last fetched from remotes: `REMOTE/WORLD`.
    for (r, id) in store.refs().list("refs/remotes/")? {
        if let Some((remote, w)) = r
            .as_str()
            .strip_prefix("refs/remotes/")
            .and_then(|x| x.split_once("/worlds/"))
        {
            heads.entry(id).or_default().push(format!("{remote}/{w}"));
        }
    }
    let mut n = 0u64;
    while let Some(id) = cur {
        if a.max.is_some_and(|m| n >= m) {
            break;
        }
        let e = aos::kernel::replay::read_entry(&store, &id)?;
        let others = heads.get(&id);
        let forked = origin.as_ref().filter(|o| o.id == id).map(|o| &o.from);
        if ctx.json {
            let mut j = entry_json(&id, &e);
            if let Some(w) = others {
                j["heads_of"] = json!(w);
            }
            if let Some(f) = forked {
                j["forked_from"] = json!(f);
            }
            out_json(&j)?;
        } else {
            let mut marks = Vec::new();
            if let Some(f) = forked {
                marks.push(format!("forked from {f}"));
            }
            if let Some(w) = others {
                marks.push(format!("head of {}", w.join(", ")));
            }
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!(" ({})", marks.join("; "))
            };
            outln(&format!("#{} {}{marks} {}", e.height, id, summary(&e)))?;
        }
        n += 1;
        cur = e.prev;
    }
    Ok(())
}

fn head_of(store: &Store, world: &str) -> Result<ObjectId, CliError> {
    store
        .refs()
        .read(&world::world_ref(world)?)?
        .ok_or_else(|| WorldError::NoWorld(world.to_owned()).into())
}

/// Show a journal entry or snapshot: by id (or unique prefix), or as WORLD@HEIGHT.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// `b3:<hex>` (or a prefix of at least 8 hex digits), or `WORLD@HEIGHT`.
    what: String,
}

/// Runs `aos show`.
pub fn run_show(ctx: &Ctx, a: &ShowArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let id = if let Some((world, h)) = a.what.rsplit_once('@') {
        let height: u64 = h
            .parse()
            .map_err(|_| CliError::usage(format!("`{h}` is not a height")))?;
        let head = head_of(&store, world)?;
        read_entry_at(&store, &head, height)?
    } else {
        let prefix: IdPrefix = a
            .what
            .parse()
            .map_err(|e| CliError::usage(format!("`{}`: {e}", a.what)))?;
        store.resolve(&prefix)?
    };
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
