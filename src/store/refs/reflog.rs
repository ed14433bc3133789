//! Reflogs: one line per update of a ref, appended and synced while its lock is held.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::files::{DirsError, create_dirs, prune_empty_dirs};
use super::{DIR_RETRIES, LOCK_SUFFIX, LOGS_DIR, RefError, RefName, Refs, io_err, is_absent};
use crate::object::ObjectId;
use crate::store::fs::{TMP_PREFIX, parent, sync_dir};

/// One line of a reflog: an update of a ref.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReflogEntry {
    /// The value before the update; `None` if the update created the ref.
    pub old: Option<ObjectId>,
    /// The value after the update; `None` if the update deleted the ref.
    pub new: Option<ObjectId>,
    /// When the update happened, in seconds since the Unix epoch.
    pub time: u64,
    /// The message given with the update (newlines replaced by spaces).
    pub message: String,
}

/// How to take back a reflog line appended by a failed update.
pub(super) struct LogUndo {
    pub(super) path: PathBuf,
    /// The log's length before the append; `None` if the append created the file.
    pub(super) prev_len: Option<u64>,
    /// The log's length after the append.
    pub(super) new_len: u64,
}

impl LogUndo {
    /// Best effort: the caller holds the ref's lock, so no one else appends meanwhile.
    pub(super) fn apply(&self) {
        match self.prev_len {
            Some(len) => {
                if let Ok(f) = OpenOptions::new().write(true).open(&self.path) {
                    let _ = f.set_len(len).and_then(|()| f.sync_all());
                }
            }
            None => {
                if fs::remove_file(&self.path).is_ok() {
                    let _ = sync_dir(parent(&self.path));
                }
            }
        }
    }
}

/// `b3:<hex>` or `-`.
pub(super) fn id_or_dash(id: Option<ObjectId>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}

pub(super) fn reflog_line(
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    time: u64,
    message: &str,
) -> String {
    let message = message.replace(['\n', '\r'], " ");
    format!("{} {} {time} {message}\n", id_or_dash(old), id_or_dash(new))
}

pub(super) fn parse_reflog_line(line: &[u8]) -> Result<ReflogEntry, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
    let mut fields = text.splitn(4, ' ');
    let mut id = |what: &str| -> Result<Option<ObjectId>, String> {
        match fields.next() {
            None | Some("") => Err(format!("missing {what} id")),
            Some("-") => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e| format!("bad {what} id: {e}")),
        }
    };
    let old = id("old")?;
    let new = id("new")?;
    let time = match fields.next() {
        None | Some("") => return Err("missing time".into()),
        Some(t) => t
            .parse()
            .map_err(|_| format!("bad time {t:?}: expected seconds since 1970"))?,
    };
    let message = fields.next().unwrap_or("").to_owned();
    Ok(ReflogEntry {
        old,
        new,
        time,
        message,
    })
}

/// The longest last line [`drop_unhappened_tail`] looks at; a longer one is left alone.
const MAX_TAIL_LINE: u64 = 64 * 1024;

/// Whether `e`, the last line of a ref's reflog, records an update that never happened: one
/// from the ref's current value `current` to another value. A writer appends the line before
/// it moves the ref, so a writer killed between the two leaves exactly this.
pub(crate) fn unhappened(e: &ReflogEntry, current: Option<ObjectId>) -> bool {
    e.old == current && e.new != current
}

/// Cuts off the last line of a reflog (already free of a torn tail, `len` bytes long) if it
/// records an update from `current` that never happened ([`unhappened`]). The caller holds
/// the ref's lock. Returns the resulting length.
pub(super) fn drop_unhappened_tail(
    file: &mut File,
    len: u64,
    current: Option<ObjectId>,
) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let window = len.min(MAX_TAIL_LINE + 1);
    let mut tail = vec![0u8; usize::try_from(window).unwrap_or(0)];
    file.seek(SeekFrom::Start(len - window))?;
    file.read_exact(&mut tail)?;
    // `tail` ends with the last line's LF; the line starts after the LF before it.
    let body = &tail[..tail.len() - 1];
    let start = match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if window == len => 0,
        None => return Ok(len),
    };
    let Ok(last) = parse_reflog_line(&body[start..]) else {
        return Ok(len);
    };
    if !unhappened(&last, current) {
        return Ok(len);
    }
    let keep = len - window + start as u64;
    file.set_len(keep)?;
    file.sync_all()?;
    Ok(keep)
}

/// Parses a reflog. A final fragment without a newline is skipped: it is an append in
/// progress, or one cut short by a crash before its update could happen.
pub(super) fn parse_reflog(path: &Path, bytes: &[u8]) -> Result<Vec<ReflogEntry>, RefError> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last) => &bytes[..last],
        None => return Ok(Vec::new()),
    };
    complete
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            parse_reflog_line(line).map_err(|why| RefError::CorruptReflog {
                path: path.to_owned(),
                line: i + 1,
                why,
            })
        })
        .collect()
}

/// Cuts an incomplete last line (left by a crash mid-append) off a reflog opened for
/// reading and appending. Returns the resulting length.
pub(super) fn drop_torn_tail(file: &mut File, len: u64) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    let mut all = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut all)?;
    let keep = all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) as u64;
    file.set_len(keep)?;
    file.sync_all()?;
    Ok(keep)
}

