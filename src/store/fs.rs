//! Crash-safe file primitives: temp file + fsync + rename, directory fsync, lock files.
//!
//! Every file the store publishes is first written in full to a uniquely named temporary
//! file in the destination directory, synced, then moved into place, and the directory is
//! synced, so a crash leaves either the old state or the new one, never a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Prefix of temporary files; `gc` removes stale ones.
pub const TMP_PREFIX: &str = "tmp-";

/// A fresh temporary path in `dir`, unique across threads and processes.
#[must_use]
pub fn temp_path(dir: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        "{TMP_PREFIX}{what}-{}-{n}-{nanos:08x}",
        std::process::id()
    ))
}

/// Syncs a directory so that renames and creations inside it are durable.
///
/// # Errors
/// The I/O error from opening or syncing `dir`.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a new temporary file in `dir` and returns it with its path.
///
/// # Errors
/// The I/O error from creating the file.
pub fn create_temp(dir: &Path, what: &str) -> io::Result<(File, PathBuf)> {
    let path = temp_path(dir, what);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((file, path))
}

/// Writes `bytes` to `path` atomically, replacing any existing file.
///
/// # Errors
/// Any I/O error; the temporary file is removed and `path` is left as it was.
pub fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let (mut file, tmp) = create_temp(dir, "w")?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What [`publish_new`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The file was moved into place.
    Created,
    /// A file already existed at the destination and was left untouched.
    Existed,
}

/// Moves the synced temporary file `tmp` to `dest` unless `dest` already exists; never
/// overwrites. The caller syncs the destination directory (possibly once for many files).
///
/// # Errors
/// Any I/O error other than the destination existing. `tmp` is always removed.
pub fn publish_new(tmp: &Path, dest: &Path) -> io::Result<Published> {
    // A hard link fails with AlreadyExists instead of replacing, which is exactly the
    // no-overwrite rename we need, and it works without platform-specific calls.
    let result = match fs::hard_link(tmp, dest) {
        Ok(()) => Ok(Published::Created),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Published::Existed),
        Err(_) if !dest.exists() => {
            // File systems without hard links: fall back to rename after an existence
            // check. Objects are content-addressed, so a lost race replaces a file with
            // identical bytes.
            return fs::rename(tmp, dest).map(|()| Published::Created);
        }
        Err(_) => Ok(Published::Existed),
    };
    let _ = fs::remove_file(tmp);
    result
}

/// The directory containing `path` (`.` for a bare file name).
#[must_use]
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An exclusive lock held by the existence of a `.lock` file, as git does.
///
/// The lock is released (the file removed) on drop. A crashed holder leaves the file
/// behind; the error message says which file to remove.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    file: Option<File>,
}

impl LockFile {
    /// Takes the lock at `path` (which should end in `.lock`).
    ///
    /// # Errors
    /// `AlreadyExists` when another process holds it, or another I/O error.
    pub fn acquire(path: PathBuf) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    /// The lock file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` into the lock file, syncs it, and renames it over `dest`, releasing the
    /// lock and publishing the new contents in one atomic step.
    ///
    /// # Errors
    /// Any I/O error; the lock is released and `dest` is unchanged.
    pub fn commit_to(mut self, dest: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = self
            .file
            .take()
            .expect("a lock holds its file until commit or drop");
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.path, dest)?;
        // The lock file is gone: nothing left for drop to remove.
        self.path = PathBuf::new();
        sync_dir(parent(dest))
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("obj");
        let (mut f, tmp) = create_temp(dir.path(), "t").unwrap();
        f.write_all(b"first").unwrap();
        assert_eq!(publish_new(&tmp, &dest).unwrap(), Published::Created);
        let (mut f, tmp) = create_temp(dir.path(), "t").unwrap();
        f.write_all(b"second").unwrap();
        assert_eq!(publish_new(&tmp, &dest).unwrap(), Published::Existed);
        assert_eq!(fs::read(&dest).unwrap(), b"first");
        assert!(!tmp.exists());
    }

    #[test]
    fn lock_is_exclusive_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        let held = LockFile::acquire(lock.clone()).unwrap();
        assert_eq!(
            LockFile::acquire(lock.clone()).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        drop(held);
        let held = LockFile::acquire(lock.clone()).unwrap();
        held.commit_to(&dir.path().join("x"), b"v").unwrap();
        assert!(!lock.exists());
        assert_eq!(fs::read(dir.path().join("x")).unwrap(), b"v");
    }
}
