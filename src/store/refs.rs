//! Refs: named pointers to object ids, updated by compare-and-swap and recorded in reflogs.
//!
//! # Layout
//!
//! A ref has a full name such as `refs/heads/main` (see [`RefName`] for the rules). Inside
//! the store directory `root`:
//!
//! - the ref `refs/x/y` is the file `root/refs/x/y`, holding exactly `b3:<64 hex>\n`;
//! - while it is being updated, the lock file `root/refs/x/y.lock` exists;
//! - its reflog is `root/logs/refs/x/y`, one line per update:
//!   `<old> <new> <unix-seconds> <message>\n`, where `<old>` and `<new>` are `b3:<64 hex>`
//!   or `-` for "no ref", and newlines in the message are replaced by spaces.
//!
//! # Updates
//!
//! [`Refs::update`] takes the lock file (`create_new`, so exactly one process holds it),
//! reads the current value, compares it with the caller's [`Expected`] value, appends and
//! syncs the reflog line, and only then renames the lock file, which holds the new contents,
//! over the ref. A crash therefore leaves the old ref or the new one, never a torn one; at
//! worst the reflog ends with a line for an update that did not complete. The ref file is
//! the truth. Deleting a ref removes its file but keeps its reflog, which keeps the ids it
//! mentions alive for `gc` (see [`Refs::all_reflog_ids`]).
//!
//! A name cannot be both a ref and a directory of refs: `refs/a` and `refs/a/b` exclude
//! each other ([`RefError::Conflict`]). Since reflogs outlive their refs, the reflog of a
//! deleted ref can also be in the way of a new ref; the error names the file to remove.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::fs::{LockFile, TMP_PREFIX, parent, sync_dir};
use crate::object::ObjectId;

/// The longest ref name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// The directory under the store root holding ref files, and the first component of every
/// ref name.
pub const REFS_DIR: &str = "refs";

/// The directory under the store root holding reflogs (`logs/refs/...`).
pub const LOGS_DIR: &str = "logs";

/// Suffix of lock files; no ref name component may end with it.
pub const LOCK_SUFFIX: &str = ".lock";

/// How often an update retries when a concurrent deletion removes the directory it just
/// created (deletions prune empty directories).
const DIR_RETRIES: usize = 32;

/// The most bytes read from a ref file; a valid one has 68.
const MAX_REF_FILE: u64 = 4096;

// ---------------------------------------------------------------------------------------
// Names

/// A validated full ref name such as `refs/heads/main` or `refs/worlds/demo`.
///
/// Rules: at most [`MAX_NAME_LEN`] bytes; components separated by single `/`, with no
/// leading or trailing `/`; the first component is `refs` and at least one follows it; each
/// component is non-empty, is not `.` or `..`, does not start with `.` or `tmp-` (temporary
/// files), does not end with `.lock` (lock files), and consists of ASCII letters, digits and
/// `- _ . + @ =`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefName(String);

impl RefName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`RefError::InvalidName`] saying which rule `name` breaks.
    pub fn new(name: &str) -> Result<Self, RefError> {
        match check_name(name) {
            Ok(()) => Ok(Self(name.to_owned())),
            Err(why) => Err(RefError::InvalidName {
                name: name.chars().take(300).collect(),
                why,
            }),
        }
    }

    /// The full name, e.g. `refs/heads/main`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn components(&self) -> Vec<&str> {
        self.0.split('/').collect()
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RefName {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, RefError> {
        Self::new(s)
    }
}

impl AsRef<str> for RefName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '@' | '=')
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a ref name is not empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a ref name has at most {MAX_NAME_LEN} bytes, this one has {}",
            name.len()
        ));
    }
    if name.starts_with('/') {
        return Err("a ref name does not start with `/`".into());
    }
    if name.ends_with('/') {
        return Err("a ref name does not end with `/`".into());
    }
    if name.contains("//") {
        return Err("a ref name has no empty components (`//`)".into());
    }
    if let Some(c) = name.chars().find(|&c| c != '/' && !allowed_char(c)) {
        return Err(bad_char(c));
    }
    let mut parts = name.split('/');
    if parts.next() != Some(REFS_DIR) {
        return Err("a ref name starts with `refs/`".into());
    }
    let mut count = 0;
    for part in parts {
        check_component(part)?;
        count += 1;
    }
    if count == 0 {
        return Err("a ref name has at least one component after `refs/`".into());
    }
    Ok(())
}

fn bad_char(c: char) -> String {
    format!("character {c:?} is not allowed (components use ASCII letters, digits and `-_.+@=`)")
}

/// Checks one component (the part between slashes) of a ref name.
fn check_component(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("a ref name has no empty components".into());
    }
    if part == "." || part == ".." {
        return Err(format!("a ref name has no `{part}` components"));
    }
    if part.starts_with('.') {
        return Err(format!("component {part:?} starts with `.`"));
    }
    if part.ends_with(LOCK_SUFFIX) {
        return Err(format!(
            "component {part:?} ends with `{LOCK_SUFFIX}` (reserved for lock files)"
        ));
    }
    if part.starts_with(TMP_PREFIX) {
        return Err(format!(
            "component {part:?} starts with `{TMP_PREFIX}` (reserved for temporary files)"
        ));
    }
    if let Some(c) = part.chars().find(|&c| !allowed_char(c)) {
        return Err(bad_char(c));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Values, reflog entries, errors

/// What a compare-and-swap update expects the ref to hold before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Any value, or no ref at all: the update is unconditional.
    Any,
    /// No ref of this name exists.
    Absent,
    /// The ref exists and points to this id.
    Is(ObjectId),
}

impl Expected {
    /// Whether `current` (the ref's value, `None` if it does not exist) satisfies this.
    #[must_use]
    pub fn matches(self, current: Option<ObjectId>) -> bool {
        match self {
            Self::Any => true,
            Self::Absent => current.is_none(),
            Self::Is(id) => current == Some(id),
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any value"),
            Self::Absent => f.write_str("no ref"),
            Self::Is(id) => write!(f, "{id}"),
        }
    }
}

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

