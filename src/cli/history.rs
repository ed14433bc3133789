//! `aos fork` and `aos diff`.

use aos::codec::diff::Change;
use aos::kernel::replay::read_entry;
use aos::object::ObjectId;
use aos::world::diff::{DiffOptions, ReducerDiff, Status, WorldDiff, diff};
use aos::world::history::{Rev, fork};
use serde_json::json;

use super::air::{air_diff_json, air_diff_text, change_json, changes_text};
use super::world::summary;
use super::{CliError, Ctx, out, out_json, outln};

/// Fork a world: a new world sharing SRC's history up to a point, in constant time.
///
/// SRC is `WORLD` (its head), `WORLD@HEIGHT`, `WORLD@ID` or an entry id. The new world's
/// lineage (`refs/lineage/DST`, a small object that bundles, clones and pushes carry) records
/// where it came from; `aos log` marks the fork point.
#[derive(clap::Args, Debug)]
pub struct ForkArgs {
    /// What to fork: `WORLD`, `WORLD@HEIGHT`, `WORLD@b3:ID` or `b3:ID`.
    src: String,
    /// The new world's name.
    dst: String,
}

/// Runs `aos fork`.
pub fn run_fork(ctx: &Ctx, a: &ForkArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let rev = Rev::parse(&a.src)?;
    let f = fork(&store, &rev, &a.dst)?;
    if ctx.json {
        return out_json(&json!({
            "world": a.dst,
            "from": a.src,
            "head": f.head.to_string(),
            "height": f.height,
            "checkpoint": f.checkpoint,
            "lineage": f.lineage.to_string(),
        }));
    }
    outln(&format!(
        "forked {} into {} at height {} ({})",
        a.src, a.dst, f.height, f.head
    ))
}

/// Compare two worlds, or two points of histories: history, control plane and state.
///
/// A and B are `WORLD`, `WORLD@HEIGHT`, `WORLD@b3:ID` or `b3:ID`. Sections: history (the
/// common ancestor and the entries only on each side), manifest (AIR nodes added, removed or
/// changed, with field-level changes by JSON pointer), state (per reducer, and per cell of
/// keyed reducers, values in the sugar lens with JSON pointers). Exits 0 when A and B are the
/// same point of the same history, 1 when they differ. `--json` output is described in
/// docs/guide.md ("aos diff --json").
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The first side.
    a: String,
    /// The second side.
    b: String,
    /// Counts only.
    #[arg(long)]
    stat: bool,
    /// List the entries only on each side.
    #[arg(long)]
    log: bool,
}

/// Runs `aos diff`.
pub fn run_diff(ctx: &Ctx, a: &DiffArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let (ra, rb) = (Rev::parse(&a.a)?, Rev::parse(&a.b)?);
    let bar = ctx.progress();
    let d = diff(
        &store,
        &ra,
        &rb,
        &a.a,
        &a.b,
        DiffOptions { stat: a.stat },
        &bar,
    )?;
    if ctx.json {
        out_json(&if a.stat {
            stat_json(&d)
        } else {
            full_json(&store, &d, a.log)?
        })?;
    } else if a.stat {
        out(stat_text(&d).as_bytes())?;
    } else {
        out(full_text(&store, &d, a.log)?.as_bytes())?;
    }
    if d.is_equal() {
        Ok(())
    } else {
        Err(CliError::silent())
    }
}

/// Cell counts of a diff: (added, removed, changed).
fn cell_counts(d: &WorldDiff) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for r in &d.state {
        for cell in &r.cells {
            match cell.status {
                Status::Added => c.0 += 1,
                Status::Removed => c.1 += 1,
                Status::Changed => c.2 += 1,
            }
        }
    }
    c
}

fn side_json(s: &aos::world::diff::Side) -> serde_json::Value {
    json!({
        "spec": s.spec,
        "head": s.head.to_string(),
        "height": s.height,
        "manifest": s.manifest.to_string(),
    })
}

fn ancestor_json(d: &WorldDiff) -> serde_json::Value {
    d.history.ancestor.map_or(
        serde_json::Value::Null,
        |(h, id)| json!({"height": h, "id": id.to_string()}),
    )
}

fn stat_json(d: &WorldDiff) -> serde_json::Value {
    let (ca, cr, cc) = cell_counts(d);
    json!({
        "format": "aos.diff.stat/1",
        "equal": d.is_equal(),
        "a": side_json(&d.a),
        "b": side_json(&d.b),
        "history": {
            "ancestor": ancestor_json(d),
            "only_a": d.history.only_a.len(),
            "only_b": d.history.only_b.len(),
        },
        "manifest": {
            "added": d.manifest.added.len(),
            "removed": d.manifest.removed.len(),
            "changed": d.manifest.changed.len(),
        },
        "state": {
            "reducers": d.state.len(),
            "cells_added": ca,
            "cells_removed": cr,
            "cells_changed": cc,
        },
    })
}

