//! Sending a batch of events from JSON Lines: every line is checked before anything is
//! appended, then the events are appended in group commits as the batch is read again.
//!
//! A batch is one `{"schema": .., "value": .., "key"?: .., "id"?: ..}` object per line (`id`:
//! an idempotency key, see [`super::idempotency`]); blank lines are
//! skipped. It is read a chunk of lines at a time and each chunk is parsed in parallel, so
//! memory does not grow with a batch read from a file. A batch with bad lines appends
//! nothing, and its error names every bad line (up to [`MAX_REPORTED`] of them).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::codec::json::{Json, JsonError, parse_json};
use crate::kernel::error::WorldError;
use crate::kernel::input::{IdProblem, check_id};
use crate::kernel::machine::EventIn;
use crate::kernel::program::Program;
use crate::progress::Progress;
use crate::world::event::parse_event;
use crate::world::idempotency;
use crate::world::{Durable, SendOptions, SendSummary, World};

/// Lines a batch is read and parsed in at a time.
const CHUNK_LINES: usize = 16_384;

/// The most bad lines a [`BatchError::BadLines`] lists; it counts the others.
pub const MAX_REPORTED: usize = 20;

/// A batch of events in JSON Lines.
#[derive(Clone, Debug)]
pub struct Batch {
    source: Source,
    /// Events at the start of the batch to check but not send (a resumed batch).
    skip: u64,
}

#[derive(Clone, Debug)]
enum Source {
    Bytes(Arc<[u8]>),
    File(PathBuf),
}

/// Why one line of a batch is not an event of the world.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    /// The line is not UTF-8.
    #[error("not UTF-8 (byte {at} of the line)")]
    NotUtf8 {
        /// The offset of the first bad byte in the line.
        at: usize,
    },
    /// The line is not JSON.
    #[error(transparent)]
    Json(JsonError),
    /// The line is JSON, but not an object.
    #[error("expected an object {{\"schema\", \"value\", \"key\"?, \"id\"?}}")]
    NotObject,
    /// `schema` is not a string.
    #[error("`schema` must be a string")]
    SchemaNotText,
    /// `id` is not a string.
    #[error("`id` must be a string (an idempotency key)")]
    IdNotText,
    /// `id` is not an idempotency key.
    #[error("`id`: {0}")]
    BadId(IdProblem),
    /// `id` names a different event on an earlier line of the batch.
    #[error("idempotency key `{id}` names a different event on line {line}")]
    IdReused {
        /// The key.
        id: String,
        /// The earlier line.
        line: u64,
    },
    /// A member other than `schema`, `value`, `key` and `id`.
    #[error("unexpected member `{0}`")]
    Unknown(String),
    /// `schema` or `value` is missing.
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// The event does not fit the world (an unknown schema, a value or key that does not fit).
    #[error(transparent)]
    Event(Box<WorldError>),
}

/// A bad line of a batch.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct BadLine {
    /// Its number, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub problem: LineProblem,
}

/// Why a batch was not sent, or not sent completely.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The batch cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file (`-` for bytes given in memory).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Some lines are not events of the world; nothing was appended.
    #[error("{}", bad_lines(lines, *more))]
    BadLines {
        /// The first [`MAX_REPORTED`] bad lines, in order.
        lines: Vec<BadLine>,
        /// How many more bad lines there are.
        more: u64,
    },
    /// The batch file changed between its check and its sending, and a line read on the
    /// second pass is bad (or the file cannot be read any more). The events before it are
    /// appended, as `sent` says.
    #[error(
        "the batch changed while it was being sent ({problem}); {} events were appended, up to \
         height {}",
        sent.events,
        sent.height
    )]
    Changed {
        /// What the second pass met.
        problem: Box<BatchError>,
        /// What was appended.
        sent: Box<SendSummary>,
    },
    /// More events were to be skipped than the batch holds.
    #[error("cannot skip {skip} events: the batch holds {events}")]
    SkipTooFar {
        /// The events to skip.
        skip: u64,
        /// The events in the batch.
        events: u64,
    },
    /// Appending failed.
    #[error(transparent)]
    World(#[from] WorldError),
}

fn bad_lines(lines: &[BadLine], more: u64) -> String {
    if let ([one], 0) = (lines, more) {
        return one.to_string();
    }
    let total = lines.len() as u64 + more;
    let mut s = format!("{total} lines of the batch are not events of the world:");
    for l in lines {
        s.push_str("\n  ");
        s.push_str(&l.to_string());
    }
    if more > 0 {
        s.push_str(&format!("\n  and {more} more"));
    }
    s
}

