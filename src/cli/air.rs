//! `aos air ...`: check, format, hash, diff, patch, import and export AIR.

use std::path::PathBuf;

use aos::air::canon::{Catalog, node_from_value};
use aos::air::diag::{self, RuleId};
use aos::air::diff::{
    AirDiff, NodeKey, NodeMap, canonical_json, canonical_manifest, canonical_nodes, diff_nodes,
    key, label,
};
use aos::air::load::{Loaded, Origin, Problem, load_path};
use aos::air::nodes::{Node, NodeKind};
use aos::air::render::{Lens, value_json};
use aos::air::validate::{Diagnostic, Validated, validate};
use aos::codec::cbor;
use aos::codec::diff::Change;
use aos::codec::json::Json;
use aos::object::{Kind, ObjectId};
use serde_json::json;

use super::{CliError, Ctx, out, out_json, outln};

/// Work with AIR, the typed control plane of a world.
#[derive(clap::Args, Debug)]
pub struct AirArgs {
    #[command(subcommand)]
    pub command: AirCommand,
}

/// The `aos air` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum AirCommand {
    Check(CheckArgs),
    Fmt(FmtArgs),
    Hash(HashArgs),
    Diff(DiffArgs),
    Patch(PatchArgs),
    Import(ImportArgs),
    Export(ExportArgs),
}

/// Print the id of every node of a world and of its manifest (the world's AIR root).
#[derive(clap::Args, Debug)]
pub struct HashArgs {
    /// A file or directory of AIR holding exactly one manifest.
    pub path: PathBuf,
}

/// Apply a patch document to a world's AIR, transactionally, and re-validate the result.
///
/// Prints the new manifest (canonical JSON, node ids filled in), or with `-o DIR` writes the
/// whole new AIR there as files. A patch whose `pre_hash` no longer matches what it replaces
/// fails and changes nothing. With `-w` the base world, the new world and the patch (as a
/// `value` object, which links the base manifest and the nodes it replaces) are stored. The patch's id is printed on stderr (and in `--json` output).
#[derive(clap::Args, Debug)]
pub struct PatchArgs {
    /// The base AIR (file or directory) holding exactly one manifest.
    pub base: PathBuf,
    /// The patch document (JSON).
    pub patch: PathBuf,
    /// Write the new AIR into this directory instead of printing the manifest.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Store the patch and the new world's nodes.
    #[arg(short)]
    pub w: bool,
}

/// Validate a world's AIR and store every node and the manifest as `air` objects; print the
/// manifest id.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A file or directory of AIR holding exactly one manifest.
    pub path: PathBuf,
}

/// Write a stored manifest and every node it lists as AIR JSON files into DIR
/// (`manifest.air.json`, `schemas.air.json`, `modules.air.json`, …).
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The manifest: an id or unambiguous prefix.
    pub id: String,
    /// The directory to write (created if missing; existing files of the same names are
    /// replaced).
    pub dir: PathBuf,
}

/// Load and check AIR files or `air/` directories, reporting every problem.
///
/// Checks every node's form and, when the input holds a manifest, the whole world: every
/// reference, type, plan graph, expression, capability grant, binding and route. Each problem
/// names the file, line and column, the node, the JSON pointer and the rule broken. Exits 1 if
/// there is any problem.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Files (one node or an array of nodes) or directories of `*.json` files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Print a world's AIR in canonical pretty JSON: one array of every node it lists (built-ins
/// it restates or lists included), the manifest last.
///
/// Literals in typed slots are written as sugar (plain JSON read through the slot's type)
/// unless `--tagged` is given, in which case they are tagged constants, exactly the canonical
/// encoding. Either output reads back to the same node ids and manifest id. Without a
/// manifest the nodes are printed as read (only their forms can be checked); a world that
/// does not validate is reported as by `aos air check` (exit 1).
#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// A file or directory of AIR.
    pub path: PathBuf,
    /// Write literals in the tagged lens (the canonical JSON) instead of sugar.
    #[arg(long)]
    pub tagged: bool,
}

/// Compare two sets of AIR nodes: which nodes were added, removed or changed, and for changed
/// nodes which fields, by JSON pointer. Exits 1 when they differ.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The old AIR (file or directory).
    pub a: PathBuf,
    /// The new AIR (file or directory).
    pub b: PathBuf,
}