/// Errors of ref operations.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    /// A ref name breaks a naming rule (see [`RefName`]).
    #[error("invalid ref name {name:?}: {why}")]
    InvalidName {
        /// The rejected name (cut to 300 characters).
        name: String,
        /// The rule it breaks.
        why: String,
    },
    /// A ref file does not hold exactly `b3:<64 hex>` and a newline.
    #[error("corrupt ref file {}: {why}", path.display())]
    Corrupt {
        /// The ref file.
        path: PathBuf,
        /// What is wrong with its contents.
        why: String,
    },
    /// An entry under `refs/` that is not a ref: its name is not a valid ref name, or it is
    /// neither a regular file nor a directory.
    #[error("unexpected entry {}: {why}", path.display())]
    Unexpected {
        /// The file or directory.
        path: PathBuf,
        /// Why it is not a ref.
        why: String,
    },
    /// A line of a reflog does not parse.
    #[error("corrupt reflog {} line {line}: {why}", path.display())]
    CorruptReflog {
        /// The reflog file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        why: String,
    },
    /// The ref's lock file exists: another process is updating the ref, or a crashed one
    /// left the lock behind.
    #[error(
        "ref is locked: {} exists; another process is updating the ref, or a crashed process \
         left the lock behind (if no aos process is running, remove the file)",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A compare-and-swap update found a value other than the expected one.
    #[error("{}", stale_message(name, *expected, *actual))]
    Stale {
        /// The ref.
        name: RefName,
        /// What the update expected.
        expected: Expected,
        /// What the ref actually held (`None`: it did not exist).
        actual: Option<ObjectId>,
    },
    /// The name clashes with an existing ref or reflog: a ref cannot also be a directory of
    /// refs (`refs/a` and `refs/a/b` exclude each other).
    #[error("cannot update ref {name}: {why}")]
    Conflict {
        /// The ref being updated.
        name: RefName,
        /// The file or directory in the way.
        path: PathBuf,
        /// What is in the way.
        why: String,
    },
    /// A file system operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `read ref`.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn stale_message(name: &RefName, expected: Expected, actual: Option<ObjectId>) -> String {
    let actual = match actual {
        Some(id) => format!("is at {id}"),
        None => "does not exist".to_owned(),
    };
    let expected = match expected {
        Expected::Is(id) => format!("expected {id}"),
        Expected::Absent => "expected it not to exist".to_owned(),
        Expected::Any => "expected any value".to_owned(),
    };
    format!("ref {name} {actual}, {expected}")
}

impl RefError {
    /// Splits a listing problem into the path it concerns and a message without the path.
    fn into_problem(self) -> (PathBuf, String) {
        match self {
            Self::Corrupt { path, why } => (path, format!("corrupt ref file: {why}")),
            Self::Unexpected { path, why } => (path, why),
            Self::Io { op, path, source } => (path, format!("cannot {op}: {source}")),
            other => (PathBuf::new(), other.to_string()),
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RefError {
    let path = path.to_owned();
    move |source| RefError::Io { op, path, source }
}

/// Whether an error means "there is nothing at this path".
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

// ---------------------------------------------------------------------------------------
// Refs

/// The refs of one store.
#[derive(Clone, Debug)]
pub struct Refs {
    root: PathBuf,
}

/// What a ref's path holds.
enum Current {
    Absent,
    /// A directory: other refs live under this name.
    Dir,
    Value(ObjectId),
}

/// How to take back a reflog line appended by a failed update.
struct LogUndo {
    path: PathBuf,
    /// The log's length before the append; `None` if the append created the file.
    prev_len: Option<u64>,
    /// The log's length after the append.
    new_len: u64,
}

impl LogUndo {
    /// Best effort: the caller holds the ref's lock, so no one else appends meanwhile.
    fn apply(&self) {
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

/// Why [`create_dirs`] failed.
enum DirsError {
    /// The component at this depth (1-based) exists and is not a directory.
    NotDir { path: PathBuf, depth: usize },
    /// Another I/O error.
    Io { path: PathBuf, source: io::Error },
}

/// Creates `base/c1/c2/...` one directory at a time, syncing the parent of each directory
/// it creates. `base` must exist.
fn create_dirs(base: &Path, components: &[&str]) -> Result<(), DirsError> {
    let mut dir = base.to_path_buf();
    for (i, c) in components.iter().enumerate() {
        let up = dir.clone();
        dir.push(c);
        match fs::create_dir(&dir) {
            Ok(()) => sync_dir(&up).map_err(|source| DirsError::Io { path: up, source })?,
            // If it is gone again (NotFound), a concurrent deletion pruned it: callers retry.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(DirsError::NotDir {
                        path: dir,
                        depth: i + 1,
                    });
                }
                Err(source) => return Err(DirsError::Io { path: dir, source }),
            },
            Err(source) => return Err(DirsError::Io { path: dir, source }),
        }
    }
    Ok(())
}

/// Removes `dir` if it holds nothing but (nested) empty directories. Returns whether `dir`
/// is gone.
fn prune_empty_dirs(dir: &Path) -> bool {
    if let Ok(rd) = fs::read_dir(dir) {
        for entry in rd.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                prune_empty_dirs(&entry.path());
            }
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => {
            let _ = sync_dir(parent(dir));
            true
        }
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// The first file under `dir` (depth first), as a path relative to `root`, for messages.
fn some_file_under(dir: &Path, root: &Path) -> Option<String> {
    let mut entries: Vec<_> = fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(found) = some_file_under(&path, root) {
                return Some(found);
            }
        } else if let Ok(rel) = path.strip_prefix(root) {
            let parts: Vec<_> = rel.iter().map(|c| c.to_string_lossy()).collect();
            return Some(parts.join("/"));
        }
    }
    None
}

/// Reads and parses the ref file at `path`.
fn read_ref_file(path: &Path) -> Result<Current, RefError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if is_absent(&e) => return Ok(Current::Absent),
        Err(e) => return Err(io_err("read ref", path)(e)),
    };
    if meta.is_dir() {
        return Ok(Current::Dir);
    }
    if !meta.is_file() {
        return Err(RefError::Corrupt {
            path: path.to_owned(),
            why: "not a regular file (symlinks and special files are not refs)".into(),
        });
    }
    let file = match File::open(path) {
        Ok(f) => f,
        // Deleted since the metadata call.
        Err(e) if is_absent(&e) => return Ok(Current::Absent),
        Err(e) => return Err(io_err("read ref", path)(e)),
    };
    let mut bytes = Vec::with_capacity(80);
    file.take(MAX_REF_FILE)
        .read_to_end(&mut bytes)
        .map_err(io_err("read ref", path))?;
    parse_ref_contents(&bytes)
        .map(Current::Value)
        .map_err(|why| RefError::Corrupt {
            path: path.to_owned(),
            why,
        })
}

fn parse_ref_contents(bytes: &[u8]) -> Result<ObjectId, String> {
    let text = bytes
        .strip_suffix(b"\n")
        .and_then(|b| std::str::from_utf8(b).ok());
    if let Some(Ok(id)) = text.map(str::parse::<ObjectId>) {
        return Ok(id);
    }
    if bytes.is_empty() {
        return Err("the file is empty; expected `b3:<64 hex digits>` and a newline".into());
    }
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    let more = if bytes.len() > 80 { "..." } else { "" };
    Err(format!(
        "expected `b3:<64 hex digits>` and a newline, found {shown:?}{more}"
    ))
}

/// `b3:<hex>` or `-`.
fn id_or_dash(id: Option<ObjectId>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}

fn reflog_line(old: Option<ObjectId>, new: Option<ObjectId>, time: u64, message: &str) -> String {
    let message = message.replace(['\n', '\r'], " ");
    format!("{} {} {time} {message}\n", id_or_dash(old), id_or_dash(new))
}

