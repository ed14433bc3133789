//! `aos init`: create an empty store.

use std::path::PathBuf;

use aos::store::{Init, Store};
use serde_json::json;

use super::{CliError, Ctx, out_json, outln};

/// Create an empty store.
///
/// Creates DIR/.aos (default: the current directory). If a store is already there it is
/// reported and left unchanged.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Directory to create the store in (created if missing).
    pub dir: Option<PathBuf>,
}

/// Runs `aos init`.
pub fn run(ctx: &Ctx, args: &InitArgs) -> Result<(), CliError> {
    let target = ctx.init_target(args.dir.as_ref());
    let (store, init) = Store::init_with(&target, &ctx.options)?;
    let path = std::path::absolute(store.root()).unwrap_or_else(|_| store.root().to_owned());
    if ctx.json {
        return out_json(&json!({ "store": path, "created": init == Init::Created }));
    }
    match init {
        Init::Created => outln(&format!(
            "Initialized empty aos store in {}",
            path.display()
        )),
        Init::Existing => outln(&format!(
            "Reinitialized existing aos store in {}",
            path.display()
        )),
    }
}