/// Runs `aos air ...`.
pub fn run(ctx: &Ctx, args: &AirArgs) -> Result<(), CliError> {
    match &args.command {
        AirCommand::Check(a) => check(ctx, a),
        AirCommand::Fmt(a) => fmt(ctx, a),
        AirCommand::Hash(a) => hash(ctx, a),
        AirCommand::Diff(a) => diff_cmd(ctx, a),
        AirCommand::Patch(a) => patch(ctx, a),
        AirCommand::Import(a) => import(ctx, a),
        AirCommand::Export(a) => export(ctx, a),
    }
}

fn load_all(ctx: &Ctx, paths: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::default();
    for p in paths {
        let l = load_path(&ctx.cwd.join(p));
        loaded.nodes.extend(l.nodes);
        loaded.problems.extend(l.problems);
    }
    loaded
}

fn problem_json<R: RuleId>(p: &diag::Diagnostic<R>) -> serde_json::Value {
    json!({
        "file": p.file,
        "line": p.pos.as_ref().map(|x| x.line),
        "column": p.pos.as_ref().map(|x| x.column),
        "pointer": diag::bounded(&p.pointer),
        "node": p.node.as_deref().map(diag::bounded),
        "rule": p.rule.as_str(),
        "message": diag::bounded_to(&p.message, diag::MESSAGE_CHARS),
    })
}

/// Prints `problems` (loading or validation ones), one a line or as one JSON document, and
/// their count on stderr; fails silently (exit 1) if there is any.
fn report<R: RuleId>(ctx: &Ctx, problems: &[diag::Diagnostic<R>]) -> Result<(), CliError> {
    if ctx.json {
        out_json(
            &json!({ "ok": problems.is_empty(), "problems": problems.iter().map(problem_json).collect::<Vec<_>>() }),
        )?;
    } else {
        let mut text = String::new();
        for p in problems {
            text.push_str(&format!("{p}\n"));
        }
        out(text.as_bytes())?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        if !ctx.json {
            super::errln!("{} problem(s)", problems.len());
        }
        Err(CliError::silent())
    }
}

/// [`report`] for validation problems, which always fail.
fn report_diagnostics(ctx: &Ctx, diags: &[Diagnostic]) -> Result<(), CliError> {
    report(ctx, diags).and(Err(CliError::silent()))
}

fn check(ctx: &Ctx, args: &CheckArgs) -> Result<(), CliError> {
    let loaded = load_all(ctx, &args.paths);
    if !loaded.problems.is_empty() {
        return report(ctx, &loaded.problems);
    }
    let n = loaded.nodes.len();
    let has_manifest = loaded
        .nodes
        .iter()
        .any(|(n, _)| n.kind() == NodeKind::Manifest);
    if !has_manifest {
        // Loose definitions without a world: their forms are all that can be checked.
        if !ctx.json {
            super::errln!("{n} nodes: ok (no manifest, so only their forms were checked)");
        }
        return report(ctx, &[] as &[Problem]);
    }
    match validate(loaded.nodes) {
        Ok(v) => {
            if ctx.json {
                out_json(
                    &json!({ "ok": true, "problems": [], "manifest": v.manifest_id.to_string(), "nodes": v.nodes.len() }),
                )
            } else {
                super::errln!("{n} nodes, manifest {}: ok", v.manifest_id);
                Ok(())
            }
        }
        Err(diags) => report_diagnostics(ctx, &diags),
    }
}

/// Loads and validates one world, reporting problems if there are any.
fn validated(ctx: &Ctx, path: &PathBuf) -> Result<Validated, CliError> {
    let nodes = loaded_or_fail(ctx, path)?;
    validate(nodes)
        .or_else(|diags| report_diagnostics(ctx, &diags).map(|()| unreachable!("reporting fails")))
}

fn hash(ctx: &Ctx, args: &HashArgs) -> Result<(), CliError> {
    let v = validated(ctx, &args.path)?;
    if ctx.json {
        return out_json(&json!({
            "manifest": v.manifest_id.to_string(),
            "nodes": v.nodes.iter().map(|n| json!({
                "kind": n.node.kind().as_str(),
                "name": n.node.name().map(ToString::to_string),
                "id": n.id.to_string(),
            })).collect::<Vec<_>>(),
        }));
    }
    let mut text = String::new();
    for n in &v.nodes {
        let name = n.node.name().map(ToString::to_string).unwrap_or_default();
        text.push_str(&format!("{} {} {name}\n", n.id, n.node.kind()));
    }
    text.push_str(&format!("{} manifest\n", v.manifest_id));
    out(text.as_bytes())
}

