//! Transactions: several refs moved all or none, with a durable record that makes a crash in
//! the middle of the moves recoverable (objects-spec §8, "Transactions").
//!
//! [`Transaction::commit`]:
//!
//! 1. sorts the changes by name and refuses a name given twice or a name that would be a
//!    directory of another;
//! 2. takes every lock in name order (each like a single update: `NAME.lock`, created
//!    exclusively), settling any earlier transaction that names the ref (below);
//! 3. reads every current value and checks every expectation; any failure so far releases
//!    the locks and changes nothing;
//! 4. opens every reflog and notes its length (the offset its line will have);
//! 5. writes the **record** `txn/<64 hex>` (temporary file, fsync, rename, directory
//!    fsync): the commit point. From here on the transaction happens, whatever crashes;
//! 6. appends and fsyncs every reflog line;
//! 7. moves every ref (the lock file renamed over it, or the ref removed);
//! 8. removes the record.
//!
//! With one ref to move there is no record (one rename is atomic already), and the update is
//! exactly [`Refs::update`].
//!
//! **Settling.** A change recorded in a record is *done* once its ref no longer holds the
//! recorded old value, or its reflog has grown past the recorded line (a later update,
//! which could only happen after this one). Every writer that takes a ref's lock first
//! settles the records naming that ref: a change that is not done is completed (its reflog
//! line written at the recorded offset unless it is there, the new value written), and a
//! record whose changes are all done is removed. A crashed transaction's own lock files are
//! stale (their OS locks died with it), so the next writer of each ref removes them (see
//! [`LockFile`]) and completes the change from the record, which carries every value, so
//! the lock files' contents do not matter. [`Refs::recover`] does the same for every record
//! at once (fsck).
//!
//! Readers read ref files and never records: while a transaction commits (or after its
//! writer crashed, until it is settled) a reader may see some of its refs moved and others
//! not.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::files::{Current, read_ref_file};
use super::reflog::{drop_torn_tail, drop_unhappened_tail, id_or_dash, reflog_line};
use super::update::check_expected;
use super::{Expected, RefError, RefName, Refs, TXN_DIR, io_err, is_absent};
use crate::object::ObjectId;
use crate::store::fs::{LockFile, TMP_PREFIX, create_temp, parent, sync_dir, write_replace};

/// The first line of a transaction record.
pub const RECORD_SIGNATURE: &str = "aos ref transaction 1";

/// The store's directory of temporary files (`tmp/`), where records are written first.
const STORE_TMP_DIR: &str = "tmp";

/// The largest record read (a record lists each ref once, on one line).
const MAX_RECORD: u64 = 64 << 20;

/// One change of a [`Transaction`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Change {
    name: RefName,
    new: Option<ObjectId>,
    expected: Expected,
    message: String,
}

/// Several ref updates applied all or none by [`Transaction::commit`].
#[derive(Debug)]
#[must_use = "a transaction does nothing until it is committed"]
pub struct Transaction<'r> {
    refs: &'r Refs,
    changes: Vec<Change>,
}

impl Refs {
    /// Starts a transaction over refs of this store.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            refs: self,
            changes: Vec::new(),
        }
    }
}

