//! `aos hash-object`: compute ids, and store objects with `-w`.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use aos::codec::{cbor, json};
use aos::object::{Kind, ObjectId};
use aos::store::{Store, StoreError};
use serde_json::json;

use super::{CliError, Ctx, out};

/// Compute the id of a blob or value, and with -w store it.
///
/// Blobs are taken as raw bytes. A value is one item of the data model, given as canonical
/// CBOR (`--format cbor`, checked strictly: non-canonical input is rejected with exit code 1,
/// naming the rule and byte offset) or as JSON (`--format json`, the default) through this
/// mapping: null, booleans, strings and arrays as themselves; integers without fraction or
/// exponent (−2^64 ..= 2^64−1); `{"$bytes": "<base64>"}` for byte strings;
/// `{"$link": "b3:<hex>"}` for links; `{"$map": [[key, value], ...]}` for maps with non-text
/// keys; any other object is a map with text keys (duplicate names are an error). The same
/// value always gets the same bytes and id. Full rules: objects-spec/README.md §3.
#[derive(clap::Args, Debug)]
pub struct HashObjectArgs {
    /// Store the object (without -w, only the id is computed).
    #[arg(short)]
    pub w: bool,
    /// Kind of object.
    #[arg(short = 't', long = "type", value_enum, default_value_t = KindArg::Blob)]
    pub kind: KindArg,
    /// How value input is written (ignored for blobs).
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    pub format: FormatArg,
    /// Read file paths from stdin, one per line, and print one id per line. With -w the
    /// objects are written in batches (one pack and one fsync per batch); each id is printed
    /// once its batch is durable.
    #[arg(long, conflicts_with = "file")]
    pub stdin_paths: bool,
    /// Input file; `-` or none reads stdin.
    pub file: Option<PathBuf>,
}

/// Object kinds accepted on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KindArg {
    /// Raw bytes.
    Blob,
    /// One canonical CBOR data item.
    Value,
}

/// Input formats for values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    /// aos's JSON mapping of the data model.
    Json,
    /// Canonical CBOR, checked strictly.
    Cbor,
}

impl HashObjectArgs {
    fn kind(&self) -> Kind {
        match self.kind {
            KindArg::Blob => Kind::Blob,
            KindArg::Value => Kind::Value,
        }
    }

    /// Turns input bytes into the payload of the object to hash.
    fn payload(&self, input: Vec<u8>, origin: &Path) -> Result<Vec<u8>, CliError> {
        match (self.kind, self.format) {
            (KindArg::Blob, _) | (KindArg::Value, FormatArg::Cbor) => Ok(input),
            (KindArg::Value, FormatArg::Json) => {
                let text = String::from_utf8(input).map_err(|e| {
                    CliError::user(format!(
                        "{}: JSON input is not UTF-8 (byte offset {})",
                        origin.display(),
                        e.utf8_error().valid_up_to()
                    ))
                })?;
                let v = json::from_json(&text)
                    .map_err(|e| CliError::user(format!("{}: {e}", origin.display())))?;
                Ok(cbor::encode(&v))
            }
        }
    }
}

fn read_input(ctx: &Ctx, file: Option<&PathBuf>) -> Result<(Vec<u8>, PathBuf), CliError> {
    match file {
        Some(p) if p.as_os_str() != "-" => {
            let path = ctx.cwd.join(p);
            let bytes = std::fs::read(&path)
                .map_err(|e| CliError::user(format!("{}: {e}", p.display())))?;
            Ok((bytes, p.clone()))
        }
        _ => {
            let mut buf = Vec::new();
            std::io::stdin().lock().read_to_end(&mut buf)?;
            Ok((buf, PathBuf::from("<stdin>")))
        }
    }
}

fn with_origin(origin: &Path, e: StoreError) -> CliError {
    let mut err = CliError::from(e);
    err.message = format!("{}: {}", origin.display(), err.message);
    err
}