impl Batch {
    /// The batch in file `path`.
    #[must_use]
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::File(path.into()),
            skip: 0,
        }
    }

    /// The batch in `bytes` (standard input, say).
    #[must_use]
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self {
            source: Source::Bytes(bytes.into()),
            skip: 0,
        }
    }

    /// This batch without its first `n` events (blank lines do not count): how a batch is
    /// resumed after a failure acknowledged the first `n` as durable. Every line is still
    /// checked.
    #[must_use]
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    fn path(&self) -> PathBuf {
        match &self.source {
            Source::Bytes(_) => PathBuf::from("-"),
            Source::File(p) => p.clone(),
        }
    }

    fn reader(&self) -> Result<Box<dyn BufRead + Send + '_>, BatchError> {
        Ok(match &self.source {
            Source::Bytes(b) => Box::new(Cursor::new(&b[..])),
            Source::File(p) => Box::new(BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(p).map_err(|source| BatchError::Read {
                    path: p.clone(),
                    source,
                })?,
            )),
        })
    }

    /// Checks every line against `prog`; the number of events in the batch.
    ///
    /// # Errors
    /// [`BatchError::BadLines`] naming the bad lines; [`BatchError::Read`].
    pub fn check(&self, prog: &Program) -> Result<u64, BatchError> {
        let mut lines = Lines::new(self.reader()?, self.path());
        let mut events = 0u64;
        let mut bad: Vec<BadLine> = Vec::new();
        let mut more = 0u64;
        // Each idempotency key's first line and event digest.
        let mut ids: HashMap<String, (u64, [u8; 32])> = HashMap::new();
        while let Some((first, chunk)) = lines.next_chunk()? {
            let parsed: Vec<Result<Option<EventIn>, BadLine>> = parse_chunk(prog, first, &chunk);
            for (i, p) in parsed.into_iter().enumerate() {
                let p = match p {
                    Ok(Some(ev)) if ev.id.is_some() => {
                        reuse(&mut ids, first + i as u64, ev).map(Some)
                    }
                    p => p,
                };
                match p {
                    Ok(Some(_)) => events += 1,
                    Ok(None) => {}
                    Err(b) if bad.len() < MAX_REPORTED => bad.push(b),
                    Err(_) => more += 1,
                }
            }
        }
        if bad.is_empty() {
            Ok(events)
        } else {
            Err(BatchError::BadLines { lines: bad, more })
        }
    }
}

/// Checks that the idempotency key of `ev`, on line `line`, names no other event on an
/// earlier line.
fn reuse(
    ids: &mut HashMap<String, (u64, [u8; 32])>,
    line: u64,
    ev: EventIn,
) -> Result<EventIn, BadLine> {
    let Some(id) = &ev.id else { return Ok(ev) };
    let digest = idempotency::digest(&ev);
    match ids.get(id) {
        Some(&(first, d)) if d != digest => Err(BadLine {
            line,
            problem: LineProblem::IdReused {
                id: id.clone(),
                line: first,
            },
        }),
        Some(_) => Ok(ev),
        None => {
            ids.insert(id.clone(), (line, digest));
            Ok(ev)
        }
    }
}

fn parse_chunk(
    prog: &Program,
    first: u64,
    chunk: &[Vec<u8>],
) -> Vec<Result<Option<EventIn>, BadLine>> {
    chunk
        .par_iter()
        .enumerate()
        .map(|(i, l)| {
            let line = first + i as u64;
            parse_line(prog, l).map_err(|problem| BadLine { line, problem })
        })
        .collect()
}

/// Reads one line: `None` for a blank one.
fn parse_line(prog: &Program, bytes: &[u8]) -> Result<Option<EventIn>, LineProblem> {
    let text = std::str::from_utf8(bytes).map_err(|e| LineProblem::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let j = parse_json(t).map_err(LineProblem::Json)?;
    let Json::Object(members) = &j else {
        return Err(LineProblem::NotObject);
    };
    let (mut schema, mut val, mut key, mut id) = (None, None, None, None);
    for (k, v) in members {
        match k.as_str() {
            "schema" => match v {
                Json::String(s) => schema = Some(s.as_str()),
                _ => return Err(LineProblem::SchemaNotText),
            },
            "value" => val = Some(v),
            "key" => key = Some(v),
            "id" => match v {
                Json::String(s) => {
                    check_id(s).map_err(LineProblem::BadId)?;
                    id = Some(s.clone());
                }
                _ => return Err(LineProblem::IdNotText),
            },
            other => return Err(LineProblem::Unknown(other.to_owned())),
        }
    }
    let schema = schema.ok_or(LineProblem::Missing("schema"))?;
    let val = val.ok_or(LineProblem::Missing("value"))?;
    let mut ev =
        parse_event(prog, schema, val, key).map_err(|e| LineProblem::Event(Box::new(e)))?;
    ev.id = id;
    Ok(Some(ev))
}

/// A chunk of lines and the number of its first.
type Chunk = (u64, Vec<Vec<u8>>);

/// The lines of a batch, a chunk at a time.
struct Lines<'a> {
    reader: Box<dyn BufRead + Send + 'a>,
    path: PathBuf,
    next: u64,
}