impl Transaction<'_> {
    /// Adds a change: set (`new = Some`) or delete (`new = None`) the ref `name` if it holds
    /// `expected` when the transaction commits, logging `message`. Deleting a ref that does
    /// not exist (when that is expected) is a change that does nothing.
    pub fn update(
        &mut self,
        name: &RefName,
        new: Option<ObjectId>,
        expected: Expected,
        message: &str,
    ) -> &mut Self {
        self.changes.push(Change {
            name: name.clone(),
            new,
            expected,
            message: message.to_owned(),
        });
        self
    }

    /// How many changes it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether it holds no change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Applies every change, or none.
    ///
    /// # Errors
    /// Before the commit point nothing has changed:
    /// - [`RefError::Duplicate`]: a name is given twice;
    /// - [`RefError::Conflict`]: a name clashes with another of the transaction, another ref
    ///   or a leftover reflog;
    /// - [`RefError::Locked`]: another process holds one of the locks;
    /// - [`RefError::Stale`]: a ref does not hold what was expected (the first by name);
    /// - [`RefError::Corrupt`], [`RefError::CorruptTransaction`], [`RefError::Io`].
    ///
    /// After it, [`RefError::Incomplete`]: the transaction is committed and its record
    /// written, but a reflog append or a move failed; the next writer of those refs (or
    /// [`Refs::recover`]) completes it.
    pub fn commit(self) -> Result<(), RefError> {
        self.commit_stopping(Stop(None))
    }

    /// Commits, but stops as a crash would (locks left behind, nothing cleaned up) after
    /// `steps` durable steps of the recorded protocol: 0 before the record, 1 after it, then
    /// one per reflog line and one per move.
    #[cfg(test)]
    pub(crate) fn commit_crashing_after(self, steps: usize) -> Result<(), RefError> {
        self.commit_stopping(Stop(Some(steps)))
    }

    fn commit_stopping(self, stop: Stop) -> Result<(), RefError> {
        let Self { refs, mut changes } = self;
        changes.sort_by(|a, b| a.name.cmp(&b.name));
        check_names(refs, &changes)?;
        let mut held = Vec::with_capacity(changes.len());
        let prepared = refs.lock_all(&changes, &mut held);
        let result = prepared.and_then(|()| refs.apply(&changes, &mut held, stop));
        if result.is_err() {
            // Release what is still held before pruning the directories it made.
            let paths: Vec<PathBuf> = held
                .drain(..)
                .filter(|h| h.lock.is_some())
                .map(|h| refs.ref_path(&changes[h.index].name))
                .collect();
            for p in paths {
                refs.prune_parents(&p);
            }
        }
        result
    }
}