fn patch(ctx: &Ctx, args: &PatchArgs) -> Result<(), CliError> {
    use aos::air::patch::{PatchDoc, WorldIds, apply, patch_value};
    let base_nodes = loaded_or_fail(ctx, &args.base)?;
    let base = validate(base_nodes.clone()).or_else(|diags| {
        report_diagnostics(ctx, &diags).map(|()| unreachable!("reporting fails"))
    })?;
    let path = ctx.cwd.join(&args.patch);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::user(format!("{}: {e}", args.patch.display())))?;
    let json = aos::codec::json::parse_json(&text)
        .map_err(|e| CliError::user(format!("{}: {e}", args.patch.display())))?;
    let doc = PatchDoc::from_json(&json).map_err(|errs| {
        let lines: Vec<String> = errs
            .iter()
            .map(|e| format!("{}: {e}", args.patch.display()))
            .collect();
        CliError::user(lines.join("\n"))
    })?;
    let new_nodes = apply(&base_nodes, base.manifest_id, &doc, &WorldIds::new(&base))
        .map_err(|e| CliError::user(format!("{}: {e}", args.patch.display())))?;
    let new = validate(new_nodes).or_else(|diags| {
        super::errln!("the patched world is not valid:");
        report_diagnostics(ctx, &diags).map(|()| unreachable!("reporting fails"))
    })?;
    let patch_value = patch_value(&doc, &WorldIds::new(&new))
        .map_err(|e| CliError::user(format!("{}: {e}", args.patch.display())))?;
    let patch_bytes = cbor::encode(&patch_value);
    let patch_id = aos::object::hash(Kind::Value, &patch_bytes);
    if args.w {
        // The patch links the base manifest and the nodes it replaced: store the base too.
        let store = ctx.store()?;
        store_world(&store, &base, None)?;
        store_world(&store, &new, Some(&patch_bytes))?;
    }
    let mut files = Vec::new();
    if let Some(dir) = &args.output {
        files = write_world(&ctx.cwd.join(dir), &new)?;
    }
    if ctx.json {
        return out_json(&json!({
            "base": base.manifest_id.to_string(),
            "manifest": new.manifest_id.to_string(),
            "patch": patch_id.to_string(),
            "files": files,
        }));
    }
    super::errln!(
        "patch {patch_id}: {} -> {}",
        base.manifest_id,
        new.manifest_id
    );
    if args.output.is_none() {
        let m = canonical_manifest(&new);
        out(format!("{}\n", m.to_json().to_text(true)).as_bytes())?;
    }
    Ok(())
}

/// Stores every node of a validated world and its manifest (and optionally a patch value) in
/// one batch, after checking that every link they hold will resolve.
fn store_world(
    store: &aos::store::Store,
    v: &Validated,
    patch: Option<&[u8]>,
) -> Result<(), CliError> {
    let here: std::collections::HashSet<ObjectId> = v
        .nodes
        .iter()
        .map(|n| n.id)
        .chain([v.manifest_id])
        .collect();
    for n in &v.nodes {
        for link in cbor::links(&cbor::encode(&n.value)).unwrap_or_default() {
            if !here.contains(&link) && !store.contains(&link) {
                let name = n.node.name().map(ToString::to_string).unwrap_or_default();
                return Err(CliError::user(format!(
                    "{} {name} refers to {link}, which is not in the store",
                    n.node.kind()
                ))
                .with_hint("store it first (for a module's wasm: `aos hash-object -w FILE`)"));
            }
        }
    }
    let mut batch = store.batch();
    for n in &v.nodes {
        batch.add(Kind::Air, &cbor::encode(&n.value))?;
    }
    batch.add(Kind::Air, &cbor::encode(&v.manifest_value))?;
    if let Some(p) = patch {
        batch.add(Kind::Value, p)?;
    }
    batch.commit()?;
    Ok(())
}

/// Writes a validated world as AIR files (one file per kind, and the manifest) into `dir`.
fn write_world(dir: &std::path::Path, v: &Validated) -> Result<Vec<PathBuf>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::user(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for kind in NodeKind::ALL {
        let nodes: Vec<Json> = v
            .nodes
            .iter()
            .filter(|n| n.node.kind() == kind)
            .map(|n| canonical_json(&n.value, &n.node))
            .collect();
        if nodes.is_empty() || kind == NodeKind::Manifest {
            continue;
        }
        let file = dir.join(format!("{}.air.json", plural(kind)));
        write_text(&file, &Json::Array(nodes).to_text(true))?;
        written.push(file);
    }
    let m = canonical_manifest(v);
    let file = dir.join("manifest.air.json");
    write_text(&file, &m.to_json().to_text(true))?;
    written.push(file);
    Ok(written)
}

