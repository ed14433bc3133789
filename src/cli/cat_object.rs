//! `aos cat-object`: print a stored object.

use aos::codec::{cbor, json};
use aos::object::Kind;
use serde_json::json;

use super::{CliError, Ctx, out, out_json, outln};

/// Print a stored object.
///
/// By default a blob's bytes are printed as they are and a value as pretty JSON (aos's JSON
/// mapping); `--json` prints that JSON compactly.
#[derive(clap::Args, Debug)]
pub struct CatObjectArgs {
    /// Print exactly the stored payload bytes (a value's canonical CBOR; a blob's bytes).
    #[arg(long, group = "mode")]
    pub raw: bool,
    /// Print the object's kind.
    #[arg(long = "type", group = "mode")]
    pub kind: bool,
    /// Print the payload size in bytes.
    #[arg(long, group = "mode")]
    pub size: bool,
    /// The object: a full id `b3:<hex>` or an unambiguous prefix of at least 8 hex digits.
    pub id: String,
}

/// Runs `aos cat-object`.
pub fn run(ctx: &Ctx, args: &CatObjectArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let id = super::refs::resolve(&store, &args.id)?;
    if args.kind || args.size {
        let (kind, size) = store.header(&id)?;
        if ctx.json {
            return out_json(&json!({ "id": id.to_string(), "kind": kind.name(), "size": size }));
        }
        return outln(&if args.kind {
            kind.name().to_owned()
        } else {
            size.to_string()
        });
    }
    let obj = store.get(&id)?;
    if args.raw {
        return out(&obj.data);
    }
    if obj.kind == Kind::Blob {
        return if ctx.json {
            outln(&json::to_json(&cbor::Value::Bytes(obj.data)))
        } else {
            out(&obj.data)
        };
    }
    // Every non-blob kind is canonical CBOR; the store verified it on write and by id now.
    let value = cbor::decode(&obj.data).map_err(|e| CliError::user(format!("object {id}: {e}")))?;
    if ctx.json {
        outln(&json::to_json(&value))
    } else {
        outln(&json::to_json_pretty(&value))
    }
}