pub(super) fn collect_reflog_ids(dir: &Path, ids: &mut Vec<ObjectId>) -> Result<(), RefError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("list directory", dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_err("inspect", &path))?;
        if file_type.is_dir() {
            collect_reflog_ids(&path, ids)?;
        } else if file_type.is_file() {
            let skip = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TMP_PREFIX) || n.ends_with(LOCK_SUFFIX));
            if skip {
                continue;
            }
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read reflog", &path)(e)),
            };
            for entry in parse_reflog(&path, &bytes)? {
                ids.extend(entry.old);
                ids.extend(entry.new);
            }
        }
    }
    Ok(())
}

impl Refs {
    /// Opens (creating it and its directories if need be) the reflog of `name` for reading
    /// and appending; also says whether it existed. The caller holds the ref's lock.
    pub(super) fn open_reflog(&self, name: &RefName) -> Result<(File, bool, PathBuf), RefError> {
        let path = self.reflog_path(name);
        let components: Vec<&str> = std::iter::once(LOGS_DIR).chain(name.components()).collect();
        let dirs = &components[..components.len() - 1];
        let mut attempt = 0;
        let (f, existed) = loop {
            attempt += 1;
            let retry = attempt < DIR_RETRIES;
            match create_dirs(&self.root, dirs) {
                Ok(()) => {}
                Err(DirsError::NotDir { path, depth }) => {
                    let why = if depth >= 3 {
                        let other = components[1..depth].join("/");
                        format!(
                            "{} is in the way: it is the reflog of {other} (reflogs outlive \
                             deleted refs); remove it to reuse this name",
                            path.display()
                        )
                    } else {
                        format!("{} is not a directory", path.display())
                    };
                    return Err(RefError::Conflict {
                        name: name.clone(),
                        path,
                        why,
                    });
                }
                Err(DirsError::Io { source, .. })
                    if retry && source.kind() == io::ErrorKind::NotFound => {}
                Err(DirsError::Io { path, source }) => {
                    return Err(io_err("create directory", &path)(source));
                }
            }
            if path.is_dir() && !prune_empty_dirs(&path) {
                return Err(RefError::Conflict {
                    name: name.clone(),
                    why: format!(
                        "{} is a directory holding reflogs of deleted refs under {name}/ \
                         (reflogs outlive deleted refs); remove it to reuse this name",
                        path.display()
                    ),
                    path,
                });
            }
            let existed = fs::symlink_metadata(&path).is_ok();
            match OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
            {
                Ok(file) => break (file, existed),
                // A concurrent update pruned our directory or put one in the way: look again.
                Err(e)
                    if retry
                        && matches!(
                            e.kind(),
                            io::ErrorKind::NotFound
                                | io::ErrorKind::IsADirectory
                                | io::ErrorKind::NotADirectory
                        ) => {}
                Err(e) => return Err(io_err("open reflog", &path)(e)),
            }
        };
        Ok((f, existed, path))
    }

    /// Appends and syncs one reflog line. The caller holds the ref's lock.
    pub(super) fn append_reflog(
        &self,
        name: &RefName,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        message: &str,
    ) -> Result<LogUndo, RefError> {
        let line = reflog_line(old, new, self.clock.unix_secs(), message);
        let (mut f, existed, path) = self.open_reflog(name)?;
        let appended = (|| {
            let len = f.metadata()?.len();
            let prev = drop_torn_tail(&mut f, len)?;
            let prev = drop_unhappened_tail(&mut f, prev, old)?;
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.sync_all()) {
                let _ = f.set_len(prev);
                return Err(e);
            }
            if !existed {
                sync_dir(parent(&path))?;
            }
            Ok(prev)
        })();
        match appended {
            Ok(prev) => Ok(LogUndo {
                prev_len: existed.then_some(prev),
                new_len: prev + line.len() as u64,
                path,
            }),
            Err(e) => Err(io_err("append to reflog", &path)(e)),
        }
    }

    /// The reflog of the ref `name`, oldest first; empty if it has none. A last line that
    /// records an update which did not happen (its writer was killed before moving the ref,
    /// or is moving it now) is left out.
    ///
    /// # Errors
    /// [`RefError::CorruptReflog`] naming the first line that does not parse, or
    /// [`RefError::Io`].
    pub fn reflog(&self, name: &RefName) -> Result<Vec<ReflogEntry>, RefError> {
        let (mut entries, current) = self.reflog_with_value(name)?;
        if entries.last().is_some_and(|e| unhappened(e, current)) {
            entries.pop();
        }
        Ok(entries)
    }

    /// Every line of the reflog of `name` and the ref's value read just before it (so that a
    /// line appended by an update in progress is seen with the value it moves from).
    pub(crate) fn reflog_with_value(
        &self,
        name: &RefName,
    ) -> Result<(Vec<ReflogEntry>, Option<ObjectId>), RefError> {
        let current = self.read(name)?;
        let path = self.reflog_path(name);
        let entries = match fs::read(&path) {
            Ok(bytes) => parse_reflog(&path, &bytes)?,
            Err(e) if is_absent(&e) || e.kind() == io::ErrorKind::IsADirectory => Vec::new(),
            Err(e) => return Err(io_err("read reflog", &path)(e)),
        };
        Ok((entries, current))
    }

    /// Every id mentioned in any reflog (including reflogs of deleted refs), sorted and
    /// without duplicates. `gc` keeps these objects alive.
    ///
    /// # Errors
    /// [`RefError::CorruptReflog`] or [`RefError::Io`]: gc must not guess.
    pub fn all_reflog_ids(&self) -> Result<Vec<ObjectId>, RefError> {
        let mut ids = Vec::new();
        collect_reflog_ids(&self.root.join(LOGS_DIR), &mut ids)?;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}