/// Refuses a name given twice, and a name that is a directory of another in the same set.
fn check_names(refs: &Refs, changes: &[Change]) -> Result<(), RefError> {
    for w in changes.windows(2) {
        if w[0].name == w[1].name {
            return Err(RefError::Duplicate {
                name: w[0].name.clone(),
            });
        }
    }
    let names: HashSet<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    for c in changes {
        let s = c.name.as_str();
        for (i, _) in s.match_indices('/').skip(1) {
            let above = &s[..i];
            if names.contains(above) {
                return Err(RefError::Conflict {
                    name: c.name.clone(),
                    path: refs.root().join(above),
                    why: format!(
                        "ref {above} is in the same transaction, and a ref cannot also be a \
                         directory of refs"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Where a test stops a commit as a crash would; `Stop(None)` outside tests.
#[derive(Clone, Copy, Debug)]
struct Stop(Option<usize>);

impl Stop {
    /// Whether the commit stops after `step` steps; if so, the locks still held stay
    /// behind, as a killed process leaves them.
    fn here(self, step: usize, active: &mut [&mut Held]) -> bool {
        if self.0 != Some(step) {
            return false;
        }
        for h in active.iter_mut() {
            if let Some(lock) = h.lock.take() {
                lock.abandon();
            }
        }
        true
    }
}

/// A change whose lock is taken.
struct Held {
    /// Its position in the sorted changes.
    index: usize,
    /// The lock; `None` for the deletion of a ref whose directory does not exist, or once the
    /// move released it.
    lock: Option<LockFile>,
    /// The ref's value when locked.
    current: Option<ObjectId>,
}

impl Refs {
    /// Takes every lock in order, settling earlier records, and reads the current values.
    fn lock_all(&self, changes: &[Change], held: &mut Vec<Held>) -> Result<(), RefError> {
        for (index, c) in changes.iter().enumerate() {
            let path = self.ref_path(&c.name);
            let lock = match c.new {
                Some(_) => Some(self.lock_creating_dirs(&c.name)?),
                None => self.lock_for_delete(&c.name)?,
            };
            let has_lock = lock.is_some();
            // Held before anything else can fail, so that an error releases it.
            held.push(Held {
                index,
                lock,
                current: None,
            });
            if !has_lock {
                // No directory, so no ref: nothing to lock or move.
                continue;
            }
            self.settle_pending(&c.name)?;
            let current = match c.new {
                Some(_) => self.current_for_set(&c.name, &path)?,
                None => match read_ref_file(&path)? {
                    Current::Value(id) => Some(id),
                    Current::Absent | Current::Dir => None,
                },
            };
            if let Some(h) = held.last_mut() {
                h.current = current;
            }
        }
        for h in held.iter() {
            let c = &changes[h.index];
            check_expected(&c.name, c.expected, h.current)?;
        }
        Ok(())
    }

    /// Everything after the expectations are met.
    fn apply(&self, changes: &[Change], held: &mut [Held], stop: Stop) -> Result<(), RefError> {
        // Deleting what does not exist moves nothing.
        let mut active: Vec<&mut Held> = held
            .iter_mut()
            .filter(|h| {
                h.lock.is_some() && !(changes[h.index].new.is_none() && h.current.is_none())
            })
            .collect();
        match active.as_mut_slice() {
            [] => Ok(()),
            [one] => {
                let c = &changes[one.index];
                let path = self.ref_path(&c.name);
                let lock = one.lock.take().expect("active changes hold their lock");
                match c.new {
                    Some(new) => {
                        self.publish_set(&c.name, &path, lock, one.current, new, &c.message)
                    }
                    None => self.publish_delete(&c.name, &path, lock, one.current, &c.message),
                }
            }
            many => self.apply_recorded(changes, many, stop),
        }
    }

    /// Steps 4 to 8 of the protocol for two or more moves.
    fn apply_recorded(
        &self,
        changes: &[Change],
        active: &mut [&mut Held],
        stop: Stop,
    ) -> Result<(), RefError> {
        let crashed = || RefError::Io {
            op: "commit (stopped by a test)",
            path: PathBuf::new(),
            source: io::Error::other("simulated crash"),
        };
        let time = self.clock.unix_secs();
        let mut logs = Vec::with_capacity(active.len());
        let mut entries = Vec::with_capacity(active.len());
        let opened = (|| {
            for h in active.iter() {
                let c = &changes[h.index];
                let (mut file, existed, path) = self.open_reflog(&c.name)?;
                let len = file.metadata().map_err(io_err("open reflog", &path))?.len();
                let offset = drop_torn_tail(&mut file, len)
                    .and_then(|len| drop_unhappened_tail(&mut file, len, h.current))
                    .map_err(io_err("open reflog", &path))?;
                entries.push(RecordEntry {
                    name: c.name.clone(),
                    old: h.current,
                    new: c.new,
                    offset,
                    message: c.message.replace(['\n', '\r'], " "),
                });
                logs.push((file, existed, path));
            }
            Ok::<(), RefError>(())
        })();
        let record = Record { time, entries };
        if opened.is_ok() && stop.here(0, active) {
            return Err(crashed());
        }
        let committed = opened.and_then(|()| self.write_record(&record));
        let record_path = match committed {
            Ok(p) => p,
            Err(e) => {
                // Nothing moved: take back the reflog files this transaction created.
                for (file, existed, path) in logs {
                    if !existed && file.metadata().is_ok_and(|m| m.len() == 0) {
                        drop(file);
                        if fs::remove_file(&path).is_ok() {
                            let _ = sync_dir(parent(&path));
                        }
                    }
                }
                return Err(e);
            }
        };
        if stop.here(1, active) {
            return Err(crashed());
        }
        let mut step = 1;
        let finished = (|| {
            for ((file, existed, path), e) in logs.iter_mut().zip(&record.entries) {
                let line = record.line(e);
                file.write_all(line.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io_err("append to reflog", path))?;
                if !*existed {
                    sync_dir(parent(path)).map_err(io_err("sync directory", parent(path)))?;
                }
                step += 1;
                if stop.here(step, active) {
                    return Err(crashed());
                }
            }
            for i in 0..active.len() {
                let h = &mut active[i];
                let c = &changes[h.index];
                let path = self.ref_path(&c.name);
                let lock = h.lock.take().expect("active changes hold their lock");
                match c.new {
                    Some(new) => lock
                        .commit_to(&path, format!("{new}\n").as_bytes())
                        .map_err(|e| self.classify(&c.name, "write ref", &path, e))?,
                    None => {
                        fs::remove_file(&path).map_err(io_err("remove ref", &path))?;
                        let synced = sync_dir(parent(&path));
                        drop(lock);
                        self.prune_parents(&path);
                        synced.map_err(io_err("sync directory", parent(&path)))?;
                    }
                }
                step += 1;
                if stop.here(step, active) {
                    return Err(crashed());
                }
            }
            Ok::<(), RefError>(())
        })();
        match finished {
            Ok(()) => {
                // A record that survives (the removal is not synced) is settled as done.
                let _ = fs::remove_file(&record_path);
                Ok(())
            }
            Err(e) => Err(RefError::Incomplete {
                record: record_path,
                source: Box::new(e),
            }),
        }
    }

    /// Writes `record` durably into `txn/`: the commit point.
    fn write_record(&self, record: &Record) -> Result<PathBuf, RefError> {
        let text = record.render();
        let dir = self.root.join(TXN_DIR);
        match fs::create_dir(&dir) {
            Ok(()) => sync_dir(&self.root).map_err(io_err("sync directory", &self.root))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create directory", &dir)(e)),
        }
        let path = dir.join(blake3::hash(text.as_bytes()).to_hex().as_str());
        // The temporary file goes where gc clears leftovers (the store's tmp/), if there is
        // one; a rename within the store is atomic.
        let store_tmp = self.root.join(STORE_TMP_DIR);
        let tmp_dir = if store_tmp.is_dir() { &store_tmp } else { &dir };
        let (mut file, tmp) =
            create_temp(tmp_dir, "txn").map_err(io_err("write transaction record", tmp_dir))?;
        let written = (|| {
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &path)?;
            sync_dir(&dir)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write transaction record", &path)(e));
        }
        Ok(path)
    }

    /// Every transaction record, with its path, in name order.
    fn records(&self) -> Result<Vec<(PathBuf, Record)>, RefError> {
        let dir = self.root.join(TXN_DIR);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if is_absent(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list directory", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io_err("list directory", &dir))?;
            let path = entry.path();
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            // A temporary file is a record that was never published.
            if file_name.starts_with(TMP_PREFIX) {
                continue;
            }
            let bytes = match read_limited(&path) {
                Ok(b) => b,
                // Removed since the listing: its transaction is complete.
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(io_err("read transaction record", &path)(e)),
            };
            let record =
                Record::parse(&file_name, &bytes).map_err(|why| RefError::CorruptTransaction {
                    path: path.clone(),
                    why,
                })?;
            out.push((path, record));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Whether some record names the ref `name`.
    pub(super) fn is_named_by_pending(&self, name: &RefName) -> Result<bool, RefError> {
        Ok(self
            .records()?
            .iter()
            .any(|(_, r)| r.entries.iter().any(|e| e.name == *name)))
    }

    /// Settles every record that names `name`: completes the change to `name` unless it is
    /// done, and removes records whose changes are all done. The caller holds the lock of
    /// `name`.
    pub(super) fn settle_pending(&self, name: &RefName) -> Result<(), RefError> {
        for (path, record) in self.records()? {
            let Some(e) = record.entries.iter().find(|e| e.name == *name) else {
                continue;
            };
            if !self.is_done(&record, e)? {
                self.roll_forward(&record, e)?;
            }
            self.remove_if_done(&path, &record)?;
        }
        Ok(())
    }

    /// Whether the change `e` of `record` has happened (or been overtaken by a later one).
    /// Safe without the ref's lock: once done, a change stays done.
    fn is_done(&self, record: &Record, e: &RecordEntry) -> Result<bool, RefError> {
        if e.old == e.new {
            return Ok(true);
        }
        let current = match read_ref_file(&self.ref_path(&e.name))? {
            Current::Value(id) => Some(id),
            Current::Absent | Current::Dir => None,
        };
        if current != e.old {
            return Ok(true);
        }
        let path = self.reflog_path(&e.name);
        let len = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => 0,
            Err(e) if is_absent(&e) => 0,
            Err(e) => return Err(io_err("read reflog", &path)(e)),
        };
        Ok(len > e.offset + record.line(e).len() as u64)
    }

    /// Completes the change `e` of `record`. The caller holds the ref's lock, which stays
    /// held: the new value is written by a temporary file renamed over the ref.
    fn roll_forward(&self, record: &Record, e: &RecordEntry) -> Result<(), RefError> {
        let line = record.line(e);
        let (mut file, existed, log) = self.open_reflog(&e.name)?;
        let present = (|| {
            let len = file.metadata()?.len();
            let end = e.offset + line.len() as u64;
            if len == end {
                let mut found = vec![0u8; line.len()];
                file.seek(SeekFrom::Start(e.offset))?;
                file.read_exact(&mut found)?;
                if found == line.as_bytes() {
                    return Ok(true);
                }
            }
            if len > e.offset {
                // A torn or foreign tail where this line belongs.
                file.set_len(e.offset)?;
            } else {
                drop_torn_tail(&mut file, len)?;
            }
            Ok::<bool, io::Error>(false)
        })()
        .map_err(io_err("repair reflog", &log))?;
        if !present {
            file.seek(SeekFrom::End(0))
                .and_then(|_| file.write_all(line.as_bytes()))
                .and_then(|()| file.sync_all())
                .map_err(io_err("append to reflog", &log))?;
            if !existed {
                sync_dir(parent(&log)).map_err(io_err("sync directory", parent(&log)))?;
            }
        }
        let path = self.ref_path(&e.name);
        match e.new {
            Some(new) => write_replace(&path, format!("{new}\n").as_bytes())
                .map_err(|err| self.classify(&e.name, "write ref", &path, err)),
            None => {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(err) if is_absent(&err) => {}
                    Err(err) => return Err(io_err("remove ref", &path)(err)),
                }
                sync_dir(parent(&path)).map_err(io_err("sync directory", parent(&path)))
            }
        }
    }

    /// Removes the record at `path` if all its changes are done; returns whether it did.
    fn remove_if_done(&self, path: &Path, record: &Record) -> Result<bool, RefError> {
        for e in &record.entries {
            if !self.is_done(record, e)? {
                return Ok(false);
            }
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if is_absent(&e) => Ok(true),
            Err(e) => Err(io_err("remove transaction record", path)(e)),
        }
    }

    /// The transactions whose records are present: committed, and being applied by their
    /// writer or left by one that crashed.
    ///
    /// # Errors
    /// [`RefError::CorruptTransaction`] for a record that does not parse, [`RefError::Io`].
    pub fn pending(&self) -> Result<Vec<Pending>, RefError> {
        self.records()?
            .into_iter()
            .map(|(path, r)| {
                let mut refs = Vec::with_capacity(r.entries.len());
                for e in &r.entries {
                    refs.push(PendingRef {
                        name: e.name.clone(),
                        old: e.old,
                        new: e.new,
                        done: self.is_done(&r, e)?,
                    });
                }
                Ok(Pending {
                    path,
                    time: r.time,
                    refs,
                })
            })
            .collect()
    }

    /// Every id a transaction record names (old and new values): `gc` keeps them, since a
    /// settled record moves refs to them.
    ///
    /// # Errors
    /// As [`Refs::pending`].
    pub fn pending_ids(&self) -> Result<Vec<ObjectId>, RefError> {
        let mut ids: Vec<ObjectId> = self
            .records()?
            .iter()
            .flat_map(|(_, r)| r.entries.iter().flat_map(|e| [e.old, e.new]))
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Settles every record whose refs' locks can be taken: what the next writer of each
    /// ref would do, for all of them at once. Changes whose lock another process holds are
    /// left (and reported): that process is committing them, or crashed holding the lock.
    ///
    /// # Errors
    /// As [`Refs::pending`], and the errors of taking a lock or completing a change.
    pub fn recover(&self) -> Result<RecoverReport, RefError> {
        let mut report = RecoverReport::default();
        for (path, record) in self.records()? {
            for e in &record.entries {
                if self.is_done(&record, e)? {
                    continue;
                }
                match self.lock_creating_dirs(&e.name) {
                    Ok(lock) => {
                        let done = self.is_done(&record, e)?;
                        if !done {
                            self.roll_forward(&record, e)?;
                            report.completed.push(e.name.clone());
                        }
                        drop(lock);
                    }
                    Err(RefError::Locked { path: lock }) => {
                        report.locked.push((e.name.clone(), lock));
                    }
                    Err(err) => return Err(err),
                }
            }
            if self.remove_if_done(&path, &record)? {
                report.removed.push(path);
            } else {
                report.left.push(path);
            }
        }
        Ok(report)
    }
}

/// A transaction record present in the store ([`Refs::pending`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The record file.
    pub path: PathBuf,
    /// When it was committed (seconds since the Unix epoch).
    pub time: u64,
    /// Its changes, in name order.
    pub refs: Vec<PendingRef>,
}

/// One change of a [`Pending`] transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRef {
    /// The ref.
    pub name: RefName,
    /// Its value before (`None`: absent).
    pub old: Option<ObjectId>,
    /// Its value after (`None`: deleted).
    pub new: Option<ObjectId>,
    /// Whether the change has happened.
    pub done: bool,
}

/// What [`Refs::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoverReport {
    /// Refs whose recorded change it completed.
    pub completed: Vec<RefName>,
    /// Records it removed, every change done.
    pub removed: Vec<PathBuf>,
    /// Records left, some change waiting for a lock.
    pub left: Vec<PathBuf>,
    /// Refs with a change waiting, and the lock file held.
    pub locked: Vec<(RefName, PathBuf)>,
}

/// One change in a record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RecordEntry {
    name: RefName,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    /// The length of the ref's reflog before this change: where its line goes.
    offset: u64,
    /// The reflog message, CR and LF already replaced by spaces.
    message: String,
}

/// A transaction record:
///
/// ```text
/// aos ref transaction 1
/// <unix seconds>
/// <old> <new> <reflog offset> <ref name> <message>     one line per ref, names ascending
/// ```
///
/// stored as `txn/<BLAKE3 of these bytes, 64 hex>`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    time: u64,
    entries: Vec<RecordEntry>,
}

impl Record {
    fn render(&self) -> String {
        let mut s = format!("{RECORD_SIGNATURE}\n{}\n", self.time);
        for e in &self.entries {
            s.push_str(&format!(
                "{} {} {} {} {}\n",
                id_or_dash(e.old),
                id_or_dash(e.new),
                e.offset,
                e.name,
                e.message
            ));
        }
        s
    }

    /// The reflog line of change `e`.
    fn line(&self, e: &RecordEntry) -> String {
        reflog_line(e.old, e.new, self.time, &e.message)
    }

    /// Parses a record stored under `file_name`, checking that the name is the hash of the
    /// bytes.
    fn parse(file_name: &str, bytes: &[u8]) -> Result<Self, String> {
        let hash = blake3::hash(bytes).to_hex();
        if file_name != hash.as_str() {
            return Err(format!(
                "the file's name is not the BLAKE3 hash of its contents ({hash}): damaged, or \
                 not a record"
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| "does not end with a line feed".to_owned())?;
        let mut lines = body.split('\n');
        if lines.next() != Some(RECORD_SIGNATURE) {
            return Err(format!("the first line is not `{RECORD_SIGNATURE}`"));
        }
        let time = lines
            .next()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| "line 2: expected the time in seconds".to_owned())?;
        let mut entries: Vec<RecordEntry> = Vec::new();
        for (i, line) in lines.enumerate() {
            let bad = |why: String| format!("line {}: {why}", i + 3);
            let mut f = line.splitn(5, ' ');
            let mut id = |what: &str| -> Result<Option<ObjectId>, String> {
                match f.next() {
                    Some("-") => Ok(None),
                    Some(s) => s
                        .parse()
                        .map(Some)
                        .map_err(|e| bad(format!("bad {what} id: {e}"))),
                    None => Err(bad(format!("missing {what} id"))),
                }
            };
            let old = id("old")?;
            let new = id("new")?;
            let offset = f
                .next()
                .and_then(|o| o.parse::<u64>().ok())
                .ok_or_else(|| bad("expected the reflog offset".into()))?;
            let name = f
                .next()
                .ok_or_else(|| bad("missing ref name".into()))
                .and_then(|n| RefName::new(n).map_err(|e| bad(e.to_string())))?;
            let message = f.next().unwrap_or_default().to_owned();
            if entries.last().is_some_and(|p| p.name >= name) {
                return Err(bad("ref names not strictly ascending".into()));
            }
            entries.push(RecordEntry {
                name,
                old,
                new,
                offset,
                message,
            });
        }
        if entries.is_empty() {
            return Err("no changes".into());
        }
        Ok(Self { time, entries })
    }
}

/// Reads a file of at most [`MAX_RECORD`] bytes (more is an error).
fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_RECORD + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_RECORD} bytes"),
        ));
    }
    Ok(bytes)
}

/// Parses record bytes as if stored under their hash (for the tests of the format).
#[cfg(test)]
pub(super) fn parse_record_for_tests(bytes: &[u8]) -> Result<(), String> {
    Record::parse(blake3::hash(bytes).to_hex().as_str(), bytes).map(|_| ())
}
