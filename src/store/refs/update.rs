//! Updating one ref by compare-and-swap under its lock file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::files::{
    Current, DirsError, create_dirs, prune_empty_dirs, read_ref_file, some_file_under,
};
use super::{DIR_RETRIES, Expected, REFS_DIR, RefError, RefName, Refs, io_err, is_absent};
use crate::object::ObjectId;
use crate::store::fs::{LockFile, parent, sync_dir};

pub(super) fn check_expected(
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

impl Refs {
    /// Sets (`new = Some`) or deletes (`new = None`) the ref `name` if it currently matches
    /// `expected`, appending a reflog line with `message`.
    ///
    /// Deleting a ref that does not exist (with [`Expected::Any`] or [`Expected::Absent`])
    /// succeeds and logs nothing. Deleting a ref keeps its reflog and removes directories
    /// under `refs/` left empty.
    ///
    /// # Errors
    /// - [`RefError::Stale`]: the ref does not match `expected`; nothing changed.
    /// - [`RefError::Locked`]: a live process held the ref's lock for longer than the lock
    ///   wait; nothing changed.
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
        self.settle_pending(name)?;
        let current = self.current_for_set(name, path)?;
        check_expected(name, expected, current)?;
        self.publish_set(name, path, lock, current, new, message)
    }

    /// The value of the ref at `path` that a set replaces, clearing empty directories left
    /// in its place. The caller holds the ref's lock.
    pub(super) fn current_for_set(
        &self,
        name: &RefName,
        path: &Path,
    ) -> Result<Option<ObjectId>, RefError> {
        Ok(match read_ref_file(path)? {
            Current::Value(id) => Some(id),
            Current::Absent => None,
            // Empty directories may be left over by interrupted deletions.
            Current::Dir if prune_empty_dirs(path) => None,
            Current::Dir => return Err(self.dir_conflict(name)),
        })
    }

    /// The second half of a set, its expectation met: the reflog line, then the lock file
    /// renamed over the ref (which releases the lock).
    pub(super) fn publish_set(
        &self,
        name: &RefName,
        path: &Path,
        lock: LockFile,
        current: Option<ObjectId>,
        new: ObjectId,
        message: &str,
    ) -> Result<(), RefError> {
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
        let Some(lock) = self.lock_for_delete(name)? else {
            // The directory that would hold the ref does not exist, so neither does the ref.
            return check_expected(name, expected, None);
        };
        self.settle_pending(name)?;
        let current = match read_ref_file(&path)? {
            Current::Value(id) => Some(id),
            Current::Absent | Current::Dir => None,
        };
        check_expected(name, expected, current)?;
        match current {
            None => Ok(()),
            Some(_) => self.publish_delete(name, &path, lock, current, message),
        }
    }

    /// Takes the lock of a ref about to be deleted; `None` when the directory that would hold
    /// the ref does not exist (so neither does the ref) and no transaction record names it.
    pub(super) fn lock_for_delete(&self, name: &RefName) -> Result<Option<LockFile>, RefError> {
        let lock_path = self.lock_path(name);
        match LockFile::acquire_waiting(lock_path.clone(), self.lock_wait) {
            Ok(lock) => Ok(Some(lock)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(RefError::Locked { path: lock_path })
            }
            // A committed transaction may still have to create it: settle that first.
            Err(e) if is_absent(&e) && self.is_named_by_pending(name)? => {
                self.lock_creating_dirs(name).map(Some)
            }
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_err("create lock file", &lock_path)(e)),
        }
    }

    /// The second half of a deletion of an existing ref, its expectation met: the reflog
    /// line, the ref file removed, the lock released, empty directories pruned.
    pub(super) fn publish_delete(
        &self,
        name: &RefName,
        path: &Path,
        lock: LockFile,
        current: Option<ObjectId>,
        message: &str,
    ) -> Result<(), RefError> {
        let undo = self.append_reflog(name, current, None, message)?;
        if let Err(e) = fs::remove_file(path) {
            undo.apply();
            return Err(io_err("remove ref", path)(e));
        }
        let synced = sync_dir(parent(path));
        drop(lock);
        self.prune_parents(path);
        synced.map_err(io_err("sync directory", parent(path)))
    }

    /// Removes the empty directories above a deleted ref file, up to (not including)
    /// `root/refs`. Best effort: a directory someone else just created a file in stays.
    pub(super) fn prune_parents(&self, ref_file: &Path) {
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
    pub(super) fn lock_creating_dirs(&self, name: &RefName) -> Result<LockFile, RefError> {
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
            match LockFile::acquire_waiting(lock_path.clone(), self.lock_wait) {
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
    pub(super) fn dir_conflict(&self, name: &RefName) -> RefError {
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
    pub(super) fn classify(
        &self,
        name: &RefName,
        op: &'static str,
        path: &Path,
        e: io::Error,
    ) -> RefError {
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
}