impl<'a> Lines<'a> {
    fn new(reader: Box<dyn BufRead + Send + 'a>, path: PathBuf) -> Self {
        Self {
            reader,
            path,
            next: 1,
        }
    }

    /// The next chunk of lines and the number of its first; `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, BatchError> {
        let mut lines = Vec::with_capacity(CHUNK_LINES.min(1024));
        while lines.len() < CHUNK_LINES {
            let mut line = Vec::new();
            let got =
                self.reader
                    .read_until(b'\n', &mut line)
                    .map_err(|source| BatchError::Read {
                        path: self.path.clone(),
                        source,
                    })?;
            if got == 0 {
                break;
            }
            lines.push(line);
        }
        if lines.is_empty() {
            return Ok(None);
        }
        let first = self.next;
        self.next += lines.len() as u64;
        Ok(Some((first, lines)))
    }
}

/// The events of a batch, parsed a chunk at a time as [`World::send`] consumes them. A
/// problem ends the events and is kept in `failed`.
struct Events<'a> {
    lines: Lines<'a>,
    /// Events still to drop before the first one sent.
    skip: u64,
    prog: Arc<Program>,
    ready: std::vec::IntoIter<EventIn>,
    failed: &'a RefCell<Option<BatchError>>,
}

impl Iterator for Events<'_> {
    type Item = EventIn;

    fn next(&mut self) -> Option<EventIn> {
        loop {
            if let Some(e) = self.ready.next() {
                if self.skip > 0 {
                    self.skip -= 1;
                    continue;
                }
                return Some(e);
            }
            let fail = |e: BatchError| {
                *self.failed.borrow_mut() = Some(e);
                None
            };
            let (first, chunk) = match self.lines.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => return None,
                Err(e) => return fail(e),
            };
            let parsed: Result<Vec<Option<EventIn>>, BadLine> =
                parse_chunk(&self.prog, first, &chunk).into_iter().collect();
            match parsed {
                Ok(v) => self.ready = v.into_iter().flatten().collect::<Vec<_>>().into_iter(),
                Err(b) => {
                    return fail(BatchError::BadLines {
                        lines: vec![b],
                        more: 0,
                    });
                }
            }
        }
    }
}

impl World<'_> {
    /// Sends `batch`: checks every line, then appends the events in group commits (each
    /// commit one pack and one fsync; each acknowledged event durable) as the batch is read
    /// a second time, so memory does not grow with it. `progress` gets a `send` phase with
    /// the number of events; `ack` gets each commit as it becomes durable (see
    /// [`World::send_acked`]), its event count including the skipped events, so that it
    /// is always the number to skip when resuming.
    ///
    /// # Errors
    /// [`BatchError::BadLines`] (nothing appended); [`BatchError::Read`];
    /// [`BatchError::Changed`] if the file changed between the two readings (the events
    /// before the change are appended); [`BatchError::World`] as [`World::send`].
    pub fn send_batch(
        &mut self,
        batch: &Batch,
        opts: &SendOptions,
        progress: &dyn Progress,
        ack: &mut dyn FnMut(&Durable),
    ) -> Result<SendSummary, BatchError> {
        let prog = self.program_arc();
        let total = batch.check(&prog)?;
        if batch.skip > total {
            return Err(BatchError::SkipTooFar {
                skip: batch.skip,
                events: total,
            });
        }
        progress.start("send", Some(total - batch.skip));
        let failed = RefCell::new(None);
        let events = Events {
            lines: Lines::new(batch.reader()?, batch.path()),
            skip: batch.skip,
            prog,
            ready: Vec::new().into_iter(),
            failed: &failed,
        };
        let skipped = batch.skip;
        let sent = self.send_acked(events, opts, progress, &mut |d| {
            ack(&Durable {
                events: d.events + skipped,
                ..d.clone()
            });
        })?;
        progress.finish();
        match failed.into_inner() {
            Some(problem) => Err(BatchError::Changed {
                problem: Box::new(problem),
                sent: Box::new(sent),
            }),
            None => Ok(sent),
        }
    }
}