fn entries_json(
    store: &aos::store::Store,
    list: &[(u64, ObjectId)],
) -> Result<serde_json::Value, CliError> {
    let mut v = Vec::with_capacity(list.len());
    for (h, id) in list {
        let e = read_entry(store, id)?;
        v.push(json!({"height": h, "id": id.to_string(), "kind": e.kind_word()}));
    }
    Ok(json!(v))
}

fn reducer_json(r: &ReducerDiff) -> serde_json::Value {
    let fields = |f: &[Change]| f.iter().map(change_json).collect::<Vec<_>>();
    if r.keyed {
        json!({
            "reducer": r.reducer,
            "keyed": true,
            "status": r.status.as_str(),
            "cells": r.cells.iter().map(|c| json!({
                "key": serde_json::from_str::<serde_json::Value>(&c.key.to_text(false))
                    .unwrap_or(serde_json::Value::Null),
                "status": c.status.as_str(),
                "fields": fields(&c.fields),
            })).collect::<Vec<_>>(),
        })
    } else {
        json!({
            "reducer": r.reducer,
            "keyed": false,
            "status": r.status.as_str(),
            "fields": fields(&r.fields),
        })
    }
}

fn full_json(
    store: &aos::store::Store,
    d: &WorldDiff,
    log: bool,
) -> Result<serde_json::Value, CliError> {
    let mut history = json!({
        "ancestor": ancestor_json(d),
        "only_a": d.history.only_a.len(),
        "only_b": d.history.only_b.len(),
    });
    if log {
        history["log_a"] = entries_json(store, &d.history.only_a)?;
        history["log_b"] = entries_json(store, &d.history.only_b)?;
    }
    let mut manifest = air_diff_json(&d.manifest);
    manifest["equal"] = json!(d.a.manifest == d.b.manifest);
    Ok(json!({
        "format": "aos.diff/1",
        "equal": d.is_equal(),
        "a": side_json(&d.a),
        "b": side_json(&d.b),
        "history": history,
        "manifest": manifest,
        "state": d.state.iter().map(reducer_json).collect::<Vec<_>>(),
    }))
}

fn history_line(d: &WorldDiff) -> String {
    let (na, nb) = (d.history.only_a.len(), d.history.only_b.len());
    match d.history.ancestor {
        Some((h, id)) if na == 0 && nb == 0 => {
            format!("history: the same entry (height {h}, {id})\n")
        }
        Some((h, id)) => format!(
            "history: common ancestor at height {h} ({id}); {na} entries only in {}, {nb} only in {}\n",
            d.a.spec, d.b.spec
        ),
        None => format!(
            "history: unrelated (no common entry); {na} entries in {}, {nb} in {}\n",
            d.a.spec, d.b.spec
        ),
    }
}

fn stat_text(d: &WorldDiff) -> String {
    let mut t = history_line(d);
    let m = &d.manifest;
    t.push_str(&format!(
        "manifest: {} added, {} removed, {} changed nodes\n",
        m.added.len(),
        m.removed.len(),
        m.changed.len()
    ));
    let (ca, cr, cc) = cell_counts(d);
    t.push_str(&format!(
        "state: {} reducers differ; cells: {ca} added, {cr} removed, {cc} changed\n",
        d.state.len()
    ));
    t
}

fn full_text(store: &aos::store::Store, d: &WorldDiff, log: bool) -> Result<String, CliError> {
    let mut t = history_line(d);
    if log {
        for (mark, list) in [("<", &d.history.only_a), (">", &d.history.only_b)] {
            for (h, id) in list {
                let e = read_entry(store, id)?;
                let first = summary(&e);
                let first = first.lines().next().unwrap_or_default();
                t.push_str(&format!("  {mark} #{h} {id} {first}\n"));
            }
        }
    }
    if d.a.manifest == d.b.manifest {
        t.push_str("manifest: equal\n");
    } else {
        t.push_str(&format!("manifest: {} -> {}\n", d.a.manifest, d.b.manifest));
        t.push_str(&air_diff_text(&d.manifest, "  "));
    }
    if d.state.is_empty() {
        t.push_str("state: equal\n");
    } else {
        t.push_str("state:\n");
    }
    let sign = |s: Status| match s {
        Status::Added => "+",
        Status::Removed => "-",
        Status::Changed => "~",
    };
    for r in &d.state {
        if r.keyed {
            t.push_str(&format!(
                "  {} {} ({} cells differ)\n",
                sign(r.status),
                r.reducer,
                r.cells.len()
            ));
            for c in &r.cells {
                t.push_str(&format!(
                    "      {} [{}]\n",
                    sign(c.status),
                    c.key.to_text(false)
                ));
                t.push_str(&changes_text(&c.fields, "          "));
            }
        } else {
            t.push_str(&format!("  {} {}\n", sign(r.status), r.reducer));
            t.push_str(&changes_text(&r.fields, "      "));
        }
    }
    Ok(t)
}