fn parse_reflog_line(line: &[u8]) -> Result<ReflogEntry, String> {
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

/// Parses a reflog. A final fragment without a newline is skipped: it is an append in
/// progress, or one cut short by a crash before its update could happen.
fn parse_reflog(path: &Path, bytes: &[u8]) -> Result<Vec<ReflogEntry>, RefError> {
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
fn drop_torn_tail(file: &mut File, len: u64) -> io::Result<u64> {
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn check_expected(
    name: &RefName,
    expected: Expected,
    actual: Option<ObjectId>,
) -> Result<(), RefError> {
    if expected.matches(actual) {
        Ok(())
    } else {
        Err(RefError::Stale {
            name: name.clone(),
            expected,
            actual,
        })
    }
}

/// Whether a directory whose refs all start with `dir_prefix` (ending in `/`) may hold refs
/// starting with `prefix`.
fn could_match(dir_prefix: &str, prefix: &str) -> bool {
    dir_prefix.starts_with(prefix) || prefix.starts_with(dir_prefix)
}

impl Refs {
    /// The refs of the store directory `root` (the `.aos` directory itself).
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    /// The store directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding the ref `name`: `root/refs/...`.
    #[must_use]
    pub fn ref_path(&self, name: &RefName) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(name.components());
        p
    }

    /// The reflog of the ref `name`: `root/logs/refs/...`.
    #[must_use]
    pub fn reflog_path(&self, name: &RefName) -> PathBuf {
        let mut p = self.root.join(LOGS_DIR);
        p.extend(name.components());
        p
    }

    /// The lock file of the ref `name`: `root/refs/....lock`.
    fn lock_path(&self, name: &RefName) -> PathBuf {
        let mut s = self.ref_path(name).into_os_string();
        s.push(LOCK_SUFFIX);
        PathBuf::from(s)
    }

    /// The value of the ref `name`, or `None` if there is no such ref.
    ///
    /// # Errors
    /// [`RefError::Corrupt`] if the ref file holds anything but `b3:<64 hex>\n`, or
    /// [`RefError::Io`].
    pub fn read(&self, name: &RefName) -> Result<Option<ObjectId>, RefError> {
        match read_ref_file(&self.ref_path(name))? {
            Current::Value(id) => Ok(Some(id)),
            Current::Absent | Current::Dir => Ok(None),
        }
    }

    /// Every ref whose full name starts with `prefix` (e.g. `"refs/"`, `"refs/worlds/"`),
    /// sorted by name. Lock files and temporary files are skipped.
    ///
    /// # Errors
    /// The first problem (by path) that [`Refs::list_lenient`] would report: a corrupt ref
    /// file, an entry whose name is not a valid ref name, or an I/O error.
    pub fn list(&self, prefix: &str) -> Result<Vec<(RefName, ObjectId)>, RefError> {
        let (refs, mut problems) = self.scan(prefix);
        problems.sort_by(|a, b| problem_path(a).cmp(problem_path(b)));
        match problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(refs),
        }
    }

    /// Like [`Refs::list`], but reports every problem instead of stopping at the first: the
    /// good refs sorted by name, and `(path, message)` for each file or directory that is
    /// not a readable ref, sorted by path. Meant for fsck.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for failures that prevent listing at all.
    #[allow(clippy::type_complexity)]
    pub fn list_lenient(
        &self,
        prefix: &str,
    ) -> Result<(Vec<(RefName, ObjectId)>, Vec<(PathBuf, String)>), RefError> {
        let (refs, problems) = self.scan(prefix);
        let mut problems: Vec<_> = problems.into_iter().map(RefError::into_problem).collect();
        problems.sort();
        Ok((refs, problems))
    }

    fn scan(&self, prefix: &str) -> (Vec<(RefName, ObjectId)>, Vec<RefError>) {
        let mut refs = Vec::new();
        let mut problems = Vec::new();
        let dir = self.root.join(REFS_DIR);
        if could_match(&format!("{REFS_DIR}/"), prefix) {
            scan_dir(&dir, REFS_DIR, prefix, &mut refs, &mut problems);
        }
        refs.sort();
        (refs, problems)
    }

    /// Sets (`new = Some`) or deletes (`new = None`) the ref `name` if it currently matches
    /// `expected`, appending a reflog line with `message`.
    ///
    /// Deleting a ref that does not exist (with [`Expected::Any`] or [`Expected::Absent`])
    /// succeeds and logs nothing. Deleting a ref keeps its reflog and removes directories
    /// under `refs/` left empty.
    ///
    /// # Errors
    /// - [`RefError::Stale`]: the ref does not match `expected`; nothing changed.
    /// - [`RefError::Locked`]: another process holds the ref's lock; nothing changed.
    /// - [`RefError::Conflict`]: the name clashes with another ref (`refs/a` versus
    ///   `refs/a/b`) or with a leftover reflog; nothing changed.
    /// - [`RefError::Corrupt`]: the current ref file is corrupt; nothing changed.
    /// - [`RefError::Io`]: a file system operation failed. The ref holds its old or its
    ///   new value.
    pub fn update(
        &self,
        name: &RefName,
        new: Option<ObjectId>,
        expected: Expected,
        message: &str,
    ) -> Result<(), RefError> {
        match new {
            Some(new) => self.set(name, new, expected, message),
            None => self.delete(name, expected, message),
        }
    }

    fn set(
        &self,
        name: &RefName,
        new: ObjectId,
        expected: Expected,
        message: &str,
    ) -> Result<(), RefError> {
        let path = self.ref_path(name);
        let result = self.set_locked(name, &path, new, expected, message);
        if result.is_err() {
            // Do not leave directories created for a refused update behind.
            self.prune_parents(&path);
        }
        result
    }

    fn set_locked(
        &self,
        name: &RefName,
        path: &Path,
        new: ObjectId,
        expected: Expected,
        message: &str,
    ) -> Result<(), RefError> {
        let lock = self.lock_creating_dirs(name)?;
        let current = match read_ref_file(path)? {
            Current::Value(id) => Some(id),
            Current::Absent => None,
            // Empty directories may be left over by interrupted deletions.
            Current::Dir if prune_empty_dirs(path) => None,
            Current::Dir => return Err(self.dir_conflict(name)),
        };
        check_expected(name, expected, current)?;
        let undo = self.append_reflog(name, current, Some(new), message)?;
        let contents = format!("{new}\n");
        match lock.commit_to(path, contents.as_bytes()) {
            Ok(()) => Ok(()),
            Err(e) => {
                // The lock is released now. Take the reflog line back unless the rename
                // happened (only the directory sync failed) or someone updated since.
                if current != Some(new)
                    && let Ok(_relock) = LockFile::acquire(self.lock_path(name))
                {
                    let unchanged = fs::metadata(&undo.path).is_ok_and(|m| m.len() == undo.new_len);
                    let committed =
                        matches!(read_ref_file(path), Ok(Current::Value(id)) if id == new);
                    if unchanged && !committed {
                        undo.apply();
                    }
                }
                Err(self.classify(name, "write ref", path, e))
            }
        }
    }

    fn delete(&self, name: &RefName, expected: Expected, message: &str) -> Result<(), RefError> {
        let path = self.ref_path(name);
        let lock_path = self.lock_path(name);
        let lock = match LockFile::acquire(lock_path.clone()) {
            Ok(lock) => lock,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(RefError::Locked { path: lock_path });
            }
            // The directory that would hold the ref does not exist, so neither does the ref.
            Err(e) if is_absent(&e) => return check_expected(name, expected, None),
            Err(e) => return Err(io_err("create lock file", &lock_path)(e)),
        };
        let current = match read_ref_file(&path)? {
            Current::Value(id) => Some(id),
            Current::Absent | Current::Dir => None,
        };
        check_expected(name, expected, current)?;
        if current.is_none() {
            return Ok(());
        }
        let undo = self.append_reflog(name, current, None, message)?;
        if let Err(e) = fs::remove_file(&path) {
            undo.apply();
            return Err(io_err("remove ref", &path)(e));
        }
        let synced = sync_dir(parent(&path));
        drop(lock);
        self.prune_parents(&path);
        synced.map_err(io_err("sync directory", parent(&path)))
    }

    /// Removes the empty directories above a deleted ref file, up to (not including)
    /// `root/refs`. Best effort: a directory someone else just created a file in stays.
    fn prune_parents(&self, ref_file: &Path) {
        let stop = self.root.join(REFS_DIR);
        let mut dir = ref_file.parent();
        let mut removed = None;
        while let Some(d) = dir {
            if d == stop || !d.starts_with(&stop) || fs::remove_dir(d).is_err() {
                break;
            }
            removed = Some(d);
            dir = d.parent();
        }
        if let Some(d) = removed {
            let _ = sync_dir(parent(d));
        }
    }

    /// Creates the ref's directories and takes its lock.
    fn lock_creating_dirs(&self, name: &RefName) -> Result<LockFile, RefError> {
        let lock_path = self.lock_path(name);
        let components = name.components();
        let dirs = &components[..components.len() - 1];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = attempt < DIR_RETRIES;
            match create_dirs(&self.root, dirs) {
                Ok(()) => {}
                Err(DirsError::NotDir { path, depth }) => {
                    return Err(self.parent_conflict(name, path, depth));
                }
                // A concurrent deletion pruned a directory we had just created.
                Err(DirsError::Io { source, .. })
                    if retry && source.kind() == io::ErrorKind::NotFound => {}
                Err(DirsError::Io { path, source }) => {
                    return Err(self.classify(name, "create directory", &path, source));
                }
            }
            match LockFile::acquire(lock_path.clone()) {
                Ok(lock) => return Ok(lock),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(RefError::Locked { path: lock_path });
                }
                Err(e) if retry && e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(self.classify(name, "create lock file", &lock_path, e));
                }
            }
        }
    }

    /// The conflict of `name` with the ref file at `path`, `depth` components into `name`.
    fn parent_conflict(&self, name: &RefName, path: PathBuf, depth: usize) -> RefError {
        let why = if depth >= 2 {
            let other = name.components()[..depth].join("/");
            format!("ref {other} exists, and a ref cannot also be a directory of refs")
        } else {
            format!("{} is not a directory", path.display())
        };
        RefError::Conflict {
            name: name.clone(),
            path,
            why,
        }
    }

    /// The conflict of `name` with refs below it.
    fn dir_conflict(&self, name: &RefName) -> RefError {
        let path = self.ref_path(name);
        let why = match some_file_under(&path, &self.root) {
            Some(example) => format!(
                "refs exist under {name}/ (e.g. {example}), and a ref cannot also be a \
                 directory of refs"
            ),
            None => format!(
                "another process is creating refs under {name}/, and a ref cannot also be a \
                 directory of refs"
            ),
        };
        RefError::Conflict {
            name: name.clone(),
            why,
            path,
        }
    }

    /// Turns an I/O error of `op` on `path` into a conflict if it comes from the name
    /// clashing with another ref.
    fn classify(&self, name: &RefName, op: &'static str, path: &Path, e: io::Error) -> RefError {
        if matches!(
            e.kind(),
            io::ErrorKind::IsADirectory | io::ErrorKind::DirectoryNotEmpty
        ) || self.ref_path(name).is_dir()
        {
            return self.dir_conflict(name);
        }
        let components = name.components();
        let mut above = self.root.clone();
        for (i, c) in components[..components.len() - 1].iter().enumerate() {
            above.push(c);
            if above.exists() && !above.is_dir() {
                return self.parent_conflict(name, above, i + 1);
            }
        }
        if e.kind() == io::ErrorKind::NotADirectory {
            return RefError::Conflict {
                name: name.clone(),
                path: path.to_owned(),
                why: "another process created a ref above it concurrently, and a ref cannot \
                      also be a directory of refs"
                    .into(),
            };
        }
        io_err(op, path)(e)
    }

    /// Appends and syncs one reflog line. The caller holds the ref's lock.
    fn append_reflog(
        &self,
        name: &RefName,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        message: &str,
    ) -> Result<LogUndo, RefError> {
        let path = self.reflog_path(name);
        let components: Vec<&str> = std::iter::once(LOGS_DIR).chain(name.components()).collect();
        let dirs = &components[..components.len() - 1];
        let line = reflog_line(old, new, now_secs(), message);
        let mut attempt = 0;
        let (mut f, existed) = loop {
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
        let appended = (|| {
            let len = f.metadata()?.len();
            let prev = drop_torn_tail(&mut f, len)?;
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

    /// The reflog of the ref `name`, oldest first; empty if it has none.
    ///
    /// # Errors
    /// [`RefError::CorruptReflog`] naming the first line that does not parse, or
    /// [`RefError::Io`].
    pub fn reflog(&self, name: &RefName) -> Result<Vec<ReflogEntry>, RefError> {
        let path = self.reflog_path(name);
        match fs::read(&path) {
            Ok(bytes) => parse_reflog(&path, &bytes),
            Err(e) if is_absent(&e) || e.kind() == io::ErrorKind::IsADirectory => Ok(Vec::new()),
            Err(e) => Err(io_err("read reflog", &path)(e)),
        }
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

fn problem_path(e: &RefError) -> &Path {
    match e {
        RefError::Corrupt { path, .. }
        | RefError::Unexpected { path, .. }
        | RefError::Io { path, .. }
        | RefError::CorruptReflog { path, .. }
        | RefError::Locked { path }
        | RefError::Conflict { path, .. } => path,
        RefError::InvalidName { .. } | RefError::Stale { .. } => Path::new(""),
    }
}

/// Lists the refs under `dir`, whose own name (relative to the store root) is `name`.
fn scan_dir(
    dir: &Path,
    name: &str,
    prefix: &str,
    refs: &mut Vec<(RefName, ObjectId)>,
    problems: &mut Vec<RefError>,
) {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => return problems.push(io_err("list directory", dir)(e)),
    };
    for entry in rd {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(io_err("list directory", dir)(e));
                continue;
            }
        };
        let path = entry.path();
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            let dir_prefix = format!("{name}/");
            if could_match(&dir_prefix, prefix) {
                problems.push(RefError::Unexpected {
                    path,
                    why: "the name is not UTF-8, so it is not a ref name".into(),
                });
            }
            continue;
        };
        let full = format!("{name}/{file_name}");
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                if full.starts_with(prefix) {
                    problems.push(io_err("inspect", &path)(e));
                }
                continue;
            }
        };
        if file_type.is_dir() {
            if !could_match(&format!("{full}/"), prefix) {
                continue;
            }
            match check_component(&file_name) {
                Ok(()) => scan_dir(&path, &full, prefix, refs, problems),
                Err(why) => problems.push(RefError::Unexpected {
                    path,
                    why: format!("a directory whose name is not a ref name component: {why}"),
                }),
            }
        } else if file_type.is_file() {
            if file_name.ends_with(LOCK_SUFFIX)
                || file_name.starts_with(TMP_PREFIX)
                || !full.starts_with(prefix)
            {
                continue;
            }
            let ref_name = match RefName::new(&full) {
                Ok(n) => n,
                Err(e) => {
                    let why = match e {
                        RefError::InvalidName { why, .. } => why,
                        other => other.to_string(),
                    };
                    problems.push(RefError::Unexpected {
                        path,
                        why: format!("not a valid ref name: {why}"),
                    });
                    continue;
                }
            };
            match read_ref_file(&path) {
                Ok(Current::Value(id)) => refs.push((ref_name, id)),
                // Deleted or replaced by a directory while we listed.
                Ok(Current::Absent | Current::Dir) => {}
                Err(e) => problems.push(e),
            }
        } else if full.starts_with(prefix) {
            problems.push(RefError::Unexpected {
                path,
                why: "neither a regular file nor a directory (symlinks are not refs)".into(),
            });
        }
    }
}

