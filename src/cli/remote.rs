//! `aos remote`, `aos fetch`, `aos pull`, `aos push`, `aos clone`.

use std::path::PathBuf;

use aos::object::ObjectId;
use aos::remote;
use aos::remote::sync::{self, Moved, SyncOptions, Update};
use serde_json::json;

use super::{CliError, Ctx, out_json, outln};

fn id_json(id: Option<ObjectId>) -> serde_json::Value {
    id.map_or(serde_json::Value::Null, |i| i.to_string().into())
}

fn moved_json(m: &Moved) -> serde_json::Value {
    json!({"objects": m.objects, "bytes": m.bytes})
}

fn moved_text(m: &Moved) -> String {
    format!("{} objects, {} bytes", m.objects, m.bytes)
}

/// Manage remotes: other stores to fetch worlds from and push worlds to.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    #[command(subcommand)]
    cmd: RemoteCmd,
}

#[derive(clap::Subcommand, Debug)]
enum RemoteCmd {
    /// Add a remote: NAME for the store at URL (a path to a store directory).
    Add {
        /// The remote's name.
        name: String,
        /// A path to the other store (its `.aos` directory or the directory holding it).
        url: PathBuf,
    },
    /// List the remotes.
    List,
    /// Remove a remote and its remote-tracking refs.
    Remove {
        /// The remote's name.
        name: String,
    },
}

/// Runs `aos remote`.
pub fn run_remote(ctx: &Ctx, a: &RemoteArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    match &a.cmd {
        RemoteCmd::Add { name, url } => {
            let r = remote::add(&store, name, url, &ctx.cwd)?;
            if ctx.json {
                return out_json(&json!({"name": r.name, "url": r.url}));
            }
            outln(&format!("added remote {} at {}", r.name, r.url.display()))
        }
        RemoteCmd::List => {
            let all = remote::list(&store)?;
            if ctx.json {
                return out_json(&json!(
                    all.iter()
                        .map(|r| json!({"name": r.name, "url": r.url}))
                        .collect::<Vec<_>>()
                ));
            }
            for r in all {
                outln(&format!("{}\t{}", r.name, r.url.display()))?;
            }
            Ok(())
        }
        RemoteCmd::Remove { name } => {
            remote::remove(&store, name)?;
            if ctx.json {
                return out_json(&json!({"removed": name}));
            }
            outln(&format!("removed remote {name}"))
        }
    }
}

/// Fetch worlds from a remote: receive missing objects (checked) and update the
/// remote-tracking refs `refs/remotes/REMOTE/worlds/*`. Local worlds do not move.
#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// The remote.
    remote: String,
    /// Only these worlds (default: all of the remote's worlds).
    worlds: Vec<String>,
}

/// Runs `aos fetch`.
pub fn run_fetch(ctx: &Ctx, a: &FetchArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let bar = ctx.progress();
    let only = (!a.worlds.is_empty()).then_some(a.worlds.as_slice());
    let r = sync::fetch(&store, &a.remote, only, &bar)?;
    if ctx.json {
        return out_json(&json!({
            "remote": a.remote,
            "worlds": r.worlds.iter().map(|w| json!({
                "world": w.world, "old": id_json(w.old), "new": w.new.to_string(),
            })).collect::<Vec<_>>(),
            "received": moved_json(&r.moved),
        }));
    }
    for w in &r.worlds {
        let what = match w.old {
            Some(o) if o == w.new => "up to date".to_owned(),
            Some(o) => format!("{o} -> {}", w.new),
            None => format!("new, at {}", w.new),
        };
        outln(&format!("{}/{}: {what}", a.remote, w.world))?;
    }
    outln(&format!("received {}", moved_text(&r.moved)))
}

/// Fetch a world from a remote and move the local world to it: create it or fast-forward it.
/// A world that diverged is an error unless --force.
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// The remote.
    remote: String,
    /// The world.
    world: String,
    /// Replace a diverged local world with the remote one.
    #[arg(long)]
    force: bool,
    /// Replay and verify the received world before the local world moves.
    #[arg(long)]
    verify: bool,
}