fn import(ctx: &Ctx, args: &ImportArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let v = validated(ctx, &args.path)?;
    store_world(&store, &v, None)?;
    let id = v.manifest_id;
    if ctx.json {
        out_json(&json!({ "manifest": id.to_string(), "nodes": v.nodes.len() }))
    } else {
        outln(&id.to_string())
    }
}

fn read_node(store: &aos::store::Store, id: &ObjectId) -> Result<Node, CliError> {
    let obj = store.get(id)?;
    if obj.kind != Kind::Air {
        return Err(CliError::user(format!(
            "{id} is a {} object, not an AIR node",
            obj.kind
        )));
    }
    let value = cbor::decode(&obj.data).map_err(|e| CliError::user(format!("object {id}: {e}")))?;
    node_from_value(&value)
        .map_err(|e| CliError::user(format!("object {id} is not a valid AIR node: {e}")))
}

fn export(ctx: &Ctx, args: &ExportArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let id = super::refs::resolve(&store, &args.id)?;
    let Node::Manifest(manifest) = read_node(&store, &id)? else {
        return Err(CliError::user(format!(
            "{id} is an AIR node but not a manifest"
        )));
    };
    let dir = ctx.cwd.join(&args.dir);
    std::fs::create_dir_all(&dir).map_err(|e| CliError::user(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for kind in NodeKind::ALL {
        let Some(refs) = manifest.refs(kind) else {
            continue;
        };
        let mut nodes = Vec::new();
        for r in refs {
            let Some(h) = r.known_hash() else {
                return Err(CliError::user(format!(
                    "manifest {id} lists {kind} {} without its id",
                    r.name
                )));
            };
            nodes.push(read_node(&store, &h)?.to_json());
        }
        if nodes.is_empty() {
            continue;
        }
        let file = dir.join(format!("{}.air.json", plural(kind)));
        write_text(&file, &Json::Array(nodes).to_text(true))?;
        written.push(file);
    }
    let file = dir.join("manifest.air.json");
    write_text(&file, &Node::Manifest(manifest).to_json().to_text(true))?;
    written.push(file);
    if ctx.json {
        out_json(&json!({ "manifest": id.to_string(), "files": written }))
    } else {
        let mut text = String::new();
        for f in written {
            text.push_str(&format!("{}\n", f.display()));
        }
        out(text.as_bytes())
    }
}

/// The file stem for a kind's nodes: `schemas`, `modules`, `plans`, `caps`, `policies`, …
fn plural(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::DefSchema => "schemas",
        NodeKind::DefModule => "modules",
        NodeKind::DefPlan => "plans",
        NodeKind::DefCap => "caps",
        NodeKind::DefPolicy => "policies",
        NodeKind::DefEffect => "effects",
        NodeKind::DefSecret => "secrets",
        NodeKind::Manifest => "manifest",
    }
}

fn write_text(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    aos::store::fs::write_replace(path, format!("{text}\n").as_bytes())
        .map_err(|e| CliError::user(format!("{}: {e}", path.display())))
}

fn loaded_or_fail(ctx: &Ctx, path: &PathBuf) -> Result<Vec<(Node, Origin)>, CliError> {
    let loaded = load_all(ctx, std::slice::from_ref(path));
    if loaded.problems.is_empty() {
        Ok(loaded.nodes)
    } else {
        report(ctx, &loaded.problems)?;
        Err(CliError::silent())
    }
}

fn fmt(ctx: &Ctx, args: &FmtArgs) -> Result<(), CliError> {
    let nodes = loaded_or_fail(ctx, &args.path)?;
    if !nodes.iter().any(|(n, _)| n.kind() == NodeKind::Manifest) {
        super::errln!(
            "no manifest: printing the {} nodes as read (canonical form needs a world)",
            nodes.len()
        );
        let all = Json::Array(nodes.iter().map(|(n, _)| n.to_json()).collect());
        return out(format!("{}\n", all.to_text(true)).as_bytes());
    }
    let v = validate(nodes).or_else(|diags| {
        report_diagnostics(ctx, &diags).map(|()| unreachable!("reporting fails"))
    })?;
    let lens = if args.tagged {
        Lens::Tagged
    } else {
        Lens::Sugar
    };
    let cat = Catalog::new(v.nodes.iter().map(|n| &n.node));
    // Kind by kind, each kind sorted by name as the canonical manifest lists them, so that
    // the output is a fixed point of `fmt`.
    let mut listed: Vec<_> = v.nodes.iter().collect();
    listed.sort_by_key(|n| {
        let kind = NodeKind::ALL.iter().position(|k| *k == n.node.kind());
        (kind, n.node.name().map(ToString::to_string))
    });
    let values = listed.iter().map(|n| &n.value).chain([&v.manifest_value]);
    let all = values
        .map(|x| value_json(x, &cat, lens))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::user(format!("internal: a canonical node does not render: {e}")))?;
    out(format!("{}\n", Json::Array(all).to_text(true)).as_bytes())
}

