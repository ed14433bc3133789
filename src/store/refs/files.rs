//! Ref files on disk: reading one, listing many, and the directories that hold them.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::name::check_component;
use super::{LOCK_SUFFIX, MAX_REF_FILE, REFS_DIR, RefError, RefName, Refs, io_err, is_absent};
use crate::object::ObjectId;
use crate::store::fs::{TMP_PREFIX, parent, sync_dir};

/// What a ref's path holds.
pub(super) enum Current {
    Absent,
    /// A directory: other refs live under this name.
    Dir,
    Value(ObjectId),
}

/// Why [`create_dirs`] failed.
pub(super) enum DirsError {
    /// The component at this depth (1-based) exists and is not a directory.
    NotDir { path: PathBuf, depth: usize },
    /// Another I/O error.
    Io { path: PathBuf, source: io::Error },
}

/// Creates `base/c1/c2/...` one directory at a time, syncing the parent of each directory
/// it creates. `base` must exist.
pub(super) fn create_dirs(base: &Path, components: &[&str]) -> Result<(), DirsError> {
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
pub(super) fn prune_empty_dirs(dir: &Path) -> bool {
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
pub(super) fn some_file_under(dir: &Path, root: &Path) -> Option<String> {
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
pub(super) fn read_ref_file(path: &Path) -> Result<Current, RefError> {
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

pub(super) fn parse_ref_contents(bytes: &[u8]) -> Result<ObjectId, String> {
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

/// Whether a directory whose refs all start with `dir_prefix` (ending in `/`) may hold refs
/// starting with `prefix`.
pub(super) fn could_match(dir_prefix: &str, prefix: &str) -> bool {
    dir_prefix.starts_with(prefix) || prefix.starts_with(dir_prefix)
}

pub(super) fn problem_path(e: &RefError) -> &Path {
    match e {
        RefError::Corrupt { path, .. }
        | RefError::Unexpected { path, .. }
        | RefError::Io { path, .. }
        | RefError::CorruptReflog { path, .. }
        | RefError::Locked { path }
        | RefError::Conflict { path, .. }
        | RefError::CorruptTransaction { path, .. }
        | RefError::Incomplete { record: path, .. } => path,
        RefError::InvalidName { .. } | RefError::Stale { .. } | RefError::Duplicate { .. } => {
            Path::new("")
        }
    }
}

/// Lists the refs under `dir`, whose own name (relative to the store root) is `name`.
pub(super) fn scan_dir(
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

impl Refs {
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
}