fn update_text(u: Update, old: Option<ObjectId>, new: ObjectId) -> String {
    match u {
        Update::UpToDate => "already up to date".to_owned(),
        Update::Ahead => "local world is ahead; nothing to do".to_owned(),
        Update::Created => format!("created at {new}"),
        Update::FastForward | Update::Forced => format!(
            "{} {} -> {new}",
            u.as_str(),
            old.map_or_else(|| "-".to_owned(), |o| o.to_string())
        ),
    }
}

/// Runs `aos pull`.
pub fn run_pull(ctx: &Ctx, a: &PullArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let bar = ctx.progress();
    let opts = SyncOptions {
        force: a.force,
        verify: a.verify,
    };
    let r = sync::pull(&store, &a.remote, &a.world, opts, &bar)?;
    if ctx.json {
        return out_json(&json!({
            "remote": a.remote, "world": a.world, "update": r.update.as_str(),
            "old": id_json(r.old), "new": r.new.to_string(),
            "received": moved_json(&r.moved), "verified": r.verified,
        }));
    }
    outln(&format!(
        "{}: {} (received {})",
        a.world,
        update_text(r.update, r.old, r.new),
        moved_text(&r.moved)
    ))
}

/// Push a world to a remote. The remote world moves by compare-and-swap against what the last
/// fetch saw (a lease) and only fast-forward unless --force.
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The remote.
    remote: String,
    /// `WORLD`, or `WORLD:DST` to push to another name on the remote.
    world: String,
    /// Allow a push that is not a fast-forward (the lease still applies).
    #[arg(long)]
    force: bool,
}

/// Runs `aos push`.
pub fn run_push(ctx: &Ctx, a: &PushArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let bar = ctx.progress();
    let (src, dst) = a.world.split_once(':').unwrap_or((&a.world, &a.world));
    if src.is_empty() || dst.is_empty() {
        return Err(CliError::usage(format!(
            "`{}`: expected WORLD or WORLD:DST",
            a.world
        )));
    }
    let opts = SyncOptions {
        force: a.force,
        verify: false,
    };
    let r = sync::push(&store, &a.remote, src, dst, opts, &bar)?;
    if ctx.json {
        return out_json(&json!({
            "remote": a.remote, "world": src, "dst": dst, "update": r.update.as_str(),
            "old": id_json(r.old), "new": r.new.to_string(), "sent": moved_json(&r.moved),
        }));
    }
    outln(&format!(
        "{}/{dst}: {} (sent {})",
        a.remote,
        update_text(r.update, r.old, r.new),
        moved_text(&r.moved)
    ))
}

/// Clone a store or a bundle into a new directory: every world; a store becomes remote
/// `origin`.
#[derive(clap::Args, Debug)]
pub struct CloneArgs {
    /// The store to clone (a directory), or a bundle file.
    source: PathBuf,
    /// The directory to create the new store in.
    dir: PathBuf,
}

/// Runs `aos clone`.
pub fn run_clone(ctx: &Ctx, a: &CloneArgs) -> Result<(), CliError> {
    let source = ctx.cwd.join(&a.source);
    let dest = ctx.cwd.join(&a.dir).join(aos::store::STORE_DIR);
    let bar = ctx.progress();
    let r = sync::clone_store_with(&source, &dest, &ctx.options, &bar)?;
    if ctx.json {
        return out_json(&json!({
            "store": r.store,
            "worlds": r.worlds.iter().map(|(w, h)| json!({"world": w, "head": h.to_string()}))
                .collect::<Vec<_>>(),
            "received": moved_json(&r.moved),
        }));
    }
    for (w, h) in &r.worlds {
        outln(&format!("{w}: {h}"))?;
    }
    outln(&format!(
        "cloned {} worlds into {} (received {})",
        r.worlds.len(),
        r.store.display(),
        moved_text(&r.moved)
    ))
}
