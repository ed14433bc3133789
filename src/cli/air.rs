//! `aos air ...`: check, format, hash, diff, patch, import and export AIR.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aos::air::load::{Loaded, Origin, Problem, load_path};
use aos::air::nodes::{Node, NodeKind};
use aos::codec::diff::{Change, diff};
use aos::codec::json::Json;
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
    Diff(DiffArgs),
}

/// Load and check AIR files or `air/` directories, reporting every problem.
///
/// Each problem names the file, line and column, the node, the JSON pointer and the rule
/// broken. Exits 1 if there is any problem.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Files (one node or an array of nodes) or directories of `*.json` files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// Print AIR nodes in canonical pretty JSON (one array of nodes).
#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// A file or directory of AIR.
    pub path: PathBuf,
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
        AirCommand::Diff(a) => diff_cmd(ctx, a),
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

fn problem_json(p: &Problem) -> serde_json::Value {
    json!({
        "file": p.file,
        "line": p.pos.as_ref().map(|x| x.line),
        "column": p.pos.as_ref().map(|x| x.column),
        "pointer": p.pointer,
        "node": p.node,
        "rule": p.rule.as_str(),
        "message": p.message,
    })
}

fn report(ctx: &Ctx, problems: &[Problem]) -> Result<(), CliError> {
    if ctx.json {
        out_json(
            &json!({ "ok": problems.is_empty(), "problems": problems.iter().map(problem_json).collect::<Vec<_>>() }),
        )?;
    } else {
        for p in problems {
            outln(&p.to_string())?;
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        if !ctx.json {
            eprintln!("{} problem(s)", problems.len());
        }
        Err(CliError::silent())
    }
}

fn check(ctx: &Ctx, args: &CheckArgs) -> Result<(), CliError> {
    let loaded = load_all(ctx, &args.paths);
    if loaded.problems.is_empty() && !ctx.json {
        eprintln!("{} nodes: ok", loaded.nodes.len());
    }
    report(ctx, &loaded.problems)
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
    let all = Json::Array(nodes.iter().map(|(n, _)| n.to_json()).collect());
    out(format!("{}\n", all.to_text(true)).as_bytes())
}

/// A node's identity within a set: its kind and name (the manifest has no name).
fn key(n: &Node) -> (NodeKind, String) {
    (
        n.kind(),
        n.name().map(ToString::to_string).unwrap_or_default(),
    )
}

fn label(k: &(NodeKind, String)) -> String {
    if k.1.is_empty() {
        k.0.to_string()
    } else {
        format!("{} {}", k.0, k.1)
    }
}

fn diff_cmd(ctx: &Ctx, args: &DiffArgs) -> Result<(), CliError> {
    let a: BTreeMap<_, _> = loaded_or_fail(ctx, &args.a)?
        .into_iter()
        .map(|(n, _)| (key(&n), n.to_json()))
        .collect();
    let b: BTreeMap<_, _> = loaded_or_fail(ctx, &args.b)?
        .into_iter()
        .map(|(n, _)| (key(&n), n.to_json()))
        .collect();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed: Vec<((NodeKind, String), Vec<Change>)> = Vec::new();
    for (k, ja) in &a {
        match b.get(k) {
            None => removed.push(k.clone()),
            Some(jb) => {
                let d = diff(ja, jb);
                if !d.is_empty() {
                    changed.push((k.clone(), d));
                }
            }
        }
    }
    added.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    let equal = added.is_empty() && removed.is_empty() && changed.is_empty();
    if ctx.json {
        let node = |k: &(NodeKind, String)| json!({ "kind": k.0.as_str(), "name": k.1 });
        out_json(&json!({
            "equal": equal,
            "added": added.iter().map(node).collect::<Vec<_>>(),
            "removed": removed.iter().map(node).collect::<Vec<_>>(),
            "changed": changed.iter().map(|(k, d)| json!({
                "kind": k.0.as_str(),
                "name": k.1,
                "fields": d.iter().map(change_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut text = String::new();
        for k in &added {
            text.push_str(&format!("+ {}\n", label(k)));
        }
        for k in &removed {
            text.push_str(&format!("- {}\n", label(k)));
        }
        for (k, d) in &changed {
            text.push_str(&format!("~ {}\n", label(k)));
            for c in d {
                match c {
                    Change::Added { pointer, new } => {
                        text.push_str(&format!("    + {pointer}: {}\n", new.to_text(false)))
                    }
                    Change::Removed { pointer, old } => {
                        text.push_str(&format!("    - {pointer}: {}\n", old.to_text(false)))
                    }
                    Change::Changed { pointer, old, new } => {
                        text.push_str(&format!(
                            "    ~ {pointer}: {} -> {}\n",
                            old.to_text(false),
                            new.to_text(false)
                        ));
                    }
                }
            }
        }
        out(text.as_bytes())?;
    }
    if equal {
        Ok(())
    } else {
        Err(CliError::silent())
    }
}

fn change_json(c: &Change) -> serde_json::Value {
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
