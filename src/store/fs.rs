//! Crash-safe file primitives: temp file + fsync + rename, directory fsync, lock files.
//!
//! Every file the store publishes is first written in full to a uniquely named temporary
//! file in the destination directory, synced, then moved into place, and the directory is
//! synced, so a crash leaves either the old state or the new one, never a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// How long a writer waits for a lock held by a live process before giving up, unless the
/// store is opened with another wait (see `StoreOptions::lock_wait`).
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// How often [`LockFile::acquire`] retries after finding and removing a stale lock file (or
/// losing its own new file to a concurrent stale-lock removal) before reporting it busy.
const STALE_RETRIES: usize = 16;

/// An exclusive lock held by the existence of a `.lock` file, as git does, and by an OS
/// advisory lock (`flock`) on that file, which the kernel releases when its holder dies.
///
/// The protocol: create `NAME.lock` exclusively, lock it, check the path still names the
/// file just created, write, rename it over `NAME` (or remove it) while still holding the
/// OS lock. A writer that finds a `.lock` file tries the OS lock on it: if that fails, the
/// holder is alive (the lock is *busy*); if it succeeds, the holder died and the file is
/// *stale*, so the writer removes it (still holding the OS lock, and only if the path still
/// names the file it locked) and tries again. A crashed holder therefore never blocks
/// anyone. The lock is released (the file removed) on drop.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    file: Option<File>,
}

/// What a `.lock` file found on disk is, for fsck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// A live process holds it.
    Busy,
    /// Nobody holds it: its holder died (or it was left by a build without OS locks).
    Stale,
    /// It is gone.
    Gone,
}

impl LockFile {
    /// Takes the lock at `path` (which should end in `.lock`) without waiting for a live
    /// holder; a stale lock file left by a dead process is removed first.
    ///
    /// # Errors
    /// `AlreadyExists` when a live process holds it, or another I/O error.
    pub fn acquire(path: PathBuf) -> io::Result<Self> {
        for _ in 0..STALE_RETRIES {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    // Blocks only while a stale-lock removal holds the new file for an instant.
                    file.lock()?;
                    if same_file(&file, &path) {
                        return Ok(Self {
                            path,
                            file: Some(file),
                        });
                    }
                    // Taken for stale and removed before we locked it: start again.
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !remove_if_stale(&path)? {
                        return Err(busy(&path));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(busy(&path))
    }

    /// Like [`LockFile::acquire`], but waits up to `wait` (with backoff) for a live holder to
    /// finish.
    ///
    /// # Errors
    /// `AlreadyExists` when a live process still holds it after `wait`, or another I/O error.
    pub fn acquire_waiting(path: PathBuf, wait: Duration) -> io::Result<Self> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match Self::acquire(path.clone()) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && start.elapsed() < wait => {
                    let left = wait.saturating_sub(start.elapsed());
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// The lock file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lets go of the lock as a crash would: the OS lock is released, the file stays (for
    /// tests that simulate a crash).
    pub(crate) fn abandon(mut self) {
        self.file = None;
        self.path = PathBuf::new();
    }

    /// Writes `bytes` into the lock file, syncs it, and renames it over `dest`, releasing the
    /// lock and publishing the new contents in one atomic step.
    ///
    /// # Errors
    /// Any I/O error; the lock is released and `dest` is unchanged.
    pub fn commit_to(mut self, dest: &Path, bytes: &[u8]) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(io::Error::other("lock already released"));
        };
        let result = (|| {
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&self.path, dest)
        })();
        if let Err(e) = result {
            // Remove the lock file while still holding the OS lock, then release it.
            let _ = fs::remove_file(&self.path);
            self.path = PathBuf::new();
            return Err(e);
        }
        // The lock file is gone: nothing left for drop to remove. The OS lock, now on the
        // published file, is released when `file` closes.
        self.path = PathBuf::new();
        drop(file);
        sync_dir(parent(dest))
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            // Removed while the OS lock is still held (the file closes after this).
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn busy(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} is held by a live process", path.display()),
    )
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// What the lock file at `path` is: held by a live process, stale, or gone. Changes nothing.
///
/// # Errors
/// An I/O error opening or locking it.
pub fn lock_state(path: &Path) -> io::Result<LockState> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockState::Gone),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(LockState::Stale),
        Err(std::fs::TryLockError::WouldBlock) => Ok(LockState::Busy),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Removes the lock file at `path` if no live process holds it. Returns whether it is gone
/// (removed here, or already); `false`: a live process holds it.
///
/// Safe beside any number of processes doing the same: the file is removed only while its
/// OS lock is held and only if the path still names the file locked.
///
/// # Errors
/// An I/O error opening, locking or removing it.
pub fn remove_if_stale(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    if same_file(&file, path) {
        match fs::remove_file(path) {
            Ok(()) => {
                let _ = sync_dir(parent(path));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
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

    #[test]
    fn stale_lock_is_removed_and_live_one_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        // A crashed holder: the file stays, its OS lock is gone.
        LockFile::acquire(lock.clone()).unwrap().abandon();
        assert!(lock.exists());
        assert_eq!(lock_state(&lock).unwrap(), LockState::Stale);
        let held = LockFile::acquire(lock.clone()).unwrap();
        assert_eq!(lock_state(&lock).unwrap(), LockState::Busy);
        assert!(!remove_if_stale(&lock).unwrap());
        let start = Instant::now();
        let err = LockFile::acquire_waiting(lock.clone(), Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("live process"), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(100));
        drop(held);
        assert_eq!(lock_state(&lock).unwrap(), LockState::Gone);
        // A plain leftover file (no holder at all) is stale too.
        fs::write(&lock, b"").unwrap();
        assert!(remove_if_stale(&lock).unwrap());
        assert!(!lock.exists());
    }

    #[test]
    fn waiting_writers_all_get_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("x.lock");
        let count = std::sync::Arc::new(AtomicU64::new(0));
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (lock, count, inside) = (lock.clone(), count.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let held =
                            LockFile::acquire_waiting(lock.clone(), DEFAULT_LOCK_WAIT).unwrap();
                        assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                        count.fetch_add(1, Ordering::SeqCst);
                        inside.store(false, Ordering::SeqCst);
                        drop(held);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 80);
        assert!(!lock.exists());
    }
}
