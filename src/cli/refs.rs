//! `aos show-ref` and `aos update-ref`.

use aos::object::{IdPrefix, ObjectId};
use aos::store::Store;
use aos::store::refs::{Expected, RefName};
use serde_json::json;

use super::{CliError, Ctx, out_json, outln};

/// List refs with their targets.
#[derive(clap::Args, Debug)]
pub struct ShowRefArgs {
    /// Only refs whose name starts with this (default: all, `refs/`).
    #[arg(default_value = "refs/")]
    pub prefix: String,
}

/// Move or delete a ref by compare-and-swap.
///
/// `aos update-ref NAME NEW` sets NAME whatever it was; `aos update-ref NAME NEW OLD` only
/// if NAME is at OLD now (`-` for "does not exist"). Every change is appended to the ref's
/// reflog.
#[derive(clap::Args, Debug)]
pub struct UpdateRefArgs {
    /// Delete the ref (then the first value given is OLD).
    #[arg(short)]
    pub d: bool,
    /// Reflog message.
    #[arg(short, long, default_value = "update-ref")]
    pub message: String,
    /// Full ref name, e.g. `refs/heads/main`.
    pub name: String,
    /// The new target (an id or unambiguous prefix of a stored object); with -d, OLD.
    pub new: Option<String>,
    /// The expected current target, or `-` for "must not exist".
    pub old: Option<String>,
}

/// Runs `aos show-ref`.
pub fn show_ref(ctx: &Ctx, args: &ShowRefArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let refs = store.refs().list(&args.prefix)?;
    if ctx.json {
        let list: Vec<_> = refs
            .iter()
            .map(|(n, id)| json!({ "name": n.to_string(), "id": id.to_string() }))
            .collect();
        return out_json(&json!(list));
    }
    let mut text = String::new();
    for (name, id) in refs {
        text.push_str(&format!("{id} {name}\n"));
    }
    super::out(text.as_bytes())
}

fn parse_expected(store: &Store, s: Option<&str>) -> Result<Expected, CliError> {
    match s {
        None => Ok(Expected::Any),
        Some("-") => Ok(Expected::Absent),
        Some(s) => {
            // The expected value need not exist as an object: compare ids, resolving only
            // abbreviations.
            if let Ok(id) = s.parse::<ObjectId>() {
                return Ok(Expected::Is(id));
            }
            Ok(Expected::Is(resolve(store, s)?))
        }
    }
}

/// Resolves an id or unique id prefix (`b3:` optional) in `store`.
pub(crate) fn resolve(store: &Store, s: &str) -> Result<ObjectId, CliError> {
    let p: IdPrefix = s
        .parse()
        .map_err(|e: aos::object::IdError| CliError::user(e.to_string()))?;
    Ok(store.resolve(&p)?)
}

/// Runs `aos update-ref`.
pub fn update_ref(ctx: &Ctx, args: &UpdateRefArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let name = RefName::new(&args.name)?;
    let (new, old) = if args.d {
        if args.old.is_some() {
            return Err(CliError::usage("with -d give NAME and at most OLD"));
        }
        (None, args.new.as_deref())
    } else {
        let Some(n) = args.new.as_deref() else {
            return Err(CliError::usage(
                "update-ref needs NAME and NEW (or -d NAME)",
            ));
        };
        (Some(resolve(&store, n)?), args.old.as_deref())
    };
    let expected = parse_expected(&store, old)?;
    let before = store.refs().read(&name)?;
    store.refs().update(&name, new, expected, &args.message)?;
    if ctx.json {
        return out_json(&json!({
            "name": name.to_string(),
            "old": before.map(|i| i.to_string()),
            "new": new.map(|i| i.to_string()),
        }));
    }
    if new.is_none() && before.is_none() {
        return outln(&format!("{name} did not exist"));
    }
    Ok(())
}