fn collect_reflog_ids(dir: &Path, ids: &mut Vec<ObjectId>) -> Result<(), RefError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Barrier, Mutex};

    fn id(n: u64) -> ObjectId {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_be_bytes());
        b[31] = 0xaa;
        ObjectId::from_bytes(b)
    }

    fn num(id: ObjectId) -> u64 {
        u64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap())
    }

    fn name(s: &str) -> RefName {
        RefName::new(s).unwrap()
    }

    fn setup() -> (tempfile::TempDir, Refs) {
        let dir = tempfile::tempdir().unwrap();
        let refs = Refs::new(dir.path());
        (dir, refs)
    }

    /// Every file under `dir`, relative, with `/` separators, sorted.
    fn files(dir: &Path) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    let rel = p.strip_prefix(root).unwrap();
                    let parts: Vec<_> = rel.iter().map(|c| c.to_string_lossy()).collect();
                    out.push(parts.join("/"));
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[test]
    fn name_validation() {
        let long_ok = format!("refs/{}", "a".repeat(MAX_NAME_LEN - 5));
        assert_eq!(long_ok.len(), MAX_NAME_LEN);
        for ok in [
            "refs/heads/main",
            "refs/worlds/demo",
            "refs/remotes/origin/x",
            "refs/a",
            "refs/A-b_c.d+e@f=g",
            "refs/v1.2.3/x..y",
            "refs/refs",
            "refs/a/lock",
            "refs/tmp",
            long_ok.as_str(),
        ] {
            let n = RefName::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(n.as_str(), ok);
            assert_eq!(n.to_string(), ok);
            assert_eq!(ok.parse::<RefName>().unwrap(), n);
        }
        let long_bad = format!("refs/{}", "a".repeat(MAX_NAME_LEN - 4));
        for (bad, rule) in [
            ("", "not empty"),
            ("refs", "at least one component after `refs/`"),
            ("refs/", "does not end with `/`"),
            ("/abs", "does not start with `/`"),
            ("/refs/a", "does not start with `/`"),
            ("heads/main", "starts with `refs/`"),
            ("Refs/a", "starts with `refs/`"),
            ("refs/../x", "no `..` components"),
            ("refs/./x", "no `.` components"),
            ("refs/a/..", "no `..` components"),
            ("refs/a\x01", "character '\\u{1}' is not allowed"),
            ("refs/a b", "character ' ' is not allowed"),
            ("refs/a\\b", "character '\\\\' is not allowed"),
            ("refs/a:b", "character ':'"),
            ("refs/a?", "character '?'"),
            ("refs/a*", "character '*'"),
            ("refs/a[0]", "character '['"),
            ("refs/a~1", "character '~'"),
            ("refs/a^", "character '^'"),
            ("refs/é", "character 'é'"),
            ("refs/a.lock", "ends with `.lock`"),
            ("refs/a.lock/b", "ends with `.lock`"),
            ("refs//a", "no empty components"),
            ("refs/.hidden", "starts with `.`"),
            ("refs/a/.x/b", "starts with `.`"),
            ("refs/tmp-x", "starts with `tmp-`"),
            (long_bad.as_str(), "at most 255 bytes"),
        ] {
            let err = RefName::new(bad).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, RefError::InvalidName { .. }), "{bad:?}");
            assert!(msg.contains(rule), "{bad:?}: {msg}");
            if bad.len() < 100 {
                assert!(msg.contains(&format!("{bad:?}")), "{bad:?}: {msg}");
            }
            assert!(bad.parse::<RefName>().is_err());
        }
    }

    #[test]
    fn create_read_and_file_format() {
        let (dir, refs) = setup();
        let n = name("refs/worlds/demo");
        assert_eq!(refs.read(&n).unwrap(), None);
        refs.update(&n, Some(id(1)), Expected::Absent, "create")
            .unwrap();
        assert_eq!(refs.read(&n).unwrap(), Some(id(1)));
        let path = dir.path().join("refs/worlds/demo");
        assert_eq!(refs.ref_path(&n), path);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{}\n", id(1)));
        assert_eq!(
            refs.reflog_path(&n),
            dir.path().join("logs/refs/worlds/demo")
        );
        // Nothing else is left behind: no lock files, no temporary files.
        assert_eq!(
            files(dir.path()),
            ["logs/refs/worlds/demo", "refs/worlds/demo"]
        );
    }

    #[test]
    fn compare_and_swap() {
        let (_dir, refs) = setup();
        let n = name("refs/heads/main");
        refs.update(&n, Some(id(1)), Expected::Absent, "a").unwrap();

        let err = refs
            .update(&n, Some(id(2)), Expected::Absent, "b")
            .unwrap_err();
        assert!(
            matches!(err, RefError::Stale { ref name, expected: Expected::Absent, actual }
                if name == &n && actual == Some(id(1))),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "ref refs/heads/main is at {}, expected it not to exist",
                id(1)
            )
        );

        let err = refs
            .update(&n, Some(id(2)), Expected::Is(id(7)), "c")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("ref refs/heads/main is at {}, expected {}", id(1), id(7))
        );
        assert_eq!(refs.read(&n).unwrap(), Some(id(1)));

        refs.update(&n, Some(id(2)), Expected::Is(id(1)), "d")
            .unwrap();
        refs.update(&n, Some(id(3)), Expected::Any, "e").unwrap();
        // Setting the same value is an update like any other.
        refs.update(&n, Some(id(3)), Expected::Is(id(3)), "f")
            .unwrap();
        assert_eq!(refs.read(&n).unwrap(), Some(id(3)));

        let other = name("refs/heads/other");
        let err = refs
            .update(&other, Some(id(1)), Expected::Is(id(1)), "g")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("ref refs/heads/other does not exist, expected {}", id(1))
        );
        refs.update(&other, Some(id(1)), Expected::Any, "h")
            .unwrap();

        // Only successful updates are logged.
        let msgs: Vec<_> = refs
            .reflog(&n)
            .unwrap()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(msgs, ["a", "d", "e", "f"]);
    }

    #[test]
    fn delete() {
        let (dir, refs) = setup();
        let n = name("refs/a/b/c");
        let keep = name("refs/keep");
        refs.update(&n, Some(id(1)), Expected::Absent, "create")
            .unwrap();
        refs.update(&keep, Some(id(9)), Expected::Absent, "keep")
            .unwrap();

        let err = refs.update(&n, None, Expected::Is(id(2)), "x").unwrap_err();
        assert!(matches!(err, RefError::Stale { .. }), "{err:?}");
        let err = refs.update(&n, None, Expected::Absent, "x").unwrap_err();
        assert!(matches!(err, RefError::Stale { .. }), "{err:?}");
        assert_eq!(refs.read(&n).unwrap(), Some(id(1)));

        refs.update(&n, None, Expected::Is(id(1)), "delete")
            .unwrap();
        assert_eq!(refs.read(&n).unwrap(), None);
        // Empty directories up to refs/ are gone; the reflog stays.
        assert!(!dir.path().join("refs/a").exists());
        assert!(dir.path().join("refs").is_dir());
        assert_eq!(
            files(dir.path()),
            ["logs/refs/a/b/c", "logs/refs/keep", "refs/keep"]
        );
        let log = refs.reflog(&n).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!((log[1].old, log[1].new), (Some(id(1)), None));

        // Deleting what does not exist: fine unless a value was expected; nothing logged.
        refs.update(&n, None, Expected::Any, "again").unwrap();
        refs.update(&n, None, Expected::Absent, "again").unwrap();
        let err = refs
            .update(&n, None, Expected::Is(id(1)), "again")
            .unwrap_err();
        assert!(
            matches!(err, RefError::Stale { actual: None, .. }),
            "{err:?}"
        );
        assert_eq!(refs.reflog(&n).unwrap().len(), 2);
        assert_eq!(refs.list("refs/").unwrap(), [(keep.clone(), id(9))]);

        // The name can be created again; its reflog continues.
        refs.update(&n, Some(id(3)), Expected::Absent, "again")
            .unwrap();
        assert_eq!(refs.reflog(&n).unwrap().len(), 3);

        // Deleting a name that is a directory of refs deletes nothing.
        refs.update(&name("refs/a/b"), None, Expected::Any, "dir")
            .unwrap();
        assert_eq!(refs.read(&n).unwrap(), Some(id(3)));
    }

    #[test]
    fn conflicts() {
        let (dir, refs) = setup();
        let a = name("refs/a");
        let ab = name("refs/a/b");
        refs.update(&a, Some(id(1)), Expected::Absent, "").unwrap();
        let err = refs
            .update(&ab, Some(id(2)), Expected::Any, "")
            .unwrap_err();
        assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot update ref refs/a/b: ref refs/a exists, and a ref cannot also be a \
             directory of refs"
        );
        assert_eq!(refs.read(&ab).unwrap(), None);

        let c = name("refs/c");
        let cde = name("refs/c/d/e");
        refs.update(&cde, Some(id(3)), Expected::Absent, "")
            .unwrap();
        let err = refs.update(&c, Some(id(4)), Expected::Any, "").unwrap_err();
        assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot update ref refs/c: refs exist under refs/c/ (e.g. refs/c/d/e), and a ref \
             cannot also be a directory of refs"
        );
        // Nothing half-written: no lock files, no reflogs for the refused names.
        assert_eq!(
            files(dir.path()),
            ["logs/refs/a", "logs/refs/c/d/e", "refs/a", "refs/c/d/e"]
        );

        // Leftover empty directories are not in the way.
        fs::create_dir_all(dir.path().join("refs/e/f/g")).unwrap();
        refs.update(&name("refs/e"), Some(id(5)), Expected::Absent, "")
            .unwrap();
        assert_eq!(refs.read(&name("refs/e")).unwrap(), Some(id(5)));

        // Reflogs outlive refs, and the reflog of a deleted ref can be in the way.
        refs.update(&a, None, Expected::Any, "").unwrap();
        let err = refs
            .update(&ab, Some(id(2)), Expected::Any, "")
            .unwrap_err();
        assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("reflog of refs/a"), "{msg}");
        assert!(msg.contains("remove it"), "{msg}");
        assert_eq!(refs.read(&ab).unwrap(), None);
        assert!(!dir.path().join("refs/a").exists());
        fs::remove_file(dir.path().join("logs/refs/a")).unwrap();
        refs.update(&ab, Some(id(2)), Expected::Any, "").unwrap();

        refs.update(&cde, None, Expected::Any, "").unwrap();
        let err = refs.update(&c, Some(id(4)), Expected::Any, "").unwrap_err();
        assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("reflogs of deleted refs under refs/c/")
        );
        assert!(!dir.path().join("refs/c").exists());
        assert!(files(dir.path()).iter().all(|f| !f.ends_with(".lock")));
    }

    #[test]
    fn reflog_contents() {
        let (dir, refs) = setup();
        let n = name("refs/heads/main");
        let before = now_secs();
        refs.update(&n, Some(id(1)), Expected::Absent, "first")
            .unwrap();
        refs.update(&n, Some(id(2)), Expected::Is(id(1)), "two\nlines\r\n")
            .unwrap();
        refs.update(&n, None, Expected::Is(id(2)), "").unwrap();
        let after = now_secs();

        let text = fs::read_to_string(dir.path().join("logs/refs/heads/main")).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let t = lines[0].split(' ').nth(2).unwrap();
        assert_eq!(lines[0], format!("- {} {t} first", id(1)));
        let t = lines[1].split(' ').nth(2).unwrap();
        assert_eq!(lines[1], format!("{} {} {t} two lines  ", id(1), id(2)));
        let t = lines[2].split(' ').nth(2).unwrap();
        assert_eq!(lines[2], format!("{} - {t} ", id(2)));
        assert!(text.ends_with(" \n"));

        let log = refs.reflog(&n).unwrap();
        assert_eq!(
            log.iter()
                .map(|e| (e.old, e.new, e.message.as_str()))
                .collect::<Vec<_>>(),
            [
                (None, Some(id(1)), "first"),
                (Some(id(1)), Some(id(2)), "two lines  "),
                (Some(id(2)), None, ""),
            ]
        );
        assert!(log.iter().all(|e| before <= e.time && e.time <= after));
        assert!(refs.reflog(&name("refs/none")).unwrap().is_empty());

        refs.update(&name("refs/x/y"), Some(id(5)), Expected::Any, "")
            .unwrap();
        assert_eq!(refs.all_reflog_ids().unwrap(), [id(1), id(2), id(5)]);
    }

    #[test]
    fn corrupt_reflogs() {
        let (dir, refs) = setup();
        let n = name("refs/heads/main");
        refs.update(&n, Some(id(1)), Expected::Absent, "a").unwrap();
        let path = dir.path().join("logs/refs/heads/main");

        // A torn last line (crash mid-append) is ignored, then cut off by the next append.
        let good = fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(b"b3:0123");
        fs::write(&path, &torn).unwrap();
        assert_eq!(refs.reflog(&n).unwrap().len(), 1);
        refs.update(&n, Some(id(2)), Expected::Is(id(1)), "b")
            .unwrap();
        let log = refs.reflog(&n).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].message, "b");

        for (line, why) in [
            ("garbage\n", "bad old id"),
            ("- -\n", "missing time"),
            ("-\n", "missing new id"),
            ("- b3:xyz 1 m\n", "bad new id"),
            ("- - soon m\n", "bad time"),
            ("\n", "missing old id"),
        ] {
            let mut bytes = fs::read(&path).unwrap();
            let keep = bytes.len();
            bytes.extend_from_slice(line.as_bytes());
            fs::write(&path, &bytes).unwrap();
            let err = refs.reflog(&n).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, RefError::CorruptReflog { line: 3, ref path, .. } if path.ends_with("main")),
                "{line:?}: {err:?}"
            );
            assert!(
                msg.contains("line 3") && msg.contains(why),
                "{line:?}: {msg}"
            );
            assert!(refs.all_reflog_ids().is_err());
            bytes.truncate(keep);
            fs::write(&path, &bytes).unwrap();
        }
        // A line without a message is accepted.
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(b"- - 12\n");
        fs::write(&path, &bytes).unwrap();
        assert_eq!(refs.reflog(&n).unwrap()[2].message, "");
    }

    #[test]
    fn corrupt_ref_files() {
        let (dir, refs) = setup();
        let good = name("refs/heads/good");
        refs.update(&good, Some(id(1)), Expected::Absent, "")
            .unwrap();
        let bad = name("refs/heads/bad");
        let bad_path = dir.path().join("refs/heads/bad");
        let text = id(2).to_string();
        for contents in [
            String::new(),
            text.clone(),
            format!("{text}\n\n"),
            format!("{text}\r\n"),
            format!("{}\n", text.to_uppercase()),
            format!("{}\n", &text[3..]),
            "ref: refs/heads/good\n".to_owned(),
            "\u{0}\u{ff}".repeat(5000),
        ] {
            fs::write(&bad_path, contents.as_bytes()).unwrap();
            let err = refs.read(&bad).unwrap_err();
            assert!(
                matches!(err, RefError::Corrupt { ref path, .. } if path == &bad_path),
                "{contents:?}: {err:?}"
            );
            assert!(err.to_string().contains("expected `b3:<64 hex digits>`"));
            let err = refs.list("refs/").unwrap_err();
            assert!(matches!(err, RefError::Corrupt { ref path, .. } if path == &bad_path));
            let err = refs
                .update(&bad, Some(id(3)), Expected::Any, "")
                .unwrap_err();
            assert!(matches!(err, RefError::Corrupt { .. }));
            assert!(refs.update(&bad, None, Expected::Any, "").is_err());
        }
        assert!(bad_path.exists());
        assert!(!dir.path().join("logs/refs/heads/bad").exists());

        // Files that are not refs; lock and temporary files are skipped silently.
        fs::write(dir.path().join("refs/heads/bad name"), format!("{text}\n")).unwrap();
        fs::write(dir.path().join("refs/heads/x.lock"), b"").unwrap();
        fs::write(dir.path().join("refs/heads/tmp-w-1-2-3"), b"junk").unwrap();
        fs::create_dir(dir.path().join("refs/.odd")).unwrap();
        let (good_refs, problems) = refs.list_lenient("refs/").unwrap();
        assert_eq!(good_refs, [(good.clone(), id(1))]);
        let paths: Vec<_> = problems.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(
            paths,
            [
                dir.path().join("refs/.odd"),
                dir.path().join("refs/heads/bad"),
                dir.path().join("refs/heads/bad name"),
            ]
        );
        assert!(
            problems[1].1.starts_with("corrupt ref file: "),
            "{problems:?}"
        );
        assert!(
            problems[2].1.contains("not a valid ref name"),
            "{problems:?}"
        );
        // The strict listing reports the first problem by path.
        let err = refs.list("refs/").unwrap_err();
        assert!(matches!(err, RefError::Unexpected { ref path, .. } if path.ends_with(".odd")));
        // Problems outside the prefix do not matter.
        fs::remove_file(&bad_path).unwrap();
        fs::remove_file(dir.path().join("refs/heads/bad name")).unwrap();
        refs.update(&name("refs/worlds/w"), Some(id(4)), Expected::Any, "")
            .unwrap();
        assert_eq!(
            refs.list("refs/worlds/").unwrap(),
            [(name("refs/worlds/w"), id(4))]
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_not_refs() {
        let (dir, refs) = setup();
        let n = name("refs/heads/main");
        refs.update(&n, Some(id(1)), Expected::Absent, "").unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("refs/heads/main"),
            dir.path().join("refs/heads/link"),
        )
        .unwrap();
        let err = refs.read(&name("refs/heads/link")).unwrap_err();
        assert!(matches!(err, RefError::Corrupt { .. }), "{err:?}");
        let (good, problems) = refs.list_lenient("refs/").unwrap();
        assert_eq!(good, [(n, id(1))]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("symlinks"), "{problems:?}");
    }

    #[test]
    fn list_prefixes() {
        let (_dir, refs) = setup();
        assert!(refs.list("refs/").unwrap().is_empty());
        let all = [
            "refs/heads/main",
            "refs/worlds/b/c",
            "refs/worlds/a",
            "refs/worldsx",
            "refs/heads/dev",
        ];
        for (i, n) in all.iter().enumerate() {
            refs.update(&name(n), Some(id(i as u64)), Expected::Absent, "")
                .unwrap();
        }
        let names = |prefix: &str| -> Vec<String> {
            refs.list(prefix)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n.to_string())
                .collect()
        };
        assert_eq!(
            names("refs/"),
            [
                "refs/heads/dev",
                "refs/heads/main",
                "refs/worlds/a",
                "refs/worlds/b/c",
                "refs/worldsx"
            ]
        );
        assert_eq!(names(""), names("refs/"));
        assert_eq!(names("refs"), names("refs/"));
        assert_eq!(names("refs/worlds/"), ["refs/worlds/a", "refs/worlds/b/c"]);
        assert_eq!(
            names("refs/worlds"),
            ["refs/worlds/a", "refs/worlds/b/c", "refs/worldsx"]
        );
        assert_eq!(names("refs/worlds/b/"), ["refs/worlds/b/c"]);
        assert_eq!(names("refs/heads/m"), ["refs/heads/main"]);
        assert_eq!(names("refs/heads/main"), ["refs/heads/main"]);
        assert!(names("refs/heads/main/").is_empty());
        assert!(names("refs/nope/").is_empty());
        assert!(names("heads/").is_empty());
        assert!(names("refs/../").is_empty());
        let listed = refs.list("refs/heads/").unwrap();
        assert_eq!(listed[0], (name("refs/heads/dev"), id(4)));
    }

    #[test]
    fn locked() {
        let (dir, refs) = setup();
        let n = name("refs/heads/main");
        refs.update(&n, Some(id(1)), Expected::Absent, "").unwrap();
        let lock_path = dir.path().join("refs/heads/main.lock");
        let held = LockFile::acquire(lock_path.clone()).unwrap();
        for new in [Some(id(2)), None] {
            let err = refs.update(&n, new, Expected::Any, "").unwrap_err();
            assert!(
                matches!(err, RefError::Locked { ref path } if path == &lock_path),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("main.lock") && msg.contains("crashed"),
                "{msg}"
            );
        }
        // The lock file does not show up as a ref.
        assert_eq!(refs.list("refs/").unwrap(), [(n.clone(), id(1))]);
        drop(held);
        refs.update(&n, Some(id(2)), Expected::Is(id(1)), "")
            .unwrap();
        assert_eq!(refs.reflog(&n).unwrap().len(), 2);
    }

    #[test]
    fn reflog_undo_restores_the_log() {
        let (_dir, refs) = setup();
        let n = name("refs/heads/main");
        let undo = refs.append_reflog(&n, None, Some(id(1)), "x").unwrap();
        assert_eq!(undo.prev_len, None);
        undo.apply();
        assert!(!refs.reflog_path(&n).exists());
        refs.update(&n, Some(id(1)), Expected::Absent, "a").unwrap();
        let before = fs::read(refs.reflog_path(&n)).unwrap();
        let undo = refs.append_reflog(&n, Some(id(1)), None, "y").unwrap();
        assert_eq!(undo.prev_len, Some(before.len() as u64));
        undo.apply();
        assert_eq!(fs::read(refs.reflog_path(&n)).unwrap(), before);
    }

    #[test]
    fn racing_cas_has_one_winner_per_round() {
        const THREADS: usize = 8;
        const ROUNDS: u64 = 20;
        let (_dir, refs) = setup();
        let n = name("refs/race/x");
        let barrier = Barrier::new(THREADS);
        let wins: Vec<AtomicUsize> = (0..ROUNDS).map(|_| AtomicUsize::new(0)).collect();
        let losses = Mutex::new(Vec::new());
        let unexpected = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (refs, n, barrier, wins, losses, unexpected) =
                    (&refs, &n, &barrier, &wins, &losses, &unexpected);
                s.spawn(move || {
                    for round in 0..ROUNDS {
                        barrier.wait();
                        let expected = match refs.read(n).unwrap() {
                            Some(cur) => Expected::Is(cur),
                            None => Expected::Absent,
                        };
                        barrier.wait();
                        let new = id(round * 100 + t as u64);
                        match refs.update(n, Some(new), expected, &format!("t{t}")) {
                            Ok(()) => {
                                wins[round as usize].fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e @ (RefError::Locked { .. } | RefError::Stale { .. })) => {
                                losses.lock().unwrap().push(e.to_string());
                            }
                            Err(e) => unexpected.lock().unwrap().push(e.to_string()),
                        }
                        barrier.wait();
                    }
                });
            }
        });
        assert_eq!(unexpected.into_inner().unwrap(), Vec::<String>::new());
        for (round, w) in wins.iter().enumerate() {
            assert_eq!(w.load(Ordering::SeqCst), 1, "round {round}");
        }
        assert_eq!(
            losses.lock().unwrap().len(),
            (THREADS - 1) * ROUNDS as usize
        );
        let log = refs.reflog(&n).unwrap();
        assert_eq!(log.len(), ROUNDS as usize);
        for (round, e) in log.iter().enumerate() {
            assert_eq!(num(e.new.unwrap()) / 100, round as u64);
            assert_eq!(e.old, round.checked_sub(1).map(|r| log[r].new.unwrap()));
        }
        assert_eq!(refs.read(&n).unwrap(), log.last().unwrap().new);
        assert!(
            files(refs.root())
                .iter()
                .all(|f| !f.ends_with(".lock") && !f.contains("tmp-"))
        );
    }

    #[test]
    fn counter_with_retries_counts_exactly() {
        const THREADS: u64 = 4;
        const EACH: u64 = 25;
        let (_dir, refs) = setup();
        let n = name("refs/counter");
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (refs, n) = (&refs, &n);
                s.spawn(move || {
                    let mut done = 0;
                    while done < EACH {
                        let cur = refs.read(n).unwrap();
                        let next = id(cur.map_or(0, num) + 1);
                        let expected = cur.map_or(Expected::Absent, Expected::Is);
                        match refs.update(n, Some(next), expected, &format!("t{t}")) {
                            Ok(()) => done += 1,
                            Err(RefError::Stale { .. }) => {}
                            Err(RefError::Locked { .. }) => std::thread::yield_now(),
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                });
            }
        });
        let total = THREADS * EACH;
        assert_eq!(refs.read(&n).unwrap(), Some(id(total)));
        let log = refs.reflog(&n).unwrap();
        assert_eq!(log.len() as u64, total);
        for (i, e) in log.iter().enumerate() {
            let i = i as u64;
            assert_eq!(e.old, (i > 0).then(|| id(i)));
            assert_eq!(e.new, Some(id(i + 1)));
        }
    }

    #[test]
    fn racing_deletes_and_creates_in_one_directory() {
        // Deletions prune empty directories that concurrent creations are about to use.
        let (_dir, refs) = setup();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let refs = &refs;
                s.spawn(move || {
                    let n = name(&format!("refs/shared/dir/r{t}"));
                    for i in 0..30 {
                        refs.update(&n, Some(id(i)), Expected::Absent, "").unwrap();
                        refs.update(&n, None, Expected::Is(id(i)), "").unwrap();
                    }
                });
            }
        });
        assert!(refs.list("refs/").unwrap().is_empty());
        assert_eq!(refs.all_reflog_ids().unwrap().len(), 30);
    }

    #[test]
    fn racing_file_and_directory_never_both_exist() {
        let (dir, refs) = setup();
        let barrier = Barrier::new(2);
        let unexpected = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let (refs, barrier, unexpected) = (&refs, &barrier, &unexpected);
                s.spawn(move || {
                    for round in 0..40 {
                        let n = if t == 0 {
                            name(&format!("refs/r{round}"))
                        } else {
                            name(&format!("refs/r{round}/x"))
                        };
                        barrier.wait();
                        match refs.update(&n, Some(id(round)), Expected::Absent, "") {
                            Ok(()) => {}
                            Err(RefError::Conflict { .. }) => {}
                            Err(e) => unexpected.lock().unwrap().push(e.to_string()),
                        }
                    }
                });
            }
        });
        assert_eq!(unexpected.into_inner().unwrap(), Vec::<String>::new());
        let listed = refs.list("refs/").unwrap();
        for round in 0..40 {
            let file = name(&format!("refs/r{round}"));
            let sub = name(&format!("refs/r{round}/x"));
            let (a, b) = (refs.read(&file).unwrap(), refs.read(&sub).unwrap());
            assert!(a.is_none() || b.is_none(), "round {round}");
            for (n, v) in [(&file, a), (&sub, b)] {
                // A refused update leaves no reflog line behind.
                assert_eq!(refs.reflog(n).unwrap().len(), usize::from(v.is_some()));
            }
        }
        assert!(listed.len() <= 40);
        assert!(files(dir.path()).iter().all(|f| !f.ends_with(".lock")));
    }
}