/// A node's identity within a set: its kind and name (the manifest has no name).
/// The nodes of one side of a diff, each as JSON: the canonical form when the side is a world
/// that validates (so spelling differences such as sugar vs tagged literals or member order
/// do not show), else the form as written.
fn diff_side(ctx: &Ctx, path: &PathBuf) -> Result<NodeMap, CliError> {
    let nodes = loaded_or_fail(ctx, path)?;
    let has_manifest = nodes.iter().any(|(n, _)| n.kind() == NodeKind::Manifest);
    if has_manifest && let Ok(v) = validate(nodes.clone()) {
        return Ok(canonical_nodes(&v));
    }
    Ok(nodes
        .into_iter()
        .map(|(n, _)| (key(&n), n.to_json()))
        .collect())
}

fn diff_cmd(ctx: &Ctx, args: &DiffArgs) -> Result<(), CliError> {
    let d = diff_nodes(&diff_side(ctx, &args.a)?, &diff_side(ctx, &args.b)?);
    if ctx.json {
        let mut v = air_diff_json(&d);
        v["equal"] = json!(d.is_empty());
        out_json(&v)?;
    } else {
        out(air_diff_text(&d, "").as_bytes())?;
    }
    if d.is_empty() {
        Ok(())
    } else {
        Err(CliError::silent())
    }
}

/// The JSON of a node-level diff: `added`, `removed` (`{kind, name}`) and `changed`
/// (`{kind, name, fields: [change]}`).
pub(crate) fn air_diff_json(d: &AirDiff) -> serde_json::Value {
    let node = |k: &NodeKey| json!({ "kind": k.0.as_str(), "name": k.1 });
    json!({
        "added": d.added.iter().map(node).collect::<Vec<_>>(),
        "removed": d.removed.iter().map(node).collect::<Vec<_>>(),
        "changed": d.changed.iter().map(|(k, c)| json!({
            "kind": k.0.as_str(),
            "name": k.1,
            "fields": c.iter().map(change_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// A node-level diff as text, each line after `indent`.
pub(crate) fn air_diff_text(d: &AirDiff, indent: &str) -> String {
    let mut text = String::new();
    for k in &d.added {
        text.push_str(&format!("{indent}+ {}\n", label(k)));
    }
    for k in &d.removed {
        text.push_str(&format!("{indent}- {}\n", label(k)));
    }
    for (k, c) in &d.changed {
        text.push_str(&format!("{indent}~ {}\n", label(k)));
        text.push_str(&changes_text(c, &format!("{indent}    ")));
    }
    text
}

/// Field-level changes as text lines (`+ pointer: value`, `- ...`, `~ pointer: old -> new`).
pub(crate) fn changes_text(changes: &[Change], indent: &str) -> String {
    let mut text = String::new();
    for c in changes {
        // The empty pointer is the whole value.
        let at = |p: &str| {
            if p.is_empty() {
                String::new()
            } else {
                format!("{p}: ")
            }
        };
        match c {
            Change::Added { pointer, new } => {
                text.push_str(&format!(
                    "{indent}+ {}{}\n",
                    at(pointer),
                    new.to_text(false)
                ));
            }
            Change::Removed { pointer, old } => {
                text.push_str(&format!(
                    "{indent}- {}{}\n",
                    at(pointer),
                    old.to_text(false)
                ));
            }
            Change::Changed { pointer, old, new } => {
                text.push_str(&format!(
                    "{indent}~ {}{} -> {}\n",
                    at(pointer),
                    old.to_text(false),
                    new.to_text(false)
                ));
            }
        }
    }
    text
}

pub(crate) fn change_json(c: &Change) -> serde_json::Value {
    let parse = |j: &Json| {
        serde_json::from_str::<serde_json::Value>(&j.to_text(false))
            .unwrap_or(serde_json::Value::Null)
    };
    match c {
        Change::Added { pointer, new } => {
            json!({ "op": "added", "pointer": pointer, "new": parse(new) })
        }
        Change::Removed { pointer, old } => {
            json!({ "op": "removed", "pointer": pointer, "old": parse(old) })
        }
        Change::Changed { pointer, old, new } => {
            json!({ "op": "changed", "pointer": pointer, "old": parse(old), "new": parse(new) })
        }
    }
}