fn line(ctx: &Ctx, id: &ObjectId, kind: Kind, size: usize) -> String {
    if ctx.json {
        format!(
            "{}\n",
            json!({ "id": id.to_string(), "kind": kind.name(), "size": size })
        )
    } else {
        format!("{id}\n")
    }
}

/// Runs `aos hash-object`.
pub fn run(ctx: &Ctx, args: &HashObjectArgs) -> Result<(), CliError> {
    let kind = args.kind();
    let store = if args.w { Some(ctx.store()?) } else { None };
    if args.stdin_paths {
        return stdin_paths(ctx, args, store.as_ref());
    }
    let (input, origin) = read_input(ctx, args.file.as_ref())?;
    let payload = args.payload(input, &origin)?;
    let id = match &store {
        Some(s) => s.put(kind, &payload),
        None => Store::check(kind, &payload),
    }
    .map_err(|e| with_origin(&origin, e))?;
    out(line(ctx, &id, kind, payload.len()).as_bytes())
}

/// Objects per batch at most, and pending pack bytes at most, before a batch is committed
/// even though more input is waiting.
const BATCH_OBJECTS: usize = 65_536;
const BATCH_BYTES: u64 = 512 << 20;

fn stdin_paths(ctx: &Ctx, args: &HashObjectArgs, store: Option<&Store>) -> Result<(), CliError> {
    let kind = args.kind();
    // A reader thread feeds paths through a channel, so the writer can tell whether more
    // input is ready (keep batching) or not (commit now, print, then wait): ids appear as
    // soon as they are durable, even when the paths come from an interactive producer.
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<String>>(4096);
    std::thread::spawn(move || {
        for l in std::io::stdin().lock().lines() {
            let stop = l.is_err();
            if tx.send(l).is_err() || stop {
                break;
            }
        }
    });
    let mut batch = store.map(Store::batch);
    let mut pending = String::new();
    let mut failure: Option<CliError> = None;
    loop {
        let next = match rx.try_recv() {
            Ok(l) => Some(l),
            Err(mpsc::TryRecvError::Empty) => {
                flush(&mut batch, store, &mut pending)?;
                rx.recv().ok()
            }
            Err(mpsc::TryRecvError::Disconnected) => None,
        };
        let Some(l) = next else { break };
        let path = match l {
            Ok(p) => PathBuf::from(p),
            Err(e) => {
                failure = Some(CliError::user(format!("reading paths from stdin: {e}")));
                break;
            }
        };
        let result = (|| {
            let (input, origin) = read_input(ctx, Some(&path))?;
            let payload = args.payload(input, &origin)?;
            let id = match batch.as_mut() {
                Some(b) => b.add(kind, &payload),
                None => Store::check(kind, &payload),
            }
            .map_err(|e| with_origin(&origin, e))?;
            Ok::<_, CliError>(line(ctx, &id, kind, payload.len()))
        })();
        match result {
            Ok(l) => pending.push_str(&l),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        if let Some(b) = &batch {
            if b.len() >= BATCH_OBJECTS || b.pending_bytes() >= BATCH_BYTES {
                flush(&mut batch, store, &mut pending)?;
            }
        } else if pending.len() >= 1 << 16 {
            flush(&mut batch, store, &mut pending)?;
        }
    }
    // Whatever was read before a failure is still committed and reported.
    flush(&mut batch, store, &mut pending)?;
    failure.map_or(Ok(()), Err)
}

/// Commits the pending batch (if writing) and prints the ids it made durable.
fn flush<'s>(
    batch: &mut Option<aos::store::Batch<'s>>,
    store: Option<&'s Store>,
    pending: &mut String,
) -> Result<(), CliError> {
    if let (Some(b), Some(s)) = (batch.take(), store) {
        b.commit()?;
        *batch = Some(s.batch());
    }
    if !pending.is_empty() {
        out(pending.as_bytes())?;
        pending.clear();
    }
    Ok(())
}
